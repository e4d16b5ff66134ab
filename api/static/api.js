// The JSON API client: one fetch wrapper, errors as ApiError with a kind the views can
// turn into a readable state ("offline", "not_found", "auth", "http").

const TOKEN_KEY = "jobtrail.token";

export class ApiError extends Error {
  constructor(message, { kind, status = 0, code = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

/** The bearer token for servers started with API auth (kept in this browser only). */
export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts until reload
  }
}

/** "/api/jobs" + {status: "failed", q: ""} -> "/api/jobs?status=failed" (empty values dropped). */
export function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    query.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** GET a JSON resource; throws ApiError. `signal` aborts (the error is then an AbortError). */
export async function getJson(path, params = {}, { signal } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(apiUrl(path, params), { headers, signal, cache: "no-store" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Cannot reach the jobtrail server. Is `jobtrail serve` running?", {
      kind: "offline",
    });
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    if (err.name === "AbortError") throw err;
    // not JSON (a proxy's error page): handled below by status
  }
  if (response.ok && body !== null) return body;
  const message = body?.error?.message || `${response.status} ${response.statusText}`;
  const code = body?.error?.code || null;
  throw new ApiError(message, { kind: errorKind(response.status), status: response.status, code });
}

/** The kind of error an HTTP status is, for the views' error states. */
function errorKind(status) {
  return status === 404 ? "not_found"
    : status === 401 || status === 403 ? "auth"
    : status >= 500 ? "server"
    : "http";
}

/**
 * Follow a download link sending the API token: a plain link cannot carry the
 * Authorization header, so the file is fetched and handed to the browser as a blob.
 */
export async function downloadWithToken(link) {
  let response;
  try {
    response = await fetch(link.href, { headers: { Authorization: `Bearer ${getToken()}` }, cache: "no-store" });
  } catch {
    throw new ApiError("Cannot reach the jobtrail server. Is `jobtrail serve` running?", { kind: "offline" });
  }
  if (!response.ok) {
    throw new ApiError(`Download failed: ${response.status} ${response.statusText}`,
      { kind: errorKind(response.status), status: response.status });
  }
  const named = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  const save = document.createElement("a");
  save.href = url;
  save.download = named ? named[1] : "";
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export const api = {
  jobs: (params, opts) => getJson("/api/jobs", params, opts),
  job: (id, opts) => getJson(`/api/jobs/${encodeURIComponent(id)}`, {}, opts),
  jobLogs: (id, params, opts) =>
    getJson(`/api/jobs/${encodeURIComponent(id)}/logs`, params, opts),
  logs: (params, opts) => getJson("/api/logs", params, opts),
  stats: (params, opts) => getJson("/api/stats", params, opts),
  trace: (traceId, opts) => getJson(`/api/traces/${encodeURIComponent(traceId)}`, {}, opts),
};
