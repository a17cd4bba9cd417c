// Sessions: a filterable list, and a session's page with its timeline of
// actions and, for SSH and kubectl exec or attach, the terminal replay.

import { api } from "./api.js";
import { h, fill, when, duration, errorBox, badge, visible } from "./view.js";
import { player } from "./player.js";

const OUTCOMES = [["", "any"], ["refused", "refused or held"], ["masked", "masked"], ["approved", "ran under an approval"]];
const PROTOCOLS = ["", "postgres", "mysql", "http", "mcp", "kubernetes", "ssh"];

function toIso(local) {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

export function sessionsPage(query) {
  const field = (name, label, input) => h("div", { class: "field" }, h("label", { for: `f-${name}` }, label), input);
  const identity = h("input", { id: "f-identity", name: "identity", value: query.get("identity") || "", autocomplete: "off" });
  const connection = h("input", { id: "f-connection", name: "connection", value: query.get("connection") || "", autocomplete: "off" });
  const protocol = h("select", { id: "f-protocol", name: "protocol" },
    PROTOCOLS.map((p) => h("option", { value: p, selected: query.get("protocol") === p }, p || "any")));
  const outcome = h("select", { id: "f-outcome", name: "outcome" },
    OUTCOMES.map(([v, t]) => h("option", { value: v, selected: query.get("outcome") === v }, t)));
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", value: query.get("since_local") || "" });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", value: query.get("until_local") || "" });
  const results = h("div", { id: "session-results", "aria-live": "polite" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter sessions" },
    field("identity", "Identity", identity),
    field("connection", "Connection", connection),
    field("protocol", "Protocol", protocol),
    field("outcome", "Outcome", outcome),
    field("since", "Started after", since),
    field("until", "Started before", until),
    h("div", { class: "field" }, h("button", { type: "submit", class: "primary" }, "Show")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of [["identity", identity], ["connection", connection], ["protocol", protocol], ["outcome", outcome]]) {
      if (el.value.trim()) q.set(k, el.value.trim());
    }
    if (since.value) q.set("since_local", since.value);
    if (until.value) q.set("until_local", until.value);
    location.hash = `#/sessions?${q}`;
  });

  async function load() {
    const q = new URLSearchParams({ limit: "200" });
    for (const k of ["identity", "connection", "protocol", "outcome"]) if (query.get(k)) q.set(k, query.get(k));
    if (query.get("since_local")) q.set("since", toIso(query.get("since_local")));
    if (query.get("until_local")) q.set("until", toIso(query.get("until_local")));
    try {
      const list = await api(`/v1/sessions?${q}`);
      fill(results, sessionTable(list));
    } catch (err) {
      fill(results, errorBox(err));
    }
  }
  load();
  return { el: h("section", { "aria-labelledby": "sessions-title" }, h("h1", { id: "sessions-title" }, "Sessions"), form, results) };
}

function endText(s) {
  if (!s.end) return badge("open", "open");
  return badge(s.end.reason.replaceAll("_", " "), s.end.reason === "client_terminated" ? "" : "warn");
}

function sessionTable(list) {
  if (!list.length) return h("p", { class: "hint" }, "No session matches.");
  return h("div", { class: "table-wrap" }, h("table", { class: "sessions" },
    h("caption", { class: "visually-hidden" }, "Sessions, newest first"),
    h("thead", {}, h("tr", {}, ["Started", "Identity", "Connection", "Protocol", "Client", "Actions", "Ended"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, list.map((s) => h("tr", {},
      h("td", {}, h("a", { href: `#/sessions/${s.id}` }, when(s.started_at))),
      h("td", {}, s.identity.subject),
      h("td", {}, s.connection),
      h("td", {}, s.protocol),
      h("td", {}, s.client_addr),
      h("td", { class: "num" }, String(s.statement_count)),
      h("td", {}, endText(s)),
    ))),
  ));
}

function outcomeOf(a) {
  const o = a.outcome;
  if (o.status === "ok") return h("span", { class: "ok" }, o.command_tag + (o.rows != null ? ` · ${o.rows} rows` : ""));
  if (o.status === "error") return h("span", { class: "refused" }, `${o.sqlstate}: ${o.message}`);
  return h("span", { class: "warn" }, "incomplete");
}

function decisionOf(a) {
  const d = a.decision;
  if (!d) return null;
  // A shadow decision (audit mode) let the action through: not a refusal.
  const kind = d.decision === "allow" ? "" : d.decision === "deny" ? "refused" : "warn";
  return h("span", {}, badge(d.decision.replaceAll("_", " "), kind),
    d.policies.length ? h("span", { class: "hint" }, ` ${d.policies.join(", ")}`) : null,
    d.reason ? h("div", { class: "hint" }, d.reason) : null);
}

function recordingOf(a) {
  const x = a.exchange && a.exchange.stream;
  return x && x.recording ? x : null;
}

export function sessionPage(id, seq) {
  const el = h("section", { "aria-labelledby": "session-title" }, h("h1", { id: "session-title" }, `Session ${id}`));
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  el.appendChild(body);
  let stopPlayer = null;
  (async () => {
    try {
      const s = await api(`/v1/sessions/${encodeURIComponent(id)}`);
      const replay = h("div", { id: "replay" });
      fill(body,
        h("dl", { class: "facts" },
          h("dt", {}, "Identity"), h("dd", {}, s.identity.subject, s.identity.groups.length ? ` (${s.identity.groups.join(", ")})` : ""),
          h("dt", {}, "Connection"), h("dd", {}, `${s.connection} (${s.protocol})`),
          h("dt", {}, "Client"), h("dd", {}, s.client_addr, s.application_name ? ` · ${s.application_name}` : ""),
          h("dt", {}, "Started"), h("dd", {}, when(s.started_at)),
          h("dt", {}, "Ended"), h("dd", {}, s.end ? [when(s.end.ended_at), " ", endText(s), s.end.detail ? ` ${s.end.detail}` : ""] : "still open"),
        ),
        replay,
        h("h2", {}, `Timeline (${s.statements.length} action${s.statements.length === 1 ? "" : "s"})`),
        h("ol", { class: "timeline" }, s.statements.map((a) => {
          const rec = recordingOf(a);
          const masked = a.masking && a.masking.values_masked ? badge(`${a.masking.values_masked} values masked`, "masked") : null;
          return h("li", { class: "action-row", id: `action-${a.seq}` },
            h("div", { class: "when" }, h("span", { class: "seq" }, `#${a.seq}`), " ", when(a.started_at), " · ", duration(a.duration_us)),
            h("pre", { class: "action", dir: "ltr" }, h("code", {}, visible(a.text))),
            a.params.length
              ? h("div", { class: "hint" }, "parameters: ",
                  a.params.map((p, i) => [i ? ", " : "", p === null ? h("em", { class: "null" }, "NULL") : h("code", {}, visible(p))]))
              : null,
            h("div", { class: "result" }, decisionOf(a), " ", outcomeOf(a), " ", masked),
            rec ? h("button", { type: "button", class: "quiet", onclick: () => { location.hash = `#/sessions/${id}/${a.seq}`; } },
              `▶ Replay the terminal (${Math.ceil(rec.recording_bytes / 1024)} KiB)`) : null,
          );
        })),
      );
      if (seq) {
        const a = s.statements.find((x) => String(x.seq) === String(seq));
        if (a && recordingOf(a)) {
          const p = player(`/v1/sessions/${encodeURIComponent(id)}/recordings/${a.seq}`, `Action #${a.seq}: ${a.text}`);
          stopPlayer = p.stop;
          replay.appendChild(p.el);
        } else {
          replay.appendChild(errorBox(new Error(`action #${seq} has no terminal recording`)));
        }
      }
    } catch (err) {
      fill(body, errorBox(err));
    }
  })();
  return { el, stop: () => stopPlayer && stopPlayer() };
}
