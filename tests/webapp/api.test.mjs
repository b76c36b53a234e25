// node --test tests/webapp/: the session parts of web/assets/api.js with a stand-in fetch.
import assert from "node:assert/strict";
import test from "node:test";

globalThis.navigator ??= {}; // node 20 has none; without navigator.locks refresh runs alone
globalThis.BroadcastChannel = undefined; // an open channel would keep node running
const calls = [];
let answer = () => new Response(null, { status: 204 });
globalThis.fetch = async (url, opts = {}) => {
  calls.push({ url, opts });
  return answer(url, opts);
};

const { api, refresh, signOut, user } = await import("../../web/assets/api.js");

const json = (status, body) => new Response(JSON.stringify(body), {
  status, headers: { "Content-Type": "application/json" },
});
const signedIn = () => json(200, { access_token: "t", expires_in: 900,
  user: { id: 7, email: "a@example.com", role: "employee" } });

test("a refresh or sign-out that hangs is given up (it would hold the other tabs' refresh)", async () => {
  answer = signedIn;
  calls.length = 0;
  assert.equal(await refresh(), "signed-in");
  await signOut();
  assert.deepEqual(calls.map((c) => c.url), ["/auth/refresh", "/auth/logout"]);
  for (const c of calls) assert.ok(c.opts.signal instanceof AbortSignal, c.url);
});

test("a token that ran out and a refresh without answer keep the session", async () => {
  answer = signedIn;
  assert.equal(await refresh(), "signed-in");
  answer = (url) => (url === "/auth/refresh" ? Promise.reject(new TypeError("offline"))
    : json(401, { error: true, code: "unauthorized", message: "token expired" }));
  await assert.rejects(api("GET", "/reservations"), (err) => {
    assert.match(err.message, /Could not renew your sign-in/);
    return true;
  });
  assert.equal(user().id, 7);
  // A refresh answered 401 ends it.
  answer = (url) => json(401, { error: true, code: "unauthorized",
    message: url === "/auth/refresh" ? "not signed in" : "token expired" });
  await assert.rejects(api("GET", "/reservations"), { status: 401 });
  assert.equal(user(), null);
});

test("a sign-out refused for a refresh cookie sent twice is not a sign-out", async () => {
  answer = signedIn;
  assert.equal(await refresh(), "signed-in");
  answer = () => json(401, { error: true, code: "unauthorized", message: "the refresh cookie "
    + "mr_refresh came more than once (one was set by another host of this site): remove this "
    + "site's cookies in the browser and sign in again" });
  const err = await signOut();
  assert.match(err.message, /more than once/);
  assert.equal(user().id, 7);
  answer = () => json(401, { error: true, code: "unauthorized", message: "missing bearer token" });
  assert.equal(await signOut(), null);
  assert.equal(user(), null);
});
