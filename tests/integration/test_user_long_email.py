"""Issue 11 item 14: e-mail addresses are limited to 320 characters, not bytes.  A 320-character
address of mostly 4-byte characters (1229 bytes) signs in, is made admin through ADMIN_EMAILS,
works in access tokens, is listed and can be set by an admin — whole, never cut in the middle of
a character; one character more is refused (docs/api.md#user-service)."""
import urllib.parse

import pytest
import requests

from harness import assert_error, bearer, decode_jwt_payload, login, operator_token

FRAKTUR_M = "\U0001d52a"  # 4 bytes in UTF-8


def address(chars, tag):
    """An address of exactly chars characters at example.com (the suite's hosted domain)."""
    domain = "@example.com"
    local = tag + FRAKTUR_M * (chars - len(tag) - len(domain))
    return local + domain


LONG = address(320, "long.")


@pytest.fixture(scope="module")
def svc(stack):
    """A user-service whose ADMIN_EMAILS lists the long address besides the usual ones."""
    s = stack.user_service(tag="long-email",
                           ADMIN_EMAILS=f"{stack.ADMIN_EMAIL}, {LONG}")
    s.start()
    yield s
    s.stop()


def test_long_non_ascii_address_signs_in_and_is_admin(svc):
    assert len(LONG) == 320 and len(LONG.encode()) == 5 + 303 * 4 + 12
    r = login(svc.url, LONG)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["email"] == LONG
    assert body["user"]["role"] == "admin"
    # The provider's name (the local part, 308 characters) is cut to the profile's 200.
    assert len(body["user"]["name"]) == 200
    claims = decode_jwt_payload(body["access_token"])
    assert claims["email"] == LONG and claims["role"] == "admin"
    # The token is accepted (its e-mail claim is read back whole) …
    me = requests.get(f"{svc.url}/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == LONG
    # … also as an admin token, and the user is listed with the whole address.
    h = bearer(body["access_token"])
    r = requests.get(f"{svc.url}/admin/users", params={"q": "long." + FRAKTUR_M * 3}, headers=h)
    assert r.status_code == 200, r.text
    assert [u["email"] for u in r.json()] == [LONG]
    r = requests.get(f"{svc.url}/admin/users/{body['user']['id']}", headers=h)
    assert r.status_code == 200 and r.json()["email"] == LONG
    # Signing in again finds the same user; the refresh token works.
    again = login(svc.url, LONG)
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == body["user"]["id"]
    r = requests.post(f"{svc.url}/auth/refresh",
                      json={"refresh_token": again.json()["refresh_token"]})
    assert r.status_code == 200 and r.json()["user"]["email"] == LONG, r.text


def test_login_hint_is_limited_in_characters(svc):
    r = requests.get(f"{svc.url}/auth/google/login", params={"login_hint": LONG},
                     allow_redirects=False)
    assert r.status_code == 302, r.text
    hint = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    assert hint["login_hint"] == [LONG]
    r = requests.get(f"{svc.url}/auth/google/login", params={"login_hint": address(321, "x")},
                     allow_redirects=False)
    assert_error(r, 400, "bad_request", detail="login_hint")


def test_admin_sets_a_long_non_ascii_address(stack, user_url, admin_headers):
    uid = login(user_url, "long.target@example.com").json()["user"]["id"]
    target = address(320, "long.set.")
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"email": target},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == target
    r = requests.get(f"{user_url}/admin/users", params={"q": "long.set."}, headers=admin_headers)
    assert [u["email"] for u in r.json()] == [target]
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"email": address(321, "long.set.")},
                     headers=admin_headers)
    assert_error(r, 422, "validation_failed", detail="email")


def test_operator_command_takes_a_long_non_ascii_address(stack, user_url, admin_headers):
    email = address(320, "long.op.")
    token, uid = operator_token(stack.user, email)
    assert decode_jwt_payload(token)["email"] == email
    r = requests.get(f"{user_url}/users/me", headers=bearer(token))
    assert r.status_code == 200 and r.json()["email"] == email, r.text
    out = stack.user.run("token", "--email", address(321, "long.op."))
    assert out.returncode == 2, (out.returncode, out.stderr)
