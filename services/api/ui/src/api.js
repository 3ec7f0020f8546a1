// Every call the page makes: same origin, the session cookie, the CSRF token on changes.
import { reactive } from "vue";

export const session = reactive({
  loaded: false,
  signedIn: false,
  signInRequired: false,
  mode: null,
  identity: null,
  csrfToken: null,
  timezone: "Asia/Shanghai",
  available: false, // false while the service has no /v1/session (the page then acts as the caller the API sees)
});

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body && body.detail ? String(body.detail) : `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter; // seconds, from Retry-After on 429 and 503
  }
}

const CHANGES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Ask the service; resolves to the JSON body, rejects with ApiError (status 0: no answer). */
export async function call(method, path, { query, body } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (CHANGES.has(method) && session.csrfToken) headers["X-CSRF-Token"] = session.csrfToken;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { detail: String(error) });
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401 && session.available && !path.startsWith("/v1/session")) {
      session.signedIn = false;
      window.dispatchEvent(new CustomEvent("drgwatch:signed-out"));
    }
    throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  }
  return data;
}

export const get = (path, query) => call("GET", path, { query });

/** The answer, or null when the endpoint or the thing is not there (404), so the page shows "—". */
export async function getOptional(path, query) {
  try {
    return await get(path, query);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

/** Load who the page acts for (GET /v1/session). */
export async function loadSession() {
  try {
    const body = await get("/v1/session");
    session.available = true;
    session.signedIn = Boolean(body.signed_in);
    session.signInRequired = Boolean(body.sign_in_required);
    session.mode = body.mode || null;
    session.identity = body.identity || null;
    session.csrfToken = body.csrf_token || null;
    if (body.timezone) session.timezone = body.timezone;
  } catch (error) {
    // a service without sign-in answers 404: the API itself decides who the caller is
    session.available = false;
    session.signedIn = true;
    session.signInRequired = false;
    if (error.status !== 404 && error.status !== 405) console.warn("session", error);
  }
  session.loaded = true;
  return session;
}

export async function signIn(name, password) {
  const body = await call("POST", "/v1/session", { body: { name, password } });
  session.available = true;
  session.signedIn = Boolean(body.signed_in);
  session.signInRequired = Boolean(body.sign_in_required);
  session.identity = body.identity || null;
  session.csrfToken = body.csrf_token || null;
  if (body.timezone) session.timezone = body.timezone;
  return body;
}

export async function signOut() {
  await call("DELETE", "/v1/session");
  session.signedIn = false;
  session.identity = null;
  session.csrfToken = null;
}

/** Whether the caller may do `what`: the insurance office and admins review; others act on alerts. */
export function mayReview() {
  const role = session.identity && session.identity.role;
  return !session.available || !role || role === "insurance_office" || role === "admin";
}
