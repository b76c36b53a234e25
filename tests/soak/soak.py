#!/usr/bin/env python3
"""Soak driver (`make soak`, scripts/soak.sh): the release build under mixed load.

Starts the stack with tests/integration/harness.py (private PostgreSQL, Kafka, OIDC provider,
the three services from BIN_DIR, the nginx gateway; loopback only, free ports), then SOAK_WORKERS
(default 16) client threads run for SOAK_SECONDS (default 300): bookings, cancellations,
availability, own-reservation lists, room listings (a third of the reads through the gateway),
profile reads, and admin room edits (capacity, name, active) with now and then a room deleted and
a new one created. RSS of each service (/proc/<pid>/status VmRSS) is sampled every 5 s.

At the end, once the outboxes are drained and the consumer has caught up, it checks:
  - no two confirmed reservations of one room overlap (SQL);
  - no confirmed future reservation in a room the consumer marked deleted;
  - reservation-service's copy of the rooms equals room-service's rooms (name, active, version)
    for every room, and every room room-service no longer has is a tombstone there;
  - zero 5xx answers and zero failed connections;
  - RSS flat: final RSS - RSS after warm-up <= 10 MiB for every service. The warm-up is 20 % of
    the run, between 15 and 60 s. An absolute bound rather than a percentage: these daemons
    sit at a few tens of MiB, where 20 % would be allocator noise, while a leak of even 100 bytes
    per request (the load makes several hundred thousand in 300 s) shows as more than 10 MiB.
Prints a summary table, writes build/reliability/soak.json, exits 1 when a check failed.

Each service runs with NUM_THREADS=32: civetweb serves one keep-alive connection per worker
thread, and 16 keep-alive clients against the default 8 threads would measure its 5 s idle
timeout instead of the services.
"""
import collections
import datetime
import json
import os
import random
import sys
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("BIN_DIR", os.path.join(ROOT, "build", "bin"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import requests  # noqa: E402

from harness import (  # noqa: E402
    Stack,
    bearer,
    db_query,
    operator_token,
    overlapping_confirmed_pairs,
    wait_known_room,
    wait_until,
    write_reliability,
)

SECONDS = int(os.environ.get("SOAK_SECONDS", "300"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "16"))
SAMPLE_EVERY = 5.0
WARMUP = max(15.0, min(60.0, SECONDS * 0.2))
RSS_GROWTH_LIMIT_KB = 10 * 1024
ROOMS = 12
TIMEOUT = 30

# op -> weight (per mille)
OPS = {"book": 300, "cancel": 120, "availability": 200, "my_reservations": 80,
       "list_rooms": 150, "profile": 50, "edit_room": 98, "replace_room": 2}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.status = collections.defaultdict(collections.Counter)
        self.latency = collections.defaultdict(list)
        self.failures = []       # 5xx answers and failed connections, first 50
        self.n5xx = 0
        self.nerr = 0

    def record(self, op, r, seconds, err=None):
        with self.lock:
            if err is not None:
                self.nerr += 1
                self.status[op]["error"] += 1
                if len(self.failures) < 50:
                    self.failures.append({"op": op, "error": err})
                return
            self.status[op][r.status_code] += 1
            self.latency[op].append(seconds)
            if r.status_code >= 500:
                self.n5xx += 1
                if len(self.failures) < 50:
                    self.failures.append({"op": op, "status": r.status_code,
                                          "body": r.text[:300]})

    def total(self):
        return sum(sum(c.values()) for c in self.status.values())


class World:
    """What the workers share: the live rooms and the admin's headers."""

    def __init__(self, stack, admin, rooms):
        self.stack, self.admin = stack, admin
        self.rooms = list(rooms)
        self.lock = threading.Lock()
        self.stats = Stats()
        self.deadline = None
        self.stop = threading.Event()

    def room(self, rng):
        with self.lock:
            return rng.choice(self.rooms)


def rss_kb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def worker(world, index, headers):
    rng = random.Random(index * 7919 + 1)
    st, stats = world.stack, world.stats
    s = requests.Session()
    own = []
    names = list(OPS)
    weights = [OPS[n] for n in names]
    today = datetime.datetime.now(datetime.UTC).replace(hour=0, minute=0, second=0,
                                                                  microsecond=0)

    def call(op, method, url, **kw):
        t0 = time.monotonic()
        try:
            r = s.request(method, url, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            stats.record(op, None, 0, err=repr(exc)[:300])
            return None
        stats.record(op, r, time.monotonic() - t0)
        return r

    def base(svc):
        return st.gateway.url if rng.random() < 0.33 else svc.url

    while not world.stop.is_set() and time.monotonic() < world.deadline:
        op = rng.choices(names, weights)[0]
        if op == "cancel" and not own:
            op = "book"
        if op == "book":
            start = today + datetime.timedelta(days=rng.randint(2, 30),
                                               minutes=15 * rng.randrange(8 * 4, 18 * 4))
            end = start + datetime.timedelta(minutes=rng.choice((15, 30, 45, 60)))
            r = call(op, "POST", f"{base(st.reservation)}/reservations", headers=headers,
                     json={"room_id": world.room(rng), "purpose": f"soak {index}",
                           "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ")})
            if r is not None and r.status_code == 201:
                own.append(r.json()["id"])
        elif op == "cancel":
            rid = own.pop(rng.randrange(len(own)))
            call(op, "DELETE", f"{base(st.reservation)}/reservations/{rid}", headers=headers)
        elif op == "availability":
            date = (today + datetime.timedelta(days=rng.randint(2, 30))).strftime("%Y-%m-%d")
            call(op, "GET", f"{base(st.reservation)}/availability", headers=headers,
                 params={"room_id": world.room(rng), "date": date})
        elif op == "my_reservations":
            call(op, "GET", f"{base(st.reservation)}/reservations", headers=headers,
                 params={"limit": 20})
        elif op == "list_rooms":
            call(op, "GET", f"{base(st.room)}/rooms", headers=headers,
                 params={"limit": rng.choice((5, 20, 50))})
        elif op == "profile":
            call(op, "GET", f"{base(st.user)}/users/profile", headers=headers)
        elif op == "edit_room":
            x = rng.random()
            body = ({"capacity": rng.randint(1, 40)} if x < 0.5 else
                    {"active": rng.random() < 0.8} if x < 0.8 else
                    {"name": f"Soak {uuid.uuid4().hex[:10]}"})
            call(op, "PUT", f"{base(st.room)}/rooms/{world.room(rng)}", headers=world.admin,
                 json=body)
        elif op == "replace_room":
            with world.lock:
                if len(world.rooms) <= ROOMS // 2:
                    continue
                victim = world.rooms.pop(rng.randrange(len(world.rooms)))
            call(op, "DELETE", f"{base(st.room)}/rooms/{victim}", headers=world.admin)
            r = call(op, "POST", f"{base(st.room)}/rooms", headers=world.admin,
                     json={"name": f"Soak {uuid.uuid4().hex[:10]}", "capacity": 8})
            if r is not None and r.status_code == 201:
                with world.lock:
                    world.rooms.append(r.json()["id"])


def sampler(stack, world, samples, t0):
    procs = {"user-service": stack.user, "room-service": stack.room,
             "reservation-service": stack.reservation}
    next_at = time.monotonic()
    while not world.stop.is_set():
        row = {"t": round(time.monotonic() - t0, 1)}
        for name, svc in procs.items():
            try:
                row[name] = rss_kb(svc.proc.pid)
            except OSError:
                row[name] = None
        samples.append(row)
        next_at += SAMPLE_EVERY
        world.stop.wait(max(0.0, next_at - time.monotonic()))


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def start_stack():
    """Stack.start() with NUM_THREADS=32 and a day-long token lifetime (see the docstring)."""
    s = Stack()
    s.pg.start()
    s.oidc.start()
    s.kafka.start()
    big = {"NUM_THREADS": "32", "JWT_ACCESS_TTL_SECONDS": "86400"}
    s.user = s.user_service(**big)
    s.room = s.room_service(**big)
    s.reservation = s.reservation_service(**big)
    for svc in (s.user, s.room, s.reservation):
        svc.start()
    s.gateway.start(s.user.port, s.room.port, s.reservation.port)
    return s


def settle(stack):
    """Waits until every outbox is drained and reservation-service's rooms equal room-service's;
    returns the seconds it took (None when it never happened within 120 s)."""
    t0 = time.monotonic()

    def done():
        if any(db_query(stack.pg, db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]
               for db in ("user_db", "room_db", "reservation_db")):
            return False
        return not room_mismatches(stack)
    try:
        wait_until(done, timeout=120, interval=0.25, what="the stack to settle")
    except AssertionError:
        return None
    return round(time.monotonic() - t0, 2)


def room_mismatches(stack):
    src = {i: (n, a, v) for i, n, a, v in db_query(
        stack.pg, "room_db", "SELECT id, name, active, version FROM rooms")}
    copy = {i: (n, a, v, d) for i, n, a, v, d in db_query(
        stack.pg, "reservation_db", "SELECT id, name, active, version, deleted FROM rooms")}
    bad = []
    for i, want in src.items():
        got = copy.get(i)
        if got is None or got[3] or got[:3] != want:
            bad.append({"room": i, "room_service": want, "reservation_service": got})
    for i, got in copy.items():
        if i not in src and not got[3]:
            bad.append({"room": i, "room_service": None, "reservation_service": got})
    return bad


def main():
    print(f"soak: {SECONDS} s, {WORKERS} workers, binaries from {os.environ['BIN_DIR']}",
          flush=True)
    stack = None
    passed = False
    try:
        stack = start_stack()
        admin = bearer(operator_token(stack.user, "soak-admin@example.com", role="admin")[0])
        people = [bearer(operator_token(stack.user, f"soak{i}@example.com")[0])
                  for i in range(WORKERS)]
        rooms = []
        for i in range(ROOMS):
            r = requests.post(f"{stack.room.url}/rooms", headers=admin, timeout=TIMEOUT,
                              json={"name": f"Soak room {i}", "capacity": 4 + i,
                                    "time_zone": ("UTC", "Europe/Berlin", "America/New_York")
                                    [i % 3]})
            assert r.status_code == 201, r.text
            rooms.append(r.json()["id"])
        for rid in rooms:
            wait_known_room(stack.reservation.url, admin, rid, timeout=60)
        print(f"soak: stack ready in {stack.workdir}; load starts", flush=True)

        world = World(stack, admin, rooms)
        samples = []
        t0 = time.monotonic()
        world.deadline = t0 + SECONDS
        threads = [threading.Thread(target=worker, args=(world, i, people[i]), daemon=True)
                   for i in range(WORKERS)]
        smp = threading.Thread(target=sampler, args=(stack, world, samples, t0), daemon=True)
        smp.start()
        for t in threads:
            t.start()
        last_report = t0
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                print(f"soak: {last_report - t0:5.0f} s, {world.stats.total()} requests, "
                      f"5xx {world.stats.n5xx}, errors {world.stats.nerr}, RSS (kB) "
                      f"{ {k: v for k, v in samples[-1].items() if k != 't'} }", flush=True)
        elapsed = time.monotonic() - t0
        world.stop.set()
        smp.join()
        end_row = {"t": round(elapsed, 1)}
        for name, svc in (("user-service", stack.user), ("room-service", stack.room),
                          ("reservation-service", stack.reservation)):
            end_row[name] = rss_kb(svc.proc.pid)
        samples.append(end_row)

        settle_s = settle(stack)
        stats = world.stats
        total = stats.total()
        overlaps = overlapping_confirmed_pairs(stack.pg)
        orphans = db_query(stack.pg, "reservation_db",
                           "SELECT r.id, r.room_id FROM reservations r JOIN rooms m "
                           "ON m.id = r.room_id WHERE m.deleted AND r.status = 'confirmed' "
                           "AND r.start_time > now()")
        mismatches = room_mismatches(stack)
        counts = db_query(stack.pg, "reservation_db",
                          "SELECT status, count(*) FROM reservations GROUP BY status")
        alive = {svc.name: svc.proc.poll() is None for svc in (stack.user, stack.room,
                                                               stack.reservation)}

        rss = {}
        warm = next((r for r in samples if r["t"] >= WARMUP), samples[0])
        for name in ("user-service", "room-service", "reservation-service"):
            start_kb, warm_kb, end_kb = samples[0][name], warm[name], end_row[name]
            growth = end_kb - warm_kb
            rss[name] = {"start_kb": start_kb, "after_warmup_kb": warm_kb, "end_kb": end_kb,
                         "peak_kb": max(r[name] for r in samples if r[name]),
                         "growth_after_warmup_kb": growth,
                         "flat": growth <= RSS_GROWTH_LIMIT_KB}

        ops = {}
        for op in OPS:
            c = stats.status.get(op, collections.Counter())
            lat = stats.latency.get(op, [])
            ops[op] = {"requests": sum(c.values()),
                       "by_status": {str(k): v for k, v in sorted(c.items(), key=str)},
                       "p50_ms": round(percentile(lat, 50) * 1000, 1) if lat else None,
                       "p99_ms": round(percentile(lat, 99) * 1000, 1) if lat else None}

        checks = {
            "no_overlapping_confirmed_reservations": not overlaps,
            "no_confirmed_future_reservation_in_deleted_room": not orphans,
            "room_copies_equal_room_service": not mismatches,
            "settled_within_120s": settle_s is not None,
            "zero_5xx": stats.n5xx == 0,
            "zero_failed_connections": stats.nerr == 0,
            "services_alive": all(alive.values()),
            "rss_flat": all(v["flat"] for v in rss.values()),
        }
        passed = all(checks.values())
        report = {
            "seconds": round(elapsed, 1), "workers": WORKERS, "requests": total,
            "requests_per_second": round(total / elapsed, 1),
            "answers_5xx": stats.n5xx, "failed_connections": stats.nerr,
            "warmup_seconds": WARMUP, "rss_growth_limit_kb": RSS_GROWTH_LIMIT_KB,
            "rss": rss, "rss_samples": samples, "ops": ops,
            "reservations_by_status": dict(counts),
            "rooms_at_end": len(world.rooms),
            "settle_seconds": settle_s,
            "overlapping_pairs": [list(p) for p in overlaps[:20]],
            "confirmed_in_deleted_rooms": [list(p) for p in orphans[:20]],
            "room_mismatches": mismatches[:20],
            "failures": stats.failures,
            "checks": checks, "passed": passed,
            "bin_dir": os.environ["BIN_DIR"],
        }
        path = write_reliability("soak", report)
        print_summary(report)
        print(f"soak: figures in {path}")
    finally:
        if stack is not None:
            stack.stop()
            if passed:
                stack.cleanup()
            else:
                print(f"soak: logs kept in {stack.workdir}")
    print("soak: PASSED" if passed else "soak: FAILED")
    return 0 if passed else 1


def print_summary(rep):
    print()
    print(f"{'operation':<18}{'requests':>9}{'2xx':>8}{'4xx':>7}{'5xx':>5}{'err':>5}"
          f"{'p50 ms':>9}{'p99 ms':>9}")
    for op, o in rep["ops"].items():
        by = o["by_status"]
        n2 = sum(v for k, v in by.items() if k.startswith("2"))
        n4 = sum(v for k, v in by.items() if k.startswith("4"))
        n5 = sum(v for k, v in by.items() if k.startswith("5"))
        print(f"{op:<18}{o['requests']:>9}{n2:>8}{n4:>7}{n5:>5}{by.get('error', 0):>5}"
              f"{o['p50_ms'] if o['p50_ms'] is not None else '-':>9}"
              f"{o['p99_ms'] if o['p99_ms'] is not None else '-':>9}")
    print(f"{'total':<18}{rep['requests']:>9}   {rep['requests_per_second']} req/s over "
          f"{rep['seconds']} s, {rep['workers']} workers")
    print()
    print(f"{'service':<22}{'RSS start':>10}{'warm-up':>10}{'end':>10}{'peak':>10}"
          f"{'growth':>10}  (MiB; warm-up at {rep['warmup_seconds']:.0f} s, limit "
          f"{rep['rss_growth_limit_kb'] / 1024:.0f} MiB)")
    for name, r in rep["rss"].items():
        print(f"{name:<22}{r['start_kb'] / 1024:>10.1f}{r['after_warmup_kb'] / 1024:>10.1f}"
              f"{r['end_kb'] / 1024:>10.1f}{r['peak_kb'] / 1024:>10.1f}"
              f"{r['growth_after_warmup_kb'] / 1024:>+10.1f}  {'flat' if r['flat'] else 'GROWS'}")
    print()
    print(f"reservations: {rep['reservations_by_status']}; rooms at end {rep['rooms_at_end']}; "
          f"settled {rep['settle_seconds']} s after the load")
    for name, ok in rep["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if rep["failures"]:
        print("first failures:", json.dumps(rep["failures"][:5]))


if __name__ == "__main__":
    sys.exit(main())
