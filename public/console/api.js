// The admin API from the browser. The credential (admin token or admin API key) lives in this tab's
// sessionStorage only: it goes in the Authorization header, never in a URL, and is gone when the tab is.

const STORAGE_KEY = "fleet-console-credential";
const signedOutListeners = new Set();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function credential() {
  return sessionStorage.getItem(STORAGE_KEY);
}

/**
 * Checks a token or key against the API and keeps it when it is accepted. Resolves to null on
 * success, else to why not (nothing is stored then).
 */
export async function signIn(secret) {
  const candidate = secret.trim();
  const response = await fetch("/api/fleet/console/overview", { headers: { Authorization: `Bearer ${candidate}` }, cache: "no-store" });
  if (response.status === 401) return "That token or key is not accepted.";
  if (!response.ok) return `Sign-in failed: ${response.status} ${response.statusText}`;
  sessionStorage.setItem(STORAGE_KEY, candidate);
  return null;
}

export function signOut() {
  sessionStorage.removeItem(STORAGE_KEY);
  for (const listener of signedOutListeners) listener();
}

export function onSignedOut(listener) {
  signedOutListeners.add(listener);
}

/** The Authorization value for the current credential. */
export function authorization() {
  return `Bearer ${credential() ?? ""}`;
}

/** Calls the admin API; resolves to the parsed JSON, or throws ApiError with the server's message. */
export async function api(method, path, body) {
  const response = await request(method, path, body);
  return response.json();
}

/** The raw response (downloads); errors as api(). */
export async function request(method, path, body) {
  const headers = { Authorization: authorization() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const error = await response.json();
    if (error && typeof error.message === "string" && error.message) message = error.message;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) signOut();
  throw new ApiError(response.status, message);
}

/** A query string from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : "";
}
