"""Waitlist promotion under races (docs/api.md#waitlist): no double booking can arise from it.
Many clients book a slot at the moment its holder cancels (or shortens) it while several
entries wait: the promotion happens in the freeing transaction, under the room's lock, so the
earliest entries get the freed time and every racing client a 409 -- never an overlap, a 5xx or
a deadlock.  Two cancellations at once that free the two halves one entry waits for: it is
booked exactly once."""
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import bearer, booked, operator_token, res_db_query, utc_at

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
