"""GET /health answers from the last results of background checks (common/src/health.c,
docs/operations.md#probes): with a dependency that hangs - the identity provider paused with
SIGSTOP, a Kafka "broker" that accepts connections and never answers - every call answers at
once with the failing check reported, and a crowd of /health calls does not stall other
requests.  Before, each call waited for the dependency (1 s for Kafka, 10 s for the provider)
on an HTTP worker."""
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import Oidc, bearer, operator_token, wait_until

# Seconds a /health call may take: loose enough for a loaded 2-core machine and the sanitizer
# build (new connection, Python requests), still half the 1 s a call waited for the Kafka ping
# before (10 s for the provider).
FAST = 0.5


def timed_health(url):
    t0 = time.monotonic()
    r = requests.get(f"{url}/health", timeout=30)
    return r, time.monotonic() - t0


def check_status(url, name):
    return requests.get(f"{url}/health", timeout=30).json()["checks"][name]["status"]


@pytest.fixture()
def blackhole():
    """A TCP port that accepts connections (the kernel completes the handshake) but never
    answers: a paused or blackholed peer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    yield s.getsockname()[1]
    s.close()


def assert_fast_and_failing(url, name, status_code=200, overall="degraded"):
    for _ in range(20):
        r, secs = timed_health(url)
        assert secs < FAST, f"/health took {secs * 1000:.0f} ms"
        assert r.status_code == status_code, r.text
        body = r.json()
        assert body["status"] == overall, body
        check = body["checks"][name]
        assert check["status"] in ("degraded", "down") and check["detail"], body
        assert body["checks"]["database"]["status"] == "ok", body
        for c in body["checks"].values():
            assert c["age_ms"] is None or c["age_ms"] >= 0, body
        time.sleep(0.05)


def test_paused_identity_provider(stack):
    provider = Oidc(os.path.join(stack.workdir, "oidc-paused"))
    provider.start()
    pid = int(open(os.path.join(provider.dir, "oidc.pid")).read())
    # OIDC_JWKS_REFRESH_SECONDS=1: the discovery document is due again at every check, so the
    # check really asks the provider (with an hour's cache it would not notice the pause).
    svc = stack.user_service(tag="health-idp", GOOGLE_DISCOVERY_URL=provider.discovery,
                             OIDC_JWKS_REFRESH_SECONDS="1")
    paused = False
    try:
        svc.start()
        wait_until(lambda: check_status(svc.url, "identity_provider") == "ok", timeout=15,
                   what="identity_provider ok")
        os.kill(pid, signal.SIGSTOP)
        paused = True
        # The next check hangs in the provider call; after one interval it counts as failed.
        wait_until(lambda: check_status(svc.url, "identity_provider") == "degraded", timeout=15,
                   interval=0.1, what="identity_provider degraded")
        assert_fast_and_failing(svc.url, "identity_provider")
        detail = requests.get(f"{svc.url}/health").json()["checks"]["identity_provider"]["detail"]
        assert "no answer for" in detail or "unreachable" in detail, detail
        # Everything else is served as usual meanwhile.
        token, _ = operator_token(svc, "health.idp@example.com")
        r = requests.get(f"{svc.url}/users/profile", headers=bearer(token), timeout=5)
        assert r.status_code == 200
        assert requests.get(f"{svc.url}/ready", timeout=5).status_code == 200

        os.kill(pid, signal.SIGCONT)
        paused = False
        wait_until(lambda: check_status(svc.url, "identity_provider") == "ok", timeout=20,
                   interval=0.1, what="identity_provider ok after the pause")
    finally:
        if paused:
            os.kill(pid, signal.SIGCONT)
        provider.stop()
        assert svc.stop() == 0, svc.log_tail()
    assert "health check identity_provider: degraded" in svc.log_text()
    assert "health check identity_provider: ok again" in svc.log_text()


def test_unanswering_broker_and_a_crowd_of_health_calls(stack, blackhole, admin_headers):
    svc = stack.room_service(tag="health-kafka", KAFKA_BROKER_URL=f"127.0.0.1:{blackhole}")
    try:
        svc.start()
        wait_until(lambda: check_status(svc.url, "kafka") == "degraded", timeout=15,
                   interval=0.1, what="kafka degraded")
        assert_fast_and_failing(svc.url, "kafka")
        body = requests.get(f"{svc.url}/health").json()
        assert "events wait in the outbox" in body["checks"]["kafka"]["detail"], body
        assert body["checks"]["kafka"]["checked_at"] is not None, body

        # 60 concurrent /health calls on 8 worker threads, each on its own connection, and a
        # normal request in the middle of them: nobody waits for the broker.
        def one(_):
            r = requests.get(f"{svc.url}/health", headers={"Connection": "close"}, timeout=30)
            return r.status_code
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=60) as pool:
            crowd = pool.map(one, range(60))
            t1 = time.monotonic()
            r = requests.get(f"{svc.url}/rooms", headers=admin_headers, timeout=30)
            normal = time.monotonic() - t1
            statuses = list(crowd)
        total = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert statuses == [200] * 60, statuses
        # Before, the calls held the 8 workers for 1 s each: about 8 s in all, and the normal
        # request queued behind them for most of that.
        assert normal < 2.0, f"GET /rooms took {normal:.2f} s behind the /health calls"
        assert total < 5.0, f"60 /health calls took {total:.2f} s"
    finally:
        assert svc.stop() == 0, svc.log_tail()
