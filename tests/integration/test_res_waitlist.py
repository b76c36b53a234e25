"""The waitlist (docs/api.md#waitlist): an entry only for a slot that is taken, refused at once
when no booking of that person could ever be made there, one per person and slot, at most 20
waiting; every path that frees time books the earliest entry that now fits in the same
transaction (cancel, shorten, move, a series cancelled, a pending booking rejected, a no-show
released at the service's clock), re-checking the room's rules for the waiting person (an entry
over its quota meanwhile is skipped for the next one); the booking's events and its invitation
mail (Mailpit); expiry at the start (read at once, swept by the releaser); who may read and
cancel an entry.  Review 15w: no waiting for a slot of one's own, rules set after joining
checked at the promotion, a disabled user's entry cancelled, an inactive room's entries booked
when it is active again, the list's cursor, webhooks of promotions, rejections and series
cancels promoting at the service's clock.  Every slot here lies days ahead: the clocked
services of this module (and of test_res_check_in.py) move their clocks by hours only."""
import datetime
import time
import uuid

import pytest
import requests

from harness import (
    assert_error,
    bearer,
    book,
    booked,
    create_room,
    operator_token,
    res_db_query,
    utc_at,
    utc_text,
    wait_known_room,
    wait_until,
)

POOL_BATCH = 16


@pytest.fixture(scope="module")
def people(stack):
    """Employees of this module: name -> (headers, user id, e-mail)."""
    tag = uuid.uuid4().hex[:6]
    out = {}
    for name in ("ann", "ben", "cat", "dan", "eve"):
        addr = f"wl-{name}-{tag}@example.com"
        token, uid = operator_token(stack.user, addr)
        out[name] = (bearer(token), uid, addr)
    return out


@pytest.fixture(scope="module")
def rules_room(stack, room_url, res_url, admin_headers):
    """rules_room(policies): a fresh room with those rules, once reservation-service holds
    them."""
    def make(policies, **fields):
        room = create_room(room_url, admin_headers, policies=policies, **fields)
        wait_known_room(res_url, admin_headers, room["id"])
        wait_until(lambda: res_db_query(stack.pg, "SELECT policies_known FROM rooms "
                                        "WHERE id = %s", room["id"]) == [(True,)],
                   timeout=30, what=f"room {room['id']}'s policies copied")
        return room["id"]
    return make


def join(url, headers, room_id, start, end, **extra):
    body = {"room_id": room_id, "start_time": start, "end_time": end}
    body.update(extra)
    return requests.post(f"{url}/waitlist", json=body, headers=headers, timeout=10)


def joined(url, headers, room_id, start, end, **extra):
    r = join(url, headers, room_id, start, end, **extra)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert r.headers["Location"] == f"/waitlist/{entry['id']}"
    assert entry["status"] == "waiting" and entry["reservation_id"] is None
    return entry


def entry_of(url, headers, eid):
    r = requests.get(f"{url}/waitlist/{eid}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def reservation(url, headers, rid):
    r = requests.get(f"{url}/reservations/{rid}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def events(stack, key, event_type):
    return [p for (p,) in res_db_query(stack.pg, "SELECT payload FROM outbox WHERE key = %s "
                                       "AND payload->>'event_type' = %s ORDER BY id",
                                       str(key), event_type)]


def promoted(stack, url, headers, entry, start, end, status="confirmed"):
    """entry was booked: its reservation is the waiting person's, for its times, with both
    events; returns the reservation."""
    got = entry_of(url, headers, entry["id"])
    assert got["status"] == "booked" and got["reservation_id"], got
    res = reservation(url, headers, got["reservation_id"])
    assert (res["user_id"], res["room_id"], res["start_time"], res["end_time"], res["status"]) \
        == (entry["user_id"], entry["room_id"], start, end, status), res
    [created] = events(stack, res["id"], "reservation_created")
    assert created["reservation"]["id"] == res["id"]
    [ev] = events(stack, res["id"], "waitlist_promoted")
    assert ev["entry"]["id"] == entry["id"] and ev["entry"]["status"] == "booked"
    assert ev["reservation_id"] == res["id"]
    return res


def still_waiting(url, headers, entry):
    assert entry_of(url, headers, entry["id"])["status"] == "waiting"


# ---- joining ----

def test_join_only_when_taken(res_url, pool, people):
    ann, ben = people["ann"], people["ben"]
    room = pool.take()["id"]
    start, end = utc_at(40, 9), utc_at(40, 10)
    r = join(res_url, ben[0], room, start, end)
    assert_error(r, 422, "validation_failed")
    assert "free" in r.json()["details"]["start_time"]
    booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end, purpose="planning")
    assert (entry["room_id"], entry["user_id"], entry["start_time"], entry["end_time"],
            entry["purpose"]) == (room, ben[1], start, end, "planning")
    assert set(entry) == {"id", "room_id", "user_id", "start_time", "end_time", "purpose",
                          "status", "reservation_id", "created_at", "updated_at"}
    # A part of the slot is taken too; the same times again are a duplicate.
    joined(res_url, ben[0], room, utc_at(40, 9, 30), utc_at(40, 10, 30))
    assert_error(join(res_url, ben[0], room, start, end), 409, "conflict")
    # Someone else may wait for the same slot.
    joined(res_url, people["cat"][0], room, start, end)


def test_join_validates_like_a_booking(res_url, pool, people, rules_room):
    ben = people["ben"][0]
    room = pool.take()["id"]
    r = join(res_url, ben, room, utc_at(41, 9), "soon")
    assert_error(r, 422, "validation_failed")
    assert "end_time" in r.json()["details"]
    r = requests.post(f"{res_url}/waitlist", json={"room_id": room, "start_time": utc_at(41, 9),
                                                   "end_time": utc_at(41, 10), "x": 1},
                      headers=ben, timeout=10)
    assert_error(r, 422, "validation_failed")
    assert "x" in r.json()["details"]
    r = join(res_url, ben, 2147480000, utc_at(41, 9), utc_at(41, 10))
    assert_error(r, 422, "validation_failed")
    assert "room_id" in r.json()["details"]
    r = join(res_url, ben, room, utc_at(41, 10), utc_at(41, 9))
    assert_error(r, 422, "validation_failed")
    r = join(res_url, ben, room, utc_at(-1, 9), utc_at(-1, 10))
    assert_error(r, 422, "validation_failed")
    assert "start_time" in r.json()["details"]
    # Rules that refuse the person whatever else is booked: at once, as a booking would.
    short = rules_room({"max_duration_minutes": 60})
    booked(res_url, people["ann"][0], short, utc_at(41, 9), utc_at(41, 10))
    r = join(res_url, ben, short, utc_at(41, 9), utc_at(41, 10, 30))
    assert_error(r, 422, "validation_failed")
    assert r.json()["details"]["policy"] == "max_duration_minutes"
    closed = rules_room({"allowed_roles": ["admin"]})
    r = join(res_url, ben, closed, utc_at(41, 9), utc_at(41, 10))
    assert_error(r, 422, "validation_failed")
    assert r.json()["details"]["policy"] == "allowed_roles"


def test_at_most_twenty_waiting(res_url, pool, people, stack):
    token, _ = operator_token(stack.user, f"wl-many-{uuid.uuid4().hex[:6]}@example.com")
    many = bearer(token)
    room = pool.take()["id"]
    for i in range(21):
        booked(res_url, people["ann"][0], room, utc_at(42 + i // 8, 8 + i % 8),
               utc_at(42 + i // 8, 9 + i % 8))
    for i in range(20):
        joined(res_url, many, room, utc_at(42 + i // 8, 8 + i % 8),
               utc_at(42 + i // 8, 9 + i % 8))
    r = join(res_url, many, room, utc_at(44, 12), utc_at(44, 13))
    assert_error(r, 409, "conflict")
    assert r.json()["details"] == {"max_waiting_entries": 20}
    assert "20" in r.json()["message"]
    # A cancelled one makes room for another.
    first = requests.get(f"{res_url}/waitlist", headers=many, params={"limit": 1},
                         timeout=10).json()[0]
    assert requests.delete(f"{res_url}/waitlist/{first['id']}", headers=many,
                           timeout=10).status_code == 204
    joined(res_url, many, room, utc_at(44, 12), utc_at(44, 13))


def test_the_gateway_routes_the_waitlist(gateway_url, people):
    r = requests.get(f"{gateway_url}/waitlist", headers=people["ann"][0], timeout=10,
                     allow_redirects=False)
    assert r.status_code == 200 and r.json() == [], r.text
    r = requests.get(f"{gateway_url}/waitlist/2147480000", headers=people["ann"][0], timeout=10,
                     allow_redirects=False)
    assert_error(r, 404, "not_found")
    assert "no waitlist entry" in r.json()["message"]


# ---- reading and cancelling ----

def test_who_may_read_and_cancel(res_url, pool, people, root):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = pool.take()["id"]
    start, end = utc_at(45, 9), utc_at(45, 10)
    booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    assert_error(requests.get(f"{res_url}/waitlist/{entry['id']}", headers=cat[0], timeout=10),
                 403, "forbidden")
    assert_error(requests.delete(f"{res_url}/waitlist/{entry['id']}", headers=cat[0],
                                 timeout=10), 403, "forbidden")
    assert_error(requests.get(f"{res_url}/waitlist/2147480000", headers=ben[0], timeout=10),
                 404, "not_found")
    assert_error(requests.get(f"{res_url}/waitlist", headers=cat[0],
                              params={"user_id": ben[1]}, timeout=10), 403, "forbidden")
    assert entry_of(res_url, root, entry["id"]) == entry
    mine = requests.get(f"{res_url}/waitlist", headers=ben[0], timeout=10).json()
    assert entry["id"] in [e["id"] for e in mine]
    assert all(e["user_id"] == ben[1] for e in mine)
    theirs = requests.get(f"{res_url}/waitlist", headers=root, params={"user_id": ben[1]},
                          timeout=10).json()
    assert [e["id"] for e in theirs] == [e["id"] for e in mine]
    assert entry["id"] not in [e["id"] for e in requests.get(
        f"{res_url}/waitlist", headers=cat[0], timeout=10).json()]
    # The owner cancels (again: the same answer); an admin may cancel anyone's.
    for _ in range(2):
        assert requests.delete(f"{res_url}/waitlist/{entry['id']}", headers=ben[0],
                               timeout=10).status_code == 204
    assert entry_of(res_url, ben[0], entry["id"])["status"] == "cancelled"
    other = joined(res_url, cat[0], room, start, end)
    assert requests.delete(f"{res_url}/waitlist/{other['id']}", headers=root,
                           timeout=10).status_code == 204
    listed = requests.get(f"{res_url}/waitlist", headers=cat[0],
                          params={"status": "cancelled"}, timeout=10).json()
    assert other["id"] in [e["id"] for e in listed]
    assert_error(requests.get(f"{res_url}/waitlist", headers=cat[0],
                              params={"status": "sleeping"}, timeout=10), 400, "bad_request")


# ---- the paths that free time ----

def test_cancel_books_the_earliest_entry(stack, res_url, pool, people):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = pool.take()["id"]
    start, end = utc_at(46, 9), utc_at(46, 10)
    held = booked(res_url, ann[0], room, start, end)
    first = joined(res_url, ben[0], room, start, end, purpose="first")
    second = joined(res_url, cat[0], room, start, end)
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    res = promoted(stack, res_url, ben[0], first, start, end)
    assert res["purpose"] == "first" and res["organizer_email"] == ben[2]
    still_waiting(res_url, cat[0], second)
    # The booking is an ordinary one: the slot is taken again, and its owner may cancel it,
    # which books the next entry.
    assert_error(book(res_url, people["dan"][0], room, start, end), 409, "conflict")
    assert requests.delete(f"{res_url}/reservations/{res['id']}", headers=ben[0],
                           timeout=10).status_code == 204
    promoted(stack, res_url, cat[0], second, start, end)
    # A booked entry is no longer waiting: it cannot be cancelled (its reservation can).
    r = requests.delete(f"{res_url}/waitlist/{first['id']}", headers=ben[0], timeout=10)
    assert_error(r, 409, "conflict")
    assert r.json()["details"]["status"] == "booked"


def test_shortening_books_the_freed_part(stack, res_url, pool, people):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = pool.take()["id"]
    held = booked(res_url, ann[0], room, utc_at(47, 9), utc_at(47, 12))
    late = joined(res_url, ben[0], room, utc_at(47, 11), utc_at(47, 12))
    early = joined(res_url, cat[0], room, utc_at(47, 9), utc_at(47, 10))
    r = requests.put(f"{res_url}/reservations/{held['id']}", headers=ann[0], timeout=10,
                     json={"end_time": utc_at(47, 11)})
    assert r.status_code == 200, r.text
    promoted(stack, res_url, ben[0], late, utc_at(47, 11), utc_at(47, 12))
    still_waiting(res_url, cat[0], early)


def test_moving_books_the_old_slot(stack, res_url, pool, people):
    ann, ben = people["ann"], people["ben"]
    room, other = pool.take()["id"], pool.take()["id"]
    start, end = utc_at(48, 9), utc_at(48, 10)
    held = booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    # To another room: the old one's slot frees.
    r = requests.put(f"{res_url}/reservations/{held['id']}", headers=ann[0], timeout=10,
                     json={"room_id": other})
    assert r.status_code == 200, r.text
    promoted(stack, res_url, ben[0], entry, start, end)
    # To other times in the same room.
    held = booked(res_url, ann[0], other, utc_at(48, 14), utc_at(48, 15))
    entry = joined(res_url, ben[0], other, utc_at(48, 14), utc_at(48, 15))
    r = requests.put(f"{res_url}/reservations/{held['id']}", headers=ann[0], timeout=10,
                     json={"start_time": utc_at(48, 16), "end_time": utc_at(48, 17)})
    assert r.status_code == 200, r.text
    promoted(stack, res_url, ben[0], entry, utc_at(48, 14), utc_at(48, 15))


def test_series_cancel_books_an_occurrence_slot(stack, res_url, pool, people):
    ann, ben = people["ann"], people["ben"]
    room = pool.take()["id"]
    r = requests.post(f"{res_url}/reservations", headers=ann[0], timeout=10,
                      json={"room_id": room, "start_time": utc_at(49, 9),
                            "end_time": utc_at(49, 10), "recurrence": "FREQ=DAILY;COUNT=3"})
    assert r.status_code == 201, r.text
    series = r.json()
    entry = joined(res_url, ben[0], room, utc_at(50, 9), utc_at(50, 10))
    assert requests.delete(f"{res_url}/reservations/series/{series['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    promoted(stack, res_url, ben[0], entry, utc_at(50, 9), utc_at(50, 10))


def test_series_edits_and_cuts_book_the_freed_occurrence_slots(stack, res_url, pool, people):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = pool.take()["id"]
    r = requests.post(f"{res_url}/reservations", headers=ann[0], timeout=10,
                      json={"room_id": room, "start_time": utc_at(54, 9),
                            "end_time": utc_at(54, 10), "recurrence": "FREQ=DAILY;COUNT=3"})
    assert r.status_code == 201, r.text
    series = r.json()
    moved = joined(res_url, ben[0], room, utc_at(54, 9), utc_at(54, 10))
    # The whole series moves to 13:00: every 9:00 frees.
    r = requests.put(f"{res_url}/reservations/series/{series['id']}", headers=ann[0],
                     timeout=10, json={"start_time": utc_at(54, 13), "end_time": utc_at(54, 14)})
    assert r.status_code == 200, r.text
    promoted(stack, res_url, ben[0], moved, utc_at(54, 9), utc_at(54, 10))
    cut = joined(res_url, cat[0], room, utc_at(56, 13), utc_at(56, 14))
    # Cut at the last occurrence: its 13:00 frees.
    last = r.json()["occurrences"][2]["id"]
    r = requests.delete(f"{res_url}/reservations/{last}", headers=ann[0], timeout=10,
                        params={"scope": "this_and_following"})
    assert r.status_code == 204, r.text
    promoted(stack, res_url, cat[0], cut, utc_at(56, 13), utc_at(56, 14))


def test_a_deleted_users_bookings_go_to_the_waitlist(stack, res_url, pool, people, root):
    ben = people["ben"]
    token, uid = operator_token(stack.user, f"wl-leaver-{uuid.uuid4().hex[:6]}@example.com")
    leaver = bearer(token)
    room = pool.take()["id"]
    start, end = utc_at(57, 9), utc_at(57, 10)
    booked(res_url, leaver, room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    # The leaver waits elsewhere too: that entry is cancelled with the account.
    other = pool.take()["id"]
    booked(res_url, ben[0], other, start, end)
    theirs = joined(res_url, leaver, other, start, end)
    r = requests.delete(f"{stack.user.url}/admin/users/{uid}", headers=root, timeout=10)
    assert r.status_code == 204, r.text
    wait_until(lambda: entry_of(res_url, ben[0], entry["id"])["status"] == "booked",
               timeout=30, what="the user_deleted event consumed")
    promoted(stack, res_url, ben[0], entry, start, end)
    assert entry_of(res_url, root, theirs["id"])["status"] == "cancelled"


def test_a_deleted_rooms_entries_are_cancelled(stack, room_url, res_url, people, root):
    ann, ben = people["ann"], people["ben"]
    room = create_room(room_url, root)["id"]
    wait_known_room(res_url, root, room)
    start, end = utc_at(58, 9), utc_at(58, 10)
    booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    r = requests.delete(f"{room_url}/rooms/{room}", headers=root, timeout=10)
    assert r.status_code == 204, r.text
    # The room's bookings are cancelled with it; nobody is booked into a deleted room.
    wait_until(lambda: entry_of(res_url, ben[0], entry["id"])["status"] == "cancelled",
               timeout=30, what="the room_deleted event consumed")
    assert entry_of(res_url, ben[0], entry["id"])["reservation_id"] is None


def test_rejecting_a_pending_booking_books_the_entry(stack, res_url, people, rules_room, root):
    ann, ben = people["ann"], people["ben"]
    room = rules_room({"requires_approval": True})
    start, end = utc_at(51, 9), utc_at(51, 10)
    held = booked(res_url, ann[0], room, start, end)
    assert held["status"] == "pending"
    entry = joined(res_url, ben[0], room, start, end)
    r = requests.post(f"{res_url}/reservations/{held['id']}/reject", headers=root, timeout=10,
                      json={"reason": "not this week"})
    assert r.status_code == 200, r.text
    # The room requires approval: the booked entry waits for an admin as any booking would.
    res = promoted(stack, res_url, ben[0], entry, start, end, status="pending")
    r = requests.post(f"{res_url}/reservations/{res['id']}/approve", headers=root, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text


def test_an_entry_over_its_quota_is_skipped(stack, res_url, people, rules_room):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = rules_room({"max_bookings_per_user_per_day": 1})
    start, end = utc_at(52, 9), utc_at(52, 10)
    held = booked(res_url, ann[0], room, start, end)
    first = joined(res_url, ben[0], room, start, end)
    second = joined(res_url, cat[0], room, start, end)
    # Meanwhile ben books the room once that day: his quota is reached.
    booked(res_url, ben[0], room, utc_at(52, 14), utc_at(52, 15))
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    promoted(stack, res_url, cat[0], second, start, end)
    still_waiting(res_url, ben[0], first)


def test_the_promoted_person_gets_the_invitation(stack, res_url, pool, people, mailpit):
    ann = people["ann"]
    addr = f"wl-mail-{uuid.uuid4().hex[:8]}@example.com"
    token, _ = operator_token(stack.user, addr, name="Wanda Waiting")
    wanda = bearer(token)
    room = pool.take()["id"]
    start, end = utc_at(53, 9), utc_at(53, 10)
    held = booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, wanda, room, start, end, purpose="Waited for it")
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    res = promoted(stack, res_url, wanda, entry, start, end)
    [msg] = mailpit.wait_messages(1, query=f'to:"{addr}"', timeout=45)
    assert msg["Subject"].startswith("Invitation: Waited for it @ "), msg["Subject"]
    assert [t["Address"] for t in msg["To"]] == [addr]
    assert str(res["id"]) in mailpit.raw(msg["ID"]).decode("utf-8", "replace")


# ---- review 15w: own slots, re-checks at promotion, revoked users, inactive rooms ----

def test_no_waiting_for_a_slot_of_ones_own(res_url, pool, people):
    """Review 15w L2: waiting for a slot one's own booking holds would re-book it when one
    cancels it: refused, naming start_time."""
    ann, ben = people["ann"], people["ben"]
    room = pool.take()["id"]
    mine = booked(res_url, ann[0], room, utc_at(101, 9), utc_at(101, 10))
    booked(res_url, ben[0], room, utc_at(101, 10), utc_at(101, 11))
    for start, end in ((utc_at(101, 9), utc_at(101, 10)), (utc_at(101, 9), utc_at(101, 11))):
        r = join(res_url, ann[0], room, start, end)
        assert_error(r, 422, "validation_failed")
        assert "your own reservation" in r.json()["details"]["start_time"]
        assert str(mine["id"]) in r.json()["message"]
    # Someone else's booking alone: waiting is fine.
    joined(res_url, ann[0], room, utc_at(101, 10), utc_at(101, 11))


def put_policies(stack, room_url, admin_headers, rid, policies):
    r = requests.put(f"{room_url}/rooms/{rid}", headers=admin_headers, timeout=10,
                     json={"policies": policies})
    assert r.status_code == 200, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT policies FROM rooms WHERE id = %s", rid)
               == [(policies,)], timeout=30, what="the policies copied")


@pytest.mark.parametrize("later", [
    # Opening hours that no longer hold the slot (9:00-10:00 UTC; the room's zone is UTC).
    {"opening_hours": {d: [["12:00", "18:00"]] for d in
                       ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}},
    # The room restricted to admins (the entry's role, employee, no longer allowed).
    {"allowed_roles": ["admin"]},
    # Bookings no more than 30 days ahead.
    {"max_advance_days": 30},
    # A longest booking under the entry's hour.
    {"max_duration_minutes": 30},
], ids=["opening_hours", "allowed_roles", "max_advance_days", "max_duration"])
def test_rules_set_after_joining_are_checked_at_promotion(stack, res_url, room_url,
                                                         admin_headers, people, rules_room,
                                                         later):
    """Review 15w L7: a rule of the room set after the entry was made keeps it waiting when the
    slot frees (the next entry, of an admin, gets it where the rule lets it)."""
    ann, ben = people["ann"], people["ben"]
    room = rules_room({"buffer_minutes": 0}, time_zone="UTC")
    start, end = utc_at(102, 9), utc_at(102, 10)
    held = booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    put_policies(stack, room_url, admin_headers, room, later)
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    still_waiting(res_url, ben[0], entry)
    assert events(stack, held["id"], "reservation_cancelled")
    assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE room_id = %s "
                                  "AND status IN ('confirmed', 'pending')", room) == [(0,)]


def test_approval_required_after_joining_books_pending(stack, res_url, room_url, admin_headers,
                                                      people, rules_room):
    ann, ben = people["ann"], people["ben"]
    room = rules_room({"buffer_minutes": 0})
    start, end = utc_at(103, 9), utc_at(103, 10)
    held = booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    put_policies(stack, room_url, admin_headers, room, {"requires_approval": True})
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    promoted(stack, res_url, ben[0], entry, start, end, status="pending")


def test_a_buffer_raised_after_booking_promotes_the_entry_just_after(stack, res_url, room_url,
                                                                    admin_headers, people,
                                                                    rules_room):
    """Review 15c M2: a booking made while the room had no buffer keeps its own buffer_s of 0,
    but the join counts the room's current buffer before an entry's start too (11:05 is within
    15 minutes of 11:00: taken).  Its cancellation must then offer that entry the slot: the
    promotion widens entries by the room's current buffer on both sides."""
    ann, ben = people["ann"], people["ben"]
    room = rules_room({"buffer_minutes": 0}, time_zone="UTC")
    held = booked(res_url, ann[0], room, utc_at(104, 10), utc_at(104, 11))
    put_policies(stack, room_url, admin_headers, room, {"buffer_minutes": 15})
    start, end = utc_at(104, 11, 5), utc_at(104, 12)
    entry = joined(res_url, ben[0], room, start, end)
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    promoted(stack, res_url, ben[0], entry, start, end)


def test_a_disabled_users_entry_is_cancelled_and_the_next_one_booked(stack, res_url, pool,
                                                                     people, admin_headers):
    """Review 15w L7: an entry whose user's tokens were revoked since (disabled here) is
    cancelled at the promotion; the next entry gets the slot."""
    ann, ben = people["ann"], people["ben"]
    token, uid = operator_token(stack.user, f"wl-gone-{uuid.uuid4().hex[:6]}@example.com")
    room = pool.take()["id"]
    start, end = utc_at(104, 9), utc_at(104, 10)
    held = booked(res_url, ann[0], room, start, end)
    first = joined(res_url, bearer(token), room, start, end)
    second = joined(res_url, ben[0], room, start, end)
    r = requests.put(f"{stack.user.url}/admin/users/{uid}", json={"disabled": True},
                     headers=admin_headers, timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT count(*) FROM token_revocations "
                                    "WHERE user_id = %s", uid) == [(1,)],
               timeout=30, what="the revocation known to reservation-service")
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    assert res_db_query(stack.pg, "SELECT status FROM waitlist WHERE id = %s",
                        first["id"]) == [("cancelled",)]
    promoted(stack, res_url, ben[0], second, start, end)


def set_active(stack, room_url, admin_headers, rid, active):
    r = requests.put(f"{room_url}/rooms/{rid}", json={"active": active}, headers=admin_headers,
                     timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT active FROM rooms WHERE id = %s", rid)
               == [(active,)], timeout=30, what=f"room {rid} active={active} copied")


def test_an_inactive_room_refuses_joins_and_promotes_when_active_again(stack, res_url, room_url,
                                                                       admin_headers, people):
    """Review 15w nit: time freed while a room is inactive is not handed out then; it goes to
    the room's waiting entries when the room is made active again."""
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = create_room(room_url, admin_headers)["id"]
    wait_known_room(res_url, admin_headers, room)
    start, end = utc_at(105, 9), utc_at(105, 10)
    held = booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    set_active(stack, room_url, admin_headers, room, False)
    assert_error(join(res_url, cat[0], room, start, end), 422, "validation_failed")
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                           timeout=10).status_code == 204
    still_waiting(res_url, ben[0], entry)
    set_active(stack, room_url, admin_headers, room, True)
    promoted(stack, res_url, ben[0], entry, start, end)


# ---- reading: pagination; webhooks of promotions ----

def test_the_list_pages_with_its_cursor(stack, res_url, pool, people):
    token, _ = operator_token(stack.user, f"wl-pages-{uuid.uuid4().hex[:6]}@example.com")
    walker = bearer(token)
    room = pool.take()["id"]
    made = []
    for h in range(5):
        booked(res_url, people["ann"][0], room, utc_at(106, 8 + h), utc_at(106, 9 + h))
        made.append(joined(res_url, walker, room, utc_at(106, 8 + h), utc_at(106, 9 + h))["id"])
    seen, url, params = [], f"{res_url}/waitlist", {"limit": 2}
    while url:
        r = requests.get(url, headers=walker, params=params, timeout=10)
        assert r.status_code == 200, r.text
        assert len(r.json()) <= 2
        seen += [e["id"] for e in r.json()]
        url, params = r.links.get("next", {}).get("url"), None
        if url and url.startswith("/"):
            url = res_url + url
    assert seen == sorted(made, reverse=True)
    for bad in ("not-base64!", "WyJ4Il0", "WyIxIiwgIngiXQ"):  # junk, ["x"], ["1", "x"]
        r = requests.get(f"{res_url}/waitlist", headers=walker, params={"cursor": bad},
                         timeout=10)
        assert_error(r, 400, "bad_request")
        assert r.json()["details"] == {"cursor": "is invalid"}


def test_webhooks_may_subscribe_to_promotions(stack, res_url, pool, people, root):
    """Review 15w L9: waitlist_promoted is a type a webhook may subscribe to; a promotion
    queues its delivery."""
    ann, ben = people["ann"], people["ben"]
    r = requests.post(f"{res_url}/webhooks", headers=root, timeout=10,
                      json={"url": "http://127.0.0.1:9/promoted",
                            "events": ["waitlist_promoted"], "secret": "s" * 24})
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    try:
        room = pool.take()["id"]
        start, end = utc_at(107, 9), utc_at(107, 10)
        held = booked(res_url, ann[0], room, start, end)
        entry = joined(res_url, ben[0], room, start, end)
        assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=ann[0],
                               timeout=10).status_code == 204
        res = promoted(stack, res_url, ben[0], entry, start, end)
        rows = res_db_query(stack.pg, "SELECT key, payload->>'event_type' FROM deliveries "
                                      "WHERE kind = 'webhook' AND target = %s", str(hook))
        assert rows == [(str(res["id"]), "waitlist_promoted")], rows
    finally:
        requests.delete(f"{res_url}/webhooks/{hook}", headers=root, timeout=10)


def test_finished_entries_are_found_by_reservation(stack):
    """Review 15w M3: the foreign key's check of a deleted reservation probes an index."""
    plan = res_db_query(stack.pg, "SET enable_seqscan = off; "
                                  "EXPLAIN SELECT 1 FROM waitlist WHERE reservation_id = 1")
    assert "waitlist_reservation" in " ".join(line for (line,) in plan), plan


# ---- the service's clock: expiry and the no-show releaser ----

@pytest.fixture(scope="module")
def clocked(stack):
    svc = stack.reservation_service(tag="reservation-waitlist", TEST_CLOCK="true",
                                    RELEASE_INTERVAL_MS="200").start()
    try:
        yield svc
    finally:
        svc.stop()


def set_clock(svc, headers, at):
    r = requests.put(f"{svc.url}/internal/test-clock",
                     json={"offset_s": int(at) - int(time.time())}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def near_slot(hours_ahead, minutes=60):
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    start = now + datetime.timedelta(hours=hours_ahead)
    return (int(start.timestamp()), utc_text(start),
            utc_text(start + datetime.timedelta(minutes=minutes)))


def test_entries_expire_at_their_start(stack, clocked, res_url, pool, people, root):
    ann, ben = people["ann"], people["ben"]
    room = pool.take()["id"]
    start_s, start, end = near_slot(2)
    booked(res_url, ann[0], room, start, end)
    entry = joined(res_url, ben[0], room, start, end)
    try:
        set_clock(clocked, root, start_s - 5)
        assert entry_of(clocked.url, ben[0], entry["id"])["status"] == "waiting"
        set_clock(clocked, root, start_s)
        # Read as expired at once, and swept by the releaser's tick.
        assert entry_of(clocked.url, ben[0], entry["id"])["status"] == "expired"
        wait_until(lambda: res_db_query(stack.pg, "SELECT status FROM waitlist WHERE id = %s",
                                        entry["id"]) == [("expired",)],
                   timeout=10, what="the entry swept")
        assert entry_of(res_url, ben[0], entry["id"])["status"] == "expired"
        r = requests.delete(f"{clocked.url}/waitlist/{entry['id']}", headers=ben[0], timeout=10)
        assert_error(r, 409, "conflict")
        assert r.json()["details"]["status"] == "expired"
    finally:
        set_clock(clocked, root, time.time())


def test_a_released_no_show_books_the_rest_of_its_slot(stack, clocked, res_url, people,
                                                        rules_room, root):
    ann, ben, cat = people["ann"], people["ben"], people["cat"]
    room = rules_room({"check_in_required": True, "check_in_window_minutes": 15,
                       "release_after_minutes": 10})
    start_s, start, end = near_slot(4, minutes=120)
    held = booked(res_url, ann[0], room, start, end)
    half = utc_text(datetime.datetime.fromtimestamp(start_s + 3600, datetime.UTC))
    rest = joined(res_url, ben[0], room, half, end)
    # An entry for the whole slot has begun by the time of the release: it expires instead.
    whole = joined(res_url, cat[0], room, start, end)
    try:
        set_clock(clocked, root, start_s + 10 * 60)
        wait_until(lambda: reservation(res_url, ann[0], held["id"])["status"] == "cancelled",
                   timeout=10, what="the no-show released")
        assert reservation(res_url, ann[0], held["id"])["cancel_reason"] == "no_show"
        promoted(stack, res_url, ben[0], rest, half, end)
        assert entry_of(clocked.url, cat[0], whole["id"])["status"] == "expired"
    finally:
        set_clock(clocked, root, time.time())


def at_text(s):
    return utc_text(datetime.datetime.fromtimestamp(s, datetime.UTC))


@pytest.mark.parametrize("freeing", ["reject", "series_cancel"])
def test_rejections_and_series_cancels_promote_at_the_services_clock(stack, clocked, res_url,
                                                                     people, rules_room, root,
                                                                     freeing):
    """Review 15w L4: the promotion of a rejection and of a series cancel runs at the service's
    clock, not the database's: an entry whose start has passed at the service's clock (30
    minutes before the freed booking's) is not booked."""
    ann, ben = people["ann"], people["ben"]
    start_s, start, end = near_slot(6 if freeing == "reject" else 7)
    if freeing == "reject":
        room = rules_room({"requires_approval": True})
        held = booked(res_url, ann[0], room, start, end)
        assert held["status"] == "pending"
    else:
        room = rules_room({"buffer_minutes": 0})
        r = requests.post(f"{res_url}/reservations", headers=ann[0], timeout=10,
                          json={"room_id": room, "start_time": start, "end_time": end,
                                "recurrence": "FREQ=DAILY;COUNT=2"})
        assert r.status_code == 201, r.text
        held = r.json()
    entry = joined(res_url, ben[0], room, at_text(start_s - 1800), at_text(start_s + 1800))
    try:
        set_clock(clocked, root, start_s - 1200)
        if freeing == "reject":
            r = requests.post(f"{clocked.url}/reservations/{held['id']}/reject", headers=root,
                              json={"reason": "no"}, timeout=10)
            assert r.status_code == 200, r.text
        else:
            r = requests.delete(f"{clocked.url}/reservations/series/{held['id']}",
                                headers=ann[0], timeout=10)
            assert r.status_code == 204, r.text
        assert entry_of(clocked.url, ben[0], entry["id"])["status"] == "expired"
        assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE room_id = %s "
                                      "AND user_id = %s", room, ben[1]) == [(0,)]
    finally:
        set_clock(clocked, root, time.time())
