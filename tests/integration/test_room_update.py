"""PUT /rooms/{id}: partial updates, clearing with null, versions, ETag/If-Match
(docs/api.md#versions-and-etags, #rooms)."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import assert_error, create_room, unique_name

FULL = {"capacity": 8, "equipment": ["Projector", "TV"], "building": "HQ", "floor": 2,
        "description": "Quiet room", "time_zone": "Europe/Berlin"}


def put(room_url, headers, rid, body, if_match=None):
    h = dict(headers)
    if if_match is not None:
        h["If-Match"] = if_match
    return requests.put(f"{room_url}/rooms/{rid}", json=body, headers=h)


def test_partial_put_keeps_other_fields(room_url, admin_headers):
    room = create_room(room_url, admin_headers, **FULL)
    r = put(room_url, admin_headers, room["id"], {"capacity": 12})
    assert r.status_code == 200, r.text
    new = r.json()
    assert r.headers["ETag"] == '"2"'
    assert new["capacity"] == 12 and new["version"] == 2
    for k in ("id", "name", "equipment", "building", "floor", "description", "time_zone",
              "active", "created_at"):
        assert new[k] == room[k], k
    assert new["updated_at"] >= room["updated_at"]
    r = requests.get(f"{room_url}/rooms/{room['id']}", headers=admin_headers)
    assert r.json() == new and r.headers["ETag"] == '"2"'

    name = unique_name("Renamed")
    r = put(room_url, admin_headers, room["id"], {"name": name, "time_zone": "Asia/Tokyo",
                                                  "active": False, "floor": -1})
    assert r.status_code == 200, r.text
    newer = r.json()
    assert newer["name"] == name and newer["time_zone"] == "Asia/Tokyo"
    assert newer["active"] is False and newer["floor"] == -1 and newer["version"] == 3
    assert newer["capacity"] == 12 and newer["equipment"] == room["equipment"]
    assert newer["building"] == "HQ" and newer["description"] == "Quiet room"


def test_null_clears_optional_fields(room_url, admin_headers):
    room = create_room(room_url, admin_headers, **FULL)
    r = put(room_url, admin_headers, room["id"],
            {"building": None, "floor": None, "description": None, "equipment": None})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["building"] is None and new["floor"] is None and new["description"] is None
    assert new["equipment"] == []
    assert new["capacity"] == 8 and new["time_zone"] == "Europe/Berlin" and new["version"] == 2
    # Values can be set again afterwards.
    r = put(room_url, admin_headers, room["id"], {"floor": 0, "building": "Annex",
                                                  "equipment": "Phone"})
    assert r.status_code == 200
    assert (r.json()["floor"], r.json()["building"], r.json()["equipment"]) == (0, "Annex",
                                                                               ["Phone"])


def test_every_put_increments_the_version(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    for v in range(2, 6):
        r = put(room_url, admin_headers, room["id"], {"capacity": v})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == v and r.headers["ETag"] == f'"{v}"'


def test_if_match_current_stale_and_malformed(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    rid = room["id"]
    r = put(room_url, admin_headers, rid, {"capacity": 5}, if_match='"1"')
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    # Someone else's update made version 1 stale.
    r = put(room_url, admin_headers, rid, {"capacity": 6}, if_match='"1"')
    assert_error(r, 412, "precondition_failed")
    for bad in ('abc', '2', '"abc"', '"0"', '"-2"', '""', '"2', '"2"x', '"2", "3"', '"3"'):
        r = put(room_url, admin_headers, rid, {"capacity": 7}, if_match=bad)
        assert_error(r, 412, "precondition_failed")
    r = requests.get(f"{room_url}/rooms/{rid}", headers=admin_headers)
    assert r.json()["capacity"] == 5 and r.json()["version"] == 2, "412 must change nothing"
    # A weak tag and "*" also match.
    r = put(room_url, admin_headers, rid, {"capacity": 8}, if_match='W/"2"')
    assert r.status_code == 200 and r.json()["version"] == 3, r.text
    r = put(room_url, admin_headers, rid, {"capacity": 9}, if_match="*")
    assert r.status_code == 200 and r.json()["version"] == 4, r.text


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_if_match_with_a_huge_version_is_412(room_url, admin_headers, method):
    room = create_room(room_url, admin_headers)
    r = requests.request(method, f"{room_url}/rooms/{room['id']}", json={"capacity": 5},
                         headers={**admin_headers, "If-Match": '"99999999999"'})
    assert_error(r, 412, "precondition_failed")


def test_concurrent_updates_with_the_same_if_match_one_wins(room_url, admin_headers):
    room = create_room(room_url, admin_headers)

    def attempt(cap):
        return put(room_url, admin_headers, room["id"], {"capacity": cap}, if_match='"1"')
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(10, 18)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [412] * 7, codes
    winner = next(r.json() for r in results if r.status_code == 200)
    r = requests.get(f"{room_url}/rooms/{room['id']}", headers=admin_headers)
    assert r.json() == winner and winner["version"] == 2


def test_delete_honours_if_match(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    assert put(room_url, admin_headers, room["id"], {"capacity": 5}).status_code == 200
    r = requests.delete(url, headers={**admin_headers, "If-Match": '"1"'})
    assert_error(r, 412, "precondition_failed")
    r = requests.delete(url, headers={**admin_headers, "If-Match": "nonsense"})
    assert_error(r, 412, "precondition_failed")
    assert requests.get(url, headers=admin_headers).status_code == 200
    r = requests.delete(url, headers={**admin_headers, "If-Match": '"2"'})
    assert r.status_code == 204, r.text
    assert requests.get(url, headers=admin_headers).status_code == 404


def test_put_on_unknown_room_is_404(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    assert requests.delete(f"{room_url}/rooms/{room['id']}",
                           headers=admin_headers).status_code == 204
    assert_error(put(room_url, admin_headers, room["id"], {"capacity": 5}), 404, "not_found")
    assert_error(put(room_url, admin_headers, room["id"], {"capacity": 5}, if_match='"1"'), 404,
                 "not_found")
    assert_error(put(room_url, admin_headers, 987654321, {"capacity": 5}), 404, "not_found")


def test_empty_put_changes_nothing_but_the_version(room_url, admin_headers):
    room = create_room(room_url, admin_headers, **FULL)
    r = put(room_url, admin_headers, room["id"], {})
    assert r.status_code == 200, r.text
    new = r.json()
    assert {k: v for k, v in new.items() if k not in ("version", "updated_at")} == \
        {k: v for k, v in room.items() if k not in ("version", "updated_at")}
