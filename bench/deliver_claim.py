#!/usr/bin/env python3
"""The delivery queue's claim against its backlog (review 14d-A M2), on a real PostgreSQL.

Two figures, for the claim of common/src/deliver.c before issue 14's fix round (a walk over
every distinct pending target: "old") and now (deliveries_claim over delivery_targets: "new"):

- idle: N distinct recipients in backoff (one pending mail row each, next attempt in an hour)
  plus one row due: the milliseconds of a claim (the median of REPEAT), N = 1k, 10k, 50k;
- drain: N due rows to distinct recipients sent one after another by one session, claim and
  record per message: the database time per message (the client's wall clock, the server on
  this machine).

The schema is the migrations' own text (read from deliver.c with the frozen-migrations test's
reader), applied to a database of its own (dropped first).  The old statements are kept below
as they were (git show 7e84056:common/src/deliver.c).

Usage: python3 bench/deliver_claim.py postgresql://app:…@127.0.0.1:PORT/reservation_db
       [--sizes 1000,10000,50000] [--drain 2000]
"""
import argparse
import os
import statistics
import sys
import time

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "offline"))
from test_migrations_frozen import c_string  # noqa: E402

REPEAT = 21
LEASE_MS = 90000

OLD_CLAIM = """
WITH RECURSIVE targets (target) AS (
 (SELECT target FROM deliveries WHERE kind = %(k)s AND status = 'pending' ORDER BY target LIMIT 1)
 UNION ALL
 SELECT (SELECT d.target FROM deliveries d WHERE d.kind = %(k)s AND d.status = 'pending'
  AND d.target > t.target ORDER BY d.target LIMIT 1)
 FROM targets t WHERE t.target IS NOT NULL
), free AS (
 SELECT t.target, l.last FROM targets t
 CROSS JOIN LATERAL (SELECT max(b.leased_until) AS last FROM deliveries b
  WHERE b.kind = %(k)s AND b.target = t.target AND b.leased_until IS NOT NULL) l
 WHERE t.target IS NOT NULL AND (l.last IS NULL OR l.last <= now())
), heads AS (
 SELECT h.id, f.last, h.next_attempt_at FROM free f
 CROSS JOIN LATERAL (SELECT d.id, d.next_attempt_at FROM deliveries d
  WHERE d.kind = %(k)s AND d.target = f.target AND d.status = 'pending'
  AND d.next_attempt_at <= now()
  AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.kind = d.kind
   AND o.target = d.target AND o.key = d.key AND o.status = 'pending' AND o.id < d.id)
  ORDER BY d.next_attempt_at, d.id LIMIT 1) h
 ORDER BY f.last NULLS FIRST, h.next_attempt_at, h.id LIMIT 4
)
 SELECT d.id, d.target, d.key, d.payload::text, d.attempts,
 (extract(epoch FROM now() - d.created_at) * 1000)::bigint,
 coalesce(extract(epoch FROM d.leased_until - d.last_attempt_at) * 1000, 0)::bigint
 FROM heads h JOIN deliveries d ON d.id = h.id
 WHERE d.status = 'pending' AND d.next_attempt_at <= now()
 AND pg_try_advisory_xact_lock(hashtextextended(d.kind || '/' || d.target, 0))
 ORDER BY h.last NULLS FIRST, h.next_attempt_at, h.id LIMIT 1
 FOR UPDATE OF d SKIP LOCKED"""
OLD_BUSY = ("SELECT 1 FROM deliveries WHERE kind = %s AND target = %s AND leased_until > now() "
            "AND id <> %s LIMIT 1")
OLD_LEASE = ("UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = now(), "
             "leased_until = now() + make_interval(secs => %s / 1000.0), "
             "next_attempt_at = now() + make_interval(secs => %s / 1000.0) WHERE id = %s")
OLD_SENT = ("UPDATE deliveries SET status = 'sent', leased_until = now(), sent_at = now(), "
            "finished_at = now(), last_status = 250, last_error = NULL "
            "WHERE id = %s AND attempts = %s AND status = 'pending'")


def schema():
    src = open(os.path.join(ROOT, "common", "src", "deliver.c"), encoding="utf-8").read()
    return [c_string(src, name) for name in ("deliver_schema_sql", "deliver_leases_schema_sql",
                                              "deliver_targets_schema_sql",
                                              "deliver_claim_schema_sql",
                                              "deliver_record_schema_sql")]


def fresh(conn):
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS deliveries, delivery_targets, delivery_wakes CASCADE")
        for sql in schema():
            cur.execute(sql)


def fill(conn, backoff, due):
    """backoff rows to distinct recipients not due for an hour, then due rows (distinct too);
    the targets as the senders would have them (the wakes absorbed)."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO deliveries (kind, target, key, payload, attempts, "
                    "next_attempt_at, leased_until, last_attempt_at) "
                    "SELECT 'mail', 'r' || i || '@example.org', 'k' || i, '{}', 3, "
                    "now() + interval '1 hour', now() - interval '1 minute', "
                    "now() - interval '1 minute' FROM generate_series(1, %s) i", (backoff,))
        cur.execute("INSERT INTO deliveries (kind, target, key, payload) "
                    "SELECT 'mail', 'due' || i || '@example.org', 'd' || i, '{}' "
                    "FROM generate_series(1, %s) i", (due,))
        cur.execute("DELETE FROM delivery_wakes")
        cur.execute("INSERT INTO delivery_targets (kind, target, due_at, leased_until, "
                    "last_attempt_at) SELECT kind, target, min(next_attempt_at), "
                    "max(leased_until), max(last_attempt_at) FROM deliveries "
                    "WHERE status = 'pending' GROUP BY kind, target")
        cur.execute("VACUUM ANALYZE deliveries")
        cur.execute("VACUUM ANALYZE delivery_targets")


def old_claim(cur):
    cur.execute("BEGIN")
    cur.execute(OLD_CLAIM, {"k": "mail"})
    row = cur.fetchone()
    if row:
        cur.execute(OLD_BUSY, ("mail", row[1], row[0]))
        cur.fetchall()
    return row


def idle_ms(conn, claim):
    """Median ms of a claim that finds the one due row (rolled back: the same state each time)."""
    times = []
    with conn.cursor() as cur:
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            if claim == "old":
                row = old_claim(cur)
            else:
                cur.execute("BEGIN")
                cur.execute("SELECT * FROM deliveries_claim('mail', %s)", (LEASE_MS,))
                row = cur.fetchone()
                row = row if row[0] is not None else None
            times.append((time.perf_counter() - t0) * 1000)
            assert row and row[1].startswith("due"), row
            cur.execute("ROLLBACK")
    return statistics.median(times)


def drain_ms(conn, claim, n):
    """ms per message: claim, lease and record sent, one after another, n messages."""
    with conn.cursor() as cur:
        t0 = time.perf_counter()
        for _ in range(n):
            if claim == "old":
                row = old_claim(cur)
                cur.execute(OLD_LEASE, (LEASE_MS, LEASE_MS, row[0]))
                cur.execute("COMMIT")
                cur.execute(OLD_SENT, (row[0], row[4] + 1))
            else:
                cur.execute("SELECT * FROM deliveries_claim('mail', %s)", (LEASE_MS,))
                row = cur.fetchone()
                cur.execute("SELECT deliveries_record(%s, %s, 'sent', 250, NULL, 0)",
                            (row[0], row[4] + 1))
                assert cur.fetchone()[0]
        return (time.perf_counter() - t0) * 1000 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dsn")
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--drain", type=int, default=2000)
    args = ap.parse_args()
    conn = psycopg2.connect(args.dsn)
    conn.autocommit = True
    print("| distinct recipients in backoff | old claim | new claim |")
    print("|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        fresh(conn)
        fill(conn, n, 1)
        old, new = idle_ms(conn, "old"), idle_ms(conn, "new")
        print(f"| {n:,} | {old:.2f} ms | {new:.2f} ms |", flush=True)
    if args.drain:
        print(f"\n| drain of {args.drain:,} due rows (distinct recipients), per message | old "
              "| new |\n|---|---|---|")
        per = {}
        for claim in ("old", "new"):
            fresh(conn)
            fill(conn, 0, args.drain)
            per[claim] = drain_ms(conn, claim, args.drain)
        print(f"| claim + lease + record | {per['old']:.2f} ms | {per['new']:.2f} ms |")
    conn.close()


if __name__ == "__main__":
    main()
