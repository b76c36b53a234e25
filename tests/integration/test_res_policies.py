"""Room policies enforced by reservation-service (docs/api.md#room-policies): every rule at its
boundary as a client sees it (422 validation_failed naming the field, details.policy naming the
rule), opening hours in the room's zone across a DST change, the buffer guaranteed by the
database under a 200-way race, a quota of one under concurrency, restricted rooms, approval,
an admin's override (also of a series: its events name the rules), the invitations of a pending
booking (none until approved; Mailpit), and the business clock moved through the test
endpoint."""
import datetime
import email
import email.policy
import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
import requests

from harness import (
    Mailpit,
    assert_error,
    bearer,
    book,
    booked,
    create_room,
    next_dst_days,
    operator_token,
    res_db_query,
    shift,
    utc_text,
    wait_known_room,
    wait_until,
)

ZONE = "Europe/Berlin"
OPEN_ALL_WEEK = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                    "sun")}


@pytest.fixture(scope="module")
def policy_room(stack, room_url, res_url, admin_headers):
    """policy_room(policies, **fields): a fresh room in ZONE with those rules, once
    reservation-service's copy holds them."""
    def make(policies, **fields):
        fields.setdefault("time_zone", ZONE)
        room = create_room(room_url, admin_headers, policies=policies, **fields)
        wait_known_room(res_url, admin_headers, room["id"])
        wait_until(lambda: res_db_query(stack.pg, "SELECT policies_known FROM rooms "
                                        "WHERE id = %s", room["id"]) == [(True,)],
                   timeout=30, what=f"room {room['id']}'s policies copied")
        return room["id"]
    return make


def next_weekday(weekday, days_ahead=7):
    """The date (ISO) of the first weekday (0 = Monday) at least days_ahead days from today."""
    d = datetime.date.today() + datetime.timedelta(days=days_ahead)
    while d.weekday() != weekday:
        d += datetime.timedelta(days=1)
    return d


def local(d, hhmm):
    """A wall-clock time of the room's zone as the API takes it (no offset)."""
    return f"{d.isoformat()}T{hhmm}:00"


def instant(d, hhmm, zone=ZONE):
    """The UTC text of a wall-clock time in zone (the oracle: zoneinfo)."""
    h, m = map(int, hhmm.split(":"))
    return utc_text(datetime.datetime(d.year, d.month, d.day, h, m, tzinfo=ZoneInfo(zone)))


def refused(r, policy, field):
    """The 422 of a rule: validation_failed, details naming the field and the rule."""
    assert_error(r, 422, "validation_failed")
    details = r.json()["details"]
    assert details["policy"] == policy, r.text
    assert field in details, r.text
    return details


# ---- opening hours ----

def test_opening_hours_at_their_bounds(policy_room, res_url, alice):
    hours = dict(OPEN_ALL_WEEK, sat=[], tue=[["08:00", "12:00"], ["13:00", "18:00"]])
    rid = policy_room({"opening_hours": hours})
    mon, tue, sat = next_weekday(0), next_weekday(1), next_weekday(5)
    assert booked(res_url, alice, rid, local(mon, "08:00"), local(mon, "09:00"))["start_time"] \
        == instant(mon, "08:00")
    booked(res_url, alice, rid, local(mon, "17:00"), local(mon, "18:00"))
    d = refused(book(res_url, alice, rid, local(mon, "07:59"), local(mon, "08:30")),
                "opening_hours", "start_time")
    assert "mon: 08:00-18:00" in d["start_time"] and ZONE in d["start_time"]
    refused(book(res_url, alice, rid, local(mon, "17:30"), local(mon, "18:01")),
            "opening_hours", "start_time")
    # Inside ONE interval: not across the lunch break, though both ends are open.
    booked(res_url, alice, rid, local(tue, "11:00"), local(tue, "12:00"))
    refused(book(res_url, alice, rid, local(tue, "11:30"), local(tue, "13:30")),
            "opening_hours", "start_time")
    d = refused(book(res_url, alice, rid, local(sat, "10:00"), local(sat, "11:00")),
                "opening_hours", "start_time")
    assert "sat: closed" in d["start_time"]
    # A 409's alternatives lie within the hours: 08:00-09:00 is taken, 09:00-10:00 is next.
    r = book(res_url, alice, rid, local(mon, "08:00"), local(mon, "09:00"))
    assert_error(r, 409, "conflict")
    assert r.json()["details"]["alternatives"]["times"] == [
        {"start_time": instant(mon, "09:00"), "end_time": instant(mon, "10:00")},
        {"start_time": instant(mon, "16:00"), "end_time": instant(mon, "17:00")}]


def test_opening_hours_across_midnight(policy_room, res_url, alice):
    rid = policy_room({"opening_hours": {"mon": [["20:00", "24:00"]],
                                         "tue": [["00:00", "06:00"]], "wed": []}})
    mon = next_weekday(0)
    tue = mon + datetime.timedelta(days=1)
    booked(res_url, alice, rid, local(mon, "22:00"), local(tue, "02:00"))
    refused(book(res_url, alice, rid, local(tue, "05:00"), local(tue + datetime.timedelta(days=1),
                                                                 "01:00")),
            "opening_hours", "start_time")


@pytest.mark.parametrize("which", [0, 1])
def test_opening_hours_across_a_dst_change(policy_room, res_url, alice, which):
    """08:00-18:00 local on the days of 23 and 25 hours: the instants move, the wall clock
    does not."""
    rid = policy_room({"opening_hours": OPEN_ALL_WEEK})
    date, hours = next_dst_days(ZONE)[which]
    d = datetime.date.fromisoformat(date)
    before = d - datetime.timedelta(days=1)
    for day in (before, d):
        r = booked(res_url, alice, rid, local(day, "08:00"), local(day, "09:00"))
        assert r["start_time"] == instant(day, "08:00")
        r = booked(res_url, alice, rid, local(day, "17:00"), local(day, "18:00"))
        assert r["end_time"] == instant(day, "18:00")
        refused(book(res_url, alice, rid, local(day, "07:30"), local(day, "08:30")),
                "opening_hours", "start_time")
    # Written in UTC, the time of day that was 08:00 the day before is an hour off on the DST
    # day: 09:00 local after the spring change (inside), 07:00 after the autumn one (outside).
    at = instant(before, "08:00").replace(before.isoformat(), d.isoformat())
    r = book(res_url, alice, rid, at, shift(at, minutes=30))
    if hours == 23:
        assert r.status_code == 201, r.text
    else:
        refused(r, "opening_hours", "start_time")


# ---- durations, advance ----

def test_min_and_max_duration_replace_the_service_bounds(policy_room, res_url, alice):
    rid = policy_room({"min_duration_minutes": 30, "max_duration_minutes": 60})
    d = next_weekday(2)
    refused(book(res_url, alice, rid, local(d, "09:00"), local(d, "09:29")),
            "min_duration_minutes", "end_time")
    booked(res_url, alice, rid, local(d, "09:00"), local(d, "09:30"))
    booked(res_url, alice, rid, local(d, "10:00"), local(d, "11:00"))
    d2 = refused(book(res_url, alice, rid, local(d, "12:00"), local(d, "13:01")),
                 "max_duration_minutes", "end_time")
    assert "60 minutes" in d2["end_time"]


def test_room_max_duration_above_the_service_default(stack, policy_room, res_url, alice):
    """MAX_DURATION_MINUTES is 1440 here; a room may allow less, never less than its own min."""
    rid = policy_room({"max_duration_minutes": 1440, "min_duration_minutes": 1})
    d = next_weekday(3)
    # 1 minute is below the service's MIN_DURATION_MINUTES (5): the room's own bound applies.
    booked(res_url, alice, rid, local(d, "09:00"), local(d, "09:01"))


def test_max_advance_days(policy_room, res_url, alice):
    rid = policy_room({"max_advance_days": 10})
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    inside = now + datetime.timedelta(days=10, minutes=-5)
    outside = now + datetime.timedelta(days=10, minutes=5)
    booked(res_url, alice, rid, utc_text(inside), utc_text(inside + datetime.timedelta(hours=1)))
    d = refused(book(res_url, alice, rid, utc_text(outside),
                     utc_text(outside + datetime.timedelta(hours=1))),
                "max_advance_days", "start_time")
    assert "10 days" in d["start_time"]


# ---- quotas ----

def test_quota_per_day_and_per_iso_week(policy_room, res_url, alice, bob):
    rid = policy_room({"max_bookings_per_user_per_day": 1, "max_bookings_per_user_per_week": 2})
    mon = next_weekday(0)
    tue, wed = mon + datetime.timedelta(days=1), mon + datetime.timedelta(days=2)
    first = booked(res_url, alice, rid, local(mon, "09:00"), local(mon, "10:00"))
    refused(book(res_url, alice, rid, local(mon, "11:00"), local(mon, "12:00")),
            "max_bookings_per_user_per_day", "start_time")
    booked(res_url, bob, rid, local(mon, "11:00"), local(mon, "12:00"))  # per user
    booked(res_url, alice, rid, local(tue, "09:00"), local(tue, "10:00"))
    refused(book(res_url, alice, rid, local(wed, "09:00"), local(wed, "10:00")),
            "max_bookings_per_user_per_week", "start_time")
    # Sunday belongs to the same ISO week, the next Monday to the next one.
    sun, nxt = mon + datetime.timedelta(days=6), mon + datetime.timedelta(days=7)
    refused(book(res_url, alice, rid, local(sun, "09:00"), local(sun, "10:00")),
            "max_bookings_per_user_per_week", "start_time")
    booked(res_url, alice, rid, local(nxt, "09:00"), local(nxt, "10:00"))
    # A change does not count itself: the Monday booking moves within its day.
    r = requests.put(f"{res_url}/reservations/{first['id']}", headers=alice, timeout=10,
                     json={"start_time": local(mon, "13:00"), "end_time": local(mon, "14:00")})
    assert r.status_code == 200, r.text
    # A cancelled one no longer counts.
    assert requests.delete(f"{res_url}/reservations/{first['id']}", headers=alice,
                           timeout=10).status_code == 204
    booked(res_url, alice, rid, local(mon, "15:00"), local(mon, "16:00"))


def test_quota_of_one_under_concurrency(stack, policy_room, res_url):
    """Two bookings of one user at once, different slots: exactly one passes, every round."""
    token, _ = operator_token(stack.user, f"quota-{uuid.uuid4().hex[:8]}@example.com")
    who = bearer(token)
    rid = policy_room({"max_bookings_per_user_per_day": 1})
    for k in range(6):
        d = next_weekday(k % 7, days_ahead=14 + 7 * (k // 7))
        barrier = threading.Barrier(2)

        def go(hhmm, d=d, barrier=barrier):
            barrier.wait()
            h = int(hhmm[:2])
            return book(res_url, who, rid, local(d, hhmm), local(d, f"{h + 1:02d}:00"))
        with ThreadPoolExecutor(2) as ex:
            answers = list(ex.map(go, ["09:00", "14:00"]))
        codes = sorted(r.status_code for r in answers)
        assert codes == [201, 422], [r.text for r in answers]
        loser = next(r for r in answers if r.status_code == 422)
        assert loser.json()["details"]["policy"] == "max_bookings_per_user_per_day"


# ---- the buffer ----

def test_buffer_at_its_bound(stack, policy_room, res_url, alice, bob):
    rid = policy_room({"buffer_minutes": 10})
    d = next_weekday(4)
    booked(res_url, alice, rid, local(d, "10:00"), local(d, "11:00"))
    r = book(res_url, bob, rid, local(d, "11:05"), local(d, "12:00"))
    assert_error(r, 409, "conflict")
    assert r.json()["details"]["conflicts"] == [
        {"start_time": instant(d, "10:00"), "end_time": instant(d, "11:00")}]
    # The alternatives offered keep the buffers too: the nearest starts ten minutes after 11:00,
    # the next ends ten minutes before 10:00.
    times = r.json()["details"]["alternatives"]["times"]
    assert times[:2] == [{"start_time": instant(d, "11:10"), "end_time": instant(d, "12:05")},
                         {"start_time": instant(d, "08:55"), "end_time": instant(d, "09:50")}]
    for t in times:
        assert t["start_time"] >= instant(d, "11:10") or t["end_time"] <= instant(d, "09:50"), t
    booked(res_url, bob, rid, local(d, "11:10"), local(d, "12:00"))
    # Before a booking: the new one's own buffer must end by its start.
    assert book(res_url, bob, rid, local(d, "08:00"), local(d, "09:55")).status_code == 409
    booked(res_url, bob, rid, local(d, "08:00"), local(d, "09:50"))
    # The database itself refuses it (an INSERT that no booking function checked).
    import psycopg2
    with pytest.raises(psycopg2.errors.ExclusionViolation):
        res_db_query(stack.pg, "INSERT INTO reservations (room_id, user_id, start_time, "
                     "end_time) VALUES (%s, 1, %s::timestamptz, %s::timestamptz)", rid,
                     instant(d, "12:05"), instant(d, "12:30"))


def test_buffer_under_a_200_way_race(stack, policy_room, res_url):
    """200 bookings of 30 minutes starting every 5 minutes, all at once: whatever wins, no two
    active reservations of the room come within 10 minutes of each other."""
    tag = uuid.uuid4().hex[:8]
    people = [bearer(operator_token(stack.user, f"buf{i}-{tag}@example.com")[0])
              for i in range(10)]
    rid = policy_room({"buffer_minutes": 10})
    base = datetime.datetime.combine(next_weekday(0, days_ahead=21), datetime.time(6, 0),
                                     tzinfo=datetime.UTC)
    slots = [(base + datetime.timedelta(minutes=5 * i),
              base + datetime.timedelta(minutes=5 * i + 30)) for i in range(200)]
    barrier = threading.Barrier(40)

    def go(i):
        if i < 40:
            barrier.wait()
        s, e = slots[i]
        return book(res_url, people[i % 10], rid, utc_text(s), utc_text(e),
                    purpose=f"race {i}").status_code
    with ThreadPoolExecutor(40) as ex:
        codes = list(ex.map(go, range(200)))
    assert set(codes) <= {201, 409}, codes
    assert codes.count(201) >= 1
    rows = res_db_query(stack.pg, "SELECT start_time, end_time FROM reservations "
                        "WHERE room_id = %s AND status IN ('confirmed', 'pending') "
                        "ORDER BY start_time", rid)
    assert len(rows) == codes.count(201)
    for (_, e1), (s2, _) in zip(rows, rows[1:], strict=False):
        assert s2 - e1 >= datetime.timedelta(minutes=10), (e1, s2)


# ---- who may book ----

def test_allowed_roles_and_users(stack, policy_room, res_url, users):
    (alice, alice_id), (bob, _), (root, _) = users["alice"], users["bob"], users["root"]
    rid = policy_room({"allowed_roles": ["admin"]})
    d = next_weekday(1)
    d1 = refused(book(res_url, alice, rid, local(d, "09:00"), local(d, "10:00")),
                 "allowed_roles", "room_id")
    assert "admin" in d1["room_id"]
    booked(res_url, root, rid, local(d, "09:00"), local(d, "10:00"))
    rid = policy_room({"allowed_users": [alice_id]})
    booked(res_url, alice, rid, local(d, "09:00"), local(d, "10:00"))
    refused(book(res_url, bob, rid, local(d, "11:00"), local(d, "12:00")),
            "allowed_users", "room_id")
    booked(res_url, root, rid, local(d, "11:00"), local(d, "12:00"))  # admins manage rooms
    # Either one admits.
    rid = policy_room({"allowed_users": [alice_id], "allowed_roles": ["admin"]})
    booked(res_url, alice, rid, local(d, "09:00"), local(d, "10:00"))
    refused(book(res_url, bob, rid, local(d, "11:00"), local(d, "12:00")),
            "allowed_roles", "room_id")


# ---- approval ----

def outbox_events(stack, rid):
    return [json.loads(p) if isinstance(p, str) else p for (p,) in res_db_query(
        stack.pg, "SELECT payload FROM outbox WHERE key = %s ORDER BY id", str(rid))]


def test_approval_flow(stack, policy_room, res_url, users):
    (alice, _), (bob, _), (root, _) = users["alice"], users["bob"], users["root"]
    rid = policy_room({"requires_approval": True})
    d = next_weekday(2)
    pending = booked(res_url, alice, rid, local(d, "09:00"), local(d, "10:00"))
    assert pending["status"] == "pending"
    # It holds the slot.
    assert_error(book(res_url, bob, rid, local(d, "09:30"), local(d, "10:30")), 409, "conflict")
    day = requests.get(f"{res_url}/availability", params={"room_id": rid, "date": d.isoformat()},
                       headers=bob, timeout=10).json()
    assert {"start_time": instant(d, "09:00"), "end_time": instant(d, "10:00")} in day["busy"]
    # Listed as pending (the default list shows active ones; ?status=pending only those).
    mine = requests.get(f"{res_url}/reservations", params={"room_id": rid}, headers=alice,
                        timeout=10).json()
    assert [(r["id"], r["status"]) for r in mine] == [(pending["id"], "pending")]
    only = requests.get(f"{res_url}/reservations", params={"status": "pending"}, headers=alice,
                        timeout=10).json()
    assert [r["id"] for r in only] == [pending["id"]]
    # Only admins decide.
    r = requests.post(f"{res_url}/reservations/{pending['id']}/approve", headers=alice,
                      timeout=10)
    assert_error(r, 403, "forbidden")
    r = requests.post(f"{res_url}/reservations/{pending['id']}/approve", headers=root,
                      timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["version"] == 2
    assert r.headers["ETag"] == '"2"'
    r = requests.post(f"{res_url}/reservations/{pending['id']}/approve", headers=root,
                      timeout=10)
    assert_error(r, 409, "conflict")
    assert r.json()["details"] == {"status": "confirmed"}
    assert_error(requests.post(f"{res_url}/reservations/99999999/reject", headers=root,
                               timeout=10), 404, "not_found")
    # A rejection frees the slot.
    other = booked(res_url, bob, rid, local(d, "11:00"), local(d, "12:00"))
    r = requests.post(f"{res_url}/reservations/{other['id']}/reject", headers=root, timeout=10,
                      json={"reason": "the room is needed for an audit"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"]) == ("cancelled", "rejected")
    booked(res_url, alice, rid, local(d, "11:00"), local(d, "12:00"))
    r = requests.post(f"{res_url}/reservations/{pending['id']}/reject", headers=root, timeout=10,
                      json={"reason": "x" * 201})
    assert_error(r, 422, "validation_failed")
    assert "reason" in r.json()["details"]
    # The events.
    types = [(e["event_type"], e["reservation"]["status"])
             for e in outbox_events(stack, other["id"])]
    assert types == [("reservation_created", "pending"), ("reservation_rejected", "cancelled")]
    assert outbox_events(stack, other["id"])[1]["reason"] == "the room is needed for an audit"
    types = [e["event_type"] for e in outbox_events(stack, pending["id"])]
    assert types == ["reservation_created", "reservation_approved"]
    # An admin's own booking needs no approval; the owner may cancel a pending one.
    assert booked(res_url, root, rid, local(d, "14:00"), local(d, "15:00"))["status"] == \
        "confirmed"
    p2 = booked(res_url, alice, rid, local(d, "16:00"), local(d, "17:00"))
    assert requests.delete(f"{res_url}/reservations/{p2['id']}", headers=alice,
                           timeout=10).status_code == 204


# ---- invitations of pending bookings ----

def mails(mailpit, addr, count, settle=1.5):
    """(subject, METHOD, UID, text) of the messages to addr, oldest first, once there are count
    and the queue had time to send anything more."""
    mailpit.wait_messages(count, query=f'to:"{addr}"', timeout=45)
    time.sleep(settle)
    out = []
    for m in Mailpit.oldest_first(mailpit.messages(f'to:"{addr}"')):
        msg = email.message_from_bytes(mailpit.raw(m["ID"]), policy=email.policy.default)
        cal = next(p.get_content() for p in msg.walk() if p.get_content_type() == "text/calendar")
        out.append((msg["Subject"], re.search(r"^METHOD:(\w+)", cal, re.M).group(1),
                    re.search(r"^UID:(\S+)", cal, re.M).group(1),
                    mailpit.message(m["ID"])["Text"]))
    return out


def test_a_pending_booking_mails_no_one_until_approved(stack, mailpit, policy_room, res_url,
                                                        root):
    tag = uuid.uuid4().hex[:8]
    org = f"pending-org-{tag}@example.com"
    organizer = bearer(operator_token(stack.user, org)[0])
    g1, g2, g3 = (f"pending-{i}-{tag}@example.org" for i in (1, 2, 3))
    rid = policy_room({"requires_approval": True})
    d = next_weekday(1)
    p1 = booked(res_url, organizer, rid, local(d, "09:00"), local(d, "10:00"), purpose="Audit",
                attendees=[g1, g2])
    assert p1["status"] == "pending"
    uid = f"reservation-{p1['id']}@meeting-rooms"
    # Changed while pending (g2 removed): nothing either, not even a CANCEL to g2.
    r = requests.put(f"{res_url}/reservations/{p1['id']}", headers=organizer, timeout=10,
                     json={"purpose": "Audit prep", "attendees": [g1]})
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    # Rejected: nothing to anyone, it was never sent.
    p2 = booked(res_url, organizer, rid, local(d, "11:00"), local(d, "12:00"), attendees=[g3])
    r = requests.post(f"{res_url}/reservations/{p2['id']}/reject", headers=root, timeout=10)
    assert r.status_code == 200, r.text
    # Approved: the organizer's copy and the attendees' invitation, the first mails of all.
    assert requests.post(f"{res_url}/reservations/{p1['id']}/approve", headers=root,
                         timeout=10).status_code == 200
    for addr in (org, g1):
        got = mails(mailpit, addr, 1)
        assert len(got) == 1, got
        [(subject, method, got_uid, _)] = got
        assert (method, got_uid) == ("REQUEST", uid)
        assert subject.startswith("Invitation: Audit prep @ "), subject
    # Moved by its owner within the room: pending again, so whoever had it gets a CANCEL ...
    r = requests.put(f"{res_url}/reservations/{p1['id']}", headers=organizer, timeout=10,
                     json={"start_time": local(d, "13:00"), "end_time": local(d, "14:00")})
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    for addr in (org, g1):
        got = mails(mailpit, addr, 2)
        assert [(m[1], m[2]) for m in got] == [("REQUEST", uid), ("CANCEL", uid)]
        assert got[1][0].startswith("Cancelled: Audit prep @ "), got[1][0]
        assert "awaits an administrator's approval" in got[1][3]
    # ... and the invitation again once approved.
    assert requests.post(f"{res_url}/reservations/{p1['id']}/approve", headers=root,
                         timeout=10).status_code == 200
    got = mails(mailpit, g1, 3)
    assert [(m[1], m[2]) for m in got] == [("REQUEST", uid), ("CANCEL", uid), ("REQUEST", uid)]
    assert got[2][0].startswith("Invitation: Audit prep @ ") and local(d, "13:00")[11:16] in \
        got[2][0], got[2][0]
    # g2 and g3 never heard of p1 or p2: their first mail is an admin's booking of later.
    other = booked(res_url, root, rid, local(d, "15:00"), local(d, "16:00"),
                   attendees=[g2, g3])
    for addr in (g2, g3):
        [(_, method, got_uid, _)] = mails(mailpit, addr, 1)
        assert (method, got_uid) == ("REQUEST", f"reservation-{other['id']}@meeting-rooms")


# ---- override ----

def test_override_by_an_admin(stack, policy_room, res_url, users):
    (alice, _), (root, root_id) = users["alice"], users["root"]
    rid = policy_room({"opening_hours": dict(OPEN_ALL_WEEK, sat=[]), "buffer_minutes": 15})
    sat = next_weekday(5)
    r = requests.post(f"{res_url}/reservations", params={"override": "true"}, headers=alice,
                      timeout=10, json={"room_id": rid, "start_time": local(sat, "10:00"),
                                        "end_time": local(sat, "11:00")})
    assert_error(r, 403, "forbidden")
    refused(book(res_url, root, rid, local(sat, "10:00"), local(sat, "11:00")),
            "opening_hours", "start_time")
    r = requests.post(f"{res_url}/reservations", params={"override": "true"}, headers=root,
                      timeout=10, json={"room_id": rid, "start_time": local(sat, "10:00"),
                                        "end_time": local(sat, "11:00")})
    assert r.status_code == 201, r.text
    ev = outbox_events(stack, r.json()["id"])
    assert ev[0]["policy_override"] == ["opening_hours"]
    wait_until(lambda: (f"reservation {r.json()['id']}: admin {root_id} overrode the room's "
                        "policies {opening_hours}") in stack.reservation.log_text(),
               timeout=5, what="the override's log line")
    # Never the buffer.  The alternatives are those of an employee (the hours are kept).
    r = requests.post(f"{res_url}/reservations", params={"override": "true"}, headers=root,
                      timeout=10, json={"room_id": rid, "start_time": local(sat, "11:05"),
                                        "end_time": local(sat, "12:00")})
    assert_error(r, 409, "conflict")
    assert r.json()["details"]["alternatives"]["times"] == []  # Saturday is closed
    # Without a rule broken, no record of an override.
    mon = next_weekday(0)
    r = requests.post(f"{res_url}/reservations", params={"override": "true"}, headers=root,
                      timeout=10, json={"room_id": rid, "start_time": local(mon, "10:00"),
                                        "end_time": local(mon, "11:00")})
    assert r.status_code == 201, r.text
    assert "policy_override" not in outbox_events(stack, r.json()["id"])[0]
    assert_error(requests.post(f"{res_url}/reservations", params={"override": "maybe"},
                               headers=root, timeout=10, json={}), 400, "bad_request")


def test_a_series_override_names_the_rules_in_its_events(stack, policy_room, res_url, users):
    (root, root_id) = users["root"]
    rid = policy_room({"opening_hours": dict(OPEN_ALL_WEEK, sat=[], sun=[])})
    mon = next_weekday(0)
    body = {"room_id": rid, "start_time": local(mon, "09:00"), "end_time": local(mon, "10:00"),
            "recurrence": "FREQ=DAILY;COUNT=6"}
    r = requests.post(f"{res_url}/reservations", params={"override": "true"}, json=body,
                      headers=root, timeout=10)
    assert r.status_code == 201, r.text
    series = r.json()
    # One write (the events once), each naming the rule skipped: the series' and every
    # occurrence's.
    [created] = outbox_events(stack, f"series-{series['id']}")
    assert created["event_type"] == "reservation_series_created"
    assert created["policy_override"] == ["opening_hours"]
    occurrences = [o for o in series["occurrences"] if o.get("id")]
    assert len(occurrences) == 6
    for o in occurrences:
        [ev] = outbox_events(stack, o["id"])
        assert ev["policy_override"] == ["opening_hours"], ev
    wait_until(lambda: (f"series {series['id']}: admin {root_id} overrode the room's policies "
                        "{opening_hours}") in stack.reservation.log_text(),
               timeout=5, what="the series override's log line")
    # A change with the override that breaks another rule too names both.
    r = requests.put(f"{res_url}/reservations/series/{series['id']}",
                     params={"override": "true"}, headers=root, timeout=10,
                     json={"start_time": local(mon, "07:00"), "end_time": local(mon, "08:00")})
    assert r.status_code == 200, r.text
    updated = outbox_events(stack, f"series-{series['id']}")[-1]
    assert (updated["event_type"], updated["policy_override"]) == \
        ("reservation_series_updated", ["opening_hours"])
    # An override that skips nothing leaves no record.
    body["recurrence"] = "FREQ=DAILY;COUNT=2"
    body["start_time"], body["end_time"] = local(mon, "12:00"), local(mon, "13:00")
    r = requests.post(f"{res_url}/reservations", params={"override": "true"}, json=body,
                      headers=root, timeout=10)
    assert r.status_code == 201, r.text
    assert "policy_override" not in outbox_events(stack, f"series-{r.json()['id']}")[0]


# ---- changes and series ----

def test_a_change_is_checked_like_a_booking(policy_room, res_url, alice):
    rid = policy_room({"opening_hours": OPEN_ALL_WEEK})
    d = next_weekday(3)
    r = booked(res_url, alice, rid, local(d, "09:00"), local(d, "10:00"))
    refused(requests.put(f"{res_url}/reservations/{r['id']}", headers=alice, timeout=10,
                         json={"start_time": local(d, "17:30"), "end_time": local(d, "18:30")}),
            "opening_hours", "start_time")
    # A purpose change is no new booking: a rule added since does not stop it.
    r2 = requests.put(f"{res_url}/reservations/{r['id']}", headers=alice, timeout=10,
                      json={"purpose": "planning"})
    assert r2.status_code == 200, r2.text


def test_series_occurrences_are_checked_one_by_one(policy_room, res_url, alice, root):
    rid = policy_room({"opening_hours": dict(OPEN_ALL_WEEK, sat=[], sun=[])})
    mon = next_weekday(0)
    body = {"room_id": rid, "start_time": local(mon, "09:00"), "end_time": local(mon, "10:00"),
            "recurrence": "FREQ=DAILY;COUNT=7"}
    r = requests.post(f"{res_url}/reservations", json=body, headers=alice, timeout=10)
    details = refused(r, "opening_hours", "start_time")
    sat = mon + datetime.timedelta(days=5)
    assert details["occurrence_start"] == local(sat, "09:00")
    assert details["start_time"].startswith(f"the occurrence of {local(sat, '09:00')}")
    # Nothing was booked.
    assert requests.get(f"{res_url}/reservations", params={"room_id": rid}, headers=alice,
                        timeout=10).json() == []
    body["recurrence"] = "FREQ=DAILY;COUNT=5"
    r = requests.post(f"{res_url}/reservations", json=body, headers=alice, timeout=10)
    assert r.status_code == 201, r.text
    series = r.json()
    # A change that moves the pattern onto the weekend is refused the same way.
    r = requests.put(f"{res_url}/reservations/series/{series['id']}", headers=alice, timeout=10,
                     json={"recurrence": "FREQ=DAILY;COUNT=6"})
    refused(r, "opening_hours", "start_time")


def test_series_quota_and_approval(policy_room, res_url, alice, root):
    mon = next_weekday(0)
    rid = policy_room({"max_bookings_per_user_per_week": 3})
    body = {"room_id": rid, "start_time": local(mon, "09:00"), "end_time": local(mon, "10:00"),
            "recurrence": "FREQ=DAILY;COUNT=4"}
    refused(requests.post(f"{res_url}/reservations", json=body, headers=alice, timeout=10),
            "max_bookings_per_user_per_week", "start_time")
    body["recurrence"] = "FREQ=DAILY;COUNT=3"
    assert requests.post(f"{res_url}/reservations", json=body, headers=alice,
                         timeout=10).status_code == 201
    rid = policy_room({"requires_approval": True})
    body["room_id"] = rid
    refused(requests.post(f"{res_url}/reservations", json=body, headers=alice, timeout=10),
            "requires_approval", "recurrence")
    r = requests.post(f"{res_url}/reservations", json=body, headers=root, timeout=10)
    assert r.status_code == 201, r.text
    assert {o["status"] for o in r.json()["occurrences"]} == {"confirmed"}


def test_rules_removed_apply_at_once(room_url, policy_room, res_url, admin_headers, alice,
                                     stack):
    rid = policy_room({"opening_hours": dict(OPEN_ALL_WEEK, sun=[])})
    sun = next_weekday(6)
    refused(book(res_url, alice, rid, local(sun, "10:00"), local(sun, "11:00")),
            "opening_hours", "start_time")
    r = requests.put(f"{room_url}/rooms/{rid}", headers=admin_headers, timeout=10,
                     json={"policies": None})
    assert r.status_code == 200, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT policies FROM rooms WHERE id = %s", rid)
               == [(None,)], timeout=30, what="policies cleared in the copy")
    booked(res_url, alice, rid, local(sun, "10:00"), local(sun, "11:00"))


# ---- the business clock ----

@pytest.fixture(scope="module")
def clocked(stack, root):
    """A second reservation-service on the same database with TEST_CLOCK=true."""
    svc = stack.reservation_service(tag="reservation-test-clock", TEST_CLOCK="true")
    svc.start()
    try:
        yield svc
    finally:
        requests.put(f"{svc.url}/internal/test-clock", json={"offset_s": 0}, headers=root,
                     timeout=10)
        svc.stop()


def test_test_clock_endpoint_only_when_enabled(stack, res_url, gateway_url, clocked, root,
                                               alice):
    assert_error(requests.put(f"{res_url}/internal/test-clock", json={"offset_s": 60},
                              headers=root, timeout=10), 404, "not_found")
    # The gateway routes no /internal path, whatever the service behind it allows.
    r = requests.put(f"{gateway_url}/internal/test-clock", json={"offset_s": 60}, headers=root,
                     timeout=10)
    assert r.status_code == 404
    assert "TEST_CLOCK is on" in clocked.log_text()
    # Admins only, even with the switch on.
    assert_error(requests.put(f"{clocked.url}/internal/test-clock", json={"offset_s": 60},
                              headers=alice, timeout=10), 403, "forbidden")
    assert_error(requests.put(f"{clocked.url}/internal/test-clock", json={"offset_s": 60},
                              timeout=10), 401, "unauthorized")
    r = requests.put(f"{clocked.url}/internal/test-clock", json={"offset_s": 315360001},
                     headers=root, timeout=10)
    assert_error(r, 422, "validation_failed")
    # A strict body (review 15c L5): an unknown member is refused, so is a missing offset_s.
    r = requests.put(f"{clocked.url}/internal/test-clock", json={"offset_s": 60, "offset": 1},
                     headers=root, timeout=10)
    assert_error(r, 422, "validation_failed")
    assert set(r.json()["details"]) == {"offset"}
    r = requests.put(f"{clocked.url}/internal/test-clock", json={}, headers=root, timeout=10)
    assert_error(r, 422, "validation_failed")
    assert set(r.json()["details"]) == {"offset_s"}


def test_moving_the_clock_moves_the_rules(policy_room, clocked, alice, root):
    rid = policy_room({"max_advance_days": 1})
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    start = now + datetime.timedelta(days=2)
    span = (utc_text(start), utc_text(start + datetime.timedelta(hours=1)))
    url = clocked.url
    refused(book(url, alice, rid, *span), "max_advance_days", "start_time")
    r = requests.put(f"{url}/internal/test-clock", json={"offset_s": 86400 + 3600},
                     headers=root, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["offset_s"] == 86400 + 3600
    booked(url, alice, rid, *span)
    # The past moved too: a start one hour from the real now has begun on this clock.
    soon = now + datetime.timedelta(hours=2)
    r = book(url, alice, rid, utc_text(soon), utc_text(soon + datetime.timedelta(hours=1)))
    assert_error(r, 422, "validation_failed")
    assert "start_time" in r.json()["details"]
    r = requests.put(f"{url}/internal/test-clock", json={"offset_s": 0}, headers=root,
                     timeout=10)
    assert r.status_code == 200, r.text
    booked(url, alice, rid, utc_text(soon), utc_text(soon + datetime.timedelta(hours=1)))


# ---- review 15a ----

def test_an_occurrence_cannot_move_into_an_approval_room(policy_room, res_url, users):
    """H1: an employee moving an occurrence of a series into (or within) a room that requires
    approval is refused, as a series write there is; an admin may."""
    (alice, _), (root, _) = users["alice"], users["root"]
    plain = policy_room({"max_advance_days": 3650})
    approval = policy_room({"requires_approval": True})
    mon = next_weekday(0, days_ahead=28)
    r = requests.post(f"{res_url}/reservations", headers=alice, timeout=10,
                      json={"room_id": plain, "start_time": local(mon, "09:00"),
                            "end_time": local(mon, "10:00"), "recurrence": "FREQ=WEEKLY;COUNT=3"})
    assert r.status_code == 201, r.text
    first, second = [o["id"] for o in r.json()["occurrences"]][:2]
    r = requests.put(f"{res_url}/reservations/{first}", headers=alice, timeout=10,
                     json={"room_id": approval, "start_time": local(mon, "11:00"),
                           "end_time": local(mon, "12:00")})
    d = refused(r, "requires_approval", "room_id")
    assert "series" in d["room_id"]
    got = requests.get(f"{res_url}/reservations/{first}", headers=alice, timeout=10).json()
    assert (got["room_id"], got["status"]) == (plain, "confirmed")
    r = requests.put(f"{res_url}/reservations/{second}", headers=root, timeout=10,
                     json={"room_id": approval})
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
    # Within the room too (the admin moved it there).
    wed = mon + datetime.timedelta(days=9)
    r = requests.put(f"{res_url}/reservations/{second}", headers=alice, timeout=10,
                     json={"start_time": local(wed, "14:00"), "end_time": local(wed, "15:00")})
    refused(r, "requires_approval", "room_id")


def test_a_pending_booking_moved_out_of_approval_is_confirmed(policy_room, res_url, alice):
    """M2: a pending booking moved into a room that requires no approval has nothing left to
    wait for."""
    approval = policy_room({"requires_approval": True})
    plain = policy_room({"max_advance_days": 3650})
    d = next_weekday(3, days_ahead=14)
    p = booked(res_url, alice, approval, local(d, "09:00"), local(d, "10:00"))
    assert p["status"] == "pending"
    r = requests.put(f"{res_url}/reservations/{p['id']}", headers=alice, timeout=10,
                     json={"room_id": plain})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    # And back: pending again.
    r = requests.put(f"{res_url}/reservations/{p['id']}", headers=alice, timeout=10,
                     json={"room_id": approval})
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text


def test_a_buffer_set_later_keeps_the_older_bookings_apart(room_url, policy_room, res_url,
                                                           admin_headers, alice, bob, stack):
    """M1: a booking made before the room had a buffer (its snapshot: none) is not followed
    back to back once the room has one; the 409 names it."""
    rid = policy_room({"max_advance_days": 3650})
    d = next_weekday(2, days_ahead=21)
    booked(res_url, alice, rid, local(d, "10:00"), local(d, "11:00"))
    r = requests.put(f"{room_url}/rooms/{rid}", headers=admin_headers, timeout=10,
                     json={"policies": {"buffer_minutes": 15}})
    assert r.status_code == 200, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT policies->>'buffer_minutes' FROM rooms "
                                    "WHERE id = %s", rid) == [("15",)],
               timeout=30, what="the buffer copied")
    r = book(res_url, bob, rid, local(d, "11:00"), local(d, "12:00"))
    assert_error(r, 409, "conflict")
    assert r.json()["details"]["conflicts"] == [
        {"start_time": instant(d, "10:00"), "end_time": instant(d, "11:00")}]
    assert r.json()["details"]["alternatives"]["times"][0] == {
        "start_time": instant(d, "11:15"), "end_time": instant(d, "12:15")}
    assert_error(book(res_url, bob, rid, local(d, "11:14"), local(d, "12:00")), 409, "conflict")
    # A series' occurrence likewise.
    r = requests.post(f"{res_url}/reservations", headers=bob, timeout=10,
                      json={"room_id": rid, "start_time": local(d, "11:05"),
                            "end_time": local(d, "11:35"), "recurrence": "FREQ=DAILY;COUNT=2"})
    assert_error(r, 409, "conflict")
    booked(res_url, bob, rid, local(d, "11:15"), local(d, "12:00"))


@pytest.fixture(scope="module")
def short_service(stack):
    """reservation-service allowing bookings of 5 to 240 minutes (the room rules below go
    beyond both)."""
    svc = stack.reservation_service(tag="reservation-max-240", MAX_DURATION_MINUTES="240",
                                    MIN_DURATION_MINUTES="5").start()
    try:
        yield svc
    finally:
        svc.stop()


def test_room_durations_replace_the_service_bounds_for_series_and_overrides(
        policy_room, short_service, users):
    """M5: a room's max above the service's (and its min below) apply to a series as to a
    single booking, and an admin's override is never stricter than no override."""
    (alice, _), (root, _) = users["alice"], users["root"]
    url = short_service.url
    rid = policy_room({"max_duration_minutes": 480, "min_duration_minutes": 1})
    d = next_weekday(1, days_ahead=35)
    booked(url, alice, rid, local(d, "08:00"), local(d, "14:00"))  # 6 h > 240 min
    r = requests.post(f"{url}/reservations", headers=alice, timeout=10,
                      json={"room_id": rid, "start_time": local(d, "15:00"),
                            "end_time": local(d, "21:00"), "recurrence": "FREQ=WEEKLY;COUNT=2"})
    assert r.status_code == 201, r.text
    r = requests.post(f"{url}/reservations", headers=alice, timeout=10,
                      json={"room_id": rid, "start_time": local(d, "21:30"),
                            "end_time": local(d, "21:31"), "recurrence": "FREQ=WEEKLY;COUNT=2"})
    assert r.status_code == 201, r.text  # 1 minute < MIN_DURATION_MINUTES
    # The room's bound still holds for the series (9 h > 480 minutes).
    e = d + datetime.timedelta(days=1)
    r = requests.post(f"{url}/reservations", headers=alice, timeout=10,
                      json={"room_id": rid, "start_time": local(e, "08:00"),
                            "end_time": local(e, "17:00"), "recurrence": "FREQ=WEEKLY;COUNT=2"})
    refused(r, "max_duration_minutes", "end_time")
    # An admin's override: 6 h, allowed without it, allowed with it.
    r = requests.post(f"{url}/reservations", params={"override": "true"}, headers=root,
                      timeout=10, json={"room_id": rid, "start_time": local(e, "18:00"),
                                        "end_time": local(e, "23:59")})
    assert r.status_code == 201, r.text
    r = requests.post(f"{url}/reservations", params={"override": "true"}, headers=root,
                      timeout=10, json={"room_id": rid, "start_time": local(e, "00:30"),
                                        "end_time": local(e, "06:30"),
                                        "recurrence": "FREQ=WEEKLY;COUNT=2"})
    assert r.status_code == 201, r.text


def test_reject_body_is_checked_strictly(policy_room, res_url, users):
    """L7: an unknown member is named; a chunked body is read, not ignored."""
    (alice, _), (root, _) = users["alice"], users["root"]
    rid = policy_room({"requires_approval": True})
    d = next_weekday(4, days_ahead=14)
    p = booked(res_url, alice, rid, local(d, "09:00"), local(d, "10:00"))
    r = requests.post(f"{res_url}/reservations/{p['id']}/reject", headers=root, timeout=10,
                      json={"reasn": "typo"})
    assert_error(r, 422, "validation_failed")
    assert "reasn" in r.json()["details"], r.text

    def chunks():
        yield json.dumps({"reason": "y" * 201}).encode()
    r = requests.post(f"{res_url}/reservations/{p['id']}/reject", timeout=10, data=chunks(),
                      headers=dict(root, **{"Content-Type": "application/json"}))
    assert_error(r, 422, "validation_failed")
    assert "reason" in r.json()["details"], r.text
    r = requests.post(f"{res_url}/reservations/{p['id']}/reject", headers=root, timeout=10)
    assert r.status_code == 200 and r.json()["cancel_reason"] == "rejected", r.text
    # A chunked body without data, even without a Content-Type, is no body (review 15c L6): a
    # rejection without a reason, not a 400 or a 415.
    p2 = booked(res_url, alice, rid, local(d, "11:00"), local(d, "12:00"))
    r = requests.post(f"{res_url}/reservations/{p2['id']}/reject", timeout=10, data=iter([]),
                      headers=root)
    assert r.status_code == 200 and r.json()["cancel_reason"] == "rejected", r.text


def test_test_clock_is_404_to_anyone_while_off(res_url, alice):
    """L11: without TEST_CLOCK the path does not exist for anyone, signed in or not."""
    for headers in (alice, {}):
        assert_error(requests.put(f"{res_url}/internal/test-clock", json={"offset_s": 60},
                                  headers=headers, timeout=10), 404, "not_found")
