"""The identity provider goes away and comes back (docs/api.md#user-service: unreachable → 502).
The provider restarts with new signing keys, so sign-in afterwards also needs the JWKS refetched."""
import requests

from harness import assert_error, login, query_of, wait_until


def test_provider_outage_and_key_rotation(stack, user_url):
    session = login(user_url, "outage.session@example.com").json()
    browser = requests.Session()  # keeps the sign-in cookie
    r = browser.get(f"{user_url}/auth/google/login", params={"login_hint": "outage@example.com"},
                    allow_redirects=False)
    r = requests.get(r.headers["Location"], allow_redirects=False)
    callback = r.headers["Location"]
    assert query_of(callback)["code"]
    try:
        stack.oidc.stop()
        r = browser.get(callback, allow_redirects=False, timeout=30)
        body = assert_error(r, 502, "bad_gateway")
        assert "localhost" not in body["message"]
        # The service itself stays healthy: the provider is not a hard dependency.
        r = requests.get(f"{user_url}/health", timeout=30)
        assert r.status_code == 200
        assert r.json()["checks"]["database"]["status"] == "ok"
        # Existing sessions keep working: refresh needs no provider.
        assert requests.get(f"{user_url}/ready").status_code == 200
        r = requests.post(f"{user_url}/auth/refresh",
                          json={"refresh_token": session["refresh_token"]}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        stack.oidc.start()
    wait_until(lambda: requests.get(stack.oidc.discovery, timeout=2).status_code == 200,
               what="provider discovery")
    r = login(user_url, "after.outage@example.com")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == "after.outage@example.com"
