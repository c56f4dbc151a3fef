// The JSON API: same-origin fetch; the HttpOnly login cookie carries the session.

export class HttpError extends Error {
  constructor(status, detail, extra = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.extra = extra; // the validation problems of a 400, when the server lists them
  }
}

let onUnauthorized = () => {};

/** Called when a request answers 401 (the session ended): back to the login form. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** The response to a same-origin request, once it is known to be OK; an error answer throws
 * an HttpError with the API's detail (a 401 first sends people back to log in). For bodies
 * read as they come (NDJSON); ``api()`` is the JSON case. */
export async function request(path, { method = "GET", body, accept = "application/json", signal, quiet401 = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { accept }, signal };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401 && !quiet401) onUnauthorized();
  if (!res.ok) {
    let detail = res.statusText;
    let extra = null;
    try {
      const body = await res.json();
      detail = body.detail || detail;
      extra = body.extra ?? null;
    } catch {
      // not JSON: keep the status text
    }
    throw new HttpError(res.status, String(detail), extra);
  }
  return res;
}

export async function api(path, options = {}) {
  const res = await request(path, options);
  return res.status === 204 ? null : res.json();
}

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
