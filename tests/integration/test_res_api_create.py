"""POST /reservations: the reservation as created, time parsing (Z, offsets, the room's own time
zone), the booking rules, overlaps and Idempotency-Key (docs/api.md#time-rules, #booking-rules)."""
import datetime
import re
import uuid

import pytest
import requests

from harness import (
    RESERVATION_KEYS,
    assert_error,
    book,
    booked,
    room_bookable,
    shift,
    utc_at,
    wait_room_state,
    wait_until,
)

POOL_BATCH = 24

TS_S = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TS_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(scope="module")
def shared(pool):
    """One room for the tests that are refused before anything is booked."""
    return pool.take()


def next_local_date(month, day, min_days=2):
    """The next month/day that is at least min_days ahead (always within a year)."""
    today = datetime.datetime.now(datetime.UTC).date()
    for year in (today.year, today.year + 1):
        d = datetime.date(year, month, day)
        if (d - today).days >= min_days:
            return d
    raise AssertionError("unreachable")


def last_sunday(year, month):
    d = datetime.date(year, month, 31)
    return d - datetime.timedelta(days=(d.weekday() + 1) % 7)


def next_spring_forward(min_days=2):
    today = datetime.datetime.now(datetime.UTC).date()
    for year in (today.year, today.year + 1):
        d = last_sunday(year, 3)
        if (d - today).days >= min_days:
            return d
    raise AssertionError("unreachable")


# ---- the created reservation ----

def test_create_returns_201_location_etag_and_the_reservation(res_url, users, room):
    headers, user_id = users["alice"]
    start, end = utc_at(3, 9), utc_at(3, 10, 30)
    r = book(res_url, headers, room["id"], start, end, purpose="Sprint planning")
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    res = r.json()
    assert set(res) == RESERVATION_KEYS, res
    assert isinstance(res["id"], int) and res["id"] > 0
    assert r.headers["Location"] == f"/reservations/{res['id']}"
    assert r.headers["ETag"] == '"1"'
    assert "Idempotent-Replayed" not in r.headers
    assert res["room_id"] == room["id"] and res["user_id"] == user_id
    assert res["purpose"] == "Sprint planning"
    assert res["start_time"] == start and res["end_time"] == end
    assert res["status"] == "confirmed" and res["cancel_reason"] is None
    assert res["version"] == 1
    assert TS_MS.fullmatch(res["created_at"]) and TS_MS.fullmatch(res["updated_at"]), res
    assert res["created_at"] == res["updated_at"]

    g = requests.get(f"{res_url}{r.headers['Location']}", headers=headers)
    assert g.status_code == 200 and g.json() == res and g.headers["ETag"] == '"1"'


def test_purpose_is_optional_and_may_be_null(res_url, alice, room):
    a = booked(res_url, alice, room["id"], utc_at(4, 9), utc_at(4, 10))
    b = booked(res_url, alice, room["id"], utc_at(4, 10), utc_at(4, 11), purpose=None)
    # docs/api.md#reservation-service: an absent purpose is stored empty, and stays so.
    assert a["purpose"] in ("", None) and b["purpose"] in ("", None), (a, b)
    for res in (a, b):
        g = requests.get(f"{res_url}/reservations/{res['id']}", headers=alice)
        assert g.status_code == 200 and g.json() == res


@pytest.mark.parametrize("purpose", ["x" * 200, "é" * 200, "\U0001F600" * 200, ""],
                         ids=["200-ascii", "200-two-byte", "200-emoji", "empty"])
def test_purpose_up_to_200_characters(res_url, alice, room, purpose):
    res = booked(res_url, alice, room["id"], utc_at(5, 9), utc_at(5, 10), purpose=purpose)
    assert res["purpose"] == purpose


@pytest.mark.parametrize("purpose", ["x" * 201, "é" * 201], ids=["201-ascii", "201-two-byte"])
def test_purpose_over_200_characters_is_422(res_url, alice, shared, purpose):
    r = book(res_url, alice, shared["id"], utc_at(5, 9), utc_at(5, 10), purpose=purpose)
    assert_error(r, 422, "validation_failed", detail="purpose")


# ---- times ----

@pytest.mark.parametrize("start,end,want_start,want_end", [
    ("T10:00:00+02:00", "T11:00:00+02:00", "T08:00:00Z", "T09:00:00Z"),
    ("T10:00:00-05:30", "T10:30:00-05:30", "T15:30:00Z", "T16:00:00Z"),
    ("t10:00:00z", "t11:00:00z", "T10:00:00Z", "T11:00:00Z"),
    ("T10:00:00.000Z", "T11:00:00.0Z", "T10:00:00Z", "T11:00:00Z"),
    ("T10:00:00+00:00", "T11:00:00-00:00", "T10:00:00Z", "T11:00:00Z"),
    ("T10:00:00", "T11:00:00", "T10:00:00Z", "T11:00:00Z"),
], ids=["plus-two", "minus-five-thirty", "lower-case", "zero-fraction", "zero-offsets",
        "utc-room-no-offset"])
def test_time_notations_are_stored_as_utc(res_url, alice, room, start, end, want_start,
                                          want_end):
    day = utc_at(6)[:10]
    res = booked(res_url, alice, room["id"], day + start, day + end)
    assert res["start_time"] == day + want_start and res["end_time"] == day + want_end


def test_offset_crossing_midnight_moves_the_date(res_url, alice, room):
    day = utc_at(7)[:10]
    res = booked(res_url, alice, room["id"], f"{day}T00:30:00+01:00", f"{day}T01:30:00+01:00")
    assert res["start_time"] == shift(f"{day}T00:00:00Z", minutes=-30)
    assert res["end_time"] == f"{day}T00:30:00Z"


@pytest.mark.parametrize("month", [1, 7], ids=["winter", "summer"])
def test_time_without_offset_is_the_rooms_local_time(res_url, alice, pool, month):
    """2027-01-15T10:00:00 in Europe/Berlin is 09:00Z; on 15 July (summer time) it is 08:00Z."""
    room = pool.take(time_zone="Europe/Berlin")
    d = next_local_date(month, 15)
    res = booked(res_url, alice, room["id"], f"{d}T10:00:00", f"{d}T11:30:00")
    want = "09" if month == 1 else "08"
    assert res["start_time"] == f"{d}T{want}:00:00Z", res
    assert res["end_time"] == shift(res["start_time"], minutes=90), res
    # An explicit offset still wins over the room's zone.
    res = booked(res_url, alice, room["id"], f"{d}T15:00:00Z", f"{d}T16:00:00+00:00")
    assert res["start_time"] == f"{d}T15:00:00Z" and res["end_time"] == f"{d}T16:00:00Z"


def test_local_times_across_the_spring_forward_night(res_url, alice, pool):
    """01:00 to 04:00 local on the night clocks jump from 02:00 to 03:00 is two real hours."""
    room = pool.take(time_zone="Europe/Berlin")
    d = next_spring_forward()
    res = booked(res_url, alice, room["id"], f"{d}T01:00:00", f"{d}T04:00:00")
    assert res["start_time"] == f"{d}T00:00:00Z" and res["end_time"] == f"{d}T02:00:00Z", res


@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_fractional_seconds_are_422(res_url, alice, shared, field):
    body = {"start_time": utc_at(8, 10), "end_time": utc_at(8, 11)}
    body[field] = body[field].replace("Z", ".5Z")
    r = book(res_url, alice, shared["id"], body["start_time"], body["end_time"])
    assert_error(r, 422, "validation_failed", detail=field)


@pytest.mark.parametrize("value", ["tomorrow", "", "2027-01-15", "2027-01-15 10:00:00Z",
                                   "2027-01-15T10:00Z", "2027-13-01T10:00:00Z",
                                   "2027-02-29T10:00:00Z", "2027-01-15T24:00:00Z",
                                   "2027-01-15T10:00:00+2:00", "2027-01-15T10:00:00+25:00",
                                   "2027-01-15T10:00:00ZZ", "2027-1-15T10:00:00Z",
                                   "2027-01-15T10:00:00.Z"])
@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_garbage_times_are_422_naming_the_field(res_url, alice, shared, field, value):
    body = {"room_id": shared["id"], "start_time": utc_at(9, 10), "end_time": utc_at(9, 11)}
    body[field] = value
    r = requests.post(f"{res_url}/reservations", json=body, headers=alice)
    assert_error(r, 422, "validation_failed", detail=field)


@pytest.mark.parametrize("value", [1700000000, None, ["2027-01-15T10:00:00Z"], True],
                         ids=["number", "null", "array", "bool"])
def test_times_of_the_wrong_type_are_422(res_url, alice, shared, value):
    body = {"room_id": shared["id"], "start_time": value, "end_time": utc_at(9, 11)}
    r = requests.post(f"{res_url}/reservations", json=body, headers=alice)
    assert_error(r, 422, "validation_failed", detail="start_time")


# ---- rules ----

def test_end_not_after_start_is_422_end_time(res_url, alice, shared):
    t = utc_at(10, 10)
    assert_error(book(res_url, alice, shared["id"], t, t), 422, "validation_failed",
                 detail="end_time")
    assert_error(book(res_url, alice, shared["id"], t, shift(t, hours=-1)), 422,
                 "validation_failed", detail="end_time")


def test_start_in_the_past_is_422_start_time(res_url, alice, shared):
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    start = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(book(res_url, alice, shared["id"], start, shift(start, hours=2)), 422,
                 "validation_failed", detail="start_time")
    start = (now - datetime.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(book(res_url, alice, shared["id"], start, shift(start, hours=1)), 422,
                 "validation_failed", detail="start_time")
    assert_error(book(res_url, alice, shared["id"], "2020-01-01T10:00:00Z",
                      "2020-01-01T11:00:00Z"), 422, "validation_failed", detail="start_time")


def test_start_a_minute_from_now_is_fine(res_url, alice, room):
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    start = (now + datetime.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    booked(res_url, alice, room["id"], start, shift(start, minutes=10))


@pytest.mark.parametrize("minutes,seconds,ok", [
    (5, 0, True), (4, 59, False), (4, 0, False), (0, 1, False),
    (1440, 0, True), (1441, 0, False), (2880, 0, False),
], ids=["5min", "4min59s", "4min", "1s", "1440min", "1441min", "2days"])
def test_duration_limits(res_url, alice, room, minutes, seconds, ok):
    start = utc_at(11, 8)
    r = book(res_url, alice, room["id"], start, shift(start, minutes=minutes, seconds=seconds))
    if ok:
        assert r.status_code == 201, r.text
    else:
        assert_error(r, 422, "validation_failed", detail="end_time")


def test_duration_just_over_the_maximum_is_422(res_url, alice, room):
    start = utc_at(12, 8)
    r = book(res_url, alice, room["id"], start, shift(start, minutes=1440, seconds=30))
    assert_error(r, 422, "validation_failed", detail="end_time")


def test_booking_horizon(res_url, alice, room):
    start = utc_at(364, 10)
    booked(res_url, alice, room["id"], start, shift(start, hours=1))
    start = utc_at(367, 10)
    assert_error(book(res_url, alice, room["id"], start, shift(start, hours=1)), 422,
                 "validation_failed", detail="start_time")
    start = utc_at(3650, 10)
    assert_error(book(res_url, alice, room["id"], start, shift(start, hours=1)), 422,
                 "validation_failed", detail="start_time")


def test_unknown_room_is_422_room_id(res_url, alice):
    for rid in (999999999, 9007199254740991):
        r = book(res_url, alice, rid, utc_at(13, 10), utc_at(13, 11))
        assert_error(r, 422, "validation_failed", detail="room_id")


@pytest.mark.parametrize("rid", ["1", 0, -1, 1.5, None, True, [1], 9007199254740992],
                         ids=["string", "zero", "negative", "float", "null", "bool", "array",
                              "too-big"])
def test_malformed_room_id_is_422(res_url, alice, rid):
    r = book(res_url, alice, rid, utc_at(13, 10), utc_at(13, 11))
    assert_error(r, 422, "validation_failed", detail="room_id")


def test_inactive_room_is_422_until_active_again(res_url, room_url, admin_headers, alice, room):
    start, end = utc_at(14, 10), utc_at(14, 11)
    url = f"{room_url}/rooms/{room['id']}"
    r = requests.put(url, json={"active": False}, headers=admin_headers)
    assert r.status_code == 200, r.text
    wait_room_state(res_url, alice, room["id"], inactive=True)
    assert_error(book(res_url, alice, room["id"], start, end), 422, "validation_failed",
                 detail="room_id")
    r = requests.put(url, json={"active": True}, headers=admin_headers)
    assert r.status_code == 200, r.text
    wait_room_state(res_url, alice, room["id"], inactive=False)
    booked(res_url, alice, room["id"], start, end)


def test_deleted_room_is_422_room_id(res_url, room_url, admin_headers, alice, room):
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers) \
        .status_code == 204
    wait_until(lambda: not room_bookable(res_url, alice, room["id"]), timeout=30, interval=0.1,
               what="room deleted in reservation-service")
    assert_error(book(res_url, alice, room["id"], utc_at(15, 10), utc_at(15, 11)), 422,
                 "validation_failed", detail="room_id")


# ---- the body ----

@pytest.mark.parametrize("missing", ["room_id", "start_time", "end_time"])
def test_missing_required_field_is_422(res_url, alice, shared, missing):
    body = {"room_id": shared["id"], "start_time": utc_at(16, 10), "end_time": utc_at(16, 11)}
    del body[missing]
    r = requests.post(f"{res_url}/reservations", json=body, headers=alice)
    assert_error(r, 422, "validation_failed", detail=missing)


def test_empty_object_names_every_required_field(res_url, alice):
    r = requests.post(f"{res_url}/reservations", json={}, headers=alice)
    body = assert_error(r, 422, "validation_failed")
    assert {"room_id", "start_time", "end_time"} <= set(body["details"]), body


@pytest.mark.parametrize("field", ["user_id", "status", "id", "title", "Room_id"])
def test_unknown_field_is_422(res_url, alice, room, field):
    r = book(res_url, alice, room["id"], utc_at(16, 10), utc_at(16, 11), **{field: 1})
    assert_error(r, 422, "validation_failed", detail=field)
    # Nothing was booked.
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"]}, headers=alice)
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("purpose", [5, ["a"], {"a": 1}, True], ids=["number", "array",
                                                                     "object", "bool"])
def test_purpose_of_the_wrong_type_is_422(res_url, alice, shared, purpose):
    r = book(res_url, alice, shared["id"], utc_at(16, 10), utc_at(16, 11), purpose=purpose)
    assert_error(r, 422, "validation_failed", detail="purpose")


@pytest.mark.parametrize("data,ctype,status,code", [
    ("{", "application/json", 400, "bad_request"),
    ("[]", "application/json", 400, "bad_request"),
    ("\"text\"", "application/json", 400, "bad_request"),
    ('{"room_id": 1, "room_id": 2, "start_time": "x", "end_time": "y"}', "application/json",
     None, None),
    ("room_id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("{}", "text/plain", 415, "unsupported_media_type"),
], ids=["malformed", "array", "string", "duplicate-key", "form", "text"])
def test_bad_bodies(res_url, alice, data, ctype, status, code):
    h = dict(alice)
    h["Content-Type"] = ctype
    r = requests.post(f"{res_url}/reservations", data=data, headers=h)
    if status is None:  # duplicate keys: 400 (docs/api.md#request-bodies); 422 tolerated
        assert r.status_code in (400, 422), r.text
        status, code = r.status_code, {400: "bad_request", 422: "validation_failed"}[r.status_code]
    assert_error(r, status, code)


def test_trailing_slash_works_without_redirect(res_url, alice, room):
    body = {"room_id": room["id"], "start_time": utc_at(17, 10), "end_time": utc_at(17, 11)}
    r = requests.post(f"{res_url}/reservations/", json=body, headers=alice, allow_redirects=False)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = requests.get(f"{res_url}/reservations/{rid}/", headers=alice, allow_redirects=False)
    assert r.status_code == 200 and r.json()["id"] == rid


# ---- overlaps ----

def test_overlap_is_409_with_the_conflicts(res_url, alice, bob, room):
    start, end = utc_at(18, 10), utc_at(18, 12)
    first = booked(res_url, alice, room["id"], start, end)
    conflict = [{"start_time": start, "end_time": end}]
    for s, e in [(start, end), (shift(start, minutes=-30), shift(start, minutes=30)),
                 (shift(end, minutes=-30), shift(end, minutes=30)),
                 (shift(start, minutes=30), shift(start, minutes=60)),
                 (shift(start, hours=-1), shift(end, hours=1)),
                 (shift(end, minutes=-1), shift(end, minutes=30))]:
        for who in (alice, bob):
            r = book(res_url, who, room["id"], s, e)
            body = assert_error(r, 409, "conflict")
            assert body["details"]["conflicts"] == conflict, (s, e, body)
    # The same instants written with an offset still clash.
    s = datetime.datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ") + datetime.timedelta(hours=2)
    r = book(res_url, bob, room["id"], s.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
             shift(start, minutes=5))
    assert_error(r, 409, "conflict")
    # Nothing but the first reservation exists.
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"]}, headers=alice)
    assert [x["id"] for x in r.json()] == [first["id"]]


def test_conflicts_list_every_overlapped_booking_in_order(res_url, alice, room):
    a = booked(res_url, alice, room["id"], utc_at(19, 9), utc_at(19, 10))
    b = booked(res_url, alice, room["id"], utc_at(19, 11), utc_at(19, 12))
    booked(res_url, alice, room["id"], utc_at(19, 14), utc_at(19, 15))
    r = book(res_url, alice, room["id"], utc_at(19, 9, 30), utc_at(19, 11, 30))
    body = assert_error(r, 409, "conflict")
    assert body["details"]["conflicts"] == [
        {"start_time": a["start_time"], "end_time": a["end_time"]},
        {"start_time": b["start_time"], "end_time": b["end_time"]}]


def test_back_to_back_bookings_do_not_conflict(res_url, alice, bob, room):
    start, end = utc_at(20, 10), utc_at(20, 11)
    booked(res_url, alice, room["id"], start, end)
    booked(res_url, bob, room["id"], end, shift(end, hours=1))
    booked(res_url, bob, room["id"], shift(start, hours=-1), start)
    # Touching with an offset notation as well.
    s = datetime.datetime.strptime(shift(end, hours=1), "%Y-%m-%dT%H:%M:%SZ")
    booked(res_url, alice, room["id"], (s + datetime.timedelta(hours=3)).strftime(
        "%Y-%m-%dT%H:%M:%S+03:00"), shift(end, hours=2))


def test_same_time_in_another_room_is_fine(res_url, alice, pool):
    one, two = pool.take(), pool.take()
    start, end = utc_at(21, 10), utc_at(21, 11)
    booked(res_url, alice, one["id"], start, end)
    booked(res_url, alice, two["id"], start, end)


def test_cancelling_frees_the_slot(res_url, alice, bob, room):
    start, end = utc_at(22, 10), utc_at(22, 11)
    first = booked(res_url, alice, room["id"], start, end)
    assert_error(book(res_url, bob, room["id"], start, end), 409, "conflict")
    r = requests.delete(f"{res_url}/reservations/{first['id']}", headers=alice)
    assert r.status_code == 204, r.text
    second = booked(res_url, bob, room["id"], start, end)
    assert second["id"] != first["id"]
    # The cancelled one does not show up as a conflict either.
    body = assert_error(book(res_url, alice, room["id"], start, end), 409, "conflict")
    assert body["details"]["conflicts"] == [{"start_time": start, "end_time": end}]


# ---- Idempotency-Key ----

def with_key(headers, key):
    h = dict(headers)
    h["Idempotency-Key"] = key
    return h


def test_idempotency_key_replays_the_first_response(res_url, alice, room):
    key = str(uuid.uuid4())
    body = {"room_id": room["id"], "start_time": utc_at(23, 10), "end_time": utc_at(23, 11),
            "purpose": "retry me"}
    r1 = requests.post(f"{res_url}/reservations", json=body, headers=with_key(alice, key))
    assert r1.status_code == 201, r1.text
    assert "Idempotent-Replayed" not in r1.headers
    r2 = requests.post(f"{res_url}/reservations", json=body, headers=with_key(alice, key))
    assert r2.status_code == 201, r2.text
    assert r2.json() == r1.json()
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.headers["Location"] == r1.headers["Location"]
    assert r2.headers["ETag"] == r1.headers["ETag"]
    # The same body with other key order and spacing is the same request.
    text = (f'{{ "purpose": "retry me", "end_time": "{body["end_time"]}", '
            f'"start_time": "{body["start_time"]}", "room_id": {room["id"]:d} }}')
    h = with_key(alice, key)
    h["Content-Type"] = "application/json"
    r3 = requests.post(f"{res_url}/reservations", data=text, headers=h)
    assert r3.status_code == 201 and r3.json() == r1.json(), r3.text
    # Exactly one reservation exists.
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"]}, headers=alice)
    assert [x["id"] for x in r.json()] == [r1.json()["id"]]


def test_idempotency_key_with_another_body_is_422(res_url, alice, room):
    key = str(uuid.uuid4())
    r1 = requests.post(f"{res_url}/reservations", headers=with_key(alice, key),
                       json={"room_id": room["id"], "start_time": utc_at(24, 10),
                             "end_time": utc_at(24, 11)})
    assert r1.status_code == 201, r1.text
    r2 = requests.post(f"{res_url}/reservations", headers=with_key(alice, key),
                       json={"room_id": room["id"], "start_time": utc_at(24, 12),
                             "end_time": utc_at(24, 13)})
    assert_error(r2, 422, "validation_failed")
    r3 = requests.post(f"{res_url}/reservations", headers=with_key(alice, key),
                       json={"room_id": room["id"], "start_time": utc_at(24, 10),
                             "end_time": utc_at(24, 11), "purpose": "changed"})
    assert_error(r3, 422, "validation_failed")
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"]}, headers=alice)
    assert [x["id"] for x in r.json()] == [r1.json()["id"]]


def test_idempotency_keys_are_per_user(res_url, users, room):
    (alice, _), (bob, bob_id) = users["alice"], users["bob"]
    key = str(uuid.uuid4())
    r1 = requests.post(f"{res_url}/reservations", headers=with_key(alice, key),
                       json={"room_id": room["id"], "start_time": utc_at(25, 10),
                             "end_time": utc_at(25, 11)})
    assert r1.status_code == 201, r1.text
    r2 = requests.post(f"{res_url}/reservations", headers=with_key(bob, key),
                       json={"room_id": room["id"], "start_time": utc_at(25, 12),
                             "end_time": utc_at(25, 13)})
    assert r2.status_code == 201, r2.text
    assert "Idempotent-Replayed" not in r2.headers
    assert r2.json()["id"] != r1.json()["id"] and r2.json()["user_id"] == bob_id
    # Bob repeating Alice's exact request under her key gets no replay of her reservation: his
    # own attempt clashes with it.
    key = str(uuid.uuid4())
    body = {"room_id": room["id"], "start_time": utc_at(25, 14), "end_time": utc_at(25, 15)}
    r3 = requests.post(f"{res_url}/reservations", headers=with_key(alice, key), json=body)
    assert r3.status_code == 201, r3.text
    r4 = requests.post(f"{res_url}/reservations", headers=with_key(bob, key), json=body)
    assert_error(r4, 409, "conflict")


def test_failed_request_does_not_use_up_the_key(res_url, alice, bob, room):
    start, end = utc_at(26, 10), utc_at(26, 11)
    blocker = booked(res_url, bob, room["id"], start, end)
    key = str(uuid.uuid4())
    body = {"room_id": room["id"], "start_time": start, "end_time": end}
    assert_error(requests.post(f"{res_url}/reservations", json=body,
                               headers=with_key(alice, key)), 409, "conflict")
    assert requests.delete(f"{res_url}/reservations/{blocker['id']}", headers=bob) \
        .status_code == 204
    r = requests.post(f"{res_url}/reservations", json=body, headers=with_key(alice, key))
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\there"], ids=["too-long", "space",
                                                                              "tab"])
def test_malformed_idempotency_key_is_400(res_url, alice, room, key):
    r = requests.post(f"{res_url}/reservations", headers=with_key(alice, key),
                      json={"room_id": room["id"], "start_time": utc_at(27, 10),
                            "end_time": utc_at(27, 11)})
    assert_error(r, 400, "bad_request")
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"]}, headers=alice)
    assert r.json() == []


# ---- HTTP conventions on these routes ----

def test_nul_in_purpose_is_422(res_url, alice, shared):
    r = book(res_url, alice, shared["id"], utc_at(28, 10), utc_at(28, 11), purpose="a\u0000b")
    assert_error(r, 422, "validation_failed", detail="purpose")


def test_body_over_the_limit_is_413(res_url, alice):
    h = dict(alice)
    h["Content-Type"] = "application/json"
    r = requests.post(f"{res_url}/reservations", data="{" + " " * 70000 + "}", headers=h)
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("method,path,allow", [
    ("PATCH", "/reservations/1", {"GET", "PUT", "DELETE"}),
    ("POST", "/reservations/1", {"GET", "PUT", "DELETE"}),
    ("DELETE", "/reservations", {"GET", "POST"}),
    ("POST", "/availability", {"GET"}),
    ("PUT", "/availability/rooms/1", {"GET"}),
])
def test_unsupported_method_is_405_with_allow(res_url, alice, method, path, allow):
    r = requests.request(method, f"{res_url}{path}", json={}, headers=alice)
    assert_error(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allow, r.headers


def test_request_id_is_echoed(res_url, alice, shared):
    h = dict(alice)
    h["X-Request-ID"] = "res-api.Create_1"
    r = requests.post(f"{res_url}/reservations", json={}, headers=h)
    body = assert_error(r, 422, "validation_failed")
    assert r.headers["X-Request-ID"] == "res-api.Create_1" == body["request_id"]
