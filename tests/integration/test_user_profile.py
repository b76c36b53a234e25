"""The caller's own profile: GET/PUT /users/profile and the /users/me alias
(docs/api.md#user-service)."""
import re

import pytest
import requests

from harness import assert_error, bearer

PROFILE_KEYS = {"id", "email", "name", "picture", "role", "created_at"}


def test_profile_and_me_are_the_same(user_url, employee):
    h = bearer(employee["access_token"])
    a = requests.get(f"{user_url}/users/profile", headers=h)
    b = requests.get(f"{user_url}/users/me", headers=h)
    assert a.status_code == b.status_code == 200
    assert a.headers["Content-Type"].startswith("application/json")
    assert set(a.json()) == PROFILE_KEYS
    assert a.json() == b.json() == employee["user"]
    assert a.json()["role"] == "employee"


def test_put_name_persists(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.put(f"{user_url}/users/profile", json={"name": "Ada Lovelace"}, headers=h)
    assert r.status_code == 200, r.text
    assert set(r.json()) == PROFILE_KEYS
    assert r.json()["name"] == "Ada Lovelace"
    assert r.json()["id"] == employee["user"]["id"]
    again = requests.get(f"{user_url}/users/profile", headers=h).json()
    assert again["name"] == "Ada Lovelace"
    assert again["email"] == employee["user"]["email"]


def test_put_name_of_200_ascii_characters_is_accepted(user_url, employee):
    r = requests.put(f"{user_url}/users/profile", json={"name": "n" * 200},
                     headers=bearer(employee["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "n" * 200




@pytest.mark.parametrize("name", ["é" * 200, "名" * 100, "😀" * 70],
                         ids=["latin", "cjk", "emoji"])
def test_put_multibyte_name_within_200_characters(user_url, admin_headers, employee, name):
    h = bearer(employee["access_token"])
    try:
        r = requests.put(f"{user_url}/users/profile", json={"name": name}, headers=h)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.content, "200 with an empty body"
        assert r.json()["name"] == name
        assert requests.get(f"{user_url}/users/profile", headers=h).json()["name"] == name
        listed = requests.get(f"{user_url}/admin/users", params={"q": employee["user"]["email"]},
                              headers=admin_headers).json()
        assert [u["id"] for u in listed] == [employee["user"]["id"]]
        r = requests.post(f"{user_url}/auth/refresh",
                          json={"refresh_token": employee["refresh_token"]})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["name"] == name
    finally:
        requests.put(f"{user_url}/users/profile", json={"name": "Restored"}, headers=h)


def test_put_long_multibyte_picture(user_url, employee):
    h = bearer(employee["access_token"])
    picture = "https://example.com/" + "é" * 2000  # 2020 characters, within the 2048 limit
    try:
        r = requests.put(f"{user_url}/users/profile", json={"picture": picture}, headers=h)
        assert r.status_code == 200
        assert r.json()["picture"] == picture
    finally:
        requests.put(f"{user_url}/users/profile", json={"picture": None}, headers=h)


def test_put_picture_and_clear_it(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.put(f"{user_url}/users/profile", json={"picture": "https://example.com/p.png"},
                     headers=h)
    assert r.status_code == 200 and r.json()["picture"] == "https://example.com/p.png", r.text
    r = requests.put(f"{user_url}/users/profile", json={"picture": None}, headers=h)
    assert r.status_code == 200 and r.json()["picture"] is None, r.text
    r = requests.put(f"{user_url}/users/profile", json={"picture": "javascript:alert(1)"},
                     headers=h)
    assert_error(r, 422, "validation_failed", detail="picture")


def test_me_alias_accepts_put(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.put(f"{user_url}/users/me", json={"name": "Via Me"}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "Via Me", r.text
    assert requests.get(f"{user_url}/users/profile", headers=h).json()["name"] == "Via Me"


def test_email_and_role_cannot_be_changed_here(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.put(f"{user_url}/users/profile", json={"email": "new@example.com"}, headers=h)
    assert_error(r, 422, "validation_failed", detail="email", mentions="email")
    r = requests.put(f"{user_url}/users/profile", json={"role": "admin"}, headers=h)
    assert_error(r, 422, "validation_failed", detail="role", mentions="role")
    r = requests.put(f"{user_url}/users/profile", json={"name": "Sneaky", "role": "admin"},
                     headers=h)
    assert_error(r, 422, "validation_failed", detail="role")
    me = requests.get(f"{user_url}/users/profile", headers=h).json()
    assert me["role"] == "employee" and me["email"] == employee["user"]["email"]
    assert me["name"] != "Sneaky"


def test_invalid_names(user_url, employee):
    h = bearer(employee["access_token"])
    for bad in ("x" * 201, "", 42, ["a"], {"first": "a"}, True):
        r = requests.put(f"{user_url}/users/profile", json={"name": bad}, headers=h)
        assert_error(r, 422, "validation_failed", detail="name", mentions="name")
    assert requests.get(f"{user_url}/users/profile", headers=h).json() == employee["user"]


def test_unknown_field_and_empty_body(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.put(f"{user_url}/users/profile", json={"name": "Ok", "nickname": "x"}, headers=h)
    assert_error(r, 422, "validation_failed", detail="nickname", mentions="nickname")
    r = requests.put(f"{user_url}/users/profile", json={}, headers=h)
    assert_error(r, 422, "validation_failed", detail="name")


def test_profile_needs_a_token(user_url):
    r = requests.get(f"{user_url}/users/profile")
    assert_error(r, 401, "unauthorized")
    r = requests.put(f"{user_url}/users/profile", json={"name": "x"})
    assert_error(r, 401, "unauthorized")


def test_nul_in_name_is_refused(user_url, employee):
    r = requests.put(f"{user_url}/users/profile", json={"name": "a\u0000b"},
                     headers=bearer(employee["access_token"]))
    if r.status_code == 400:
        assert_error(r, 400, "bad_request")
    else:
        assert_error(r, 422, "validation_failed", detail="name")
    assert requests.get(f"{user_url}/users/profile",
                        headers=bearer(employee["access_token"])).json() == employee["user"]


def test_profile_carries_an_etag(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.get(f"{user_url}/users/profile", headers=h)
    assert re.fullmatch(r'"\d+"', r.headers["ETag"])
    r2 = requests.put(f"{user_url}/users/profile", json={"name": "Tagged"}, headers=h)
    assert r2.headers["ETag"] != r.headers["ETag"]


def test_profile_put_honours_if_match(user_url, employee):
    h = bearer(employee["access_token"])
    etag = requests.get(f"{user_url}/users/profile", headers=h).headers["ETag"]
    requests.put(f"{user_url}/users/profile", json={"name": "Other Device"}, headers=h)
    r = requests.put(f"{user_url}/users/profile", json={"name": "Lost Update"},
                     headers={**h, "If-Match": etag})
    assert_error(r, 412, "precondition_failed")
    assert requests.get(f"{user_url}/users/profile", headers=h).json()["name"] == "Other Device"
