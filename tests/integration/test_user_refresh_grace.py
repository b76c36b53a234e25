"""Issue 11 item 6: a refresh repeated within REFRESH_REUSE_GRACE_SECONDS (default 30) of its
rotation — the client lost the answer on a flaky network — gets the same successor (the same
refresh token, a fresh access token) instead of revoking the sign-in; later, after the successor
was used, or with the grace set to 0, a rotated token presented again still revokes its whole
family (docs/api.md#user-service)."""
import hashlib
import threading

import pytest
import requests

from harness import assert_error, bearer, db_exec, decode_jwt_payload, login


def refresh(url, token):
    return requests.post(f"{url}/auth/refresh", json={"refresh_token": token}, timeout=30)


def sign_in(url, email):
    r = login(url, email)
    assert r.status_code == 200, r.text
    return r.json()


def sql(stack, query, *args):
    return db_exec(stack.pg, "user_db", query, *args)


def age_rotation(stack, token, seconds):
    """Moves the rotation of token seconds into the past (as if the repeat came that late)."""
    n, _ = sql(stack, "UPDATE refresh_tokens SET used_at = used_at - make_interval(secs => %s) "
                      "WHERE token_hash = %s AND used_at IS NOT NULL",
               seconds, hashlib.sha256(token.encode()).hexdigest())
    assert n == 1


@pytest.fixture(scope="module")
def grace_url(stack):
    """A user-service with the default grace period (the suite's own runs with 0)."""
    svc = stack.user_service(tag="refresh-grace")
    del svc.env["REFRESH_REUSE_GRACE_SECONDS"]
    svc.start()
    yield svc.url
    svc.stop()


def test_repeat_within_grace_returns_the_same_successor(grace_url):
    s = sign_in(grace_url, "grace.inside@example.com")
    first = refresh(grace_url, s["refresh_token"])
    assert first.status_code == 200, first.text
    again = refresh(grace_url, s["refresh_token"])
    assert again.status_code == 200, again.text
    a, b = first.json(), again.json()
    assert set(b) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    # The same refresh token; a fresh access token for the same user.
    assert b["refresh_token"] == a["refresh_token"] != s["refresh_token"]
    assert b["access_token"] != a["access_token"]
    assert decode_jwt_payload(b["access_token"])["jti"] != decode_jwt_payload(
        a["access_token"])["jti"]
    assert b["user"] == a["user"]
    assert requests.get(f"{grace_url}/users/me", headers=bearer(b["access_token"])).status_code \
        == 200
    # The successor rotates normally, once.
    third = refresh(grace_url, b["refresh_token"])
    assert third.status_code == 200, third.text
    # Now the successor is used: the first token coming back is a copy in someone's hands,
    # grace or not — the whole sign-in ends.
    assert_error(refresh(grace_url, s["refresh_token"]), 401, "unauthorized")
    assert_error(refresh(grace_url, third.json()["refresh_token"]), 401, "unauthorized")


def test_grace_is_measured_from_the_rotation(stack, grace_url):
    # 25 s after the rotation: still the same successor (and repeats do not extend it) …
    s = sign_in(grace_url, "grace.edge@example.com")
    successor = refresh(grace_url, s["refresh_token"]).json()["refresh_token"]
    age_rotation(stack, s["refresh_token"], 25)
    r = refresh(grace_url, s["refresh_token"])
    assert r.status_code == 200 and r.json()["refresh_token"] == successor, r.text
    # … 31 s after it, outside the default 30 s: the family is revoked.
    age_rotation(stack, s["refresh_token"], 6)
    assert_error(refresh(grace_url, s["refresh_token"]), 401, "unauthorized",
                 mentions="revoked")
    assert_error(refresh(grace_url, successor), 401, "unauthorized")


def test_repeat_outside_a_short_grace_revokes(stack):
    import time
    # 5 s: the repeat below comes after a sign-in and a refresh, on a possibly loaded machine.
    svc = stack.user_service(tag="refresh-grace-5", REFRESH_REUSE_GRACE_SECONDS="5").start()
    try:
        s = sign_in(svc.url, "grace.short@example.com")
        successor = refresh(svc.url, s["refresh_token"]).json()["refresh_token"]
        assert refresh(svc.url, s["refresh_token"]).json()["refresh_token"] == successor
        time.sleep(6)
        assert_error(refresh(svc.url, s["refresh_token"]), 401, "unauthorized")
        assert_error(refresh(svc.url, successor), 401, "unauthorized")
    finally:
        svc.stop()


def test_grace_zero_revokes_at_once(user_url):
    # The suite's user-service runs with REFRESH_REUSE_GRACE_SECONDS=0: the old rule.
    s = sign_in(user_url, "grace.zero@example.com")
    successor = refresh(user_url, s["refresh_token"]).json()["refresh_token"]
    assert_error(refresh(user_url, s["refresh_token"]), 401, "unauthorized", mentions="revoked")
    assert_error(refresh(user_url, successor), 401, "unauthorized")


def test_no_grace_after_the_successor_was_logged_out(grace_url):
    s = sign_in(grace_url, "grace.logout@example.com")
    rotated = refresh(grace_url, s["refresh_token"]).json()
    r = requests.post(f"{grace_url}/auth/logout", json={"refresh_token": rotated["refresh_token"]},
                      headers=bearer(rotated["access_token"]))
    assert r.status_code == 204
    assert_error(refresh(grace_url, s["refresh_token"]), 401, "unauthorized")


def concurrently(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_repeats_get_one_successor(grace_url):
    s = sign_in(grace_url, "grace.concurrent@example.com")
    results = concurrently(8, lambda: refresh(grace_url, s["refresh_token"]))
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
    tokens = {r.json()["refresh_token"] for r in results}
    assert len(tokens) == 1 and s["refresh_token"] not in tokens
    assert len({r.json()["access_token"] for r in results}) == 8
    assert refresh(grace_url, tokens.pop()).status_code == 200


def test_concurrent_repeats_without_grace_revoke(user_url):
    # Grace 0: one presentation rotates, every other one is a re-use and ends the sign-in —
    # including the token the winner just got.
    s = sign_in(user_url, "grace.concurrent.zero@example.com")
    results = concurrently(6, lambda: refresh(user_url, s["refresh_token"]))
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [401] * 5, [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()
    assert_error(refresh(user_url, winner["refresh_token"]), 401, "unauthorized")


def test_successor_is_not_stored_in_clear(stack, grace_url):
    s = sign_in(grace_url, "grace.sealed@example.com")
    successor = refresh(grace_url, s["refresh_token"]).json()["refresh_token"]
    _, rows = sql(stack, "SELECT t::text FROM refresh_tokens t JOIN users u "
                         "ON u.id = t.user_id WHERE u.email = %s", "grace.sealed@example.com")
    assert len(rows) == 2
    dump = " ".join(r[0] for r in rows)
    assert successor not in dump and s["refresh_token"] not in dump
    assert hashlib.sha256(successor.encode()).hexdigest() in dump
    # The next rotation drops the previous box: only the newest rotated token keeps one.
    refresh(grace_url, successor)
    _, rows = sql(stack, "SELECT count(*) FILTER (WHERE successor_box IS NOT NULL) "
                         "FROM refresh_tokens t JOIN users u ON u.id = t.user_id "
                         "WHERE u.email = %s", "grace.sealed@example.com")
    assert rows[0][0] == 1


def test_grace_is_validated(stack):
    # REFRESH_REUSE_GRACE_SECONDS: 0 … 300 (default 30).
    for bad in ("-1", "301", "soon"):
        svc = stack.user_service(tag=f"refresh-grace-{bad}", REFRESH_REUSE_GRACE_SECONDS=bad)
        out = svc.run("token", "--email", "x@example.com", timeout=30)
        assert out.returncode == 2, (out.returncode, out.stderr)
        assert "REFRESH_REUSE_GRACE_SECONDS" in out.stderr, out.stderr
