// The console's shell: who is signed in, the sections, and the hash routes
// (#/approvals, #/sessions, #/sessions/<id>, #/evidence, #/access).

import { api, setCsrf } from "./api.js";
import { fill, h } from "./view.js";
import { signInPage } from "./sign-in.js";
import { approvalsPage } from "./approvals.js";
import { sessionsPage, sessionPage } from "./sessions.js";
import { evidencePage } from "./evidence.js";
import { accessPage } from "./access.js";

const state = { me: null, stop: null };

export function me() {
  return state.me;
}

async function loadMe() {
  try {
    state.me = await api("/ui/api/me");
    setCsrf(state.me.csrf);
  } catch {
    state.me = null;
  }
  showWho();
}

function showWho() {
  const signedIn = !!state.me;
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  if (signedIn) {
    const roles = Object.entries(state.me.roles).filter(([, v]) => v).map(([k]) => k);
    document.getElementById("who-name").textContent =
      state.me.subject + (roles.length ? ` (${roles.join(", ")})` : "");
  }
}

export async function signedIn(who) {
  state.me = who;
  setCsrf(who.csrf);
  showWho();
  location.hash = "#/approvals";
  await route();
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const decode = (p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  };
  return { parts: path.split("/").filter(Boolean).map(decode), query: new URLSearchParams(query) };
}

async function route() {
  if (state.stop) {
    state.stop();
    state.stop = null;
  }
  const main = document.getElementById("main");
  const { parts, query } = parseHash();
  if (!state.me) {
    fill(main, signInPage(query).el);
    return;
  }
  const section = parts[0] || "approvals";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  let page;
  if (section === "approvals") page = approvalsPage();
  else if (section === "sessions" && parts[1]) page = sessionPage(parts[1], parts[2]);
  else if (section === "sessions") page = sessionsPage(query);
  else if (section === "evidence") page = evidencePage();
  else if (section === "access") page = accessPage();
  else page = { el: h("p", {}, "No such page. ", h("a", { href: "#/approvals" }, "Go to approvals")) };
  state.stop = page.stop || null;
  fill(main, page.el);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
window.addEventListener("signed-out", () => {
  if (!state.me) return;
  state.me = null;
  showWho();
  route();
});

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api("/ui/api/sign-out", { method: "POST" });
  } finally {
    state.me = null;
    setCsrf("");
    showWho();
    location.hash = "#/sign-in";
    route();
  }
});

await loadMe();
await route();
