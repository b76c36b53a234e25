"""Sign-in endpoints are rate limited per client address (RATE_LIMIT_AUTH_PER_MINUTE): the
request over the limit gets 429 rate_limited with Retry-After; other clients and other paths are
not affected; behind the gateway (TRUST_FORWARDED_FOR) the address the gateway saw counts."""
import requests

from harness import bearer, operator_token


def test_auth_rate_limit_per_client(stack):
    svc = stack.user_service(tag="ratelimit", RATE_LIMIT_AUTH_PER_MINUTE="5",
                             TRUST_FORWARDED_FOR="true")
    svc.start()
    try:
        url = f"{svc.url}/auth/refresh"
        codes = [requests.post(url, json={"refresh_token": "x"},
                               headers={"X-Forwarded-For": "203.0.113.7"}).status_code
                 for _ in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429, codes
        r = requests.post(url, json={"refresh_token": "x"},
                          headers={"X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 429
        body = r.json()
        assert body["code"] == "rate_limited" and body["status_code"] == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        # Another client still gets through; so does the limited one on other paths.
        r = requests.post(url, json={"refresh_token": "x"},
                          headers={"X-Forwarded-For": "198.51.100.9"})
        assert r.status_code == 401
        token, _ = operator_token(svc, "ratelimit@example.com")
        r = requests.get(f"{svc.url}/users/profile",
                         headers={**bearer(token), "X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 200
        # The login redirect counts too.
        r = requests.get(f"{svc.url}/auth/google/login", allow_redirects=False,
                         headers={"X-Forwarded-For": "203.0.113.7"})
        assert r.status_code == 429
        assert "http_rate_limited_total" in requests.get(f"{svc.url}/metrics").text
    finally:
        assert svc.stop() == 0


def test_forwarded_for_is_ignored_unless_trusted(stack):
    svc = stack.user_service(tag="ratelimit-untrusted", RATE_LIMIT_AUTH_PER_MINUTE="2")
    svc.start()
    try:
        url = f"{svc.url}/auth/refresh"
        # Spoofed X-Forwarded-For values do not buy fresh buckets: the peer address counts.
        codes = [requests.post(url, json={"refresh_token": "x"},
                               headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code
                 for i in range(3)]
        assert codes == [401, 401, 429], codes
    finally:
        assert svc.stop() == 0
