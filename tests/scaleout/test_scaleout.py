"""Three replicas of every service behind one gateway, under mixed load, losing replicas.

A few client threads talk to the gateway only: two employees book (each POST with an
Idempotency-Key, repeated with the same key after a 5xx or a connection error) and cancel, an
admin edits, creates and deletes rooms and deletes users, a reader asks for availability,
find-a-room, rooms, profiles and reservation lists.  Meanwhile:

- kill -9 one replica of each service (each service's outbox publisher, i.e. the holder of its
  lock), then the new publisher of each, then start all six again (test_replicas_killed);
- SIGTERM one of three replicas of each service (test_scale_in_loses_nothing);
- a room edit and a user's revocation are read back from every replica (test_caches_agree).

What a client sees is asserted: no failed read; every failed write a clean 502/503/504 JSON
answer or a connection error, and the booking's retries give one reservation per key; no
overlapping confirmed reservations; every outbox row on the broker (copies identical, duplicates
only a killed publisher's unmarked batch), per key in outbox order, and applied once
(reservation-service's room copies equal room-service's rooms, each reservation cancelled at
most once, the deleted users' bookings cancelled, and every consumer group's committed offsets
at the end of every partition).  Measured and bounded: the publisher
takeover after its holder's kill -9, the consumer group's rebalance (a probe message on every
partition of room_events, from the kill until each is applied).  Figures are printed and
written to build/reliability/scaleout_*.json.
"""
import collections
import contextlib
import datetime
import json
import random
import subprocess
import threading
import time
import uuid

import pytest
import requests
from cluster import SERVICES, metric
from offsets import lag

from harness import db_query, overlapping_confirmed_pairs, wait_until, write_reliability

TAKEOVER_MAX = 5.0        # the target for the publisher lock (outbox.c: 1 s retries)
# A consumer's death is noticed after session.timeout.ms (6 s, common/src/kafka.c), then the
# survivors rejoin on their next heartbeat (2 s) and are assigned the partitions.
REBALANCE_MAX = 12.0
CACHE_MAX = 1.0           # room cache and revocation copies (docs/architecture.md)
OUTBOX_BATCH = 200        # common/src/outbox.c
PROBE_BASE = 900000       # room ids of the rebalance probes (room-service never reaches them)
ROOMS = 8
PACE = 0.02
CLEAN_5XX = {502, 503, 504}
DATABASES = {"user": "user_db", "room": "room_db", "reservation": "reservation_db"}
TOPICS = ("user_events", "room_events", "reservation_events")
TIMEOUT = 20


def z(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Load:
    """The client threads; every request goes through the gateway and is recorded."""

    def __init__(self, cluster, world):
        self.url = cluster.url
        self.world = world
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.counts = collections.Counter()      # (method kind, outcome) -> n
        self.bad = []                            # answers that break a guarantee
        self.failures = []                       # (method, path, what) not answered
        self.threads = []

    @staticmethod
    def session():
        """A client session that asks for a new connection per request (`Connection: close`).
        A gateway reload (the scale-in) closes the client connections its old workers hold idle;
        a client that reused one just then would see a reset for a request no service ever saw
        (review 19b M1).  The connections under test are the gateway's to the services, which
        stay kept alive."""
        s = requests.Session()
        s.headers["Connection"] = "close"
        return s

    # ---- one request, classified ----
    def call(self, s, method, path, **kw):
        """Sends one request; returns the response, or None after a connection error.  Reads
        must be answered (< 500); a write may fail only cleanly (502/503/504 with the JSON
        error shape, or no answer), which the caller may then repeat."""
        kind = {"GET": "read", "POST": "post"}.get(method, "put_delete")
        try:
            r = s.request(method, self.url + path, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            self.note(kind, "connection_error", (method, path, repr(exc)), kind == "read")
            return None
        if r.status_code < 500:
            self.note(kind, "answered")
            return r
        clean = r.status_code in CLEAN_5XX and is_json_error(r)
        self.note(kind, f"{r.status_code}" + ("" if clean else "_unclean"),
                  (method, path, f"{r.status_code} {r.text[:200]}"), kind == "read" or not clean)
        return r

    def note(self, kind, outcome, failure=None, bad=False):
        with self.lock:
            self.counts[(kind, outcome)] += 1
            if failure:
                self.failures.append(failure)
                if bad:
                    self.bad.append(failure)

    def retried(self, s, method, path, **kw):
        """A write repeated (same request, same headers) after a clean failure, up to 15 s."""
        deadline = time.monotonic() + 15
        while True:
            r = self.call(s, method, path, **kw)
            if r is not None and r.status_code < 500:
                return r
            if time.monotonic() > deadline:
                return r
            with self.lock:
                self.counts[("retried", "writes")] += 1
            time.sleep(0.1)

    # ---- the clients ----
    def booker(self, index):
        w = self.world
        headers, _ = w.bookers[index]
        rng = random.Random(index)
        mine = []
        with self.session() as s:
            while not self.stopping.is_set():
                if mine and rng.random() < 0.25:
                    rid = mine.pop(rng.randrange(len(mine)))
                    self.retried(s, "DELETE", f"/reservations/{rid}", headers=headers)
                else:
                    start = w.today + datetime.timedelta(
                        days=rng.randint(1, 20), minutes=30 * rng.randrange(16, 36))
                    key = str(uuid.uuid4())
                    body = {"room_id": rng.choice(w.rooms), "start_time": z(start),
                            "end_time": z(start + datetime.timedelta(minutes=30)),
                            "purpose": f"scale-out {index}"}
                    r = self.retried(s, "POST", "/reservations", json=body,
                                     headers={**headers, "Idempotency-Key": key})
                    if r is not None and r.status_code == 201:
                        rid = r.json()["id"]
                        mine.append(rid)
                        with self.lock:
                            w.booked[index][key].add(rid)
                self.read(s, rng, headers)
                time.sleep(PACE)

    def admin(self):
        w = self.world
        rng = random.Random(99)
        n = 0
        with self.session() as s:
            while not self.stopping.is_set():
                n += 1
                if n % 10 == 0 and w.victims:
                    uid = w.victims.pop()
                    r = self.retried(s, "DELETE", f"/admin/users/{uid}", headers=w.admin)
                    if r is not None and r.status_code in (204, 404):
                        w.deleted_users.append(uid)
                elif n % 6 == 0:
                    name = f"Scale-out temp {uuid.uuid4().hex[:10]}"
                    r = self.retried(s, "POST", "/rooms", headers=w.admin,
                                     json={"name": name, "capacity": 3})
                    if r is not None and r.status_code == 201:
                        w.temp_rooms.append(r.json()["id"])
                elif n % 6 == 3 and w.temp_rooms:
                    rid = w.temp_rooms.pop(0)
                    self.retried(s, "DELETE", f"/rooms/{rid}", headers=w.admin)
                else:
                    rid = rng.choice(w.rooms)
                    self.retried(s, "PUT", f"/rooms/{rid}", headers=w.admin,
                                 json={"capacity": rng.randint(2, 30)})
                time.sleep(5 * PACE)

    def reader(self):
        rng = random.Random(7)
        headers = self.world.bookers[0][0]
        with self.session() as s:
            while not self.stopping.is_set():
                self.read(s, rng, headers)
                time.sleep(PACE)

    def read(self, s, rng, headers):
        w = self.world
        day = w.today + datetime.timedelta(days=rng.randint(1, 20))
        x = rng.randrange(5)
        if x == 0:
            self.call(s, "GET", "/availability", headers=headers,
                      params={"room_id": rng.choice(w.rooms), "date": day.strftime("%Y-%m-%d")})
        elif x == 1:
            start = day + datetime.timedelta(hours=rng.randint(8, 16))
            self.call(s, "GET", "/availability/rooms", headers=headers,
                      params={"start": z(start), "end": z(start + datetime.timedelta(hours=1)),
                              "capacity": 2})
        elif x == 2:
            self.call(s, "GET", f"/rooms/{rng.choice(w.rooms)}", headers=headers)
        elif x == 3:
            self.call(s, "GET", "/users/me", headers=headers)
        else:
            self.call(s, "GET", "/reservations", headers=headers, params={"limit": 10})

    def __enter__(self):
        self.threads = [threading.Thread(target=self.booker, args=(i,), daemon=True)
                        for i in range(len(self.world.bookers))]
        self.threads += [threading.Thread(target=self.admin, daemon=True),
                         threading.Thread(target=self.reader, daemon=True)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)

    def figures(self):
        return {f"{kind}_{outcome}": n for (kind, outcome), n in sorted(self.counts.items())}


def is_json_error(r):
    try:
        body = r.json()
    except ValueError:
        return False
    return (r.headers.get("Content-Type", "").startswith("application/json")
            and body.get("error") is True and body.get("status_code") == r.status_code)


class World:
    """What the clients share: rooms, users, and what they were told."""

    def __init__(self, cluster, tag):
        self.today = datetime.datetime.now(datetime.UTC).replace(hour=0, minute=0, second=0,
                                                                  microsecond=0)
        self.admin, _ = cluster.token(f"so-admin-{tag}@example.com", role="admin")
        self.bookers = [cluster.token(f"so-booker{i}-{tag}@example.com") for i in range(2)]
        self.booked = [collections.defaultdict(set) for _ in self.bookers]
        self.temp_rooms, self.deleted_users = [], []
        url = cluster.url
        self.rooms = []
        for i in range(ROOMS):
            r = requests.post(f"{url}/rooms", headers=self.admin, timeout=TIMEOUT,
                              json={"name": f"Scale-out {tag} {i}", "capacity": 8})
            assert r.status_code == 201, r.text
            self.rooms.append(r.json()["id"])
        # Users deleted under load, each holding a future booking their deletion cancels.
        self.victims = []
        self.victim_bookings = {}
        for i in range(6):
            headers, uid = cluster.token(f"so-victim{i}-{tag}@example.com")
            self.victims.append(uid)
            self.victim_bookings[uid] = headers
        wait_until(lambda: all(known_room(url, self.admin, rid) for rid in self.rooms),
                   timeout=30, interval=0.1, what="the rooms known to reservation-service")
        for i, (uid, headers) in enumerate(self.victim_bookings.items()):
            start = self.today + datetime.timedelta(days=25, hours=8 + i)
            r = requests.post(f"{url}/reservations", headers=headers, timeout=TIMEOUT,
                              json={"room_id": self.rooms[0], "start_time": z(start),
                                    "end_time": z(start + datetime.timedelta(minutes=30))})
            assert r.status_code == 201, r.text
            self.victim_bookings[uid] = r.json()["id"]


def known_room(url, headers, rid):
    r = requests.get(f"{url}/availability", headers=headers, timeout=TIMEOUT,
                     params={"room_id": rid, "date": "2030-01-01"})
    return r.status_code == 200


# ---- the publisher lock and the consumer group ----

def leader(replicas):
    """The replica whose outbox publisher holds the lock (None while none does)."""
    leaders = [svc for svc in replicas if svc.proc.poll() is None
               and metric(svc, "outbox_leader") == 1]
    assert len(leaders) <= 1, [svc.log_path for svc in leaders]
    return leaders[0] if leaders else None


class Probes:
    """One room_updated event per partition of room_events, for rooms PROBE_BASE + p that only
    the probes write: reservation-service applies it when the partition is consumed."""

    def __init__(self, kafka, pg):
        self.kafka, self.pg = kafka, pg
        self.partitions = range(kafka.partitions("room_events"))
        self.version = 0

    def send(self):
        """Produces the next round (one message per partition); returns its version."""
        self.version += 1
        procs = []
        for p in self.partitions:
            rid = PROBE_BASE + p
            value = json.dumps({"event_type": "room_updated", "event_id": f"probe-{uuid.uuid4()}",
                                "version": self.version,
                                "room": {"id": rid, "name": f"probe {p}", "capacity": 1,
                                         "active": False, "time_zone": "UTC"}})
            procs.append(subprocess.Popen(["kcat", "-b", self.kafka.bootstrap, "-P", "-t",
                                           "room_events", "-p", str(p), "-k", str(rid)],
                                          stdin=subprocess.PIPE, text=True))
            procs[-1].stdin.write(value)
            procs[-1].stdin.close()
        for proc in procs:
            assert proc.wait(timeout=20) == 0
        return self.version

    def applied(self, version):
        rows = db_query(self.pg, "reservation_db", "SELECT count(*) FROM rooms WHERE id >= %s "
                        "AND version >= %s", PROBE_BASE, version)
        return rows[0][0] == len(self.partitions)


def timed(predicate, timeout, what, t0=None):
    """Seconds from t0 (default: now) until predicate() is true."""
    return timed_all({what: predicate}, timeout, t0)[what]


def timed_all(predicates, timeout, t0=None):
    """{name: seconds from t0 (default: now) until predicates[name]() was first true}, all
    polled together so that a slow one does not delay the others' figures."""
    t0 = time.monotonic() if t0 is None else t0
    seen = {}

    def all_seen():
        for name, predicate in predicates.items():
            if name not in seen and predicate():
                seen[name] = round(time.monotonic() - t0, 2)
        return len(seen) == len(predicates)
    try:
        wait_until(all_seen, timeout=timeout, interval=0.05, what="all of them")
    except AssertionError:
        raise AssertionError(f"after {timeout} s still not: "
                             f"{[str(k) for k in predicates if k not in seen]}") from None
    return seen


def timed_apart(predicates, timeout):
    """timed_all with each predicate polled in a thread of its own, so that one replica's slow
    answer does not delay the others' figures (a round of sequential requests on a sanitizer
    build takes about as long as the bound being measured)."""
    t0 = time.monotonic()
    seen = {}

    def poll(name, predicate):
        with contextlib.suppress(AssertionError):
            wait_until(predicate, timeout=timeout, interval=0.02, what=str(name))
            seen[name] = round(time.monotonic() - t0, 2)
    threads = [threading.Thread(target=poll, args=item, daemon=True)
               for item in predicates.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    missing = [str(k) for k in predicates if k not in seen]
    assert not missing, f"after {timeout} s still not: {missing}"
    return seen


# ---- the checks after the load ----

def settle(cluster):
    """Waits until every outbox is drained and reservation-service's room copies equal
    room-service's rooms (the probe rooms aside); returns the seconds it took."""
    from soak import room_mismatches
    stack = cluster.stack

    def done():
        if any(db_query(stack.pg, db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]
               for db in DATABASES.values()):
            return False
        return not [m for m in room_mismatches(stack) if m["room"] < PROBE_BASE]
    return timed(done, 60, "the outboxes drained and the room copies equal")


def check_events(cluster, leader_kills):
    """Every outbox row on the broker, copies identical, per key in outbox order; returns the
    figures.  Duplicates are allowed only as at-least-once explains them: a batch a killed
    publisher had produced but not yet marked sent is produced again by its successor."""
    pg, kafka = cluster.stack.pg, cluster.stack.kafka
    rows = {}   # event id -> (topic, key, outbox id, payload)
    for db in DATABASES.values():
        for oid, topic, key, payload in db_query(
                pg, db, "SELECT id, topic, key, payload::text FROM outbox ORDER BY id"):
            rows[json.loads(payload)["event_id"]] = (topic, key, oid, payload)
    copies = collections.Counter()
    first = collections.defaultdict(list)   # (topic, key) -> outbox ids in broker order
    phantoms = []
    for topic in TOPICS:
        for m in kafka.read(topic, timeout=60):
            eid = (m["value"] or {}).get("event_id", "")
            if eid.startswith("probe-"):
                continue
            row = rows.get(eid)
            if row is None or (row[0], row[1], row[3]) != (topic, m["key"], m["payload"]):
                phantoms.append((topic, m["key"], m["payload"][:120]))
                continue
            if copies[eid] == 0:
                first[(topic, m["key"])].append(row[2])
            copies[eid] += 1
    missing = [eid for eid in rows if copies[eid] == 0]
    out_of_order = {k: ids for k, ids in first.items() if ids != sorted(ids)}
    duplicates = sum(copies.values()) - len(copies)
    assert not phantoms, f"messages that are no outbox row: {phantoms[:3]}"
    assert not missing, f"{len(missing)} outbox rows never reached the broker: {missing[:3]}"
    assert not out_of_order, f"per-key order broken: {list(out_of_order.items())[:3]}"
    assert max(copies.values()) <= 2, copies.most_common(3)
    assert duplicates <= leader_kills * OUTBOX_BATCH, duplicates
    return {"outbox_rows": len(rows), "published_copies": sum(copies.values()),
            "duplicate_copies": duplicates}


# The consumer groups and what they read (the services' defaults).
GROUPS = {"reservation-service": ("room_events", "user_events"),
          "room-service": ("user_events",)}


def check_consumed(cluster):
    """Every group's committed offset reaches the end of every partition it reads (offsets are
    stored only after a message was applied): nothing behind, nothing skipped unapplied, as the
    equal room copies and the cancelled bookings show for the messages themselves."""
    kafka = cluster.stack.kafka
    wanted = {g: [(t, p) for t in ts for p in range(kafka.partitions(t))]
              for g, ts in GROUPS.items()}
    behind = {}

    def caught_up():
        behind.clear()
        for group, parts in wanted.items():
            behind.update({(group, *k): n for k, n in lag(kafka.bootstrap, group, parts).items()
                           if n})
        return not behind
    try:
        return {"consumed_to_end_s": timed(caught_up, 20, "every group at the partitions' end")}
    except AssertionError:
        raise AssertionError(f"messages after the committed offsets: {behind}") from None


def check_applied_once(cluster, world):
    """Each reservation cancelled at most once (one reservation_cancelled event id per key),
    and the deleted users' bookings cancelled."""
    pg = cluster.stack.pg
    cancels = collections.Counter()
    for (key,) in db_query(pg, "reservation_db", "SELECT key FROM outbox WHERE "
                           "payload->>'event_type' = 'reservation_cancelled'"):
        cancels[key] += 1
    twice = {k: n for k, n in cancels.items() if n > 1}
    assert not twice, f"reservations cancelled more than once: {twice}"
    gone = [world.victim_bookings[uid] for uid in world.deleted_users]
    if gone:
        still = db_query(pg, "reservation_db", "SELECT id FROM reservations WHERE id = ANY(%s) "
                         "AND status = 'confirmed'", gone)
        assert not still, f"deleted users' bookings still confirmed: {still}"
    return {"reservations_cancelled": sum(cancels.values()), "users_deleted": len(gone)}


def check_bookings(cluster, world):
    """One reservation per Idempotency-Key, and exactly the ones the clients were told of."""
    pg = cluster.stack.pg
    told = 0
    for (_, uid), booked in zip(world.bookers, world.booked, strict=True):
        multi = {k: ids for k, ids in booked.items() if len(ids) > 1}
        assert not multi, f"one key, several reservations: {multi}"
        ids = {i for s in booked.values() for i in s}
        stored = {i for (i,) in db_query(pg, "reservation_db",
                                         "SELECT id FROM reservations WHERE user_id = %s", uid)}
        assert stored == ids, (f"user {uid}: stored but not told {sorted(stored - ids)[:5]}, "
                               f"told but not stored {sorted(ids - stored)[:5]}")
        told += len(ids)
    pairs = overlapping_confirmed_pairs(pg)
    assert not pairs, f"overlapping confirmed reservations: {pairs[:5]}"
    return {"bookings": told}


@pytest.fixture(scope="module")
def world(cluster):
    return World(cluster, uuid.uuid4().hex[:6])


@pytest.fixture(scope="module")
def probes(cluster):
    return Probes(cluster.stack.kafka, cluster.stack.pg)


def took_over(cluster, name, gone):
    """A check: another replica of the service than gone publishes."""
    rest = [svc for svc in cluster.replicas[name] if svc is not gone]
    return lambda: leader(rest)


def kill_leaders(cluster, probes, figures, label):
    """kill -9 the publisher of each service, then measures the takeovers and the rebalance."""
    victims = {}
    for name in SERVICES:
        reps = cluster.replicas[name]
        victims[name] = wait_until(lambda reps=reps: leader(reps), timeout=15,
                                   what=f"a {name}-service publisher")
    t0 = time.monotonic()
    for svc in victims.values():
        svc.proc.kill()
    version = probes.send()
    checks = {f"takeover_s_{name}_{label}": took_over(cluster, name, dead)
              for name, dead in victims.items()}
    checks[f"rebalance_s_{label}"] = lambda: probes.applied(version)
    figures.update(timed_all(checks, REBALANCE_MAX * 2, t0))
    for svc in victims.values():
        svc.proc.wait(timeout=10)
    return list(victims.values())


def keepalive_timers(pg, db):
    """(the seconds until the server's next keepalive probe on the session holding db's
    publisher lock, [the same for each of the service's pool sessions]), as the kernel shows
    the server's sockets (ss); a socket with data in flight shows its retransmission timer
    instead and is left out (None for the publisher's)."""
    import re
    rows = db_query(pg, db, "SELECT a.client_port, EXISTS (SELECT 1 FROM pg_locks l WHERE "
                    "l.pid = a.pid AND l.locktype = 'advisory' AND l.granted AND l.objid IN "
                    "(5000, 5001, 5002)), a.query ILIKE '%%advisory%%' FROM pg_stat_activity a "
                    "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
                    "AND a.client_port IS NOT NULL")
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{pg.port} )"],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    timers = {}
    for line in out.splitlines():
        m = re.search(r":(\d+)\s+timer:\(keepalive,(?:(\d+)min)?(?:([\d.]+)(sec|ms))?,", line)
        if m:
            minutes, number, unit = m.group(2), m.group(3), m.group(4)
            seconds = 60 * float(minutes or 0)
            if number:
                # ss writes seconds and their milliseconds as "4.280ms" (iproute2 6.1).
                ms = unit == "ms" and "." not in number
                seconds += float(number) / 1000 if ms else float(number)
            timers[int(m.group(1))] = seconds
    publisher = [timers.get(port) for port, leads, _ in rows if leads]
    # Not the followers' publisher sessions, which set the same values as the leader's.
    pool = [timers[port] for port, leads, follows in rows
            if not leads and not follows and port in timers]
    return (publisher[0] if publisher else None), pool


def test_publisher_sessions_are_probed(cluster):
    """The server probes each publisher's session after 1 s of silence, as the publisher's own
    session asks (outbox.c's outbox_session_sql), so that the lock of a replica whose host died
    is released within seconds; the service's pool sessions keep the server-wide values
    (scripts/pg.sh: 5 s, then every 2 s).  A keepalive timer counts down to the next probe and
    starts again at most at the idle time (busy) or the interval (idle, after a probe): sampled
    for 2.5 s, the publisher's never shows more than 1 s, and a pool session's does (which the
    server-wide values alone give)."""
    for svc in cluster.all():
        requests.get(f"{svc.url}/ready", timeout=TIMEOUT)
    publisher = {db: [] for db in DATABASES.values()}
    pool = {db: [] for db in DATABASES.values()}
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        for db in DATABASES.values():
            lead, rest = keepalive_timers(cluster.stack.pg, db)
            if lead is not None:
                publisher[db].append(lead)
            pool[db] += rest
        time.sleep(0.1)
    assert all(publisher.values()), publisher
    assert all(max(t) <= 1.0 for t in publisher.values()), publisher
    assert all(pool.values()) and all(max(t) > 1.1 for t in pool.values()), pool


def test_replicas_killed(cluster, world, probes, request):
    figures = {}
    # A settled group first: every partition consumed (the replicas joined one after another).
    figures["probe_s_steady"] = timed(lambda: probes.applied(probes.send()), 60,
                                      "the probes before the faults")
    with Load(cluster, world) as load:
        time.sleep(2)
        killed = kill_leaders(cluster, probes, figures, "first")
        time.sleep(1)
        killed += kill_leaders(cluster, probes, figures, "second")
        t0 = time.monotonic()
        cluster.restart(killed)
        figures["restart_ready_s"] = round(time.monotonic() - t0, 2)
        figures["probe_s_after_restart"] = timed(lambda: probes.applied(probes.send()),
                                              REBALANCE_MAX * 2, "the probes after the restart")
        time.sleep(1)
    figures.update(load.figures())
    figures["settle_s"] = settle(cluster)
    figures.update(check_bookings(cluster, world))
    figures.update(check_events(cluster, leader_kills=6))
    figures.update(check_consumed(cluster))
    figures.update(check_applied_once(cluster, world))
    write_reliability("scaleout_kill", figures)
    print(f"\n{request.node.name}: {figures}")
    assert not load.bad, f"{len(load.bad)} failures a client must not see: {load.bad[:5]}"
    assert figures.get("read_answered", 0) > 100 and figures.get("post_answered", 0) > 50, figures
    takeovers = [v for k, v in figures.items() if k.startswith("takeover_s_")]
    assert max(takeovers) < TAKEOVER_MAX, figures
    rebalances = [v for k, v in figures.items() if k.startswith("rebalance_s_")]
    assert max(rebalances) < REBALANCE_MAX, figures


def test_caches_agree(cluster, world):
    """A room edit through the gateway is read on every room-service replica within CACHE_MAX,
    and a disabled user's token is refused by the replicas of each service within CACHE_MAX of
    each other (they read the same table, fed by each service's consumer)."""
    rid = world.rooms[1]
    r = requests.put(f"{cluster.url}/rooms/{rid}", headers=world.admin, timeout=TIMEOUT,
                     json={"capacity": 41})
    assert r.status_code == 200, r.text
    edit = timed_apart({svc.log_path: room_capacity_is(svc, world.admin, rid, 41)
                        for svc in cluster.replicas["room"]}, 10)
    assert max(edit.values()) <= CACHE_MAX, edit

    headers, uid = cluster.token(f"so-revoked-{uuid.uuid4().hex[:6]}@example.com")
    asks = {svc: "/rooms" for svc in cluster.replicas["room"]}
    asks.update({svc: "/reservations" for svc in cluster.replicas["reservation"]})
    for svc, path in asks.items():
        assert requests.get(svc.url + path, headers=headers, timeout=TIMEOUT).status_code == 200
    r = requests.put(f"{cluster.url}/admin/users/{uid}", headers=world.admin, timeout=TIMEOUT,
                     json={"disabled": True})
    assert r.status_code == 200, r.text
    refused = timed_apart({svc: answers(svc, path, headers, 401) for svc, path in asks.items()},
                          15)
    by = {name: sorted(refused[svc] for svc in cluster.replicas[name])
          for name in ("room", "reservation")}
    assert all(lag[-1] - lag[0] <= CACHE_MAX for lag in by.values()), by
    figures = {"room_edit_s": sorted(edit.values()), "revocation_s": by}
    write_reliability("scaleout_caches", figures)
    print(f"\ncaches: {figures}")


def room_capacity_is(svc, headers, rid, capacity):
    return lambda: requests.get(f"{svc.url}/rooms/{rid}", headers=headers,
                                timeout=TIMEOUT).json()["capacity"] == capacity


def answers(svc, path, headers, status):
    return lambda: requests.get(svc.url + path, headers=headers,
                                timeout=TIMEOUT).status_code == status


def gateway_errors(cluster):
    """The gateway's error log's last 20 lines but refused connections (which it passed on)."""
    import os
    try:
        with open(os.path.join(cluster.set.gateway.dir, "error.log"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    return "\n".join([ln for ln in lines if "Connection refused" not in ln][-20:])


def test_scale_in_loses_nothing(cluster, world, probes, request):
    """One of three replicas of each service scaled in under load as Kubernetes does it: taken
    out of the gateway (nginx.sh reload), then SIGTERM (drain, stop).  No request through the
    gateway fails in any way, whatever its method."""
    figures = {}
    with Load(cluster, world) as load:
        time.sleep(1.5)
        leaving = [leader(cluster.replicas[name]) or cluster.replicas[name][0]
                   for name in SERVICES]
        t0 = time.monotonic()
        cluster.set.scale_in(leaving)
        figures["out_of_gateway_s"] = round(time.monotonic() - t0, 2)
        version = probes.send()
        checks = {f"takeover_s_{name}": took_over(cluster, name, svc)
                  for svc, name in zip(leaving, SERVICES, strict=True)}
        checks["rebalance_s"] = lambda: probes.applied(version)
        figures.update(timed_all(checks, 30, t0))
        for svc in leaving:
            assert svc.proc.wait(timeout=20) == 0, svc.log_tail()
        figures["stopped_s"] = round(time.monotonic() - t0, 2)
        time.sleep(1)
    figures.update(load.figures())
    write_reliability("scaleout_scale_in", figures)
    print(f"\n{request.node.name}: {figures}")
    assert not load.failures, (f"requests lost in the scale-in: {load.failures[:5]}\n"
                               + gateway_errors(cluster))
    assert figures.get("post_answered", 0) > 20, figures
    cluster.restart(leaving)
