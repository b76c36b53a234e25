"""Sign-in with the OpenID Connect provider standing in for Google (docs/api.md#user-service)."""
import base64
import hashlib
import time
import urllib.parse

import requests

from harness import assert_error, bearer, decode_jwt_payload, login, operator_token, query_of

PROFILE_KEYS = {"id", "email", "name", "picture", "role", "created_at"}


def start_login(base, email, browser=None):
    """GET /auth/google/login (in browser, a requests.Session that keeps the sign-in cookie);
    returns (response, authorize URL query)."""
    r = (browser or requests).get(f"{base}/auth/google/login", params={"login_hint": email},
                                  allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return r, query_of(r.headers["Location"])


def callback_url(base, email, browser=None):
    """Walks login → provider and returns the callback URL the provider redirects to."""
    r, _ = start_login(base, email, browser)
    r = requests.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def test_login_redirects_to_provider_with_pkce_and_hosted_domain(stack, user_url):
    r, q = start_login(user_url, "alice.login@example.com")
    assert r.headers["X-Request-ID"]
    authorize = urllib.parse.urlsplit(r.headers["Location"])
    assert authorize.path.endswith("/authorize")
    assert str(stack.oidc.port) in authorize.netloc
    assert q["response_type"] == "code"
    assert q["client_id"] == "test-client-id"
    assert q["redirect_uri"] == f"{user_url}/auth/google/callback"
    assert q["scope"] == "openid email profile"
    assert len(q["state"]) >= 16 and len(q["nonce"]) >= 16
    assert q["code_challenge_method"] == "S256"
    assert len(q["code_challenge"]) == 43
    assert set(q["code_challenge"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert q["hd"] == "example.com"
    assert q["login_hint"] == "alice.login@example.com"
    # Every attempt gets its own state, nonce and PKCE pair.
    _, q2 = start_login(user_url, "alice.login@example.com")
    assert q2["state"] != q["state"] and q2["nonce"] != q["nonce"]
    assert q2["code_challenge"] != q["code_challenge"]


def test_login_without_hint_still_redirects(user_url):
    r = requests.get(f"{user_url}/auth/google/login", allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert "login_hint" not in query_of(r.headers["Location"])


def test_new_user_signs_in_as_employee(user_url):
    r = login(user_url, "new.person@example.com")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    user = body["user"]
    assert set(user) == PROFILE_KEYS
    assert user["email"] == "new.person@example.com"
    assert user["role"] == "employee"
    assert user["name"] == "New Person"
    assert user["picture"].startswith("https://")
    assert user["created_at"].endswith("Z")
    claims = decode_jwt_payload(body["access_token"])
    assert claims["sub"] == str(user["id"]) and claims["role"] == "employee"
    assert claims["email"] == user["email"] and claims["iss"] == "meeting-rooms"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    assert claims["iat_ms"] // 1000 == claims["iat"]  # the issue time in milliseconds too
    # The token works.
    me = requests.get(f"{user_url}/users/profile", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json() == user


def test_admin_emails_user_is_admin(stack, admin):
    # ADMIN_EMAILS is " Other@Example.com , BOSS@EXAMPLE.COM ": trimmed, case-insensitive.
    assert admin["user"]["email"] == "boss@example.com"
    assert admin["user"]["role"] == "admin"
    assert decode_jwt_payload(admin["access_token"])["role"] == "admin"


def test_second_login_of_same_email_is_same_user(user_url):
    first = login(user_url, "twice@example.com").json()
    second = login(user_url, "twice@example.com").json()
    assert second["user"]["id"] == first["user"]["id"]
    assert second["user"]["created_at"] == first["user"]["created_at"]
    assert second["refresh_token"] != first["refresh_token"]


def test_login_keeps_name_the_user_chose(user_url):
    first = login(user_url, "renamed.one@example.com").json()
    r = requests.put(f"{user_url}/users/profile", json={"name": "Chosen Name"},
                     headers=bearer(first["access_token"]))
    assert r.status_code == 200, r.text
    again = login(user_url, "renamed.one@example.com").json()
    assert again["user"]["name"] == "Chosen Name"


def test_state_is_single_use(user_url):
    browser = requests.Session()
    url = callback_url(user_url, "replay@example.com", browser)
    assert browser.get(url, allow_redirects=False, timeout=10).status_code == 200
    again = browser.get(url, allow_redirects=False, timeout=10)
    assert_error(again, 400, "bad_request", detail="state")


def test_unknown_state_is_rejected(user_url):
    r = requests.get(f"{user_url}/auth/google/callback",
                     params={"state": "no-such-state", "code": "whatever"}, timeout=10)
    assert_error(r, 400, "bad_request", detail="state")


def test_missing_code_and_state_are_named(user_url):
    r = requests.get(f"{user_url}/auth/google/callback", timeout=10)
    body = assert_error(r, 400, "bad_request")
    assert {"state", "code"} <= set(body["details"])
    r = requests.get(f"{user_url}/auth/google/callback", params={"state": "abc"}, timeout=10)
    body = assert_error(r, 400, "bad_request", detail="code")
    assert "state" not in body["details"]
    r = requests.get(f"{user_url}/auth/google/callback", params={"code": "abc"}, timeout=10)
    body = assert_error(r, 400, "bad_request", detail="state")
    assert "code" not in body["details"]


def test_valid_state_with_missing_code_is_400(user_url):
    _, q = start_login(user_url, "nocode@example.com")
    r = requests.get(f"{user_url}/auth/google/callback", params={"state": q["state"]})
    assert_error(r, 400, "bad_request", detail="code")


def test_provider_refusal_is_401(user_url):
    r = login(user_url, "denied@example.com")
    assert_error(r, 401, "unauthorized", mentions="access_denied")


def test_provider_refusal_spends_the_state(user_url):
    browser = requests.Session()
    _, q = start_login(user_url, "denied.state@example.com", browser)
    r = browser.get(f"{user_url}/auth/google/callback",
                    params={"state": q["state"], "error": "access_denied"})
    assert_error(r, 401, "unauthorized")
    r = browser.get(f"{user_url}/auth/google/callback",
                    params={"state": q["state"], "code": "x"})
    assert_error(r, 400, "bad_request", detail="state")


def test_wrong_hosted_domain_is_403(user_url):
    assert_error(login(user_url, "someone@other.org"), 403, "forbidden")


def test_consumer_account_without_hd_is_403(user_url):
    assert_error(login(user_url, "someone@gmail.com"), 403, "forbidden")


def test_unverified_email_is_403(user_url):
    assert_error(login(user_url, "unverified.person@example.com"), 403, "forbidden")


def test_refused_sign_ins_create_no_user(user_url, admin_headers):
    for email in ("someone@other.org", "unverified.ghost@example.com"):
        login(user_url, email)
        # The whole address: other tests' users may contain "someone" in theirs.
        r = requests.get(f"{user_url}/admin/users", params={"q": email}, headers=admin_headers)
        assert r.status_code == 200 and r.json() == [], r.text


def test_disabled_user_cannot_sign_in(user_url, admin_headers):
    who = login(user_url, "to.disable@example.com").json()
    r = requests.put(f"{user_url}/admin/users/{who['user']['id']}", json={"disabled": True},
                     headers=admin_headers)
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    assert_error(login(user_url, "to.disable@example.com"), 403, "forbidden")
    # Enabled again, the user signs in again.
    r = requests.put(f"{user_url}/admin/users/{who['user']['id']}", json={"disabled": False},
                     headers=admin_headers)
    assert r.status_code == 200
    assert login(user_url, "to.disable@example.com").status_code == 200


def test_pkce_challenge_is_s256_of_a_verifier(user_url):
    # The challenge is base64url(SHA-256(verifier)) without padding: 32 bytes → 43 characters.
    _, q = start_login(user_url, "pkce@example.com")
    raw = base64.urlsafe_b64decode(q["code_challenge"] + "=")
    assert len(raw) == hashlib.sha256().digest_size


def test_expired_state_is_rejected(stack, user_url):
    import psycopg2
    url = callback_url(user_url, "slowpoke@example.com")
    state = query_of(url)["state"]
    conn = psycopg2.connect(stack.pg.dsn("user_db"))
    try:
        with conn, conn.cursor() as cur:  # ten minutes later…
            cur.execute("UPDATE login_states SET expires_at = now() - interval '1 second' "
                        "WHERE state = %s", (state,))
            assert cur.rowcount == 1
    finally:
        conn.close()
    assert_error(requests.get(url, allow_redirects=False), 400, "bad_request", detail="state")


def test_code_of_another_sign_in_is_refused(user_url):
    # State and PKCE verifier of sign-in A with the authorization code of sign-in B.
    browser = requests.Session()
    a = query_of(callback_url(user_url, "mixup.a@example.com", browser))
    b = query_of(callback_url(user_url, "mixup.b@example.com", requests.Session()))
    r = browser.get(f"{user_url}/auth/google/callback",
                    params={"state": a["state"], "code": b["code"]})
    assert r.status_code in (400, 401), r.text
    assert "access_token" not in r.text


def test_user_created_by_operator_is_linked_at_first_sign_in(stack, user_url):
    token, uid = operator_token(stack.user, "precreated@example.com", role="admin",
                                name="Pre Created")
    r = login(user_url, "precreated@example.com")
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    assert user["id"] == uid and user["role"] == "admin" and user["name"] == "Pre Created"
    # Demote again so that the last-admin test is not disturbed by the order of files.
    h = bearer(token)
    requests.put(f"{user_url}/admin/users/{uid}", json={"role": "employee"}, headers=h)


def test_second_listed_admin_email_is_admin(user_url, admin_headers):
    # ADMIN_EMAILS also holds " Other@Example.com " (mixed case, padded).
    r = login(user_url, "other@example.com")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "admin"
    assert decode_jwt_payload(r.json()["access_token"])["role"] == "admin"
    # Not a listed address (prefix/suffix of one) → employee.
    assert login(user_url, "other@example.com.evil.org").status_code == 403
    assert login(user_url, "xother@example.com").json()["user"]["role"] == "employee"
    requests.put(f"{user_url}/admin/users/{r.json()['user']['id']}", json={"role": "employee"},
                 headers=admin_headers)


def test_overlong_login_hint_is_400(user_url):
    r = requests.get(f"{user_url}/auth/google/login", params={"login_hint": "a" * 400 + "@x.org"},
                     allow_redirects=False)
    assert_error(r, 400, "bad_request", detail="login_hint")


def test_id_token_issued_to_another_client_is_refused(user_url, admin_headers):
    # Issue 11 item 5: the provider names us in aud but azp (the authorized party) is another
    # client of the provider: the sign-in is refused and no user is created.
    assert_error(login(user_url, "wrongazp.person@example.com"), 401, "unauthorized")
    r = requests.get(f"{user_url}/admin/users", params={"q": "wrongazp"}, headers=admin_headers)
    assert r.status_code == 200 and r.json() == [], r.text


def test_key_withdrawn_by_provider_stops_being_trusted(stack):
    # Issue 11 item 5: the JWKS is fetched again on a schedule (here every 2 s), not only for an
    # unknown kid, so a key the provider withdrew stops being accepted although no token ever
    # named an unknown kid.
    provider = f"http://127.0.0.1:{stack.oidc.port}"
    svc = stack.user_service(tag="jwks-refresh", OIDC_JWKS_REFRESH_SECONDS="2").start()
    try:
        r = requests.post(f"{provider}/test/keys", timeout=30)
        assert r.status_code == 200, r.text
        kid = r.json()["kid"]
        # Signed with the extra key while it is published: the service fetches and trusts it.
        r = login(svc.url, "extrakey.before@example.com")
        assert r.status_code == 200, r.text
        assert requests.delete(f"{provider}/test/keys/{kid}", timeout=10).status_code == 204
        assert kid not in {k["kid"] for k in requests.get(f"{provider}/jwks").json()["keys"]}
        time.sleep(3)  # past the refresh interval
        r = login(svc.url, "extrakey.after@example.com")
        assert_error(r, 401, "unauthorized")
        assert "id_token refused: unknown signing key" in svc.log_text()
        # The provider's current key still works on that service.
        r = login(svc.url, "after.rotation@example.com")
        assert r.status_code == 200, r.text
    finally:
        svc.stop()


def test_jwks_refresh_interval_is_validated(stack):
    # OIDC_JWKS_REFRESH_SECONDS: 1 … 86400 (default 3600).
    for bad in ("0", "86401", "soon"):
        svc = stack.user_service(tag=f"jwks-refresh-{bad}", OIDC_JWKS_REFRESH_SECONDS=bad)
        out = svc.run("token", "--email", "x@example.com", timeout=30)
        assert out.returncode == 2, (out.returncode, out.stderr)
        assert "OIDC_JWKS_REFRESH_SECONDS" in out.stderr, out.stderr
