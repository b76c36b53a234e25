"""Recurring reservations (docs/api.md#recurring-reservations): a series created through
POST /reservations with a recurrence, its answer, GET and DELETE /reservations/series/{id},
?series_id=, fail vs skip, the limits, Idempotency-Key, the events, room deletion, and a race of
a series against 200 single bookings that must leave no overlap."""
import datetime
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import (
    RESERVATION_KEYS,
    assert_error,
    bearer,
    book,
    booked,
    next_dst_days,
    operator_token,
    overlapping_confirmed_pairs,
    res_db_query,
    res_outbox_unsent,
    wait_until,
)
from series_util import (
    DAYS,
    SERIES_KEYS,
    ahead,
    get_series,
    list_series,
    local,
    series_events,
    series_made,
    series_post,
    utc_of,
)

POOL_BATCH = 14


def confirmed_of_room(stack, room_id):
    return res_db_query(stack.pg, "SELECT id, series_id FROM reservations WHERE room_id = %s "
                                  "AND status = 'confirmed' ORDER BY start_time", room_id)


@pytest.fixture(scope="module")
def berlin(pool):
    return pool.take(time_zone="Europe/Berlin")


# ---- create ----

def test_create_string_form_answers_the_series_with_its_occurrences(res_url, users, berlin):
    headers, uid = users["alice"]
    first = ahead(7)
    rule = f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]};COUNT=4"
    r = series_post(res_url, headers, berlin["id"], local(first), local(first, 11), rule,
                    purpose="Team")
    assert r.status_code == 201, r.text
    s = r.json()
    assert set(s) == SERIES_KEYS | {"skipped"}, s
    assert r.headers["Location"] == f"/reservations/series/{s['id']}"
    assert r.headers["ETag"] == '"1"'
    assert s["skipped"] == []
    assert s["recurrence"] == rule and s["rrule"] == rule
    assert s["room_id"] == berlin["id"] and s["user_id"] == uid and s["purpose"] == "Team"
    assert s["time_zone"] == "Europe/Berlin" and s["first_start"] == local(first)
    assert s["duration_seconds"] == 3600 and s["exdates"] == []
    assert s["status"] == "active" and s["cancel_reason"] is None and s["version"] == 1
    assert s["until_time"] is None and s["parent_id"] is None
    occ = s["occurrences"]
    assert len(occ) == 4
    for i, o in enumerate(occ):
        d = first + datetime.timedelta(weeks=i)
        assert set(o) == RESERVATION_KEYS
        assert o["series_id"] == s["id"] and o["occurrence_start"] == local(d)
        # 10:00 Berlin whatever the season: the UTC time follows the zone.
        assert o["start_time"] == utc_of(d, 10, "Europe/Berlin")
        assert o["end_time"] == utc_of(d, 11, "Europe/Berlin")
        assert o["status"] == "confirmed" and o["purpose"] == "Team" and o["user_id"] == uid

    g = get_series(res_url, headers, s["id"])
    assert g.status_code == 200 and g.headers["ETag"] == '"1"'
    want = dict(s)
    del want["skipped"]
    assert g.json() == want
    # Reads are built in C, writes in SQL: the same objects.
    assert list_series(res_url, headers, s["id"]) == occ
    one = requests.get(f"{res_url}/reservations/{occ[1]['id']}", headers=headers, timeout=10)
    assert one.status_code == 200 and one.json() == occ[1]


def test_create_object_form_with_exdate_and_offset_start(res_url, alice, berlin):
    first = ahead(9)
    skipped_day = first + datetime.timedelta(days=1)
    rule = {"freq": "DAILY", "count": 3, "exdate": [skipped_day.isoformat()]}
    start = utc_of(first, 14, "Europe/Berlin")
    end = utc_of(first, 14, "Europe/Berlin", minute=45)
    s = series_made(res_url, alice, berlin["id"], start, end, rule)
    assert s["recurrence"] == rule
    assert s["rrule"] == "FREQ=DAILY;COUNT=3"
    assert s["exdates"] == [skipped_day.isoformat()]
    assert s["duration_seconds"] == 45 * 60
    assert [o["occurrence_start"] for o in s["occurrences"]] == [
        local(first, 14), local(first + datetime.timedelta(days=2), 14)]


# ---- conflicts ----

def test_fail_refuses_all_and_lists_every_conflicting_occurrence(stack, res_url, alice, bob,
                                                                 room):
    first = ahead(5)
    taken = [first + datetime.timedelta(days=1), first + datetime.timedelta(days=3)]
    held = [booked(res_url, bob, room["id"], f"{d.isoformat()}T10:30:00Z",
                   f"{d.isoformat()}T11:30:00Z") for d in taken]
    r = series_post(res_url, alice, room["id"], f"{first.isoformat()}T10:00:00Z",
                    f"{first.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=5")
    assert_error(r, 409, "conflict")
    details = r.json()["details"]
    assert [o["occurrence_start"] for o in details["occurrences"]] == [
        local(d) for d in taken]
    for o, h in zip(details["occurrences"], held, strict=True):
        assert o["conflicts"] == [{"start_time": h["start_time"], "end_time": h["end_time"]}]
        assert o["start_time"].endswith("T10:00:00Z") and o["end_time"].endswith("T11:00:00Z")
    assert details["conflicts"] == [{"start_time": h["start_time"], "end_time": h["end_time"]}
                                    for h in held]
    # All or nothing: only bob's two bookings.
    assert [row[0] for row in confirmed_of_room(stack, room["id"])] == [h["id"] for h in held]


def test_skip_books_the_free_occurrences_and_returns_the_skipped(stack, res_url, alice, bob,
                                                                 room):
    first = ahead(5)
    taken = first + datetime.timedelta(days=2)
    held = booked(res_url, bob, room["id"], f"{taken.isoformat()}T09:00:00Z",
                  f"{taken.isoformat()}T10:30:00Z")
    s = series_made(res_url, alice, room["id"], f"{first.isoformat()}T10:00:00Z",
                    f"{first.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=4", on_conflict="skip")
    assert [o["occurrence_start"] for o in s["occurrences"]] == [
        local(first + datetime.timedelta(days=i)) for i in (0, 1, 3)]
    assert s["skipped"] == [{
        "occurrence_start": local(taken), "start_time": f"{taken.isoformat()}T10:00:00Z",
        "end_time": f"{taken.isoformat()}T11:00:00Z",
        "conflicts": [{"start_time": held["start_time"], "end_time": held["end_time"]}]}]
    assert len(confirmed_of_room(stack, room["id"])) == 4
    # The skipped occurrence is no part of the series.
    assert "skipped" not in get_series(res_url, alice, s["id"]).json()


def test_skip_with_no_free_occurrence_is_409(res_url, alice, bob, room):
    d = ahead(6)
    booked(res_url, bob, room["id"], f"{d.isoformat()}T08:00:00Z", f"{d.isoformat()}T12:00:00Z")
    r = series_post(res_url, alice, room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=1", on_conflict="skip")
    assert_error(r, 409, "conflict")
    assert len(r.json()["details"]["occurrences"]) == 1


# ---- limits ----

@pytest.mark.parametrize("rule,extra,field,words", [
    ("FREQ=DAILY;COUNT=201", {}, "recurrence", "MAX_OCCURRENCES (200)"),
    ("FREQ=WEEKLY;COUNT=60", {}, "recurrence", "horizon"),
    ("FREQ=DAILY;INTERVAL=2", {}, "recurrence", "COUNT"),
    ("FREQ=WEEKLY;BYSETPOS=1;COUNT=3", {}, "recurrence", "BYSETPOS"),
    ("FREQ=HOURLY;COUNT=3", {}, "recurrence", "FREQ"),
    (42, {}, "recurrence", None),
    ("FREQ=DAILY;COUNT=3", {"on_conflict": "maybe"}, "on_conflict", None),
], ids=["too-many", "past-horizon", "no-end", "bysetpos", "hourly", "number", "bad-on-conflict"])
def test_refused_rules_are_422_naming_the_part(res_url, alice, shared_room, rule, extra, field,
                                               words):
    d = ahead(3)
    r = series_post(res_url, alice, shared_room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", rule, **extra)
    assert_error(r, 422, "validation_failed", detail=field)
    if words:
        assert words in r.json()["details"][field], r.json()


def test_a_rule_without_occurrence_is_422(res_url, alice, shared_room):
    d = ahead(3)
    before = (d - datetime.timedelta(days=1)).strftime("%Y%m%d")
    r = series_post(res_url, alice, shared_room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", f"FREQ=DAILY;UNTIL={before}")
    assert_error(r, 422, "validation_failed", detail="recurrence")
    assert "no occurrence" in r.json()["details"]["recurrence"]


def test_the_first_occurrence_obeys_the_single_booking_rules(res_url, alice, shared_room):
    d = ahead(3)
    r = series_post(res_url, alice, shared_room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T10:01:00Z", "FREQ=DAILY;COUNT=3")
    assert_error(r, 422, "validation_failed", detail="end_time")
    past = ahead(-1)
    r = series_post(res_url, alice, shared_room["id"], f"{past.isoformat()}T10:00:00Z",
                    f"{past.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=3")
    assert_error(r, 422, "validation_failed", detail="start_time")


def spring_forward_within_horizon():
    """(zone, date) of the next 23-hour day whose series of the test below stays within
    BOOKING_HORIZON_DAYS (365): Berlin's (late March), or in the days just before it, when
    Berlin's next one is a year away, Sydney's (early October)."""
    limit = datetime.date.today() + datetime.timedelta(days=360)
    for zone in ("Europe/Berlin", "Australia/Sydney"):
        spring = next(datetime.date.fromisoformat(d) for d, hours in next_dst_days(zone)
                      if hours == 23)
        if spring + datetime.timedelta(days=1) <= limit:
            return zone, spring
    raise AssertionError("no 23-hour day within the horizon")  # pragma: no cover


def test_occurrences_that_overlap_each_other_are_422(res_url, alice, pool):
    # 24 hours from 10:00 the day before clocks go forward end at 11:00 summer time, after the
    # next day's 10:00 (a 23-hour day); MAX_DURATION_MINUTES (1440) allows the duration.
    zone, spring = spring_forward_within_horizon()
    room = pool.take(time_zone=zone)
    d = spring - datetime.timedelta(days=1)
    r = series_post(res_url, alice, room["id"], local(d),
                    local(spring, 11), "FREQ=DAILY;COUNT=3")
    assert_error(r, 422, "validation_failed", detail="recurrence")
    assert "overlaps the next" in r.json()["details"]["recurrence"]


def test_a_start_beyond_the_horizon_is_answered_as_a_single_booking(res_url, alice,
                                                                     shared_room):
    # Shortening the rule cannot help: the first occurrence itself is too far ahead.
    d = ahead(400)
    times = (f"{d.isoformat()}T10:00:00Z", f"{d.isoformat()}T11:00:00Z")
    single = book(res_url, alice, shared_room["id"], *times)
    assert_error(single, 422, "validation_failed", detail="start_time")
    for rule in ("FREQ=DAILY;COUNT=1", "FREQ=WEEKLY;COUNT=5"):
        r = series_post(res_url, alice, shared_room["id"], *times, rule)
        assert_error(r, 422, "validation_failed", detail="start_time")
        assert r.json()["details"] == single.json()["details"], rule


def test_the_object_form_keeps_its_key_order(res_url, alice, shared_room):
    d = ahead(3)
    r = series_post(res_url, alice, shared_room["id"], f"{d.isoformat()}T07:00:00Z",
                    f"{d.isoformat()}T07:30:00Z", {"count": 2, "interval": 1, "freq": "DAILY"})
    assert r.status_code == 201, r.text
    assert list(r.json()["recurrence"]) == ["count", "interval", "freq"]
    assert list(get_series(res_url, alice, r.json()["id"]).json()["recurrence"]) == [
        "count", "interval", "freq"]


def test_on_conflict_without_recurrence_is_422(res_url, alice, shared_room):
    d = ahead(3)
    r = book(res_url, alice, shared_room["id"], f"{d.isoformat()}T10:00:00Z",
             f"{d.isoformat()}T11:00:00Z", on_conflict="skip")
    assert_error(r, 422, "validation_failed", detail="on_conflict")


def test_refused_rule_and_other_fields_are_reported_together(res_url, alice, shared_room):
    d = ahead(3)
    r = series_post(res_url, alice, shared_room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", "FREQ=YEARLY;COUNT=2", purpose="x" * 201)
    assert_error(r, 422, "validation_failed")
    assert {"recurrence", "purpose"} <= set(r.json()["details"])


@pytest.fixture(scope="module")
def shared_room(pool):
    """For the requests that are refused before anything is booked."""
    return pool.take()


# ---- Idempotency-Key ----

def test_idempotency_key_replays_the_series(stack, res_url, alice, room):
    d = ahead(4)
    key = f"series-{uuid.uuid4()}"
    args = (res_url, alice | {"Idempotency-Key": key}, room["id"], f"{d.isoformat()}T10:00:00Z",
            f"{d.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=3")
    first = series_post(*args)
    again = series_post(*args)
    assert first.status_code == 201 and again.status_code == 201, (first.text, again.text)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(confirmed_of_room(stack, room["id"])) == 3
    other = series_post(*args[:5], "FREQ=DAILY;COUNT=2")
    assert_error(other, 422, "validation_failed", detail="Idempotency-Key")


# ---- read, access ----

def test_what_the_service_reads_of_a_series_does_not_depend_on_datestyle(stack, res_url, alice,
                                                                         room):
    """The dates the C side parses (today's date, the rule's EXDATEs) come formatted by the
    database functions, whatever the session's DateStyle (the service also pins ISO on its
    connections, db.c)."""
    import psycopg2
    d = ahead(8)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T16:00:00Z",
                    f"{d.isoformat()}T17:00:00Z", {"freq": "DAILY", "count": 3,
                                                   "exdate": [ahead(9).isoformat()]})
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET datestyle = 'SQL, DMY'")
            cur.execute("SELECT now()::date::text, s.today FROM res_series_start(%s, %s, NULL, "
                        "%s, NULL, extract(epoch FROM now())::bigint) s",
                        (room["id"], 2000000000, 2000003600))
            raw, today = cur.fetchone()
            assert "/" in raw  # the session writes dates as 30/11/2026
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", today), today
            cur.execute("SELECT res_series_rule(s) FROM reservation_series s WHERE id = %s",
                        (s["id"],))
            assert cur.fetchone()[0].endswith(f";EXDATE={ahead(9).strftime('%Y%m%d')}")
    finally:
        conn.close()
    # And the service still reads it: the .ics parses the rule (and has the series' ETag).
    ics = requests.get(f"{res_url}/reservations/series/{s['id']}.ics", headers=alice,
                       timeout=10)
    assert ics.status_code == 200, ics.text
    assert ics.headers["ETag"] == f'"{s["version"]}"'


def test_someone_elses_series_is_403_and_admins_may_read_it(res_url, alice, bob, root, room):
    d = ahead(4)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T12:00:00Z",
                    f"{d.isoformat()}T13:00:00Z", "FREQ=DAILY;COUNT=2")
    assert_error(get_series(res_url, bob, s["id"]), 403, "forbidden")
    assert_error(requests.delete(f"{res_url}/reservations/series/{s['id']}", headers=bob,
                                 timeout=10), 403, "forbidden")
    assert get_series(res_url, root, s["id"]).status_code == 200
    # An employee lists only their own reservations, whatever the series.
    assert requests.get(f"{res_url}/reservations", headers=bob, timeout=10,
                        params={"series_id": s["id"]}).json() == []


def test_unknown_series_and_ics_are_404(res_url, alice):
    assert_error(get_series(res_url, alice, 999999999), 404, "not_found")
    assert_error(requests.delete(f"{res_url}/reservations/series/999999999", headers=alice,
                                 timeout=10), 404, "not_found")
    assert_error(requests.get(f"{res_url}/reservations/series/999999999.ics", headers=alice,
                              timeout=10), 404, "not_found")


def test_put_on_an_occurrence_makes_it_an_exception(stack, res_url, alice, room):
    d = ahead(4)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T15:00:00Z",
                    f"{d.isoformat()}T16:00:00Z", "FREQ=DAILY;COUNT=2")
    occ = s["occurrences"][1]
    r = requests.put(f"{res_url}/reservations/{occ['id']}", headers=alice, timeout=10,
                     json={"purpose": "moved"})
    assert r.status_code == 200, r.text
    assert r.json()["series_id"] == s["id"] and r.json()["occurrence_start"] == occ[
        "occurrence_start"]
    flags = res_db_query(stack.pg, "SELECT id, exception FROM reservations WHERE series_id = %s "
                                   "ORDER BY id", s["id"])
    assert flags == [(s["occurrences"][0]["id"], False), (occ["id"], True)]


# ---- cancel ----

def test_delete_cancels_the_future_occurrences_and_the_series(stack, res_url, alice, room):
    d = ahead(4)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=3")
    # An occurrence that already took place (the API refuses the past: written directly).
    past = res_db_query(stack.pg, "INSERT INTO reservations (room_id, user_id, start_time, "
                                  "end_time, series_id, occurrence_start) SELECT room_id, "
                                  "user_id, now() - interval '2 days', now() - interval '2 days' "
                                  "+ interval '1 hour', id, (now() - interval '2 days')::timestamp "
                                  "FROM reservation_series WHERE id = %s RETURNING id",
                        s["id"])[0][0]
    url = f"{res_url}/reservations/series/{s['id']}"
    assert_error(requests.delete(url, headers=alice | {"If-Match": '"7"'}, timeout=10),
                 412, "precondition_failed")
    r = requests.delete(url, headers=alice | {"If-Match": '"1"'}, timeout=10)
    assert r.status_code == 204 and r.text == ""
    g = get_series(res_url, alice, s["id"]).json()
    assert g["status"] == "cancelled" and g["cancel_reason"] == "cancelled_by_user"
    assert g["version"] == 2
    by_id = {o["id"]: o for o in g["occurrences"]}
    assert by_id[past]["status"] == "confirmed"
    for o in s["occurrences"]:
        assert by_id[o["id"]]["status"] == "cancelled"
        assert by_id[o["id"]]["cancel_reason"] == "cancelled_by_user"
    assert requests.delete(url, headers=alice, timeout=10).status_code == 204
    assert get_series(res_url, alice, s["id"]).json()["version"] == 2


# ---- events ----

def test_events_carry_the_series_and_each_occurrence(stack, res_url, alice, room):
    d = ahead(4)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T17:00:00Z",
                    f"{d.isoformat()}T18:00:00Z", "FREQ=DAILY;COUNT=3", purpose="evt")
    ids = [o["id"] for o in s["occurrences"]]
    assert requests.delete(f"{res_url}/reservations/series/{s['id']}", headers=alice,
                           timeout=10).status_code == 204
    wait_until(lambda: res_outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
               what="reservation outbox drained")
    found = []

    def enough():
        found[:] = series_events(stack, ids + [f"series-{s['id']}"])
        return len(found) >= 8
    wait_until(enough, timeout=30, interval=0.3, what="the series' events")
    types = [e["event_type"] for e in found]
    assert types.count("reservation_created") == 3 and types.count("reservation_cancelled") == 3
    created = [e for e in found if e["event_type"] == "reservation_series_created"]
    cancelled = [e for e in found if e["event_type"] == "reservation_series_cancelled"]
    assert len(created) == 1 and len(cancelled) == 1
    assert created[0]["occurrence_ids"] == ids and created[0]["version"] == 1
    want = dict(s)
    del want["occurrences"], want["skipped"]
    assert created[0]["series"] == want
    assert cancelled[0]["occurrence_ids"] == [] and cancelled[0]["series"]["status"] == "cancelled"
    for e in found:
        if e["event_type"] == "reservation_created":
            assert e["reservation"]["series_id"] == s["id"]
            assert e["reservation"] in s["occurrences"]


def test_room_deletion_cancels_future_occurrences_and_the_series(stack, room_url, res_url,
                                                                 admin_headers, alice, pool):
    room = pool.take()
    d = ahead(4)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", "FREQ=WEEKLY;COUNT=3")
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers,
                           timeout=10).status_code == 204
    wait_until(lambda: get_series(res_url, alice, s["id"]).json()["status"] == "cancelled",
               timeout=30, interval=0.2, what="series cancelled by the room deletion")
    g = get_series(res_url, alice, s["id"]).json()
    assert g["cancel_reason"] == "room_deleted"
    assert {(o["status"], o["cancel_reason"]) for o in g["occurrences"]} == {
        ("cancelled", "room_deleted")}
    wait_until(lambda: res_outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1)
    ev = [e for e in series_events(stack, [f"series-{s['id']}"])
          if e["event_type"] == "reservation_series_cancelled"]
    assert len(ev) == 1 and ev[0]["series"]["cancel_reason"] == "room_deleted"


def test_room_deletion_also_cancels_an_occurrence_moved_to_another_room(
        stack, room_url, res_url, admin_headers, alice, pool):
    """The series ends with its room: its future occurrences end with it, in whatever room
    (docs/api.md#recurring-reservations); a DELETE of the series afterwards leaves nothing
    confirmed either."""
    room, other = pool.take(), pool.take()
    d = ahead(5)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T12:00:00Z",
                    f"{d.isoformat()}T13:00:00Z", "FREQ=DAILY;COUNT=3")
    moved = s["occurrences"][1]
    r = requests.put(f"{res_url}/reservations/{moved['id']}", headers=alice, timeout=10,
                     json={"room_id": other["id"]})
    assert r.status_code == 200, r.text
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers,
                           timeout=10).status_code == 204
    wait_until(lambda: get_series(res_url, alice, s["id"]).json()["status"] == "cancelled",
               timeout=30, interval=0.2, what="series cancelled by the room deletion")
    g = get_series(res_url, alice, s["id"]).json()
    assert [(o["room_id"], o["status"], o["cancel_reason"]) for o in g["occurrences"]] == [
        (room["id"], "cancelled", "room_deleted"), (other["id"], "cancelled", "room_deleted"),
        (room["id"], "cancelled", "room_deleted")]
    assert requests.delete(f"{res_url}/reservations/series/{s['id']}", headers=alice,
                           timeout=10).status_code == 204
    assert confirmed_of_room(stack, other["id"]) == []
    wait_until(lambda: res_outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1)
    ev = series_events(stack, [moved["id"]])
    assert [e["event_type"] for e in ev][-1] == "reservation_cancelled"
    assert ev[-1]["reservation"]["cancel_reason"] == "room_deleted"


def test_a_series_delete_waits_for_a_room_deletion_in_flight(stack, res_url, alice, pool):
    """Lock order (migrations/006_recurrence.sql): a room deletion locks the room's series before
    their occurrences, as DELETE /reservations/series/{id} does, so the DELETE waits for it and
    then finds the series ended. In the opposite order the two deadlocked and PostgreSQL
    aborted the DELETE (503)."""
    import psycopg2
    room = pool.take()
    d = ahead(6)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T14:00:00Z",
                    f"{d.isoformat()}T15:00:00Z", "FREQ=DAILY;COUNT=5")
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        with ThreadPoolExecutor(1) as executor:
            cur = conn.cursor()
            # What the consumer of room_deleted does (res_repo_room_delete), held open.
            cur.execute("UPDATE rooms SET active = false, deleted = true WHERE id = %s",
                        (room["id"],))
            cur.execute("SELECT res_cancel_future(true, %s, 'room_deleted', "
                        "'reservation_events')", (room["id"],))
            assert cur.fetchone() == (5,)
            pending = executor.submit(requests.delete,
                                      f"{res_url}/reservations/series/{s['id']}",
                                      headers=alice, timeout=30)
            # It waits; longer than deadlock_timeout (1 s), so a deadlock would be found by now.
            with pytest.raises(TimeoutError):
                pending.result(timeout=1.5)
            conn.commit()
            r = pending.result(timeout=30)
    finally:
        conn.close()
    assert r.status_code == 204, r.text
    g = get_series(res_url, alice, s["id"]).json()
    assert (g["status"], g["cancel_reason"]) == ("cancelled", "room_deleted")
    assert {(o["status"], o["cancel_reason"]) for o in g["occurrences"]} == {
        ("cancelled", "room_deleted")}


def test_a_room_deletion_locks_the_series_before_its_occurrences(stack, room_url, res_url,
                                                                  admin_headers, alice, pool):
    """The other half of the lock order: while a series writer holds the series (as a DELETE of
    the series does before it cancels the occurrences), the consumer's room deletion waits for
    the series without having locked any occurrence. Before, it cancelled the room's
    reservations first and then waited for the series: the DELETE, waiting for those
    occurrences, deadlocked with it."""
    import psycopg2
    import psycopg2.errors
    room = pool.take()
    d = ahead(7)
    s = series_made(res_url, alice, room["id"], f"{d.isoformat()}T14:00:00Z",
                    f"{d.isoformat()}T15:00:00Z", "FREQ=DAILY;COUNT=3")
    holder = psycopg2.connect(stack.pg.dsn("reservation_db"))
    probe = psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        hold = holder.cursor()
        hold.execute("SELECT 1 FROM reservation_series WHERE id = %s FOR UPDATE", (s["id"],))
        assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers,
                               timeout=10).status_code == 204
        # The consumer arrives and waits for a lock (the series).
        wait_until(lambda: res_db_query(
            stack.pg, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                      "WHERE NOT l.granted AND a.datname = current_database() "
                      "AND a.pid <> %s", holder.get_backend_pid())[0][0] > 0,
            timeout=30, interval=0.1, what="the room deletion waiting for the series")
        with probe, probe.cursor() as cur:
            try:
                cur.execute("SELECT id FROM reservations WHERE series_id = %s "
                            "FOR UPDATE NOWAIT", (s["id"],))
            except psycopg2.errors.LockNotAvailable:
                pytest.fail("the room deletion locked occurrences before their series")
            assert len(cur.fetchall()) == 3
        holder.rollback()
    finally:
        holder.close()
        probe.close()
    wait_until(lambda: get_series(res_url, alice, s["id"]).json()["status"] == "cancelled",
               timeout=30, interval=0.2, what="series cancelled by the room deletion")


def test_user_deletion_cancels_the_series(stack, user_url, res_url, admin_headers, pool):
    room = pool.take()
    token, uid = operator_token(stack.user, f"series-gone-{uuid.uuid4().hex[:8]}@example.com")
    headers = bearer(token)
    d = ahead(4)
    s = series_made(res_url, headers, room["id"], f"{d.isoformat()}T10:00:00Z",
                    f"{d.isoformat()}T11:00:00Z", "FREQ=DAILY;COUNT=2")
    assert requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers,
                           timeout=10).status_code == 204
    wait_until(lambda: res_db_query(stack.pg, "SELECT status, cancel_reason FROM "
                                              "reservation_series WHERE id = %s", s["id"])
               == [("cancelled", "user_deleted")], timeout=30, interval=0.2,
               what="series cancelled by the user deletion")
    assert res_db_query(stack.pg, "SELECT DISTINCT status, cancel_reason FROM reservations "
                                  "WHERE series_id = %s", s["id"]) == [("cancelled",
                                                                         "user_deleted")]


# ---- the race ----

WORKERS = 50


@pytest.fixture(scope="module")
def racers(stack):
    tag = uuid.uuid4().hex[:8]
    return [bearer(operator_token(stack.user, f"series-racer{i}-{tag}@example.com")[0])
            for i in range(10)]


def parse_z(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def overlaps(a, b):
    return parse_z(a["start_time"]) < parse_z(b["end_time"]) and \
        parse_z(b["start_time"]) < parse_z(a["end_time"])


@pytest.mark.parametrize("on_conflict", ["fail", "skip"])
def test_race_series_against_200_single_bookings_leaves_no_overlap(stack, res_url, alice,
                                                                   racers, pool, on_conflict):
    room = pool.take()
    first = ahead(1)
    weeks = [first + datetime.timedelta(weeks=i) for i in range(52)]
    singles = []
    for i in range(200):
        d = weeks[(i * 7) % 52]
        minute = (0, 30, 45)[i % 3]
        singles.append({"room_id": room["id"], "start_time": f"{d.isoformat()}T10:{minute:02d}:00Z",
                        "end_time": f"{d.isoformat()}T11:{minute:02d}:00Z"})
    series_body = {"room_id": room["id"], "start_time": f"{first.isoformat()}T10:00:00Z",
                   "end_time": f"{first.isoformat()}T11:00:00Z",
                   "recurrence": "FREQ=WEEKLY;COUNT=52", "on_conflict": on_conflict}
    # The series goes in among the first singles, so that both sides have a chance to win.
    jobs = [(racers[i % len(racers)], b) for i, b in enumerate(singles)]
    jobs.insert(10, (alice, series_body))
    local = threading.local()

    def one(job):
        headers, body = job
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers.update({"Connection": "close"})
        r = local.s.post(f"{res_url}/reservations", json=body, headers=headers, timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=WORKERS) as ex:
        results = list(ex.map(one, jobs))
    series_status, series_answer = results.pop(10)
    statuses = {st for st, _ in results}
    assert statuses <= {201, 409}, [(st, b) for st, b in results if st not in (201, 409)][:3]
    assert series_status in (201, 409), series_answer
    won = [b for st, b in results if st == 201]
    assert overlapping_confirmed_pairs(stack.pg) == []
    if series_status == 201:
        occ = series_answer["occurrences"]
        if on_conflict == "fail":
            assert len(occ) == 52
        else:
            assert len(occ) + len(series_answer["skipped"]) == 52
        for o in occ:
            for b in won:
                assert not overlaps(o, b), (o, b)
    else:
        assert series_answer["code"] == "conflict"
        assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE room_id = %s "
                                      "AND series_id IS NOT NULL", room["id"]) == [(0,)]
    booked_rows = confirmed_of_room(stack, room["id"])
    assert len(booked_rows) == len(won) + (len(series_answer.get("occurrences", []))
                                           if series_status == 201 else 0)
    print(f"race ({on_conflict}): series {series_status}, {len(won)} single(s) booked")
