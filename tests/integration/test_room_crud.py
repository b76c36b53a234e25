"""Rooms: create, read, delete and who may do what (docs/api.md#room-service, #authentication,
#errors)."""
import re

import pytest
import requests

from harness import ROOM_KEYS, assert_error, bearer, create_room, forge_token, unique_name

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture()
def emp_headers(employee):
    return bearer(employee["access_token"])


def test_create_returns_201_location_etag_and_the_room(room_url, admin_headers):
    name = unique_name("Everest")
    body = {"name": name, "capacity": 8, "equipment": ["Projector", "Whiteboard"],
            "building": "HQ", "floor": 3, "description": "Corner room with a view",
            "time_zone": "Europe/Berlin", "active": True}
    r = requests.post(f"{room_url}/rooms", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    room = r.json()
    assert set(room) == ROOM_KEYS, room
    assert isinstance(room["id"], int) and room["id"] > 0
    assert r.headers["Location"] == f"/rooms/{room['id']}"
    assert r.headers["ETag"] == '"1"'
    assert {k: room[k] for k in body} == body
    assert room["version"] == 1
    assert TS.fullmatch(room["created_at"]) and TS.fullmatch(room["updated_at"]), room
    assert room["created_at"] == room["updated_at"]


def test_create_applies_defaults(room_url, admin_headers):
    name = unique_name()
    r = requests.post(f"{room_url}/rooms", json={"name": name, "capacity": 1},
                      headers=admin_headers)
    assert r.status_code == 201, r.text
    room = r.json()
    assert set(room) == ROOM_KEYS
    assert room["name"] == name and room["capacity"] == 1
    assert room["equipment"] == [] and room["building"] is None and room["floor"] is None
    assert room["description"] is None
    assert room["time_zone"] == "UTC" and room["active"] is True and room["version"] == 1


def test_get_by_id_with_etag(room_url, admin_headers):
    room = create_room(room_url, admin_headers, floor=-2, equipment="TV")
    r = requests.get(f"{room_url}/rooms/{room['id']}", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"1"'
    assert r.json() == room


def test_employee_can_read_list_and_room(room_url, admin_headers, emp_headers):
    room = create_room(room_url, admin_headers)
    r = requests.get(f"{room_url}/rooms", params={"q": room["name"]}, headers=emp_headers)
    assert r.status_code == 200, r.text
    assert r.json() == [room]
    r = requests.get(f"{room_url}/rooms/{room['id']}", headers=emp_headers)
    assert r.status_code == 200 and r.json() == room
    assert r.headers["ETag"] == '"1"'


def test_employee_cannot_write(room_url, admin_headers, emp_headers):
    room = create_room(room_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    assert_error(requests.post(f"{room_url}/rooms", json={"name": unique_name(), "capacity": 2},
                               headers=emp_headers), 403, "forbidden")
    assert_error(requests.put(url, json={"capacity": 99}, headers=emp_headers), 403, "forbidden")
    assert_error(requests.delete(url, headers=emp_headers), 403, "forbidden")
    # Nothing changed.
    r = requests.get(url, headers=emp_headers)
    assert r.status_code == 200 and r.json() == room


@pytest.mark.parametrize("headers", [{}, bearer("garbage"), {"Authorization": "Basic YTpi"},
                                     bearer(forge_token(1, role="admin", secret="x" * 40)),
                                     bearer(forge_token(1, role="admin", exp_in=-120))],
                         ids=["none", "garbage", "basic", "wrong-secret", "expired"])
def test_missing_or_invalid_token_is_401(room_url, admin_headers, headers):
    room = create_room(room_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    for r in (requests.get(f"{room_url}/rooms", headers=headers),
              requests.get(url, headers=headers),
              requests.post(f"{room_url}/rooms", json={"name": unique_name(), "capacity": 2},
                            headers=headers),
              requests.put(url, json={"capacity": 3}, headers=headers),
              requests.delete(url, headers=headers)):
        assert_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), r.headers
    r = requests.get(url, headers=admin_headers)
    assert r.status_code == 200 and r.json() == room


def test_forged_admin_token_may_write(room_url):
    """room-service trusts the signed role claim; it does not ask user-service."""
    h = bearer(forge_token(987654, "robot@example.com", role="admin"))
    room = create_room(room_url, h)
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=h).status_code == 204


def test_delete_then_gone(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    r = requests.delete(url, headers=admin_headers)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(requests.get(url, headers=admin_headers), 404, "not_found")
    assert_error(requests.delete(url, headers=admin_headers), 404, "not_found")
    assert_error(requests.put(url, json={"capacity": 5}, headers=admin_headers), 404, "not_found")
    r = requests.get(f"{room_url}/rooms", params={"q": room["name"]}, headers=admin_headers)
    assert r.status_code == 200 and r.json() == []
    # The name is free again.
    again = create_room(room_url, admin_headers, name=room["name"])
    assert again["id"] != room["id"] and again["version"] == 1


@pytest.mark.parametrize("rid", ["999999999", "abc", "0", "-1", "01", "1.5", "1e3",
                                 "99999999999999999999999"])
def test_unknown_or_malformed_id_is_404(room_url, admin_headers, rid):
    url = f"{room_url}/rooms/{rid}"
    assert_error(requests.get(url, headers=admin_headers), 404, "not_found")
    assert_error(requests.put(url, json={"capacity": 5}, headers=admin_headers), 404, "not_found")
    assert_error(requests.delete(url, headers=admin_headers), 404, "not_found")


def test_trailing_slash_works_without_redirect(room_url, admin_headers):
    r = requests.post(f"{room_url}/rooms/", json={"name": unique_name(), "capacity": 3},
                      headers=admin_headers, allow_redirects=False)
    assert r.status_code == 201, r.text
    room = r.json()
    r = requests.get(f"{room_url}/rooms/", params={"q": room["name"]}, headers=admin_headers,
                     allow_redirects=False)
    assert r.status_code == 200 and r.json() == [room], r.text
    url = f"{room_url}/rooms/{room['id']}/"
    r = requests.get(url, headers=admin_headers, allow_redirects=False)
    assert r.status_code == 200 and r.json() == room and r.headers["ETag"] == '"1"'
    r = requests.put(url, json={"capacity": 4}, headers=admin_headers, allow_redirects=False)
    assert r.status_code == 200 and r.json()["capacity"] == 4
    r = requests.delete(url, headers=admin_headers, allow_redirects=False)
    assert r.status_code == 204


def test_unsupported_method_is_405_with_allow(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    r = requests.patch(f"{room_url}/rooms/{room['id']}", json={"capacity": 5},
                       headers=admin_headers)
    assert_error(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "PUT", "DELETE"} <= allow, allow
