"""The bounded database pool and prepared statements (common/src/db.c, docs/architecture.md
#threads-and-connections).

Extra room-service instances with a small DB_POOL_SIZE:
- "busy" (2 connections, DB_POOL_WAIT_MS 300) while a test transaction holds an exclusive lock
  on rooms: two requests hold the pool's connections, waiting for the lock; the others find no
  connection within 300 ms and get 503 `unavailable` with Retry-After, counted in /metrics;
- "proxied" (3 connections) behind a recording proxy (pgproxy.py), so that its database
  sessions can be told apart from every other process's and its protocol messages read: under
  64 concurrent clients it never has more backends than the pool plus its dedicated sessions
  (outbox publisher, sweeper); each statement is parsed once per connection under its
  "s<16 hex>" name and afterwards only bound by name; after its backends are terminated
  requests still succeed and the statements are prepared again on the new connections.
"""
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from harness import assert_error, create_room, db_query, wait_until
from pgproxy import PgProxy

# A Parse message: 'P', length, statement name (NUL-terminated), query text.
PARSE = re.compile(rb"P[\x00-\xff]{4}(s[0-9a-f]{16})\x00")
# A Bind message: 'B', length, portal "" and statement name.
BIND = re.compile(rb"B[\x00-\xff]{4}\x00(s[0-9a-f]{16})\x00")


class RecordingProxy(PgProxy):
    """PgProxy that keeps every byte the service sends, per connection."""

    def __init__(self, upstream_port):
        super().__init__(upstream_port)
        self.streams = {}  # id of the proxied connection -> bytearray

    def record(self, conn, data):
        with self.lock:
            self.streams.setdefault(id(conn), bytearray()).extend(data)

    def mark(self):
        """Where each stream ends now, for sent_since()."""
        with self.lock:
            return {k: len(v) for k, v in self.streams.items()}

    def sent_since(self, mark):
        """What each connection sent since mark, as a list of bytes."""
        with self.lock:
            return [bytes(v[mark.get(k, 0):]) for k, v in self.streams.items()]

    def parsed(self, mark):
        return [n for chunk in self.sent_since(mark) for n in PARSE.findall(chunk)]

    def bound(self, mark):
        return [n for chunk in self.sent_since(mark) for n in BIND.findall(chunk)]

    def upstream_ports(self):
        """Local ports of the proxy's connections to PostgreSQL (pg_stat_activity.client_port)."""
        ports = set()
        with self.lock:
            socks = list(self.sockets)
        for s in socks:
            try:
                if s.getpeername()[1] == self.upstream[1]:
                    ports.add(s.getsockname()[1])
            except OSError:
                pass
        return ports


def assert_parsed_once(proxy, mark):
    """No connection parsed one statement name twice since mark."""
    for chunk in proxy.sent_since(mark):
        names = PARSE.findall(chunk)
        assert len(names) == len(set(names)), names


def metric(svc, name):
    text = requests.get(f"{svc.url}/metrics", timeout=10).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def backends(pg, proxy):
    """The proxied service's PostgreSQL backends right now: (pid, application_name) pairs."""
    ports = list(proxy.upstream_ports())
    if not ports:
        return []
    return db_query(pg, "room_db", "SELECT pid, application_name FROM pg_stat_activity "
                    "WHERE client_port = ANY(%s)", ports)


@pytest.fixture(scope="module")
def busy_room(stack):
    # Room reads must reach the database here: without the room cache (and its listener).
    svc = stack.room_service(tag="room-pool-busy", DB_POOL_SIZE="2", DB_POOL_WAIT_MS="300",
                             NUM_THREADS="32", ROOM_CACHE_MAX_ENTRIES="0",
                             ROOM_CONSUMER_GROUP=f"room-pool-{uuid.uuid4().hex[:8]}")
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def proxy(stack):
    p = RecordingProxy(stack.pg.port).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def proxied_room(stack, proxy):
    svc = stack.room_service(tag="room-pool-proxied", DB_POOL_SIZE="3",
                             DB_POOL_WAIT_MS="5000", NUM_THREADS="80", ROOM_CACHE_MAX_ENTRIES="0",
                             DATABASE_URL=proxy.dsn(stack.pg.url, "room_db"),
                             ROOM_CONSUMER_GROUP=f"room-pool-{uuid.uuid4().hex[:8]}")
    svc.start()
    yield svc
    svc.stop()


def test_requests_beyond_the_pool_get_503_busy_with_retry_after(
        stack, busy_room, admin_headers):
    room = create_room(busy_room.url, admin_headers)
    url = f"{busy_room.url}/rooms/{room['id']}"
    assert requests.get(url, headers=admin_headers, timeout=10).status_code == 200
    lock = psycopg2.connect(stack.pg.dsn("room_db"))

    def one(_):
        return requests.get(url, headers=dict(admin_headers, Connection="close"), timeout=30)
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(one, i) for i in range(12)]
            time.sleep(1.0)  # two hold the connections, waiting for the lock
            in_use = metric(busy_room, "db_pool_in_use")
            # A saturated pool is not a database that is down: readiness stays up.
            ready = requests.get(f"{busy_room.url}/ready", timeout=10)
            time.sleep(1.0)  # the 10 that found no connection have had their 503 by now
            lock.rollback()
            replies = [f.result() for f in futures]
    finally:
        lock.close()
    assert in_use == 2, in_use
    assert ready.status_code == 200, ready.text
    statuses = sorted(r.status_code for r in replies)
    assert statuses.count(200) == 2 and statuses.count(503) == 10, statuses
    for r in replies:
        if r.status_code == 503:
            assert_error(r, 503, "unavailable", mentions="busy")
            assert r.headers.get("Retry-After") == "1", r.headers
    assert metric(busy_room, "db_pool_timeouts_total") >= 10
    assert metric(busy_room, "db_pool_size") == 2
    assert metric(busy_room, "db_pool_wait_seconds_count") >= 12
    # Afterwards the pool serves as before.
    assert requests.get(url, headers=admin_headers, timeout=10).status_code == 200


def test_64_clients_never_open_more_backends_than_the_pool(
        stack, proxy, proxied_room, admin_headers):
    rooms = [create_room(proxied_room.url, admin_headers)["id"] for _ in range(4)]
    stop = threading.Event()
    samples = []

    def sample():
        while not stop.is_set():
            samples.append(len(backends(stack.pg, proxy)))
            time.sleep(0.05)

    def client(i):
        done, bad = 0, []
        with requests.Session() as s:
            t_end = time.monotonic() + 4.0
            while time.monotonic() < t_end:
                path = f"/rooms/{rooms[i % 4]}" if i % 2 else "/rooms?limit=5"
                r = s.get(proxied_room.url + path, headers=admin_headers, timeout=30)
                done += 1
                if r.status_code != 200:
                    bad.append((r.status_code, r.text[:200]))
        return done, bad
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(client, range(64)))
    finally:
        stop.set()
        sampler.join()
    assert all(done > 0 for done, _ in results), [d for d, _ in results]
    assert not [b for _, bad in results for b in bad], results
    # The pool (3) plus the dedicated sessions: outbox publisher and sweeper.
    assert samples and max(samples) <= 3 + 2, samples
    assert max(samples) >= 3, samples  # the pool did open its connections: the count is real
    assert metric(proxied_room, "db_pool_size") == 3


def test_statements_are_prepared_once_per_connection(stack, proxy, proxied_room, admin_headers):
    room = create_room(proxied_room.url, admin_headers)
    before = proxy.mark()
    for _ in range(20):
        r = requests.get(f"{proxied_room.url}/rooms/{room['id']}", headers=admin_headers,
                         timeout=10)
        assert r.status_code == 200, r.text
    binds = proxy.bound(before)
    assert len(binds) >= 20, binds
    # The statement the 20 reads ran most: bound by name each time, parsed at most once per
    # pooled connection (and not at all when the connections knew it already).
    name = max(set(binds), key=binds.count)
    assert binds.count(name) >= 20
    assert proxy.parsed(before).count(name) <= 3
    assert_parsed_once(proxy, before)
    assert "prepared statement" not in proxied_room.log_text()


def test_room_sessions_plan_every_execution_for_its_values(proxy, proxied_room, admin_headers):
    """room-service's sessions run with plan_cache_mode=force_custom_plan: a room list
    statement, prepared once, is never switched to a generic plan that reads the trigram
    indexes for a common q or folds every row in order for a rare one (main.c)."""
    requests.get(f"{proxied_room.url}/rooms", params={"q": "x"}, headers=admin_headers,
                 timeout=10).raise_for_status()
    # Each recorded stream starts with the startup message: key NUL value NUL pairs.
    options = [m.group(1) for chunk in proxy.sent_since({})
               for m in [re.search(rb"\x00options\x00([^\x00]*)\x00", chunk[:512])] if m]
    # Every session but the migrations' (their own statement_timeout, no list statements).
    sessions = [v for v in options if b"statement_timeout=10000" in v]
    assert sessions, options
    for value in sessions:
        assert b"-c plan_cache_mode=force_custom_plan" in value, value


def test_terminated_backends_are_replaced_and_statements_prepared_again(
        stack, proxy, proxied_room, admin_headers):
    room = create_room(proxied_room.url, admin_headers)
    url = f"{proxied_room.url}/rooms/{room['id']}"

    def burst(n):
        def one(_):
            return requests.get(url, headers=dict(admin_headers, Connection="close"),
                                timeout=30).status_code
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(one, range(n)))
    assert set(burst(8)) == {200}
    pids = [pid for pid, _ in backends(stack.pg, proxy)]
    assert pids
    before = proxy.mark()
    db_query(stack.pg, "room_db", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE pid = ANY(%s)", pids)
    statuses = burst(8) + burst(8)
    created = create_room(proxied_room.url, admin_headers)  # a write on a fresh connection
    assert created["id"]
    # Reads on a broken connection are retried once on a new one: none fails.
    assert statuses.count(200) == len(statuses), statuses
    parsed = proxy.parsed(before)
    assert parsed, "nothing was prepared again on the new connections"
    assert_parsed_once(proxy, before)
    assert not set(p for p, _ in backends(stack.pg, proxy)) & set(pids)
    assert "prepared statement" not in proxied_room.log_text()


def test_a_pool_stuck_on_a_database_that_stopped_answering_is_not_ready(stack, admin_headers):
    """A busy pool reads as up only while the database answered a pooled statement within
    DB_PING_BUSY_FRESH_MS (10 s): its one slot stuck on a database that stopped answering (a
    paused host) turns /ready 503 after that, and 200 again once the database answers."""
    frozen = PgProxy(stack.pg.port).start()
    svc = stack.room_service(tag="room-pool-frozen", DB_POOL_SIZE="1", DB_POOL_WAIT_MS="300",
                             ROOM_CACHE_MAX_ENTRIES="0",
                             DATABASE_URL=frozen.dsn(stack.pg.url, "room_db"),
                             ROOM_CONSUMER_GROUP=f"room-pool-{uuid.uuid4().hex[:8]}")
    svc.start()
    try:
        room = create_room(svc.url, admin_headers)
        url = f"{svc.url}/rooms/{room['id']}"
        assert requests.get(url, headers=admin_headers, timeout=10).status_code == 200
        frozen.freeze()
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            stuck = pool.submit(requests.get, url, headers=admin_headers, timeout=90)
            time.sleep(1.0)  # the read holds the only slot, waiting for an answer
            early = requests.get(f"{svc.url}/ready", timeout=10)
            wait_until(lambda: requests.get(f"{svc.url}/ready", timeout=10).status_code == 503,
                       timeout=20, interval=0.5, what="/ready 503 with the database frozen")
            down_after = time.monotonic() - t0
            frozen.thaw()
            assert stuck.result().status_code == 200
        wait_until(lambda: requests.get(f"{svc.url}/ready", timeout=10).status_code == 200,
                   timeout=10, interval=0.2, what="/ready 200 once the database answers")
    finally:
        frozen.thaw()
        svc.stop()
        frozen.stop()
    # Saturated but recently answering: still ready; down only once the window has passed.
    assert early.status_code == 200, early.text
    assert down_after >= 8.0, down_after
