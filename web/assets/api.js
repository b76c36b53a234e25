// The API client and the session. The access token lives in this module only (memory):
// the refresh token is an HttpOnly cookie scoped to /auth that JavaScript never sees
// (docs/web.md#sign-in). Every request goes to the same origin, through the gateway.

import { nextLink } from "./time.js";

const CSRF_HEADER = { "X-Requested-With": "meeting-rooms" };
// How long a refresh or sign-out may take: one that hangs holds the other tabs' refreshes
// (exclusive()), so it is given up as "no answer" then.
const AUTH_TIMEOUT_MS = 15000;

let accessToken = null;
let currentUser = null;
let refreshTimer = null;
let refreshing = null;
// Bumped whenever the session ends: a refresh that was under way then brings back an answer
// for a session that is gone, which must not sign the page in again.
let epoch = 0;
const listeners = new Set();
const rooms = new Map(); // room id → promise of the room (room() below)
// Tells the app's other tabs of this browser that the sign-in ended here (they share the
// cookie, which is gone).
const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("mr-session") : null;

// An API error: the error body's fields, or a description of an answer that was not one.
export class ApiError extends Error {
  constructor(status, body) {
    const known = body && typeof body === "object" && body.error === true;
    super(known ? String(body.message || body.code) : describeStatus(status));
    this.status = status;
    this.code = known ? body.code : "http_" + status;
    this.details = known && body.details && typeof body.details === "object" ? body.details
      : null;
  }
}

function describeStatus(status) {
  if (status === 599) return "The server could not be reached. Check your connection.";
  if (status === 502 || status === 504) return "The service is not answering. Try again shortly.";
  if (status === 429) return "Too many requests. Wait a moment and try again.";
  return `The server answered ${status}.`;
}

export function user() {
  return currentUser;
}

export function isAdmin() {
  return Boolean(currentUser && currentUser.role === "admin");
}

// fn(user or null) runs whenever the session starts or ends.
export function onSession(fn) {
  listeners.add(fn);
}

function setSession(body) {
  clearTimeout(refreshTimer);
  if (!body) epoch += 1;
  if (body) {
    accessToken = body.access_token;
    currentUser = body.user || currentUser;
    // Renew a minute before the token runs out (at least 10 s from now).
    const ms = Math.max(10, Number(body.expires_in || 900) - 60) * 1000;
    refreshTimer = setTimeout(() => { refresh(); }, ms);
  } else {
    accessToken = null;
    currentUser = null;
    rooms.clear();
  }
  for (const fn of listeners) fn(currentUser);
}

tabs?.addEventListener("message", (e) => {
  if (e.data === "signed-out" && currentUser) setSession(null);
});

// Runs fn with the refresh cookie to itself across this browser's tabs of the app (a refresh
// token is single use: two tabs refreshing at once could revoke the sign-in).
function exclusive(fn) {
  return navigator.locks ? navigator.locks.request("mr-refresh", fn) : fn();
}

// The outcome of the last refresh that did not sign in: {status, retryAfter (s), message}.
let lastFailure = null;

export function refreshFailure() {
  return lastFailure;
}

// POST /auth/refresh with the cookie. One at a time: a refresh token is single use, so two
// requests racing with it would revoke the sign-in. Resolves to "signed-in", "signed-out"
// (401/403: no sign-in) or "failed" (429, 5xx, no answer: whether there is a sign-in is not
// known; refreshFailure() tells why).
/* A cookie request to /auth (refresh, logout): the CSRF header, a time limit, and a status of
 * 599 when no answer came. */
async function authPost(path) {
  try {
    return await fetch(path, {
      method: "POST", credentials: "same-origin", headers: CSRF_HEADER,
      signal: AbortSignal.timeout(AUTH_TIMEOUT_MS),
    });
  } catch {
    return new Response(null, { status: 599 });
  }
}

export function refresh() {
  if (!refreshing) {
    const mine = epoch;
    refreshing = exclusive(async () => {
      const r = await authPost("/auth/refresh");
      // Signed out meanwhile: this answer belongs to a session that is gone.
      if (mine !== epoch) return "signed-out";
      if (r.ok) {
        lastFailure = null;
        setSession(await r.json());
        return "signed-in";
      }
      if (r.status === 401 || r.status === 403) {
        lastFailure = null;
        if (currentUser) setSession(null);
        return "signed-out";
      }
      lastFailure = { status: r.status, retryAfter: Number(r.headers.get("Retry-After")) || 0,
        message: describeStatus(r.status) };
      if (currentUser) { // the token still works for a while: try again before it runs out
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => { refresh(); },
          Math.min(Math.max(lastFailure.retryAfter, 10), 60) * 1000);
      }
      return "failed";
    }).finally(() => { refreshing = null; });
  }
  return refreshing;
}

// POST /auth/logout with the cookie. Resolves to null when signed out (204, or 401 for no
// cookie: the sign-in was gone already), else to an ApiError: then the cookie may still be
// valid, so the session is kept and the user must try again. The 401 for a refresh cookie
// sent more than once (another host of the site set one too) revoked nothing: not signed out.
export async function signOut() {
  if (refreshing) await refreshing;
  const r = await authPost("/auth/logout");
  let body = null;
  if (r.status !== 204) {
    try {
      body = await r.json();
    } catch {
      body = null;
    }
  }
  const repeated = Boolean(body && /more than once/.test(String(body.message)));
  if (r.status === 204 || (r.status === 401 && !repeated)) {
    setSession(null);
    tabs?.postMessage("signed-out");
    return null;
  }
  return new ApiError(r.status, body);
}

// One API call. opts: {body (JSON), ifMatch (a version), headers}. Resolves to
// {status, data, etag, next}; rejects with ApiError. A 401 refreshes the token once and
// repeats the request; a second 401 ends the session, and so does a refresh answered 401/403.
// A refresh that failed otherwise (429, 5xx, no answer) keeps the session: refresh() tries
// again by itself, and this call rejects saying so.
export async function api(method, path, opts = {}) {
  let r = await send(method, path, opts);
  if (r.status === 401) {
    const outcome = await refresh();
    if (outcome === "signed-in") r = await send(method, path, opts);
    else if (outcome === "failed") throw renewalFailed();
  }
  let data = null;
  const type = r.headers.get("Content-Type") || "";
  if (r.status !== 204 && type.startsWith("application/json")) {
    try {
      data = await r.json();
    } catch {
      data = null;
    }
  }
  if (!r.ok) {
    if (r.status === 401 && currentUser) setSession(null);
    throw new ApiError(r.status, data);
  }
  return { status: r.status, data, etag: r.headers.get("ETag"), next: nextLink(r.headers.get("Link")) };
}

// The error of a call whose token had run out and could not be renewed just now.
function renewalFailed() {
  const f = lastFailure || { status: 599, message: describeStatus(599) };
  return new ApiError(f.status, { error: true, code: "renewal_failed",
    message: `Could not renew your sign-in: ${f.message} Retrying shortly; try again then.` });
}

async function send(method, path, { body, ifMatch, headers } = {}) {
  const h = { Accept: "application/json", ...(headers || {}) };
  if (accessToken) h.Authorization = `Bearer ${accessToken}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (ifMatch !== undefined && ifMatch !== null) h["If-Match"] = `"${ifMatch}"`;
  try {
    return await fetch(path, {
      method, headers: h, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return new Response(null, { status: 599 });
  }
}

// The pages of a list, following Link rel="next", until max items: {items, more} (more: the
// list goes on past them).
export async function listSome(path, max) {
  const items = [];
  let next = path;
  while (next && items.length < max) {
    const r = await api("GET", next);
    items.push(...r.data);
    next = r.next;
  }
  return { items, more: Boolean(next) };
}

// Every page of a list, up to max items.
export async function listAll(path, max = 1000) {
  return (await listSome(path, max)).items;
}

// Query string of the non-empty values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// A room by id (GET /rooms/{id}), kept for the session; null when it is gone (404). Any other
// failure rejects and is not kept: the next call asks again.
export function room(id) {
  if (!rooms.has(id)) {
    const p = api("GET", `/rooms/${id}`).then((r) => r.data, (err) => {
      if (err.status === 404) return null;
      rooms.delete(id);
      throw err;
    });
    rooms.set(id, p);
  }
  return rooms.get(id);
}

export function forgetRoom(id) {
  rooms.delete(id);
}
