"""Concurrent bookings against the real reservation-service and PostgreSQL: the exclusion guarantee
of docs/architecture.md (no two confirmed reservations of one room overlap, 409 with the conflicts
otherwise, never a 5xx or a deadlock)."""
import datetime
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import (
    bearer,
    create_room,
    operator_token,
    overlapping_confirmed_pairs,
    res_db_query,
    wait_known_room,
    wait_until,
)

WORKERS = 50
# civetweb keeps a worker thread on a keep-alive connection until it has been idle for 5 s, so 50
# persistent client connections against NUM_THREADS=16 would mostly measure that timeout: each
# racer's session asks the server to close after every answer (the race itself is unchanged).
CLOSE = {"Connection": "close"}


@pytest.fixture(scope="module")
def people(stack):
    """Ten employees (tokens) so that racing requests come from distinct users."""
    tag = uuid.uuid4().hex[:8]
    return [bearer(operator_token(stack.user, f"racer{i}-{tag}@example.com")[0])
            for i in range(10)]


@pytest.fixture(scope="module")
def rooms(stack, room_url, res_url, admin_headers):
    """Four fresh rooms reservation-service knows."""
    made = [create_room(room_url, admin_headers) for _ in range(4)]
    for room in made:
        wait_known_room(res_url, admin_headers, room["id"])
    return [room["id"] for room in made]


def day(offset):
    return datetime.datetime.now(datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=offset)


def z(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_z(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC)


def fire(res_url, jobs):
    """POSTs every (headers, body) of jobs from WORKERS threads, one requests.Session per
    thread; returns [(status, json body or text)] in the order of jobs."""
    local = threading.local()

    def one(job):
        headers, body = job
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers.update(CLOSE)
        r = local.s.post(f"{res_url}/reservations", json=body, headers=headers, timeout=60)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(one, jobs))


def overlaps(a_start, a_end, b_start, b_end):
    return a_start < b_end and b_start < a_end


def test_200_requests_for_one_slot_make_exactly_one_booking(stack, res_url, people, rooms):
    room = rooms[0]
    start, end = day(5) + datetime.timedelta(hours=10), day(5) + datetime.timedelta(hours=11)
    body = {"room_id": room, "start_time": z(start), "end_time": z(end), "purpose": "race"}
    results = fire(res_url, [(people[i % len(people)], body) for i in range(200)])

    statuses = [s for s, _ in results]
    counts = {s: statuses.count(s) for s in set(statuses)}
    print(f"same-slot race: {counts}")
    assert counts == {201: 1, 409: 199}, counts
    winner = next(b for s, b in results if s == 201)
    assert (winner["room_id"], winner["start_time"], winner["end_time"], winner["status"]) == \
        (room, z(start), z(end), "confirmed")
    slot = {"start_time": z(start), "end_time": z(end)}
    for s, b in results:
        if s == 409:
            assert b["code"] == "conflict" and b["status_code"] == 409, b
            assert b["details"]["conflicts"] == [slot], b

    rows = res_db_query(stack.pg, "SELECT id, user_id FROM reservations WHERE room_id = %s "
                                  "AND status = 'confirmed'", room)
    assert rows == [(winner["id"], winner["user_id"])]
    assert overlapping_confirmed_pairs(stack.pg) == []


def test_mixed_race_over_three_rooms_keeps_rooms_free_of_overlaps(stack, res_url, people,
                                                                  rooms):
    rng = random.Random(20261121)
    mine = rooms[1:4]
    base = day(6) + datetime.timedelta(hours=8)
    jobs = []
    for i in range(200):
        start = base + datetime.timedelta(minutes=5 * rng.randrange(0, 120))
        end = start + datetime.timedelta(minutes=5 * rng.randrange(1, 37))
        body = {"room_id": rng.choice(mine), "start_time": z(start), "end_time": z(end)}
        jobs.append((people[i % len(people)], body))
    results = fire(res_url, jobs)

    statuses = [s for s, _ in results]
    counts = {s: statuses.count(s) for s in set(statuses)}
    print(f"mixed race: {counts}")
    assert set(counts) <= {201, 409}, [(s, b) for s, b in results if s not in (201, 409)]
    won = {}
    for (_, body), (s, b) in zip(jobs, results, strict=True):
        if s == 201:
            assert (b["room_id"], b["start_time"], b["end_time"]) == \
                (body["room_id"], body["start_time"], body["end_time"]), (body, b)
            won.setdefault(body["room_id"], []).append(b)
    for booked in won.values():  # the 201s themselves never overlap
        for i, a in enumerate(booked):
            for b in booked[i + 1:]:
                assert not overlaps(a["start_time"], a["end_time"], b["start_time"],
                                    b["end_time"]), (a, b)

    for (_, body), (s, b) in zip(jobs, results, strict=True):
        if s != 409:
            continue
        assert b["code"] == "conflict", b
        conflicts = b["details"]["conflicts"]
        assert conflicts, b
        winners = {(w["start_time"], w["end_time"]) for w in won.get(body["room_id"], [])}
        for c in conflicts:
            assert overlaps(parse_z(c["start_time"]), parse_z(c["end_time"]),
                            parse_z(body["start_time"]), parse_z(body["end_time"])), (body, c)
            assert (c["start_time"], c["end_time"]) in winners, (body, c)

    rows = res_db_query(stack.pg, "SELECT id FROM reservations WHERE room_id = ANY(%s) "
                                  "AND status = 'confirmed'", mine)
    assert sorted(r[0] for r in rows) == sorted(b["id"] for s, b in results if s == 201)
    assert counts.get(201, 0) >= 3  # every room got something
    assert overlapping_confirmed_pairs(stack.pg) == []


def test_concurrent_moves_into_one_slot_let_exactly_one_through(stack, res_url, people, rooms):
    """PUT goes through the same guarantee: 30 reservations in distinct slots all moved at once
    to the same target slot → one 200, 29 409 naming the mover that won."""
    room = rooms[0]
    first = day(7) + datetime.timedelta(hours=6)
    created = []
    for i in range(30):
        s = first + datetime.timedelta(minutes=30 * i)
        r = requests.post(f"{res_url}/reservations", headers=people[i % len(people)],
                          json={"room_id": room, "start_time": z(s),
                                "end_time": z(s + datetime.timedelta(minutes=15))}, timeout=10)
        assert r.status_code == 201, r.text
        created.append((people[i % len(people)], r.json()))
    target = {"start_time": z(day(7) + datetime.timedelta(hours=22)),
              "end_time": z(day(7) + datetime.timedelta(hours=23))}
    local = threading.local()

    def move(item):
        headers, res = item
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers.update(CLOSE)
        r = local.s.put(f"{res_url}/reservations/{res['id']}", json=target, headers=headers,
                        timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(move, created))
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] + [409] * 29, statuses
    for s, b in results:
        if s == 409:
            assert b["code"] == "conflict" and b["details"]["conflicts"] == [target], b
    assert overlapping_confirmed_pairs(stack.pg) == []
    moved = res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE room_id = %s AND "
                                   "status = 'confirmed' AND start_time = %s", room,
                         target["start_time"])
    assert moved == [(1,)]


def test_cancel_frees_the_slot_for_exactly_one_of_the_racers(stack, res_url, people, rooms):
    room = rooms[0]
    start, end = day(8) + datetime.timedelta(hours=9), day(8) + datetime.timedelta(hours=10)
    body = {"room_id": room, "start_time": z(start), "end_time": z(end)}
    r = requests.post(f"{res_url}/reservations", json=body, headers=people[0], timeout=10)
    assert r.status_code == 201, r.text
    held = r.json()
    assert requests.delete(f"{res_url}/reservations/{held['id']}", headers=people[0],
                           timeout=10).status_code == 204
    results = fire(res_url, [(people[1 + i % 9], body) for i in range(60)])
    statuses = sorted(s for s, _ in results)
    assert statuses == [201] + [409] * 59, statuses
    assert overlapping_confirmed_pairs(stack.pg) == []


def deadlocks_logged(stack):
    with open(os.path.join(stack.pg.dir, "log"), encoding="utf-8", errors="replace") as f:
        return f.read().count("deadlock detected")


def test_room_deletion_amid_concurrent_updates_neither_deadlocks_nor_stalls(
        stack, room_url, res_url, people, admin_headers):
    room = create_room(room_url, admin_headers)
    wait_known_room(res_url, admin_headers, room["id"])
    first = day(30)
    held = []
    for i in range(32):
        s = first + datetime.timedelta(minutes=30 * i)
        r = requests.post(f"{res_url}/reservations", headers=people[i % len(people)],
                          json={"room_id": room["id"], "start_time": z(s),
                                "end_time": z(s + datetime.timedelta(minutes=20))}, timeout=10)
        assert r.status_code == 201, r.text
        held.append((people[i % len(people)], r.json()["id"]))
    deadlocks_before = deadlocks_logged(stack)
    stop = threading.Event()
    seen = []

    def updater(k):
        with requests.Session() as s:
            s.headers.update(CLOSE)
            n = k
            while not stop.is_set():
                headers, rid = held[n % len(held)]
                n += 7
                r = s.put(f"{res_url}/reservations/{rid}", json={"purpose": f"p{n}"},
                          headers=headers, timeout=60)
                seen.append(r.status_code)

    def deleted():
        r = requests.get(f"{res_url}/availability", headers=admin_headers, timeout=10,
                         params={"room_id": room["id"], "date": z(first)[:10]})
        return r.status_code == 404

    threads = [threading.Thread(target=updater, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        assert requests.delete(f"{room_url}/rooms/{room['id']}",
                               headers=admin_headers).status_code == 204
        applied = None
        while time.monotonic() - t0 < 8:
            if deleted():
                applied = time.monotonic() - t0
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    wait_until(deleted, timeout=60, interval=0.2, what="room_deleted applied once PUTs stopped")
    counts = {s: seen.count(s) for s in set(seen)}
    deadlocks = deadlocks_logged(stack) - deadlocks_before
    print(f"PUTs during deletion: {counts}; deleted after {applied}; deadlocks: {deadlocks}")
    rows = res_db_query(stack.pg, "SELECT status, cancel_reason, count(*) FROM reservations "
                                  "WHERE room_id = %s GROUP BY 1, 2", room["id"])
    assert rows == [("cancelled", "room_deleted", len(held))], rows
    assert applied is not None, f"room_deleted not applied within 8 s under PUT load ({counts})"
    assert not [s for s in seen if s >= 500], counts
    assert deadlocks == 0


# ---- Idempotency-Key under concurrency (docs/api.md#idempotency-key) ----

TWINS = 20


def fire_together(res_url, jobs):
    """POSTs every (headers, body) of jobs at the same moment (a thread each, released by one
    barrier, each on its own connection); returns [(status, json body or text, headers)] in the
    order of jobs."""
    barrier = threading.Barrier(len(jobs))

    def one(job):
        headers, body = job
        with requests.Session() as s:
            s.headers.update(CLOSE)
            barrier.wait(timeout=30)
            r = s.post(f"{res_url}/reservations", json=body, headers=headers, timeout=60)
        try:
            return r.status_code, r.json(), r.headers
        except ValueError:
            return r.status_code, r.text, r.headers

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(one, jobs))


@pytest.fixture(scope="module")
def key_rooms(stack, room_url, res_url, admin_headers):
    """Three fresh rooms reservation-service knows, for the Idempotency-Key races."""
    made = [create_room(room_url, admin_headers) for _ in range(3)]
    for room in made:
        wait_known_room(res_url, admin_headers, room["id"])
    return [room["id"] for room in made]


def with_key(headers, key):
    return {**headers, "Idempotency-Key": key}


def test_concurrent_requests_with_one_key_book_once_and_answer_alike(stack, res_url, people,
                                                                    key_rooms):
    """Twenty identical requests with one key at once: the first claims the key, the others
    wait for it and replay its answer (before, those that raced it got 409 "already booked"
    listing their own slot)."""
    room = key_rooms[0]
    start, end = day(7) + datetime.timedelta(hours=10), day(7) + datetime.timedelta(hours=11)
    body = {"room_id": room, "start_time": z(start), "end_time": z(end), "purpose": "twins"}
    key = str(uuid.uuid4())
    results = fire_together(res_url, [(with_key(people[0], key), body)] * TWINS)

    statuses = [s for s, _, _ in results]
    assert statuses == [201] * TWINS, [(s, b) for s, b, _ in results if s != 201]
    first = results[0][1]
    assert all(b == first for _, b, _ in results), "the replays differ from the first answer"
    replayed = sorted(str(h.get("Idempotent-Replayed")) for _, _, h in results)
    assert replayed == ["None"] + ["true"] * (TWINS - 1), replayed
    assert {(h["Location"], h["ETag"]) for _, _, h in results} == \
        {(f"/reservations/{first['id']}", f'"{first["version"]}"')}
    rows = res_db_query(stack.pg, "SELECT id FROM reservations WHERE room_id = %s", room)
    assert rows == [(first["id"],)]
    assert res_db_query(stack.pg, "SELECT status FROM idempotency_keys WHERE key = %s",
                        key) == [(201,)]
    assert overlapping_confirmed_pairs(stack.pg) == []


def test_concurrent_twins_of_a_refused_request_are_refused_alike(stack, res_url, people,
                                                                 key_rooms):
    """Only successful creations are remembered: when the first request with a key is refused
    (409, the slot is taken), the twins that waited for it try on their own and meet the same
    conflict; the key stays free for a later success."""
    room = key_rooms[1]
    start, end = day(7) + datetime.timedelta(hours=12), day(7) + datetime.timedelta(hours=13)
    slot = {"start_time": z(start), "end_time": z(end)}
    body = {"room_id": room, **slot}
    blocker = requests.post(f"{res_url}/reservations", json=body, headers=people[1], timeout=30)
    assert blocker.status_code == 201, blocker.text
    key = str(uuid.uuid4())
    results = fire_together(res_url, [(with_key(people[0], key), body)] * TWINS)

    for s, b, h in results:
        assert s == 409 and b["code"] == "conflict", (s, b)
        assert b["details"]["conflicts"] == [slot], b
        assert "Idempotent-Replayed" not in h
    assert res_db_query(stack.pg, "SELECT count(*) FROM idempotency_keys WHERE key = %s",
                        key) == [(0,)]
    assert requests.delete(f"{res_url}/reservations/{blocker.json()['id']}", headers=people[1],
                           timeout=30).status_code == 204
    r = requests.post(f"{res_url}/reservations", json=body, headers=with_key(people[0], key),
                      timeout=30)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text


def test_concurrent_requests_with_one_key_and_two_bodies(stack, res_url, people, key_rooms):
    """Ten requests each of two bodies (two free slots) with one key at once: whichever claims
    the key first books; its twins replay it and every request with the other body is 422."""
    room = key_rooms[2]
    bodies = [{"room_id": room, "start_time": z(day(7) + datetime.timedelta(hours=h)),
               "end_time": z(day(7) + datetime.timedelta(hours=h + 1))} for h in (14, 16)]
    key = str(uuid.uuid4())
    jobs = [(with_key(people[0], key), bodies[i % 2]) for i in range(TWINS)]
    results = fire_together(res_url, jobs)

    won = {i % 2 for i, (s, _, _) in enumerate(results) if s == 201}
    assert len(won) == 1, [(s, b) for s, b, _ in results]
    winner = won.pop()
    created = [b for i, (s, b, _) in enumerate(results) if i % 2 == winner]
    assert all(s == 201 for i, (s, _, _) in enumerate(results) if i % 2 == winner)
    assert all(b == created[0] for b in created)
    for i, (s, b, _) in enumerate(results):
        if i % 2 != winner:
            assert s == 422 and b["code"] == "validation_failed", (s, b)
            assert "Idempotency-Key" in b["details"], b
    rows = res_db_query(stack.pg, "SELECT id, start_time = %s::timestamptz FROM reservations "
                        "WHERE room_id = %s", bodies[winner]["start_time"], room)
    assert rows == [(created[0]["id"], True)]


def test_an_overlap_committed_behind_the_room_lock_is_answered_with_its_span(
        stack, room_url, res_url, admin_headers, people):
    """A writer that does not take the room's lock (an operator's INSERT) commits an overlapping
    reservation while a booking, past its conflict check, waits on the exclusion constraint: the
    booking meets 23P01, runs again and answers 409 naming the operator's span, as any conflict
    (before, 409 without "conflicts")."""
    import psycopg2
    room = create_room(room_url, admin_headers)["id"]
    wait_known_room(res_url, admin_headers, room)
    start, end = day(9) + datetime.timedelta(hours=10), day(9) + datetime.timedelta(hours=11)
    theirs = (start + datetime.timedelta(minutes=30), end + datetime.timedelta(minutes=30))
    operator = psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        with operator.cursor() as cur:
            cur.execute("INSERT INTO reservations (room_id, user_id, purpose, start_time, "
                        "end_time) VALUES (%s, 1, 'operator', %s, %s)", (room, *theirs))
        with ThreadPoolExecutor(max_workers=1) as pool:
            booking = pool.submit(
                requests.post, f"{res_url}/reservations",
                json={"room_id": room, "start_time": z(start), "end_time": z(end)},
                headers=people[0], timeout=30)
            # The booking's INSERT waits for the operator's uncommitted row.
            wait_until(lambda: res_db_query(
                stack.pg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                          "'Lock' AND query LIKE '%%res_book%%'")[0][0] == 1,
                timeout=10, interval=0.05, what="the booking waiting on the operator's row")
            operator.commit()
            r = booking.result()
    finally:
        operator.close()
    assert r.status_code == 409, r.text
    assert r.json()["details"]["conflicts"] == [
        {"start_time": z(theirs[0]), "end_time": z(theirs[1])}], r.text
    assert overlapping_confirmed_pairs(stack.pg) == []
