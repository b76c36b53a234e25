"""Backups (issue 17, item 3): a populated suite is dumped with the chart's script
(helm/meeting-rooms/files/backup.sh, as the CronJob runs it: pg_dump -Fc as the services' own
role, while they run), changed after the backup, wiped (the three databases dropped) and restored
with the same script (as `make restore` runs it: the postgres superuser over the socket).  Then:
every row of every table is back as it was at the backup (and nothing of what came after), the
overlap exclusion holds, and the services work on the restored data - reads, old tokens, new
bookings, a room update reaching reservation-service through Kafka.

Kafka is not restored, so the consumer groups' offsets are past events the restored databases
no longer reflect (those after the backup).  What happens, asserted here: the running consumer
does not read them again (its committed offsets are past them); a room update after the restore
reuses a version number an older event already carried and is applied all the same (the copy
holds the restored version, below it).  Re-reading every event from the beginning (a new
consumer group) changes nothing that the events up to the backup made - applying an event is
idempotent, apart from token_revocations.updated_at, which revoke_apply() renews - but an event
published after the backup is applied again to a copy whose source lost it with the restore:
hence "do not reset the offsets after a restore", and the way back that the chart's README gives,
tested last.

Everything runs on a PostgreSQL cluster of its own and on topics and consumer groups of its own
on the shared broker, so the shared stack is not disturbed and the topics hold only this
module's events.
"""
import os
import re
import subprocess
import time
import urllib.parse
import uuid

import psycopg2
import psycopg2.errors
import pytest
import requests

from harness import (
    ROOT,
    Postgres,
    bearer,
    booked,
    create_room,
    db_query,
    login,
    operator_token,
    superuser_sql,
    utc_at,
    wait_until,
)

SCRIPT = os.path.join(ROOT, "helm", "meeting-rooms", "files", "backup.sh")
DATABASES = ["reservation_db", "room_db", "user_db"]


def backup_script(*args, env):
    """Runs the chart's backup script with libpq's variables in env; returns the process."""
    return subprocess.run(["bash", SCRIPT, *args], env={**os.environ, **env}, cwd="/",
                          capture_output=True, text=True, timeout=300)


def as_app(pg):
    """libpq's variables for the services' role (what the chart's CronJob uses)."""
    u = urllib.parse.urlsplit(pg.url)
    return {"PGHOST": u.hostname, "PGPORT": str(u.port), "PGUSER": u.username,
            "PGPASSWORD": u.password}


def as_superuser(pg):
    """The postgres superuser over the cluster's socket (what `make restore` uses)."""
    return {"PGHOST": pg.dir, "PGPORT": str(pg.port), "PGUSER": "postgres",
            "BACKUP_PG_RUNAS": "postgres"}


def snapshot(pg):
    """Per database: every row of every table (as JSON text, sorted), every sequence's state, and
    the constraints and indexes."""
    out = {}
    for db in DATABASES:
        conn = psycopg2.connect(pg.dsn(db))
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "ORDER BY 1")
                # mail_senders is the mail senders' heartbeat (liveness, rewritten every 30 s
                # by a running reservation-service), not data.
                tables = [r[0] for r in cur.fetchall() if r[0] != "mail_senders"]
                data = {}
                for t in tables:
                    cur.execute(f'SELECT to_jsonb(x)::text FROM "{t}" x')
                    data[t] = sorted(r[0] for r in cur.fetchall())
                cur.execute("SELECT sequencename, last_value FROM pg_sequences "
                            "WHERE schemaname = 'public' ORDER BY 1")
                data["<sequences>"] = cur.fetchall()
                cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                            "ORDER BY 1, 2")
                data["<constraints>"] = cur.fetchall()
                cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' "
                            "ORDER BY 1")
                data["<indexes>"] = cur.fetchall()
                out[db] = data
        finally:
            conn.close()
    return out


def consumed(svc):
    """kafka_messages_consumed_total from svc's /metrics (0 when absent)."""
    text = requests.get(f"{svc.url}/metrics", timeout=10).text
    m = re.search(r"^kafka_messages_consumed_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def copy_of(pg, room_id):
    """reservation-service's copy of a room: (name, capacity, version)."""
    return db_query(pg, "reservation_db", "SELECT name, capacity, version FROM rooms "
                                          "WHERE id = %s", room_id)[0]


def copies_match(pg, ids):
    """True when reservation-service's copy of every room equals room-service's row."""
    return all(db_query(pg, "reservation_db", "SELECT 1 FROM rooms WHERE id = %s", i)
               and copy_of(pg, i) == source_of(pg, i) for i in ids)


def source_of(pg, room_id):
    return db_query(pg, "room_db", "SELECT name, capacity, version FROM rooms WHERE id = %s",
                    room_id)[0]


class Suite:
    """The three services on the module's own cluster, topics and consumer groups."""

    def __init__(self, stack, pg, tag):
        self.stack, self.pg, self.tag = stack, pg, tag
        self.topics = {"ROOM_EVENTS_TOPIC": f"room_events_{tag}",
                       "USER_EVENTS_TOPIC": f"user_events_{tag}",
                       "RESERVATION_EVENTS_TOPIC": f"reservation_events_{tag}"}
        self.user = self.room = self.res = None
        self.runs = 0

    def start(self, group=None):
        self.runs += 1
        t = f"{self.tag}-{self.runs}"
        self.user = self.stack.user_service(tag=f"user-backup-{t}",
                                            DATABASE_URL=self.pg.dsn("user_db"), **self.topics)
        self.room = self.stack.room_service(tag=f"room-backup-{t}",
                                            DATABASE_URL=self.pg.dsn("room_db"),
                                            ROOM_CONSUMER_GROUP=f"room-{self.tag}", **self.topics)
        self.res = self.reservation(group)
        for svc in (self.user, self.room, self.res):
            svc.start()
        return self

    def reservation(self, group=None):
        self.runs += 1
        return self.stack.reservation_service(
            tag=f"reservation-backup-{self.tag}-{self.runs}",
            DATABASE_URL=self.pg.dsn("reservation_db"),
            KAFKA_CONSUMER_GROUP=group or f"res-{self.tag}", **self.topics)

    def stop(self):
        for svc in (self.user, self.room, self.res):
            if svc:
                assert svc.stop() == 0, svc.log_tail()


@pytest.fixture(scope="module")
def restored(stack, tmp_path_factory):
    """Populates, backs up, changes, wipes and restores; returns what the tests compare."""
    pg = Postgres(os.path.join(stack.workdir, "pg-backup"))
    pg.start()
    tag = uuid.uuid4().hex[:8]
    suite = Suite(stack, pg, tag)
    try:
        topics = list(suite.topics.values())
        stack.kafka.create_topics(*topics, *(f"{t}.dlq" for t in topics))
        ctx = populate_and_restore(stack, pg, suite, tmp_path_factory.mktemp("backup"))
        yield ctx
    finally:
        suite.stop()
        pg.stop()


def populate_and_restore(stack, pg, suite, workdir):
    suite.start()
    users, rooms, res = suite.user.url, suite.room.url, suite.res.url
    # Users: the admin and two employees through the real sign-in, one by the operator's token.
    r = login(users, stack.ADMIN_EMAIL)
    assert r.status_code == 200, r.text
    admin = bearer(r.json()["access_token"])
    emps = []
    for name in ("ana", "ben"):
        r = login(users, f"backup-{name}@example.com")
        assert r.status_code == 200, r.text
        emps.append((bearer(r.json()["access_token"]), r.json()["user"]["id"]))
    _, carl = operator_token(suite.user, "backup-carl@example.com")
    # carl becomes admin: a user_role_changed event that both consumers apply.
    r = requests.put(f"{users}/admin/users/{carl}", json={"role": "admin"}, headers=admin,
                     timeout=10)
    assert r.status_code == 200, r.text

    # Rooms (one with every detail, one changed after its creation), then bookings.
    made = [create_room(rooms, admin),
            create_room(rooms, admin, equipment=["Projector", "TV"], building="HQ", floor=3,
                        time_zone="Europe/Berlin", description="corner room"),
            create_room(rooms, admin, capacity=8),
            create_room(rooms, admin)]
    ids = [m["id"] for m in made]
    r = requests.put(f"{rooms}/rooms/{ids[3]}", json={"capacity": 20, "active": False},
                     headers=admin, timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: copies_match(pg, ids), timeout=30, interval=0.2,
               what="reservation-service's copy of the rooms")
    (ana, ana_id), (ben, _) = emps
    booked_ids = [booked(res, ana, ids[0], utc_at(3, 9), utc_at(3, 10))["id"],
                  booked(res, ana, ids[1], utc_at(3, 9), utc_at(3, 10), purpose="review")["id"],
                  booked(res, ben, ids[0], utc_at(3, 10), utc_at(3, 11))["id"],
                  booked(res, ben, ids[2], utc_at(4, 14), utc_at(4, 16))["id"],
                  booked(res, admin, ids[1], utc_at(5, 8), utc_at(5, 9))["id"]]
    r = requests.delete(f"{res}/reservations/{booked_ids[4]}", headers=admin, timeout=10)
    assert r.status_code == 204, r.text
    for db in DATABASES:
        wait_until(lambda d=db: db_query(pg, d, "SELECT count(*) FROM outbox "
                                                "WHERE sent_at IS NULL")[0][0] == 0,
                   timeout=30, interval=0.2, what=f"{db}'s outbox sent")
    for db in ("reservation_db", "room_db"):
        wait_until(lambda d=db: db_query(pg, d, "SELECT 1 FROM token_revocations "
                                                "WHERE user_id = %s", carl),
                   timeout=30, interval=0.2, what=f"carl's role change applied in {db}")
    api = {f"/rooms/{i}": requests.get(f"{rooms}/rooms/{i}", headers=admin, timeout=10).json()
           for i in ids}
    api.update({f"/reservations/{i}": requests.get(f"{res}/reservations/{i}", headers=admin,
                                                   timeout=10).json() for i in booked_ids})
    api["/users/profile"] = requests.get(f"{users}/users/profile", headers=ana, timeout=10).json()

    # The backup, taken while the services run, as the CronJob takes it.
    before = snapshot(pg)
    dumps = workdir / "dumps"
    proc = backup_script("dump", str(dumps), env=as_app(pg))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(dumps)) == sorted(f"{db}.dump" for db in DATABASES)
    assert snapshot(pg) == before, "something changed during the backup"

    # After the backup: a room renamed and resized (through Kafka into the copy), a booking,
    # a new user.  None of it is in the backup.
    r = requests.put(f"{rooms}/rooms/{ids[0]}", json={"name": f"Later {uuid.uuid4().hex[:8]}",
                                                      "capacity": 30},
                     headers=admin, timeout=10)
    assert r.status_code == 200, r.text
    later = r.json()
    wait_until(lambda: copy_of(pg, ids[0]) == (later["name"], 30, 2), timeout=30, interval=0.2,
               what="the update after the backup in reservation-service's copy")
    r = requests.put(f"{rooms}/rooms/{ids[2]}", json={"capacity": 5}, headers=admin, timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: copy_of(pg, ids[2])[1:] == (5, 2), timeout=30, interval=0.2,
               what="the second update after the backup in reservation-service's copy")
    late_booking = booked(res, ana, ids[2], utc_at(6, 9), utc_at(6, 10))["id"]
    r = login(users, "backup-dora@example.com")
    assert r.status_code == 200, r.text
    suite.stop()

    # The wipe, then the restore.
    for db in DATABASES:
        superuser_sql(pg, f"DROP DATABASE {db}")
    assert superuser_sql(pg, "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_db'") == "0"
    proc = backup_script("restore", str(dumps), env=as_superuser(pg))
    assert proc.returncode == 0, proc.stderr
    return {"pg": pg, "suite": suite, "dumps": dumps, "before": before, "after": snapshot(pg),
            "admin": admin, "ana": ana, "ana_id": ana_id, "carl": carl, "ids": ids,
            "booked": booked_ids, "later": later, "late_booking": late_booking, "api": api}


def test_every_row_comes_back_and_nothing_after_the_backup(restored):
    before, after, pg = restored["before"], restored["after"], restored["pg"]
    for db in DATABASES:
        assert after[db] == before[db], db
    # Not vacuous: what the suite holds is in there, and what came after the backup is not.
    assert len(before["room_db"]["rooms"]) == 4
    assert len(before["reservation_db"]["reservations"]) == 5
    assert len(before["user_db"]["users"]) == 4
    for i, capacity in ((0, 4), (2, 8)):
        room = restored["ids"][i]
        assert source_of(pg, room)[1:] == copy_of(pg, room)[1:] == (capacity, 1)
    assert not db_query(pg, "reservation_db", "SELECT 1 FROM reservations WHERE id = %s",
                        restored["late_booking"])
    assert not db_query(pg, "user_db", "SELECT 1 FROM users WHERE email = %s",
                        "backup-dora@example.com")


def test_restore_refuses_while_a_session_is_connected(restored):
    pg = restored["pg"]
    conn = psycopg2.connect(pg.dsn("room_db"), application_name="still-running")
    try:
        proc = backup_script("restore", str(restored["dumps"]), env=as_superuser(pg))
    finally:
        conn.close()
    assert proc.returncode != 0
    assert "room_db (still-running)" in proc.stderr and "nothing was changed" in proc.stderr
    assert snapshot(pg) == restored["after"]


def test_the_overlap_exclusion_still_holds(restored):
    pg = restored["pg"]
    assert ("reservations", "reservations_no_overlap") in {
        c[:2] for c in restored["after"]["reservation_db"]["<constraints>"]}
    ((room, user, start, end),) = db_query(
        pg, "reservation_db", "SELECT room_id, user_id, start_time, end_time FROM reservations "
        "WHERE id = %s", restored["booked"][0])
    # Explicit ids: taking them from the sequence would move it (not undone by the rollback).
    insert = ("INSERT INTO reservations (id, room_id, user_id, start_time, end_time) "
              "VALUES (%s, %s, %s, %s + %s::interval, %s + %s::interval)")
    conn = psycopg2.connect(pg.dsn("reservation_db"))
    try:
        with conn.cursor() as cur:
            # Far from every booking: accepted (so the failure below is the overlap's).
            cur.execute(insert, (900001, room, user, start, "300 days", end, "300 days"))
            with pytest.raises(psycopg2.errors.ExclusionViolation):
                cur.execute(insert, (900002, room, user, start, "30 minutes", end, "30 minutes"))
    finally:
        conn.rollback()
        conn.close()


def test_the_services_work_on_the_restored_data_and_a_replay_changes_nothing(restored, stack):
    pg, suite, ids = restored["pg"], restored["suite"], restored["ids"]
    admin, ana = restored["admin"], restored["ana"]
    suite.start()
    users, rooms, res = suite.user.url, suite.room.url, suite.res.url
    try:
        # Reads: the API answers as before the backup; tokens issued before it still work.
        for path, body in restored["api"].items():
            base = users if path.startswith("/users") else rooms if "rooms" in path else res
            r = requests.get(f"{base}{path}", headers=ana if "users" in path else admin,
                             timeout=10)
            assert (r.status_code, r.json()) == (200, body), path
        # The restored bookings block their slots; a free slot books.
        r = requests.post(f"{res}/reservations", json={
            "room_id": ids[0], "start_time": utc_at(3, 9, 30), "end_time": utc_at(3, 10, 30)},
            headers=ana, timeout=10)
        assert r.status_code == 409, r.text
        new = booked(res, ana, ids[0], utc_at(7, 9), utc_at(7, 10))
        assert new["id"] == max(restored["booked"]) + 1  # the restored sequence goes on

        # Kafka: the group's committed offsets are past the update made after the backup, so it
        # is not applied again: the copy stays as restored.  A room update now reaches
        # reservation-service (which proves its consumer reads), then the copy of room 0 is
        # still the restored one.
        r = requests.put(f"{rooms}/rooms/{ids[1]}", json={"capacity": 11}, headers=admin,
                         timeout=10)
        assert r.status_code == 200, r.text
        wait_until(lambda: copy_of(pg, ids[1])[1:] == (11, 2), timeout=30, interval=0.2,
                   what="an update after the restore in reservation-service's copy")
        time.sleep(2)
        assert copy_of(pg, ids[0]) == source_of(pg, ids[0])
        assert copy_of(pg, ids[0])[1:] == (4, 1)
        assert consumed(suite.res) == 1

        # Room 0 changes again: version 2, which the event made after the backup already carried
        # (with other values).  The copy holds version 1, so the new event is applied.
        r = requests.put(f"{rooms}/rooms/{ids[0]}", json={"capacity": 6}, headers=admin,
                         timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.json()["name"] != restored["later"]["name"]
        wait_until(lambda: copy_of(pg, ids[0]) == source_of(pg, ids[0]), timeout=30,
                   interval=0.2, what="room 0's new version 2 in reservation-service's copy")
        assert copy_of(pg, ids[0])[1:] == (6, 2)
    finally:
        suite.stop()

    # A replay: reservation-service in a new consumer group reads every room and user event
    # from the beginning - those before the backup, the two after it, those after the restore.
    settled = snapshot(pg)["reservation_db"]
    total = sum(len(stack.kafka.read(suite.topics[t]))
                for t in ("ROOM_EVENTS_TOPIC", "USER_EVENTS_TOPIC"))
    assert total >= 10
    svc = suite.reservation(group=f"res-{suite.tag}-replay")
    suite.res = svc
    svc.start()
    wait_until(lambda: consumed(svc) >= total, timeout=60, interval=0.3,
               what=f"all {total} events consumed again")
    time.sleep(1)
    assert consumed(svc) == total
    replayed = snapshot(pg)["reservation_db"]
    assert svc.stop() == 0

    # What it changed: room 2's copy took the values of the update made after the backup, which
    # room-service's restored row no longer has (room 0's was overtaken by its update after the
    # restore); token_revocations.updated_at is renewed by every revocation applied.  Nothing
    # else: every reservation, every other room, every revocation's time and reason.
    assert copy_of(pg, ids[2])[1:] == (5, 2) and source_of(pg, ids[2])[1:] == (8, 1)
    assert copy_of(pg, ids[0]) == source_of(pg, ids[0])
    room2 = f'"id": {ids[2]},'

    def comparable(data):
        rows = [re.sub(r'"updated_at": "[^"]*"', '"updated_at": ""', row)
                for row in data["token_revocations"]]
        return {**data, "token_revocations": rows,
                "rooms": [row for row in data["rooms"] if room2 not in row]}
    assert comparable(replayed) == comparable(settled)
    assert len(comparable(settled)["rooms"]) == 3
    assert comparable(settled)["token_revocations"]

    # The way back (the chart's README, "Backups"): the copy's versions to 0, then room-service
    # publishes every room again.
    db_query(pg, "reservation_db", "UPDATE rooms SET version = 0 WHERE NOT deleted")
    db_query(pg, "room_db", "INSERT INTO room_republish DEFAULT VALUES")
    suite.start()
    wait_until(lambda: copies_match(pg, ids), timeout=30, interval=0.2,
               what="reservation-service's copy equal to room-service's rooms again")
    assert copy_of(pg, ids[2])[1:] == (8, 1)
