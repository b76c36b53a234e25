"""The utilisation report (docs/api.md#utilisation-report): its figures on a known data set built
through the API (rooms with and without opening hours in two zones, a DST day, bookings confirmed,
cancelled, pending, approved, rejected, checked in and released as no-shows at the service's
clock), each group_by, the building filter, both forms of the window, CSV (parsed with Python's
csv module, formula cells defused), the parameter errors and who may read it."""
import csv
import datetime
import io
import statistics
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
import requests

from harness import (
    assert_error,
    booked,
    create_room,
    next_dst_days,
    res_db_query,
    utc_text,
    wait_known_room,
    wait_until,
)

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
CHECK_IN = {"check_in_required": True, "check_in_window_minutes": 15,
            "release_after_minutes": 10}
FIGURES = ["available_hours", "booked_hours", "occupancy_pct", "bookings", "cancellations",
           "cancellation_rate", "no_show_count", "checked_in_count", "no_show_rate",
           "median_lead_time_hours"]


def local(d, hhmm):
    """A wall-clock time of the room's zone as the API takes it (no offset)."""
    return f"{d.isoformat()}T{hhmm}:00"


def instant(d, hhmm, zone):
    h, m = map(int, hhmm.split(":"))
    return datetime.datetime(d.year, d.month, d.day, h, m, tzinfo=ZoneInfo(zone))


def parse_utc(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def lead_hours(res):
    return (parse_utc(res["start_time"]) - parse_utc(res["created_at"])).total_seconds() / 3600


def set_clock(svc, root, at):
    r = requests.put(f"{svc.url}/internal/test-clock",
                     json={"offset_s": int(at) - int(time.time())}, headers=root, timeout=10)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def clocked(stack, root):
    """A second reservation-service on the same database whose clock the tests move (check-in
    and the releaser's no-shows happen at the report's dates, months ahead)."""
    svc = stack.reservation_service(tag="reservation-report-clock", TEST_CLOCK="true",
                                    RELEASE_INTERVAL_MS="200")
    svc.start()
    try:
        yield svc
    finally:
        requests.put(f"{svc.url}/internal/test-clock", json={"offset_s": 0}, headers=root,
                     timeout=10)
        svc.stop()


@pytest.fixture(scope="module")
def data(stack, room_url, res_url, admin_headers, clocked, alice, root):
    """The data set, on the weekend of Berlin's next DST change (Saturday sat, Sunday sun, whose
    length in Berlin is dst_hours): the report's window is [sat, sun + 1) in each room's zone.

    Building one (b1):
      r1 Berlin, no opening hours: b1 sat 10-12; b2 sun 01-04 (2 h in spring, 4 h in autumn);
         b3 sun 10-11 cancelled by its owner; b4 sun 23 - mon 01 (1 h inside); b5 fri 23 -
         sat 01 (1 h inside, starts before: not counted as a booking).
      r2 Berlin, open sat 09-12 and sun 01-04 only, check-in required: c1 sat 09-10 checked in;
         c2 sat 10-11 released as a no-show.
      r3 New York, approval required: p1 sat 09-10 pending; p2 sat 10-12 approved; p3 sat
         13-14 rejected.
    Building two (b2, "+Annex …"): r4 "=SUM(A1)", UTC: d1 sat 10:00-11:30; r5 'Board "A", 2nd',
    UTC, nothing booked."""
    (sun_text, dst_hours), = [next_dst_days(BERLIN)[0]]
    sun = datetime.date.fromisoformat(sun_text)
    sat, mon, fri = (sun - datetime.timedelta(days=1), sun + datetime.timedelta(days=1),
                     sun - datetime.timedelta(days=2))
    tag = uuid.uuid4().hex[:8]
    b1, b2 = f"Report {tag}", f"+Annex {tag}"

    def room(zone, building, policies=None, name=None):
        fields = {"time_zone": zone, "building": building}
        if policies:
            fields["policies"] = policies
        if name:
            fields["name"] = name
        rid = create_room(room_url, admin_headers, **fields)["id"]
        wait_known_room(res_url, admin_headers, rid)
        if policies:
            wait_until(lambda: res_db_query(stack.pg, "SELECT policies_known FROM rooms "
                                            "WHERE id = %s", rid) == [(True,)],
                       timeout=30, what=f"room {rid}'s policies copied")
        return rid

    r1 = room(BERLIN, b1)
    r2 = room(BERLIN, b1, dict(CHECK_IN, opening_hours={"sat": [["09:00", "12:00"]],
                                                        "sun": [["01:00", "04:00"]]}))
    r3 = room(NEW_YORK, b1, {"requires_approval": True})
    r4 = room("UTC", b2, name=f"=SUM(A1) {tag}")
    r5 = room("UTC", b2, name=f'Board "A", 2nd {tag}')

    res = {}
    res["b1"] = booked(res_url, alice, r1, local(sat, "10:00"), local(sat, "12:00"))
    res["b2"] = booked(res_url, alice, r1, local(sun, "01:00"), local(sun, "04:00"))
    res["b3"] = booked(res_url, alice, r1, local(sun, "10:00"), local(sun, "11:00"))
    assert requests.delete(f"{res_url}/reservations/{res['b3']['id']}", headers=alice,
                           timeout=10).status_code == 204
    res["b4"] = booked(res_url, alice, r1, local(sun, "23:00"), local(mon, "01:00"))
    res["b5"] = booked(res_url, alice, r1, local(fri, "23:00"), local(sat, "01:00"))
    res["c1"] = booked(res_url, alice, r2, local(sat, "09:00"), local(sat, "10:00"))
    res["c2"] = booked(res_url, alice, r2, local(sat, "10:00"), local(sat, "11:00"))
    for k, (s, e) in {"p1": ("09:00", "10:00"), "p2": ("10:00", "12:00"),
                      "p3": ("13:00", "14:00")}.items():
        res[k] = booked(res_url, alice, r3, local(sat, s), local(sat, e))
        assert res[k]["status"] == "pending"
    r = requests.post(f"{res_url}/reservations/{res['p2']['id']}/approve", headers=root,
                      timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
    r = requests.post(f"{res_url}/reservations/{res['p3']['id']}/reject", headers=root,
                      timeout=10)
    assert r.status_code == 200 and r.json()["cancel_reason"] == "rejected", r.text
    res["d1"] = booked(res_url, alice, r4, local(sat, "10:00"), local(sat, "11:30"))

    # Check-in of c1 at its start, then the clock past c2's release: the releaser frees it.
    try:
        set_clock(clocked, root, instant(sat, "09:00", BERLIN).timestamp())
        r = requests.post(f"{clocked.url}/reservations/{res['c1']['id']}/check-in",
                          headers=alice, timeout=10)
        assert r.status_code == 200 and r.json()["checked_in_at"], r.text
        set_clock(clocked, root, instant(sat, "10:11", BERLIN).timestamp())
        wait_until(lambda: requests.get(f"{res_url}/reservations/{res['c2']['id']}",
                                        headers=alice, timeout=10).json()["cancel_reason"]
                   == "no_show", timeout=30, what="c2 released as a no-show")
    finally:
        set_clock(clocked, root, time.time())
    assert requests.get(f"{res_url}/reservations/{res['c1']['id']}", headers=alice,
                        timeout=10).json()["status"] == "confirmed"
    return dict(sat=sat, sun=sun, mon=mon, dst_hours=dst_hours, b1=b1, b2=b2,
                rooms=dict(r1=r1, r2=r2, r3=r3, r4=r4, r5=r5), res=res, tag=tag)


def report(url, headers, accept=None, **params):
    h = dict(headers)
    if accept:
        h["Accept"] = accept
    return requests.get(f"{url}/reports/utilisation", params=params, headers=h, timeout=30)


def ok(r):
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r.json()


def window(data):
    return {"from": data["sat"].isoformat(), "to": data["mon"].isoformat()}


def median_lead(data, *keys):
    return round(statistics.median(lead_hours(data["res"][k]) for k in keys), 2)


def figures(row):
    return {k: row[k] for k in FIGURES if k != "median_lead_time_hours"}


def expected_rooms(data):
    """The figures of r1..r5 (without the median lead time, checked apart)."""
    spring = data["dst_hours"] == 23
    b2_hours = 2 if spring else 4           # b2 sun 01-04 Berlin, the DST night
    return {
        "r1": dict(available_hours=24 + data["dst_hours"], booked_hours=2 + b2_hours + 1 + 1,
                   occupancy_pct=round(100 * (4 + b2_hours) / (24 + data["dst_hours"]), 2),
                   bookings=4, cancellations=1, cancellation_rate=0.25, no_show_count=0,
                   checked_in_count=0, no_show_rate=None),
        "r2": dict(available_hours=3 + b2_hours, booked_hours=1,
                   occupancy_pct=round(100 / (3 + b2_hours), 2), bookings=2, cancellations=0,
                   cancellation_rate=0, no_show_count=1, checked_in_count=1, no_show_rate=0.5),
        "r3": dict(available_hours=48, booked_hours=2, occupancy_pct=round(200 / 48, 2),
                   bookings=1, cancellations=0, cancellation_rate=0, no_show_count=0,
                   checked_in_count=0, no_show_rate=None),
        "r4": dict(available_hours=48, booked_hours=1.5, occupancy_pct=round(150 / 48, 2),
                   bookings=1, cancellations=0, cancellation_rate=0, no_show_count=0,
                   checked_in_count=0, no_show_rate=None),
        "r5": dict(available_hours=48, booked_hours=0, occupancy_pct=0, bookings=0,
                   cancellations=0, cancellation_rate=None, no_show_count=0, checked_in_count=0,
                   no_show_rate=None),
    }


def test_by_room_on_a_dst_weekend(data, res_url, root):
    body = ok(report(res_url, root, **window(data), building=data["b1"], group_by="room"))
    assert body["from"] == data["sat"].isoformat() and body["to"] == data["mon"].isoformat()
    assert body["group_by"] == "room" and body["building"] == data["b1"]
    rooms = data["rooms"]
    by_id = {row["room_id"]: row for row in body["rows"]}
    assert set(by_id) == {rooms["r1"], rooms["r2"], rooms["r3"]}, body
    want = expected_rooms(data)
    for key in ("r1", "r2", "r3"):
        row = by_id[rooms[key]]
        assert figures(row) == want[key], (key, row)
        assert row["building"] == data["b1"]
    assert by_id[rooms["r1"]]["time_zone"] == BERLIN
    assert by_id[rooms["r3"]]["time_zone"] == NEW_YORK
    assert by_id[rooms["r1"]]["median_lead_time_hours"] == pytest.approx(
        median_lead(data, "b1", "b2", "b3", "b4"), abs=0.011)
    assert by_id[rooms["r2"]]["median_lead_time_hours"] == pytest.approx(
        median_lead(data, "c1", "c2"), abs=0.011)
    assert by_id[rooms["r3"]]["median_lead_time_hours"] == pytest.approx(
        median_lead(data, "p2"), abs=0.011)
    t = body["totals"]
    avail = sum(want[k]["available_hours"] for k in ("r1", "r2", "r3"))
    booked_h = sum(want[k]["booked_hours"] for k in ("r1", "r2", "r3"))
    assert figures(t) == dict(available_hours=avail, booked_hours=booked_h,
                              occupancy_pct=round(100 * booked_h / avail, 2), bookings=7,
                              cancellations=1, cancellation_rate=round(1 / 7, 4),
                              no_show_count=1, checked_in_count=1, no_show_rate=0.5), t
    assert t["rooms"] == 3
    assert t["median_lead_time_hours"] == pytest.approx(
        median_lead(data, "b1", "b2", "b3", "b4", "c1", "c2", "p2"), abs=0.011)


def test_by_building_and_the_filter(data, res_url, root):
    body = ok(report(res_url, root, **window(data), group_by="building"))
    rows = {row["building"]: row for row in body["rows"]}
    # Every building of the session's rooms is listed; ours with exactly their figures.
    assert data["b1"] in rows and data["b2"] in rows, body
    b2 = rows[data["b2"]]
    assert b2["rooms"] == 2
    assert figures(b2) == dict(available_hours=96, booked_hours=1.5,
                               occupancy_pct=round(150 / 96, 2), bookings=1, cancellations=0,
                               cancellation_rate=0, no_show_count=0, checked_in_count=0,
                               no_show_rate=None), b2
    assert rows[data["b1"]]["rooms"] == 3 and rows[data["b1"]]["bookings"] == 7
    assert body["totals"]["rooms"] >= 5
    # The filter ignores case and leaves the other buildings out.
    only = ok(report(res_url, root, **window(data), group_by="building",
                     building=data["b2"].upper()))
    assert [row["building"] for row in only["rows"]] == [data["b2"]]
    assert figures(only["rows"][0]) == figures(b2)
    assert figures(only["totals"]) == figures(b2) and only["totals"]["rooms"] == 2
    # A building without rooms: no rows, totals of nothing.
    none = ok(report(res_url, root, **window(data), building=f"nowhere {data['tag']}"))
    assert none["rows"] == [] and none["totals"]["rooms"] == 0
    assert figures(none["totals"]) == dict(available_hours=0, booked_hours=0,
                                           occupancy_pct=None, bookings=0, cancellations=0,
                                           cancellation_rate=None, no_show_count=0,
                                           checked_in_count=0, no_show_rate=None)


def test_by_hour_of_week(data, res_url, root):
    body = ok(report(res_url, root, **window(data), building=data["b1"],
                     group_by="hour_of_week"))
    rows = body["rows"]
    assert len(rows) == 168
    assert [(r["weekday"], r["hour"]) for r in rows[:2]] == [("mon", 0), ("mon", 1)]
    assert (rows[-1]["weekday"], rows[-1]["hour"]) == ("sun", 23)
    at = {(r["weekday"], r["hour"]): r for r in rows}
    spring = data["dst_hours"] == 23
    # Saturday 10:00-11:00 local: r1 and r2 (open 09-12) in Berlin and r3 in New York are
    # available; booked by b1 and p2 (c2, released, no longer); b1, p2 and c2 start then.
    s10 = at[("sat", 10)]
    assert figures(s10) == dict(available_hours=3, booked_hours=2, occupancy_pct=66.67,
                                bookings=3, cancellations=0, cancellation_rate=0,
                                no_show_count=1, checked_in_count=0, no_show_rate=1), s10
    assert figures(at[("sat", 9)]) == dict(
        available_hours=3, booked_hours=1, occupancy_pct=33.33, bookings=1, cancellations=0,
        cancellation_rate=0, no_show_count=0, checked_in_count=1, no_show_rate=0)
    # b5 (Fri 23:00 - Sat 01:00) counts from the window's start only.
    assert at[("sat", 0)]["booked_hours"] == 1 and at[("fri", 23)]["booked_hours"] == 0
    assert at[("fri", 23)]["available_hours"] == 0
    # The DST night in Berlin: the hour 02:00-03:00 does not exist in spring and comes twice in
    # autumn, for r1 (all day) and r2 (open 01-04); r3 in New York has its one hour.
    s2 = at[("sun", 2)]
    assert s2["available_hours"] == (1 if spring else 5), s2
    assert s2["booked_hours"] == (0 if spring else 2), s2
    assert at[("sun", 1)]["available_hours"] == 3 and at[("sun", 1)]["booked_hours"] == 1
    assert at[("sun", 3)]["available_hours"] == 3 and at[("sun", 3)]["booked_hours"] == 1
    # b4 (Sun 23:00 - Mon 01:00) counts until the window's end only.
    assert at[("sun", 23)]["booked_hours"] == 1 and at[("mon", 0)]["booked_hours"] == 0
    # The hours add up to the rooms' figures.
    want = expected_rooms(data)
    assert sum(r["available_hours"] for r in rows) == pytest.approx(
        sum(want[k]["available_hours"] for k in ("r1", "r2", "r3")))
    assert sum(r["booked_hours"] for r in rows) == pytest.approx(
        sum(want[k]["booked_hours"] for k in ("r1", "r2", "r3")))
    assert sum(r["bookings"] for r in rows) == 7
    assert body["totals"]["bookings"] == 7 and body["totals"]["rooms"] == 3


def test_a_window_of_instants(data, res_url, root):
    sat = data["sat"]
    start = datetime.datetime(sat.year, sat.month, sat.day, 10, 30, tzinfo=datetime.UTC)
    body = ok(report(res_url, root, building=data["b2"], group_by="room",
                     **{"from": utc_text(start).replace("Z", "+00:00"),
                        "to": utc_text(start + datetime.timedelta(hours=24))}))
    assert body["from"] == utc_text(start)
    row = next(r for r in body["rows"] if r["room_id"] == data["rooms"]["r4"])
    # d1 (10:00-11:30) is clipped to the window; it started before it: no booking counted.
    assert figures(row) == dict(available_hours=24, booked_hours=1, occupancy_pct=4.17,
                                bookings=0, cancellations=0, cancellation_rate=None,
                                no_show_count=0, checked_in_count=0, no_show_rate=None), row
    assert row["median_lead_time_hours"] is None


def test_csv(data, res_url, root):
    r = report(res_url, root, accept="text/csv", **window(data), building=data["b2"],
               group_by="room")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.content.endswith(b"\r\n")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert table[0] == ["room_id", "room_name", "building", "time_zone"] + FIGURES
    rows = {int(row[0]): dict(zip(table[0], row, strict=True)) for row in table[1:]}
    r4, r5 = rows[data["rooms"]["r4"]], rows[data["rooms"]["r5"]]
    tag = data["tag"]
    # Cells a spreadsheet would take for formulas are defused; quotes and commas survive.
    assert r4["room_name"] == f"'=SUM(A1) {tag}" and r4["building"] == f"'+Annex {tag}"
    assert r5["room_name"] == f'Board "A", 2nd {tag}'
    assert r4["time_zone"] == "UTC"
    assert (r4["available_hours"], r4["booked_hours"], r4["bookings"]) == ("48", "1.5", "1")
    # Undefined figures are empty cells.
    assert r5["cancellation_rate"] == "" and r5["no_show_rate"] == ""
    # Every text cell is quoted, numbers are not.
    line = r.content.decode().split("\r\n")[1]
    assert line.startswith(f'{table[1][0]},"'), line
    # The other groupings have their own key columns.
    r = report(res_url, root, accept="text/csv", **window(data), group_by="hour_of_week",
               building=data["b1"])
    table = list(csv.reader(io.StringIO(r.text, newline="")))
    assert table[0][:2] == ["weekday", "hour"] and len(table) == 169
    r = report(res_url, root, accept="text/csv", **window(data), group_by="building",
               building=data["b2"])
    table = list(csv.reader(io.StringIO(r.text, newline="")))
    assert table[0][:2] == ["building", "rooms"] and table[1][:2] == [f"'+Annex {tag}", "2"]


@pytest.mark.parametrize("accept,is_csv", [
    ("text/csv", True), ("TEXT/CSV; charset=utf-8", True),
    ("application/json;q=0.5, text/csv", True), ("text/csv;q=0.5, application/json", False),
    ("application/json", False), ("*/*", False), ("text/csv;q=0", False), (None, False)])
def test_accept(data, res_url, root, accept, is_csv):
    r = report(res_url, root, accept=accept, **window(data), building=data["b2"])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv" if is_csv else "application/json")


@pytest.mark.parametrize("params,name", [
    ({"to": "2027-01-02"}, "from"),
    ({"from": "2027-01-01"}, "to"),
    ({"from": "yesterday", "to": "2027-01-02"}, "from"),
    ({"from": "2027-02-30", "to": "2027-03-02"}, "from"),
    ({"from": "2027-01-01", "to": "2027-01-01"}, "to"),
    ({"from": "2027-01-02", "to": "2027-01-01"}, "to"),
    ({"from": "2027-01-01", "to": "2028-01-03"}, "to"),
    ({"from": "2027-01-01T00:00:00Z", "to": "2028-01-02T00:00:01Z"}, "to"),
    ({"from": "2027-01-01T00:00:00Z", "to": "2027-01-02"}, "to"),
    ({"from": "2027-01-01", "to": "2027-01-02", "group_by": "floor"}, "group_by"),
    ({"from": "2027-01-01", "to": "2027-01-02", "building": "x" * 401}, "building"),
])
def test_parameter_errors(res_url, root, params, name):
    r = report(res_url, root, **params)
    assert_error(r, 400, "bad_request")
    assert name in r.json()["details"], r.text


def test_longest_window_and_default_grouping(res_url, root):
    body = ok(report(res_url, root, **{"from": "2027-01-01", "to": "2028-01-02"}))
    assert body["group_by"] == "room"


def test_admins_only_and_through_the_gateway(data, res_url, gateway_url, alice, root):
    assert_error(report(res_url, alice, **window(data)), 403, "forbidden")
    assert_error(report(res_url, {}, **window(data)), 401, "unauthorized")
    body = ok(report(gateway_url, root, **window(data), building=data["b2"]))
    assert body["totals"]["rooms"] == 2
