import requests

from harness import bearer, decode_jwt_payload


def test_login_flow_issues_tokens_for_bootstrap_admin(stack, admin):
    assert admin["token_type"] == "Bearer"
    assert admin["expires_in"] == 900
    assert admin["user"]["email"] == stack.ADMIN_EMAIL
    assert admin["user"]["role"] == "admin"
    claims = decode_jwt_payload(admin["access_token"])
    assert claims["role"] == "admin" and claims["iss"] == "meeting-rooms"
    assert claims["sub"] == str(admin["user"]["id"])


def test_profile_with_token(user_url, admin):
    r = requests.get(f"{user_url}/users/profile", headers=bearer(admin["access_token"]))
    assert r.status_code == 200
    assert set(r.json()) == {"id", "email", "name", "picture", "role", "created_at"}
