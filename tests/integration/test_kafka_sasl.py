"""Kafka connections with SASL (docs/operations.md, "Kafka and PostgreSQL over TLS and SASL"):
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD reach
every producer and consumer, and the password never reaches a log.

The session's broker has a second listener that only accepts SASL/PLAIN with one user
(kafka/kafka.sh, KAFKA_SASL_LISTENER_*). room-service and reservation-service run on a private
database and topics of their own and talk to that listener only: a room created while
room-service has the wrong password waits in the outbox; with the right one it is published,
and reservation-service's consumer (also over SASL) learns it, so it can be booked.
"""
import os
import uuid

import pytest
import requests

from harness import (
    Postgres,
    bearer,
    create_room,
    db_query,
    forge_token,
    wait_known_room,
    wait_until,
)


@pytest.fixture(scope="module")
def sasl_pg(stack):
    pg = Postgres(os.path.join(stack.workdir, "pg-sasl"))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def sasl_env(kafka, password, topics):
    return {"KAFKA_BROKER_URL": kafka.sasl_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": kafka.sasl_user, "KAFKA_SASL_PASSWORD": password, **topics}


def unsent(pg):
    return db_query(pg, "room_db", "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]


def test_services_authenticate_to_kafka_with_sasl(stack, sasl_pg):
    kafka = stack.kafka
    tag = uuid.uuid4().hex[:8]
    topics = {"ROOM_EVENTS_TOPIC": f"sasl_{tag}_rooms", "USER_EVENTS_TOPIC": f"sasl_{tag}_users",
              "RESERVATION_EVENTS_TOPIC": f"sasl_{tag}_reservations"}
    kafka.create_topics(*topics.values(), *(f"{t}.dlq" for t in topics.values()), partitions=1)
    admin = bearer(forge_token(1, email="sasl-admin@example.com", role="admin"))
    wrong = "wrong-" + uuid.uuid4().hex

    # Wrong password: the API works, the event waits, /health says why in general terms.
    room_svc = stack.room_service(tag=f"room-sasl-wrong-{tag}",
                                  DATABASE_URL=sasl_pg.dsn("room_db"),
                                  **sasl_env(kafka, wrong, topics))
    room_svc.start()
    room = create_room(room_svc.url, admin)
    body = requests.get(f"{room_svc.url}/health", timeout=15).json()
    assert body["checks"]["kafka"]["status"] == "degraded", body
    assert unsent(sasl_pg) == 1
    assert room_svc.stop() == 0
    log = room_svc.log_text()
    assert wrong not in log
    assert "sasl.password=(secret)" in log, room_svc.log_tail()
    assert "Authentication failed" in log or "SASL authentication error" in log, \
        room_svc.log_tail()

    # Right password: the waiting event goes out, and a consumer over SASL applies it.
    room_svc = stack.room_service(tag=f"room-sasl-{tag}", DATABASE_URL=sasl_pg.dsn("room_db"),
                                  **sasl_env(kafka, kafka.sasl_password, topics))
    room_svc.start()
    wait_until(lambda: unsent(sasl_pg) == 0, timeout=30, interval=0.2,
               what="the outbox drained over SASL")
    events = [m for m in kafka.read(topics["ROOM_EVENTS_TOPIC"])
              if m.get("key") == str(room["id"])]
    assert [m["value"]["event_type"] for m in events] == ["room_created"], events
    body = requests.get(f"{room_svc.url}/health", timeout=15).json()
    assert body["checks"]["kafka"]["status"] == "ok", body

    res_svc = stack.reservation_service(tag=f"reservation-sasl-{tag}",
                                        DATABASE_URL=sasl_pg.dsn("reservation_db"),
                                        KAFKA_CONSUMER_GROUP=f"sasl-{tag}",
                                        **sasl_env(kafka, kafka.sasl_password, topics))
    res_svc.start()
    wait_known_room(res_svc.url, admin, room["id"], timeout=30)

    for svc in (room_svc, res_svc):
        assert svc.stop() == 0
        assert kafka.sasl_password not in svc.log_text()
