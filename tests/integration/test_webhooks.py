"""Webhooks (docs/api.md#webhooks) against the real reservation-service: admin CRUD and its
validation, signed POSTs received by a real HTTP receiver in this process, retries with backoff,
order per reservation, a hanging receiver that must not slow the API, giving up after the retry
window, refused addresses and the delivery queue's metrics.  The stack's reservation-service runs
with WEBHOOK_RETRY_BASE_MS=200, WEBHOOK_RETRY_HOURS=0.001 (3.6 s) and WEBHOOK_TIMEOUT_MS=2000
(harness.py)."""
import ast
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import threading
import time
import uuid

import psycopg2
import psycopg2.errors
import pytest
import requests

from harness import (
    ROOT,
    assert_error,
    booked,
    create_room,
    db_query,
    res_db_query,
    shift,
    utc_at,
    utc_text,
    wait_known_room,
    wait_until,
)

POOL_BATCH = 8
SECRET = "s3cr3t-" + uuid.uuid4().hex  # 39 characters


class Receiver:
    """An HTTP server on a free loopback port.  Each path has a behaviour: "ok", "fail:N" (500
    for the first N requests, then 200), "fail" (always 500), "flaky" (500, then three 200s
    after 0.1 s each, and again), "slow-first:S" (the first answer after S seconds) or "hang"
    (answers only once release() is called).  Every
    request is recorded with its headers, body and arrival time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.behaviour = {}
        self.counts = {}
        self.released = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "at": time.time()})
                    n = receiver.counts.get(self.path, 0)
                    receiver.counts[self.path] = n + 1
                    mode = receiver.behaviour.get(self.path, "ok")
                if mode == "hang":
                    receiver.released.wait(30)
                    status = 200
                elif mode == "fail":
                    status = 500
                elif mode.startswith("fail:"):
                    status = 500 if n < int(mode[5:]) else 200
                elif mode.startswith("slow-first:"):  # the first answer after N s
                    if n == 0:
                        time.sleep(float(mode[11:]))
                    status = 200
                elif mode == "flaky":  # 500 at once, then three slow 200s, and so on
                    if n % 4:
                        time.sleep(0.1)
                    status = 200 if n % 4 else 500
                else:
                    status = 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def path(self, mode="ok"):
        p = f"/hook/{uuid.uuid4().hex[:12]}"
        self.behaviour[p] = mode
        return p

    def received(self, path, reservation_id=None):
        with self.lock:
            out = [r for r in self.requests if r["path"] == path]
        if reservation_id is not None:
            out = [r for r in out
                   if json.loads(r["body"]).get("reservation", {}).get("id") == reservation_id]
        return out

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture()
def hooks(res_url, root):
    """Registers webhooks for a test and deletes them afterwards, so that later bookings of
    other tests queue nothing for them."""
    made = []

    def make(url, events=("reservation_created", "reservation_updated",
                          "reservation_cancelled"), secret=SECRET):
        r = requests.post(f"{res_url}/webhooks", headers=root, timeout=10,
                          json={"url": url, "events": list(events), "secret": secret})
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
        return r.json()

    yield make
    for hid in made:
        requests.delete(f"{res_url}/webhooks/{hid}", headers=root, timeout=10)


def deliveries(res_url, root, hook_id, **params):
    r = requests.get(f"{res_url}/webhooks/{hook_id}/deliveries", headers=root, params=params,
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_deliveries(res_url, root, hook_id, predicate, what, timeout=15):
    got = []

    def check():
        got[:] = deliveries(res_url, root, hook_id)
        return predicate(got)
    wait_until(check, timeout=timeout, interval=0.1, what=what)
    return got


def metric(base_url, name, kind="webhook"):
    text = requests.get(f"{base_url}/metrics", timeout=10).text
    m = re.search(rf'^{name}\{{kind="{kind}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


# ---- registration ----

def test_webhook_crud_and_secret_never_returned(res_url, gateway_url, root, hooks, receiver,
                                                stack):
    hook = hooks(receiver.url("/crud"), events=["reservation_created",
                                                "reservation_series_cancelled",
                                                "reservation_created"])
    assert set(hook) == {"id", "url", "events", "created_at"}
    assert hook["events"] == ["reservation_created", "reservation_series_cancelled"]
    assert hook["url"] == receiver.url("/crud")
    r = requests.get(f"{res_url}/webhooks/{hook['id']}", headers=root, timeout=10)
    assert r.status_code == 200 and r.json() == hook
    r = requests.get(f"{gateway_url}/webhooks", headers=root, timeout=10)  # through nginx
    assert r.status_code == 200, r.text
    assert hook in r.json()
    assert SECRET not in r.text
    assert deliveries(res_url, root, hook["id"]) == []
    r = requests.delete(f"{res_url}/webhooks/{hook['id']}", headers=root, timeout=10)
    assert r.status_code == 204
    for path in (f"/webhooks/{hook['id']}", f"/webhooks/{hook['id']}/deliveries"):
        r = requests.get(f"{res_url}{path}", headers=root, timeout=10)
        assert_error(r, 404, "not_found")
    r = requests.delete(f"{res_url}/webhooks/{hook['id']}", headers=root, timeout=10)
    assert_error(r, 404, "not_found")
    assert SECRET not in stack.reservation.log_text()


@pytest.mark.parametrize("body, field", [
    ({"events": ["reservation_created"], "secret": SECRET}, "url"),
    ({"url": "http://example.com/hook", "events": ["reservation_created"], "secret": SECRET},
     "url"),
    ({"url": "https://user:pw@example.com/hook", "events": ["reservation_created"],
      "secret": SECRET}, "url"),
    ({"url": "https://example.com/hook#frag", "events": ["reservation_created"],
      "secret": SECRET}, "url"),
    ({"url": "ftp://example.com/hook", "events": ["reservation_created"], "secret": SECRET},
     "url"),
    ({"url": "https://example.com/" + "a" * 2100, "events": ["reservation_created"],
      "secret": SECRET}, "url"),
    ({"url": "https://example.com/hook", "events": [], "secret": SECRET}, "events"),
    ({"url": "https://example.com/hook", "events": ["room_created"], "secret": SECRET},
     "events"),
    ({"url": "https://example.com/hook", "events": "reservation_created", "secret": SECRET},
     "events"),
    ({"url": "https://example.com/hook", "events": ["reservation_created"], "secret": "short"},
     "secret"),
    ({"url": "https://example.com/hook", "events": ["reservation_created"],
      "secret": "x" * 257}, "secret"),
    ({"url": "https://example.com/hook", "events": ["reservation_created"]}, "secret"),
    ({"url": "https://example.com/hook", "events": ["reservation_created"], "secret": SECRET,
      "active": True}, "active"),
])
def test_webhook_validation(res_url, root, body, field):
    r = requests.post(f"{res_url}/webhooks", headers=root, json=body, timeout=10)
    assert_error(r, 422, "validation_failed")
    assert field in r.json()["details"], r.json()
    assert SECRET not in r.text


def test_at_most_100_webhooks(res_url, root):
    existing = requests.get(f"{res_url}/webhooks", headers=root, timeout=10).json()
    made = []
    body = {"url": "https://example.com/cap", "events": ["reservation_series_cancelled"],
            "secret": SECRET}
    try:
        for _ in range(100 - len(existing)):
            r = requests.post(f"{res_url}/webhooks", headers=root, json=body, timeout=10)
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        r = requests.post(f"{res_url}/webhooks", headers=root, json=body, timeout=10)
        assert_error(r, 409, "conflict")
        assert "100 webhooks" in r.json()["message"]
        assert len(requests.get(f"{res_url}/webhooks", headers=root, timeout=10).json()) == 100
    finally:
        for hid in made:
            requests.delete(f"{res_url}/webhooks/{hid}", headers=root, timeout=10)
    r = requests.post(f"{res_url}/webhooks", headers=root, json=body, timeout=10)
    assert r.status_code == 201, r.text
    requests.delete(f"{res_url}/webhooks/{r.json()['id']}", headers=root, timeout=10)


def test_webhooks_are_for_admins(res_url, alice):
    body = {"url": "https://example.com/hook", "events": ["reservation_created"],
            "secret": SECRET}
    r = requests.post(f"{res_url}/webhooks", headers=alice, json=body, timeout=10)
    assert_error(r, 403, "forbidden")
    for path in ("/webhooks", "/webhooks/1", "/webhooks/1/deliveries"):
        assert_error(requests.get(f"{res_url}{path}", headers=alice, timeout=10), 403,
                     "forbidden")
    assert_error(requests.delete(f"{res_url}/webhooks/1", headers=alice, timeout=10), 403,
                 "forbidden")
    assert_error(requests.get(f"{res_url}/webhooks", timeout=10), 401, "unauthorized")


# ---- delivery ----

def test_a_booking_is_posted_signed(res_url, root, alice, pool, hooks, receiver):
    path = receiver.path()
    hook = hooks(receiver.url(path), events=["reservation_created"])
    room = pool.take()
    start = utc_at(20, 9)
    res = booked(res_url, alice, room["id"], start, shift(start, hours=1), purpose="Hooked")
    before = time.time()
    wait_until(lambda: receiver.received(path, res["id"]), timeout=10, what="the POST")
    [got] = receiver.received(path, res["id"])
    h = {k.lower(): v for k, v in got["headers"].items()}
    event = json.loads(got["body"])
    assert event["event_type"] == "reservation_created"
    assert event["reservation"]["id"] == res["id"]
    assert event["reservation"]["purpose"] == "Hooked"
    assert h["content-type"] == "application/json"
    assert h["x-webhook-id"] == str(hook["id"])
    assert h["x-event-id"] == event["event_id"]
    # What a receiver checks: a recent timestamp, and the HMAC of "timestamp.body".
    ts = h["x-webhook-timestamp"]
    assert abs(int(ts) - before) < 60
    want = hmac.new(SECRET.encode(), ts.encode() + b"." + got["body"], hashlib.sha256)
    assert hmac.compare_digest(h["x-signature"], "sha256=" + want.hexdigest())
    wrong = hmac.new(b"another secret of enough length", ts.encode() + b"." + got["body"],
                     hashlib.sha256)
    assert h["x-signature"] != "sha256=" + wrong.hexdigest()
    [d] = wait_deliveries(res_url, root, hook["id"], lambda ds: ds and ds[0]["status"] == "sent",
                          "delivery recorded as sent")
    assert d["event_type"] == "reservation_created"
    assert d["event_id"] == event["event_id"]
    assert d["key"] == str(res["id"])
    assert (d["attempts"], d["last_status"], d["last_error"]) == (1, 200, None)
    assert d["sent_at"] and d["next_attempt_at"] is None
    # Not subscribed: an update queues nothing for this webhook.
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice,
                     json={"purpose": "Changed"}, timeout=10)
    assert r.status_code == 200, r.text
    time.sleep(1)
    assert len(deliveries(res_url, root, hook["id"])) == 1
    assert len(receiver.received(path)) == 1


def test_failures_are_retried_with_backoff(res_url, root, alice, pool, hooks, receiver):
    path = receiver.path("fail:2")
    hook = hooks(receiver.url(path), events=["reservation_created"])
    room = pool.take()
    start = utc_at(21, 9)
    res = booked(res_url, alice, room["id"], start, shift(start, hours=1))
    [d] = wait_deliveries(res_url, root, hook["id"], lambda ds: ds and ds[0]["status"] == "sent",
                          "sent after two failures")
    assert (d["attempts"], d["last_status"]) == (3, 200)
    got = receiver.received(path, res["id"])
    assert len(got) == 3
    assert len({r["headers"]["X-Event-Id"] for r in got}) == 1  # the same event each time
    pauses = [b["at"] - a["at"] for a, b in zip(got, got[1:], strict=False)]
    # base 200 ms, doubled, ±20 %: about 0.2 s then 0.4 s (the poll adds up to 0.25 s).
    assert 0.15 <= pauses[0] <= 1.0, pauses
    assert 0.3 <= pauses[1] <= 1.5, pauses


def test_in_order_per_reservation(res_url, root, alice, pool, hooks, receiver):
    path = receiver.path("fail:1")  # the first attempt, the create's, fails
    hook = hooks(receiver.url(path))
    room = pool.take()
    start = utc_at(22, 9)
    res = booked(res_url, alice, room["id"], start, shift(start, hours=1))
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice,
                     json={"purpose": "Second"}, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.delete(f"{res_url}/reservations/{res['id']}", headers=alice, timeout=10)
    assert r.status_code == 204
    wait_deliveries(res_url, root, hook["id"],
                    lambda ds: len(ds) == 3 and all(d["status"] == "sent" for d in ds),
                    "three deliveries sent")
    got = [json.loads(r["body"])["event_type"] for r in receiver.received(path, res["id"])]
    assert got == ["reservation_created", "reservation_created", "reservation_updated",
                   "reservation_cancelled"]
    # Paginated, newest first.
    r = requests.get(f"{res_url}/webhooks/{hook['id']}/deliveries", headers=root,
                     params={"limit": 2}, timeout=10)
    assert [d["event_type"] for d in r.json()] == ["reservation_cancelled",
                                                   "reservation_updated"]
    link = re.match(r"<([^>]+)>; rel=\"next\"", r.headers["Link"]).group(1)
    r = requests.get(f"{res_url}{link}", headers=root, timeout=10)
    assert [(d["event_type"], d["attempts"]) for d in r.json()] == [("reservation_created", 2)]
    assert "Link" not in r.headers


def test_a_change_queued_during_a_send_follows_it_at_once(res_url, root, alice, pool, hooks,
                                                         receiver):
    """The update of a reservation whose created event is being sent (the receiver takes 1.5 s)
    is queued behind it, not due before that send's lease ends (WEBHOOK_TIMEOUT_MS + 60 s):
    once the created event is recorded sent, the update is due at once (review 14d-A M4)."""
    path = receiver.path("slow-first:1.5")
    hook = hooks(receiver.url(path))
    room = pool.take()
    start = utc_at(20, 15)
    res = booked(res_url, alice, room["id"], start, shift(start, hours=1))
    wait_until(lambda: receiver.received(path, res["id"]), timeout=10, interval=0.02,
               what="the created event's POST (in flight)")
    t0 = time.time()
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice,
                     json={"purpose": "Moved on"}, timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: len(receiver.received(path, res["id"])) >= 2, timeout=20, interval=0.05,
               what="the update's POST")
    got = receiver.received(path, res["id"])
    assert [json.loads(g["body"])["event_type"] for g in got] == ["reservation_created",
                                                                  "reservation_updated"]
    # The created event answered about 1.5 s after it arrived; the update follows within the
    # idle poll, not a minute later.
    assert got[1]["at"] - t0 < 5.0, got[1]["at"] - t0
    wait_deliveries(res_url, root, hook["id"],
                    lambda ds: len(ds) == 2 and all(d["status"] == "sent" for d in ds),
                    "both deliveries sent")


def deliver_sql(name):
    """The text of the C string constant name in common/src/deliver.c (adjacent literals)."""
    with open(os.path.join(ROOT, "common", "src", "deliver.c"), encoding="utf-8") as f:
        src = f.read()
    body = re.search(rf"const char {name}\[\] =(.*?);\n", src, re.S).group(1)
    return "".join(ast.literal_eval(lit) for lit in re.findall(r'"(?:[^"\\]|\\.)*"', body))


def session(stack):
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    conn.autocommit = True
    return conn


def claim(conn, kind):
    """deliveries_claim(kind, 90 s): (id, attempts before, idle_ms)."""
    with conn.cursor() as cur:
        cur.execute("SELECT d_id, d_attempts, idle_ms FROM deliveries_claim(%s, 90000)", (kind,))
        return cur.fetchone()


def test_a_row_queued_while_its_head_is_recorded_is_due_at_once(stack):
    """Review 14e L1, at the SQL level: a change queues a row behind a head in flight, and the
    head's send is recorded before that change commits.  The next claim takes the row at once,
    instead of finding its target due only at the head's lease end (90 s here).  The kind is
    the test's own: the service's senders never claim it."""
    kind, target = "zz_queued_behind", f"t-{uuid.uuid4().hex[:8]}"
    sender, booking = session(stack), psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        with sender.cursor() as cur:
            cur.execute("INSERT INTO deliveries (kind, target, key, payload) "
                        "VALUES (%s, %s, 'k', '{}') RETURNING id", (kind, target))
            head = cur.fetchone()[0]
        assert claim(sender, kind)[:2] == (head, 0)
        with booking.cursor() as cur:  # the booking's transaction, open during the record
            cur.execute("INSERT INTO deliveries (kind, target, key, payload) "
                        "VALUES (%s, %s, 'k', '{}') RETURNING id", (kind, target))
            queued = cur.fetchone()[0]
        with sender.cursor() as cur:
            cur.execute("SELECT deliveries_record(%s, 1, 'sent', 200, NULL, 0)", (head,))
            assert cur.fetchone()[0] is True
        booking.commit()
        got = claim(sender, kind)
        assert got[0] == queued, got  # before the fix: no row, idle_ms about 90 000
        with sender.cursor() as cur:
            cur.execute("SELECT deliveries_record(%s, 1, 'sent', 200, NULL, 0)", (queued,))
    finally:
        booking.close()
        sender.close()


def test_the_targets_sweep_never_waits_for_a_sender(stack):
    """Review 14e L2: the targets sweep (deliver_targets_sweep_sql, retention 0) skips a target
    row a sender holds instead of waiting for it: waiting, it could deadlock with a claim that
    locks targets in another order.  It still deletes the idle targets nobody holds."""
    kind = "zz_targets_sweep"
    held, free = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    holder, sweeper = psycopg2.connect(stack.pg.dsn("reservation_db")), session(stack)
    try:
        with sweeper.cursor() as cur:
            cur.execute("INSERT INTO delivery_targets (kind, target, last_attempt_at) "
                        "VALUES (%s, %s, now() - interval '1 day'), "
                        "(%s, %s, now() - interval '1 day')", (kind, held, kind, free))
        with holder.cursor() as cur:  # a claim's or a record's lock, held
            cur.execute("SELECT 1 FROM delivery_targets WHERE kind = %s AND target = %s "
                        "FOR UPDATE", (kind, held))
        with sweeper.cursor() as cur:
            cur.execute("SET lock_timeout = '3s'")
            cur.execute(deliver_sql("deliver_targets_sweep_sql").replace("$1", "%s")
                        .replace("$2", "%s"), (0, 100000))
            cur.execute("SELECT target FROM delivery_targets WHERE kind = %s", (kind,))
            assert [r[0] for r in cur.fetchall()] == [held]
        holder.rollback()
    finally:
        holder.close()
        with sweeper.cursor() as cur:
            cur.execute("DELETE FROM delivery_targets WHERE kind = %s", (kind,))
        sweeper.close()


def test_a_hanging_receiver_never_slows_the_api(res_url, root, alice, pool, hooks, receiver):
    path = receiver.path("hang")
    hooks(receiver.url(path), events=["reservation_created"])
    room = pool.take()

    def create(i):
        start = shift(utc_at(23, 0), minutes=30 * i)
        t0 = time.monotonic()
        booked(res_url, alice, room["id"], start, shift(start, minutes=30))
        return time.monotonic() - t0

    create(0)
    create(1)
    # One sender at a time waits on the receiver for the whole timeout (one send in flight per
    # webhook), attempt after attempt.
    wait_until(lambda: len(receiver.received(path)) >= 2, timeout=10, what="two hanging POSTs")
    times = sorted(create(i) for i in range(2, 32))
    assert times[-1] < 1.0, times
    assert times[len(times) // 2] < 0.25, times


def test_a_hanging_receiver_does_not_hold_up_other_webhooks(res_url, root, alice, pool, hooks,
                                                            receiver, stack):
    """The dead receiver keeps one sender busy (WEBHOOK_TIMEOUT_MS 2 s per attempt) and is
    retried; the healthy one's deliveries arrive promptly all the while."""
    # Earlier tests' sends end first (a deleted webhook's rows fail at once, a send in flight
    # within WEBHOOK_TIMEOUT_MS): two senders, and this test needs one free.
    wait_until(lambda: metric(res_url, "delivery_pending") == 0, timeout=20,
               what="an empty queue")
    dead = receiver.path("hang")
    healthy = receiver.path("ok")
    dead_hook = hooks(receiver.url(dead), events=["reservation_created"])
    hooks(receiver.url(healthy), events=["reservation_created"])
    room = pool.take()
    lags = []
    for i in range(8):
        start = shift(utc_at(26, 8), minutes=30 * i)
        t0 = time.time()
        res = booked(res_url, alice, room["id"], start, shift(start, minutes=30))
        wait_until(lambda res=res: receiver.received(healthy, res["id"]), timeout=10,
                   interval=0.02, what="the healthy receiver's delivery")
        lags.append(receiver.received(healthy, res["id"])[0]["at"] - t0)
        time.sleep(0.3)
    # Eight bookings over ~3 s: the dead receiver was tried, more than once, meanwhile.
    assert len(receiver.received(dead)) >= 2
    # A send holds no transaction (a server's idle_in_transaction_session_timeout cannot cut
    # it): while one hangs, no session of the service sits idle in a transaction.
    stuck = db_query(stack.pg, "reservation_db",
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = 'reservation_db' "
                     "AND state LIKE 'idle in transaction%%' "
                     "AND state_change < now() - interval '0.5 s'")
    assert stuck == [(0,)], stuck
    assert max(lags) < 1.0, lags
    ds = deliveries(res_url, root, dead_hook["id"])
    assert ds and all(d["status"] in ("pending", "failed") for d in ds), ds
    assert any(d["attempts"] >= 1 and d["last_error"] for d in ds), ds


def test_in_order_per_reservation_under_load(res_url, root, alice, pool, hooks, receiver):
    """Quick changes of one reservation, a receiver that fails every fourth POST and answers
    slowly, and a second webhook keeping the other sender busy: each webhook still
    receives the reservation's events in order (the first successful POST of each)."""
    flaky = receiver.path("flaky")
    other = receiver.path("flaky")
    hook = hooks(receiver.url(flaky))
    second = hooks(receiver.url(other))
    room = pool.take()
    start = utc_at(27, 9)
    res = booked(res_url, alice, room["id"], start, shift(start, hours=1))
    for i in range(6):
        r = requests.put(f"{res_url}/reservations/{res['id']}", headers=alice,
                         json={"purpose": f"Change {i}"}, timeout=10)
        assert r.status_code == 200, r.text
    wait_deliveries(res_url, root, hook["id"],
                    lambda ds: len(ds) == 7 and all(d["status"] == "sent" for d in ds),
                    "seven deliveries sent", timeout=20)
    # The second hook's events are queued while its earlier ones are in flight: they follow
    # as soon as each is recorded, not a lease later (docs/architecture.md, delivery queue).
    wait_deliveries(res_url, root, second["id"],
                    lambda ds: len(ds) == 7 and all(d["status"] == "sent" for d in ds),
                    "seven deliveries sent to the second hook", timeout=20)
    for path in (flaky, other):
        seen = []
        for req in receiver.received(path, res["id"]):
            body = json.loads(req["body"])
            ident = body.get("event_id")
            if ident not in [e for e, _ in seen]:
                seen.append((ident, body["reservation"].get("purpose")))
        assert [p for _, p in seen][1:] == [f"Change {i}" for i in range(6)], seen


def test_given_up_after_the_retry_window(res_url, root, alice, pool, hooks, receiver):
    failed_before = metric(res_url, "delivery_failed_total") or 0
    path = receiver.path("fail")
    hook = hooks(receiver.url(path), events=["reservation_created"])
    room = pool.take()
    start = utc_at(24, 9)
    booked(res_url, alice, room["id"], start, shift(start, hours=1))
    [d] = wait_deliveries(res_url, root, hook["id"],
                          lambda ds: ds and ds[0]["status"] == "failed",
                          "given up", timeout=15)
    assert d["attempts"] >= 4
    assert (d["last_status"], d["last_error"]) == (500, "HTTP 500")
    assert d["next_attempt_at"] is None and d["sent_at"] is None
    # The last attempt is at the window's end (3.6 s after queuing), not later.
    got = receiver.received(path)
    assert got[-1]["at"] - got[0]["at"] < 3.6 + 1.0
    assert metric(res_url, "delivery_failed_total") >= failed_before + 1


def test_private_and_link_local_addresses_are_refused(res_url, root, alice, pool, hooks):
    # Loopback (refused unless WEBHOOK_ALLOW_LOOPBACK, which the tests set) and the other
    # classes, through any name, are covered by test_res_webhook_send.c: the check is on the
    # connected address, whatever the URL's host.
    targets = {"https://10.255.255.1/hook": "private",
               "https://169.254.169.254/latest/meta-data": "link-local",
               "https://[64:ff9b::a00:1]/hook": "private",
               "https://192.0.2.1/hook": "reserved"}
    made = {url: hooks(url, events=["reservation_created"])["id"] for url in targets}
    room = pool.take()
    start = utc_at(25, 9)
    booked(res_url, alice, room["id"], start, shift(start, hours=1))
    for url, why in targets.items():
        [d] = wait_deliveries(res_url, root, made[url],
                              lambda ds: ds and ds[0]["status"] == "failed", f"{url} refused")
        assert d["attempts"] == 1, d  # permanent: no retry
        assert d["last_error"].startswith("refused: ") and why in d["last_error"], d


def test_delivery_metrics(res_url):
    text = requests.get(f"{res_url}/metrics", timeout=10).text
    for name, kind in (("delivery_pending", "gauge"),
                       ("delivery_oldest_pending_age_seconds", "gauge"),
                       ("delivery_sent_total", "counter"),
                       ("delivery_failed_total", "counter"),
                       ("delivery_retries_total", "counter")):
        assert f"# TYPE {name} {kind}" in text, name
        assert metric(res_url, name) is not None, name
    assert metric(res_url, "delivery_sent_total") >= 1
    assert metric(res_url, "delivery_retries_total") >= 1
    assert metric(res_url, "delivery_pending") >= 0


# ---- hostile input ----

def test_hostile_webhook_input(res_url, root, hooks):
    # SQL in the URL's query is stored and returned verbatim, never executed.
    url = "https://example.com/hook?q=1'%20OR%201=1;DROP%20TABLE%20webhooks;--"
    hook = hooks(url, events=["reservation_series_cancelled"],
                 secret="'; DROP TABLE webhooks; --")
    r = requests.get(f"{res_url}/webhooks/{hook['id']}", headers=root, timeout=10)
    assert r.json()["url"] == url
    bad = [
        ({"url": "https://example.com/a\r\nX-Injected: 1"}, "url"),
        ({"url": "https://example.com/a b"}, "url"),
        ({"url": "https://exa\u0000mple.com/"}, "url"),
        ({"secret": "sixteen-chars-\u0000-and-more"}, "secret"),
        ({"events": ["reservation_created'; DROP TABLE webhooks; --"]}, "events"),
        ({"events": [["reservation_created"]]}, "events"),
        ({"url": 7}, "url"),
    ]
    for change, field in bad:
        body = {"url": "https://example.com/hook", "events": ["reservation_created"],
                "secret": SECRET, **change}
        r = requests.post(f"{res_url}/webhooks", headers=root, json=body, timeout=10)
        assert_error(r, 422, "validation_failed")
        assert field in r.json()["details"], (change, r.json())
    for path in ("/webhooks/0", "/webhooks/-1", "/webhooks/x/deliveries",
                 "/webhooks/99999999999999999999"):
        assert_error(requests.get(f"{res_url}{path}", headers=root, timeout=10), 404,
                     "not_found")
    r = requests.get(f"{res_url}/webhooks/{hook['id']}/deliveries", headers=root,
                     params={"cursor": "garbage"}, timeout=10)
    assert_error(r, 400, "bad_request")
    assert requests.get(f"{res_url}/webhooks", headers=root, timeout=10).status_code == 200


def test_releases_and_check_ins_are_posted(stack, res_url, room_url, admin_headers, root,
                                           alice, hooks, receiver):
    """Review 15a M4: reservation_released and reservation_checked_in may be subscribed to; a
    release is posted like any event (the releaser of a TEST_CLOCK replica moves time)."""
    path = receiver.path()
    hooks(receiver.url(path), events=["reservation_released", "reservation_checked_in"])
    room = create_room(room_url, admin_headers, policies={
        "check_in_required": True, "check_in_window_minutes": 15, "release_after_minutes": 10})
    wait_known_room(res_url, admin_headers, room["id"], timeout=15)
    wait_until(lambda: res_db_query(stack.pg, "SELECT policies_known FROM rooms WHERE id = %s",
                                    room["id"]) == [(True,)], timeout=30, what="policies copied")
    base = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0) \
        + datetime.timedelta(hours=60)
    first = booked(res_url, alice, room["id"], utc_text(base),
                   utc_text(base + datetime.timedelta(minutes=30)))
    second_at = base + datetime.timedelta(hours=1)
    second = booked(res_url, alice, room["id"], utc_text(second_at),
                    utc_text(second_at + datetime.timedelta(minutes=30)))
    svc = stack.reservation_service(tag="reservation-webhook-release", TEST_CLOCK="true",
                                    RELEASE_INTERVAL_MS="200").start()

    def set_clock(at):
        r = requests.put(f"{svc.url}/internal/test-clock", headers=root, timeout=10,
                         json={"offset_s": int(at.timestamp()) - int(time.time())})
        assert r.status_code == 200, r.text
    try:
        set_clock(base + datetime.timedelta(minutes=10))
        wait_until(lambda: receiver.received(path, first["id"]), timeout=15,
                   what="the release posted")
        [got] = receiver.received(path, first["id"])
        event = json.loads(got["body"])
        assert event["event_type"] == "reservation_released"
        assert event["reservation"]["cancel_reason"] == "no_show"
        set_clock(second_at)
        r = requests.post(f"{svc.url}/reservations/{second['id']}/check-in", headers=alice,
                          timeout=10)
        assert r.status_code == 200, r.text
        wait_until(lambda: receiver.received(path, second["id"]), timeout=15,
                   what="the check-in posted")
        assert json.loads(receiver.received(path, second["id"])[0]["body"])["event_type"] == \
            "reservation_checked_in"
    finally:
        set_clock(datetime.datetime.now(datetime.UTC))
        svc.stop()
