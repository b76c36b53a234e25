#!/usr/bin/env python3
"""A/B of two reservation-service builds on the same data: are their answers byte for byte the
same, and which serves the reads faster?  Used to decide where a reservation's JSON is built (in
PostgreSQL with json_build_object/to_char, or in C with jansson from plain columns).

Starts PostgreSQL and Kafka (tests/integration/harness.py), both builds side by side on one
database, seeds rooms and reservations through SQL, compares the bodies of GET /reservations
(two pages), GET /availability and GET /availability/rooms/{id}, then runs wrk against each build
in turn (ROUNDS rounds of SECONDS seconds per endpoint, alternating A and B) and prints req/s.

Usage: python3 bench/json_ab.py DIR_A DIR_B   (each holding a reservation-service binary)
Settings: AB_SECONDS (5), AB_ROUNDS (3), AB_CONNECTIONS (32).
"""
import os
import re
import subprocess
import sys
import tempfile

import psycopg2
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

SECONDS = int(os.environ.get("AB_SECONDS", "5"))
ROUNDS = int(os.environ.get("AB_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("AB_CONNECTIONS", "32"))
USERS, ROOMS, PER_USER = 200, 100, 100
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"]

LUA = """
local tokens = {%s}
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[i %% #paths + 1], {["Authorization"] = "Bearer " ..
                    tokens[i %% #tokens + 1]})
end
"""


def seed(pg):
    conn = psycopg2.connect(pg.dsn("reservation_db"))
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO rooms (id, name, capacity, time_zone, version) "
                    "SELECT g, 'Room ' || g, 4, (%s::text[])[1 + g %% 5], 1 "
                    "FROM generate_series(1, %s) g", (ZONES, ROOMS))
        # Each user: PER_USER reservations an hour apart from tomorrow on, spread over rooms;
        # 1 in 33 cancelled; purposes with quotes and non-ASCII text.
        cur.execute("INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time, "
                    "status, cancel_reason, created_at, updated_at) "
                    "SELECT 1 + (u * 7 + k) %% %s, u, 'Sync \"' || k || '\" – Zürich', "
                    "  date_trunc('day', now()) + interval '1 day' + (u * %s + k) * "
                    "  interval '1 hour', date_trunc('day', now()) + interval '1 day' + "
                    "  (u * %s + k) * interval '1 hour' + interval '45 min', "
                    "  CASE WHEN k %% 33 = 0 THEN 'cancelled' ELSE 'confirmed' END, "
                    "  CASE WHEN k %% 33 = 0 THEN 'cancelled_by_user' END, "
                    "  now() - k * interval '1.2345 s', now() - k * interval '0.5 s' "
                    "FROM generate_series(1, %s) u, generate_series(0, %s - 1) k",
                    (ROOMS, PER_USER, PER_USER, USERS, PER_USER))
        cur.execute("ANALYZE")
    conn.close()


def wrk(url, lua_path):
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "5s",
                          "-s", lua_path, url], capture_output=True, text=True,
                         timeout=SECONDS + 60)
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out.stdout)
    if not m or "Non-2xx" in out.stdout:
        raise RuntimeError(out.stdout + out.stderr)
    return float(m.group(1))


def main():
    dirs = sys.argv[1:3]
    stack = harness.Stack()
    stack.pg.start()
    stack.kafka.start()
    services = []
    try:
        for i, d in enumerate(dirs):
            harness.BIN_DIR = os.path.abspath(d)
            svc = stack.reservation_service(tag=f"ab-{i}")
            svc.start()
            services.append(svc)
        seed(stack.pg)
        tokens = [harness.forge_token(u, exp_in=3600) for u in range(1, USERS + 1)]
        headers = harness.bearer(tokens[0])
        date = requests.get(f"{services[0].url}/reservations?limit=1", headers=headers,
                            timeout=10).json()[0]["start_time"][:10]
        endpoints = {
            "GET /reservations?limit=20": ["/reservations?limit=20"],
            "GET /availability/rooms/{id} (7 days)": [
                f"/availability/rooms/{r}?start_date={date}&end_date={date[:8]}"
                f"{int(date[8:]) + 6:02d}" for r in range(1, ROOMS + 1)],
            "GET /availability": [f"/availability?room_id={r}&date={date}"
                                  for r in range(1, ROOMS + 1)],
        }
        # Byte for byte: every endpoint, and the list's second page through its cursor.
        for paths in endpoints.values():
            for path in paths[:5]:
                bodies = [requests.get(s.url + path, headers=headers, timeout=10).content
                          for s in services]
                assert bodies[0] == bodies[1], (path, bodies)
        link = requests.get(services[0].url + "/reservations?limit=20", headers=headers,
                            timeout=10).headers.get("Link", "")
        cursor = re.search(r"<([^>]+)>", link).group(1)
        cursor = cursor[cursor.index("/reservations"):]
        pages = [requests.get(s.url + cursor, headers=headers, timeout=10).content
                 for s in services]
        assert pages[0] == pages[1] and len(pages[0]) > 100, pages
        print("answers byte for byte the same: yes")
        results = {name: [[], []] for name in endpoints}
        with tempfile.TemporaryDirectory() as tmp:
            for name, paths in endpoints.items():
                lua = os.path.join(tmp, "ab.lua")
                with open(lua, "w") as f:
                    f.write(LUA % (", ".join(f'"{t}"' for t in tokens),
                                   ", ".join(f'"{p}"' for p in paths)))
                for _ in range(ROUNDS):
                    for i, svc in enumerate(services):
                        results[name][i].append(wrk(svc.url, lua))
        print(f"| endpoint | A req/s ({dirs[0]}) | B req/s ({dirs[1]}) | B/A |")
        print("|---|---:|---:|---:|")
        for name, (a, b) in results.items():
            ma, mb = sorted(a)[len(a) // 2], sorted(b)[len(b) // 2]
            print(f"| {name} | {ma:.0f} ({', '.join(f'{x:.0f}' for x in a)}) | "
                  f"{mb:.0f} ({', '.join(f'{x:.0f}' for x in b)}) | {mb / ma:.2f} |")
    finally:
        for svc in services:
            svc.stop()
        stack.kafka.stop()
        stack.pg.stop()
        stack.cleanup()


if __name__ == "__main__":
    main()
