"""Kafka faults under load (docs/events.md#delivery-and-ordering, #consumer-rules).

1. The broker is stopped for exactly 60 s while clients create and edit rooms, book and cancel,
   and an admin deletes a user: the API keeps answering 2xx; once the broker is back no event is
   lost or doubled (every outbox row of the three databases is sent; every room and reservation
   event of the outage is on its topic exactly once, in version order per key), and
   reservation-service's consumer catches up (the outage's rooms become bookable, the deleted
   user's bookings are cancelled) — with the time that takes.
2. reservation-service is killed (SIGKILL) in the middle of applying a backlog of room events:
   after a restart the uncommitted messages come again and each event is applied exactly once
   (final room versions, one cancellation and one reservation_cancelled event per booking of a
   deleted room).

Named zz: it stops the session's broker and kills the session's reservation-service (and always
restores both). Figures go to build/reliability/<test>.json.
"""
import datetime
import re
import signal
import threading
import time
import uuid

import requests

from harness import (
    bearer,
    create_room,
    db_query,
    operator_token,
    service_ready,
    wait_known_room,
    wait_until,
    write_reliability,
)

OUTAGE_SECONDS = 60.0     # demanded by the issue: one full minute without a broker
TIMEOUT = 30


def day(offset):
    return datetime.datetime.now(datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=offset)


def z(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def figures_name(request):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")


def max_outbox_id(pg, db):
    return db_query(pg, db, "SELECT coalesce(max(id), 0) FROM outbox")[0][0]


def unsent(pg, db):
    return db_query(pg, db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]


def outbox_since(pg, db, after_id):
    """(key, event_id, event_type, version) of the outbox rows written after after_id."""
    return db_query(pg, db, "SELECT key, payload->>'event_id', payload->>'event_type', "
                            "(payload->>'version')::int FROM outbox WHERE id > %s ORDER BY id",
                    after_id)


def check_topic(kafka, topic, rows):
    """Every outbox row (key, event_id, type, version) is on topic exactly once, and each key's
    messages carry increasing versions.  Returns the number of messages checked."""
    keys = {k for k, _, _, _ in rows}
    msgs = [m for m in kafka.read(topic, timeout=60) if m.get("key") in keys]
    want = {e for _, e, _, _ in rows}
    got = [m["value"]["event_id"] for m in msgs if isinstance(m["value"], dict)]
    missing = want - set(got)
    assert not missing, \
        f"{topic}: {len(missing)} event(s) never published, e.g. {sorted(missing)[:3]}"
    doubled = sorted(e for e in want if got.count(e) > 1)
    assert not doubled, f"{topic}: event(s) published more than once: {doubled[:5]}"
    for key in keys:
        versions = [m["value"]["version"] for m in msgs if m["key"] == key]
        assert versions == sorted(versions) and len(set(versions)) == len(versions), \
            f"{topic}: key {key} out of order: {versions}"
    return len(want)


def test_broker_down_60s_under_mixed_load(stack, room_url, res_url, user_url, admin_headers,
                                          request):
    tag = uuid.uuid4().hex[:8]
    emp = bearer(operator_token(stack.user, f"kf-emp-{tag}@example.com")[0])
    victim_token, victim_id = operator_token(stack.user, f"kf-victim-{tag}@example.com")
    victim = bearer(victim_token)
    known = [create_room(room_url, admin_headers)["id"] for _ in range(3)]
    for rid in known:
        wait_known_room(res_url, admin_headers, rid, timeout=30)
    # The victim's future bookings, cancelled by the consumer once user_deleted arrives.
    victim_res = []
    for i, rid in enumerate(known):
        r = requests.post(f"{res_url}/reservations", headers=victim, timeout=TIMEOUT, json={
            "room_id": rid, "start_time": z(day(150) + datetime.timedelta(hours=i)),
            "end_time": z(day(150) + datetime.timedelta(hours=i, minutes=30))})
        assert r.status_code == 201, r.text
        victim_res.append(r.json()["id"])
    marks = {db: max_outbox_id(stack.pg, db) for db in ("user_db", "room_db", "reservation_db")}

    records, lock, stopping = [], threading.Lock(), threading.Event()
    outage_rooms, deleted_rooms = [], []

    def rec(kind, r):
        with lock:
            records.append((kind, r.status_code, r.text[:200] if r.status_code >= 300 else ""))
        return r

    def rooms_worker():
        s, n = requests.Session(), 0
        while not stopping.is_set():
            n += 1
            r = rec("room_create", s.post(f"{room_url}/rooms", headers=admin_headers,
                                          timeout=TIMEOUT,
                                          json={"name": f"KF-{tag}-{n}", "capacity": 4}))
            if r.status_code != 201:
                continue
            rid = r.json()["id"]
            rec("room_update", s.put(f"{room_url}/rooms/{rid}", json={"capacity": 6},
                                     headers=admin_headers, timeout=TIMEOUT))
            rec("room_update", s.put(f"{room_url}/rooms/{known[n % 3]}",
                                     json={"capacity": 10 + n % 5}, headers=admin_headers,
                                     timeout=TIMEOUT))
            if n % 10 == 0:
                if rec("room_delete", s.delete(f"{room_url}/rooms/{rid}", headers=admin_headers,
                                               timeout=TIMEOUT)).status_code == 204:
                    deleted_rooms.append(rid)
            else:
                outage_rooms.append(rid)
            time.sleep(0.1)

    def bookings_worker():
        s, n = requests.Session(), 0
        while not stopping.is_set():
            n += 1
            start = day(160) + datetime.timedelta(minutes=30 * (n // 3))
            r = rec("booking", s.post(f"{res_url}/reservations", headers=emp, timeout=TIMEOUT,
                                      json={"room_id": known[n % 3], "start_time": z(start),
                                            "end_time": z(start + datetime.timedelta(minutes=30)),
                                            "purpose": f"kf-{tag}-{n}"}))
            if r.status_code == 201 and n % 2 == 0:
                rec("cancel", s.delete(f"{res_url}/reservations/{r.json()['id']}", headers=emp,
                                       timeout=TIMEOUT))
            rec("availability", s.get(f"{res_url}/availability", headers=emp, timeout=TIMEOUT,
                                      params={"room_id": known[n % 3], "date": "2030-01-01"}))
            time.sleep(0.1)

    threads = [threading.Thread(target=w, daemon=True) for w in (rooms_worker, bookings_worker)]
    broker_down = False
    try:
        t_stop = time.monotonic()
        broker_down = True
        stack.kafka.stop()
        t_down = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(5)
        rec("user_delete", requests.delete(f"{user_url}/admin/users/{victim_id}",
                                           headers=admin_headers, timeout=TIMEOUT))
        time.sleep(5)
        health = {}
        for name, svc in (("user", stack.user), ("room", stack.room),
                          ("reservation", stack.reservation)):
            r = requests.get(f"{svc.url}/health", timeout=15)
            health[name] = r.json()
            assert r.status_code == 200, (name, r.text)
            assert requests.get(f"{svc.url}/ready", timeout=15).status_code == 200, name
        for name in ("room", "reservation"):
            assert health[name]["status"] == "degraded", (name, health[name])
            assert health[name]["checks"]["kafka"]["status"] == "degraded", health[name]
        time.sleep(max(0.0, t_down + OUTAGE_SECONDS - time.monotonic()))
    finally:
        stopping.set()
        t_start = time.monotonic()
        if broker_down:
            stack.kafka.start()
        t_up = time.monotonic()
        for t in threads:
            t.join(timeout=TIMEOUT + 5)

    # The API kept answering: every request of the outage was a 2xx.
    bad = [r for r in records if not 200 <= r[1] < 300]
    assert not bad, bad[:5]
    assert len(outage_rooms) >= 10, "too little load to judge"
    for name, svc in (("user", stack.user), ("room", stack.room),
                      ("reservation", stack.reservation)):
        assert svc.proc.poll() is None, f"{name} died:\n{svc.log_tail()}"

    # Publishers catch up: every outbox row of the three databases is sent.
    def drained():
        return all(unsent(stack.pg, db) == 0 for db in marks)
    wait_until(drained, timeout=120, interval=0.1, what="every outbox drained")
    t_drained = time.monotonic()

    # The consumer catches up: every room of the outage at room-service's version, the deleted
    # rooms are tombstones, the deleted user's bookings are cancelled.
    room_ids = outage_rooms + deleted_rooms + known
    source = dict(db_query(stack.pg, "room_db", "SELECT id, version FROM rooms WHERE id = ANY(%s)",
                           room_ids))

    def consumer_done():
        copy = {i: (v, d) for i, v, d in db_query(
            stack.pg, "reservation_db", "SELECT id, version, deleted FROM rooms "
            "WHERE id = ANY(%s)", room_ids)}
        if any(copy.get(i) != (v, False) for i, v in source.items()):
            return False
        if any(not copy.get(i, (0, False))[1] for i in deleted_rooms):
            return False
        rows = db_query(stack.pg, "reservation_db", "SELECT status, cancel_reason FROM "
                        "reservations WHERE id = ANY(%s)", victim_res)
        return rows and all(row == ("cancelled", "user_deleted") for row in rows)
    wait_until(consumer_done, timeout=120, interval=0.1, what="the consumer to catch up")
    t_caught_up = time.monotonic()

    # The outage's rooms are bookable now.
    for rid in outage_rooms:
        r = requests.get(f"{res_url}/availability", params={"room_id": rid, "date": "2030-01-01"},
                         headers=emp, timeout=TIMEOUT)
        assert r.status_code == 200, (rid, r.text)
    for rid in outage_rooms[:5]:
        r = requests.post(f"{res_url}/reservations", headers=emp, timeout=TIMEOUT, json={
            "room_id": rid, "start_time": z(day(170) + datetime.timedelta(hours=9)),
            "end_time": z(day(170) + datetime.timedelta(hours=10))})
        assert r.status_code == 201, (rid, r.text)

    # Nothing lost, nothing doubled, per-key order kept on every topic.
    room_rows = outbox_since(stack.pg, "room_db", marks["room_db"])
    outage_room_rows = [row for row in room_rows if int(row[0]) in set(room_ids)]
    res_rows = outbox_since(stack.pg, "reservation_db", marks["reservation_db"])
    user_rows = outbox_since(stack.pg, "user_db", marks["user_db"])
    assert ("user_deleted" in {t for _, _, t, _ in user_rows}), user_rows
    n_room = check_topic(stack.kafka, "room_events", outage_room_rows)
    n_res = check_topic(stack.kafka, "reservation_events", res_rows)
    user_msgs = [m for m in stack.kafka.read("user_events", timeout=60)
                 if m.get("key") == str(victim_id)]
    ids = [m["value"]["event_id"] for m in user_msgs]
    assert ids == [e for k, e, _, _ in user_rows if k == str(victim_id)], user_msgs

    figures = {
        "outage_seconds": round(t_start - t_down, 3),
        "broker_stop_seconds": round(t_down - t_stop, 3),
        "broker_start_seconds": round(t_up - t_start, 3),
        "requests_during_outage": len(records),
        "non_2xx_during_outage": len(bad),
        "requests_by_kind": {k: sum(1 for r in records if r[0] == k)
                             for k in sorted({r[0] for r in records})},
        "room_events_during_outage": n_room,
        "reservation_events_during_outage": n_res,
        "user_events_during_outage": len(user_rows),
        "rooms_created_during_outage": len(outage_rooms) + len(deleted_rooms),
        "outboxes_drained_after_broker_start_seconds": round(t_drained - t_up, 3),
        "consumer_caught_up_after_broker_start_seconds": round(t_caught_up - t_up, 3),
    }
    write_reliability(figures_name(request), figures)
    print(f"\n{request.node.name}: {figures}")


def metric(svc, name):
    text = requests.get(f"{svc.url}/metrics", timeout=10).text
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_consumer_killed_mid_batch_applies_each_event_once(stack, room_url, res_url,
                                                           admin_headers, request):
    tag = uuid.uuid4().hex[:8]
    emp = bearer(operator_token(stack.user, f"kf-kill-{tag}@example.com")[0])
    doomed = [create_room(room_url, admin_headers)["id"] for _ in range(4)]
    for rid in doomed:
        wait_known_room(res_url, admin_headers, rid, timeout=30)
    booked = []
    for i, rid in enumerate(doomed):
        for h in (9, 11):
            r = requests.post(f"{res_url}/reservations", headers=emp, timeout=TIMEOUT, json={
                "room_id": rid, "start_time": z(day(200 + i) + datetime.timedelta(hours=h)),
                "end_time": z(day(200 + i) + datetime.timedelta(hours=h + 1))})
            assert r.status_code == 201, r.text
            booked.append(r.json()["id"])
    res_mark = max_outbox_id(stack.pg, "reservation_db")

    N = 150     # new rooms, three events each (created, updated, updated)
    batch = []
    running = True
    try:
        # A backlog the consumer meets all at once: it is away while the events are published.
        assert stack.reservation.stop() == 0, stack.reservation.log_tail()
        running = False
        s = requests.Session()
        for n in range(N):
            r = s.post(f"{room_url}/rooms", json={"name": f"KK-{tag}-{n}", "capacity": 2},
                       headers=admin_headers, timeout=TIMEOUT)
            assert r.status_code == 201, r.text
            rid = r.json()["id"]
            batch.append(rid)
            for cap in (3, 4):
                r = s.put(f"{room_url}/rooms/{rid}", json={"capacity": cap},
                          headers=admin_headers, timeout=TIMEOUT)
                assert r.status_code == 200, r.text
            if n % (N // len(doomed)) == N // len(doomed) // 2:
                gone = doomed[n // (N // len(doomed))]
                assert s.delete(f"{room_url}/rooms/{gone}", headers=admin_headers,
                                timeout=TIMEOUT).status_code == 204
        total = 3 * N + len(doomed)
        wait_until(lambda: unsent(stack.pg, "room_db") == 0, timeout=60, interval=0.1,
                   what="room-service to publish the batch")

        def applied():
            v = db_query(stack.pg, "reservation_db", "SELECT coalesce(sum(version), 0) FROM rooms "
                         "WHERE id = ANY(%s)", batch)[0][0]
            d = db_query(stack.pg, "reservation_db", "SELECT count(*) FROM rooms "
                         "WHERE id = ANY(%s) AND deleted", doomed)[0][0]
            return int(v) + int(d)

        # Start it, and kill it as soon as it has applied something.
        stack.reservation.start(wait_ready=False)
        running = True
        t_start = time.monotonic()
        seen = 0
        while time.monotonic() - t_start < 60:
            seen = applied()
            if seen > 0:
                break
            time.sleep(0.005)
        stack.reservation.stop(signal.SIGKILL)
        running = False
        t_kill = time.monotonic()
        at_kill = applied()
        assert 0 < at_kill < total, \
            f"the kill missed the batch: {at_kill} of {total} events applied at SIGKILL"

        stack.reservation.start()
        running = True
        t_restart = time.monotonic()

        def all_applied():
            return applied() == total and db_query(
                stack.pg, "reservation_db", "SELECT count(*) FROM reservations WHERE "
                "id = ANY(%s) AND status = 'cancelled'", booked)[0][0] == len(booked)
        wait_until(all_applied, timeout=120, interval=0.1, what="the whole batch applied")
        t_done = time.monotonic()
        handled_after = metric(stack.reservation, "kafka_messages_consumed_total")
    finally:
        if not running:
            stack.reservation.start()

    # Every room copy equals room-service's room; the deleted rooms are tombstones.
    src = {row[0]: row[1:] for row in db_query(
        stack.pg, "room_db", "SELECT id, name, capacity, active, version FROM rooms "
        "WHERE id = ANY(%s)", batch)}
    copy = {row[0]: row[1:] for row in db_query(
        stack.pg, "reservation_db", "SELECT id, name, capacity, active, version FROM rooms "
        "WHERE id = ANY(%s) AND NOT deleted", batch)}
    assert copy == src
    assert all(v == 3 for _, _, _, v in src.values())
    assert db_query(stack.pg, "room_db", "SELECT count(*) FROM rooms WHERE id = ANY(%s)",
                    doomed)[0][0] == 0
    assert db_query(stack.pg, "reservation_db", "SELECT count(*) FROM rooms WHERE id = ANY(%s) "
                    "AND deleted", doomed)[0][0] == len(doomed)
    # Each booking of a deleted room cancelled once: version 2, one event.
    rows = db_query(stack.pg, "reservation_db", "SELECT id, status, cancel_reason, version FROM "
                    "reservations WHERE id = ANY(%s) ORDER BY id", booked)
    assert rows == [(i, "cancelled", "room_deleted", 2) for i in sorted(booked)], rows
    events = [row for row in outbox_since(stack.pg, "reservation_db", res_mark)
              if int(row[0]) in set(booked)]
    assert sorted((int(k), t) for k, _, t, _ in events) == \
        sorted((i, "reservation_cancelled") for i in booked), events
    wait_until(lambda: unsent(stack.pg, "reservation_db") == 0, timeout=60, interval=0.1,
               what="reservation outbox drained")
    check_topic(stack.kafka, "reservation_events", events)
    msgs = [m for m in stack.kafka.read("reservation_events", timeout=60)
            if m.get("key") in {str(i) for i in booked}
            and m["value"]["event_type"] == "reservation_cancelled"]
    assert sorted(int(m["key"]) for m in msgs) == sorted(booked), msgs
    assert service_ready(stack.reservation)

    redelivered = int(handled_after) - (total - at_kill)
    figures = {
        "events_in_batch": total,
        "applied_before_sigkill": at_kill,
        "sigkill_after_start_seconds": round(t_kill - t_start, 3),
        "handled_by_restarted_instance": int(handled_after),
        "redelivered_already_applied": redelivered,
        "catch_up_after_restart_seconds": round(t_done - t_restart, 3),
    }
    write_reliability(figures_name(request), figures)
    print(f"\n{request.node.name}: {figures}")
    assert redelivered > 0, f"nothing was delivered twice, re-delivery was not exercised: {figures}"
