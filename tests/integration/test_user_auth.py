"""Bearer-token checks on a bearer route and an admin route (docs/api.md#authentication)."""
import base64
import json
import time

import jwt
import pytest
import requests

from harness import SECRET, assert_error, bearer, forge_token

BEARER_ROUTE = "/users/profile"
ADMIN_ROUTE = "/admin/users"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def alg_none_token(claims):
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def claims_of(user, role):
    now = int(time.time())
    return {"sub": str(user["id"]), "email": user["email"], "name": "x", "role": role,
            "iat": now, "exp": now + 3600, "iss": "meeting-rooms", "jti": "j"}


def assert_401(r):
    assert_error(r, 401, "unauthorized")
    www = r.headers.get("WWW-Authenticate", "")
    assert www.startswith("Bearer") and 'error="invalid_token"' in www, r.headers


@pytest.fixture(params=[BEARER_ROUTE, ADMIN_ROUTE])
def route(request):
    return request.param


def role_for(route):
    return "admin" if route == ADMIN_ROUTE else "employee"


def test_forged_valid_token_is_accepted(user_url, employee, route):
    # Sanity check of the forging helper: a correct token passes on both routes.
    u = employee["user"]
    r = requests.get(user_url + route,
                     headers=bearer(forge_token(u["id"], u["email"], role_for(route))))
    assert r.status_code == 200, r.text


def test_no_header_is_401(user_url, route):
    assert_401(requests.get(user_url + route))


@pytest.mark.parametrize("value", ["Bearer garbage", "Bearer ", "Bearer a.b.c",
                                   "Basic Zm9vOmJhcg==", "garbage", "Bearer a.b", "Bearer ...."])
def test_malformed_authorization_is_401(user_url, route, value):
    assert_401(requests.get(user_url + route, headers={"Authorization": value}))


def test_bad_signature_is_401(user_url, employee, route):
    u = employee["user"]
    token = forge_token(u["id"], u["email"], role_for(route), secret=SECRET + "-other")
    assert_401(requests.get(user_url + route, headers=bearer(token)))
    # A real token with one signature character changed.
    real = forge_token(u["id"], u["email"], role_for(route))
    head, _, sig = real.rpartition(".")
    tampered = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert_401(requests.get(user_url + route, headers=bearer(tampered)))


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def other_spellings(token):
    """The same token with its signature padded, or with the two unused low bits of the
    signature's last character set otherwise: the same MAC bytes, other text (issue 11 item 4)."""
    head, _, sig = token.rpartition(".")
    assert len(sig) == 43  # 32 bytes: 256 of the 258 bits carry the MAC
    last = B64URL.index(sig[-1])
    return ([token + "=", token + "==", token + "===="] +
            [f"{head}.{sig[:-1]}{B64URL[last ^ bits]}" for bits in (1, 2, 3)])


def test_token_has_one_spelling(user_url, room_url, employee, route):
    # RFC 7515 §2: base64url without padding, so a token has exactly one accepted spelling.
    u = employee["user"]
    token = forge_token(u["id"], u["email"], role_for(route))
    assert requests.get(user_url + route, headers=bearer(token)).status_code == 200
    for other in other_spellings(token):
        assert_401(requests.get(user_url + route, headers=bearer(other)))
    # The token user-service itself issued, on another service too.
    own = employee["access_token"]
    assert requests.get(f"{room_url}/rooms", headers=bearer(own)).status_code == 200
    for other in other_spellings(own):
        assert_401(requests.get(f"{room_url}/rooms", headers=bearer(other)))


def test_tampered_payload_is_401(user_url, employee):
    # An employee's real token with the role switched to admin in the payload.
    h, p, s = employee["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["role"] = "admin"
    forged = f"{h}.{b64url(json.dumps(claims).encode())}.{s}"
    assert_401(requests.get(user_url + ADMIN_ROUTE, headers=bearer(forged)))


def test_expiry_with_30_seconds_leeway(user_url, employee, route):
    u = employee["user"]
    late = forge_token(u["id"], u["email"], role_for(route), exp_in=-120)
    assert_401(requests.get(user_url + route, headers=bearer(late)))
    within = forge_token(u["id"], u["email"], role_for(route), exp_in=-10)
    r = requests.get(user_url + route, headers=bearer(within))
    assert r.status_code == 200, r.text


def test_wrong_issuer_is_401(user_url, employee, route):
    u = employee["user"]
    for iss in ("someone-else", "", "Meeting-Rooms"):
        token = forge_token(u["id"], u["email"], role_for(route), iss=iss)
        assert_401(requests.get(user_url + route, headers=bearer(token)))
    token = forge_token(u["id"], u["email"], role_for(route), drop=("iss",))
    assert_401(requests.get(user_url + route, headers=bearer(token)))


def test_alg_none_is_401(user_url, employee, route):
    token = alg_none_token(claims_of(employee["user"], role_for(route)))
    assert_401(requests.get(user_url + route, headers=bearer(token)))
    # Also with a signature part present.
    assert_401(requests.get(user_url + route, headers=bearer(token + "c2ln")))


@pytest.mark.parametrize("alg", ["HS512", "HS384"])
def test_other_hmac_algorithms_are_401(user_url, employee, route, alg):
    u = employee["user"]
    token = forge_token(u["id"], u["email"], role_for(route), alg=alg)
    assert_401(requests.get(user_url + route, headers=bearer(token)))


def test_hs256_signature_under_a_different_alg_header_is_401(user_url, employee, route):
    # The header says HS512 but the signature is HS256 over it: the alg must still be refused.
    claims = claims_of(employee["user"], role_for(route))
    token = jwt.encode(claims, SECRET, algorithm="HS256", headers={"alg": "HS512"})
    assert_401(requests.get(user_url + route, headers=bearer(token)))


@pytest.mark.parametrize("change", [
    {"drop": ("exp",)},
    {"drop": ("sub",)},
    {"drop": ("role",)},
    {"drop": ("email",)},
    {"role": "superuser"},
    {"sub": "0"},
    {"sub": "abc"},
    {"iat_ahead": 3600},
    {"drop": ("iat",)},
    {"exp_in": 86400 + 60},
], ids=["no-exp", "no-sub", "no-role", "no-email", "bad-role", "sub-0", "sub-abc", "iat-future",
        "no-iat", "life-over-24h"])
def test_invalid_claims_are_401(user_url, employee, route, change):
    u = employee["user"]
    extra = {}
    if "iat_ahead" in change:
        extra["iat"] = int(time.time()) + change["iat_ahead"]
    token = forge_token(change.get("sub", u["id"]), u["email"],
                        change.get("role", role_for(route)), drop=change.get("drop", ()),
                        exp_in=change.get("exp_in", 3600), **extra)
    assert_401(requests.get(user_url + route, headers=bearer(token)))


def test_employee_on_admin_route_is_403(user_url, employee):
    r = requests.get(user_url + ADMIN_ROUTE, headers=bearer(employee["access_token"]))
    assert_error(r, 403, "forbidden")
    assert "WWW-Authenticate" not in r.headers


def test_lowercase_bearer_scheme_is_accepted(user_url, employee):
    r = requests.get(user_url + BEARER_ROUTE,
                     headers={"Authorization": "bearer " + employee["access_token"]})
    assert r.status_code == 200, r.text
