// The approvals inbox: pending requests appear without reloading (the list
// is asked for every two seconds), each with everything an approver needs
// to decide it; approve with an optional comment, deny with a required one.
// The API applies the same rules as for the CLI (route approvers only, no
// self-approval), whatever this page shows.

import { api } from "./api.js";
import { h, fill, relative, when, errorBox, announce, badge, visible, hiddenCharsWarning } from "./view.js";
import { me } from "./app.js";

const POLL_MS = 2000;

export function approvalsPage() {
  // Not a live region itself (its countdowns would be read out every
  // second): new requests are announced one by one instead.
  const list = h("div", { class: "inbox", id: "inbox", "aria-busy": "true" });
  const decided = h("div", { class: "decided" });
  const status = h("p", { class: "hint" });
  const el = h("section", { "aria-labelledby": "approvals-title" },
    h("h1", { id: "approvals-title" }, "Waiting for a decision"),
    status,
    list,
    h("h2", {}, "Recently decided"),
    decided,
  );
  const cards = new Map();
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const [pending, recent] = await Promise.all([
        api("/v1/approvals?state=pending&limit=200", { background: true }),
        api("/v1/approvals?limit=30", { background: true }),
      ]);
      if (stopped) return;
      list.setAttribute("aria-busy", "false");
      status.textContent = pending.length
        ? `${pending.length} request${pending.length === 1 ? "" : "s"} waiting.`
        : "Nothing is waiting. New requests appear here as they are filed.";
      const seen = new Set();
      pending.sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at));
      for (const r of pending) {
        seen.add(r.id);
        if (!cards.has(r.id)) {
          const card = requestCard(r, refresh);
          cards.set(r.id, card);
          list.appendChild(card.el);
          announce(`New approval request from ${r.requester.subject} on ${r.connection}`);
        }
      }
      for (const [id, card] of cards) {
        if (!seen.has(id) && !card.busy) {
          card.el.remove();
          cards.delete(id);
        }
      }
      setPendingCount(pending.length);
      fill(decided, decidedTable(recent.filter((r) => r.state !== "pending")));
    } catch (err) {
      if (!stopped) fill(status, errorBox(err));
    }
  }

  function tick() {
    for (const card of cards.values()) card.tick();
  }

  refresh();
  timer = setInterval(() => {
    refresh();
  }, POLL_MS);
  const clock = setInterval(tick, 1000);
  return {
    el,
    stop() {
      stopped = true;
      clearInterval(timer);
      clearInterval(clock);
    },
  };
}

function setPendingCount(n) {
  const c = document.getElementById("pending-count");
  if (!c) return;
  c.hidden = n === 0;
  c.textContent = String(n);
  c.setAttribute("aria-label", `${n} waiting`);
}

function actingFor(identity) {
  const d = identity.source && identity.source.delegation;
  if (!d) return null;
  const parts = [];
  if (d.actors && d.actors.length) parts.push(`acted on by ${d.actors.map((a) => a.sub).join(" › ")}`);
  if (d.on_behalf_of) parts.push(`on behalf of ${d.on_behalf_of}`);
  return parts.join("; ");
}

function requestCard(r, refresh) {
  const who = me();
  const mayDecide = who && who.roles.approver;
  const left = h("span", { class: "time-left" });
  const comment = h("textarea", {
    id: `comment-${r.id}`, rows: 2, name: "comment",
    "aria-describedby": `comment-help-${r.id}`,
  });
  const outcome = h("div", { class: "outcome", role: "status" });
  const card = { el: null, busy: false, tick };

  function tick() {
    const ms = Date.parse(r.expires_at) - Date.now();
    left.textContent = ms > 0 ? `expires ${relative(r.expires_at)}` : "expired";
    left.classList.toggle("urgent", ms > 0 && ms < 60_000);
  }
  tick();

  async function decide(approve) {
    outcome.replaceChildren();
    if (!approve && !comment.value.trim()) {
      outcome.appendChild(errorBox(new Error("Say why you deny it: a denial needs a comment.")));
      comment.focus();
      return;
    }
    card.busy = true;
    for (const b of buttons) b.disabled = true;
    try {
      const done = await api(`/v1/approvals/${encodeURIComponent(r.id)}/${approve ? "approve" : "deny"}`, {
        method: "POST",
        body: { comment: comment.value },
      });
      const text = decidedText(done);
      fill(outcome, h("p", { class: approve ? "ok" : "refused" }, text));
      announce(text);
      card.el.classList.add("done");
      setTimeout(() => {
        card.busy = false;
        refresh();
      }, 1500);
    } catch (err) {
      card.busy = false;
      for (const b of buttons) b.disabled = false;
      outcome.appendChild(errorBox(err));
    }
  }

  const buttons = mayDecide
    ? [
        h("button", { type: "button", class: "primary", onclick: () => decide(true) }, "Approve"),
        h("button", { type: "button", class: "danger", onclick: () => decide(false) }, "Deny"),
      ]
    : [];
  const chain = actingFor(r.requester);
  card.el = h("article", { class: "card request", "data-request": r.id, "aria-labelledby": `title-${r.id}` },
    h("header", {},
      h("h3", { id: `title-${r.id}` }, `${r.requester.subject} → ${r.connection}`),
      left,
    ),
    h("dl", { class: "facts" },
      h("dt", {}, "Request"), h("dd", {}, h("code", {}, r.id)),
      h("dt", {}, "Requester"), h("dd", {}, r.requester.subject,
        r.requester.groups.length ? h("span", { class: "groups" }, ` (${r.requester.groups.join(", ")})`) : null),
      chain ? [h("dt", {}, "Acting for"), h("dd", {}, chain)] : null,
      h("dt", {}, "Connection"), h("dd", {}, r.connection),
      h("dt", {}, "Session"), h("dd", {}, h("a", { href: `#/sessions/${r.session}` }, `${r.session}`), ` #${r.statement_seq}`),
      h("dt", {}, "Route"), h("dd", {}, r.route),
      h("dt", {}, "Policy"), h("dd", {}, r.policies.join(", ") || "—"),
      h("dt", {}, "Asked"), h("dd", {}, when(r.created_at)),
      r.reason ? [h("dt", {}, "Reason"), h("dd", { class: "reason" }, visible(r.reason))] : null,
      r.max_rows != null ? [h("dt", {}, "Row limit"), h("dd", {}, `at most ${r.max_rows} rows`)] : null,
    ),
    h("h4", {}, "Exactly what will run"),
    hiddenCharsWarning([r.text, ...r.params.filter((p) => p !== null)]),
    h("pre", { class: "action", dir: "ltr" }, h("code", {}, visible(r.text))),
    r.params.length
      ? h("ol", { class: "params", "aria-label": "Parameters" },
          r.params.map((p, i) => h("li", {}, h("span", { class: "param" }, `$${i + 1}`), " ", p === null ? h("em", { class: "null" }, "NULL") : h("code", {}, visible(p)))))
      : null,
    r.analysis ? h("p", { class: "analysis" }, r.analysis) : null,
    r.votes.length
      ? h("ul", { class: "votes" }, r.votes.map((v) => h("li", {}, `${v.approver} ${v.approve ? "approved" : "denied"}`, v.comment ? `: ${v.comment}` : "")))
      : null,
    mayDecide
      ? h("div", { class: "decide" },
          h("label", { for: `comment-${r.id}` }, "Comment"),
          comment,
          h("p", { id: `comment-help-${r.id}`, class: "hint" }, "Optional to approve, required to deny."),
          h("div", { class: "buttons" }, buttons),
        )
      : h("p", { class: "hint" }, `Approvers of route ${r.route} decide this request.`),
    outcome,
  );
  return card;
}

function decidedText(d) {
  const r = d;
  if (r.state === "denied") return `Denied request ${r.id}: the statement is refused.`;
  if (r.state === "approved" || r.state === "used") {
    return d.mode === "hold"
      ? `Approved request ${r.id}: the held statement was released and runs in ${r.requester.subject}'s session.`
      : `Approved request ${r.id}: ${r.requester.subject} may run it again, once.`;
  }
  return `Your vote on ${r.id} was taken; it is ${r.state} (more approvals needed).`;
}

function decidedTable(rows) {
  if (!rows.length) return h("p", { class: "hint" }, "None yet.");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Request", "Requester", "Connection", "Statement", "State", "By"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("td", {}, h("code", {}, r.id)),
      h("td", {}, r.requester.subject),
      h("td", {}, r.connection),
      h("td", { class: "clip" }, h("code", {}, r.text)),
      h("td", {}, badge(r.state, r.state)),
      h("td", {}, r.votes.map((v) => `${v.approver}${v.comment ? ` (${v.comment})` : ""}`).join(", ")),
    ))),
  ));
}
