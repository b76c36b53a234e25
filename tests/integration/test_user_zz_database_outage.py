"""The database goes away and comes back (docs/operations.md#faults, 503 unavailable).
Named zz so that it runs last: it stops the session's PostgreSQL (and always restarts it)."""
import requests

from harness import assert_error, bearer, wait_until


def health_503(url):
    """/health once the background database check has noticed the outage (it answers from the
    last result, at most HEALTH_CHECK_INTERVAL_MS old)."""
    def down():
        r = requests.get(f"{url}/health", timeout=15)
        return (r,) if r.status_code == 503 else None  # a 503 Response is falsy itself
    return wait_until(down, timeout=10, interval=0.1, what="/health 503")[0]


def test_database_outage_and_recovery(stack, user_url, admin, admin_headers, employee):
    h = bearer(employee["access_token"])
    assert requests.get(f"{user_url}/users/profile", headers=h).status_code == 200
    try:
        stack.pg.stop()

        r = health_503(user_url)
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) > 0
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "down"
        assert "latency_ms" in body["checks"]["database"]

        r = requests.get(f"{user_url}/ready", timeout=15)
        assert_error(r, 503, "unavailable")
        assert int(r.headers["Retry-After"]) > 0

        r = requests.get(f"{user_url}/live", timeout=15)
        assert r.status_code == 200

        for r in (requests.get(f"{user_url}/users/profile", headers=h, timeout=15),
                  requests.get(f"{user_url}/admin/users", headers=admin_headers, timeout=15),
                  requests.post(f"{user_url}/auth/refresh",
                                json={"refresh_token": employee["refresh_token"]}, timeout=15),
                  requests.get(f"{user_url}/auth/google/login", allow_redirects=False,
                               timeout=15)):
            body = assert_error(r, 503, "unavailable")
            assert int(r.headers["Retry-After"]) > 0
            # No internals (connection strings, libpq messages) in the message.
            assert "postgres" not in body["message"].lower() and "127.0.0.1" not in body["message"]

        # Token checks need no database: a bad token is still 401, not 503.
        r = requests.get(f"{user_url}/users/profile", headers=bearer("garbage"), timeout=15)
        assert_error(r, 401, "unauthorized")
    finally:
        stack.pg.start()

    wait_until(lambda: requests.get(f"{user_url}/health", timeout=5).status_code == 200,
               timeout=30, interval=0.2, what="/health 200 after the database returned")
    assert requests.get(f"{user_url}/ready").status_code == 200
    r = requests.get(f"{user_url}/users/profile", headers=h)
    assert r.status_code == 200 and r.json()["id"] == employee["user"]["id"]
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": employee["refresh_token"]})
    assert r.status_code == 200, r.text
    assert stack.user.proc.poll() is None, "the service must not have restarted or died"


def test_database_crash_and_recovery(stack, user_url, employee):
    h = bearer(employee["access_token"])
    # Warm several pooled connections so that broken ones must be noticed and replaced.
    for _ in range(10):
        assert requests.get(f"{user_url}/users/profile", headers=h).status_code == 200
    try:
        stack.pg.kill()
        r = requests.get(f"{user_url}/users/profile", headers=h, timeout=15)
        assert_error(r, 503, "unavailable")
        assert health_503(user_url).status_code == 503
    finally:
        stack.pg.start()
    wait_until(lambda: requests.get(f"{user_url}/health", timeout=5).status_code == 200,
               timeout=30, interval=0.2, what="/health 200 after the crash")
    for _ in range(10):
        r = requests.get(f"{user_url}/users/profile", headers=h)
        assert r.status_code == 200, r.text


def test_instance_started_without_database_becomes_ready(stack):
    svc = stack.user_service(tag="late-db")
    try:
        stack.pg.stop()
        svc.start(wait_ready=False)
        wait_until(lambda: requests.get(f"{svc.url}/live", timeout=2).status_code == 200,
                   what="/live of the new instance")
        r = requests.get(f"{svc.url}/ready", timeout=15)
        assert_error(r, 503, "unavailable")
        assert requests.get(f"{svc.url}/health", timeout=15).status_code == 503
    finally:
        stack.pg.start()
    wait_until(lambda: requests.get(f"{svc.url}/ready", timeout=5).status_code == 200,
               timeout=30, interval=0.2, what="/ready once the database is up")
    assert svc.stop() == 0, svc.log_tail()
