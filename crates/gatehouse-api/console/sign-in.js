// Signing in with a token: a service token, an OIDC token, or the admin key.

import { api } from "./api.js";
import { h, errorBox } from "./view.js";
import { signedIn } from "./app.js";

export function signInPage() {
  const token = h("textarea", {
    id: "token", name: "token", rows: 3, required: true, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "token-help",
  });
  const problem = h("div", { id: "sign-in-problem" });
  const form = h("form", { class: "card narrow", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
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
