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

// One identity's reach, by connection: whether it may connect, then each
// table's allowed, held and refused statement kinds with their policies.
function reachView(rows) {
  const byConnection = new Map();
  for (const r of rows) {
    if (!byConnection.has(r.connection)) byConnection.set(r.connection, []);
    byConnection.get(r.connection).push(r);
  }
  const verdicts = [["allow", "may", "ok"], ["review", "with approval", "warn"], ["deny", "may not", "refused"]];
  return h("ul", { class: "reach" }, [...byConnection].map(([connection, list]) => {
    const connect = list.find((r) => r.action === "connect");
    const tables = new Map();
    for (const r of list.filter((r) => r.action !== "connect")) {
      if (!tables.has(r.table)) tables.set(r.table, []);
      tables.get(r.table).push(r);
    }
    return h("li", {},
      h("strong", {}, connection), " ",
      connect && connect.decision === "allow"
        ? h("span", { class: "ok" }, "may connect")
        : h("span", { class: "refused" }, "may not connect"),
      connect && connect.policies.length ? h("span", { class: "hint" }, ` (${connect.policies.join(", ")})`) : null,
      connect && connect.decision === "allow" && tables.size
        ? h("ul", {}, [...tables].map(([table, kinds]) => h("li", {},
            h("code", {}, table), ": ",
            verdicts.map(([d, word, cls]) => {
              const these = kinds.filter((k) => k.decision === d);
              if (!these.length) return null;
              const policies = [...new Set(these.flatMap((k) => k.policies))];
              return h("span", { class: "verdict-group" },
                h("span", { class: cls }, `${word} `), these.map((k) => k.action).join(", "),
                policies.length ? h("span", { class: "hint" }, ` (${policies.join(", ")})`) : null, " ");
            }))))
        : null);
  }));
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
        h("td", {}, i.reach.length ? reachView(i.reach) : h("em", {}, "nothing")),
      ))),
    )),
    form);
}
