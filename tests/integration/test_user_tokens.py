"""Refresh-token rotation and logout (docs/api.md#user-service)."""
import threading

import psycopg2
import requests

from harness import assert_error, bearer, db_query, decode_jwt_payload, login, wait_until


def refresh(url, token):
    return requests.post(f"{url}/auth/refresh", json={"refresh_token": token}, timeout=10)


def sign_in(url, email):
    r = login(url, email)
    assert r.status_code == 200, r.text
    return r.json()


# ---- refresh ----

def test_refresh_rotates_both_tokens(user_url, employee):
    r = refresh(user_url, employee["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["refresh_token"] != employee["refresh_token"]
    assert body["access_token"] != employee["access_token"]
    assert body["user"] == employee["user"] | {"name": body["user"]["name"]}
    old = decode_jwt_payload(employee["access_token"])
    new = decode_jwt_payload(body["access_token"])
    assert new["sub"] == old["sub"] and new["jti"] != old["jti"]
    me = requests.get(f"{user_url}/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    # The new refresh token rotates again.
    r2 = refresh(user_url, body["refresh_token"])
    assert r2.status_code == 200, r2.text


def test_reused_refresh_token_revokes_the_family(user_url, employee):
    rotated = refresh(user_url, employee["refresh_token"]).json()
    reuse = refresh(user_url, employee["refresh_token"])
    assert_error(reuse, 401, "unauthorized")
    assert "invalid_token" in reuse.headers.get("WWW-Authenticate", "")
    # The token the legitimate holder got from the rotation is dead too.
    assert_error(refresh(user_url, rotated["refresh_token"]), 401, "unauthorized")


def test_reuse_revokes_only_that_sign_in(user_url):
    a = sign_in(user_url, "two.devices@example.com")
    b = sign_in(user_url, "two.devices@example.com")
    refresh(user_url, a["refresh_token"])
    assert refresh(user_url, a["refresh_token"]).status_code == 401
    assert refresh(user_url, b["refresh_token"]).status_code == 200


def test_garbage_refresh_token_is_401(user_url):
    assert_error(refresh(user_url, "garbage"), 401, "unauthorized")
    assert_error(refresh(user_url, "x" * 512), 401, "unauthorized")


def test_refresh_validation(user_url, employee):
    r = requests.post(f"{user_url}/auth/refresh", json={})
    assert_error(r, 422, "validation_failed", detail="refresh_token", mentions="refresh_token")
    r = requests.post(f"{user_url}/auth/refresh",
                      json={"refresh_token": employee["refresh_token"], "extra": 1})
    assert_error(r, 422, "validation_failed", detail="extra")
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": 42})
    assert_error(r, 422, "validation_failed", detail="refresh_token")
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": ""})
    assert_error(r, 422, "validation_failed", detail="refresh_token")
    # Nothing was consumed by the rejected requests.
    assert refresh(user_url, employee["refresh_token"]).status_code == 200


def test_refresh_picks_up_role_change(user_url, admin_headers, employee):
    uid = employee["user"]["id"]
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"role": "admin"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    try:
        body = refresh(user_url, employee["refresh_token"]).json()
        assert decode_jwt_payload(body["access_token"])["role"] == "admin"
        assert body["user"]["role"] == "admin"
        r = requests.get(f"{user_url}/admin/users", headers=bearer(body["access_token"]))
        assert r.status_code == 200
    finally:
        requests.put(f"{user_url}/admin/users/{uid}", json={"role": "employee"},
                     headers=admin_headers)


def test_refresh_racing_a_disabling_does_not_deadlock(stack, user_url, admin_headers):
    # An admin's disabling locks the user row, then the user's refresh tokens; a refresh must
    # take the same two locks in that order, or the two deadlock (one of them answered 503).
    # The test holds the user row so that the disabling queues for it first and the refresh
    # second; then lets go.
    s = sign_in(user_url, "race.disable@example.com")
    uid = s["user"]["id"]
    answers = {}

    def waiting():
        return db_query(stack.pg, "user_db",
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'user_db' "
                        "AND wait_event_type = 'Lock'")[0][0]

    def run(name, call):
        t = threading.Thread(target=lambda: answers.__setitem__(name, call()))
        t.start()
        return t

    conn = psycopg2.connect(stack.pg.dsn("user_db"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (uid,))
        threads = [run("disable", lambda: requests.put(f"{user_url}/admin/users/{uid}",
                                                       json={"disabled": True},
                                                       headers=admin_headers, timeout=30))]
        wait_until(lambda: waiting() == 1, timeout=10, interval=0.05, what="disabling waits")
        threads.append(run("refresh", lambda: refresh(user_url, s["refresh_token"])))
        wait_until(lambda: waiting() == 2, timeout=10, interval=0.05, what="refresh waits")
    finally:
        conn.rollback()
        conn.close()
    for t in threads:
        t.join(30)
    r = answers["disable"]
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    # The refresh waited for the disabling and saw it.
    assert_error(answers["refresh"], 403, "forbidden", mentions="disabled")
    assert_error(refresh(user_url, s["refresh_token"]), 403, "forbidden")
    assert_error(requests.get(f"{user_url}/users/profile", headers=bearer(s["access_token"]),
                              timeout=10), 401, "token_revoked")


# ---- logout ----

def test_logout_revokes_the_given_token(user_url):
    a = sign_in(user_url, "logout.one@example.com")
    b = sign_in(user_url, "logout.one@example.com")
    r = requests.post(f"{user_url}/auth/logout", json={"refresh_token": a["refresh_token"]},
                      headers=bearer(a["access_token"]))
    assert r.status_code == 204, r.text
    assert r.content == b"" and r.headers["X-Request-ID"]
    assert_error(refresh(user_url, a["refresh_token"]), 401, "unauthorized")
    # The other sign-in is untouched.
    assert refresh(user_url, b["refresh_token"]).status_code == 200


def test_logout_all_revokes_every_session(user_url):
    a = sign_in(user_url, "logout.all@example.com")
    b = sign_in(user_url, "logout.all@example.com")
    b2 = refresh(user_url, b["refresh_token"]).json()
    r = requests.post(f"{user_url}/auth/logout", json={"all": True},
                      headers=bearer(a["access_token"]))
    assert r.status_code == 204, r.text
    assert_error(refresh(user_url, a["refresh_token"]), 401, "unauthorized")
    assert_error(refresh(user_url, b2["refresh_token"]), 401, "unauthorized")


def test_logout_cannot_revoke_someone_elses_token(user_url, employee):
    other = sign_in(user_url, "logout.victim@example.com")
    r = requests.post(f"{user_url}/auth/logout", json={"refresh_token": other["refresh_token"]},
                      headers=bearer(employee["access_token"]))
    assert r.status_code in (204, 403, 404)
    assert refresh(user_url, other["refresh_token"]).status_code == 200


def test_logout_validation(user_url, employee):
    h = bearer(employee["access_token"])
    assert_error(requests.post(f"{user_url}/auth/logout", json={}, headers=h), 422,
                 "validation_failed", detail="refresh_token")
    assert_error(requests.post(f"{user_url}/auth/logout", json={"all": False}, headers=h), 422,
                 "validation_failed", detail="refresh_token")
    assert_error(requests.post(f"{user_url}/auth/logout", json={"all": "yes"}, headers=h), 422,
                 "validation_failed", detail="all")
    assert_error(requests.post(f"{user_url}/auth/logout", json={"everything": True}, headers=h),
                 422, "validation_failed", detail="everything")
    assert refresh(user_url, employee["refresh_token"]).status_code == 200


def test_logout_needs_a_bearer_token(user_url, employee):
    r = requests.post(f"{user_url}/auth/logout", json={"refresh_token": employee["refresh_token"]})
    assert_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert refresh(user_url, employee["refresh_token"]).status_code == 200
