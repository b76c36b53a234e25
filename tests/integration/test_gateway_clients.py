"""The gateway's view of its clients (helm/meeting-rooms/files/gateway.conf): the client address
it resolves (realip from trusted proxies only) and passes on as one value, the per-address limits
of /auth/* - the sign-in paths, and POST /auth/refresh and /auth/logout in a bucket of their own
(JSON 429 with Retry-After; one client being limited does not limit another) - and retries of
GET/HEAD - only those - when a service drops the connection.

Most tests run a private gateway in front of an echo server that answers with what it received
(the headers a service would see, how often a request arrived); clients connect from different
loopback source addresses (127.0.0.0/8 is all local).  The last test runs against the suite's
stack with the chart's default limits (sign-in 30 a minute, burst 30; refresh and logout 600 a
minute, burst 600)."""
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Gateway, free_port

RATE, BURST = 6, 2           # the private gateway: 1 + 2 at once, then one every 10 s
# ... and for refresh and logout the same numbers, in a zone of their own
TRUSTED_PROXY = "127.0.0.1"  # stands for the Ingress controller in front of the gateway


class Echo(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it.  `X-Test-Drop: TOKEN:N` makes it close the
    connection without an answer the first N times TOKEN arrives."""
    protocol_version = "HTTP/1.1"
    attempts = {}
    lock = threading.Lock()

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        drop = self.headers.get("X-Test-Drop")
        if drop:
            token, n = drop.rsplit(":", 1)
            with self.lock:
                seen = self.attempts[token] = self.attempts.get(token, 0) + 1
            if seen <= int(n):
                self.close_connection = True
                return
        body = json.dumps({
            "method": self.command,
            "path": self.path,
            "x_real_ip": self.headers.get_all("X-Real-IP") or [],
            "x_forwarded_for": self.headers.get_all("X-Forwarded-For") or [],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(echo, tmp_path_factory):
    port = echo.server_address[1]
    gw = Gateway(str(tmp_path_factory.mktemp("gw-clients")), env={
        "GATEWAY_TRUSTED_PROXIES": TRUSTED_PROXY,
        "GATEWAY_AUTH_PER_MINUTE": str(RATE),
        "GATEWAY_AUTH_BURST": str(BURST),
        "GATEWAY_REFRESH_PER_MINUTE": str(RATE),
        "GATEWAY_REFRESH_BURST": str(BURST),
    })
    gw.start(port, port, port)
    yield gw
    gw.stop()


def call(gw, method, path, source, headers=None, body=None):
    """One request from the loopback address source; returns (status, headers, parsed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        return r.status, r.headers, (json.loads(raw) if raw else None)
    finally:
        conn.close()


# --- the client address ---------------------------------------------------------------------

def test_untrusted_peer_cannot_forge_its_address(gateway):
    status, _, seen = call(gateway, "GET", "/rooms", "127.0.0.4", {
        "X-Forwarded-For": "203.0.113.5, 198.51.100.6", "X-Real-IP": "203.0.113.7"})
    assert status == 200
    # The service gets the peer's address once, in both headers, never the forged values.
    assert seen["x_real_ip"] == ["127.0.0.4"]
    assert seen["x_forwarded_for"] == ["127.0.0.4"]


def test_trusted_proxy_passes_the_client_address(gateway):
    status, _, seen = call(gateway, "GET", "/users/profile", TRUSTED_PROXY,
                           {"X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    assert seen["x_real_ip"] == ["203.0.113.9"] and seen["x_forwarded_for"] == ["203.0.113.9"]
    # Recursive: trusted hops on the right are skipped, entries left of the client (written by
    # the client itself) are not believed.
    status, _, seen = call(gateway, "GET", "/users/profile", TRUSTED_PROXY,
                           {"X-Forwarded-For": "192.0.2.66, 203.0.113.9, 127.0.0.1"})
    assert seen["x_real_ip"] == ["203.0.113.9"] and seen["x_forwarded_for"] == ["203.0.113.9"]
    # Without the header the proxy itself is the client.
    status, _, seen = call(gateway, "GET", "/users/profile", TRUSTED_PROXY)
    assert seen["x_real_ip"] == [TRUSTED_PROXY]


# --- the /auth/* limit per client address ------------------------------------------------------

def assert_rate_limited(status, headers, body):
    assert status == 429, (status, body)
    assert body["error"] is True and body["code"] == "rate_limited"
    assert body["status_code"] == 429
    assert body["request_id"] == headers["X-Request-ID"]
    assert headers["Content-Type"].startswith("application/json")
    assert int(headers["Retry-After"]) == 60 // RATE


def test_one_limited_client_does_not_limit_another(gateway):
    a, b = "127.0.0.2", "127.0.0.3"
    statuses = [call(gateway, "POST", "/auth/refresh", a, {"Content-Type": "application/json"},
                     b'{"refresh_token":"x"}')[0] for _ in range(1 + BURST)]
    assert statuses == [200] * (1 + BURST)
    assert_rate_limited(*call(gateway, "POST", "/auth/refresh", a))
    assert_rate_limited(*call(gateway, "POST", "/auth/logout", a))
    # Another address is still served, also when it names the limited one in X-Forwarded-For,
    # and the limited one cannot escape by naming another.
    assert call(gateway, "POST", "/auth/refresh", b)[0] == 200
    assert call(gateway, "POST", "/auth/refresh", b, {"X-Forwarded-For": a})[0] == 200
    assert_rate_limited(*call(gateway, "POST", "/auth/refresh", a,
                              {"X-Forwarded-For": "198.51.100.1"}))
    # Only /auth/* is limited.
    assert call(gateway, "GET", "/users/profile", a)[0] == 200
    assert call(gateway, "GET", "/rooms", a)[0] == 200
    # Behind the trusted proxy the limit is the client's, not the proxy's.
    assert_rate_limited(*call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                              {"X-Forwarded-For": a}))
    assert call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                {"X-Forwarded-For": "203.0.113.50"})[0] == 200


def test_ipv6_clients_are_limited_per_64(gateway):
    """An IPv6 subscriber has a /64 of addresses: nginx counts them as one client (spelt any
    way: the key comes from nginx's canonical text), while the service still sees the address
    itself.  Another /64, and an IPv4-mapped address, are other clients."""
    net = ["2001:db8:77:1::1", "2001:DB8:77:1:0:0:0:2", "2001:db8:77:1:ffff:ffff:ffff:ffff",
           "2001:db8:77:1:abcd::"]
    statuses = [call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                     {"X-Forwarded-For": net[i % len(net)]})[0] for i in range(1 + BURST)]
    assert statuses == [200] * (1 + BURST)
    for addr in net:
        assert_rate_limited(*call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                                  {"X-Forwarded-For": addr}))
    status, _, seen = call(gateway, "GET", "/auth/google/login", TRUSTED_PROXY,
                           {"X-Forwarded-For": "2001:db8:77:2::1"})
    assert status == 200 and seen["x_real_ip"] == ["2001:db8:77:2::1"]
    # The compressed forms where "::" reaches into the first four groups.
    for a, b in [("2001:db8::1", "2001:db8:0:0:5:6:7:8"),     # "2001:db8::5:6:7:8"
                 ("2001::1:2:3:4:5", "2001:0:0:1:ffff::1"),   # /64 = 2001:0:0:1
                 ("::1:2:3:4:5", "0:0:0:1:9::9")]:            # /64 = 0:0:0:1
        assert [call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                     {"X-Forwarded-For": a})[0] for _ in range(1 + BURST)] == [200] * (1 + BURST)
        assert_rate_limited(*call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                                  {"X-Forwarded-For": b}))
    assert call(gateway, "POST", "/auth/refresh", TRUSTED_PROXY,
                {"X-Forwarded-For": "::ffff:198.51.100.77"})[0] == 200


def test_sign_in_and_refresh_have_separate_buckets(gateway):
    """The web app's refreshes and sign-outs do not use up the sign-in budget, nor the other way
    round; refresh and logout share one bucket (review 16a M2)."""
    c, d = "127.0.0.12", "127.0.0.13"
    sign_in = [call(gateway, "GET", "/auth/google/login", c)[0] for _ in range(1 + BURST)]
    assert sign_in == [200] * (1 + BURST)
    assert_rate_limited(*call(gateway, "GET", "/auth/google/callback", c))
    # The two paths (and the forms nginx normalises to them) are the other bucket.
    assert [call(gateway, "POST", path, c)[0]
            for path in ("/auth/refresh", "/auth/logout/", "//auth//refresh")] == [200] * 3
    assert_rate_limited(*call(gateway, "POST", "/auth/logout", c))
    assert_rate_limited(*call(gateway, "POST", "/auth/refresh", c))
    assert_rate_limited(*call(gateway, "GET", "/auth/google/login", c))
    # And the other way round: a client that spent its refreshes can still sign in.
    assert [call(gateway, "POST", "/auth/refresh", d)[0] for _ in range(1 + BURST)] == \
        [200] * (1 + BURST)
    assert_rate_limited(*call(gateway, "POST", "/auth/logout", d))
    assert call(gateway, "GET", "/auth/google/login", d)[0] == 200
    # Only these two paths: a longer one is a sign-in path.
    assert call(gateway, "POST", "/auth/refreshx", d)[0] == 200


# --- retries -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_idempotent_requests_are_retried_once_on_a_dropped_connection(gateway, method):
    token = f"retry-{method}"
    status, _, body = call(gateway, method, "/rooms/1", "127.0.0.5",
                           {"X-Test-Drop": f"{token}:1"})
    assert status == 200
    if method == "GET":
        assert body["path"] == "/rooms/1"
    assert Echo.attempts[token] == 2


def test_retries_are_bounded(gateway):
    status, _, body = call(gateway, "GET", "/reservations", "127.0.0.5",
                           {"X-Test-Drop": "retry-bounded:99"})
    assert status == 502 and body["code"] == "bad_gateway"
    assert Echo.attempts["retry-bounded"] == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_never_repeated(gateway, method):
    token = f"once-{method}"
    status, _, body = call(gateway, method, "/rooms/1", "127.0.0.5",
                           {"X-Test-Drop": f"{token}:1", "Content-Type": "application/json"},
                           b"{}")
    assert status == 502 and body["code"] == "bad_gateway"
    assert Echo.attempts[token] == 1


# --- the suite's stack: the real user-service behind the default limit ---------------------------

def test_default_auth_limit_through_the_stack(stack):
    gw = stack.gateway
    a, b = "127.0.0.6", "127.0.0.7"
    # A callback without its parameters: user-service's 400, cheap and without side effects.
    callback = ("GET", "/auth/google/callback")
    statuses = [call(gw, *callback, a)[0] for _ in range(34)]
    # user-service answers 400 (its own limiter is off in the suite) until nginx's budget of
    # 1 + 30 is spent; a request or two more may pass as the bucket refills one every 2 s.
    assert statuses[:31] == [400] * 31, statuses
    assert 429 in statuses[31:], statuses
    status, headers, body = call(gw, *callback, a)
    assert status == 429 and body["code"] == "rate_limited"
    assert int(headers["Retry-After"]) == 2
    status, _, body = call(gw, *callback, b)
    assert status == 400 and body["code"] != "rate_limited"


def test_default_refresh_limit_through_the_stack(stack):
    """POST /auth/refresh and /auth/logout: 1 + 600 at once, then 10 a second (Retry-After 1),
    and a client that spent them can still sign in."""
    gw = stack.gateway
    a = "127.0.0.14"
    hdrs, payload = {"Content-Type": "application/json"}, b'{"refresh_token":"not-a-token"}'
    started = time.monotonic()
    statuses = []
    while 429 not in statuses and len(statuses) < 800:
        path = "/auth/refresh" if len(statuses) % 2 else "/auth/logout"
        status, headers, body = call(gw, "POST", path, a, hdrs, payload)
        statuses.append(status)
    elapsed = time.monotonic() - started
    passed = len(statuses) - 1
    # Logout without a bearer answers 401 too; the bucket refills 10 a second meanwhile.
    assert set(statuses[:-1]) == {401} and statuses[-1] == 429, statuses[-3:]
    assert 601 <= passed <= 601 + 10 * elapsed + 1, (passed, elapsed)
    assert body["code"] == "rate_limited" and "retry in 1 s" in body["message"], body
    assert int(headers["Retry-After"]) == 1
    assert call(gw, "GET", "/auth/google/callback", a)[0] == 400
