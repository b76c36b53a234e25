"""GET /reservations/series/{id}.ics (docs/api.md#recurring-reservations): the series as
RFC 5545 text that a calendar library imports with exactly the server's confirmed occurrences —
a weekly Berlin series across a DST change with a rule EXDATE, a cancelled and a moved
occurrence; New York; a cancelled series; who may read it."""
import datetime

import icalendar
import pytest
import recurring_ical_events
import requests

from harness import assert_error, next_dst_days
from series_util import DAYS, get_series, local, series_made, utc_text

POOL_BATCH = 3
UTC = datetime.UTC


@pytest.fixture(scope="module")
def berlin(pool):
    return pool.take(time_zone="Europe/Berlin")


@pytest.fixture(scope="module")
def new_york(pool):
    return pool.take(time_zone="America/New_York")


def get_ics(res_url, headers, sid):
    return requests.get(f"{res_url}/reservations/series/{sid}.ics", headers=headers, timeout=10)


def server_occurrences(res_url, headers, sid):
    """The confirmed occurrences as GET /reservations/series/{id} lists them: (start, end)."""
    r = get_series(res_url, headers, sid)
    assert r.status_code == 200, r.text
    return sorted((o["start_time"], o["end_time"]) for o in r.json()["occurrences"]
                  if o["status"] == "confirmed")


def imported_occurrences(text):
    """What a calendar client makes of the text: every instance between now and five years on,
    as (start, end) in UTC."""
    cal = icalendar.Calendar.from_ical(text)
    now = datetime.datetime.now(UTC)
    out = []
    for ev in recurring_ical_events.of(cal).between(now - datetime.timedelta(days=2),
                                                    now + datetime.timedelta(days=5 * 366)):
        s, e = ev["DTSTART"].dt, ev["DTEND"].dt if "DTEND" in ev else None
        if e is None:
            e = s + ev["DURATION"].dt
        out.append((utc_text(s), utc_text(e)))
    return sorted(out)


def test_berlin_series_with_exdate_cancelled_and_moved_occurrences_round_trips(
        res_url, users, berlin):
    headers, _ = users["alice"]
    # A weekly series that crosses the next DST change of Berlin.
    dst = datetime.date.fromisoformat(next_dst_days("Europe/Berlin")[0][0])
    soon = datetime.date.today() + datetime.timedelta(days=2)
    first = max(dst - datetime.timedelta(weeks=3), soon)
    day = DAYS[first.weekday()]
    excluded = first + datetime.timedelta(weeks=1)
    s = series_made(res_url, headers, berlin["id"], local(first, 10), local(first, 11),
               {"freq": "WEEKLY", "byday": [day], "count": 8,
                "exdate": [excluded.isoformat()]}, purpose="Team; weekly, with a comma")
    occ = s["occurrences"]
    assert len(occ) == 7
    # One occurrence cancelled, another moved by an hour and a half.
    r = requests.delete(f"{res_url}/reservations/{occ[1]['id']}", headers=headers, timeout=10)
    assert r.status_code == 204, r.text
    moved = occ[4]
    d = datetime.date.fromisoformat(moved["occurrence_start"][:10])
    r = requests.put(f"{res_url}/reservations/{moved['id']}", headers=headers, timeout=10,
                     json={"start_time": local(d, 11, 30), "end_time": local(d, 12, 30)})
    assert r.status_code == 200, r.text

    r = get_ics(res_url, headers, s["id"])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert r.headers["Content-Disposition"] == f'attachment; filename="series-{s["id"]}.ics"'
    text = r.content
    assert text.startswith(b"BEGIN:VCALENDAR\r\n") and text.endswith(b"END:VCALENDAR\r\n")
    assert b"BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n" in text
    assert all(len(line) <= 75 for line in text.split(b"\r\n"))
    expected = server_occurrences(res_url, headers, s["id"])
    assert len(expected) == 6
    assert imported_occurrences(text) == expected
    cal = icalendar.Calendar.from_ical(text)
    master = [c for c in cal.walk("VEVENT") if "RECURRENCE-ID" not in c]
    assert len(master) == 1
    assert str(master[0]["SUMMARY"]) == "Team; weekly, with a comma"
    assert str(master[0]["LOCATION"]) == berlin["name"]


def test_new_york_daily_weekdays_round_trip(res_url, users, new_york):
    headers, _ = users["alice"]
    dst = datetime.date.fromisoformat(next_dst_days("America/New_York")[0][0])
    soon = datetime.date.today() + datetime.timedelta(days=2)
    first = max(dst - datetime.timedelta(days=6), soon)
    s = series_made(res_url, headers, new_york["id"], local(first, 9), local(first, 9, 15),
               "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=10")
    r = get_ics(res_url, headers, s["id"])
    assert r.status_code == 200, r.text
    assert imported_occurrences(r.content) == server_occurrences(res_url, headers, s["id"])


def test_a_cancelled_series_is_written_cancelled(res_url, users, berlin):
    headers, _ = users["alice"]
    first = datetime.date.today() + datetime.timedelta(days=200)
    s = series_made(res_url, headers, berlin["id"], local(first, 15), local(first, 16),
               "FREQ=DAILY;COUNT=3")
    r = requests.delete(f"{res_url}/reservations/series/{s['id']}", headers=headers, timeout=10)
    assert r.status_code == 204, r.text
    r = get_ics(res_url, headers, s["id"])
    assert r.status_code == 200, r.text
    cal = icalendar.Calendar.from_ical(r.content)
    (master,) = cal.walk("VEVENT")
    assert str(master["STATUS"]) == "CANCELLED"
    assert imported_occurrences(r.content) == []


def test_only_the_owner_or_an_admin_reads_it(res_url, users, berlin):
    headers, _ = users["alice"]
    first = datetime.date.today() + datetime.timedelta(days=220)
    s = series_made(res_url, headers, berlin["id"], local(first, 8), local(first, 9),
               "FREQ=WEEKLY;COUNT=2")
    assert_error(get_ics(res_url, users["bob"][0], s["id"]), 403, "forbidden")
    r = get_ics(res_url, users["root"][0], s["id"])
    assert r.status_code == 200 and r.content.startswith(b"BEGIN:VCALENDAR")
    assert_error(get_ics(res_url, headers, 999999999), 404, "not_found")
    r = requests.get(f"{res_url}/reservations/series/x.ics", headers=headers, timeout=10)
    assert_error(r, 404, "not_found")
    r = requests.get(f"{res_url}/reservations/series/{s['id']}.ics", timeout=10)
    assert_error(r, 401, "unauthorized")


def test_an_occurrence_in_the_repeated_hour_is_written_as_its_instant(res_url, users, berlin):
    """02:30 on the day Berlin's clocks go back exists twice; the server books the second one
    (docs/api.md#time-rules), an RFC 5545 client would read the first: the .ics carries that
    occurrence as an override whose times are the booked instants in UTC."""
    headers, _ = users["alice"]
    fold = next(datetime.date.fromisoformat(d) for d, hours in next_dst_days("Europe/Berlin")
                if hours == 25)
    first = fold - datetime.timedelta(days=1)
    if (first - datetime.date.today()).days < 2 or (fold - datetime.date.today()).days > 360:
        pytest.skip("the fall-back day is too close or at the booking horizon")
    s = series_made(res_url, headers, berlin["id"], local(first, 2, 30), local(first, 3, 15),
               "FREQ=DAILY;COUNT=3")
    booked = {o["occurrence_start"][:10]: o for o in s["occurrences"]}
    on_fold = booked[fold.isoformat()]
    # The second 02:30 (standard time, UTC+1).
    assert on_fold["start_time"] == f"{fold.isoformat()}T01:30:00Z", on_fold
    r = get_ics(res_url, headers, s["id"])
    assert r.status_code == 200, r.text
    cal = icalendar.Calendar.from_ical(r.content)
    overrides = [c for c in cal.walk("VEVENT") if "RECURRENCE-ID" in c]
    assert len(overrides) == 1, r.text
    (o,) = overrides
    assert o["RECURRENCE-ID"].dt.date() == fold
    assert utc_text(o["DTSTART"].dt) == \
        on_fold["start_time"]
    assert imported_occurrences(r.content) == server_occurrences(res_url, headers, s["id"])
