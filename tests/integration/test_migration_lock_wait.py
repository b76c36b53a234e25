"""Migrations run outside the requests' 10 s statement_timeout, under their own bound
(MIGRATION_TIMEOUT_MS, default 10 minutes; common/src/db.c db_migrate).

A replica that starts while another one migrates waits for the migration advisory lock. That
wait used to run under statement_timeout, so after 10 s the replica gave up, exited and was
restarted, again and again. Here the test holds the lock itself for longer than 10 s while an
extra room-service starts: the service must wait (alive, /live 200, /ready 503), then migrate and
become ready once the lock is released. With a short MIGRATION_TIMEOUT_MS the same wait ends in
a clear error and exit 1 instead of a wait without end. SIGTERM ends the wait at once (it asks
for the lock once a second in between signals) instead of after MIGRATION_TIMEOUT_MS.
"""
import signal
import time

import psycopg2
import requests

from harness import service_ready, wait_until

MIGRATION_LOCK = 7263540     # common/src/db.c DB_MIGRATION_LOCK
HOLD_SECONDS = 13            # longer than the requests' statement_timeout (10 s)


def hold_migration_lock(pg):
    conn = psycopg2.connect(pg.dsn("room_db"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    return conn


def test_a_replica_waits_for_another_ones_migration_beyond_the_statement_timeout(stack):
    svc = stack.room_service(tag="migration-wait")
    conn = hold_migration_lock(stack.pg)
    try:
        t0 = time.monotonic()
        svc.start(wait_ready=False)
        wait_until(lambda: "waiting for the migration lock" in svc.log_text(), timeout=15,
                   what="the service to report that it waits for the migration lock")
        while time.monotonic() - t0 < HOLD_SECONDS:
            assert svc.proc.poll() is None, f"exited while waiting:\n{svc.log_tail()}"
            assert requests.get(f"{svc.url}/live", timeout=5).status_code == 200
            r = requests.get(f"{svc.url}/ready", timeout=5)
            assert r.status_code == 503, r.text
            time.sleep(0.5)
    finally:
        conn.close()    # releases the lock
    try:
        wait_until(lambda: service_ready(svc), timeout=20, interval=0.1,
                   what="/ready once the lock was released")
        assert svc.proc.poll() is None
        assert "canceling statement due to statement timeout" not in svc.log_text()
    finally:
        rc = svc.stop()
    assert rc == 0, svc.log_tail()
    assert not svc.sanitizer_reports(), svc.log_tail()


def test_the_wait_for_the_migration_lock_is_bounded_by_migration_timeout_ms(stack):
    svc = stack.room_service(tag="migration-timeout", MIGRATION_TIMEOUT_MS="2000")
    conn = hold_migration_lock(stack.pg)
    try:
        t0 = time.monotonic()
        svc.start(wait_ready=False)
        rc = svc.proc.wait(timeout=30)
        took = time.monotonic() - t0
    finally:
        conn.close()
        svc.stop()
    assert rc == 1, svc.log_tail()
    assert 2 <= took < 20, took
    assert "migration lock failed" in svc.log_text(), svc.log_tail()
    assert "MIGRATION_TIMEOUT_MS (2000 ms)" in svc.log_text(), svc.log_tail()
    assert not svc.sanitizer_reports(), svc.log_tail()


def test_a_stop_signal_ends_the_wait_for_the_migration_lock(stack):
    """The wait used to be one pg_advisory_lock statement on the thread that takes the signals:
    SIGTERM (Ctrl-C in `make run`) was ignored for up to MIGRATION_TIMEOUT_MS."""
    svc = stack.room_service(tag="migration-stop")
    conn = hold_migration_lock(stack.pg)
    try:
        svc.start(wait_ready=False)
        wait_until(lambda: "waiting for the migration lock" in svc.log_text(), timeout=15,
                   what="the service to report that it waits for the migration lock")
        t0 = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        rc = svc.proc.wait(timeout=60)
        took = time.monotonic() - t0
    finally:
        conn.close()
        svc.stop()
    assert rc == 0, svc.log_tail()
    assert took < 5, took
    assert "stopped while waiting for the migration lock" in svc.log_text(), svc.log_tail()
    assert not svc.sanitizer_reports(), svc.log_tail()
