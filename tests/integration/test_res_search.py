"""Finding a room (docs/api.md#finding-a-room): GET /availability/rooms (filters, ranking, free
windows, rooms whose details are unknown, DST and midnight, room changes through the real
broker, errors), ?suggest= and the alternatives of a 409 on POST and PUT /reservations.

The database is shared by the whole session, so every test names its rooms with a token of its
own and searches with q=<token> (q also applies to rooms whose details are unknown)."""
import datetime
import json
import time
import uuid

import pytest
import requests

from harness import (
    assert_error,
    book,
    booked,
    create_room,
    next_dst_days,
    res_db_query,
    utc_at,
    wait_known_room,
)

ITEM_KEYS = {"room", "fits"}
ROOM_KEYS = {"id", "name", "capacity", "equipment", "building", "floor", "time_zone", "active"}
FITS_KEYS = {"spare_seats", "extra_equipment", "details_known"}


@pytest.fixture()
def token():
    return uuid.uuid4().hex[:10]


def make_rooms(room_url, res_url, headers, token, specs):
    """Rooms named "<label> <token>" with the given fields, known to reservation-service;
    returns {label: room}."""
    rooms = {label: create_room(room_url, headers, name=f"{label} {token}", **fields)
             for label, fields in specs.items()}
    for room in rooms.values():
        wait_known_room(res_url, headers, room["id"], timeout=15)
    return rooms


def search(res_url, headers, **params):
    r = requests.get(f"{res_url}/availability/rooms", params=params, headers=headers,
                     timeout=10)
    return r


def found(res_url, headers, **params):
    r = search(res_url, headers, **params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    items = body["rooms"] if "suggest" in params else body
    for item in items:
        assert set(item) == ITEM_KEYS and set(item["room"]) == ROOM_KEYS, item
        assert set(item["fits"]) == FITS_KEYS, item
    return body


def ids(items):
    return [i["room"]["id"] for i in items]


def window(days, start_hour, end_hour):
    return {"start": utc_at(days, start_hour), "end": utc_at(days, end_hour)}


def test_ranking_capacity_and_equipment_case_insensitively(room_url, res_url, admin_headers,
                                                           alice, token):
    rooms = make_rooms(room_url, res_url, admin_headers, token, {
        "Dune": dict(capacity=10, equipment=["Projector"], building="HQ", floor=2),
        "Cedar": dict(capacity=6, equipment=["projector", "Whiteboard"], building="HQ",
                      floor=2),
        "Birch": dict(capacity=6, equipment=["PROJECTOR"], building="HQ", floor=3),
        "Aspen": dict(capacity=6, equipment=["projector"], building="Annex", floor=2),
        "Tiny": dict(capacity=2, equipment=["projector"], building="HQ", floor=2),
        "Bare": dict(capacity=8, equipment=["Whiteboard"], building="HQ", floor=2),
        "Exact": dict(capacity=4, equipment=["Projector"], building="HQ", floor=2),
    })
    body = found(res_url, alice, q=token, capacity=4, equipment="projector", **window(40, 9, 10))
    # Smallest sufficient capacity, then fewest extra items, then name.
    assert ids(body) == [rooms[k]["id"] for k in ("Exact", "Aspen", "Birch", "Cedar", "Dune")]
    first, cedar = body[0], body[3]
    assert first["room"] == {"id": rooms["Exact"]["id"], "name": f"Exact {token}", "capacity": 4,
                             "equipment": ["Projector"], "building": "HQ", "floor": 2,
                             "time_zone": "UTC", "active": True}
    assert first["fits"] == {"spare_seats": 0, "extra_equipment": [], "details_known": True}
    assert cedar["fits"] == {"spare_seats": 2, "extra_equipment": ["Whiteboard"],
                             "details_known": True}
    # Every listed item is required, in any case; building exact but case-insensitive; floor.
    assert ids(found(res_url, alice, q=token, equipment="WHITEBOARD, Projector",
                     **window(40, 9, 10))) == [rooms["Cedar"]["id"]]
    assert ids(found(res_url, alice, q=token, capacity=6, building="hq", floor=2,
                     **window(40, 9, 10))) == [rooms["Cedar"]["id"], rooms["Bare"]["id"],
                                               rooms["Dune"]["id"]]
    assert ids(found(res_url, alice, q=token, building="H", **window(40, 9, 10))) == []
    assert ids(found(res_url, alice, q=token, floor=3, **window(40, 9, 10))) == \
        [rooms["Birch"]["id"]]
    # limit cuts the ranked list.
    assert ids(found(res_url, alice, q=token, capacity=4, equipment="projector", limit=2,
                     **window(40, 9, 10))) == [rooms["Exact"]["id"], rooms["Aspen"]["id"]]
    # suggest counts the rooms that fit, not those limit lets through: five fit, none suggested.
    body = found(res_url, alice, q=token, capacity=4, equipment="projector", limit=1, suggest=3,
                 **window(40, 9, 10))
    assert ids(body["rooms"]) == [rooms["Exact"]["id"]] and body["alternatives"] == []


def test_q_is_a_literal_case_insensitive_name_substring(room_url, res_url, admin_headers, alice,
                                                        token):
    rooms = make_rooms(room_url, res_url, admin_headers, token, {
        "Sale 50%_off": {}, "Sale 50xyoff": {}, "Other": {}})
    assert ids(found(res_url, alice, q=f"50%_OFF {token}", **window(41, 9, 10))) == \
        [rooms["Sale 50%_off"]["id"]]
    assert ids(found(res_url, alice, q=f"50XYOFF {token}", **window(41, 9, 10))) == \
        [rooms["Sale 50xyoff"]["id"]]
    assert sorted(ids(found(res_url, alice, q=token, **window(41, 9, 10)))) == \
        sorted(room["id"] for room in rooms.values())
    # An empty answer is [] with 200.
    assert found(res_url, alice, q=f"nothing {token}", **window(41, 9, 10)) == []


def test_only_rooms_free_for_the_whole_window_touching_is_free(room_url, res_url, admin_headers,
                                                               alice, bob, token):
    rooms = make_rooms(room_url, res_url, admin_headers, token, {"Busy": {}, "Free": {}})
    busy = rooms["Busy"]["id"]
    booked(res_url, bob, busy, utc_at(42, 10), utc_at(42, 11))
    booked(res_url, bob, busy, utc_at(42, 12), utc_at(42, 13))
    assert ids(found(res_url, alice, q=token, **window(42, 11, 12))) == \
        sorted([busy, rooms["Free"]["id"]])
    assert ids(found(res_url, alice, q=token, start=utc_at(42, 10, 30),
                     end=utc_at(42, 11, 30))) == [rooms["Free"]["id"]]
    assert ids(found(res_url, alice, q=token, start=utc_at(42, 11), end=utc_at(42, 12, 0, 1))) \
        == [rooms["Free"]["id"]]
    # A cancelled reservation no longer blocks; the window may lie in the past (a search only).
    res = booked(res_url, bob, busy, utc_at(43, 10), utc_at(43, 11))
    assert requests.delete(f"{res_url}/reservations/{res['id']}", headers=bob).status_code == 204
    assert busy in ids(found(res_url, alice, q=token, **window(43, 10, 11)))
    assert busy in ids(found(res_url, alice, q=token, **window(-3, 10, 11)))
    # Offsets are honoured: 12:30+02:00 is 10:30Z.
    d = utc_at(42)[:10]
    assert ids(found(res_url, alice, q=token, start=f"{d}T12:30:00+02:00",
                     end=f"{d}T13:00:00+02:00")) == [rooms["Free"]["id"]]


def test_inactive_and_deleted_rooms_are_never_listed(stack, room_url, res_url, admin_headers,
                                                     alice, token):
    rooms = make_rooms(room_url, res_url, admin_headers, token, {
        "Off": dict(active=False), "Gone": {}, "On": {}})
    r = requests.delete(f"{room_url}/rooms/{rooms['Gone']['id']}", headers=admin_headers)
    assert r.status_code == 204
    deadline_until(lambda: ids(found(res_url, alice, q=token, **window(44, 9, 10))) ==
                   [rooms["On"]["id"]], 5, "deleted room gone")


def deadline_until(predicate, seconds, what):
    """predicate() becomes true within seconds (polled); returns the time it took."""
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < seconds, f"{what}: not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_room_changes_reach_the_search_within_2_seconds(room_url, res_url, admin_headers, alice,
                                                        token):
    room = make_rooms(room_url, res_url, admin_headers, token, {
        "Moving": dict(capacity=8, equipment=["Projector", "TV"])})["Moving"]
    rid, w = room["id"], window(45, 9, 10)

    def listed(**params):
        return rid in ids(found(res_url, alice, q=token, **params, **w))

    assert listed(capacity=8, equipment="tv")

    def change(what, body, gone, **params):
        r = requests.put(f"{room_url}/rooms/{rid}", json=body, headers=admin_headers)
        assert r.status_code == 200, r.text
        return deadline_until(lambda: not listed(**params) and
                              (gone or listed()), 2.0, what)

    change("capacity lowered", {"capacity": 6}, False, capacity=8)
    change("equipment removed", {"equipment": ["Projector"]}, False, equipment="tv")
    change("deactivated", {"active": False}, True)
    r = requests.put(f"{room_url}/rooms/{rid}", json={"active": True}, headers=admin_headers)
    assert r.status_code == 200
    deadline_until(lambda: listed(), 2.0, "reactivated")
    assert requests.delete(f"{room_url}/rooms/{rid}", headers=admin_headers).status_code == 204
    deadline_until(lambda: not listed(), 2.0, "deleted")


def test_rooms_with_unknown_details_are_listed_last_and_marked(stack, room_url, res_url,
                                                               admin_headers, alice, token):
    rooms = make_rooms(room_url, res_url, admin_headers, token, {
        "Old": dict(capacity=4, equipment=["Projector"], building="HQ"),
        "Big": dict(capacity=12, equipment=["Projector"], building="HQ"),
        "Small": dict(capacity=2, equipment=["Projector"], building="HQ")})
    old, small = rooms["Old"]["id"], rooms["Small"]["id"]
    # What a copy made before the details were kept looks like (test_res_room_copy.py).
    res_db_query(stack.pg, "UPDATE rooms SET equipment = '{}', building = NULL, floor = NULL, "
                           "details_known = false WHERE id = ANY(%s)", [old, small])
    try:
        # Filters it cannot be judged on do not hide it; capacity (known) still does.
        body = found(res_url, alice, q=token, capacity=3, equipment="projector", building="HQ",
                     **window(46, 9, 10))
        assert ids(body) == [rooms["Big"]["id"], old]
        assert body[1]["fits"] == {"spare_seats": 1, "extra_equipment": [],
                                   "details_known": False}
        assert body[1]["room"]["equipment"] == [] and body[1]["room"]["building"] is None
        assert body[0]["fits"]["details_known"] is True
    finally:
        res_db_query(stack.pg, "UPDATE rooms SET equipment = '{Projector}', building = 'HQ', "
                               "details_known = true WHERE id = ANY(%s)", [old, small])


def dst_days():
    """(spring, autumn): the next days Europe/Berlin's clocks go forward (23 h) and back (25 h),
    computed with zoneinfo, so the test never runs out of dates.  Both change at 01:00Z."""
    days = dict((hours, date) for date, hours in next_dst_days())
    return days[23], days[25]


def test_local_times_across_dst_changes(room_url, res_url, admin_headers, alice, bob, token):
    spring, autumn = dst_days()
    room = make_rooms(room_url, res_url, admin_headers, token, {
        "Berlin": dict(time_zone="Europe/Berlin")})["Berlin"]
    rid = room["id"]
    # Spring: local 01:30-03:30 is 00:30Z-01:30Z (one hour: 02:00 is skipped).
    booked(res_url, bob, rid, f"{spring}T01:30:00Z", f"{spring}T02:00:00Z")
    assert rid in ids(found(res_url, alice, q=token, time_zone="Europe/Berlin",
                            start=f"{spring}T01:30:00", end=f"{spring}T03:30:00"))
    assert rid not in ids(found(res_url, alice, q=token, time_zone="Europe/Berlin",
                                start=f"{spring}T01:30:00", end=f"{spring}T03:31:00"))
    # Without time_zone the same wall-clock times are UTC.
    assert rid not in ids(found(res_url, alice, q=token, start=f"{spring}T01:30:00",
                                end=f"{spring}T03:30:00"))
    # Autumn: local 01:00-04:00 is 23:00Z-03:00Z (four hours: 02:00-03:00 twice).
    booked(res_url, bob, rid, f"{autumn}T02:00:00Z", f"{autumn}T02:30:00Z")
    assert rid not in ids(found(res_url, alice, q=token, time_zone="Europe/Berlin",
                                start=f"{autumn}T01:00:00", end=f"{autumn}T04:00:00"))
    assert rid in ids(found(res_url, alice, q=token, time_zone="Europe/Berlin",
                            start=f"{autumn}T01:00:00", end=f"{autumn}T03:00:00"))


def test_skipped_and_repeated_local_times_read_as_a_booking_reads_them(
        room_url, res_url, admin_headers, alice, bob, token):
    """docs/api.md#time-rules: a wall-clock time that does not exist (skipped when clocks go
    forward) or exists twice (when they go back) is read in standard time (+01:00 in Berlin),
    by the search as by POST /reservations."""
    spring, autumn = dst_days()
    room = make_rooms(room_url, res_url, admin_headers, token, {
        "Gap": dict(time_zone="Europe/Berlin")})["Gap"]
    rid, berlin = room["id"], dict(q=token, time_zone="Europe/Berlin")
    # Skipped 02:10 is 01:10Z (03:10 summer time); 03:20 exists: 01:20Z.
    made = booked(res_url, bob, rid, f"{spring}T02:10:00", f"{spring}T03:20:00")
    assert (made["start_time"], made["end_time"]) == (f"{spring}T01:10:00Z", f"{spring}T01:20:00Z")
    # Skipped 02:00 is 01:00Z: free until 03:10 (01:10Z), not one minute longer.
    assert rid in ids(found(res_url, alice, start=f"{spring}T02:00:00", end=f"{spring}T03:10:00",
                            **berlin))
    assert rid not in ids(found(res_url, alice, start=f"{spring}T02:00:00",
                                end=f"{spring}T03:11:00", **berlin))
    # Skipped 02:30 and 03:30 are both 01:30Z: end not after start, for both, naming the end.
    assert_error(search(res_url, alice, start=f"{spring}T02:30:00", end=f"{spring}T03:30:00",
                        **berlin), 422, "validation_failed", detail="end")
    assert_error(book(res_url, bob, rid, f"{spring}T02:30:00", f"{spring}T03:30:00"), 422,
                 "validation_failed", detail="end_time")
    # Repeated 02:30 is the second one, 01:30Z (not 00:30Z, the first).
    made = booked(res_url, bob, rid, f"{autumn}T02:30:00", f"{autumn}T02:45:00")
    assert (made["start_time"], made["end_time"]) == (f"{autumn}T01:30:00Z", f"{autumn}T01:45:00Z")
    assert rid not in ids(found(res_url, alice, start=f"{autumn}T02:15:00",
                                end=f"{autumn}T02:40:00", **berlin))
    assert rid in ids(found(res_url, alice, q=token, start=f"{autumn}T02:15:00+02:00",
                            end=f"{autumn}T02:40:00+02:00"))


def test_window_across_midnight(room_url, res_url, admin_headers, alice, bob, token):
    room = make_rooms(room_url, res_url, admin_headers, token, {
        "Night": dict(time_zone="Europe/Berlin")})["Night"]
    rid = room["id"]
    d0, d1 = utc_at(47)[:10], utc_at(48)[:10]
    booked(res_url, bob, rid, f"{d1}T00:30:00", f"{d1}T01:30:00")  # the room's local time
    q = dict(q=token, time_zone="Europe/Berlin")
    assert rid not in ids(found(res_url, alice, start=f"{d0}T23:00:00", end=f"{d1}T01:00:00",
                                **q))
    assert rid in ids(found(res_url, alice, start=f"{d0}T22:30:00", end=f"{d1}T00:30:00", **q))
    # Suggestions stay in the local day the window starts in (Berlin's, as time_zone says).
    body = found(res_url, alice, start=f"{d0}T23:00:00", end=f"{d1}T01:00:00", suggest=2, **q)
    assert body["rooms"] == []
    starts = [a["start_time"] for a in body["alternatives"]]
    assert len(starts) == 2, body
    assert all(a["rooms"] and ids(a["rooms"]) == [rid] for a in body["alternatives"])
    # 22:00-24:00 local is the nearest; every alternative ends by local midnight.
    local_midnight = datetime.datetime.fromisoformat(f"{d1}T00:00:00").replace(
        tzinfo=datetime.timezone(datetime.timedelta(hours=1 if is_winter(d0) else 2)))
    for a in body["alternatives"]:
        end = datetime.datetime.fromisoformat(a["end_time"].replace("Z", "+00:00"))
        assert end <= local_midnight, a
    assert datetime.datetime.fromisoformat(body["alternatives"][0]["end_time"].replace(
        "Z", "+00:00")) == local_midnight


def is_winter(date):
    """Europe/Berlin is on +01:00 on date (between the last Sundays of October and March)."""
    import zoneinfo
    d = datetime.datetime.fromisoformat(f"{date}T12:00:00").replace(
        tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    return d.utcoffset() == datetime.timedelta(hours=1)


@pytest.mark.parametrize("params,status,name", [
    ({"start": None}, 400, "start"),
    ({"end": None}, 400, "end"),
    ({"start": "tomorrow"}, 400, "start"),
    ({"start": "2030-01-01T09:00:00.5Z"}, 400, "start"),
    ({"time_zone": "Mars/Olympus"}, 400, "time_zone"),
    ({"time_zone": "../etc/passwd"}, 400, "time_zone"),
    ({"capacity": "0"}, 400, "capacity"),
    ({"capacity": "six"}, 400, "capacity"),
    ({"floor": "1.5"}, 400, "floor"),
    ({"limit": "101"}, 400, "limit"),
    ({"limit": "0"}, 400, "limit"),
    ({"suggest": "11"}, 400, "suggest"),
    ({"suggest": "0"}, 400, "suggest"),
    ({"equipment": "x" * 51}, 400, "equipment"),
    ({"q": "x" * 201}, 400, "q"),
    ({"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T10:00:00Z"}, 422, "end"),
    ({"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}, 422, "end"),
    ({"start": "2030-01-01T10:00:00Z", "end": "2030-01-02T10:00:01Z"}, 422, "end"),
    # Local times in the zone: 2030-03-31 has 23 hours in Berlin, so 00:00-00:00 is not > 1 day.
    ({"start": "2030-03-31T00:00:00", "end": "2030-04-01T00:00:00",
      "time_zone": "Europe/Berlin"}, 200, None),
    ({"start": "2030-10-27T00:00:00", "end": "2030-10-28T00:00:00",
      "time_zone": "Europe/Berlin"}, 422, "end"),
])
def test_invalid_parameters_are_named(res_url, alice, params, status, name):
    query = {"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z", "q": "nothing"}
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    r = search(res_url, alice, **query)
    if status == 200:
        assert r.status_code == 200, r.text
        return
    body = assert_error(r, status, "bad_request" if status == 400 else "validation_failed",
                        detail=name)
    assert name in body["message"], body


def test_empty_building_and_q_are_ignored(room_url, res_url, admin_headers, alice, token):
    """As the day grid and room-service's list ignore them."""
    # A building of its own: other tests of the module put rooms in B-<token>.
    rid = make_rooms(room_url, res_url, admin_headers, token, {
        "Plain": dict(building=f"Empty-{token}")})["Plain"]["id"]
    w = window(54, 9, 10)
    assert ids(found(res_url, alice, q=f"Plain {token}", building="", **w)) == [rid]
    # Rooms whose details are unknown (other modules' copies) cannot be judged by building and
    # are listed too, marked: only the known ones must be this one.
    known = [i for i in found(res_url, alice, q="", building=f"Empty-{token}", **w)
             if i["fits"]["details_known"]]
    assert ids(known) == [rid]


def test_search_needs_a_token(res_url):
    r = requests.get(f"{res_url}/availability/rooms",
                     params={"start": "2030-01-01T09:00:00Z", "end": "2030-01-01T10:00:00Z"})
    assert_error(r, 401, "unauthorized")


def test_suggest_nearest_free_windows_of_the_same_length(room_url, res_url, admin_headers, alice,
                                                         bob, token):
    rooms = make_rooms(room_url, res_url, admin_headers, token, {"Only": dict(capacity=6)})
    rid = rooms["Only"]["id"]
    for start, end in ((10, 11), (11, 12), (13, 14)):
        booked(res_url, bob, rid, utc_at(50, start), utc_at(50, end))
    body = found(res_url, alice, q=token, capacity=5, suggest=3, **window(50, 11, 12))
    assert set(body) == {"rooms", "alternatives"} and body["rooms"] == []
    # 12-13 (1 h later), 09-10 (2 h earlier), 14-15 (3 h later); each with its rooms.
    assert [(a["start_time"], a["end_time"]) for a in body["alternatives"]] == [
        (utc_at(50, 12), utc_at(50, 13)), (utc_at(50, 9), utc_at(50, 10)),
        (utc_at(50, 14), utc_at(50, 15))]
    for a in body["alternatives"]:
        assert ids(a["rooms"]) == [rid] and a["rooms"][0]["fits"]["spare_seats"] == 1
    # Enough rooms fit: no alternatives.
    body = found(res_url, alice, q=token, suggest=1, **window(50, 12, 13))
    assert ids(body["rooms"]) == [rid] and body["alternatives"] == []
    # Never a window starting in the past: today's windows that already began are not offered.
    now = datetime.datetime.now(datetime.UTC)
    body = found(res_url, alice, q=token, suggest=10, start=utc_at(0, 0), end=utc_at(0, 0, 1))
    for a in body["alternatives"]:
        assert datetime.datetime.fromisoformat(a["start_time"].replace("Z", "+00:00")) > now


def test_409_alternatives_on_create_and_update(room_url, res_url, admin_headers, alice, bob,
                                               token):
    kit = f"Holodeck-{token}"
    rooms = make_rooms(room_url, res_url, admin_headers, token, {
        "Wanted": dict(capacity=6, equipment=[kit]),
        "Bigger": dict(capacity=8, equipment=[kit.upper(), "TV"]),
        "Same": dict(capacity=6, equipment=[kit.lower()]),
        "AlsoBusy": dict(capacity=6, equipment=[kit]),
        "TooSmall": dict(capacity=4, equipment=[kit]),
        "Lacking": dict(capacity=10, equipment=["TV"]),
        "Closed": dict(capacity=6, equipment=[kit], active=False),
    })
    wanted, day = rooms["Wanted"]["id"], 52
    booked(res_url, bob, wanted, utc_at(day, 10), utc_at(day, 11))
    booked(res_url, bob, rooms["AlsoBusy"]["id"], utc_at(day, 10, 30), utc_at(day, 11, 30))

    r = book(res_url, alice, wanted, utc_at(day, 10), utc_at(day, 11))
    details = assert_error(r, 409, "conflict")["details"]
    assert details["conflicts"] == [{"start_time": utc_at(day, 10), "end_time": utc_at(day, 11)}]
    alt = details["alternatives"]
    assert set(alt) == {"times", "rooms"}
    # Nearest first, the earlier on a tie: 09-10 and 11-12 (1 h away), then 00-01 (10 h).
    assert alt["times"] == [{"start_time": utc_at(day, 9), "end_time": utc_at(day, 10)},
                            {"start_time": utc_at(day, 11), "end_time": utc_at(day, 12)},
                            {"start_time": utc_at(day, 0), "end_time": utc_at(day, 1)}]
    assert ids(alt["rooms"]) == [rooms["Same"]["id"], rooms["Bigger"]["id"]]
    assert alt["rooms"][1]["fits"] == {"spare_seats": 2, "extra_equipment": ["TV"],
                                       "details_known": True}
    # Suggestions only: nothing was booked or held.
    booked(res_url, bob, rooms["Same"]["id"], utc_at(day, 10), utc_at(day, 11))

    # PUT: alice's own reservation does not count as busy for its alternatives.
    mine = booked(res_url, alice, wanted, utc_at(day, 14), utc_at(day, 15))
    r = requests.put(f"{res_url}/reservations/{mine['id']}", headers=alice,
                     json={"start_time": utc_at(day, 10, 30), "end_time": utc_at(day, 11, 30)})
    details = assert_error(r, 409, "conflict")["details"]
    assert details["conflicts"] == [{"start_time": utc_at(day, 10), "end_time": utc_at(day, 11)}]
    assert details["alternatives"]["times"] == [
        {"start_time": utc_at(day, 11), "end_time": utc_at(day, 12)},
        {"start_time": utc_at(day, 9), "end_time": utc_at(day, 10)},
        {"start_time": utc_at(day, 0), "end_time": utc_at(day, 1)}]
    # "Same" is now busy 10-11; "AlsoBusy" 10:30-11:30.
    assert ids(details["alternatives"]["rooms"]) == [rooms["Bigger"]["id"]]
    # Moving to another room: the alternatives are about the room asked for.
    r = requests.put(f"{res_url}/reservations/{mine['id']}", headers=alice,
                     json={"room_id": rooms["Same"]["id"], "start_time": utc_at(day, 10),
                           "end_time": utc_at(day, 11)})
    details = assert_error(r, 409, "conflict")["details"]
    assert ids(details["alternatives"]["rooms"]) == [rooms["Bigger"]["id"]]
    assert details["alternatives"]["times"][0] == {"start_time": utc_at(day, 9),
                                                   "end_time": utc_at(day, 10)}


def test_409_alternative_times_only_where_the_room_is_free(room_url, res_url, admin_headers,
                                                           alice, bob, token):
    room = make_rooms(room_url, res_url, admin_headers, token, {"Soon": {}})["Soon"]
    # Tomorrow 00:00-23:00 taken: only 23:00-24:00 is left of that day for a one-hour meeting.
    booked(res_url, bob, room["id"], utc_at(1, 0), utc_at(1, 23))
    r = book(res_url, alice, room["id"], utc_at(1, 12), utc_at(1, 13))
    alt = assert_error(r, 409, "conflict")["details"]["alternatives"]
    assert alt["times"] == [{"start_time": utc_at(1, 23), "end_time": utc_at(2, 0)}]


def epoch(ts):
    return int(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())


def test_409_alternatives_are_computed_after_the_room_lock_is_released(
        stack, room_url, res_url, admin_headers, users, alice, bob, token):
    """The alternatives of a 409 are computed in the refused booking's transaction, but once
    the room's row lock is released: while that transaction is still open, another booking of
    the room goes through at once instead of queueing behind it.  The calls are those repo.c
    makes (res_book_answer, res_change_answer), held open here by hand."""
    import psycopg2
    rid = make_rooms(room_url, res_url, admin_headers, token, {"Popular": {}})["Popular"]["id"]
    day, uid, now = 55, users["alice"][1], int(time.time())
    booked(res_url, bob, rid, utc_at(day, 10), utc_at(day, 11))
    mine = booked(res_url, alice, rid, utc_at(day, 14), utc_at(day, 15))
    ten, eleven = epoch(utc_at(day, 10)), epoch(utc_at(day, 11))
    calls = [
        ("SELECT outcome, alternatives FROM res_book_answer(%s, %s, '', %s, NULL, %s, NULL, "
         "%s, 'reservation_events', NULL, NULL, %s, 300, 86400, 365 * 86400)",
         (rid, uid, ten, eleven, now * 1000, now)),
        ("SELECT outcome, alternatives FROM res_change_answer(%s, %s, false, NULL, NULL, %s, "
         "NULL, %s, NULL, true, 0, 'reservation_events', %s, 300, 86400, 365 * 86400)",
         (mine["id"], uid, ten, eleven, now)),
    ]
    for i, (sql, params) in enumerate(calls):
        conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                outcome, alternatives = cur.fetchone()
            assert outcome == "conflict" and alternatives, (outcome, alternatives)
            assert set(json.loads(alternatives)) == {"times", "rooms"}
            # The transaction of the refusal is still open: the room is not held by it.
            r = requests.post(f"{res_url}/reservations", headers=bob, timeout=5, json={
                "room_id": rid, "start_time": utc_at(day, 16 + i),
                "end_time": utc_at(day, 17 + i)})
            assert r.status_code == 201, r.text
        finally:
            conn.rollback()
            conn.close()


def test_the_search_keeps_a_buffer_set_later(stack, room_url, res_url, admin_headers, alice,
                                             bob, token):
    """A booking made before its room had a buffer (its own snapshot: none) is kept apart by
    the room's buffer once the room has one, in a search as in a booking (review 15a M1; the
    search's test of it was rewritten by migration 023)."""
    rooms = make_rooms(room_url, res_url, admin_headers, token, {"Later": {}, "Plain": {}})
    rid = rooms["Later"]["id"]
    w = window(10, 10, 11)
    booked(res_url, alice, rid, w["start"], w["end"])
    r = requests.put(f"{room_url}/rooms/{rid}", headers=admin_headers, timeout=10,
                     json={"policies": {"buffer_minutes": 15}})
    assert r.status_code == 200, r.text
    deadline = time.time() + 30
    while res_db_query(stack.pg, "SELECT policies->>'buffer_minutes' FROM rooms WHERE id = %s",
                       rid) != [("15",)]:
        assert time.time() < deadline, "the buffer copied"
        time.sleep(0.1)
    after = {"start": utc_at(10, 11, 5), "end": utc_at(10, 12)}
    assert ids(found(res_url, bob, q=token, **after)) == [rooms["Plain"]["id"]]
    # Ending five minutes before it: the room's buffer after the new booking reaches it (the
    # room's buffer and the booking's own, none, are not interchangeable).
    before = {"start": utc_at(10, 9), "end": utc_at(10, 9, 55)}
    assert ids(found(res_url, bob, q=token, **before)) == [rooms["Plain"]["id"]]
    assert_error(book(res_url, bob, rid, after["start"], after["end"]), 409, "conflict")
    clear = {"start": utc_at(10, 11, 15), "end": utc_at(10, 12)}
    assert ids(found(res_url, bob, q=token, **clear)) == [rid, rooms["Plain"]["id"]]


def test_the_search_sees_what_a_booking_sees(stack, room_url, res_url, admin_headers, alice,
                                             bob, token):
    """Review 15a M3: a pending booking is busy, a room is busy within its buffer, and a room
    whose time rules refuse the window is not offered (nor in the suggested windows)."""
    rooms = make_rooms(room_url, res_url, admin_headers, token, {
        "Approval": dict(policies={"requires_approval": True}),
        "Buffer": dict(policies={"buffer_minutes": 15}),
        "Plain": {},
    })
    shut = create_room(room_url, admin_headers, name=f"Shut {token}x",
                       policies={"opening_hours": {d: [] for d in ("mon", "tue", "wed", "thu",
                                                                   "fri", "sat", "sun")}})
    wait_known_room(res_url, admin_headers, shut["id"], timeout=15)
    for rid in [r["id"] for r in rooms.values()] + [shut["id"]]:
        deadline = time.time() + 30
        while res_db_query(stack.pg, "SELECT policies_known FROM rooms WHERE id = %s",
                           rid) != [(True,)]:
            assert time.time() < deadline, f"room {rid}'s policies copied"
            time.sleep(0.1)
    w = window(9, 10, 11)
    assert booked(res_url, alice, rooms["Approval"]["id"], w["start"], w["end"])["status"] == \
        "pending"
    booked(res_url, alice, rooms["Buffer"]["id"], w["start"], w["end"])
    assert ids(found(res_url, bob, q=token, **w)) == [rooms["Plain"]["id"]]
    # Five minutes after the end: within the buffer of one, free in the other (no buffer).
    after = {"start": utc_at(9, 11, 5), "end": utc_at(9, 12)}
    assert ids(found(res_url, bob, q=token, **after)) == [rooms["Approval"]["id"],
                                                          rooms["Plain"]["id"]]
    assert_error(book(res_url, bob, rooms["Buffer"]["id"], after["start"], after["end"]), 409,
                 "conflict")
    clear = {"start": utc_at(9, 11, 15), "end": utc_at(9, 12)}
    assert rooms["Buffer"]["id"] in ids(found(res_url, bob, q=token, **clear))
    # Ending five minutes before the booking: the room's buffer after the new one reaches it.
    before = {"start": utc_at(9, 8), "end": utc_at(9, 9, 55)}
    assert ids(found(res_url, bob, q=token, **before)) == [rooms["Approval"]["id"],
                                                           rooms["Plain"]["id"]]
    assert_error(book(res_url, bob, rooms["Buffer"]["id"], before["start"], before["end"]),
                 409, "conflict")
    clear = {"start": utc_at(9, 8), "end": utc_at(9, 9, 45)}
    assert rooms["Buffer"]["id"] in ids(found(res_url, bob, q=token, **clear))
    # A room closed every day: never offered, nor any window of the day.
    body = found(res_url, bob, q=f"{token}x", suggest=3, **w)
    assert body == {"rooms": [], "alternatives": []}, body
