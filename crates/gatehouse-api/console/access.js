// The access review: every identity holding a usable credential and what
// the policy in force lets it reach; a sign-off records the review read in
// the evidence log.

import { api } from "./api.js";
import { h, fill, errorBox, when } from "./view.js";
import { me } from "./app.js";

export function accessPage() {
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  (async () => {
    try {
      const review = await api("/v1/access-review");
      fill(body, reviewView(review));
    } catch (err) {
      fill(body, errorBox(err));
    }
  })();
  return { el: h("section", { "aria-labelledby": "access-title" }, h("h1", { id: "access-title" }, "Access review"), body) };
}

function reachText(r) {
  return Object.entries(r)
    .filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`)
    .join(" · ");
}

function reviewView(review) {
  const who = me();
  const notes = h("textarea", { id: "review-notes", rows: 3 });
  const reviewer = h("input", { id: "reviewer", value: who && !who.roles.admin ? who.subject : "", readonly: who && !who.roles.admin });
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card" },
    h("h2", {}, "Sign off"),
    h("label", { for: "reviewer" }, "Reviewer"), reviewer,
    h("label", { for: "review-notes" }, "Notes"), notes,
    h("p", { class: "hint" }, `You sign off exactly this review (digest ${review.digest.slice(0, 16)}…); if access changes meanwhile, the gateway refuses and you review again.`),
    h("button", { type: "submit", class: "primary" }, "Sign off this review"),
    out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const done = await api("/v1/access-review/sign-off", {
        method: "POST",
        body: { reviewer: reviewer.value, notes: notes.value, digest: review.digest },
      });
      fill(out, h("p", { class: "ok" }, `Signed off by ${done.reviewer}; recorded in the evidence log.`));
    } catch (err) {
      fill(out, errorBox(err));
    }
  });
  return h("div", {},
    h("p", { class: "hint" }, "Computed ", when(review.generated_at), ` from ${review.policy_files.length} policy file(s), for a caller at ${review.client_ip}.`),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Identity", "Groups", "Tokens", "May reach"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, review.identities.map((i) => h("tr", {},
        h("td", {}, i.identity),
        h("td", {}, i.groups.join(", ")),
        h("td", {}, i.tokens.map((t) => h("div", {}, h("code", {}, t.id), " until ", when(t.expires_at)))),
        h("td", {}, i.reach.length ? h("ul", { class: "reach" }, i.reach.map((r) => h("li", {}, reachText(r)))) : h("em", {}, "nothing")),
      ))),
    )),
    form);
}
