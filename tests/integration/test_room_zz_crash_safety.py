"""The outbox's publishing instance dies with kill -9 (docs/architecture.md#transactional-outbox).
Only one replica publishes (it holds an advisory lock), so to crash the publisher itself the
session's room-service is stopped for the duration and an extra instance takes over; both the
extra instance and the session's one are restarted afterwards. Named zz: it stops the broker and
the session's room-service (and always starts them again)."""
import signal
import time

import requests

from harness import (
    create_room,
    outbox_unsent,
    room_db_query,
    room_events,
    wait_room_events,
    wait_until,
)

OUTBOX_LOCK_KEY = 5001


def publisher_lock_held(pg):
    return room_db_query(pg, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                             "AND objid = %s AND granted", OUTBOX_LOCK_KEY)[0][0] == 1


def outbox_event_ids(pg, keys):
    rows = room_db_query(pg, "SELECT payload->>'event_id' FROM outbox WHERE key = ANY(%s) "
                             "ORDER BY id", [str(k) for k in keys])
    return [r[0] for r in rows]


def test_publisher_crash_loses_and_duplicates_nothing(stack, admin_headers):
    extra = stack.room_service(tag="crash")
    main_stopped = broker_stopped = False
    try:
        assert stack.room.stop() == 0, stack.room.log_tail()
        main_stopped = True
        extra.start()
        wait_until(lambda: publisher_lock_held(stack.pg), timeout=15, interval=0.1,
                   what="the extra instance to take the publisher lock")

        # 1. kill -9 right after a 201 while the broker is up.
        quick = create_room(extra.url, admin_headers)
        extra.stop(signal.SIGKILL)
        extra.start()
        r = requests.get(f"{extra.url}/rooms/{quick['id']}", headers=admin_headers)
        assert r.status_code == 200 and r.json() == quick, "a 201 means committed"
        wait_room_events(stack.kafka, [quick["id"]], 1)
        wait_until(lambda: outbox_unsent(stack.pg, [quick["id"]]) == 0, timeout=30,
                   interval=0.1, what="the quick room's outbox row to be marked sent")
        copies = room_events(stack.kafka, [quick["id"]])
        # At least once, not exactly once: the process may die after the broker acknowledged
        # the message but before the outbox row was marked sent; the next publisher (a new
        # producer id, so idempotence cannot help) then sends the same row again. Every copy
        # is the same event (same event_id), so consumers can drop the repeat.
        assert len(copies) >= 1
        assert {m["payload"] for m in copies} == {copies[0]["payload"]}
        assert [copies[0]["value"]["event_id"]] == outbox_event_ids(stack.pg, [quick["id"]])
        assert copies[0]["value"]["room"] == quick

        # 2. Committed but not delivered: the broker is down, the publisher holds the events
        # in its producer queue and (a) shuts down cleanly, (b) dies with kill -9.
        wait_until(lambda: publisher_lock_held(stack.pg), timeout=15, interval=0.1,
                   what="the restarted extra instance to take the publisher lock")
        stack.kafka.stop()
        broker_stopped = True
        a = create_room(extra.url, admin_headers)
        b = create_room(extra.url, admin_headers)
        r = requests.put(f"{extra.url}/rooms/{a['id']}", json={"capacity": 11},
                         headers=admin_headers)
        assert r.status_code == 200, r.text
        ids = [a["id"], b["id"]]
        time.sleep(0.3)   # let the publisher (100 ms poll) pick the rows up
        assert outbox_unsent(stack.pg, ids) == 3
        # (a) SIGTERM: exits 0 within 10 s although its messages cannot be delivered, and
        # marks none of them sent.
        t0 = time.monotonic()
        assert extra.stop() == 0, extra.log_tail()
        assert time.monotonic() - t0 < 10
        assert outbox_unsent(stack.pg, ids) == 3, "undelivered rows must stay unsent"
        # (b) kill -9 with more rows in flight.
        extra.start()
        wait_until(lambda: publisher_lock_held(stack.pg), timeout=15, interval=0.1,
                   what="the extra instance to take the publisher lock again")
        r = requests.put(f"{extra.url}/rooms/{a['id']}", json={"capacity": 12},
                         headers=admin_headers)
        assert r.status_code == 200, r.text
        assert requests.delete(f"{extra.url}/rooms/{b['id']}",
                               headers=admin_headers).status_code == 204
        time.sleep(0.3)
        assert outbox_unsent(stack.pg, ids) == 5
        extra.stop(signal.SIGKILL)
        stack.kafka.start()
        broker_stopped = False
        assert outbox_unsent(stack.pg, ids) == 5, "nobody publishes while no instance runs"
        stack.room.start()
        main_stopped = False

        wait_room_events(stack.kafka, ids, 5, timeout=60)
        wait_until(lambda: outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
                   what="the outbox to drain")
        msgs = room_events(stack.kafka, ids)
        got = [m["value"]["event_id"] for m in msgs]
        assert sorted(got) == sorted(outbox_event_ids(stack.pg, ids)), \
            "every committed event exactly once"
        for rid, want in ((a["id"], [("room_created", 1), ("room_updated", 2),
                                     ("room_updated", 3)]),
                          (b["id"], [("room_created", 1), ("room_deleted", 2)])):
            assert [(m["value"]["event_type"], m["value"]["version"]) for m in msgs
                    if m["key"] == str(rid)] == want
    finally:
        if broker_stopped:
            stack.kafka.start()
        extra.stop()
        if main_stopped:
            stack.room.start()
    assert requests.get(f"{stack.room.url}/ready").status_code == 200
