#!/usr/bin/env python3
"""A/B of two reservation-service builds for the calendar feed's memory: peak RSS (VmHWM) and
req/s while wrk reads room feeds at 64 connections, and are the feeds byte for byte the same.

Starts PostgreSQL and Kafka (tests/integration/harness.py), seeds ROOMS rooms with about 1,000
reservations each over two years as make bench does (bench/sql/seed_reservations.sql: ~520 in a
feed's window, ~155 KB a feed), compares both builds' feeds and ETags, then for ROUNDS rounds,
alternating A and B, starts the build afresh with the service defaults (NUM_THREADS 300,
DB_POOL_SIZE 5), warms it with a few requests, runs wrk for SECONDS and reads VmHWM from
/proc/<pid>/status.  With AB_GRID=1 each round first reads the day grid of 200 rooms at the same
concurrency (the bench's order: the grid's ~84 KB answers before the feeds).

Usage: python3 bench/feed_rss_ab.py DIR_A DIR_B   (each holding a reservation-service binary)
Settings: AB_SECONDS (8), AB_ROUNDS (3), AB_CONNECTIONS (64), AB_ROOMS (40), AB_GRID (0);
AB_ENV_A, AB_ENV_B: NAME=value ... added to that build's environment (e.g. GLIBC_TUNABLES=...);
AB_PERF: a directory for perf-A.data and perf-B.data (perf record -g of each build's wrk run).
"""
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time

import psycopg2
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

SECONDS = int(os.environ.get("AB_SECONDS", "8"))
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("AB_CONNECTIONS", "64"))
ROOMS = int(os.environ.get("AB_ROOMS", "40"))
GRID = os.environ.get("AB_GRID") == "1"
USERS = 1000
ZONES = ["UTC"] * 8 + ["Europe/Berlin"] * 5 + ["America/New_York"] * 4 + ["Asia/Tokyo"] * 3

LUA = """
local token = "%s"
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[i %% #paths + 1], {["Authorization"] = "Bearer " .. token})
end
"""


def seed(pg, day0):
    conn = psycopg2.connect(pg.dsn("reservation_db"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("INSERT INTO rooms (id, name, capacity, time_zone, active, version, "
                    "details_known) SELECT g, 'Atlas ' || g || '.' || lpad(g::text, 4, '0') "
                    "|| ' Everest', 8, (%s::text[])[1 + g %% 20], true, 1, true "
                    "FROM generate_series(1, %s) g", (ZONES, max(ROOMS, 200)))
        with open(os.path.join(ROOT, "bench", "sql", "seed_reservations.sql")) as f:
            cur.execute(f.read(), {"lo": 0, "hi": ROOMS * 1000, "rooms": ROOMS, "users": USERS,
                                   "uid_lo": 1, "day0": day0})
        cur.execute("VACUUM (ANALYZE) reservations")
    conn.close()


def wrk(url, lua_path):
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "5s",
                          "--latency", "-s", lua_path, url], capture_output=True, text=True,
                         timeout=SECONDS + 60)
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out.stdout)
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", out.stdout)
    if not m:
        raise RuntimeError(out.stdout + out.stderr)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if bad:  # 503s when the pool's wait ran out on a machine busy with other work
        print(f"    ({bad.group(1)} answers not 2xx)")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(m.group(1)), float(p99.group(1)) * scale


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) / 1024.0
    return out


def smaps(pid):
    """Prints the resident memory by kind of mapping (a diagnosis aid, AB_SMAPS=1)."""
    kinds, cur = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                name = parts[5] if len(parts) > 5 else "anon"
                size = (hi - lo) // 1024
                cur = f"{name} {'64M arena' if size in (65536, 131072) else ''}"
                if name == "anon" and size < 65536:
                    cur = f"anon {'<=132K' if size <= 132 else '<=1M' if size <= 1024 else '>1M'}"
            elif parts[0] == "Rss:":
                n, k = kinds.get(cur, (0, 0))
                kinds[cur] = (n + 1, k + int(parts[1]))
    for name, (n, kb) in sorted(kinds.items(), key=lambda x: -x[1][1])[:8]:
        print(f"      {kb / 1024:6.1f} MB in {n:4d} x {name}")


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def main():
    dirs = [os.path.abspath(d) for d in sys.argv[1:3]]
    stack = harness.Stack()
    stack.pg.start()
    stack.kafka.start()
    day0 = int(datetime.datetime.now(datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp())
    token = harness.forge_token(1, exp_in=3600)
    headers = harness.bearer(token)
    feeds = [f"/calendars/rooms/{r}.ics" for r in range(1, ROOMS + 1)]
    day = datetime.datetime.fromtimestamp(day0 + 86400, datetime.UTC).strftime("%Y-%m-%d")
    grid = [f"/availability/grid?date={day}&limit=200"]

    def service(i):
        harness.BIN_DIR = dirs[i]
        extra = os.environ.get(f"AB_ENV_{'AB'[i]}", "")
        env = dict(kv.split("=", 1) for kv in extra.split())
        return stack.reservation_service(tag=f"feed-ab-{i}", NUM_THREADS="300", **env)

    try:
        service(0).start().stop()  # the migrations
        seed(stack.pg, day0)
        # Byte for byte and the same ETag: a few feeds of both builds.
        answers = []
        for i in range(2):
            svc = service(i).start()
            answers.append([requests.get(svc.url + p, headers=headers, timeout=10)
                            for p in feeds[:5]])
            svc.stop()
        for a, b in zip(*answers, strict=True):
            assert a.status_code == b.status_code == 200, (a.text[:200], b.text[:200])
            assert a.content == b.content and a.headers["ETag"] == b.headers["ETag"]
        sizes = [len(a.content) for a in answers[0]]
        events = [a.content.count(b"BEGIN:VEVENT") for a in answers[0]]
        print(f"feeds byte for byte the same, same ETags: yes ({min(events)}-{max(events)} "
              f"events, {min(sizes):,}-{max(sizes):,} bytes)")
        results = [[], []]
        with tempfile.TemporaryDirectory() as tmp:
            feed_lua, grid_lua = os.path.join(tmp, "feed.lua"), os.path.join(tmp, "grid.lua")
            for path, paths in ((feed_lua, feeds), (grid_lua, grid)):
                with open(path, "w") as f:
                    f.write(LUA % (token, ", ".join(f'"{p}"' for p in paths)))
            for _ in range(ROUNDS):
                for i in range(2):
                    svc = service(i).start()
                    idle = status(svc.proc.pid)["VmRSS"]
                    for p in feeds[:3]:
                        requests.get(svc.url + p, headers=headers, timeout=10)
                    grid_hwm = None
                    if GRID:
                        wrk(svc.url, grid_lua)
                        grid_hwm = status(svc.proc.pid)["VmHWM"]
                    cpu0 = cpu_seconds(svc.proc.pid)
                    perf = None
                    if os.environ.get("AB_PERF"):
                        perf = subprocess.Popen(
                            ["perf", "record", "-q", "-F", "499", "-g", "-p",
                             str(svc.proc.pid), "-o",
                             os.path.join(os.environ["AB_PERF"], f"perf-{'AB'[i]}.data"),
                             "--", "sleep", str(SECONDS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    rps, p99 = wrk(svc.url, feed_lua)
                    if perf:
                        perf.wait()
                    cpu_ms = 1000 * (cpu_seconds(svc.proc.pid) - cpu0) / (rps * SECONDS)
                    st = status(svc.proc.pid)
                    if os.environ.get("AB_SMAPS") == "1":
                        smaps(svc.proc.pid)
                    svc.stop()
                    results[i].append((st["VmHWM"], st["VmRSS"], rps, p99, cpu_ms))
                    print(f"  {'AB'[i]}: VmHWM {st['VmHWM']:.1f} MB, VmRSS {st['VmRSS']:.1f} "
                          f"MB, {rps:.0f} req/s, p99 {p99:.1f} ms, {cpu_ms:.2f} ms CPU a "
                          "request"
                          + f" (started {idle:.1f} MB"
                          + (f", after the grid {grid_hwm:.1f} MB)" if GRID else ")"),
                          flush=True)
                    time.sleep(1)
        print("| build | peak RSS MB, median (runs) | req/s | p99 ms | service CPU ms a request |")
        print("|---|---:|---:|---:|---:|")
        for i, runs in enumerate(results):
            hwm, rps, p99, cpu = ([r[k] for r in runs] for k in (0, 2, 3, 4))
            print(f"| {'AB'[i]} {dirs[i]} | {median(hwm):.1f} "
                  f"({', '.join(f'{x:.1f}' for x in hwm)}) | {median(rps):.0f} "
                  f"({', '.join(f'{x:.0f}' for x in rps)}) | {median(p99):.1f} "
                  f"({', '.join(f'{x:.1f}' for x in p99)}) | {median(cpu):.2f} "
                  f"({', '.join(f'{x:.2f}' for x in cpu)}) |")
    finally:
        stack.stop()  # what was started of it
        stack.cleanup()


if __name__ == "__main__":
    main()
