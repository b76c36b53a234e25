"""GET /availability/grid (docs/api.md#day-grid): per room its local day (DST-correct) and its
busy intervals, filters, keyset pages, rooms changed in room-service reflected through the real
broker, and the privacy rule: who holds a slot is shown to that holder and to admins only."""
import base64
import datetime
import json
import time
import uuid

import pytest
import requests

from harness import (
    assert_error,
    booked,
    create_room,
    local_day,
    next_dst_days,
    res_db_query,
    wait_known_room,
    wait_until,
)

HOLDER_KEYS = {"start_time", "end_time", "reservation_id", "user_id", "purpose"}
INTERVAL_KEYS = {"start_time", "end_time"}


def grid(res_url, headers, **params):
    r = requests.get(f"{res_url}/availability/grid", params=params, headers=headers, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    return r


def items(res_url, headers, **params):
    return grid(res_url, headers, **params).json()


def building():
    """A building no other test uses (the database is shared by the session)."""
    return f"Grid {uuid.uuid4().hex[:10]}"


def rooms_in(room_url, res_url, headers, specs):
    """Creates the rooms of specs (dicts of room fields) and waits until reservation-service
    knows each; returns them in the order given."""
    rooms = [create_room(room_url, headers, **s) for s in specs]
    for room in rooms:
        wait_known_room(res_url, headers, room["id"])
    return rooms


def hours(day):
    a = datetime.datetime.strptime(day["start_time"], "%Y-%m-%dT%H:%M:%SZ")
    b = datetime.datetime.strptime(day["end_time"], "%Y-%m-%dT%H:%M:%SZ")
    return (b - a).total_seconds() / 3600


def of(page, room_ids):
    """The items of page for room_ids, by room id."""
    return {it["room"]["id"]: it for it in page if it["room"]["id"] in room_ids}


def day_offset(days):
    return (datetime.date.today() + datetime.timedelta(days=days)).isoformat()


# ---- the day ----

def test_rooms_in_different_zones_get_their_own_day(room_url, res_url, admin_headers, alice):
    b = building()
    zones = ["UTC", "Europe/Berlin", "Asia/Tokyo", "America/New_York"]
    rooms = rooms_in(room_url, res_url, admin_headers,
                     [{"building": b, "floor": 1, "time_zone": z, "capacity": 6,
                       "equipment": ["Screen"]} for z in zones])
    date = day_offset(20)
    page = items(res_url, alice, date=date, building=b)
    got = of(page, {r["id"] for r in rooms})
    assert len(got) == 4, page
    for room, zone in zip(rooms, zones, strict=True):
        it = got[room["id"]]
        start, end = local_day(date, zone)
        assert it["day"] == {"date": date, "time_zone": zone, "start_time": start,
                             "end_time": end}, it
        assert it["room"] == {"id": room["id"], "name": room["name"], "capacity": 6,
                              "equipment": ["Screen"], "building": b, "floor": 1,
                              "time_zone": zone, "active": True}, it
        assert it["details_known"] is True and it["busy"] == [], it


def test_dst_days_and_midnight_crossing_are_clipped(room_url, res_url, admin_headers, alice):
    """Berlin's 23-hour and 25-hour days: the bounds, and a reservation crossing each midnight
    shows on both days, clipped to each."""
    b = building()
    (room,) = rooms_in(room_url, res_url, admin_headers,
                       [{"building": b, "time_zone": "Europe/Berlin"}])
    for date, length in next_dst_days():
        day = datetime.date.fromisoformat(date)
        before = (day - datetime.timedelta(days=1)).isoformat()
        after = (day + datetime.timedelta(days=1)).isoformat()
        # Room-local times (no offset): 22:00 the evening before to 03:00, and 23:00 to 01:00
        # the morning after.
        into = booked(res_url, alice, room["id"], f"{before}T22:00:00", f"{date}T03:00:00")
        out_of = booked(res_url, alice, room["id"], f"{date}T23:00:00", f"{after}T01:00:00")
        start, end = local_day(date, "Europe/Berlin")
        it = of(items(res_url, alice, date=date, building=b), {room["id"]})[room["id"]]
        assert (it["day"]["start_time"], it["day"]["end_time"]) == (start, end), it
        assert hours(it["day"]) == length and length in (23, 25), (date, it["day"])
        assert [(x["start_time"], x["end_time"], x["reservation_id"]) for x in it["busy"]] == [
            (start, into["end_time"], into["id"]), (out_of["start_time"], end, out_of["id"])], it
        # The neighbouring days hold the other parts.
        prev = of(items(res_url, alice, date=before, building=b), {room["id"]})[room["id"]]
        assert [(x["start_time"], x["end_time"]) for x in prev["busy"]] == [
            (into["start_time"], start)], prev
        nxt = of(items(res_url, alice, date=after, building=b), {room["id"]})[room["id"]]
        assert [(x["start_time"], x["end_time"]) for x in nxt["busy"]] == [
            (end, out_of["end_time"])], nxt


def test_touching_reservations_stay_apart_and_ordered(room_url, res_url, admin_headers, alice,
                                                      bob):
    b = building()
    (room,) = rooms_in(room_url, res_url, admin_headers, [{"building": b}])
    date = day_offset(21)
    second = booked(res_url, bob, room["id"], f"{date}T11:00:00Z", f"{date}T12:00:00Z")
    first = booked(res_url, alice, room["id"], f"{date}T10:00:00Z", f"{date}T11:00:00Z")
    cancelled = booked(res_url, alice, room["id"], f"{date}T14:00:00Z", f"{date}T15:00:00Z")
    r = requests.delete(f"{res_url}/reservations/{cancelled['id']}", headers=alice, timeout=10)
    assert r.status_code == 204
    busy = of(items(res_url, alice, date=date, building=b), {room["id"]})[room["id"]]["busy"]
    assert [(x["start_time"], x["end_time"]) for x in busy] == [
        (first["start_time"], first["end_time"]), (second["start_time"], second["end_time"])]


# ---- who holds a slot ----

def test_holder_details_only_for_the_holder_and_admins(stack, room_url, res_url, admin_headers,
                                                       users):
    (alice, alice_id), (bob, bob_id), (root, _) = users["alice"], users["bob"], users["root"]
    b = building()
    (room,) = rooms_in(room_url, res_url, admin_headers, [{"building": b}])
    date = day_offset(22)
    mine = booked(res_url, alice, room["id"], f"{date}T09:00:00Z", f"{date}T10:00:00Z",
                  purpose="Alice's secret 1:1")
    theirs = booked(res_url, bob, room["id"], f"{date}T10:00:00Z", f"{date}T11:00:00Z",
                    purpose="Bob's board meeting")

    def busy(headers):
        return of(items(res_url, headers, date=date, building=b), {room["id"]})[room["id"]]["busy"]

    seen_by_alice = busy(alice)
    assert seen_by_alice[0] == {"start_time": mine["start_time"], "end_time": mine["end_time"],
                                "reservation_id": mine["id"], "user_id": alice_id,
                                "purpose": "Alice's secret 1:1"}
    assert seen_by_alice[1] == {"start_time": theirs["start_time"],
                                "end_time": theirs["end_time"]}
    seen_by_bob = busy(bob)
    assert set(seen_by_bob[0]) == INTERVAL_KEYS and set(seen_by_bob[1]) == HOLDER_KEYS
    assert seen_by_bob[1]["purpose"] == "Bob's board meeting"
    assert seen_by_bob[1]["user_id"] == bob_id
    seen_by_admin = busy(root)
    assert [x["reservation_id"] for x in seen_by_admin] == [mine["id"], theirs["id"]]
    assert [x["purpose"] for x in seen_by_admin] == ["Alice's secret 1:1", "Bob's board meeting"]
    # Nothing of the holder leaks anywhere in another employee's answer.
    r = grid(res_url, bob, date=date, building=b)
    assert "secret" not in r.text and "reservation_id" in r.text, r.text
    # The existing availability endpoints still show intervals only, to everyone.
    a = requests.get(f"{res_url}/availability", params={"room_id": room["id"], "date": date},
                     headers=root, timeout=10).json()
    assert all(set(x) == INTERVAL_KEYS for x in a["busy"]), a


# ---- filters, order, pages ----

def test_filters(room_url, res_url, admin_headers, alice):
    b = building()
    specs = [
        {"name": f"A {b}", "capacity": 4, "floor": 1, "equipment": ["Projector", "Whiteboard"]},
        {"name": f"B {b}", "capacity": 10, "floor": 2, "equipment": ["projector"]},
        {"name": f"C {b}", "capacity": 8, "floor": 1, "equipment": []},
        {"name": f"D {b}", "capacity": 12, "floor": 1, "equipment": ["Projector"],
         "active": False},
    ]
    rooms = rooms_in(room_url, res_url, admin_headers,
                     [dict(s, building=b) for s in specs])
    ids = {r["name"][0]: r["id"] for r in rooms}
    date = day_offset(23)

    def names(**params):
        page = items(res_url, alice, date=date, **params)
        known = [it for it in page if it["details_known"]]
        return [it["room"]["name"][0] for it in known if it["room"]["id"] in ids.values()]

    # Inactive rooms are never listed; building is matched ignoring case.
    assert names(building=b) == ["A", "C", "B"]
    assert names(building=b.upper()) == ["A", "C", "B"]
    assert names(building=b, floor=1) == ["A", "C"]
    assert names(building=b, capacity=8) == ["C", "B"]
    assert names(building=b, equipment="PROJECTOR") == ["A", "B"]
    assert names(building=b, equipment="whiteboard, projector") == ["A"]
    assert names(building=b, equipment="projector", capacity=5) == ["B"]
    assert names(building=b, floor=3) == []
    assert ids["D"] not in {it["room"]["id"] for it in items(res_url, alice, date=date,
                                                                 limit=200, building=b)}


def walk(res_url, headers, **params):
    """Every page of a grid through its Link headers; returns (items, pages)."""
    out, pages = [], 0
    r = grid(res_url, headers, **params)
    while True:
        pages += 1
        out += r.json()
        link = r.headers.get("Link")
        if not link:
            return out, pages
        url = link[link.index("<") + 1:link.index(">")]
        assert "cursor=" in url and f"limit={params['limit']}" in url, link
        r = requests.get(res_url + url, headers=headers, timeout=10)
        assert r.status_code == 200, r.text


def sort_key(it):
    room = it["room"]
    return (room["building"] is None, room["building"] or "", room["floor"] is None,
            room["floor"] or 0, room["name"], room["id"])


def test_pages_follow_building_floor_name_and_neither_skip_nor_repeat(room_url, res_url,
                                                                      admin_headers, alice):
    b = building()
    specs = [("Zeta", 2), ("Alpha", None), ("Beta", 1), ("Gamma", 1), ("Delta", 2),
             ("Alpha", 1), ("Eta", None)]
    rooms = rooms_in(room_url, res_url, admin_headers,
                     [{"name": f"{n} {uuid.uuid4().hex[:6]}", "building": b, "floor": f}
                      for n, f in specs])
    date = day_offset(24)
    got, pages = walk(res_url, alice, date=date, building=b, limit=2)
    mine = [it for it in got if it["room"]["id"] in {r["id"] for r in rooms}]
    # Floors in order, rooms without a floor last, names within a floor.
    want = sorted(rooms, key=lambda r: (r["floor"] is None, r["floor"] or 0, r["name"]))
    assert [it["room"]["id"] for it in mine] == [r["id"] for r in want]
    assert len({it["room"]["id"] for it in got}) == len(got) and pages >= 4
    # The whole grid, all buildings: rooms without a building come last, no room twice.
    everything, _ = walk(res_url, alice, date=date, limit=50)
    assert [sort_key(it) for it in everything] == sorted(sort_key(it) for it in everything)
    ids = [it["room"]["id"] for it in everything]
    assert len(ids) == len(set(ids)) and {r["id"] for r in rooms} <= set(ids)
    unpaged = items(res_url, alice, date=date, limit=200)
    assert ids[:len(unpaged)] == [it["room"]["id"] for it in unpaged]


def test_empty_grid_is_an_empty_array(res_url, alice):
    r = grid(res_url, alice, date=day_offset(5), building=building())
    assert r.json() == [] and "Link" not in r.headers


def test_room_without_details_is_listed_marked(stack, res_url, alice):
    """A copy made before the details were kept cannot be judged by building, floor or
    equipment: listed with any of those filters, marked details_known false."""
    rid = 2_000_000_000 + int(uuid.uuid4().int % 100_000_000)
    res_db_query(stack.pg, "INSERT INTO rooms (id, name, capacity, time_zone, active, version) "
                           "VALUES (%s, %s, 6, 'Europe/Berlin', true, 1)", rid, f"Old {rid}")
    try:
        date = day_offset(25)
        for params in ({"building": building()}, {"floor": 7}, {"equipment": "hologram"},
                       {"building": building(), "floor": 1, "equipment": "x", "capacity": 6}):
            page = items(res_url, alice, date=date, limit=200, **params)
            it = of(page, {rid})[rid]
            assert it["details_known"] is False, it
            assert it["room"]["building"] is None and it["room"]["equipment"] == [], it
        # Capacity is known: it filters as for every room.
        assert rid not in {it["room"]["id"] for it in items(res_url, alice, date=date,
                                                            limit=200, capacity=7,
                                                            floor=7)}
    finally:
        res_db_query(stack.pg, "UPDATE rooms SET deleted = true, active = false WHERE id = %s",
                     rid)


# ---- rooms changed in room-service ----

def test_room_changes_show_within_two_seconds(room_url, res_url, admin_headers, alice):
    b = building()
    (room,) = rooms_in(room_url, res_url, admin_headers,
                       [{"building": b, "capacity": 10, "equipment": ["Projector", "TV"]}])
    date = day_offset(26)
    query = {"date": date, "building": b, "capacity": 8, "equipment": "projector"}

    def listed(**params):
        return room["id"] in {it["room"]["id"] for it in items(res_url, alice, **params)}

    assert listed(**query)
    took = {}
    for what, body, params in (
            ("capacity lowered", {"capacity": 4}, query),
            ("capacity back", {"capacity": 10}, None),
            ("equipment removed", {"equipment": ["TV"]}, query),
            ("deactivated", {"active": False}, {"date": date, "building": b}),
            ("reactivated", {"active": True, "equipment": ["Projector"]}, None)):
        r = requests.put(f"{room_url}/rooms/{room['id']}", json=body, headers=admin_headers,
                         timeout=10)
        assert r.status_code == 200, r.text
        t0 = time.monotonic()
        if params is None:
            wait_until(lambda: listed(**query), timeout=5, interval=0.05, what=what)
        else:
            wait_until(lambda p=params: not listed(**p), timeout=5, interval=0.05, what=what)
        took[what] = time.monotonic() - t0
    r = requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers, timeout=10)
    assert r.status_code == 204
    t0 = time.monotonic()
    wait_until(lambda: not listed(date=date, building=b), timeout=5, interval=0.05,
               what="deleted")
    took["deleted"] = time.monotonic() - t0
    assert all(v <= 2.0 for v in took.values()), took


# ---- parameters ----

def _cursor(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("params,name", [
    ({}, "date"),
    ({"date": "2027-02-30"}, "date"),
    ({"date": "tomorrow"}, "date"),
    ({"date": "2027-01-01T00:00:00Z"}, "date"),
    ({"capacity": "0"}, "capacity"),
    ({"capacity": "many"}, "capacity"),
    ({"floor": "first"}, "floor"),
    ({"floor": "9999"}, "floor"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"cursor": "not base64 at all!"}, "cursor"),
    ({"cursor": _cursor(["HQ", 1, "Everest"])}, "cursor"),
    ({"cursor": _cursor([1, 1, "Everest", 3])}, "cursor"),
    ({"cursor": _cursor({"building": "HQ"})}, "cursor"),
    ({"equipment": ",".join(f"item{i}" for i in range(51))}, "equipment"),
    ({"equipment": "x" * 51}, "equipment"),
    ({"building": "b" * 3000}, "building"),
])
def test_invalid_parameters_are_400_naming_them(res_url, alice, params, name):
    query = {"date": "2027-01-01"} if name != "date" else {}
    query.update(params)
    r = requests.get(f"{res_url}/availability/grid", params=query, headers=alice, timeout=10)
    assert_error(r, 400, "bad_request", detail=name)


def test_through_the_gateway_and_signed_in_only(gateway_url, res_url, alice):
    date = day_offset(5)
    r = requests.get(f"{gateway_url}/availability/grid", params={"date": date, "limit": 1},
                     headers=alice, timeout=10)
    assert r.status_code == 200 and isinstance(r.json(), list), r.text
    r = requests.get(f"{res_url}/availability/grid", params={"date": date}, timeout=10)
    assert_error(r, 401, "unauthorized")
