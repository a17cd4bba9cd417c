// Small DOM helpers: elements are built with h(), never from HTML strings,
// so nothing a caller sent (a statement, a reason) can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replaces what `el` holds.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// "3 min ago", "in 25 s".
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const ms = Date.parse(iso) - now;
  const s = Math.round(Math.abs(ms) / 1000);
  const text =
    s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` :
    s < 86400 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` :
    `${Math.floor(s / 86400)} d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

// A time as the reader's clock shows it, with the ISO text as a tooltip.
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return h("time", { datetime: iso, title: iso }, d.toLocaleString());
}

export function duration(us) {
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

// A status line the page announces to screen readers.
export function announce(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err.message || String(err));
}

// Characters that change how text reads without being seen: controls,
// direction overrides and isolates, zero-width characters. An approver must
// see exactly what will run ("Trojan Source"), so each is shown by its code.
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

export function hasHidden(text) {
  HIDDEN.lastIndex = 0;
  return HIDDEN.test(text);
}

// `text` with each hidden character shown as a marked ⟨U+XXXX⟩.
export function visible(text) {
  const out = [];
  let last = 0;
  HIDDEN.lastIndex = 0;
  for (const m of text.matchAll(HIDDEN)) {
    out.push(text.slice(last, m.index));
    const code = m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    out.push(h("mark", { class: "hidden-char", title: "an invisible or direction-changing character" }, `⟨U+${code}⟩`));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

export function hiddenCharsWarning(texts) {
  if (!texts.some(hasHidden)) return null;
  return h("p", { class: "error", role: "alert" },
    "This text holds invisible or direction-changing characters (shown as ⟨U+…⟩): what you read may not be what runs. Decide on the codes shown.");
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}
