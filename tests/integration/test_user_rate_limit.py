"""Sign-in endpoints are rate limited per client address (RATE_LIMIT_AUTH_PER_MINUTE), POST
/auth/refresh and /auth/logout with a bucket of their own (RATE_LIMIT_REFRESH_PER_MINUTE): the
request over the limit gets 429 rate_limited with Retry-After; other clients and other paths are
not affected.  Behind the gateway the client address is the X-Real-IP header the gateway sets,
believed only when the TCP peer is listed in TRUSTED_GATEWAYS; from anyone else headers change
nothing.  Clients connect from different loopback source addresses (127.0.0.0/8 is all local)."""
import http.client
import json

import requests

from harness import Gateway, bearer, operator_token


def refresh(port, source, headers=None, path="/auth/refresh"):
    """POST path on 127.0.0.1:port from the loopback address source; returns (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
    try:
        conn.request("POST", path, body=b'{"refresh_token":"x"}',
                     headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_auth_rate_limit_per_client(stack):
    svc = stack.user_service(tag="ratelimit", RATE_LIMIT_AUTH_PER_MINUTE="5",
                             RATE_LIMIT_REFRESH_PER_MINUTE="5", TRUSTED_GATEWAYS="127.0.0.1")
    svc.start()
    try:
        url = f"{svc.url}/auth/refresh"
        client = {"X-Real-IP": "203.0.113.7"}
        codes = [requests.post(url, json={"refresh_token": "x"}, headers=client).status_code
                 for _ in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429, codes
        r = requests.post(url, json={"refresh_token": "x"}, headers=client)
        assert r.status_code == 429
        body = r.json()
        assert body["code"] == "rate_limited" and body["status_code"] == 429
        assert "203.0.113.7" in body["message"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        # Another client still gets through; so does the limited one on other paths.
        r = requests.post(url, json={"refresh_token": "x"}, headers={"X-Real-IP": "198.51.100.9"})
        assert r.status_code == 401
        token, _ = operator_token(svc, "ratelimit@example.com")
        r = requests.get(f"{svc.url}/users/profile", headers={**bearer(token), **client})
        assert r.status_code == 200
        # Logout shares refresh's bucket; the sign-in paths have their own.
        r = requests.post(f"{svc.url}/auth/logout", json={}, headers=client)
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        r = requests.get(f"{svc.url}/auth/google/callback", headers=client)
        assert r.status_code == 400
        assert "http_rate_limited_total" in requests.get(f"{svc.url}/metrics").text
    finally:
        assert svc.stop() == 0


def test_forwarded_for_is_ignored_unless_trusted(stack):
    svc = stack.user_service(tag="ratelimit-untrusted", RATE_LIMIT_AUTH_PER_MINUTE="2",
                             RATE_LIMIT_REFRESH_PER_MINUTE="2",
                             TRUSTED_GATEWAYS="")
    svc.start()
    try:
        url = f"{svc.url}/auth/refresh"
        # Spoofed X-Forwarded-For / X-Real-IP values do not buy fresh buckets: the peer counts.
        codes = [requests.post(url, json={"refresh_token": "x"},
                               headers={"X-Forwarded-For": f"192.0.2.{i}",
                                        "X-Real-IP": f"198.51.100.{i}"}).status_code
                 for i in range(3)]
        assert codes == [401, 401, 429], codes
    finally:
        assert svc.stop() == 0


def test_real_ip_from_an_untrusted_peer_is_ignored(stack):
    svc = stack.user_service(tag="ratelimit-gw-untrusted", RATE_LIMIT_AUTH_PER_MINUTE="3",
                             RATE_LIMIT_REFRESH_PER_MINUTE="3",
                             TRUSTED_GATEWAYS="127.0.0.2/31")
    svc.start()
    try:
        # 127.0.0.1 is not a gateway: each request names another client, the peer's bucket
        # empties all the same.
        answers = [refresh(svc.port, "127.0.0.1", {"X-Real-IP": f"203.0.113.{i}"})
                   for i in range(4)]
        assert [status for status, _ in answers] == [401, 401, 401, 429], answers
        body = answers[3][1]
        assert body["code"] == "rate_limited" and "127.0.0.1" in body["message"], body
        # From a gateway the header picks the bucket: 127.0.0.1's is empty, others are not.
        assert refresh(svc.port, "127.0.0.2", {"X-Real-IP": "127.0.0.1"})[0] == 429
        assert refresh(svc.port, "127.0.0.2", {"X-Real-IP": "203.0.113.1"})[0] == 401
    finally:
        assert svc.stop() == 0


def test_real_ip_from_a_trusted_gateway_names_the_client(stack):
    svc = stack.user_service(tag="ratelimit-gw-trusted", RATE_LIMIT_AUTH_PER_MINUTE="3",
                             RATE_LIMIT_REFRESH_PER_MINUTE="3",
                             TRUSTED_GATEWAYS="10.0.0.0/8, 127.0.0.2/31")
    svc.start()
    try:
        a, b = {"X-Real-IP": "203.0.113.7"}, {"X-Real-IP": "198.51.100.9"}
        # Both gateways (127.0.0.2 and 127.0.0.3) speak for the same client: one bucket.
        statuses = [refresh(svc.port, gw, a)[0] for gw in ("127.0.0.2", "127.0.0.3", "127.0.0.2")]
        assert statuses == [401, 401, 401], statuses
        status, body = refresh(svc.port, "127.0.0.3", a)
        assert status == 429 and body["code"] == "rate_limited", body
        assert "203.0.113.7" in body["message"], body
        # Another client behind the same gateway has a bucket of its own.
        assert [refresh(svc.port, "127.0.0.2", b)[0] for _ in range(3)] == [401] * 3
        assert refresh(svc.port, "127.0.0.2", b)[0] == 429
        # The gateway's own requests (no header) and a header naming no address count for the
        # gateway itself.
        own = ({}, {"X-Real-IP": "not-an-address"}, {"X-Real-IP": "203.0.113.7, 1.2.3.4"})
        assert [refresh(svc.port, "127.0.0.2", h)[0] for h in own] == [401] * 3
        status, body = refresh(svc.port, "127.0.0.2")
        assert status == 429 and "127.0.0.2" in body["message"], body
    finally:
        assert svc.stop() == 0


def test_behind_the_gateway_each_client_has_its_own_bucket(stack, tmp_path):
    """The real path: clients -> nginx (scripts/nginx.sh, its own limit set out of the way) ->
    user-service trusting the gateway's address 127.0.0.1."""
    svc = stack.user_service(tag="ratelimit-behind-gw", RATE_LIMIT_AUTH_PER_MINUTE="3",
                             RATE_LIMIT_REFRESH_PER_MINUTE="3",
                             TRUSTED_GATEWAYS="127.0.0.1")
    svc.start()
    gw = Gateway(str(tmp_path), name="gw-ratelimit",
                 env={"GATEWAY_AUTH_PER_MINUTE": "1000", "GATEWAY_AUTH_BURST": "1000"})
    gw.start(svc.port, svc.port, svc.port)
    try:
        a, b = "127.0.0.8", "127.0.0.9"
        assert [refresh(gw.port, a)[0] for _ in range(3)] == [401] * 3
        status, body = refresh(gw.port, a)
        # user-service's own limiter, for client a only.
        assert status == 429 and body["code"] == "rate_limited", body
        assert "127.0.0.8" in body["message"], body
        assert refresh(gw.port, b)[0] == 401
        # A client cannot choose its bucket through the gateway either.
        assert refresh(gw.port, a, {"X-Real-IP": "127.0.0.10", "X-Forwarded-For": "127.0.0.10"}
                       )[0] == 429
    finally:
        gw.stop()
        assert svc.stop() == 0


def test_sign_in_and_refresh_limits_are_separate(stack):
    """The web app's refreshes and sign-outs (their own, larger limit by default) do not use up a
    client's sign-ins, nor the other way round (review 16a M2)."""
    svc = stack.user_service(tag="ratelimit-split", RATE_LIMIT_AUTH_PER_MINUTE="2",
                             RATE_LIMIT_REFRESH_PER_MINUTE="4", TRUSTED_GATEWAYS="127.0.0.1")
    svc.start()
    try:
        a, b = {"X-Real-IP": "203.0.113.21"}, {"X-Real-IP": "203.0.113.22"}
        callback = f"{svc.url}/auth/google/callback"
        assert [requests.get(callback, headers=a).status_code for _ in range(3)] == \
            [400, 400, 429]
        # Refresh and logout: 4, whichever of the two.
        codes = [requests.post(f"{svc.url}{path}", json={"refresh_token": "x"},
                               headers=a).status_code
                 for path in ("/auth/refresh", "/auth/logout", "/auth/refresh", "/auth/refresh")]
        assert codes == [401] * 4, codes
        r = requests.post(f"{svc.url}/auth/logout", json={"refresh_token": "x"}, headers=a)
        assert r.status_code == 429 and r.json()["code"] == "rate_limited", r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 15
        # b spends its refreshes first: its sign-ins are still there.
        assert [requests.post(f"{svc.url}/auth/refresh", json={"refresh_token": "x"},
                              headers=b).status_code for _ in range(5)] == [401] * 4 + [429]
        r = requests.get(f"{svc.url}/auth/google/login", allow_redirects=False, headers=b)
        assert r.status_code == 302, r.text
    finally:
        assert svc.stop() == 0
