"""Check-in and the release of no-shows (docs/api.md#check-in): the window at its bounds, an
attendee's check-in, idempotence, the releaser at the service's clock (TEST_CLOCK and
PUT /internal/test-clock, no sleeps of minutes), the slot free at once, one event per release
with two replicas releasing at the same time, and a restart in the middle of the work."""
import datetime
import re
import signal
import threading
import time

import psycopg2
import pytest
import requests

from harness import (
    assert_error,
    book,
    booked,
    create_room,
    res_db_query,
    utc_text,
    wait_known_room,
    wait_until,
)

WINDOW_MIN, RELEASE_MIN = 15, 10
CHECK_IN = {"check_in_required": True, "check_in_window_minutes": WINDOW_MIN,
            "release_after_minutes": RELEASE_MIN}


@pytest.fixture(scope="module")
def check_in_room(stack, room_url, res_url, admin_headers):
    """check_in_room(policies=CHECK_IN): a fresh room whose rules reservation-service holds."""
    def make(policies=CHECK_IN):
        room = create_room(room_url, admin_headers,
                           **({"policies": policies} if policies else {}))
        wait_known_room(res_url, admin_headers, room["id"])
        if policies:
            wait_until(lambda: res_db_query(stack.pg, "SELECT policies_known FROM rooms "
                                            "WHERE id = %s", room["id"]) == [(True,)],
                       timeout=30, what=f"room {room['id']}'s policies copied")
        return room["id"]
    return make


def clocked_service(stack, tag):
    return stack.reservation_service(tag=tag, TEST_CLOCK="true", RELEASE_INTERVAL_MS="200")


@pytest.fixture(scope="module")
def clocked(stack, root):
    svc = clocked_service(stack, "reservation-check-in").start()
    try:
        yield svc
    finally:
        svc.stop()


def set_clock(svc, root, at):
    """Moves svc's clock so that its now is at (a Unix second) at this moment."""
    r = requests.put(f"{svc.url}/internal/test-clock",
                     json={"offset_s": int(at) - int(time.time())}, headers=root, timeout=10)
    assert r.status_code == 200, r.text


def slot(hours_ahead=3, minutes=60):
    """A future span on whole minutes: (start as a Unix second, start text, end text)."""
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    start = now + datetime.timedelta(hours=hours_ahead)
    return (int(start.timestamp()), utc_text(start),
            utc_text(start + datetime.timedelta(minutes=minutes)))


def check_in(url, headers, rid):
    return requests.post(f"{url}/reservations/{rid}/check-in", headers=headers, timeout=10)


def events(stack, rid, event_type):
    return [p for (p,) in res_db_query(stack.pg, "SELECT payload FROM outbox WHERE key = %s "
                                       "AND payload->>'event_type' = %s ORDER BY id",
                                       str(rid), event_type)]


def released_total(svc):
    text = requests.get(f"{svc.url}/metrics", timeout=10).text
    m = re.search(r"^reservations_released_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_window_bounds_and_idempotence(stack, check_in_room, clocked, res_url, alice, root):
    rid = check_in_room()
    start_s, start, end = slot()
    res = booked(res_url, alice, rid, start, end)
    opens, closes = start_s - WINDOW_MIN * 60, start_s + RELEASE_MIN * 60
    assert res["check_in_from"] == utc_text(datetime.datetime.fromtimestamp(opens, datetime.UTC))
    assert res["release_at"] == utc_text(datetime.datetime.fromtimestamp(closes, datetime.UTC))
    assert res["checked_in_at"] is None
    try:
        set_clock(clocked, root, opens - 5)
        r = check_in(clocked.url, alice, res["id"])
        assert_error(r, 409, "conflict")
        d = r.json()["details"]
        assert "check_in" in d and d["check_in_from"] == res["check_in_from"] \
            and d["release_at"] == res["release_at"], r.text
        set_clock(clocked, root, opens)
        r = check_in(clocked.url, alice, res["id"])
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["checked_in_at"] is not None and first["status"] == "confirmed"
        at = datetime.datetime.fromisoformat(first["checked_in_at"]).timestamp()
        assert opens <= at <= opens + 2
        # Again, even after the window: the same answer.
        set_clock(clocked, root, closes + 60)
        r = check_in(clocked.url, alice, res["id"])
        assert r.status_code == 200, r.text
        assert r.json()["checked_in_at"] == first["checked_in_at"]
        assert r.json()["version"] == first["version"]
        assert len(events(stack, res["id"], "reservation_checked_in")) == 1
        # Checked in: the releaser leaves it, though its release time has passed.
        time.sleep(1.0)
        assert requests.get(f"{res_url}/reservations/{res['id']}", headers=alice,
                            timeout=10).json()["status"] == "confirmed"
        assert events(stack, res["id"], "reservation_released") == []
    finally:
        set_clock(clocked, root, time.time())


def test_who_may_check_in(stack, check_in_room, clocked, res_url, users, employee, root):
    alice, bob = users["alice"][0], users["bob"][0]
    bob_email = "res-check-in-bob@example.com"
    rid = check_in_room()
    start_s, start, end = slot(hours_ahead=4)
    res = booked(res_url, alice, rid, start, end, attendees=[bob_email])
    outsider = {"Authorization": f"Bearer {employee['access_token']}"}
    try:
        set_clock(clocked, root, start_s)
        assert_error(check_in(clocked.url, outsider, res["id"]), 403, "forbidden")
        assert_error(check_in(clocked.url, alice, 999999999), 404, "not_found")
        r = check_in(clocked.url, bob, res["id"])
        assert r.status_code == 200, r.text
        assert r.json()["checked_in_at"] is not None
    finally:
        set_clock(clocked, root, time.time())
    # A room without check-in: 422 naming check_in.
    plain = check_in_room(policies=None)
    other = booked(res_url, alice, plain, start, end)
    assert other["check_in_from"] is None and other["release_at"] is None
    r = check_in(clocked.url, alice, other["id"])
    assert_error(r, 422, "validation_failed")
    assert "check_in" in r.json()["details"]


def test_release_frees_the_slot_at_once(stack, check_in_room, clocked, res_url, alice, bob,
                                        root):
    rid = check_in_room()
    start_s, start, end = slot(hours_ahead=5)
    res = booked(res_url, alice, rid, start, end)
    before = released_total(clocked)
    try:
        set_clock(clocked, root, start_s + RELEASE_MIN * 60 - 30)
        time.sleep(1.0)
        assert requests.get(f"{res_url}/reservations/{res['id']}", headers=alice,
                            timeout=10).json()["status"] == "confirmed"
        set_clock(clocked, root, start_s + RELEASE_MIN * 60)
        wait_until(lambda: requests.get(f"{res_url}/reservations/{res['id']}", headers=alice,
                                        timeout=10).json()["status"] == "cancelled",
                   timeout=10, what="the no-show released")
        got = requests.get(f"{res_url}/reservations/{res['id']}", headers=alice,
                           timeout=10).json()
        assert got["cancel_reason"] == "no_show"
        [ev] = events(stack, res["id"], "reservation_released")
        assert ev["reservation"]["status"] == "cancelled"
        assert ev["reservation"]["cancel_reason"] == "no_show"
        assert released_total(clocked) >= before + 1
        # The rest of the slot is bookable at once (at the moved clock).
        later = datetime.datetime.fromtimestamp(start_s + 20 * 60, datetime.UTC)
        booked(clocked.url, bob, rid, utc_text(later), end)
    finally:
        set_clock(clocked, root, time.time())


def test_two_replicas_release_each_once(stack, check_in_room, res_url, users, root):
    """More due rows than a batch (200), some held by another transaction: both replicas work
    batch after batch beside the held rows (without SKIP LOCKED they would wait on them, and
    nothing past them would be released), and every row is released once, with one event."""
    rid = check_in_room()
    uid = users["alice"][1]
    base = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0) \
        + datetime.timedelta(hours=50)
    # 450 one-minute rows (release_at = their end, L4), written directly: fast and many.
    ids = [i for (i,) in res_db_query(
        stack.pg, "INSERT INTO reservations (room_id, user_id, start_time, end_time) "
        "SELECT %s, %s, %s::timestamptz + n * interval '1 minute', "
        "%s::timestamptz + (n + 1) * interval '1 minute' FROM generate_series(0, 449) n "
        "RETURNING id", rid, uid, utc_text(base), utc_text(base))]
    assert len(ids) == 450
    held = ids[:60]  # the oldest: the first each replica's first batch meets
    due = int((base + datetime.timedelta(minutes=451)).timestamp())
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    a = clocked_service(stack, "reservation-release-a").start()
    b = clocked_service(stack, "reservation-release-b").start()
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM reservations WHERE id = ANY(%s) FOR UPDATE", (held,))
        threads = [threading.Thread(target=set_clock, args=(s, root, due)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_until(lambda: res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE "
                                        "id = ANY(%s) AND cancel_reason = 'no_show'",
                                        ids[60:]) == [(390,)], timeout=30,
                   what="all but the held rows released")
        assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE id = ANY(%s) "
                            "AND status = 'confirmed'", held) == [(60,)]
        conn.rollback()
        wait_until(lambda: res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE "
                                        "id = ANY(%s) AND cancel_reason = 'no_show'",
                                        ids) == [(450,)], timeout=30, what="all released")
        assert res_db_query(stack.pg, "SELECT key, count(*) FROM outbox WHERE key = ANY(%s) "
                            "AND payload->>'event_type' = 'reservation_released' GROUP BY key "
                            "HAVING count(*) <> 1", [str(i) for i in ids]) == []
        assert res_db_query(stack.pg, "SELECT count(*) FROM outbox WHERE key = ANY(%s) AND "
                            "payload->>'event_type' = 'reservation_released'",
                            [str(i) for i in ids]) == [(450,)]
        # Other tests' due bookings of check-in rooms count too.
        assert released_total(a) + released_total(b) >= 450
    finally:
        conn.close()
        a.stop()
        b.stop()


def test_restart_in_the_middle_loses_nothing(stack, check_in_room, res_url, alice, root):
    rid = check_in_room()
    base = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0) \
        + datetime.timedelta(hours=30)
    ids = []
    for i in range(10):
        s = base + datetime.timedelta(minutes=30 * i)
        ids.append(booked(res_url, alice, rid, utc_text(s),
                          utc_text(s + datetime.timedelta(minutes=30)))["id"])
    due = int((base + datetime.timedelta(minutes=30 * 10 + RELEASE_MIN)).timestamp())
    svc = clocked_service(stack, "reservation-release-restart").start()
    # Half of them held by another transaction: the releaser skips them (SKIP LOCKED).
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM reservations WHERE id = ANY(%s) FOR UPDATE", (ids[:5],))
        set_clock(svc, root, due)
        wait_until(lambda: res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE "
                                        "id = ANY(%s) AND cancel_reason = 'no_show'",
                                        ids[5:]) == [(5,)], timeout=20, what="the free half")
        svc.stop(sig=signal.SIGKILL)
        conn.rollback()
        assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE id = ANY(%s) "
                            "AND status = 'confirmed'", ids[:5]) == [(5,)]
        svc.start()
        set_clock(svc, root, due)
        wait_until(lambda: res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE "
                                        "id = ANY(%s) AND cancel_reason = 'no_show'",
                                        ids) == [(10,)], timeout=20, what="all released")
        for i in ids:
            assert len(events(stack, i, "reservation_released")) == 1, i
    finally:
        conn.close()
        svc.stop()



# ---- review 15a: series, moves, the end of the meeting, pending bookings ----

def get(url, headers, rid):
    r = requests.get(f"{url}/reservations/{rid}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def at(s):
    return utc_text(datetime.datetime.fromtimestamp(s, datetime.UTC))


def test_a_series_occurrence_is_released_alone(stack, check_in_room, clocked, res_url, alice,
                                               root):
    rid = check_in_room()
    start_s, start, end = slot(hours_ahead=7, minutes=30)
    r = requests.post(f"{res_url}/reservations", headers=alice, timeout=10,
                      json={"room_id": rid, "start_time": start, "end_time": end,
                            "recurrence": "FREQ=DAILY;COUNT=3"})
    assert r.status_code == 201, r.text
    series = r.json()
    occ = [o["id"] for o in series["occurrences"]]
    assert len(occ) == 3
    try:
        set_clock(clocked, root, start_s + RELEASE_MIN * 60)
        wait_until(lambda: get(res_url, alice, occ[0])["status"] == "cancelled", timeout=10,
                   what="the first occurrence released")
        assert get(res_url, alice, occ[0])["cancel_reason"] == "no_show"
        assert [get(res_url, alice, o)["status"] for o in occ[1:]] == ["confirmed"] * 2
        got = requests.get(f"{res_url}/reservations/series/{series['id']}", headers=alice,
                           timeout=10)
        assert got.status_code == 200 and got.json()["status"] == "active", got.text
        assert len(events(stack, occ[0], "reservation_released")) == 1
        assert events(stack, f"series-{series['id']}", "reservation_series_cancelled") == []
    finally:
        set_clock(clocked, root, time.time())


def test_a_move_gets_a_new_window_and_is_checked_in_afresh(check_in_room, clocked, res_url,
                                                            alice, root):
    rid = check_in_room()
    start_s, start, end = slot(hours_ahead=9)
    res = booked(res_url, alice, rid, start, end)
    try:
        set_clock(clocked, root, start_s)
        r = check_in(clocked.url, alice, res["id"])
        assert r.status_code == 200 and r.json()["checked_in_at"], r.text
    finally:
        set_clock(clocked, root, time.time())
    later = start_s + 3600
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice, timeout=10,
                     json={"start_time": at(later), "end_time": at(later + 3600)})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["checked_in_at"] is None
    assert moved["check_in_from"] == at(later - WINDOW_MIN * 60)
    assert moved["release_at"] == at(later + RELEASE_MIN * 60)
    # Moved to a room without check-in: no window.
    plain = check_in_room(policies=None)
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice, timeout=10,
                     json={"room_id": plain})
    assert r.status_code == 200, r.text
    assert (r.json()["check_in_from"], r.json()["release_at"]) == (None, None)


def test_the_release_comes_by_the_end_at_the_latest(check_in_room, res_url, alice):
    """Review 15a L4: a 10-minute meeting in a room releasing 30 minutes after the start."""
    rid = check_in_room({"check_in_required": True, "check_in_window_minutes": 5,
                         "release_after_minutes": 30})
    start_s, start, end = slot(hours_ahead=10, minutes=10)
    res = booked(res_url, alice, rid, start, end)
    assert res["release_at"] == end
    assert res["check_in_from"] == at(start_s - 300)
    # Lengthened: the release as the room says again.
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice, timeout=10,
                     json={"end_time": at(start_s + 3600)})
    assert r.status_code == 200, r.text
    assert r.json()["release_at"] == at(start_s + 1800)


APPROVAL_CHECK_IN = dict(CHECK_IN, requires_approval=True)


@pytest.fixture(scope="module")
def slow_clocked(stack):
    """A TEST_CLOCK service whose releaser runs at start and then hourly: what it answers is
    not raced by a release."""
    svc = stack.reservation_service(tag="reservation-slow-release", TEST_CLOCK="true",
                                    RELEASE_INTERVAL_MS="3600000").start()
    try:
        yield svc
    finally:
        svc.stop()


def test_approval_before_the_start_keeps_check_in_open(check_in_room, slow_clocked, res_url,
                                                       alice, root):
    """Review 15a M2: approved late (after the window opened), the booking can still be checked
    in and is not released at once; after its start it can no longer be approved."""
    rid = check_in_room(APPROVAL_CHECK_IN)
    start_s, start, end = slot(hours_ahead=11)
    pending = booked(res_url, alice, rid, start, end)
    assert pending["status"] == "pending"
    late_s, _, late_end = slot(hours_ahead=13)
    late = booked(res_url, alice, rid, at(late_s), late_end)
    url = slow_clocked.url
    try:
        set_clock(slow_clocked, root, start_s - 300)
        r = requests.post(f"{url}/reservations/{pending['id']}/approve", headers=root,
                          timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "confirmed"
        assert r.json()["release_at"] == pending["release_at"]
        set_clock(slow_clocked, root, start_s + 60)
        r = check_in(url, alice, pending["id"])
        assert r.status_code == 200 and r.json()["checked_in_at"], r.text
        # Past its start: refused, whatever its window says.
        set_clock(slow_clocked, root, late_s + 1)
        r = requests.post(f"{url}/reservations/{late['id']}/approve", headers=root, timeout=10)
        assert_error(r, 409, "conflict")
        assert "start_time" in r.json()["details"], r.text
        assert get(res_url, alice, late["id"])["status"] == "pending"
        # A rejection is still possible.
        r = requests.post(f"{url}/reservations/{late['id']}/reject", headers=root, timeout=10)
        assert r.status_code == 200 and r.json()["cancel_reason"] == "rejected", r.text
    finally:
        set_clock(slow_clocked, root, time.time())


def test_a_pending_booking_stops_holding_the_slot_at_its_start(stack, check_in_room, clocked,
                                                              res_url, alice, bob, root):
    rid = check_in_room({"requires_approval": True})
    start_s, start, end = slot(hours_ahead=15)
    pending = booked(res_url, alice, rid, start, end)
    later_s, later, later_end = slot(hours_ahead=17)
    waiting = booked(res_url, alice, rid, later, later_end)
    assert_error(book(res_url, bob, rid, start, end), 409, "conflict")
    try:
        set_clock(clocked, root, start_s - 60)
        time.sleep(1.0)
        assert get(res_url, alice, pending["id"])["status"] == "pending"
        set_clock(clocked, root, start_s)
        wait_until(lambda: get(res_url, alice, pending["id"])["status"] == "cancelled",
                   timeout=10, what="the pending booking cancelled at its start")
        got = get(res_url, alice, pending["id"])
        assert got["cancel_reason"] == "not_approved"
        [ev] = events(stack, pending["id"], "reservation_cancelled")
        assert ev["reservation"]["cancel_reason"] == "not_approved"
        assert events(stack, pending["id"], "reservation_released") == []
        assert get(res_url, alice, waiting["id"])["status"] == "pending"
        # The rest of the slot is bookable at once (at the moved clock).
        rest = at(start_s + 600)
        assert booked(clocked.url, bob, rid, rest, end)["status"] == "pending"
    finally:
        set_clock(clocked, root, time.time())
