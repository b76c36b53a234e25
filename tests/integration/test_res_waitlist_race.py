"""Waitlist promotion under races (docs/api.md#waitlist): no double booking can arise from it.
Many clients book a slot at the moment its holder cancels (or shortens) it while several
entries wait: the promotion happens in the freeing transaction, under the room's lock, so the
earliest entries get the freed time and every racing client a 409 -- never an overlap, a 5xx or
a deadlock.  Two cancellations at once that free the two halves one entry waits for: it is
booked exactly once.  The lock order rooms -> series -> reservations of every freeing writer
(review 15w M1, M2), driven into the interleavings that deadlocked; joins at the limit of 20,
a join and a DELETE of an entry racing a promotion; an entry held by its owner's DELETE is
waited for, not skipped, and someone else's DELETE holds nothing (L3)."""
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from harness import (
    bearer,
    booked,
    operator_token,
    res_db_query,
    utc_at,
    wait_until,
)

RACERS = 24
CLOSE = {"Connection": "close"}


@pytest.fixture(scope="module")
def crowd(stack):
    """Employees: holders, waiting people and racers, as (headers, id)."""
    tag = uuid.uuid4().hex[:6]
    out = []
    for i in range(12):
        token, uid = operator_token(stack.user, f"wl-race{i}-{tag}@example.com")
        out.append((dict(bearer(token), **CLOSE), uid))
    return out


def join(url, headers, room, start, end):
    r = requests.post(f"{url}/waitlist", headers=headers, timeout=30,
                      json={"room_id": room, "start_time": start, "end_time": end})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def statuses(pg, ids):
    return dict(res_db_query(pg, "SELECT id, status FROM waitlist WHERE id = ANY(%s)", ids))


def overlaps(pg, rooms):
    """Pairs of active reservations of these rooms whose times (with buffers) meet."""
    return res_db_query(pg, "SELECT a.id, b.id FROM reservations a JOIN reservations b "
                            "ON a.room_id = b.room_id AND a.id < b.id "
                            "AND res_busy(a.start_time, a.end_time, a.buffer_s) && "
                            "    res_busy(b.start_time, b.end_time, b.buffer_s) "
                            "WHERE a.room_id = ANY(%s) "
                            "AND a.status IN ('confirmed', 'pending') "
                            "AND b.status IN ('confirmed', 'pending')", rooms)


def active_in(pg, room):
    return res_db_query(pg, "SELECT user_id, start_time, end_time FROM reservations "
                            "WHERE room_id = %s AND status IN ('confirmed', 'pending') "
                            "ORDER BY start_time", room)


def race(freeing, bookings):
    """Runs freeing() and every booking() at once; returns (freeing's status, bookings')."""
    go = threading.Barrier(len(bookings) + 1)

    def run(fn):
        go.wait()
        return fn()

    with ThreadPoolExecutor(max_workers=len(bookings) + 1) as ex:
        first = ex.submit(run, freeing)
        rest = [ex.submit(run, b) for b in bookings]
        return first.result().status_code, [f.result().status_code for f in rest]


def post_booking(url, headers, room, start, end):
    return requests.post(f"{url}/reservations", headers=headers, timeout=60,
                         json={"room_id": room, "start_time": start, "end_time": end})


def cancel_race_round(stack, res_url, room, day, holder, waiting, racers):
    start, end = utc_at(day, 9), utc_at(day, 10)
    held = booked(res_url, holder[0], room, start, end)
    entries = [join(res_url, w[0], room, start, end) for w in waiting]
    heads = [racers[i % len(racers)][0] for i in range(RACERS)]
    cancel, got = race(
        lambda: requests.delete(f"{res_url}/reservations/{held['id']}", headers=holder[0],
                                timeout=60),
        [lambda h=h: post_booking(res_url, h, room, start, end) for h in heads])
    assert cancel == 204
    # The freed slot went to the first entry in the cancel's own transaction: no racer could
    # see it free.
    assert got == [409] * RACERS, got
    assert statuses(stack.pg, entries) == {entries[0]: "booked", entries[1]: "waiting",
                                           entries[2]: "waiting"}
    [(uid, _, _)] = active_in(stack.pg, room)
    assert uid == waiting[0][1]
    assert overlaps(stack.pg, [room]) == []
    [(n,)] = res_db_query(stack.pg, "SELECT count(*) FROM outbox WHERE payload->>'event_type'"
                                    " = 'waitlist_promoted' AND (payload->'entry'->>'id')"
                                    "::bigint = ANY(%s)", entries)
    assert n == 1


def test_bookings_race_a_cancel_while_entries_wait(stack, res_url, pool, crowd):
    for round_ in range(4):
        cancel_race_round(stack, res_url, pool.take()["id"], 60 + round_, crowd[0], crowd[1:4],
                          crowd[4:])


def test_bookings_race_a_shortening_while_entries_wait(stack, res_url, pool, crowd):
    holder, racers = crowd[0], crowd[4:]
    room = pool.take()["id"]
    held = booked(res_url, holder[0], room, utc_at(65, 9), utc_at(65, 12))
    # Two entries for the two freed hours, and one for the hour kept.
    late = [join(res_url, crowd[1][0], room, utc_at(65, 10), utc_at(65, 11)),
            join(res_url, crowd[2][0], room, utc_at(65, 11), utc_at(65, 12)),
            join(res_url, crowd[3][0], room, utc_at(65, 9), utc_at(65, 10))]

    heads = [(racers[i % len(racers)][0], 10 + i % 2) for i in range(RACERS)]
    shorten, got = race(
        lambda: requests.put(f"{res_url}/reservations/{held['id']}", headers=holder[0],
                             timeout=60, json={"end_time": utc_at(65, 10)}),
        [lambda h=h, hr=hr: post_booking(res_url, h, room, utc_at(65, hr), utc_at(65, hr + 1))
         for h, hr in heads])
    assert shorten == 200
    assert got == [409] * RACERS, got
    assert statuses(stack.pg, late) == {late[0]: "booked", late[1]: "booked",
                                        late[2]: "waiting"}
    assert [u for u, _, _ in active_in(stack.pg, room)] == [holder[1], crowd[1][1], crowd[2][1]]
    assert overlaps(stack.pg, [room]) == []


@pytest.mark.parametrize("round_", range(4))
def test_two_cancels_free_the_halves_one_entry_waits_for(stack, res_url, pool, crowd, round_):
    a, b, c = crowd[0], crowd[1], crowd[2]
    room = pool.take()["id"]
    day = 70 + round_
    first = booked(res_url, a[0], room, utc_at(day, 9), utc_at(day, 10))
    second = booked(res_url, b[0], room, utc_at(day, 10), utc_at(day, 11))
    entry = join(res_url, c[0], room, utc_at(day, 9), utc_at(day, 11))
    go = threading.Barrier(2)

    def cancel(res, who):
        go.wait()
        return requests.delete(f"{res_url}/reservations/{res['id']}", headers=who[0],
                               timeout=60).status_code
    with ThreadPoolExecutor(max_workers=2) as ex:
        done = [ex.submit(cancel, first, a), ex.submit(cancel, second, b)]
        assert [f.result() for f in done] == [204, 204]
    assert statuses(stack.pg, [entry]) == {entry: "booked"}
    [(uid, start, end)] = active_in(stack.pg, room)
    assert uid == c[1] and (end - start).total_seconds() == 7200
    assert overlaps(stack.pg, [room]) == []
    [(n,)] = res_db_query(stack.pg, "SELECT count(*) FROM outbox WHERE payload->>'event_type' "
                                    "= 'waitlist_promoted' AND payload->'entry'->>'id' = %s",
                          str(entry))
    assert n == 1


# ---- lock order (review 15w M1, M2) ----

def deadlocks_logged(stack):
    with open(os.path.join(stack.pg.dir, "log"), encoding="utf-8", errors="replace") as f:
        return f.read().count("deadlock detected")


def lock_waiters(stack, but):
    """Backends of the reservation database waiting for a lock, other than pid but."""
    [(n,)] = res_db_query(stack.pg, "SELECT count(DISTINCT l.pid) FROM pg_locks l "
                                    "JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted "
                                    "AND a.datname = current_database() AND a.pid <> %s", but)
    return n


class Held:
    """A connection of the test holding locks until release(): the writers under test queue
    behind it in the order the test starts them."""

    def __init__(self, stack, *statements):
        self.conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
        self.stack = stack
        cur = self.conn.cursor()
        for sql, params in statements:
            cur.execute(sql, params)

    def wait_for(self, n, what):
        wait_until(lambda: lock_waiters(self.stack, self.conn.get_backend_pid()) >= n,
                   timeout=30, interval=0.05, what=what)

    def release(self):
        self.conn.rollback()
        self.conn.close()

    def commit(self):
        self.conn.commit()
        self.conn.close()


def series_with_moved_last(res_url, owner, room, other, day):
    """A daily series of 3 at 9:00 in room whose last occurrence was moved to other."""
    r = requests.post(f"{res_url}/reservations", headers=owner, timeout=10,
                      json={"room_id": room, "start_time": utc_at(day, 9),
                            "end_time": utc_at(day, 10), "recurrence": "FREQ=DAILY;COUNT=3"})
    assert r.status_code == 201, r.text
    series = r.json()
    last = series["occurrences"][2]["id"]
    r = requests.put(f"{res_url}/reservations/{last}", headers=owner, timeout=10,
                     json={"room_id": other})
    assert r.status_code == 200, r.text
    return series, last


def test_a_series_put_and_a_delete_of_its_moved_occurrence_do_not_deadlock(stack, res_url, pool,
                                                                            crowd):
    """Review 15w M1: the series PUT that cancels an occurrence moved to another room locks that
    room first.  Interleaving: the PUT holds the occurrence and is paused before its events
    (the webhooks table, read by the outbox's trigger, is held); the DELETE of that occurrence
    locks its room and waits; the PUT goes on and commits.  Before, the PUT took that room
    only in its commit-time promotion, after the occurrence: a deadlock (40P01, a 1 s stall
    and a retry)."""
    owner, waiting = crowd[0], crowd[1]
    room, other = pool.take()["id"], pool.take()["id"]
    series, last = series_with_moved_last(res_url, owner[0], room, other, 80)
    entry = join(res_url, waiting[0], other, utc_at(82, 9), utc_at(82, 10))
    before = deadlocks_logged(stack)
    held = Held(stack, ("LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE", None))
    with ThreadPoolExecutor(2) as ex:
        try:
            put = ex.submit(requests.put, f"{res_url}/reservations/series/{series['id']}",
                            headers=owner[0], timeout=60,
                            json={"recurrence": "FREQ=DAILY;COUNT=2"})
            held.wait_for(1, "the series PUT paused")
            delete = ex.submit(requests.delete, f"{res_url}/reservations/{last}",
                               headers=owner[0], timeout=60)
            held.wait_for(2, "the DELETE of the occurrence waiting")
        finally:
            held.release()
        assert put.result().status_code == 200, put.result().text
        assert delete.result().status_code == 204, delete.result().text
    time.sleep(0.2)
    assert deadlocks_logged(stack) - before == 0
    assert res_db_query(stack.pg, "SELECT status FROM reservations WHERE id = %s",
                        last) == [("cancelled",)]
    # The freed slot of the other room went to its entry, in the PUT's transaction.
    assert statuses(stack.pg, [entry]) == {entry: "booked"}
    assert [u for u, _, _ in active_in(stack.pg, other)] == [waiting[1]]


def test_a_room_deletion_and_a_series_cancel_do_not_deadlock(stack, room_url, res_url, pool,
                                                             crowd, admin_headers):
    """Review 15w M2: a room deletion locks its room with the rooms of its series' occurrences
    in id order, as a series cancel does.  Interleaving: a lower room (holding an occurrence of
    the deleted room's series) is held; the series cancel waits for it, then the deletion
    arrives.  Before, the deletion locked its room first (the tombstone), then waited for the
    lower one, which the series cancel got and then waited for the deleted room: 40P01."""
    owner = crowd[0]
    low, high = sorted([pool.take()["id"], pool.take()["id"]])
    series, last = series_with_moved_last(res_url, owner[0], high, low, 84)
    before = deadlocks_logged(stack)
    held = Held(stack, ("SELECT 1 FROM rooms WHERE id = %s FOR NO KEY UPDATE", (low,)))
    with ThreadPoolExecutor(1) as ex:
        try:
            cancel = ex.submit(requests.delete, f"{res_url}/reservations/series/{series['id']}",
                               headers=owner[0], timeout=60)
            held.wait_for(1, "the series cancel waiting for the lower room")
            r = requests.delete(f"{room_url}/rooms/{high}", headers=admin_headers, timeout=10)
            assert r.status_code == 204, r.text
            held.wait_for(2, "the room deletion waiting")
        finally:
            held.release()
        assert cancel.result().status_code == 204, cancel.result().text
    wait_until(lambda: res_db_query(stack.pg, "SELECT deleted FROM rooms WHERE id = %s",
                                    high) == [(True,)], timeout=30, what="room deleted")
    time.sleep(0.2)
    assert deadlocks_logged(stack) - before == 0
    rows = res_db_query(stack.pg, "SELECT status FROM reservations WHERE series_id = %s",
                        series["id"])
    assert {st for (st,) in rows} == {"cancelled"}, rows


def test_an_occurrence_moved_while_a_series_cancel_waits_for_its_room(stack, res_url, pool,
                                                                      crowd):
    """Review 15c M1: the series cancel re-reads its rooms after it got their locks, in a
    statement of its own, so a move committed while it waited is seen (40001, tried again with
    the new room locked too).  Interleaving: a connection holds both rooms and moves the last
    occurrence into the other room (freeing that slot of another booking there); the cancel
    waits for its room, the mover commits; the cancel is then paused before its events (the
    webhooks table is held) and a DELETE of the moved occurrence arrives.  Before, the cancel
    went on with the stale set, cancelled the occurrence without the other room's lock, and
    its commit-time promotion asked for that room, which the DELETE held while it waited for
    the occurrence: 40P01."""
    owner, waiting, other_user = crowd[0], crowd[1], crowd[2]
    room, other = pool.take()["id"], pool.take()["id"]
    day = 103
    r = requests.post(f"{res_url}/reservations", headers=owner[0], timeout=10,
                      json={"room_id": room, "start_time": utc_at(day, 9),
                            "end_time": utc_at(day, 10), "recurrence": "FREQ=DAILY;COUNT=3"})
    assert r.status_code == 201, r.text
    series = r.json()
    last = series["occurrences"][2]["id"]
    there = booked(res_url, other_user[0], other, utc_at(day + 2, 9), utc_at(day + 2, 10))
    entry = join(res_url, waiting[0], other, utc_at(day + 2, 9), utc_at(day + 2, 10))
    before = deadlocks_logged(stack)
    mover = Held(stack,
                 ("SELECT 1 FROM rooms WHERE id IN (%s, %s) ORDER BY id FOR NO KEY UPDATE",
                  (room, other)),
                 ("UPDATE reservations SET status = 'cancelled', "
                  "cancel_reason = 'cancelled_by_admin', version = version + 1 WHERE id = %s",
                  (there["id"],)),
                 ("UPDATE reservations SET room_id = %s, exception = true, "
                  "version = version + 1 WHERE id = %s", (other, last)))
    pause = Held(stack, ("LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE", None))
    with ThreadPoolExecutor(2) as ex:
        try:
            cancel = ex.submit(requests.delete,
                               f"{res_url}/reservations/series/{series['id']}",
                               headers=owner[0], timeout=60)
            mover.wait_for(1, "the series cancel waiting for its room")
            mover.commit()
            # The entry still waits: the moved occurrence took the slot the mover freed.
            assert statuses(stack.pg, [entry]) == {entry: "waiting"}
            pause.wait_for(1, "the series cancel paused before its events")
            delete = ex.submit(requests.delete, f"{res_url}/reservations/{last}",
                               headers=owner[0], timeout=60)
            pause.wait_for(2, "the DELETE of the moved occurrence waiting")
        finally:
            pause.release()
        assert cancel.result().status_code == 204, cancel.result().text
        assert delete.result().status_code == 204, delete.result().text
    time.sleep(0.2)
    assert deadlocks_logged(stack) - before == 0
    rows = res_db_query(stack.pg, "SELECT status FROM reservations WHERE series_id = %s",
                        series["id"])
    assert {st for (st,) in rows} == {"cancelled"}, rows
    # The slot the cancel freed in the other room went to its entry, in the cancel's
    # transaction.
    assert statuses(stack.pg, [entry]) == {entry: "booked"}
    assert [u for u, _, _ in active_in(stack.pg, other)] == [waiting[1]]
    assert overlaps(stack.pg, [room, other]) == []


# ---- the limit, joins and DELETEs racing (review 15w L7, L3) ----

def test_concurrent_joins_stop_at_twenty(stack, res_url, pool, crowd):
    token, uid = operator_token(stack.user, f"wl-limit-{uuid.uuid4().hex[:6]}@example.com")
    many = dict(bearer(token), **CLOSE)
    room = pool.take()["id"]
    slots = [(utc_at(86 + i // 8, 8 + i % 8), utc_at(86 + i // 8, 9 + i % 8)) for i in range(25)]
    for start, end in slots:
        booked(res_url, crowd[0][0], room, start, end)
    for start, end in slots[:15]:
        join(res_url, many, room, start, end)
    go = threading.Barrier(10)

    def one(start, end):
        go.wait()
        return requests.post(f"{res_url}/waitlist", headers=many, timeout=30,
                             json={"room_id": room, "start_time": start, "end_time": end})

    with ThreadPoolExecutor(10) as ex:
        got = [f.result() for f in [ex.submit(one, *slot) for slot in slots[15:]]]
    codes = sorted(r.status_code for r in got)
    assert codes == [201] * 5 + [409] * 5, [r.text for r in got]
    assert all(r.json()["details"] == {"max_waiting_entries": 20}
               for r in got if r.status_code == 409)
    assert res_db_query(stack.pg, "SELECT count(*) FROM waitlist WHERE user_id = %s "
                                  "AND status = 'waiting'", uid) == [(20,)]


@pytest.mark.parametrize("round_", range(4))
def test_a_join_racing_a_cancel_is_free_or_promoted(stack, res_url, pool, crowd, round_):
    """Never a waiting entry for a slot that is free: the join reads the slot under the room's
    lock, so it either sees the cancel (422 free) or is promoted by it."""
    holder, joiner = crowd[0], crowd[5]
    room = pool.take()["id"]
    start, end = utc_at(90 + round_, 9), utc_at(90 + round_, 10)
    held = booked(res_url, holder[0], room, start, end)
    go = threading.Barrier(2)

    def cancel():
        go.wait()
        return requests.delete(f"{res_url}/reservations/{held['id']}", headers=holder[0],
                               timeout=60)

    def joining():
        go.wait()
        return requests.post(f"{res_url}/waitlist", headers=joiner[0], timeout=60,
                             json={"room_id": room, "start_time": start, "end_time": end})

    with ThreadPoolExecutor(2) as ex:
        c, j = ex.submit(cancel), ex.submit(joining)
        assert c.result().status_code == 204
        j = j.result()
    assert j.status_code in (201, 422), j.text
    if j.status_code == 422:
        assert "free" in j.json()["details"]["start_time"]
        assert active_in(stack.pg, room) == []
    else:
        assert statuses(stack.pg, [j.json()["id"]]) == {j.json()["id"]: "booked"}
        assert [u for u, _, _ in active_in(stack.pg, room)] == [joiner[1]]


@pytest.mark.parametrize("round_", range(4))
def test_a_delete_of_an_entry_racing_its_promotion(stack, res_url, pool, crowd, round_):
    """The entry is either cancelled (204; the slot goes to the next entry) or booked (409
    naming booked): never both, never lost."""
    holder, first, second = crowd[0], crowd[6], crowd[7]
    room = pool.take()["id"]
    start, end = utc_at(95 + round_, 9), utc_at(95 + round_, 10)
    held = booked(res_url, holder[0], room, start, end)
    a = join(res_url, first[0], room, start, end)
    b = join(res_url, second[0], room, start, end)
    go = threading.Barrier(2)

    def cancel():
        go.wait()
        return requests.delete(f"{res_url}/reservations/{held['id']}", headers=holder[0],
                               timeout=60)

    def leave():
        go.wait()
        return requests.delete(f"{res_url}/waitlist/{a}", headers=first[0], timeout=60)

    with ThreadPoolExecutor(2) as ex:
        c, d = ex.submit(cancel), ex.submit(leave)
        assert c.result().status_code == 204
        d = d.result()
    if d.status_code == 204:
        assert statuses(stack.pg, [a, b]) == {a: "cancelled", b: "booked"}
        assert [u for u, _, _ in active_in(stack.pg, room)] == [second[1]]
    else:
        assert d.status_code == 409 and d.json()["details"]["status"] == "booked", d.text
        assert statuses(stack.pg, [a, b]) == {a: "booked", b: "waiting"}
        assert [u for u, _, _ in active_in(stack.pg, room)] == [first[1]]


def test_an_entry_held_by_a_delete_keeps_its_turn(stack, res_url, pool, crowd):
    """Review 15w L3: the promotion waits for an entry its owner's DELETE holds (here a
    connection standing in for that DELETE, which then changes nothing) instead of skipping
    it for the next one; and someone else's DELETE (403) does not lock the entry at all, so it
    answers while the entry is held."""
    holder, first, second, stranger = crowd[0], crowd[8], crowd[9], crowd[10]
    room = pool.take()["id"]
    start, end = utc_at(100, 9), utc_at(100, 10)
    held = booked(res_url, holder[0], room, start, end)
    a = join(res_url, first[0], room, start, end)
    b = join(res_url, second[0], room, start, end)
    hold = Held(stack, ("SELECT 1 FROM waitlist WHERE id = %s FOR UPDATE", (a,)))
    with ThreadPoolExecutor(1) as ex:
        try:
            r = requests.delete(f"{res_url}/waitlist/{a}", headers=stranger[0], timeout=5)
            assert r.status_code == 403, r.text
            cancel = ex.submit(requests.delete, f"{res_url}/reservations/{held['id']}",
                               headers=holder[0], timeout=60)
            hold.wait_for(1, "the promotion waiting for the held entry")
        finally:
            hold.release()
        assert cancel.result().status_code == 204
    assert statuses(stack.pg, [a, b]) == {a: "booked", b: "waiting"}
    assert [u for u, _, _ in active_in(stack.pg, room)] == [first[1]]
