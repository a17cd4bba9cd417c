// The /v1 API, called with the sign-in's cookie; every change carries the
// sign-in's CSRF value.

let csrf = "";

export function setCsrf(value) {
  csrf = value || "";
}

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// `background`: a page's own poll, which does not keep an idle sign-in alive.
// A POST answered with a file: the file and its name.
export async function download(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Gatehouse-CSRF": csrf },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  if (!res.ok) throw failure(res.status, await res.json().catch(() => null));
  const disposition = res.headers.get("Content-Disposition") || "";
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "download";
  return { blob: await res.blob(), name };
}

export async function api(path, { method = "GET", body, background = false } = {}) {
  const headers = { Accept: "application/json" };
  if (background) headers["X-Gatehouse-Background"] = "1";
  if (method !== "GET") headers["X-Gatehouse-CSRF"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiFailure(0, `the gateway did not answer (${e.message}); check that it is running`);
  }
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw failure(res.status, data);
  return data;
}

// The error an answer carries; a 401 signs the page out.
function failure(status, data) {
  const message = (data && data.error) || `the gateway answered ${status}`;
  if (status === 401) window.dispatchEvent(new CustomEvent("signed-out", { detail: message }));
  return new ApiFailure(status, message);
}
