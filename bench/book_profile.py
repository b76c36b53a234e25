#!/usr/bin/env python3
"""Where a booking's database time goes: res_book_answer() called N times (one client, distinct
free slots, no attendees, no policies) on 200 rooms with 1,000 reservations each seeded as
make bench seeds them, then pg_stat_statements (track = all: the statements inside the
functions and triggers too) and pg_stat_user_functions, per booking.

Usage: python3 bench/book_profile.py DIR   (DIR holds a reservation-service binary, which runs
the migrations).  Settings: N (3000).
"""
import datetime
import os
import subprocess
import sys
import time

import psycopg2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

N = int(os.environ.get("N", "3000"))
BOOK = ("SELECT b.outcome FROM res_book_answer(%s::bigint, %s::bigint, 'bench', %s::bigint, "
        "NULL::timestamp, %s::bigint, NULL::timestamp, 0::bigint, 'reservation_events', "
        "NULL::text, NULL::text, %s::bigint, 300, 86400, 31536000, '{}'::text[], "
        "'bench@example.com', 'Bench', NULL::text, 'employee', false) b")
STATEMENTS = ("SELECT round((total_exec_time / {n})::numeric, 4), calls, "
              "left(regexp_replace(query, '\\s+', ' ', 'g'), 150) FROM pg_stat_statements "
              "WHERE calls >= {n} / 2 ORDER BY total_exec_time DESC LIMIT 30")
FUNCTIONS = ("SELECT funcname, calls, round((total_time / {n})::numeric, 4), "
             "round((self_time / {n})::numeric, 4) FROM pg_stat_user_functions "
             "ORDER BY total_time DESC LIMIT 20")


def main():
    stack = harness.Stack()
    stack.pg.start()
    stack.kafka.start()
    try:
        harness.BIN_DIR = os.path.abspath(sys.argv[1])
        stack.reservation_service(tag="profile").start().stop()  # the migrations
        harness.superuser_sql(stack.pg, "ALTER SYSTEM SET shared_preload_libraries = "
                                        "'pg_stat_statements'")
        stack.pg.stop()
        stack.pg.start()
        for setting in ("pg_stat_statements.track = 'all'", "track_functions = 'pl'"):
            harness.superuser_sql(stack.pg, f"ALTER SYSTEM SET {setting}")
        harness.superuser_sql(stack.pg, "SELECT pg_reload_conf()")
        psql = ["runuser", "-u", "postgres", "--", f"{harness.PG_BIN}/psql", "-XAtq", "-h",
                stack.pg.dir, "-p", str(stack.pg.port), "-d", "reservation_db", "-c"]
        day0 = int(datetime.datetime.now(datetime.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0).timestamp())
        conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO rooms (id, name, capacity, time_zone, active, version, "
                        "details_known) SELECT g, 'Room ' || g, 8, 'Europe/Berlin', true, 1, "
                        "true FROM generate_series(1, 200) g")
            with open(os.path.join(ROOT, "bench", "sql", "seed_reservations.sql")) as f:
                cur.execute(f.read(), {"lo": 0, "hi": 200_000, "rooms": 200, "users": 1000,
                                       "uid_lo": 1, "day0": day0})
            cur.execute("VACUUM (ANALYZE)")
        subprocess.run(psql + ["CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
                               "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset()"],
                       check=True, cwd="/", capture_output=True)
        conn.autocommit = False
        t0 = time.monotonic()
        with conn.cursor() as cur:
            for n in range(N):
                # Slots at night (00:00-08:00 UTC), where the seed has none, 30 days ahead on.
                room, k = 1 + n % 190, n // 190
                start = day0 + (30 + k // 32) * 86400 + (k % 32) * 900
                cur.execute("SELECT pg_current_xact_id()::text, extract(epoch FROM now())::text")
                cur.execute(BOOK, (room, 1 + n % 1000, start, start + 900, day0 - 86400))
                assert cur.fetchone()[0] == "done"
                conn.commit()
        took = time.monotonic() - t0
        print(f"{N} bookings in {took:.1f} s: {1000 * took / N:.2f} ms each (one client)")
        print("ms per booking | calls | statement")
        print(subprocess.run(psql + [STATEMENTS.format(n=N)], capture_output=True, text=True,
                             cwd="/").stdout)
        print("function | calls | total ms per booking | self ms per booking")
        print(subprocess.run(psql + [FUNCTIONS.format(n=N)], capture_output=True, text=True,
                             cwd="/").stdout)
        conn.close()
    finally:
        stack.stop()  # what was started of it
        stack.cleanup()


if __name__ == "__main__":
    main()
