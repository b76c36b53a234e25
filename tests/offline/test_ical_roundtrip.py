"""Round trip of the series .ics (reservation-service/src/series_ics.c, common/src/ical.c)
through the iCalendar parser calendar clients' Python tooling uses: `icalendar` parses it,
`recurring_ical_events` expands RRULE/RDATE/EXDATE/RECURRENCE-ID, and the occurrences must be
exactly the series' confirmed ones (as UTC instants).

The series' occurrences are made here the way the database makes them (python-dateutil's rrule
on local times, python's zoneinfo for the instants), written by build/san/tests/series_ics_dump
(`make unit-bins` builds it), and parsed back.

icalendar 4.0.3 (Debian's) resolves a TZID by its name through pytz and uses the VTIMEZONE only
for a name pytz does not know; so every scenario is also parsed with the TZID renamed, which makes
it use the VTIMEZONE we wrote.  test_vtimezone_every_zone checks that VTIMEZONE against zoneinfo
for every zone of tzdata.zi.
"""

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from dateutil import rrule as du_rrule

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC


def dump_bin():
    bin_dir = os.environ.get("BIN_DIR")
    build = Path(bin_dir).parent if bin_dir else ROOT / "build" / "san"
    path = build / "tests" / "series_ics_dump"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: build it with `make SANITIZE=address,undefined unit-bins`",
                    pytrace=False)
    return str(path)


def ts(d):
    return int(d.timestamp())


def local_text(d):
    return d.strftime("%Y-%m-%dT%H:%M:%S")


def series_occurrences(zone, first_start, rule, duration):
    """The occurrences the database would hold for the rule (RRULE text, its EXDATE part
    applied as the server does): dicts with the fields of struct series_ics_occurrence."""
    tz = ZoneInfo(zone)
    parts, exdates = [], set()
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key == "EXDATE":
            exdates |= {dt.date(int(d[:4]), int(d[4:6]), int(d[6:8])) for d in value.split(",")}
            continue
        if key == "UNTIL" and len(value) == 8:   # a date: inclusive, as the server reads it
            value += "T235959"
        parts.append(f"{key}={value}")
    start = dt.datetime.fromisoformat(first_start)
    text = ";".join(parts)
    out = []
    for local in du_rrule.rrulestr(text, dtstart=start):
        if local.date() in exdates:
            continue
        begin = local.replace(tzinfo=tz)
        end = (begin.astimezone(UTC) + dt.timedelta(seconds=duration))
        out.append({"occurrence_start": local_text(local),
                    "local_start": local_text(begin.astimezone(UTC).astimezone(tz)),
                    "start_utc": ts(begin), "end_utc": ts(end),
                    "confirmed": True, "exception": False})
    return out


def move(occ, zone, new_local_start, duration):
    """The occurrence moved to new_local_start (local text) for duration seconds (a PUT)."""
    tz = ZoneInfo(zone)
    begin = dt.datetime.fromisoformat(new_local_start).replace(tzinfo=tz)
    occ.update(local_start=new_local_start, start_utc=ts(begin), end_utc=ts(begin) + duration,
               exception=True)


def scenario(zone, first_start, rule, duration=3600, **extra):
    s = {"id": 7, "zone": zone, "first_start": first_start, "duration_s": duration,
         "rule": rule, "until_utc": None, "purpose": "Team", "room_name": "Room 1",
         "created_utc": 1767225600, "updated_utc": 1767225600, "stamp_utc": 1767225600,
         "version": 1, "cancelled": False,
         "occurrences": series_occurrences(zone, first_start, rule, duration)}
    s.update(extra)
    return s


def build_ics(s):
    # Bytes: text mode would turn the CRLFs into newlines.
    proc = subprocess.run([dump_bin(), "series"], input=json.dumps(s).encode(),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def expand(text):
    """The events a calendar client sees: (start, end) UTC instants in seconds, sorted, and the
    events themselves."""
    cal = icalendar.Calendar.from_ical(text)
    events = recurring_ical_events.of(cal).between((2000, 1, 1), (2037, 12, 31))
    got = sorted((ts(e["DTSTART"].dt), ts(e["DTEND"].dt)) for e in events)
    return got, events


def assert_round_trip(s):
    text = build_ics(s)
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    want = sorted((o["start_utc"], o["end_utc"]) for o in s["occurrences"] if o["confirmed"])
    got, events = expand(text)
    assert got == want, "TZID by name (pytz)"
    assert {str(e["UID"]) for e in events} <= {f"series-{s['id']}@meeting-rooms"}
    # The same with a TZID pytz does not know: icalendar then uses our VTIMEZONE.
    renamed = text.replace(f"TZID:{s['zone']}\r\n", "TZID:X-Test/Zone-" + s["zone"] + "\r\n")
    renamed = renamed.replace(f"TZID={s['zone']}:", "TZID=X-Test/Zone-" + s["zone"] + ":")
    assert renamed.count("X-Test/Zone-") >= 2
    got, _ = expand(renamed)
    assert got == want, "TZID through the VTIMEZONE"
    return text, events


def test_weekly_berlin_across_both_dst_changes():
    # 40 Tuesdays from 3 March 2026: 29 March and 25 October move the UTC time, not 10:00.
    s = scenario("Europe/Berlin", "2026-03-03T10:00:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=40")
    utc_hours = {dt.datetime.fromtimestamp(o["start_utc"], UTC).hour for o in s["occurrences"]}
    assert utc_hours == {8, 9}
    text, _ = assert_round_trip(s)
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n" in text
    assert "EXDATE" not in text and "RECURRENCE-ID" not in text


def test_new_york_local_until():
    # Every third day at 17:00 New York through 15 November (a local UNTIL: written as COUNT).
    s = scenario("America/New_York", "2026-02-20T17:00:00",
                 "FREQ=DAILY;INTERVAL=3;UNTIL=20261115", duration=5400)
    text, _ = assert_round_trip(s)
    assert "RRULE:FREQ=DAILY;INTERVAL=3;COUNT=" in text
    assert "DURATION:PT1H30M\r\n" in text


def test_moved_occurrences():
    s = scenario("Europe/Berlin", "2026-03-03T10:00:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=10")
    occ = s["occurrences"]
    move(occ[2], "Europe/Berlin", "2026-03-18T14:00:00", 7200)   # another day, longer
    move(occ[5], "Europe/Berlin", "2026-04-07T11:30:00", 3600)   # after the DST change
    occ[6]["exception"] = True
    occ[6]["purpose"] = "Team; with guests, äöü"
    text, events = assert_round_trip(s)
    assert text.count("RECURRENCE-ID;TZID=Europe/Berlin:") == 3
    summaries = {str(e["SUMMARY"]) for e in events}
    assert summaries == {"Team", "Team; with guests, äöü"}


def test_cancelled_occurrence_and_first():
    s = scenario("Europe/Berlin", "2026-03-03T10:00:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=10")
    s["occurrences"][0]["confirmed"] = False
    s["occurrences"][4]["confirmed"] = False
    text, _ = assert_round_trip(s)
    assert text.count("EXDATE;TZID=Europe/Berlin:") == 2


def test_rule_exdate_and_skipped():
    # The rule's EXDATE, and an occurrence skipped at creation (no row at all).
    s = scenario("Europe/Berlin", "2026-03-02T09:00:00",
                 "FREQ=WEEKLY;BYDAY=MO,TH;COUNT=12;EXDATE=20260312,20260330")
    del s["occurrences"][6]
    text, _ = assert_round_trip(s)
    assert text.count("EXDATE;TZID=Europe/Berlin:") == 3


@pytest.mark.parametrize("later", ["gone", "cancelled"])
def test_cut_series(later):
    # Cut at the 6th occurrence (scope=this_and_following): the later ones went to the new
    # series (gone) or were cancelled (DELETE).
    s = scenario("Europe/Berlin", "2026-03-03T10:00:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=20")
    occ = s["occurrences"]
    s["until_utc"] = occ[5]["start_utc"]
    if later == "gone":
        del occ[5:]
    else:
        for o in occ[5:]:
            o["confirmed"] = False
    text, _ = assert_round_trip(s)
    assert "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20260407T075959Z\r\n" in text


def test_series_edited_keeps_past_times():
    # The series moved from 10:00 to 11:30 from 7 April; the earlier occurrences kept 10:00.
    zone = "Europe/Berlin"
    old = series_occurrences(zone, "2026-03-03T10:00:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=5", 3600)
    s = scenario(zone, "2026-04-07T11:30:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=5", duration=2700)
    s["occurrences"] = old + s["occurrences"]
    text, _ = assert_round_trip(s)
    assert text.count("RDATE;TZID=Europe/Berlin:") == 5


@pytest.mark.parametrize("zone,first,rule", [
    ("Asia/Kolkata", "2026-01-30T18:00:00", "FREQ=MONTHLY;BYDAY=-1FR;COUNT=12"),
    ("UTC", "2026-01-31T08:00:00", "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=7"),
    ("America/New_York", "2026-01-13T08:00:00", "FREQ=MONTHLY;BYDAY=2TU;UNTIL=20261231T235959"),
    ("Australia/Sydney", "2026-01-05T09:00:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=30"),
    ("Europe/Dublin", "2026-03-01T00:30:00", "FREQ=DAILY;COUNT=60"),
])
def test_other_zones_and_rules(zone, first, rule):
    assert_round_trip(scenario(zone, first, rule))


def test_cancelled_series_and_long_purpose():
    purpose = "Réunion d’équipe; Q3, \\ plan\nline two " + "€" * 80
    s = scenario("Europe/Berlin", "2026-03-03T10:00:00", "FREQ=WEEKLY;BYDAY=TU;COUNT=4",
                 cancelled=True, purpose=purpose)
    for o in s["occurrences"][2:]:
        o["confirmed"] = False
    text, events = assert_round_trip(s)
    assert "\r\nSTATUS:CANCELLED\r\n" in text
    assert {str(e["SUMMARY"]) for e in events} == {purpose}


def tzdata_names():
    names = []
    with open("/usr/share/zoneinfo/tzdata.zi", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "Z":
                names.append(parts[1])
            elif parts and parts[0] == "L":
                names.append(parts[2])
    return sorted(names)


FOOTER_NOT_CURRENT = {"Africa/Casablanca", "Africa/El_Aaiun", "Asia/Gaza", "Asia/Hebron"}


def test_vtimezone_every_zone():
    """Every zone of tzdata.zi gets a VTIMEZONE whose offsets agree with zoneinfo from 2026
    through 2036, at 6-hour steps and one second either side of every transition, but for the
    zones whose TZif data lists future transitions the footer's rule does not describe (Morocco
    and Palestine follow Ramadan, tabulated to 2086/2087): their VTIMEZONE has the footer's rule
    only.  Clients that know the zone by its name (as this parser does) are not affected."""
    names = tzdata_names()
    proc = subprocess.run([dump_bin(), "vtimezone", *names], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    failed = [line.split(":", 1)[1] for line in out.split("\r\n") if line.startswith("X-FAILED:")]
    assert failed == []
    blocks = out.split("BEGIN:VTIMEZONE\r\n")[1:]
    assert len(blocks) == len(names)
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    steps = int((dt.datetime(2037, 1, 1, tzinfo=UTC) - start) / dt.timedelta(hours=6))
    wrong = []
    for name, block in zip(names, blocks, strict=True):
        vtz = icalendar.Calendar.from_ical(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\n" + block
            + "END:VCALENDAR\r\n").walk("VTIMEZONE")[0]
        ours, real = vtz.to_tz(), ZoneInfo(name)

        def differs(t, ours=ours, real=real):
            return t.astimezone(ours).utcoffset() != t.astimezone(real).utcoffset()

        prev = None
        for i in range(steps + 1):
            t = start + dt.timedelta(hours=6 * i)
            off = t.astimezone(real).utcoffset()
            if differs(t):
                wrong.append(f"{name} at {t}")
                break
            if prev is not None and off != prev:
                lo, hi = t - dt.timedelta(hours=6), t   # the transition, to the second
                while hi - lo > dt.timedelta(seconds=1):
                    mid = lo + (hi - lo) / 2
                    if mid.astimezone(real).utcoffset() == prev:
                        lo = mid
                    else:
                        hi = mid
                if differs(lo) or differs(hi):
                    wrong.append(f"{name} at the transition {hi}")
                    break
            prev = off
    assert {w.split(" at ")[0] for w in wrong} == FOOTER_NOT_CURRENT
