"""Databases created before the outbox had one owner upgrade without loss (common/src/outbox.c
owns the table now; the services' 001 migrations no longer create it).

A private PostgreSQL cluster gets each service's schema exactly as the previous release left it:
its 001 migration as of then (fixtures/schema_before_outbox_module/, copied from the release)
applied in one transaction and recorded in schema_migrations, as that release's db_migrate did.
Each outbox gets sent and unsent rows. Then today's three services start on those databases.
Checked: every unsent row is published (read back from the broker) once, in order per key, byte
for byte, and no sent row again; every outbox is drained; and each upgraded schema, ledgers
included, equals the one the same binaries created from nothing for the session's stack.
"""
import collections
import os
import subprocess
import uuid

import psycopg2
import pytest

from harness import Postgres, db_query, wait_until

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "schema_before_outbox_module")
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"
# service -> (database, its first migration as the previous release shipped it)
SERVICES = {
    "user-service": ("user_db", "001_users.sql"),
    "room-service": ("room_db", "001_rooms.sql"),
    "reservation-service": ("reservation_db", "001_reservations.sql"),
}
UNSENT = 6
SENT = 3


@pytest.fixture(scope="module")
def old_pg(stack):
    pg = Postgres(os.path.join(stack.workdir, "pg-upgrade"))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def build_previous_release_schema(pg, service):
    """What the previous release's db_migrate left behind on a new database."""
    db, name = SERVICES[service]
    with open(os.path.join(FIXTURES, service, name), encoding="utf-8") as f:
        sql = f.read()
    conn = psycopg2.connect(pg.dsn(db))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            cur.execute("INSERT INTO schema_migrations (version, name) VALUES (1, %s)", (name,))
    finally:
        conn.close()


def fill_outbox(pg, service, topic):
    """SENT rows already published and UNSENT waiting; returns the unsent (key, payload) in id
    order. The payloads keep odd spacing: the column is json, sent byte for byte."""
    db = SERVICES[service][0]
    unsent = []
    for i in range(SENT):
        db_query(pg, db, "INSERT INTO outbox (topic, key, payload, sent_at) "
                 "VALUES (%s, %s, %s::json, now() - interval '1 day')",
                 topic, f"{service}-k{i % 2}", f'{{"sent": true, "n": {i}}}')
    for i in range(UNSENT):
        key, payload = f"{service}-k{i % 2}", f'{{ "service":"{service}",  "n": {i} }}'
        db_query(pg, db, "INSERT INTO outbox (topic, key, payload) VALUES (%s, %s, %s::json)",
                 topic, key, payload)
        unsent.append((key, payload))
    return unsent


def schema_of(pg, db):
    """pg_dump's schema of db, without the lines that differ between any two dumps."""
    out = subprocess.run([PG_DUMP, "--schema-only", "--no-owner", "--no-privileges",
                          "--dbname", pg.dsn(db)], check=True, stdout=subprocess.PIPE,
                         text=True, timeout=60).stdout
    return [line for line in out.splitlines()
            if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))]


def ledgers_of(pg, db):
    return {t: db_query(pg, db, f"SELECT version, name FROM {t} ORDER BY version")
            for t in ("schema_migrations", "common_schema_migrations")}


def test_previous_release_databases_upgrade_without_loss(stack, old_pg):
    tag = uuid.uuid4().hex[:8]
    topic = f"outbox_upgrade_{tag}"
    # reservation-service consumes too: from topics of its own, in a group of its own.
    consumed = [f"outbox_upgrade_{tag}_rooms", f"outbox_upgrade_{tag}_users"]
    stack.kafka.create_topics(topic, *consumed)
    expected = {}
    for service in SERVICES:
        build_previous_release_schema(old_pg, service)
        expected[service] = fill_outbox(old_pg, service, topic)

    started = [
        stack.user_service(tag=f"upgrade-{tag}-user", DATABASE_URL=old_pg.dsn("user_db")),
        stack.room_service(tag=f"upgrade-{tag}-room", DATABASE_URL=old_pg.dsn("room_db")),
        stack.reservation_service(tag=f"upgrade-{tag}-res",
                                  DATABASE_URL=old_pg.dsn("reservation_db"),
                                  ROOM_EVENTS_TOPIC=consumed[0], USER_EVENTS_TOPIC=consumed[1],
                                  RESERVATION_EVENTS_TOPIC=topic,
                                  KAFKA_CONSUMER_GROUP=f"outbox-upgrade-{tag}"),
    ]
    try:
        for svc in started:
            svc.start()

        def drained():
            return all(db_query(old_pg, db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                       [0][0] == 0 for db, _ in SERVICES.values())
        wait_until(drained, timeout=60, interval=0.2, what="the upgraded outboxes to drain")
        want = sum(len(rows) for rows in expected.values())
        wait_until(lambda: len(stack.kafka.read(topic)) >= want, timeout=30, interval=0.3,
                   what=f"{want} messages on {topic}")
        messages = stack.kafka.read(topic)

        # Nothing lost, nothing sent twice, nothing that was already sent: exactly the unsent
        # rows, in id order per key (one key, one partition).
        got = collections.Counter((m["key"], m["payload"]) for m in messages)
        assert got == collections.Counter(r for rows in expected.values() for r in rows), got
        for rows in expected.values():
            for key in {k for k, _ in rows}:
                assert [m["payload"] for m in messages if m["key"] == key] == \
                       [p for k, p in rows if k == key], key
        for db, _ in SERVICES.values():
            assert db_query(old_pg, db, "SELECT count(*) FROM outbox WHERE payload::text "
                            "LIKE '%%\"sent\": true%%' AND sent_at IS NOT NULL")[0][0] == SENT

        # The upgraded schema is the schema of a database these binaries created from nothing.
        for db, name in SERVICES.values():
            fresh, upgraded = schema_of(stack.pg, db), schema_of(old_pg, db)
            assert any(line.startswith("CREATE TABLE public.outbox") for line in fresh), db
            assert upgraded == fresh, f"{db}: upgraded and fresh schemas differ"
            assert ledgers_of(old_pg, db) == ledgers_of(stack.pg, db), db
            assert ledgers_of(old_pg, db)["common_schema_migrations"] == [
                (1, "001_outbox"), (2, "002_token_revocations"), (3, "003_revoke_guard"),
                (4, "004_deliveries"), (5, "005_deliveries_leases"),
                (6, "006_delivery_targets"), (7, "007_deliveries_claim"),
                (8, "008_deliveries_record")]
            assert (1, name) in ledgers_of(old_pg, db)["schema_migrations"]
    finally:
        for svc in started:
            rc = svc.stop()
            assert rc in (0, None), f"{svc.name} exited with {rc}:\n{svc.log_tail()}"
            assert not svc.sanitizer_reports(), svc.log_tail()
