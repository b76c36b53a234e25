"""PostgreSQL goes away under load and comes back (docs/operations.md#faults: 503 `unavailable` with
Retry-After, /health and /ready 503 while the database is down, recovery without a restart).

A few client threads keep all three services busy (reads and writes, each write with a unique
name or purpose so that the database can be compared with what the client was told), the
session's PostgreSQL is stopped (fast shutdown) or killed (immediate shutdown, a crash), started
again, and the load goes on. Afterwards: no answer was a 500 or a dropped connection, no process
died, every 201 is in the database with its outbox event, nothing the client was told failed is
there. A last test crashes the database once more and leaves the services idle for 70 s before
asking every worker thread again: none may answer 503 (libpq can report a connection
severed by the crash as OK; db.c drops it and retries). Named zz: it stops the session's
database (and always starts it again). Figures go to build/reliability/<test>.json.
"""
import collections
import datetime
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
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

DOWN_SECONDS = 4.0        # load against the stopped database
BEFORE_SECONDS = 3.0      # load before the fault
AFTER_SECONDS = 4.0       # load after every service is ready again
PACE = 0.01               # pause between two requests of one client thread
TIMEOUT = 30              # a reply slower than this counts as a hang


class Load:
    """Client threads (two per service) that record every request as a dict: svc, op, key (the
    unique name, purpose, e-mail or id it concerns), t0/t1 (monotonic), status, code,
    retry_after, location, body, error (a failed connection or a timeout)."""

    def __init__(self, stack, tag, emp_headers, admin_headers, rooms, res_rooms, day):
        self.stack, self.tag, self.day = stack, tag, day
        self.emp, self.admin = emp_headers, admin_headers
        self.rooms, self.res_rooms = rooms, res_rooms
        self.records = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.booked = []          # reservation ids answered 201, not yet cancelled
        self.slot = 0
        self.threads = []

    # -- bookkeeping --
    def call(self, svc, op, key, fn):
        t0 = time.monotonic()
        rec = {"svc": svc, "op": op, "key": key, "t0": t0, "status": None, "code": None,
               "retry_after": None, "location": None, "error": None, "body": None}
        try:
            r = fn()
            rec["status"] = r.status_code
            rec["retry_after"] = r.headers.get("Retry-After")
            rec["location"] = r.headers.get("Location")
            if r.headers.get("Content-Type", "").startswith("application/json") and r.content:
                try:
                    rec["body"] = r.json()
                except ValueError:
                    rec["body"] = r.text[:200]
                if isinstance(rec["body"], dict):
                    rec["code"] = rec["body"].get("code")
        except requests.RequestException as exc:
            rec["error"] = repr(exc)
        rec["t1"] = time.monotonic()
        with self.lock:
            self.records.append(rec)
        return rec

    def next_slot(self):
        with self.lock:
            self.slot += 1
            return self.slot

    # -- the client threads --
    def user_a(self, s):
        url = self.stack.user.url
        n = 0
        while not self.stopping.is_set():
            n += 1
            self.call("user", "profile_get", None,
                      lambda: s.get(f"{url}/users/profile", headers=self.emp, timeout=TIMEOUT))
            name = f"DBF {self.tag} {n}"
            self.call("user", "profile_put", name,
                      lambda name=name: s.put(f"{url}/users/profile", json={"name": name},
                                    headers=self.emp, timeout=TIMEOUT))
            time.sleep(PACE)

    def user_b(self, s):
        url = self.stack.user.url
        n = 0
        while not self.stopping.is_set():
            n += 1
            self.call("user", "admin_list", None,
                      lambda: s.get(f"{url}/admin/users", params={"limit": 5},
                                    headers=self.admin, timeout=TIMEOUT))
            if n % 3 == 0:
                self.login(s, f"dbf-{self.tag}-{n}@example.com")
            time.sleep(PACE)

    def login(self, s, email):
        """The real sign-in; the recorded status is the first service answer that is not the
        expected redirect, or the callback's."""
        url = self.stack.user.url
        rec = self.call("user", "login_start", email,
                        lambda: s.get(f"{url}/auth/google/login", params={"login_hint": email},
                                      allow_redirects=False, timeout=TIMEOUT))
        if rec["status"] != 302:
            return
        authorize = s.get(rec["location"], allow_redirects=False, timeout=TIMEOUT)
        assert authorize.status_code == 302, authorize.text
        callback = authorize.headers["Location"]
        self.call("user", "login", email,
                  lambda: s.get(callback, allow_redirects=False, timeout=TIMEOUT))

    def room_a(self, s):
        url = self.stack.room.url
        n = 0
        while not self.stopping.is_set():
            n += 1
            name = f"DBF-{self.tag}-{n}"
            self.call("room", "create", name,
                      lambda name=name: s.post(f"{url}/rooms", json={"name": name, "capacity": 3},
                                     headers=self.admin, timeout=TIMEOUT))
            time.sleep(PACE)

    def room_b(self, s):
        url = self.stack.room.url
        n = 0
        while not self.stopping.is_set():
            n += 1
            rid = self.rooms[n % len(self.rooms)]
            self.call("room", "list", None,
                      lambda: s.get(f"{url}/rooms", params={"limit": 5}, headers=self.emp,
                                    timeout=TIMEOUT))
            self.call("room", "update", rid,
                      lambda rid=rid, n=n: s.put(f"{url}/rooms/{rid}", json={"capacity": 5 + n % 7},
                                    headers=self.admin, timeout=TIMEOUT))
            self.call("room", "get", rid,
                      lambda rid=rid: s.get(f"{url}/rooms/{rid}", headers=self.emp,
                                            timeout=TIMEOUT))
            time.sleep(PACE)

    def res_a(self, s):
        url = self.stack.reservation.url
        base = datetime.datetime.now(datetime.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=self.day)
        while not self.stopping.is_set():
            i = self.next_slot()
            room = self.res_rooms[i % len(self.res_rooms)]
            start = base + datetime.timedelta(minutes=15 * (i // len(self.res_rooms)))
            end = start + datetime.timedelta(minutes=15)
            purpose = f"dbf-{self.tag}-{i}"
            body = {"room_id": room, "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "purpose": purpose}
            rec = self.call("res", "create", purpose,
                            lambda body=body: s.post(f"{url}/reservations", json=body,
                                                     headers=self.emp, timeout=TIMEOUT))
            if rec["status"] == 201:
                with self.lock:
                    self.booked.append(rec["body"]["id"])
            time.sleep(PACE)

    def res_b(self, s):
        url = self.stack.reservation.url
        n = 0
        while not self.stopping.is_set():
            n += 1
            room = self.res_rooms[n % len(self.res_rooms)]
            self.call("res", "availability", room,
                      lambda room=room: s.get(f"{url}/availability",
                                              params={"room_id": room, "date": "2030-01-01"},
                                              headers=self.emp, timeout=TIMEOUT))
            with self.lock:
                rid = self.booked.pop(0) if len(self.booked) > 2 else None
            if rid is not None:
                self.call("res", "cancel", rid,
                          lambda rid=rid: s.delete(f"{url}/reservations/{rid}",
                                                   headers=self.emp, timeout=TIMEOUT))
            self.call("res", "list", None,
                      lambda: s.get(f"{url}/reservations", params={"limit": 5},
                                    headers=self.emp, timeout=TIMEOUT))
            time.sleep(PACE)

    def start(self):
        for fn in (self.user_a, self.user_b, self.room_a, self.room_b, self.res_a, self.res_b):
            t = threading.Thread(target=self._run, args=(fn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, fn):
        with requests.Session() as s:
            try:
                fn(s)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                with self.lock:
                    self.records.append({"svc": fn.__name__, "op": "thread", "key": None,
                                         "t0": time.monotonic(), "t1": time.monotonic(),
                                         "status": None, "code": None, "retry_after": None,
                                         "error": f"client thread died: {exc!r}", "body": None})

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=TIMEOUT + 5)


EXPECTED = {"profile_get": 200, "profile_put": 200, "admin_list": 200, "login_start": 302,
            "login": 200, "create": 201, "list": 200, "update": 200, "get": 200,
            "availability": 200, "cancel": 204}


def ok(rec):
    return rec["status"] == EXPECTED[rec["op"]]


def health(svc):
    return requests.get(f"{svc.url}/health", timeout=15)


def health_503(svc, name):
    """/health once the background database check has noticed the outage (it answers from the
    last result, at most HEALTH_CHECK_INTERVAL_MS old)."""
    def down():
        r = health(svc)
        return (r,) if r.status_code == 503 else None  # a 503 Response is falsy itself
    return wait_until(down, timeout=10, interval=0.1, what=f"{name} /health 503")[0]


def burst(stack, headers):
    """Three concurrent requests per worker thread (NUM_THREADS) of each service, each on its
    own connection, so that every civetweb worker thread — each with its own database
    connection — serves at least one. Returns {service: Counter(status)}."""
    targets = [("user", f"{stack.user.url}/users/profile")] * 3 * 8 + \
              [("room", f"{stack.room.url}/rooms")] * 3 * 8 + \
              [("res", f"{stack.reservation.url}/reservations")] * 3 * 16

    def one(target):
        name, url = target
        r = requests.get(url, headers=dict(headers, Connection="close"), timeout=TIMEOUT)
        return name, r.status_code
    counts = collections.defaultdict(collections.Counter)
    with ThreadPoolExecutor(max_workers=48) as pool:
        for name, status in pool.map(one, targets):
            counts[name][status] += 1
    return {k: dict(v) for k, v in counts.items()}


def drain_stale_connections(stack, headers, rounds=10):
    """Bursts until one round answers no 503, so that nothing left over from an earlier fault
    (e.g. a database still recovering) is blamed on the fault a test is about to inject."""
    for _ in range(rounds):
        if not any(c.get(503) for c in burst(stack, headers).values()):
            return


@pytest.fixture(scope="module")
def actors(stack, admin_headers, res_url, room_url):
    """An employee, two rooms to edit and three rooms reservation-service knows."""
    token, _ = operator_token(stack.user, f"dbf-emp-{uuid.uuid4().hex[:8]}@example.com")
    rooms = [create_room(room_url, admin_headers)["id"] for _ in range(2)]
    res_rooms = [create_room(room_url, admin_headers)["id"] for _ in range(3)]
    for rid in res_rooms:
        wait_known_room(res_url, admin_headers, rid, timeout=30)
    return bearer(token), rooms, res_rooms


@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_database_outage_under_load(stack, admin_headers, actors, fault, request):
    emp, rooms, res_rooms = actors
    tag = uuid.uuid4().hex[:8]
    services = {"user": stack.user, "room": stack.room, "res": stack.reservation}
    drain_stale_connections(stack, admin_headers)
    # Each run books its own days, so that no slot is taken twice.
    load = Load(stack, tag, emp, admin_headers, rooms, res_rooms,
                day={"stop": 40, "kill": 90}[fault])
    pg_down = False
    load.start()
    try:
        time.sleep(BEFORE_SECONDS)
        t_fault = time.monotonic()
        pg_down = True
        (stack.pg.stop if fault == "stop" else stack.pg.kill)()
        t_down = time.monotonic()

        # While the database is away: /health and /ready 503 with Retry-After, /live 200.
        # (/health answers from the background check's last result: wait until it noticed.)
        for name, svc in services.items():
            r = health_503(svc, name)
            assert r.status_code == 503, (name, r.status_code, r.text)
            assert int(r.headers["Retry-After"]) > 0, (name, r.headers)
            body = r.json()
            assert body["status"] == "unavailable", (name, body)
            assert body["checks"]["database"]["status"] == "down", (name, body)
            r = requests.get(f"{svc.url}/ready", timeout=15)
            assert r.status_code == 503 and r.json()["code"] == "unavailable", (name, r.text)
            assert int(r.headers["Retry-After"]) > 0, (name, r.headers)
            assert requests.get(f"{svc.url}/live", timeout=15).status_code == 200, name
        # At least DOWN_SECONDS, and until every service answered one of the load's requests
        # sent in the outage (a loaded machine may keep a client thread in a request begun
        # before it for a while); the check below still fails a service that never answers 503.
        def each_refused():
            if time.monotonic() - t_down < DOWN_SECONDS:
                return False
            with load.lock:
                seen = {r["svc"] for r in load.records if r["t0"] >= t_down and r["status"] == 503}
            return seen >= set(services)
        try:
            wait_until(each_refused, timeout=30, interval=0.1, what="a 503 from every service")
        except AssertionError:
            pass  # reported by the check below, naming the service
    finally:
        t_up_begin = time.monotonic()
        if pg_down:
            stack.pg.start()
        t_up = time.monotonic()
    try:
        ready_at = {}

        def all_ready():
            for name, svc in services.items():
                if name not in ready_at and service_ready(svc):
                    ready_at[name] = time.monotonic()
            return len(ready_at) == len(services)
        wait_until(all_ready, timeout=30, interval=0.05, what="/ready 200 on every service")
        t_ready = max(ready_at.values())
        time.sleep(AFTER_SECONDS)
    finally:
        load.stop()

    recs = sorted(load.records, key=lambda r: r["t0"])
    for name, svc in services.items():
        assert svc.proc.poll() is None, f"{name} died:\n{svc.log_tail()}"

    # 1. Every request got an answer, no 5xx but 503 `unavailable` with Retry-After.
    errors = [r for r in recs if r["error"]]
    assert not errors, errors[:5]
    bad5xx = [r for r in recs if r["status"] >= 500 and r["status"] != 503]
    assert not bad5xx, bad5xx[:5]
    for r in recs:
        if r["status"] == 503:
            assert r["code"] == "unavailable", r
            assert r["retry_after"] and int(r["retry_after"]) > 0, r
    unexpected = [r for r in recs if r["status"] != 503 and not ok(r)]
    assert not unexpected, unexpected[:5]

    during = [r for r in recs if t_down <= r["t0"] < t_up_begin]
    for name in services:
        n503 = sum(1 for r in during if r["svc"] == name and r["status"] == 503)
        assert n503 > 0, f"{name}: no 503 while the database was down"
    # 2. Recovery without restart: every request sent once all are ready succeeds.
    after = [r for r in recs if r["t0"] >= t_ready]
    failed_after = [r for r in after if not ok(r)]
    assert after and not failed_after, failed_after[:5]
    first_ok = {}
    for name in services:
        oks = [r["t1"] for r in recs if r["svc"] == name and r["t0"] >= t_up and ok(r)]
        first_ok[name] = round(min(oks) - t_up, 3) if oks else None

    # 3. No half-written data.  A request in flight at the moment the database went away may
    # have committed although its reply was a 503 ("in doubt": a crash between COMMIT and its
    # answer); every other 503 is a definite failure and must have left nothing behind.
    def in_doubt(r):
        return r["t0"] < t_down and r["t1"] >= t_fault

    def told_failed(r):
        return r["status"] == 503 and not in_doubt(r)

    def doubtful(r):
        return r["status"] == 503 and in_doubt(r)

    room_creates = [r for r in recs if r["svc"] == "room" and r["op"] == "create"]
    created_rooms = {r["key"]: r["body"]["id"] for r in room_creates if r["status"] == 201}
    db_rooms = dict(db_query(stack.pg, "room_db", "SELECT name, id FROM rooms WHERE name LIKE %s",
                             f"DBF-{tag}-%"))
    for name, rid in created_rooms.items():
        assert db_rooms.get(name) == rid, f"room {name} answered 201 but is not stored"
    for r in room_creates:
        if told_failed(r):
            assert r["key"] not in db_rooms, f"room {r['key']} answered 503 but exists"
    extra = set(db_rooms) - set(created_rooms) - {r["key"] for r in room_creates if doubtful(r)}
    assert not extra, extra
    ids = [str(i) for i in db_rooms.values()]
    events = db_query(stack.pg, "room_db", "SELECT key FROM outbox WHERE key = ANY(%s) "
                      "AND payload->>'event_type' = 'room_created'", ids)
    assert sorted(k for (k,) in events) == sorted(ids), "a stored room without its event"

    res_creates = [r for r in recs if r["svc"] == "res" and r["op"] == "create"]
    created_res = {r["key"]: r["body"]["id"] for r in res_creates if r["status"] == 201}
    db_res = {p: (i, st) for p, i, st in db_query(
        stack.pg, "reservation_db", "SELECT purpose, id, status FROM reservations "
        "WHERE purpose LIKE %s", f"dbf-{tag}-%")}
    for purpose, rid in created_res.items():
        assert purpose in db_res and db_res[purpose][0] == rid, \
            f"reservation {purpose} answered 201 but is not stored"
    for r in res_creates:
        if told_failed(r):
            assert r["key"] not in db_res, f"reservation {r['key']} answered 503 but exists"
    extra = set(db_res) - set(created_res) - {r["key"] for r in res_creates if doubtful(r)}
    assert not extra, extra
    status_of = {i: st for i, st in db_res.values()}
    cancels = [r for r in recs if r["op"] == "cancel"]
    for r in cancels:
        if r["status"] == 204:
            assert status_of[r["key"]] == "cancelled", r
        elif told_failed(r):
            assert status_of[r["key"]] == "confirmed", f"cancel answered 503 but applied: {r}"
    res_ids = [str(i) for i, _ in db_res.values()]
    ev = db_query(stack.pg, "reservation_db", "SELECT key, payload->>'event_type' FROM outbox "
                  "WHERE key = ANY(%s)", res_ids)
    got = sorted(ev)
    want = sorted([(str(i), "reservation_created") for i, _ in db_res.values()] +
                  [(str(i), "reservation_cancelled") for i, st in db_res.values()
                   if st == "cancelled"])
    assert got == want, "reservation changes and their outbox events differ"

    logins = [r for r in recs if r["op"] == "login"]
    emails = {e for (e,) in db_query(stack.pg, "user_db", "SELECT lower(email) FROM users "
                                     "WHERE email LIKE %s", f"dbf-{tag}-%")}
    for r in logins:
        if r["status"] == 200:
            assert r["key"] in emails, f"sign-in of {r['key']} answered 200, no user stored"
    puts = [r for r in recs if r["op"] == "profile_put"]
    last_ok = max((i for i, r in enumerate(puts) if r["status"] == 200), default=None)
    profile = requests.get(f"{stack.user.url}/users/profile", headers=emp, timeout=10).json()
    allowed = {puts[last_ok]["key"]} if last_ok is not None else set()
    allowed |= {r["key"] for r in puts[(last_ok or 0) + 1:] if doubtful(r)}
    assert profile["name"] in allowed, (profile["name"], allowed)

    # 4. The background parts recovered too: every outbox drains, every new room reaches
    # reservation-service's consumer.
    def drained():
        return all(db_query(stack.pg, db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                   [0][0] == 0 for db in ("user_db", "room_db", "reservation_db"))
    wait_until(drained, timeout=60, interval=0.2, what="every outbox drained")
    wait_until(lambda: db_query(stack.pg, "reservation_db", "SELECT count(*) FROM rooms WHERE "
                                "id = ANY(%s)", [int(i) for i in ids])[0][0] == len(ids),
               timeout=60, interval=0.2, what="the new rooms known to reservation-service")

    figures = {
        "fault": "pg_ctl stop -m fast" if fault == "stop" else "pg_ctl stop -m immediate (crash)",
        "client_threads": len(load.threads),
        "requests_total": len(recs),
        "requests_during_outage": len(during),
        "answers_503_during_outage": sum(1 for r in during if r["status"] == 503),
        "answers_503_total": sum(1 for r in recs if r["status"] == 503),
        "answers_5xx_other": len(bad5xx),
        "in_doubt_503_committed": sum(1 for r in room_creates + res_creates
                                      if doubtful(r) and (r["key"] in db_rooms or
                                                          r["key"] in db_res)),
        "outage_seconds": round(t_up_begin - t_fault, 3),
        "pg_start_seconds": round(t_up - t_up_begin, 3),
        # Measured from the return of scripts/pg.sh start (the server accepts connections a
        # little earlier: pg.sh then still checks the role and the databases).
        "ready_after_pg_start_seconds": {k: round(v - t_up, 3) for k, v in ready_at.items()},
        "first_success_after_pg_start_seconds": first_ok,
        "requests_after_recovery": len(after),
        "rooms_created": len(created_rooms),
        "reservations_created": len(created_res),
        "cancellations": sum(1 for r in cancels if r["status"] == 204),
    }
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    write_reliability(name, figures)
    print(f"\n{request.node.name}: {figures}")



IDLE_AFTER_CRASH = 70     # > keepalives_idle 30 s + 3 probes x 10 s of common/src/db.c


def test_idle_workers_answer_no_503_long_after_a_database_crash(stack, admin_headers, request):
    warm = burst(stack, admin_headers)   # every worker thread holds a connection now
    assert all(set(c) == {200} for c in warm.values()), warm
    try:
        stack.pg.kill()
    finally:
        stack.pg.start()
    t_up = time.monotonic()
    for svc in (stack.user, stack.room, stack.reservation):
        wait_until(lambda svc=svc: service_ready(svc), timeout=30, interval=0.05,
                   what="/ready 200")
    time.sleep(max(0.0, t_up + IDLE_AFTER_CRASH - time.monotonic()))
    try:
        after = burst(stack, admin_headers)
        again = burst(stack, admin_headers)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
        write_reliability(name, {"idle_seconds_after_crash": IDLE_AFTER_CRASH,
                                 "first_burst": after, "second_burst": again})
        print(f"\n{request.node.name}: first burst {after}, second burst {again}")
        assert not any(c.get(503) for c in again.values()), again
        assert not any(c.get(503) for c in after.values()), \
            f"503 from idle workers {IDLE_AFTER_CRASH} s after the database came back: {after}"
    finally:
        drain_stale_connections(stack, admin_headers)
