"""No secret or token ever reaches a log (docs/operations.md#logs).

Named zz so that it runs after every other test of the session: it reads every log the session
wrote — each service instance's (stack.services, restarted and extra instances included), the
gateway's (access and error log) and the OpenID Connect provider's — and looks for the JWT secret,
the Google client secret, the database password, anything shaped like a JWT (every access token
of the session, and every id_token, would match), and the access/refresh tokens, authorization
code and state of sign-ins performed here (directly and through the gateway, the way a browser
comes back in production), also when the gateway's /auth/* limit refuses the callback; and a
calendar feed token, which travels in a query string, also when the gateway cannot reach the
service.
"""
import glob
import http.client
import os
import re
import time
import urllib.parse

import requests

from harness import SECRET, bearer, operator_token, query_of

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
CLIENT_SECRET = "test-client-secret"


def log_files(stack):
    paths = {svc.log_path for svc in stack.services}
    paths |= set(glob.glob(os.path.join(stack.gateway.dir, "*.log")))
    paths.add(os.path.join(stack.oidc.dir, "oidc.log"))
    return sorted(p for p in paths if os.path.exists(p))


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def sign_in(stack, base_url):
    """The real sign-in with login → provider → callback, the callback sent to base_url (the
    service itself, or the gateway as in production where GOOGLE_REDIRECT_URI names the public
    host). Returns (tokens, code, state)."""
    s = requests.Session()
    r = s.get(f"{base_url}/auth/google/login", params={"login_hint": "secrets@example.com"},
              allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    callback = urllib.parse.urlsplit(r.headers["Location"])
    q = query_of(r.headers["Location"])
    url = f"{base_url}{callback.path}?{callback.query}"
    r = s.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text
    return r.json(), q["code"], q["state"]


def exercise(stack, tokens):
    """Sends the tokens everywhere they may go, so that a careless log line would catch them:
    every service with the access token (also a broken one), a refresh, a logout."""
    for svc in (stack.user, stack.room, stack.reservation):
        requests.get(f"{svc.url}/users/profile", headers=bearer(tokens["access_token"]),
                     timeout=10)
        requests.get(f"{svc.url}/rooms", headers=bearer(tokens["access_token"] + "x"),
                     timeout=10)
    requests.get(f"{stack.gateway.url}/rooms", headers=bearer(tokens["access_token"]), timeout=10)
    r = requests.post(f"{stack.user.url}/auth/refresh",
                      json={"refresh_token": tokens["refresh_token"]}, timeout=10)
    assert r.status_code == 200, r.text
    rotated = r.json()
    # A spent refresh token presented again: refused (and the family revoked) — the refusal is
    # logged as a warning, which must not quote the token.
    r = requests.post(f"{stack.user.url}/auth/refresh",
                      json={"refresh_token": tokens["refresh_token"]}, timeout=10)
    assert r.status_code == 401, r.text
    requests.post(f"{stack.user.url}/auth/logout", headers=bearer(rotated["access_token"]),
                  json={"refresh_token": rotated["refresh_token"]}, timeout=10)
    return rotated


def findings(stack, needles, jwt_shapes=True):
    """{path: [what was found]} over every log of the session (needles by value, and anything
    shaped like a JWT unless jwt_shapes is false)."""
    found = {}
    for path in log_files(stack):
        text = read(path)
        hits = [name for name, value in needles.items() if value and value in text]
        jwts = JWT_RE.findall(text) if jwt_shapes else []
        if jwts:
            hits.append(f"{len(jwts)} JWT(s), e.g. {jwts[0][:24]}…")
        if hits:
            found[path] = hits
    return found


def test_no_secret_or_token_in_any_log(stack):
    tokens, code, state = sign_in(stack, stack.user.url)
    rotated = exercise(stack, tokens)
    password = urllib.parse.urlsplit(stack.pg.url).password
    assert password
    needles = {"JWT_SECRET_KEY": SECRET, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
               "database password": password,
               "access token": tokens["access_token"], "refresh token": tokens["refresh_token"],
               "rotated access token": rotated["access_token"],
               "rotated refresh token": rotated["refresh_token"],
               "authorization code": code, "login state": state}
    paths = log_files(stack)
    # (Instances a test only configured, never started, have no log.)
    assert {svc.log_path for svc in (stack.user, stack.room, stack.reservation)} <= set(paths)
    assert any(p.endswith("access.log") for p in paths), paths
    found = findings(stack, needles)
    assert not found, f"secrets in logs: {found}"


def test_no_code_or_state_in_logs_when_signing_in_through_the_gateway(stack):
    """In production the provider sends the browser back through the gateway
    (GOOGLE_REDIRECT_URI is the public host): the callback's code and state pass nginx."""
    tokens, code, state = sign_in(stack, stack.gateway.url)
    needles = {"authorization code": code, "login state": state,
               "access token": tokens["access_token"],
               "refresh token": tokens["refresh_token"]}
    found = findings(stack, needles, jwt_shapes=False)
    assert not found, f"secrets in logs: {found}"


def test_no_feed_token_in_logs_even_when_the_service_is_down(stack):
    """GET /calendars/me.ics?token=… and /calendars/rooms/{id}.ics?token=…
    (docs/api.md#calendar-feeds): the token is in the query
    string, which nginx quotes in its error log when the upstream cannot be reached (502)."""
    gw = stack.gateway.url
    access, _ = operator_token(stack.user, "secrets-feed@example.com")
    r = requests.post(f"{gw}/calendars/me/token", headers=bearer(access), timeout=10)
    assert r.status_code == 201, r.text
    feed = r.json()["token"]
    assert requests.get(f"{gw}/calendars/me.ics", params={"token": feed},
                        timeout=10).status_code == 200
    svc = stack.reservation
    assert svc.stop() == 0
    try:
        r = requests.get(f"{gw}/calendars/me.ics", params={"token": feed}, timeout=30)
        assert r.status_code == 502 and r.json()["code"] == "bad_gateway"
        # A room's feed read by a calendar client carries the token too.
        for path in ("/calendars/rooms/1.ics", "/calendars/rooms/1.ics/"):
            r = requests.get(f"{gw}{path}", params={"token": feed}, timeout=30)
            assert r.status_code == 502 and r.json()["code"] == "bad_gateway"
    finally:
        svc.start()
    time.sleep(1.5)  # the access log is flushed every second
    found = findings(stack, {"feed token": feed}, jwt_shapes=False)
    assert not found, f"secrets in logs: {found}"


def gateway_call(gw, path, source, method="GET"):
    """One request to the gateway from the loopback address source; returns the status."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, headers={"Content-Type": "application/json"},
                     body=b"{}" if method == "POST" else None)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_no_code_or_state_in_logs_when_the_gateway_limits_the_callback(stack):
    """A callback that nginx's /auth/* limit refuses never reaches user-service, so its code and
    state stay usable: nginx must not write its request line (query string included) to the
    error log, as limit_req does at the level limit_req_log_level names."""
    client = "127.0.0.29"  # an address of its own: its bucket is spent here only
    s = requests.Session()
    r = s.get(f"{stack.user.url}/auth/google/login",
              params={"login_hint": "zz-secrets@example.com"}, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    callback = urllib.parse.urlsplit(r.headers["Location"])
    q = query_of(r.headers["Location"])
    # The sign-in bucket: /auth/refresh and /auth/logout have a larger one of their own.
    statuses = [gateway_call(stack.gateway, "/auth/google/login", client) for _ in range(40)]
    assert 429 in statuses, statuses
    assert gateway_call(stack.gateway, f"{callback.path}?{callback.query}", client) == 429
    error_log = os.path.join(stack.gateway.dir, "error.log")
    assert os.path.exists(error_log)
    found = findings(stack, {"authorization code": q["code"], "login state": q["state"]},
                     jwt_shapes=False)
    assert not found, f"secrets in logs: {found}"
