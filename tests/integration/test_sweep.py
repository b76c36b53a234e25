"""The sweeper deletes what tables would otherwise keep for ever (common/src/sweep.c): sent outbox
rows after OUTBOX_RETENTION_SECONDS, idempotency keys after IDEMPOTENCY_KEY_RETENTION_SECONDS,
expired sign-in states, and refresh tokens once their whole sign-in (family) has expired - but
not the spent tokens of a sign-in that still has a valid token, so that replaying one of those
still ends the sign-in.

The services run on a private PostgreSQL cluster with SWEEP_INTERVAL_SECONDS=1 and
SWEEP_BATCH_ROWS=2 (so a sweep takes several statements); rows are aged by setting their
timestamps in the past. reservation-service gets an unreachable broker, so its unsent outbox rows
stay unsent.
"""
import hashlib
import os
import re
import time
import uuid

import pytest
import requests

from harness import Postgres, db_query, login, query_of, wait_until

SWEEP_ENV = {"SWEEP_INTERVAL_SECONDS": "1", "SWEEP_BATCH_ROWS": "2"}


@pytest.fixture(scope="module")
def sweep_pg(stack):
    pg = Postgres(os.path.join(stack.workdir, "pg-sweep"))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def swept(svc, table):
    """sweep_rows_deleted_total{table=...} from svc's /metrics (None when absent)."""
    text = requests.get(f"{svc.url}/metrics", timeout=10).text
    m = re.search(rf'^sweep_rows_deleted_total\{{table="{table}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def sweep_lines(svc, table):
    return [line for line in svc.log_text().splitlines()
            if "sweep: deleted" in line and f'"table":"{table}"' in line]


def test_old_outbox_rows_revocations_and_idempotency_keys_are_swept(stack, sweep_pg):
    q = lambda sql, *p: db_query(sweep_pg, "reservation_db", sql, *p)  # noqa: E731
    svc = stack.reservation_service(tag="reservation-sweep",
                                    DATABASE_URL=sweep_pg.dsn("reservation_db"),
                                    KAFKA_BROKER_URL="127.0.0.1:1", SWEEP_INTERVAL_SECONDS="3600",
                                    SWEEP_BATCH_ROWS="2")
    svc.start()   # creates the tables (its first sweep finds nothing)
    svc.stop()
    tag = uuid.uuid4().hex[:8]
    outbox = {  # key -> (created, sent) ages; default retention 7 days after sending
        "old-1": ("'30 days'", "'8 days'"), "old-2": ("'30 days'", "'7 days 1 hour'"),
        "old-3": ("'9 days'", "'8 days'"),
        "young": ("'8 days'", "'6 days'"),       # created long ago, sent recently: kept
        "unsent": ("'60 days'", None),           # never sent: never swept
    }
    for key, (created, sent) in outbox.items():
        q("INSERT INTO outbox (topic, key, payload, created_at, sent_at) "
          f"VALUES ('sweep_{tag}', %s, '{{}}', now() - interval {created}, "
          f"{'now() - interval ' + sent if sent else 'NULL'})", f"{tag}-{key}")
    # Revocations: older than the longest access token's life (24 h + margin) void nothing.
    revocations = {424241: "'2 days'", 424242: "'24 hours 10 minutes'", 424243: "'23 hours'",
                   424244: "'30 days'", 424245: "'1 minute'"}
    for user_id, age in revocations.items():
        q("INSERT INTO token_revocations (user_id, not_before, reason) "
          f"VALUES (%s, now() - interval {age}, 'user_disabled')", user_id)
    keys = {"old-a": "'25 hours'", "old-b": "'2 days'", "old-c": "'30 days'",
            "young": "'23 hours'"}   # default retention 24 h
    for key, age in keys.items():
        q("INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, "
          f"created_at) VALUES (424242, %s, 'h', 201, '{{}}', now() - interval {age})",
          f"{tag}-{key}")

    svc = stack.reservation_service(tag="reservation-sweep-2",
                                    DATABASE_URL=sweep_pg.dsn("reservation_db"),
                                    KAFKA_BROKER_URL="127.0.0.1:1", **SWEEP_ENV)
    svc.start()

    def outbox_left():
        return sorted(r[0].split("-", 1)[1] for r in
                      q("SELECT key FROM outbox WHERE topic = %s", f"sweep_{tag}"))

    def revocations_left():
        return sorted(r[0] for r in q("SELECT user_id FROM token_revocations "
                                      "WHERE user_id BETWEEN 424241 AND 424245"))

    def keys_left():
        return sorted(r[0].split("-", 1)[1] for r in
                      q("SELECT key FROM idempotency_keys WHERE user_id = 424242"))

    wait_until(lambda: outbox_left() == ["unsent", "young"], timeout=20, interval=0.3,
               what="old sent outbox rows swept")
    wait_until(lambda: keys_left() == ["young"], timeout=20, interval=0.3,
               what="old idempotency keys swept")
    assert q("SELECT sent_at IS NULL FROM outbox WHERE key = %s", f"{tag}-unsent") == [(True,)]
    wait_until(lambda: revocations_left() == [424243, 424245], timeout=20, interval=0.3,
               what="token revocations that void no live token swept")
    assert swept(svc, "outbox") == 3
    assert swept(svc, "idempotency_keys") == 3
    assert swept(svc, "token_revocations") == 3
    # One line per table and sweep that deleted something, with its count.
    assert [re.search(r'"rows":(\d+)', line).group(1)
            for line in sweep_lines(svc, "outbox")] == ["3"], svc.log_tail()
    assert len(sweep_lines(svc, "idempotency_keys")) == 1, svc.log_tail()

    # Later sweeps (one a second) find nothing more: the young rows stay.
    time.sleep(2.5)
    assert swept(svc, "outbox") == 3
    assert outbox_left() == ["unsent", "young"]
    assert keys_left() == ["young"]
    assert svc.stop() == 0


def sha256(token):
    return hashlib.sha256(token.encode()).hexdigest()


def family_of(pg, token):
    rows = db_query(pg, "user_db", "SELECT family FROM refresh_tokens WHERE token_hash = %s",
                    sha256(token))
    return rows[0][0] if rows else None


def family_rows(pg, family):
    return db_query(pg, "user_db", "SELECT count(*) FROM refresh_tokens WHERE family = %s",
                    family)[0][0]


def refresh(url, token):
    return requests.post(f"{url}/auth/refresh", json={"refresh_token": token}, timeout=10)


def test_expired_sign_in_states_and_refresh_families_are_swept(stack, sweep_pg):
    q = lambda sql, *p: db_query(sweep_pg, "user_db", sql, *p)  # noqa: E731
    svc = stack.user_service(tag="user-sweep", DATABASE_URL=sweep_pg.dsn("user_db"),
                             KAFKA_BROKER_URL="", **SWEEP_ENV)
    svc.start()
    email = f"sweep-{uuid.uuid4().hex[:8]}@example.com"

    # Sign-in A: rotated once; its spent first token expired, the current one is valid.
    r = login(svc.url, email)
    assert r.status_code == 200, r.text
    a0 = r.json()["refresh_token"]
    r = refresh(svc.url, a0)
    assert r.status_code == 200, r.text
    a1 = r.json()["refresh_token"]
    fam_a = family_of(sweep_pg, a0)
    q("UPDATE refresh_tokens SET used_at = now() - interval '2 hours', "
      "expires_at = now() - interval '1 hour' WHERE token_hash = %s", sha256(a0))
    # Sign-in B: rotated once, every token expired: the whole family goes.
    r = login(svc.url, email)
    assert r.status_code == 200, r.text
    b0 = r.json()["refresh_token"]
    r = refresh(svc.url, b0)
    assert r.status_code == 200, r.text
    fam_b = family_of(sweep_pg, b0)
    q("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE family = %s",
      fam_b)
    # Sign-in C: valid, untouched.
    r = login(svc.url, email)
    assert r.status_code == 200, r.text
    fam_c = family_of(sweep_pg, r.json()["refresh_token"])
    assert family_rows(sweep_pg, fam_a) == 2 and family_rows(sweep_pg, fam_b) == 2

    # Sign-in states (after the sign-ins above, whose start also deletes expired states): one
    # expired a minute ago, one still valid.
    states = []
    for _ in range(2):
        r = requests.get(f"{svc.url}/auth/google/login", params={"login_hint": email},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        states.append(query_of(r.headers["Location"])["state"])
    q("UPDATE login_states SET expires_at = now() - interval '1 minute' WHERE state = %s",
      states[0])

    wait_until(lambda: family_rows(sweep_pg, fam_b) == 0, timeout=20, interval=0.3,
               what="expired sign-in's refresh tokens swept")
    wait_until(lambda: not q("SELECT 1 FROM login_states WHERE state = %s", states[0]),
               timeout=20, interval=0.3, what="expired sign-in state swept")
    assert q("SELECT 1 FROM login_states WHERE state = %s", states[1]) == [(1,)]
    # Several sweeps (one a second) later the live families are complete, spent tokens included.
    time.sleep(2.5)
    assert family_rows(sweep_pg, fam_a) == 2
    assert family_rows(sweep_pg, fam_c) == 1
    assert swept(svc, "refresh_tokens") == 2
    assert swept(svc, "login_states") == 1
    assert sweep_lines(svc, "refresh_tokens") and sweep_lines(svc, "login_states")

    # Reuse detection still works for the live sign-in: its spent (and expired) token comes
    # back → 401, and the sign-in is over (its valid token is refused too).
    r = refresh(svc.url, a0)
    assert r.status_code == 401, r.text
    r = refresh(svc.url, a1)
    assert r.status_code == 401, r.text
    assert svc.stop() == 0
