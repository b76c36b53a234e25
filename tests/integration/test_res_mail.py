"""E-mail invitations (docs/api.md#invitations): what the organizer and every attendee receive in
Mailpit on create, update and cancel, on a room's deletion and for a series (the MIME message and
its iTIP object parsed with the icalendar package), that no header can be injected, that a
Mailpit stopped during bookings neither slows the API nor loses or doubles a message, and that a
permanent refusal (5xx) is recorded and not retried."""
import datetime
import email
import email.policy
import re
import time
import uuid

import icalendar
import pytest
import requests

from harness import (
    Mailpit,
    Stack,
    assert_error,
    bearer,
    booked,
    operator_token,
    res_db_query,
    wait_until,
)
from series_util import DAYS, ahead, local, series_made

POOL_BATCH = 6
ORGANIZER_NAME = "Orla Ö. Organizer"
MESSAGE_ID = re.compile(r"<(reservation|series)-(\d+)-v(\d+)-([0-9a-f]{12})@example\.com>")


@pytest.fixture()
def organizer(stack):
    """The organizer of this test: (headers, e-mail); a name with a non-ASCII letter (RFC
    2047)."""
    addr = f"mail-org-{uuid.uuid4().hex[:8]}@example.com"
    token, _ = operator_token(stack.user, addr, name=ORGANIZER_NAME)
    return bearer(token), addr


@pytest.fixture()
def guests(request):
    """Two attendee addresses of this test only."""
    tag = uuid.uuid4().hex[:8]
    return [f"guest1-{tag}@example.org", f"Guest2-{tag}@example.net"]


@pytest.fixture(scope="module")
def berlin(pool):
    return pool.take(time_zone="Europe/Berlin", capacity=10)


def inbox(mailpit, addr, count, timeout=45.0):
    """The messages to addr once there are at least count, oldest first."""
    found = mailpit.wait_messages(count, query=f'to:"{addr}"', timeout=timeout)
    return Mailpit.oldest_first(found)


def parsed(mailpit, summary):
    """(the message as Python's email package reads it, the Mailpit JSON, the iCalendar)."""
    raw = mailpit.raw(summary["ID"])
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    full = mailpit.message(summary["ID"])
    cals = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert cals, "no text/calendar part"
    cal = icalendar.Calendar.from_ical(cals[0].get_content())
    return msg, full, cal


def vevents(cal):
    return [c for c in cal.walk() if c.name == "VEVENT"]


def attendees_of(event):
    got = event.get("ATTENDEE")
    got = got if isinstance(got, list) else [got] if got else []
    return sorted(str(a).lower() for a in got)


def settle(mailpit, addrs, seconds=1.5):
    """Counts of messages per address after the queue had time to send anything more."""
    time.sleep(seconds)
    return {a: len(mailpit.messages(f'to:"{a}"')) for a in addrs}


# ---- a single reservation: create, update, cancel ----

def test_invitation_update_and_cancel_reach_everyone(res_url, mailpit, organizer, guests,
                                                     berlin):
    headers, org = organizer
    day = ahead(5)
    res = booked(res_url, headers, berlin["id"], local(day, 10), local(day, 11),
                 purpose="Sprint review", attendees=guests, online_meeting=True)
    everyone = [org] + guests
    uid = f"reservation-{res['id']}@meeting-rooms"
    for addr in everyone:
        [one] = inbox(mailpit, addr, 1)
        msg, full, cal = parsed(mailpit, one)
        assert msg["Subject"] == \
            f"Invitation: Sprint review @ {berlin['name']}, {day.isoformat()} 10:00"
        assert msg["From"].addresses[0].addr_spec == Stack.MAIL_FROM
        to = msg["To"].addresses
        assert [a.addr_spec for a in to] == [addr]
        if addr == org:
            assert to[0].display_name == ORGANIZER_NAME  # RFC 2047 encoded, decoded back
            head = mailpit.raw(one["ID"]).split(b"\r\n\r\n", 1)[0]
            assert re.search(rb"\r\nTo: =\?UTF-8\?", head, re.I), head
        else:
            assert msg["Reply-To"].addresses[0].addr_spec == org
        m = MESSAGE_ID.fullmatch(msg["Message-ID"])
        assert m and m.group(1, 2, 3) == ("reservation", str(res["id"]), "1"), msg["Message-ID"]
        assert "Sprint review" in full["Text"] and res["meeting_url"] in full["Text"]
        assert "<table>" in full["HTML"] and berlin["name"] in full["HTML"]
        assert str(cal["METHOD"]) == "REQUEST"
        assert [c["TZID"] for c in cal.walk() if c.name == "VTIMEZONE"] == ["Europe/Berlin"]
        [ev] = vevents(cal)
        assert str(ev["UID"]) == uid and int(ev["SEQUENCE"]) == 0
        assert ev["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert ev["DTSTART"].dt.replace(tzinfo=None).isoformat() == local(day, 10)
        assert ev["DTEND"].dt.replace(tzinfo=None).isoformat() == local(day, 11)
        assert ev["DTSTART"].dt.utcoffset() is not None
        assert str(ev["SUMMARY"]) == "Sprint review"
        assert str(ev["LOCATION"]) == berlin["name"]
        assert str(ev["ORGANIZER"]).lower() == f"mailto:{org}"
        assert ev["ORGANIZER"].params["CN"] == ORGANIZER_NAME
        assert attendees_of(ev) == sorted(f"mailto:{g.lower()}" for g in guests)
        assert ev["ATTENDEE"][0].params["RSVP"] == "TRUE"
        assert ev["ATTENDEE"][0].params["PARTSTAT"] == "NEEDS-ACTION"
        assert str(ev["URL"]) == res["meeting_url"] and "?jwt" not in res["meeting_url"]
        assert res["meeting_url"] in str(ev["DESCRIPTION"])
        assert str(ev["STATUS"]) == "CONFIRMED"

    # An update supersedes the invitation: same UID, higher SEQUENCE.
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=headers, timeout=10,
                     json={"start_time": local(day, 14), "end_time": local(day, 15),
                           "purpose": "Sprint review (moved)"})
    assert r.status_code == 200, r.text
    for addr in everyone:
        _, second = inbox(mailpit, addr, 2)
        msg, _, cal = parsed(mailpit, second)
        assert msg["Subject"].startswith("Updated: Sprint review (moved) @ ")
        assert MESSAGE_ID.fullmatch(msg["Message-ID"]).group(3) == "2"
        [ev] = vevents(cal)
        assert str(cal["METHOD"]) == "REQUEST"
        assert str(ev["UID"]) == uid and int(ev["SEQUENCE"]) == 1
        assert ev["DTSTART"].dt.replace(tzinfo=None).isoformat() == local(day, 14)

    # A cancel cancels it.
    assert requests.delete(f"{res_url}/reservations/{res['id']}", headers=headers,
                           timeout=10).status_code == 204
    for addr in everyone:
        msgs = inbox(mailpit, addr, 3)
        msg, full, cal = parsed(mailpit, msgs[2])
        assert msg["Subject"].startswith("Cancelled: Sprint review (moved) @ ")
        assert str(cal["METHOD"]) == "CANCEL"
        [ev] = vevents(cal)
        assert str(ev["UID"]) == uid and int(ev["SEQUENCE"]) == 2
        assert str(ev["STATUS"]) == "CANCELLED"
        assert "cancelled by the organizer" in full["Text"]
        # One Message-ID per version and recipient: three different ones.
        assert len({parsed(mailpit, x)[0]["Message-ID"] for x in msgs}) == 3
    assert settle(mailpit, everyone) == {a: 3 for a in everyone}


def test_room_deletion_sends_cancellations(res_url, room_url, mailpit, organizer, guests, pool,
                                           admin_headers):
    headers, org = organizer
    room = pool.take(capacity=10)
    day = ahead(6)
    res = booked(res_url, headers, room["id"], local(day, 9), local(day, 10), purpose="Doomed",
                 attendees=guests[:1])
    inbox(mailpit, guests[0], 1)
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers,
                           timeout=10).status_code == 204
    for addr in (org, guests[0]):
        msgs = inbox(mailpit, addr, 2)
        msg, full, cal = parsed(mailpit, msgs[-1])
        assert msg["Subject"].startswith("Cancelled: Doomed @ ")
        assert "the room was deleted" in full["Text"]
        assert str(cal["METHOD"]) == "CANCEL"
        [ev] = vevents(cal)
        assert str(ev["UID"]) == f"reservation-{res['id']}@meeting-rooms"


def test_an_occurrence_moved_to_a_deleted_room_is_cancelled_by_mail(
        res_url, room_url, mailpit, organizer, guests, berlin, pool, admin_headers):
    """Its series goes on in the first room, so no series CANCEL covers the occurrence that the
    room deletion cancelled: it gets a CANCEL of its own."""
    headers, _ = organizer
    other = pool.take(capacity=10)
    day = ahead(9)
    s = series_made(res_url, headers, berlin["id"], local(day, 16), local(day, 17),
                    "FREQ=DAILY;COUNT=3", purpose="Wandering", attendees=guests[:1])
    inbox(mailpit, guests[0], 1)
    moved = s["occurrences"][1]
    r = requests.put(f"{res_url}/reservations/{moved['id']}", headers=headers, timeout=10,
                     json={"room_id": other["id"]})
    assert r.status_code == 200, r.text
    inbox(mailpit, guests[0], 2)
    assert requests.delete(f"{room_url}/rooms/{other['id']}", headers=admin_headers,
                           timeout=10).status_code == 204
    msgs = inbox(mailpit, guests[0], 3)
    msg, _, cal = parsed(mailpit, msgs[-1])
    assert msg["Subject"].startswith("Cancelled: Wandering @ ")
    assert str(cal["METHOD"]) == "CANCEL"


def test_user_deletion_sends_cancellations(res_url, user_url, mailpit, organizer, guests, pool,
                                           admin_headers):
    headers, org = organizer
    room = pool.take(capacity=10)
    uid = requests.get(f"{user_url}/users/profile", headers=headers, timeout=10).json()["id"]
    day = ahead(7)
    booked(res_url, headers, room["id"], local(day, 9), local(day, 10), purpose="Orphaned",
           attendees=guests[:1])
    inbox(mailpit, guests[0], 1)
    assert requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers,
                           timeout=10).status_code == 204
    [_, last] = inbox(mailpit, guests[0], 2)
    msg, full, cal = parsed(mailpit, last)
    assert msg["Subject"].startswith("Cancelled: Orphaned @ ")
    assert "the organizer's account was deleted" in full["Text"]
    assert str(cal["METHOD"]) == "CANCEL"


# ---- a series: one invitation, not one per occurrence ----

def test_series_sends_one_invitation_with_its_rule(res_url, mailpit, organizer, guests, berlin):
    headers, org = organizer
    first = ahead(8)
    rule = f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]};COUNT=5"
    s = series_made(res_url, headers, berlin["id"], local(first, 16), local(first, 17), rule,
                    purpose="Weekly sync", attendees=guests)
    everyone = [org] + guests
    for addr in everyone:
        [one] = inbox(mailpit, addr, 1)
        msg, _, cal = parsed(mailpit, one)
        assert msg["Subject"].startswith("Invitation: Weekly sync @ ")
        assert MESSAGE_ID.fullmatch(msg["Message-ID"]).group(1, 2) == ("series", str(s["id"]))
        assert str(cal["METHOD"]) == "REQUEST"
        [ev] = vevents(cal)
        assert str(ev["UID"]) == f"series-{s['id']}@meeting-rooms"
        assert ev["RRULE"]["FREQ"] == ["WEEKLY"] and ev["RRULE"]["COUNT"] == [5]
        assert ev["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert attendees_of(ev) == sorted(f"mailto:{g.lower()}" for g in guests)
    assert settle(mailpit, everyone) == {a: 1 for a in everyone}

    # One occurrence cancelled on its own: a CANCEL of that instance (RECURRENCE-ID).
    occ = s["occurrences"][1]
    assert requests.delete(f"{res_url}/reservations/{occ['id']}", headers=headers,
                           timeout=10).status_code == 204
    for addr in everyone:
        _, second = inbox(mailpit, addr, 2)
        _, _, cal = parsed(mailpit, second)
        assert str(cal["METHOD"]) == "CANCEL"
        [ev] = vevents(cal)
        assert str(ev["UID"]) == f"series-{s['id']}@meeting-rooms"
        assert ev["RECURRENCE-ID"].dt.replace(tzinfo=None).isoformat() == \
            occ["occurrence_start"]

    # The series changed: one update each (same UID, higher SEQUENCE), still with the
    # cancelled date excluded.
    r = requests.put(f"{res_url}/reservations/series/{s['id']}", headers=headers, timeout=30,
                     json={"purpose": "Weekly sync (renamed)"})
    assert r.status_code == 200, r.text
    for addr in everyone:
        msgs = inbox(mailpit, addr, 3)
        msg, _, cal = parsed(mailpit, msgs[2])
        assert msg["Subject"].startswith("Updated: Weekly sync (renamed) @ ")
        assert str(cal["METHOD"]) == "REQUEST"
        master = [e for e in vevents(cal) if "RRULE" in e]
        assert len(master) == 1 and int(master[0]["SEQUENCE"]) == 1
        assert str(master[0]["UID"]) == f"series-{s['id']}@meeting-rooms"
        assert "EXDATE" in master[0]

    # The whole series cancelled: one CANCEL each.
    assert requests.delete(f"{res_url}/reservations/series/{s['id']}", headers=headers,
                           timeout=10).status_code == 204
    for addr in everyone:
        msgs = inbox(mailpit, addr, 4)
        _, _, cal = parsed(mailpit, msgs[3])
        assert str(cal["METHOD"]) == "CANCEL", \
            [(m["Subject"], m.get("MessageID"), m["Created"]) for m in msgs]
        [ev] = vevents(cal)
        assert str(ev["UID"]) == f"series-{s['id']}@meeting-rooms" and "RRULE" in ev
    assert settle(mailpit, everyone) == {a: 4 for a in everyone}


# ---- hostile input ----

def test_no_header_can_be_injected(res_url, stack, mailpit, guests, berlin):
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    evil_addr = f"evil-{uuid.uuid4().hex[:8]}@example.com"
    token, _ = operator_token(stack.user, evil_addr, name=f"Eve\r\nBcc: {victim}")
    headers = bearer(token)
    day = ahead(9)
    # An address with CR/LF is refused by the API.
    r = requests.post(f"{res_url}/reservations", headers=headers, timeout=10,
                      json={"room_id": berlin["id"], "start_time": local(day, 9),
                            "end_time": local(day, 10),
                            "attendees": [f"{guests[0]}\r\nBcc: {victim}"]})
    assert_error(r, 422, "validation_failed", "attendees")
    # A purpose and an organizer name with CR/LF are stored, but reach no header as a line.
    purpose = f"Plan\r\nBcc: {victim}\r\nX-Injected: yes"
    res = booked(res_url, headers, berlin["id"], local(day, 9), local(day, 10), purpose=purpose,
                 attendees=guests[:1])
    for addr in (evil_addr, guests[0]):
        [one] = inbox(mailpit, addr, 1)
        raw = mailpit.raw(one["ID"])
        head = raw.split(b"\r\n\r\n", 1)[0]
        names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")
                 if line and not line[:1].isspace()]
        assert b"bcc" not in names and b"x-injected" not in names, head
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        assert "Bcc:" in msg["Subject"] and "\n" not in msg["Subject"]
        assert [a.addr_spec for a in msg["To"].addresses] == [addr]
    assert res["id"]
    # The victim's address is in display names and subjects, never a recipient (Mailpit's Bcc
    # lists envelope recipients that no header names).
    time.sleep(0.5)
    mentions = mailpit.messages(f'"{victim}"')
    assert len(mentions) >= 2, mentions
    for summary in mentions:
        full = mailpit.message(summary["ID"])
        recipients = [a["Address"].lower() for k in ("To", "Cc", "Bcc") for a in full[k] or []]
        assert victim not in recipients, full


# ---- faults ----

def test_a_permanent_refusal_is_recorded_and_not_retried(res_url, stack, mailpit, organizer,
                                                          pool):
    headers, _ = organizer
    room = pool.take(capacity=10)
    tag = uuid.uuid4().hex[:8]
    good, bad = f"ok-{tag}@example.org", f"nobody-{tag}@bounce.invalid"
    day = ahead(12)
    booked(res_url, headers, room["id"], local(day, 9), local(day, 10), attendees=[good, bad])
    inbox(mailpit, good, 1)

    def row():
        rows = res_db_query(stack.pg, "SELECT status, attempts, last_status, last_error "
                                      "FROM deliveries WHERE kind = 'mail' AND target = %s", bad)
        return rows[0] if rows else None
    wait_until(lambda: row() and row()[0] == "failed", timeout=10, what="the 550 recorded")
    time.sleep(1.0)  # retries would come every few tenths of a second
    status, attempts, code, error = row()
    assert (status, attempts, code) == ("failed", 1, 550), (status, attempts, code, error)
    assert error


# ---- invitations as calendar clients read them (review 14c M1, M2, M3, M6, L2, L4, L5) ----

def put_ok(url, headers, body):
    r = requests.put(url, headers=headers, timeout=30, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def naive(prop):
    return prop.dt.replace(tzinfo=None).isoformat()


def test_overrides_carry_their_own_sequence_and_people(res_url, mailpit, organizer, guests,
                                                       berlin):
    """An occurrence changed twice on its own was mailed with SEQUENCE 2; the series mail that
    follows overrides it with no lower SEQUENCE (RFC 5546 2.1.5), and with ORGANIZER and
    ATTENDEE as every VEVENT of a REQUEST (3.2.2)."""
    headers, org = organizer
    day = ahead(13)
    s = series_made(res_url, headers, berlin["id"], local(day, 9), local(day, 10),
                    "FREQ=DAILY;COUNT=3", purpose="Standup", attendees=guests)
    inbox(mailpit, guests[0], 1)
    occ = s["occurrences"][1]
    for i, purpose in enumerate(("Standup (long)", "Standup (longer)")):
        put_ok(f"{res_url}/reservations/{occ['id']}", headers, {"purpose": purpose})
        _, _, cal = parsed(mailpit, inbox(mailpit, guests[0], 2 + i)[-1])
        [ev] = vevents(cal)
        assert naive(ev["RECURRENCE-ID"]) == occ["occurrence_start"]
    assert int(ev["SEQUENCE"]) == 2
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers, {"purpose": "Daily"})
    for addr in [org] + guests:
        msg, _, cal = parsed(mailpit, inbox(mailpit, addr, 4)[-1])
        assert msg["Subject"].startswith("Updated: Daily @ ")
        [master] = [e for e in vevents(cal) if "RRULE" in e]
        [override] = [e for e in vevents(cal) if "RECURRENCE-ID" in e]
        assert naive(override["RECURRENCE-ID"]) == occ["occurrence_start"]
        assert int(override["SEQUENCE"]) >= 2
        assert int(override["SEQUENCE"]) >= int(master["SEQUENCE"]) == 1
        assert str(override["ORGANIZER"]).lower() == f"mailto:{org}"
        assert attendees_of(override) == sorted(f"mailto:{g.lower()}" for g in guests)


def test_recurrence_id_follows_a_time_of_day_change(res_url, mailpit, organizer, guests, berlin):
    """A kept exception after the series moved from 10:00 to 11:00: the series mail overrides
    the 11:00 instance, and the later cancel of that exception names the same instance."""
    headers, _ = organizer
    first = ahead(15)
    s = series_made(res_url, headers, berlin["id"], local(first, 10), local(first, 11),
                    "FREQ=DAILY;COUNT=3", purpose="Kept", attendees=guests[:1])
    guest = guests[0]
    inbox(mailpit, guest, 1)
    kept = s["occurrences"][2]
    put_ok(f"{res_url}/reservations/{kept['id']}", headers, {"purpose": "Kept (own)"})
    inbox(mailpit, guest, 2)
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers,
           {"start_time": local(first, 11), "end_time": local(first, 12)})
    _, _, cal = parsed(mailpit, inbox(mailpit, guest, 3)[-1])
    [master] = [e for e in vevents(cal) if "RRULE" in e]
    assert naive(master["DTSTART"]).endswith("T11:00:00")
    overrides = {naive(e["RECURRENCE-ID"]): e for e in vevents(cal) if "RECURRENCE-ID" in e}
    day3 = kept["occurrence_start"][:10]
    assert f"{day3}T11:00:00" in overrides, list(overrides)
    assert str(overrides[f"{day3}T11:00:00"]["SUMMARY"]) == "Kept (own)"
    assert requests.delete(f"{res_url}/reservations/{kept['id']}", headers=headers,
                           timeout=10).status_code == 204
    _, _, cal = parsed(mailpit, inbox(mailpit, guest, 4)[-1])
    assert str(cal["METHOD"]) == "CANCEL"
    [ev] = vevents(cal)
    assert naive(ev["RECURRENCE-ID"]) == f"{day3}T11:00:00"


def test_series_ended_by_room_deletion_keeps_its_past_meetings(
        res_url, room_url, stack, mailpit, organizer, guests, pool, admin_headers):
    """Only the future occurrences are cancelled: the mail is a REQUEST whose rule ends after
    the past ones (which stay in the calendar), not a CANCEL of the whole series; and no
    CONFIRMED component is ever under METHOD:CANCEL."""
    import recurring_ical_events
    headers, _ = organizer
    room = pool.take(time_zone="Europe/Berlin", capacity=10)
    first = ahead(1)
    s = series_made(res_url, headers, room["id"], local(first, 10), local(first, 11),
                    "FREQ=DAILY;COUNT=3", purpose="History", attendees=guests[:1])
    guest = guests[0]
    inbox(mailpit, guest, 1)
    # Two days later, as it were: the first occurrence is yesterday's, the last tomorrow's.
    res_db_query(stack.pg, "UPDATE reservation_series SET first_start = first_start - "
                           "interval '2 days' WHERE id = %s", s["id"])
    res_db_query(stack.pg, "UPDATE reservations SET start_time = start_time - interval '2 days',"
                           " end_time = end_time - interval '2 days', occurrence_start = "
                           "occurrence_start - interval '2 days' WHERE series_id = %s", s["id"])
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers,
                           timeout=10).status_code == 204
    msg, full, cal = parsed(mailpit, inbox(mailpit, guest, 2)[-1])
    assert msg["Subject"].startswith("Cancelled: History @ ")
    assert "the room was deleted" in full["Text"]
    assert str(cal["METHOD"]) == "REQUEST"
    assert all(str(e["STATUS"]) == "CONFIRMED" for e in vevents(cal))
    [master] = [e for e in vevents(cal) if "RRULE" in e]
    assert int(master["SEQUENCE"]) == 1 and master["RRULE"].get("UNTIL")
    yesterday, tomorrow = ahead(-1), ahead(1)
    got = {e["DTSTART"].dt.date()
           for e in recurring_ical_events.of(cal).between(ahead(-3), ahead(3))}
    assert yesterday in got and tomorrow not in got, got


def test_an_attendee_removed_gets_a_cancel_and_one_added_an_invitation(
        res_url, mailpit, organizer, guests, berlin):
    headers, org = organizer
    day = ahead(16)
    newcomer = f"new-{uuid.uuid4().hex[:8]}@example.com"
    res = booked(res_url, headers, berlin["id"], local(day, 9), local(day, 10),
                 purpose="Reshuffle", attendees=guests)
    for addr in [org] + guests:
        inbox(mailpit, addr, 1)
    put_ok(f"{res_url}/reservations/{res['id']}", headers,
           {"attendees": [guests[0], newcomer]})
    msg, full, cal = parsed(mailpit, inbox(mailpit, guests[1], 2)[-1])
    assert msg["Subject"].startswith("Cancelled: Reshuffle @ ")
    assert "removed" in full["Text"]
    assert str(cal["METHOD"]) == "CANCEL"
    [ev] = vevents(cal)
    assert str(ev["UID"]) == f"reservation-{res['id']}@meeting-rooms"
    assert int(ev["SEQUENCE"]) == 1
    assert attendees_of(ev) == [f"mailto:{guests[1].lower()}"]
    [first] = inbox(mailpit, newcomer, 1)
    msg, full, cal = parsed(mailpit, first)
    assert msg["Subject"].startswith("Invitation: Reshuffle @ ")
    assert "You are invited" in full["Text"]
    assert int(vevents(cal)[0]["SEQUENCE"]) == 1
    for addr in (org, guests[0]):
        msg, _, _ = parsed(mailpit, inbox(mailpit, addr, 2)[-1])
        assert msg["Subject"].startswith("Updated: Reshuffle @ ")
    assert settle(mailpit, [org] + guests + [newcomer]) == \
        {org: 2, guests[0]: 2, guests[1]: 2, newcomer: 1}


def test_series_subject_names_the_next_occurrence(res_url, mailpit, organizer, guests, berlin):
    headers, _ = organizer
    first = ahead(18)
    s = series_made(res_url, headers, berlin["id"], local(first, 8), local(first, 9),
                    "FREQ=DAILY;COUNT=3", purpose="Dated", attendees=guests[:1])
    guest = guests[0]
    msg, _, _ = parsed(mailpit, inbox(mailpit, guest, 1)[0])
    assert msg["Subject"].endswith(f", {first.isoformat()} 08:00")
    assert requests.delete(f"{res_url}/reservations/{s['occurrences'][0]['id']}",
                           headers=headers, timeout=10).status_code == 204
    inbox(mailpit, guest, 2)
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers, {"purpose": "Dated (2)"})
    msg, _, _ = parsed(mailpit, inbox(mailpit, guest, 3)[-1])
    second = s["occurrences"][1]["occurrence_start"]
    assert msg["Subject"] == f"Updated: Dated (2) @ {berlin['name']}, {second[:10]} 08:00"


def test_a_reservation_in_the_repeated_hour_is_written_in_utc(res_url, mailpit, organizer,
                                                              guests, pool):
    """02:15-02:45 on Sydney's fall-back day (2027-04-04) happens twice; the booking is the
    later one (AEST, +10), which a local DTSTART would name as the earlier one for an RFC 5545
    client: the invitation writes it in UTC.  The earlier one (AEDT) stays local."""
    import datetime as dt
    headers, _ = organizer
    room = pool.take(time_zone="Australia/Sydney", capacity=10)
    later = booked(res_url, headers, room["id"], "2027-04-03T16:15:00Z",
                   "2027-04-03T16:45:00Z", purpose="Fold", attendees=guests[:1])
    earlier = booked(res_url, headers, room["id"], "2027-04-03T15:15:00Z",
                     "2027-04-03T15:45:00Z", purpose="Fold early", attendees=guests[1:])
    _, _, cal = parsed(mailpit, inbox(mailpit, guests[0], 1)[0])
    [ev] = vevents(cal)
    assert "TZID" not in ev["DTSTART"].params
    assert ev["DTSTART"].dt == dt.datetime(2027, 4, 3, 16, 15, tzinfo=dt.UTC)
    assert ev["DTEND"].dt == dt.datetime(2027, 4, 3, 16, 45, tzinfo=dt.UTC)
    _, _, cal = parsed(mailpit, inbox(mailpit, guests[1], 1)[0])
    [ev] = vevents(cal)
    assert ev["DTSTART"].params["TZID"] == "Australia/Sydney"
    assert naive(ev["DTSTART"]) == "2027-04-04T02:15:00"
    assert later["id"] != earlier["id"]


def test_a_series_change_stores_its_data_once(res_url, stack, mailpit, organizer, pool):
    """200 occurrences, 20 attendees: the payload with the series' .ics data is stored once for
    the 21 recipients (mail_payloads); each delivery row only refers to it."""
    headers, _ = organizer
    room = pool.take(capacity=30)
    tag = uuid.uuid4().hex[:8]
    many = [f"m{i}-{tag}@example.org" for i in range(20)]
    first = ahead(2)
    s = series_made(res_url, headers, room["id"], local(first, 7), local(first, 8),
                    "FREQ=DAILY;COUNT=200", purpose="Bulk", attendees=many)
    key = f"series-{s['id']}"
    [(rows, row_bytes, biggest, row_stored)] = res_db_query(
        stack.pg, "SELECT count(*), sum(octet_length(payload::text)), "
                  "max(octet_length(payload::text)), sum(pg_column_size(payload)) "
                  "FROM deliveries WHERE kind = 'mail' AND key = %s", key)
    [(shared, shared_bytes, shared_stored)] = res_db_query(
        stack.pg, "SELECT count(*), sum(octet_length(payload::text)), "
                  "sum(pg_column_size(payload)) FROM mail_payloads WHERE key = %s", key)
    assert rows == 21 and shared == 1
    assert biggest < 100 and shared_bytes > 200 * 150
    # 009_mail.sql stored the shared payload in every row: as JSON text, and as stored (after
    # TOAST's compression, measured by storing the copies in a temporary table).
    [(copies_stored,)] = res_db_query(
        stack.pg, "CREATE TEMP TABLE m3 AS SELECT m.payload AS copy FROM deliveries d "
                  "JOIN mail_payloads m ON m.id::text = d.payload->>'shared' WHERE d.key = %s;"
                  " SELECT sum(pg_column_size(copy)) FROM m3", key)
    print(f"\nM3: {rows} rows; now {row_bytes + shared_bytes} bytes of JSON ({row_bytes} in "
          f"the rows + {shared_bytes} once), {row_stored + shared_stored} stored; a copy per "
          f"row: {rows * shared_bytes} bytes of JSON, {copies_stored} stored")
    assert (row_stored + shared_stored) * 10 < copies_stored
    msg, _, cal = parsed(mailpit, inbox(mailpit, many[19], 1, timeout=60)[0])
    assert msg["Subject"].startswith("Invitation: Bulk @ ")
    [master] = [e for e in vevents(cal) if "RRULE" in e]
    assert master["RRULE"]["COUNT"] == [200]


def test_an_attendee_removed_from_a_series_gets_its_cancel(res_url, stack, mailpit, organizer,
                                                           guests, berlin):
    """The series' row changes with its occurrences' (their events come first in the
    transaction): the attendees before the change are still known for the series' mail."""
    headers, _ = organizer
    first = ahead(20)
    s = series_made(res_url, headers, berlin["id"], local(first, 13), local(first, 14),
                    "FREQ=DAILY;COUNT=3", purpose="Shrinking", attendees=guests)
    for addr in guests:
        inbox(mailpit, addr, 1)
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers, {"attendees": guests[:1]})
    msg, _, cal = parsed(mailpit, inbox(mailpit, guests[1], 2)[-1])
    assert msg["Subject"].startswith("Cancelled: Shrinking @ ")
    assert str(cal["METHOD"]) == "CANCEL"
    [ev] = vevents(cal)
    assert str(ev["UID"]) == f"series-{s['id']}@meeting-rooms" and "RECURRENCE-ID" not in ev
    assert str(ev["STATUS"]) == "CANCELLED"
    assert attendees_of(ev) == [f"mailto:{guests[1].lower()}"]
    msg, _, cal = parsed(mailpit, inbox(mailpit, guests[0], 2)[-1])
    assert msg["Subject"].startswith("Updated: Shrinking @ ")
    assert all(attendees_of(e) == [f"mailto:{guests[0].lower()}"] for e in vevents(cal))
    assert settle(mailpit, guests) == {guests[0]: 2, guests[1]: 2}
    assert res_db_query(stack.pg, "SELECT count(*) FROM mail_attendees_before") == [(0,)]


# ---- recipients of some occurrences only (review 14d-A H1, M1) ----

def instance_days(cal, first):
    """The dates recurring_ical_events finds in cal from first on (a recipient's copy)."""
    import recurring_ical_events
    return sorted(e["DTSTART"].dt.date()
                  for e in recurring_ical_events.of(cal).between(
                      first, first + datetime.timedelta(days=40)))


def occurrence_only_series(res_url, mailpit, headers, room_id, first, purpose, guests):
    """A daily x3 series with guests[0]; its second occurrence also invites guests[1] (who gets
    that instance's invitation): (series, the second occurrence)."""
    a, b = guests
    s = series_made(res_url, headers, room_id, local(first, 10), local(first, 11),
                    "FREQ=DAILY;COUNT=3", purpose=purpose, attendees=[a])
    inbox(mailpit, a, 1)
    occ = s["occurrences"][1]
    put_ok(f"{res_url}/reservations/{occ['id']}", headers, {"attendees": [a, b]})
    msg, _, cal = parsed(mailpit, inbox(mailpit, b, 1)[0])
    assert msg["Subject"].startswith(f"Invitation: {purpose} @ ")
    [ev] = vevents(cal)
    assert naive(ev["RECURRENCE-ID"]) == occ["occurrence_start"]
    return s, occ


def only_instance(mailpit, addr, count, uid, occ, method):
    """The last of count messages to addr: one VEVENT, the instance of occ, under method."""
    msg, _, cal = parsed(mailpit, inbox(mailpit, addr, count)[-1])
    assert str(cal["METHOD"]) == method
    [ev] = vevents(cal)
    assert str(ev["UID"]) == uid and "RRULE" not in ev
    assert naive(ev["RECURRENCE-ID"]) == occ["occurrence_start"]
    assert str(ev["STATUS"]) == ("CANCELLED" if method == "CANCEL" else "CONFIRMED")
    return msg, ev


def test_an_occurrence_only_attendee_follows_the_series(res_url, mailpit, organizer, guests,
                                                        berlin):
    """b, invited to one occurrence only, gets the series' change of that instance (no master:
    b was never sent the rule) and the series' cancellation of it, as a, a series attendee,
    gets the series'."""
    headers, _ = organizer
    a, b = guests
    s, occ = occurrence_only_series(res_url, mailpit, headers, berlin["id"], ahead(22),
                                    "Partial", guests)
    uid = f"series-{s['id']}@meeting-rooms"
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers, {"purpose": "Partial v2"})
    msg, ev = only_instance(mailpit, b, 2, uid, occ, "REQUEST")
    assert msg["Subject"].startswith("Updated: Partial v2 @ ")
    assert str(ev["SUMMARY"]) == "Partial v2"
    assert f"mailto:{b.lower()}" in attendees_of(ev)
    inbox(mailpit, a, 3)  # each message sent before the next is queued (review 14d-A M4)
    assert requests.delete(f"{res_url}/reservations/series/{s['id']}", headers=headers,
                           timeout=10).status_code == 204
    msg, _ = only_instance(mailpit, b, 3, uid, occ, "CANCEL")
    assert msg["Subject"].startswith("Cancelled: Partial v2 @ ")
    _, _, cal = parsed(mailpit, inbox(mailpit, a, 4)[-1])
    assert str(cal["METHOD"]) == "CANCEL"
    assert settle(mailpit, guests) == {a: 4, b: 3}


def test_an_occurrence_only_attendee_hears_of_this_and_following(res_url, mailpit, organizer,
                                                                 guests, berlin):
    headers, _ = organizer
    a, b = guests
    s, occ = occurrence_only_series(res_url, mailpit, headers, berlin["id"], ahead(25),
                                    "Cut short", guests)
    r = requests.delete(f"{res_url}/reservations/{occ['id']}", headers=headers, timeout=10,
                        params={"scope": "this_and_following"})
    assert r.status_code in (200, 204), r.text
    only_instance(mailpit, b, 2, f"series-{s['id']}@meeting-rooms", occ, "CANCEL")
    assert settle(mailpit, [b]) == {b: 2}


def test_an_occurrence_only_attendee_hears_of_the_room_deletion(
        res_url, room_url, mailpit, organizer, guests, pool, admin_headers):
    """The room deletion ends the series: its occurrences get no mails of their own, and b's
    instance is cancelled by the series' mails."""
    headers, _ = organizer
    a, b = guests
    room = pool.take(time_zone="Europe/Berlin", capacity=10)
    s, occ = occurrence_only_series(res_url, mailpit, headers, room["id"], ahead(27),
                                    "Roomless", guests)
    assert requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers,
                           timeout=10).status_code == 204
    msg, full, _ = parsed(mailpit, inbox(mailpit, b, 2)[-1])
    assert "the room was deleted" in full["Text"]
    only_instance(mailpit, b, 2, f"series-{s['id']}@meeting-rooms", occ, "CANCEL")
    assert settle(mailpit, [b]) == {b: 2}


def test_a_series_mail_does_not_give_back_a_removed_instance(res_url, mailpit, organizer,
                                                             guests, berlin):
    """a, removed from the second occurrence (and sent its CANCEL), gets the next series mail
    without that instance (an EXDATE, no override), while b keeps all three."""
    headers, org = organizer
    a, b = guests
    first = ahead(29)
    s = series_made(res_url, headers, berlin["id"], local(first, 10), local(first, 11),
                    "FREQ=DAILY;COUNT=3", purpose="Shared", attendees=guests)
    inbox(mailpit, a, 1)
    occ = s["occurrences"][1]
    put_ok(f"{res_url}/reservations/{occ['id']}", headers, {"attendees": [b]})
    only_instance(mailpit, a, 2, f"series-{s['id']}@meeting-rooms", occ, "CANCEL")
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers, {"purpose": "Shared v2"})
    days = [first + datetime.timedelta(days=i) for i in range(3)]
    _, _, cal = parsed(mailpit, inbox(mailpit, a, 3)[-1])
    assert str(cal["METHOD"]) == "REQUEST"
    assert all("RECURRENCE-ID" not in e for e in vevents(cal))
    assert instance_days(cal, first) == [days[0], days[2]]
    for addr, count in ((b, 3), (org, 3)):
        _, _, cal = parsed(mailpit, inbox(mailpit, addr, count)[-1])
        assert instance_days(cal, first) == days, addr


def test_an_occurrence_only_attendee_dropped_by_a_series_change_gets_its_cancel(
        res_url, stack, mailpit, organizer, guests, berlin):
    """A series PUT with attendees gives them to its occurrences, replacing their own: b, who
    was invited to one occurrence only, is removed from it and gets a CANCEL of that instance
    naming b alone."""
    headers, _ = organizer
    a, b = guests
    s, occ = occurrence_only_series(res_url, mailpit, headers, berlin["id"], ahead(33),
                                    "Regrouped", guests)
    c = f"third-{uuid.uuid4().hex[:8]}@example.org"
    put_ok(f"{res_url}/reservations/series/{s['id']}", headers, {"attendees": [a, c]})
    _, ev = only_instance(mailpit, b, 2, f"series-{s['id']}@meeting-rooms", occ, "CANCEL")
    assert attendees_of(ev) == [f"mailto:{b.lower()}"]
    _, _, cal = parsed(mailpit, inbox(mailpit, c, 1)[0])
    first = ahead(33)
    assert instance_days(cal, first) == [first + datetime.timedelta(days=i) for i in range(3)]
    assert settle(mailpit, [b]) == {b: 2}
    assert res_db_query(stack.pg, "SELECT count(*) FROM mail_attendees_before") == [(0,)]
