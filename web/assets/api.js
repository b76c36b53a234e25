// The API client and the session. The access token lives in this module only (memory):
// the refresh token is an HttpOnly cookie scoped to /auth that JavaScript never sees
// (docs/web.md#sign-in). Every request goes to the same origin, through the gateway.

import { nextLink } from "./time.js";

const CSRF_HEADER = { "X-Requested-With": "meeting-rooms" };

let accessToken = null;
let currentUser = null;
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();

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
  if (body) {
    accessToken = body.access_token;
    currentUser = body.user || currentUser;
    // Renew a minute before the token runs out (at least 10 s from now).
    const ms = Math.max(10, Number(body.expires_in || 900) - 60) * 1000;
    refreshTimer = setTimeout(() => { refresh(); }, ms);
  } else {
    accessToken = null;
    currentUser = null;
  }
  for (const fn of listeners) fn(currentUser);
}

// POST /auth/refresh with the cookie. One at a time: a refresh token is single use, so two
// requests racing with it would revoke the sign-in. Resolves to true when signed in.
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const r = await fetch("/auth/refresh", {
          method: "POST", credentials: "same-origin", headers: CSRF_HEADER,
        });
        if (r.ok) {
          setSession(await r.json());
          return true;
        }
        if (r.status === 401 || r.status === 403) setSession(null);
        return false;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

export async function signOut() {
  try {
    await fetch("/auth/logout", {
      method: "POST", credentials: "same-origin",
      headers: CSRF_HEADER,
    });
  } finally {
    setSession(null);
  }
}

// One API call. opts: {body (JSON), ifMatch (a version), headers}. Resolves to
// {status, data, etag, next}; rejects with ApiError. A 401 refreshes the token once and
// repeats the request; a second 401 ends the session.
export async function api(method, path, opts = {}) {
  let r = await send(method, path, opts);
  if (r.status === 401 && (await refresh())) r = await send(method, path, opts);
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
    if (r.status === 401) setSession(null);
    throw new ApiError(r.status, data);
  }
  return { status: r.status, data, etag: r.headers.get("ETag"), next: nextLink(r.headers.get("Link")) };
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

// Every page of a list, following Link rel="next", up to max items.
export async function listAll(path, max = 1000) {
  const out = [];
  let next = path;
  while (next && out.length < max) {
    const r = await api("GET", next);
    out.push(...r.data);
    next = r.next;
  }
  return out;
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

const rooms = new Map();

// A room by id (GET /rooms/{id}), kept for the session; null when it is gone.
export async function room(id) {
  if (!rooms.has(id)) {
    rooms.set(id, api("GET", `/rooms/${id}`).then((r) => r.data, () => null));
  }
  return rooms.get(id);
}

export function forgetRoom(id) {
  rooms.delete(id);
}
