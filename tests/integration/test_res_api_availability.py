"""GET /availability (busy and free spans of one local day, DST days included) and the original
system's GET /availability/rooms/{id} (docs/api.md#availability)."""
import datetime

import pytest
import requests

from harness import assert_error, booked, room_bookable, utc_at, wait_until

POOL_BATCH = 10


@pytest.fixture(scope="module")
def berlin(pool):
    return pool.take(time_zone="Europe/Berlin")


def span(start, end):
    return {"start_time": start, "end_time": end}


def availability(res_url, headers, room_id, date):
    r = requests.get(f"{res_url}/availability", params={"room_id": room_id, "date": date},
                     headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"room_id", "date", "time_zone", "busy", "free"}, body
    assert body["room_id"] == room_id and body["date"] == date
    return body


def test_empty_utc_day_is_all_free(res_url, alice, room):
    d, d1 = utc_at(70)[:10], utc_at(71)[:10]
    body = availability(res_url, alice, room["id"], d)
    assert body["time_zone"] == "UTC"
    assert body["busy"] == []
    assert body["free"] == [span(f"{d}T00:00:00Z", f"{d1}T00:00:00Z")]


def test_busy_is_merged_where_touching_and_free_fills_the_gaps(res_url, alice, bob, room):
    d, d1 = utc_at(72)[:10], utc_at(73)[:10]
    booked(res_url, alice, room["id"], f"{d}T09:00:00Z", f"{d}T10:00:00Z")
    booked(res_url, bob, room["id"], f"{d}T10:00:00Z", f"{d}T11:00:00Z")
    booked(res_url, alice, room["id"], f"{d}T11:00:00Z", f"{d}T11:30:00Z")
    booked(res_url, alice, room["id"], f"{d}T13:00:00Z", f"{d}T14:00:00Z")
    booked(res_url, bob, room["id"], f"{d}T14:05:00Z", f"{d}T14:10:00Z")
    body = availability(res_url, bob, room["id"], d)
    assert body["busy"] == [span(f"{d}T09:00:00Z", f"{d}T11:30:00Z"),
                            span(f"{d}T13:00:00Z", f"{d}T14:00:00Z"),
                            span(f"{d}T14:05:00Z", f"{d}T14:10:00Z")]
    assert body["free"] == [span(f"{d}T00:00:00Z", f"{d}T09:00:00Z"),
                            span(f"{d}T11:30:00Z", f"{d}T13:00:00Z"),
                            span(f"{d}T14:00:00Z", f"{d}T14:05:00Z"),
                            span(f"{d}T14:10:00Z", f"{d1}T00:00:00Z")]


def test_whole_day_booked_leaves_nothing_free(res_url, alice, room):
    d, d1 = utc_at(74)[:10], utc_at(75)[:10]
    booked(res_url, alice, room["id"], f"{d}T00:00:00Z", f"{d1}T00:00:00Z")
    body = availability(res_url, alice, room["id"], d)
    assert body["busy"] == [span(f"{d}T00:00:00Z", f"{d1}T00:00:00Z")] and body["free"] == []
    # The next day is untouched (the booking ends where it starts).
    body = availability(res_url, alice, room["id"], d1)
    assert body["busy"] == [] and len(body["free"]) == 1


def test_bookings_across_midnight_are_cut_at_the_day(res_url, alice, room):
    d0, d, d1 = utc_at(75)[:10], utc_at(76)[:10], utc_at(77)[:10]
    booked(res_url, alice, room["id"], f"{d0}T22:00:00Z", f"{d}T02:00:00Z")
    booked(res_url, alice, room["id"], f"{d}T23:00:00Z", f"{d1}T01:00:00Z")
    body = availability(res_url, alice, room["id"], d)
    assert body["busy"] == [span(f"{d}T00:00:00Z", f"{d}T02:00:00Z"),
                            span(f"{d}T23:00:00Z", f"{d1}T00:00:00Z")]
    assert body["free"] == [span(f"{d}T02:00:00Z", f"{d}T23:00:00Z")]


def test_cancelled_bookings_are_not_busy(res_url, alice, room):
    d = utc_at(78)[:10]
    res = booked(res_url, alice, room["id"], f"{d}T09:00:00Z", f"{d}T10:00:00Z")
    assert availability(res_url, alice, room["id"], d)["busy"] != []
    assert requests.delete(f"{res_url}/reservations/{res['id']}", headers=alice).status_code == 204
    body = availability(res_url, alice, room["id"], d)
    assert body["busy"] == [] and len(body["free"]) == 1


def test_other_rooms_do_not_show(res_url, alice, pool):
    one, two = pool.take(), pool.take()
    d = utc_at(79)[:10]
    booked(res_url, alice, one["id"], f"{d}T09:00:00Z", f"{d}T10:00:00Z")
    assert availability(res_url, alice, two["id"], d)["busy"] == []


@pytest.mark.parametrize("date,free", [
    ("2027-01-15", ("2027-01-14T23:00:00Z", "2027-01-15T23:00:00Z")),
    ("2027-07-15", ("2027-07-14T22:00:00Z", "2027-07-15T22:00:00Z")),
    ("2027-03-28", ("2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z")),
    ("2027-10-31", ("2027-10-30T22:00:00Z", "2027-10-31T23:00:00Z")),
], ids=["winter-24h", "summer-24h", "spring-forward-23h", "fall-back-25h"])
def test_local_day_in_europe_berlin(res_url, alice, berlin, date, free):
    body = availability(res_url, alice, berlin["id"], date)
    assert body["time_zone"] == "Europe/Berlin"
    assert body["busy"] == [] and body["free"] == [span(*free)]


def next_spring_forward():
    """The next last Sunday of March at least two days ahead (Europe/Berlin's 23-hour day)."""
    today = datetime.datetime.now(datetime.UTC).date()
    for year in (today.year, today.year + 1):
        d = datetime.date(year, 3, 31)
        d -= datetime.timedelta(days=(d.weekday() + 1) % 7)
        if (d - today).days >= 2:
            return d
    raise AssertionError("unreachable")


def test_busy_on_a_dst_day_in_local_time(res_url, alice, pool):
    room = pool.take(time_zone="Europe/Berlin")
    d = next_spring_forward()
    prev = d - datetime.timedelta(days=1)
    # 01:00-04:00 local on the spring-forward night is 00:00Z-02:00Z (two real hours).
    booked(res_url, alice, room["id"], f"{d}T01:00:00", f"{d}T04:00:00")
    body = availability(res_url, alice, room["id"], str(d))
    assert body["busy"] == [span(f"{d}T00:00:00Z", f"{d}T02:00:00Z")]
    assert body["free"] == [span(f"{prev}T23:00:00Z", f"{d}T00:00:00Z"),
                            span(f"{d}T02:00:00Z", f"{d}T22:00:00Z")]


def test_availability_with_trailing_slash(res_url, alice, room):
    r = requests.get(f"{res_url}/availability/", params={"room_id": room["id"],
                                                         "date": "2027-01-01"},
                     headers=alice, allow_redirects=False)
    assert r.status_code == 200 and r.json()["room_id"] == room["id"], r.text


@pytest.mark.parametrize("params", [
    {"date": "2027-01-01"}, {"room_id": "abc", "date": "2027-01-01"},
    {"room_id": 0, "date": "2027-01-01"}, {"room_id": -3, "date": "2027-01-01"},
    {"room_id": "1.5", "date": "2027-01-01"}, {"room_id": "ROOM"}, {"room_id": "ROOM", "date": ""},
    {"room_id": "ROOM", "date": "2027-02-29"}, {"room_id": "ROOM", "date": "2027-1-1"},
    {"room_id": "ROOM", "date": "tomorrow"}, {"room_id": "ROOM", "date": "2027-01-01T00:00:00Z"},
    {"room_id": "ROOM", "date": "2027-13-01"},
], ids=["no-room", "room-abc", "room-zero", "room-negative", "room-float", "no-date",
        "empty-date", "not-a-leap-year", "short-date", "word-date", "date-time", "month-13"])
def test_bad_availability_queries_are_400(res_url, alice, room, params):
    params = {k: (room["id"] if v == "ROOM" else v) for k, v in params.items()}
    r = requests.get(f"{res_url}/availability", params=params, headers=alice)
    assert_error(r, 400, "bad_request")


def test_unknown_room_is_404(res_url, alice):
    r = requests.get(f"{res_url}/availability", params={"room_id": 999999999,
                                                        "date": "2027-01-01"}, headers=alice)
    assert_error(r, 404, "not_found")
    r = requests.get(f"{res_url}/availability/rooms/999999999",
                     params={"start_date": "2027-01-01", "end_date": "2027-01-02"}, headers=alice)
    assert_error(r, 404, "not_found")


def test_deleted_room_is_404(res_url, room_url, admin_headers, alice, room):
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers) \
        .status_code == 204
    wait_until(lambda: not room_bookable(res_url, alice, room["id"]), timeout=30, interval=0.1,
               what="room deleted in reservation-service")
    r = requests.get(f"{res_url}/availability", params={"room_id": room["id"],
                                                        "date": "2027-01-01"}, headers=alice)
    assert_error(r, 404, "not_found")


# ---- /availability/rooms/{id} ----

def booked_slots(res_url, headers, room_id, first, last):
    r = requests.get(f"{res_url}/availability/rooms/{room_id}",
                     params={"start_date": first, "end_date": last}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {"room_id": room_id, "start_date": first, "end_date": last,
                    "booked_slots": body["booked_slots"]}, body
    return body["booked_slots"]


def test_booked_slots_of_a_date_range_sorted(res_url, alice, bob, room):
    d = [utc_at(80 + i)[:10] for i in range(6)]
    c = booked(res_url, bob, room["id"], f"{d[3]}T08:00:00Z", f"{d[3]}T09:00:00Z")
    a = booked(res_url, alice, room["id"], f"{d[1]}T15:00:00Z", f"{d[1]}T16:00:00Z")
    b = booked(res_url, alice, room["id"], f"{d[1]}T09:00:00Z", f"{d[1]}T10:00:00Z")
    booked(res_url, alice, room["id"], f"{d[5]}T09:00:00Z", f"{d[5]}T10:00:00Z")
    gone = booked(res_url, alice, room["id"], f"{d[2]}T09:00:00Z", f"{d[2]}T10:00:00Z")
    assert requests.delete(f"{res_url}/reservations/{gone['id']}", headers=alice) \
        .status_code == 204
    want = [span(x["start_time"], x["end_time"]) for x in (b, a, c)]
    assert booked_slots(res_url, alice, room["id"], d[1], d[3]) == want
    assert booked_slots(res_url, bob, room["id"], d[0], d[4]) == want
    assert booked_slots(res_url, alice, room["id"], d[1], d[1]) == want[:2]
    assert booked_slots(res_url, alice, room["id"], d[2], d[2]) == []
    assert booked_slots(res_url, alice, room["id"], d[4], d[4]) == []


def test_booked_slots_use_the_rooms_local_days(res_url, alice, pool):
    tokyo = pool.take(time_zone="Asia/Tokyo")
    d, d1 = utc_at(90)[:10], utc_at(91)[:10]
    late = booked(res_url, alice, tokyo["id"], f"{d}T20:00:00Z", f"{d}T21:00:00Z")
    assert booked_slots(res_url, alice, tokyo["id"], d, d) == []
    assert booked_slots(res_url, alice, tokyo["id"], d1, d1) == [
        span(late["start_time"], late["end_time"])]


@pytest.mark.parametrize("params", [
    {}, {"start_date": "2027-01-01"}, {"end_date": "2027-01-02"},
    {"start_date": "2027-01-01", "end_date": "garbage"},
    {"start_date": "01/01/2027", "end_date": "2027-01-02"},
    {"start_date": "2027-02-30", "end_date": "2027-03-02"},
    {"start_date": "2027-01-02", "end_date": "2027-01-01"},
    {"start_date": "2027-01-01T00:00:00Z", "end_date": "2027-01-02"},
], ids=["none", "no-end", "no-start", "bad-end", "bad-start", "invalid-day", "reversed",
        "date-time"])
def test_bad_date_ranges_are_400(res_url, alice, room, params):
    r = requests.get(f"{res_url}/availability/rooms/{room['id']}", params=params, headers=alice)
    assert_error(r, 400, "bad_request")


@pytest.mark.parametrize("rid", ["abc", "0", "-1"])
def test_malformed_room_in_path_is_404(res_url, alice, rid):
    r = requests.get(f"{res_url}/availability/rooms/{rid}",
                     params={"start_date": "2027-01-01", "end_date": "2027-01-02"}, headers=alice)
    assert_error(r, 404, "not_found")
