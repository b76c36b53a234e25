"""One unusable message gives one dead letter, however long the broker takes to accept it
(common/src/kafka.c, the consumer's DLQ path).

The consumer used to give up waiting for a dead letter's acknowledgement after 10 s and let the
message come again, which produced another copy each time, while the first ones stayed queued in
the producer until the broker took them: N retries, N copies on <topic>.dlq. Now a message that
comes again waits for the copy already on its way.

To have the broker stall a dead letter while the consumer holds the unusable message, the test
uses a reservation-service of its own (private database, topics and consumer group): its
database refuses connections, so a valid room event ahead of the unusable message is retried,
and each retry fetches both messages again into the consumer's local queue. The broker is then
frozen (SIGSTOP: connections stay open, nothing is answered) and the database let in again: the
room event is applied from the local queue, the unusable message's copy goes to the frozen
broker and waits, longer than the old 10 s, until the broker is resumed (SIGCONT).
Named zz: it freezes the session's broker for a few seconds.
"""
import json
import os
import re
import signal
import time
import uuid

import pytest

from harness import Postgres, db_query, wait_until

FROZEN_S = 12  # longer than the consumer's old 10 s wait for a dead letter


@pytest.fixture(scope="module")
def dlq_pg(stack):
    pg = Postgres(os.path.join(stack.workdir, "pg-dlq"))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def set_connections(pg, allowed):
    """Lets the service into reservation_db or not (ends its sessions when not)."""
    db_query(pg, "user_db", f"ALTER DATABASE reservation_db WITH ALLOW_CONNECTIONS {allowed}")
    if not allowed:
        db_query(pg, "user_db", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = 'reservation_db'")


def copies(kafka, topic, key):
    return [m for m in kafka.read(topic) if m.get("key") == key]


def wait_log(svc, pattern, start, timeout, what):
    """Waits for a line matching pattern in svc's log after character offset start; returns
    the match."""
    def find():
        return re.search(pattern, svc.log_text()[start:])
    return wait_until(find, timeout=timeout, interval=0.05, what=what)


def test_one_unusable_message_gives_one_dead_letter_while_the_broker_stalls(stack, dlq_pg):
    kafka = stack.kafka
    tag = uuid.uuid4().hex[:8]
    rooms, users, res = f"dlq_{tag}_rooms", f"dlq_{tag}_users", f"dlq_{tag}_reservations"
    kafka.create_topics(rooms, f"{rooms}.dlq", users, f"{users}.dlq", res, partitions=1)
    svc = stack.reservation_service(tag=f"reservation-dlq-{tag}",
                                    DATABASE_URL=dlq_pg.dsn("reservation_db"),
                                    ROOM_EVENTS_TOPIC=rooms, USER_EVENTS_TOPIC=users,
                                    RESERVATION_EVENTS_TOPIC=res,
                                    KAFKA_CONSUMER_GROUP=f"dlq-{tag}")
    svc.start()
    # The consumer is in its group and working once a first unusable message got its copy.
    kafka.produce(rooms, "warm-up", "not json")
    wait_until(lambda: copies(kafka, f"{rooms}.dlq", "warm-up"), timeout=30, interval=0.3,
               what="warm-up dead letter")

    room_id = 700000 + int(tag[:4], 16)
    event = {"event_type": "room_created", "event_id": str(uuid.uuid4()),
             "occurred_at": "2026-01-01T00:00:00.000Z", "version": 1,
             "room": {"id": room_id, "name": f"DLQ {tag}", "capacity": 4,
                      "time_zone": "UTC", "active": True}}
    broker = kafka.pid()
    frozen = False
    try:
        set_connections(dlq_pg, False)
        mark = len(svc.log_text())
        kafka.produce(rooms, str(room_id), json.dumps(event))
        kafka.produce(rooms, "poison", f"garbage {tag}")
        # The room event is retried with a growing pause; after a retry of 1.6 s or more, both
        # messages are back in the consumer's queue well before it polls again.
        wait_log(svc, rf"{rooms}\[0\]@\d+ not applied \(database unavailable\); retrying in "
                 r"(1600|3200|5000) ms", mark, 30, "the room event retried")
        time.sleep(0.4)
        mark = len(svc.log_text())
        os.kill(broker, signal.SIGSTOP)
        frozen = True
        set_connections(dlq_pg, True)
        wait_log(svc, rf"{rooms}\[0\]@\d+ unusable", mark, 15,
                 "the unusable message handled while the broker is frozen")
        time.sleep(FROZEN_S)
    finally:
        if frozen:
            os.kill(broker, signal.SIGCONT)
        set_connections(dlq_pg, True)

    wait_until(lambda: copies(kafka, f"{rooms}.dlq", "poison"), timeout=60, interval=0.5,
               what="the dead letter after the broker resumed")
    # A second unusable message: once its copy is there, the first one's handling is over (one
    # partition, handled in order; the copies share the DLQ's single partition, in order too).
    kafka.produce(rooms, "after", f"garbage after {tag}")
    wait_until(lambda: copies(kafka, f"{rooms}.dlq", "after"), timeout=60, interval=0.5,
               what="the second dead letter")
    dead = copies(kafka, f"{rooms}.dlq", "poison")
    assert len(dead) == 1, f"{len(dead)} copies of one unusable message:\n{svc.log_tail(40)}"
    # It did come again while its copy waited (the situation that used to add copies).
    assert "not applied (its copy to the DLQ is not acknowledged yet)" in svc.log_text()
    assert dead[0]["payload"] == f"garbage {tag}"
    # The room event ahead of it was applied.
    assert db_query(dlq_pg, "reservation_db", "SELECT name FROM rooms WHERE id = %s",
                    room_id) == [(f"DLQ {tag}",)]
    assert svc.stop() == 0
