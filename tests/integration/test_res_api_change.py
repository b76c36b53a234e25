"""GET/PUT/DELETE /reservations/{id}: who may see and change a reservation, partial updates under
the same rules, If-Match, cancelling (docs/api.md#versions-and-etags, #reservation-service)."""
import datetime

import pytest
import requests

from harness import RESERVATION_KEYS, assert_error, book, booked, shift, utc_at, wait_room_state

POOL_BATCH = 24


@pytest.fixture()
def res(res_url, alice, room):
    """Alice's reservation 10:00-11:00Z in 30 days, in a room of its own."""
    return booked(res_url, alice, room["id"], utc_at(30, 10), utc_at(30, 11), purpose="Weekly")


def url(res_url, rid):
    return f"{res_url}/reservations/{rid}"


def put(res_url, headers, rid, body, if_match=None):
    h = dict(headers)
    if if_match is not None:
        h["If-Match"] = if_match
    return requests.put(url(res_url, rid), json=body, headers=h)


def get(res_url, headers, rid):
    r = requests.get(url(res_url, rid), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


# ---- GET ----

def test_owner_and_admin_read_it_with_etag(res_url, alice, root, res):
    for who in (alice, root):
        r = requests.get(url(res_url, res["id"]), headers=who)
        assert r.status_code == 200, r.text
        assert r.json() == res and r.headers["ETag"] == '"1"'


def test_other_employee_gets_403(res_url, bob, res):
    assert_error(requests.get(url(res_url, res["id"]), headers=bob), 403, "forbidden")


@pytest.mark.parametrize("rid", ["999999999", "abc", "0", "-1", "1.5", "99999999999999999999999"])
def test_unknown_or_malformed_id_is_404(res_url, alice, root, rid):
    for who in (alice, root):
        assert_error(requests.get(url(res_url, rid), headers=who), 404, "not_found")
        assert_error(put(res_url, who, rid, {"purpose": "x"}), 404, "not_found")
        assert_error(requests.delete(url(res_url, rid), headers=who), 404, "not_found")


# ---- PUT ----

def test_put_purpose_only_keeps_the_rest(res_url, alice, res):
    r = put(res_url, alice, res["id"], {"purpose": "Renamed"})
    assert r.status_code == 200, r.text
    new = r.json()
    assert set(new) == RESERVATION_KEYS
    assert r.headers["ETag"] == '"2"' and new["version"] == 2
    assert new["purpose"] == "Renamed"
    for k in ("id", "room_id", "user_id", "start_time", "end_time", "status", "cancel_reason",
              "created_at"):
        assert new[k] == res[k], k
    assert new["updated_at"] >= res["updated_at"]
    assert get(res_url, alice, res["id"]) == new


def test_put_times_partially(res_url, alice, res):
    # Only the end: longer, overlapping its own old span (no conflict with itself).
    r = put(res_url, alice, res["id"], {"end_time": utc_at(30, 12)})
    assert r.status_code == 200, r.text
    assert r.json()["start_time"] == res["start_time"] and r.json()["end_time"] == utc_at(30, 12)
    # Only the start, overlapping the current span.
    r = put(res_url, alice, res["id"], {"start_time": utc_at(30, 11, 30)})
    assert r.status_code == 200, r.text
    assert r.json()["start_time"] == utc_at(30, 11, 30) and r.json()["end_time"] == utc_at(30, 12)
    # Both, to another day, with an offset.
    day = utc_at(31)[:10]
    r = put(res_url, alice, res["id"], {"start_time": f"{day}T10:00:00+02:00",
                                         "end_time": f"{day}T11:00:00+02:00"})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["start_time"] == f"{day}T08:00:00Z" and new["end_time"] == f"{day}T09:00:00Z"
    assert new["version"] == 4 and new["purpose"] == "Weekly"
    assert get(res_url, alice, res["id"]) == new


def test_moved_reservation_frees_its_old_slot(res_url, alice, bob, res):
    r = put(res_url, alice, res["id"], {"start_time": utc_at(30, 14), "end_time": utc_at(30, 15)})
    assert r.status_code == 200, r.text
    booked(res_url, bob, res["room_id"], res["start_time"], res["end_time"])
    assert_error(book(res_url, bob, res["room_id"], utc_at(30, 14), utc_at(30, 15)), 409,
                 "conflict")


def test_put_to_another_room(res_url, alice, bob, pool, res):
    other = pool.take()
    r = put(res_url, alice, res["id"], {"room_id": other["id"]})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["room_id"] == other["id"] and new["start_time"] == res["start_time"]
    assert new["end_time"] == res["end_time"] and new["version"] == 2
    # The old room is free, the new one is taken.
    booked(res_url, bob, res["room_id"], res["start_time"], res["end_time"])
    body = assert_error(book(res_url, bob, other["id"], res["start_time"], res["end_time"]), 409,
                        "conflict")
    assert body["details"]["conflicts"] == [{"start_time": res["start_time"],
                                             "end_time": res["end_time"]}]


def test_put_without_offset_uses_the_new_rooms_time_zone(res_url, alice, pool, res):
    tokyo = pool.take(time_zone="Asia/Tokyo")
    day = utc_at(32)[:10]
    r = put(res_url, alice, res["id"], {"room_id": tokyo["id"], "start_time": f"{day}T10:00:00",
                                         "end_time": f"{day}T11:00:00"})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["start_time"] == f"{day}T01:00:00Z" and new["end_time"] == f"{day}T02:00:00Z"


def test_put_onto_a_conflict_is_409_and_changes_nothing(res_url, alice, bob, res):
    other = booked(res_url, bob, res["room_id"], utc_at(30, 12), utc_at(30, 13))
    for body in ({"end_time": utc_at(30, 12, 30)},
                 {"start_time": utc_at(30, 12, 30), "end_time": utc_at(30, 14)},
                 {"start_time": utc_at(30, 12, 59), "end_time": utc_at(30, 13, 30)}):
        r = put(res_url, alice, res["id"], body)
        err = assert_error(r, 409, "conflict")
        assert err["details"]["conflicts"] == [{"start_time": other["start_time"],
                                                "end_time": other["end_time"]}], body
    assert get(res_url, alice, res["id"]) == res
    # Back to back with the other one is fine.
    r = put(res_url, alice, res["id"], {"end_time": utc_at(30, 12)})
    assert r.status_code == 200, r.text


def test_put_into_an_occupied_room_is_409(res_url, alice, bob, pool, res):
    other_room = pool.take()
    booked(res_url, bob, other_room["id"], res["start_time"], res["end_time"])
    assert_error(put(res_url, alice, res["id"], {"room_id": other_room["id"]}), 409, "conflict")
    assert get(res_url, alice, res["id"]) == res


@pytest.mark.parametrize("body,field", [
    ({"end_time": utc_at(30, 10)}, "end_time"),
    ({"end_time": utc_at(30, 9)}, "end_time"),
    ({"start_time": utc_at(30, 11)}, "end_time"),
    ({"start_time": "2020-01-01T10:00:00Z"}, "start_time"),
    ({"end_time": utc_at(30, 10, 4)}, "end_time"),
    ({"end_time": utc_at(31, 10, 1)}, "end_time"),
    ({"start_time": utc_at(400, 10), "end_time": utc_at(400, 11)}, "start_time"),
    ({"purpose": "p" * 201}, "purpose"),
    ({"purpose": 7}, "purpose"),
    ({"room_id": 999999999}, "room_id"),
    ({"room_id": "1"}, "room_id"),
    ({"room_id": None}, "room_id"),
    ({"start_time": "soon"}, "start_time"),
    ({"end_time": utc_at(30, 11).replace("Z", ".25Z")}, "end_time"),
    ({"user_id": 1}, "user_id"),
    ({"status": "cancelled"}, "status"),
], ids=["end-equals-start", "end-before-start", "start-at-end", "start-in-past", "too-short",
        "too-long", "beyond-horizon", "purpose-201", "purpose-number", "unknown-room",
        "room-id-string", "room-id-null", "garbage-time", "fraction", "unknown-field-user_id",
        "unknown-field-status"])
def test_put_rules_are_422_and_change_nothing(res_url, alice, res, body, field):
    r = put(res_url, alice, res["id"], body)
    assert_error(r, 422, "validation_failed", detail=field)
    assert get(res_url, alice, res["id"]) == res


def test_put_duration_just_over_the_maximum_is_422(res_url, alice, res):
    r = put(res_url, alice, res["id"], {"end_time": shift(res["start_time"], minutes=1440,
                                                            seconds=30)})
    assert_error(r, 422, "validation_failed", detail="end_time")
    assert get(res_url, alice, res["id"]) == res


def test_put_empty_object_is_422(res_url, alice, res):
    assert_error(put(res_url, alice, res["id"], {}), 422, "validation_failed")
    assert get(res_url, alice, res["id"]) == res


def test_put_into_an_inactive_room_is_422(res_url, room_url, admin_headers, alice, pool, res):
    other = pool.take()
    r = requests.put(f"{room_url}/rooms/{other['id']}", json={"active": False},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    wait_room_state(res_url, alice, other["id"], inactive=True)
    assert_error(put(res_url, alice, res["id"], {"room_id": other["id"]}), 422,
                 "validation_failed", detail="room_id")


def test_if_match(res_url, alice, res):
    rid = res["id"]
    assert_error(put(res_url, alice, rid, {"purpose": "a"}, if_match='"2"'), 412,
                 "precondition_failed")
    r = put(res_url, alice, rid, {"purpose": "a"}, if_match='"1"')
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["ETag"] == '"2"'
    # The old version is stale now.
    assert_error(put(res_url, alice, rid, {"purpose": "b"}, if_match='"1"'), 412,
                 "precondition_failed")
    assert get(res_url, alice, rid)["purpose"] == "a"
    for tag, version in (('W/"2"', 3), ("*", 4), ('"4"', 5)):
        r = put(res_url, alice, rid, {"purpose": f"v{version}"}, if_match=tag)
        assert r.status_code == 200, (tag, r.text)
        assert r.json()["version"] == version and r.headers["ETag"] == f'"{version}"'
    for tag in ("garbage", '"abc"', "5", '"99999999999"'):
        assert_error(put(res_url, alice, rid, {"purpose": "x"}, if_match=tag), 412,
                     "precondition_failed")
    assert get(res_url, alice, rid)["version"] == 5


def test_other_employee_may_not_put_admin_may(res_url, users, res):
    (bob, _), (root, _), (_, alice_id) = users["bob"], users["root"], users["alice"]
    assert_error(put(res_url, bob, res["id"], {"purpose": "mine"}), 403, "forbidden")
    assert_error(put(res_url, bob, res["id"], {}), 403, "forbidden")
    r = put(res_url, root, res["id"], {"purpose": "by admin", "end_time": utc_at(30, 11, 30)})
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == alice_id and r.json()["purpose"] == "by admin"
    assert r.json()["end_time"] == utc_at(30, 11, 30)


def test_put_on_a_cancelled_reservation_is_409(res_url, alice, res):
    assert requests.delete(url(res_url, res["id"]), headers=alice).status_code == 204
    cancelled = get(res_url, alice, res["id"])
    for body in ({"purpose": "again"}, {"start_time": utc_at(33, 10), "end_time": utc_at(33, 11)}):
        assert_error(put(res_url, alice, res["id"], body), 409, "conflict")
    assert_error(put(res_url, alice, res["id"], {"purpose": "x"}, if_match='"2"'), 409,
                 "conflict")
    assert get(res_url, alice, res["id"]) == cancelled


# ---- DELETE ----

def test_delete_cancels_and_keeps_history(res_url, alice, res):
    r = requests.delete(url(res_url, res["id"]), headers=alice)
    assert r.status_code == 204, r.text
    assert r.content == b""
    g = requests.get(url(res_url, res["id"]), headers=alice)
    assert g.status_code == 200 and g.headers["ETag"] == '"2"'
    new = g.json()
    assert new["status"] == "cancelled" and new["cancel_reason"] == "cancelled_by_user"
    assert new["version"] == 2 and new["updated_at"] >= res["updated_at"]
    for k in ("id", "room_id", "user_id", "purpose", "start_time", "end_time", "created_at"):
        assert new[k] == res[k], k
    # Again: still 204, nothing changes.
    r = requests.delete(url(res_url, res["id"]), headers=alice)
    assert r.status_code == 204, r.text
    assert get(res_url, alice, res["id"]) == new


def test_admin_cancelling_someone_elses_is_cancelled_by_admin(res_url, alice, root, res):
    assert requests.delete(url(res_url, res["id"]), headers=root).status_code == 204
    assert get(res_url, alice, res["id"])["cancel_reason"] == "cancelled_by_admin"


def test_admin_cancelling_own_is_cancelled_by_user(res_url, root, room):
    own = booked(res_url, root, room["id"], utc_at(34, 10), utc_at(34, 11))
    assert requests.delete(url(res_url, own["id"]), headers=root).status_code == 204
    assert get(res_url, root, own["id"])["cancel_reason"] == "cancelled_by_user"


def test_other_employee_may_not_delete(res_url, alice, bob, res):
    assert_error(requests.delete(url(res_url, res["id"]), headers=bob), 403, "forbidden")
    assert get(res_url, alice, res["id"]) == res


def test_delete_with_if_match(res_url, alice, res):
    h = dict(alice)
    h["If-Match"] = '"7"'
    assert_error(requests.delete(url(res_url, res["id"]), headers=h), 412, "precondition_failed")
    assert get(res_url, alice, res["id"]) == res
    h["If-Match"] = '"1"'
    assert requests.delete(url(res_url, res["id"]), headers=h).status_code == 204
    assert get(res_url, alice, res["id"])["status"] == "cancelled"


def test_list_shows_cancelled_only_when_asked(res_url, alice, res):
    assert requests.delete(url(res_url, res["id"]), headers=alice).status_code == 204
    ids = lambda **p: [x["id"] for x in requests.get(  # noqa: E731
        f"{res_url}/reservations", params=dict(room_id=res["room_id"], **p), headers=alice).json()]
    assert ids() == [] and ids(status="confirmed") == []
    assert ids(status="cancelled") == [res["id"]] and ids(status="all") == [res["id"]]


def test_delete_trailing_slash(res_url, alice, res):
    r = requests.delete(url(res_url, res["id"]) + "/", headers=alice, allow_redirects=False)
    assert r.status_code == 204, r.text


def test_put_start_into_the_past_is_422(res_url, alice, room):
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    start = (now + datetime.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    mine = booked(res_url, alice, room["id"], start, shift(start, minutes=30))
    earlier = (now - datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(put(res_url, alice, mine["id"], {"start_time": earlier}), 422,
                 "validation_failed", detail="start_time")
