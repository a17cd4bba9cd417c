// Signing in with a token: a service token, an OIDC token, or the admin key.

import { api } from "./api.js";
import { h, errorBox } from "./view.js";
import { signedIn } from "./app.js";

export function signInPage(query = new URLSearchParams()) {
  const token = h("textarea", {
    id: "token", name: "token", rows: 3, required: true, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "token-help",
  });
  const problem = h("div", { id: "sign-in-problem" });
  // An OIDC sign-in that failed comes back here saying why.
  if (query.get("error")) problem.appendChild(errorBox(new Error(query.get("error"))));
  const provider = h("div", { id: "sign-in-provider" });
  api("/ui/api/options").then((o) => {
    if (!o.oidc) return;
    provider.append(
      h("a", { class: "button primary wide", href: "/ui/api/oidc/start", id: "sign-in-oidc" }, `Sign in with ${o.oidc.name}`),
      h("p", { class: "or" }, "or with a token"),
    );
  }).catch(() => {});
  const form = h("form", { class: "card narrow", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    window.isSecureContext
      ? null
      : h("p", { class: "insecure", role: "alert" },
          "This page came over plain HTTP from a non-local address, so the browser will not keep the sign-in cookie. ",
          "Serve the gateway's API behind TLS (a reverse proxy) and open the console over https."),
    provider,
    h("label", { for: "token" }, "Your Gatehouse token"),
    token,
    h("p", { id: "token-help", class: "hint" },
      "A service token (gh_…) or an OIDC token of yours; operators may use the admin key. ",
      "The token stays on the gateway; this browser keeps only a sign-in cookie."),
    problem,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    problem.replaceChildren();
    try {
      const who = await api("/ui/api/sign-in", { method: "POST", body: { token: token.value } });
      token.value = "";
      await signedIn(who);
    } catch (err) {
      problem.appendChild(errorBox(err));
      token.focus();
    }
  });
  queueMicrotask(() => token.focus());
  return { el: form };
}
