#!/usr/bin/env python3
"""make bench: load tests of the suite on loopback, with their ceilings measured in the same run.

Starts the whole stack with the integration harness (tests/integration/harness.py: PostgreSQL with
pg_stat_statements, Kafka, the OIDC provider, the three services from BIN_DIR with their default
settings, the nginx gateway), seeds it (users, rooms and reservations through SQL in bulk, a sample
of rooms and reservations through the API so that the consumers' copies are consistent), then runs
every scenario with wrk and the bench Lua scripts (bench/lua/), directly and through the gateway,
next to its ceilings: pgbench (-M prepared, best of several client counts) running the cheapest SQL
that answers the same question (bench/sql/min_*.pgbench) and the SQL the endpoint runs
(bench/sql/<scenario>.pgbench), and nginx answering a fixed body of the same size. Also measured:
statements per request (pg_stat_statements), EXPLAIN of the room-list statements, PostgreSQL
backends per service (pg_stat_activity every 0.5 s), starvation (256 keep-alive clients per
service), idle + slowloris connections through the gateway, how long a silent connection stays
open on a service port, peak RSS, and (issue 13) series of 52 weekly occurrences created in one
request against as many single bookings by the same client (series_create). Compares with
bench/baseline.json (the run of an earlier commit: BENCH_BASELINE=<commit> measures it first,
in a temporary git worktree, and rewrites the file).
Writes build/bench/bench-<time>-<scale>.json (and latest-<scale>.json/.txt) and prints a table per
scenario, the scaling table (availability and create at growing reservation counts) and the
targets.

Environment (scripts/bench.sh and mk/bench.mk set them):
  BENCH_SCALE        full (1,000 rooms, 1,000,000 reservations, 10,000 users; stages 10k/100k/1M)
                     or smoke (20 rooms, 2,000 reservations, 50 users) [full]
  BENCH_SECONDS      seconds per wrk run [10; make bench: 5]   BENCH_CONNECTIONS  wrk clients [64]
  BENCH_CEILING_SECONDS  seconds per pgbench run of the client-count sweeps [BENCH_SECONDS / 2, up]
  BENCH_WRK_THREADS  wrk -t and pgbench -j [2]
  BENCH_SERVICE_THREADS  NUM_THREADS for the services [empty: the service default]
  BENCH_BASELINE     a commit: measure it first and write bench/baseline.json [empty: use the file]
  BENCH_OUT          report directory [build/bench]
  BENCH_CHECK=1      fail unless every part ran, without unexpected errors (make bench-smoke)
  BENCH_KEEP=1       keep the work directory (logs) under /tmp
  BENCH_ONLY         one part alone after the seed: "utilisation" (issue 15's report),
                     "find_a_room" (issue 12's grid and room search, one at a time) or
                     "replicas" (issue 19: REPLICAS_SCENARIOS directly and through the gateway,
                     no ceilings; reports latest-<scale>-replicas<N>.*) [empty: all]
  BENCH_REPLICAS     N replicas of each service (1-9; make bench REPLICAS=N), the gateway over
                     all of them.  A scenario's direct figure is then the sum over the replicas
                     (one wrk per replica, the connections split, all at once; p50 the mean
                     weighted by requests, p99 the worst replica's), also given per replica;
                     the rest of the bench talks to the first replica as with one [1]
  BIN_DIR            the binaries [build/bin]
Every run is bounded by BENCH_SECONDS; nothing leaves loopback.
"""
import contextlib
import datetime
import functools
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psycopg2
import psycopg2.extras
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import clients  # noqa: E402  (bench/clients.py)
import harness  # noqa: E402

BENCH = os.path.join(ROOT, "bench")
LUA = os.path.join(BENCH, "lua")
SQL = os.path.join(BENCH, "sql")
PGBIN = "/usr/lib/postgresql/15/bin"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SCALES = {
    "full": dict(rooms=1000, reservations=1_000_000, users=10_000,
                 stages=[10_000, 100_000, 1_000_000], api_rooms=20, api_reservations=20),
    "smoke": dict(rooms=20, reservations=2_000, users=50, stages=[200, 1_000, 2_000],
                  api_rooms=5, api_reservations=5),
}

# Scenario name → what it is, the service that answers it, its Lua script, its pgbench template
# of the endpoint's own SQL and of the cheapest SQL answering the same question, and database
# (None: no SQL ceiling), and the statuses that are not errors.
SCENARIOS = {
    "room_list": dict(title="GET /rooms?min_capacity&equipment&active&limit=20 (filtered list)",
                      service="room", lua="room_list.lua", pgbench="room_list.pgbench",
                      minimal="min_room_list.pgbench", db="room_db"),
    "room_get": dict(title="GET /rooms/{id}", service="room", lua="room_get.lua",
                     pgbench="room_get.pgbench", minimal="min_room_get.pgbench", db="room_db"),
    "availability": dict(title="GET /availability?room_id&date (one room, one day)",
                         service="reservation", lua="availability.lua",
                         pgbench="availability.pgbench", minimal="min_availability.pgbench",
                         db="reservation_db"),
    "user_reservations": dict(title="GET /reservations?limit=20 (an employee's own)",
                              service="reservation", lua="user_reservations.lua",
                              pgbench="user_reservations.pgbench",
                              minimal="min_user_reservations.pgbench", db="reservation_db"),
    "create": dict(title="POST /reservations (distinct 15-minute slots across rooms)",
                   service="reservation", lua="create.lua", pgbench="create.pgbench",
                   minimal="min_create.pgbench", db="reservation_db", ok=(201,)),
    "conflict_storm": dict(title="POST /reservations, every client the same slot",
                           service="reservation", lua="create.lua", pgbench=None, minimal=None,
                           db="reservation_db", ok=(201, 409)),
    # Issue 12's target for the day grid is the latency of one request at a time (p99_single_ms,
    # a run at one connection) rather than p99 at BENCH_CONNECTIONS.
    "grid": dict(title="GET /availability/grid?date&limit=200 (day grid, 200 rooms)",
                 service="reservation", lua="grid.lua", pgbench="grid.pgbench",
                 minimal="min_grid.pgbench", db="reservation_db", p99_single_ms=30.0),
    # Issue 12: its own targets (SEARCH_TARGETS), not issue 18's comparison with minimal SQL.
    "room_search": dict(title="GET /availability/rooms?start&end&capacity&equipment&limit=20 "
                              "(find a room, one hour)",
                        service="reservation", lua="room_search.lua",
                        pgbench="room_search.pgbench", minimal="min_room_search.pgbench",
                        db="reservation_db", issue=12),
    # Issue 14: the calendar feeds, "< 50 ms on a 1 M-reservation database" as the p99 of one
    # request at a time (p99_single_ms). A room's feed holds its ~540 reservations of the window
    # (-30/+365 days, of the seeded two years); an employee's ~55 (feed tokens seeded by SQL).
    "feed_room": dict(title="GET /calendars/rooms/{id}.ics (a room's busy times, -30/+365 days)",
                      service="reservation", lua="feed_room.lua", pgbench=None, minimal=None,
                      db="reservation_db", p99_single_ms=50.0, issue=14),
    "feed_me": dict(title="GET /calendars/me.ics?token= (an employee's own feed)",
                    service="reservation", lua="feed_me.lua", pgbench=None, minimal=None,
                    db="reservation_db", p99_single_ms=50.0, issue=14),
}
# The feed token seeded for user u (bench/lua/feed_me.lua writes the same): 43 digits, which
# the service takes as base64url characters.
FEED_TOKEN_SQL = "lpad(u::text, 43, '0')"
# seed_users.sql's address of the k-th seeded user (k from 0); seed_reservations.sql names
# organizers and attendees by it, bench/lua/create.lua the attendees it invites.
SEED_EMAIL = "user{:05d}@example.com"


def feed_token(uid):
    return f"{uid:043d}"

EQUIPMENT_FILTER = "projector"
DATES = 60          # availability: days of the seeded two years that the requests pick from
SLOTS_PER_DAY = 32  # create: 15-minute slots from 00:00 to 08:00 UTC (the seeded grid is empty)
SERVICES = ("user-service", "room-service", "reservation-service")
DB_OF = {"user-service": "user_db", "room-service": "room_db",
         "reservation-service": "reservation_db"}
# Database sessions a service holds outside its pool (issue 18): the outbox publisher and the
# sweeper in every service, the room cache's LISTEN session in room-service; in reservation-service
# the no-show releaser (issue 15) and its sender threads (issue 14; docs/operations.md, database
# connections), one session each: WEBHOOK_SENDERS and, with SMTP_URL set, MAIL_SENDERS. Their
# numbers are read from the service's log ("<kind> deliveries: N sender(s)", sender_sessions()).
DEDICATED_SESSIONS = {"user-service": 2, "room-service": 3, "reservation-service": 3}
BASELINE_FILE = os.path.join(BENCH, "baseline.json")
SWEEP_CLIENTS = {"full": [1, 2, 4, 8, 16, 32], "smoke": [4]}
# BENCH_ONLY=replicas (issue 19): the scenarios that show what replicas buy, in ~5 minutes at
# full scale (the seed included): two reads per service kind, and bookings.
REPLICAS_SCENARIOS = ("room_get", "availability", "user_reservations", "create")
MAX_REPLICAS = 9

# Issue 18's targets: req/s at BENCH_CONNECTIONS direct ≥ factor × the baseline commit's.
BASELINE_FACTORS = {"room_get": 3.0, "availability": 2.5, "user_reservations": 3.0,
                    "room_list": 5.0, "create": 2.0}
TARGETS = dict(vs_minimal_sql=0.7, gateway_vs_direct=0.85, p99_read_ms=25.0,
               p99_create_ms=50.0, rss_mb=50.0, availability_flat=0.8, attack_delay_ms=50.0,
               silent_close_s=10.0)
# Issue 13: a series of 52 weekly occurrences (a year of a weekly meeting) created in one POST,
# against single bookings sent by the same client at the same concurrency. Each request gets a
# lane of its own: an active room, a 15-minute slot of 19:00-23:00 UTC and a first day 1..7
# after today (the seeded grid is 08:00-18:00 UTC, the create scenarios book 00:00-08:00 UTC; a
# DST change moves a Berlin or New York series by an hour, still within 18:00-24:00). 52 weeks
# end within the services' default BOOKING_HORIZON_DAYS (365) only from a first day within a
# week. Targets: p99 at the highest client count, and p50 of a series / (52 x p50 of a single),
# both chosen from measurements (bench/README.md).
SERIES = dict(rule="FREQ=WEEKLY;COUNT=52", occurrences=52, clients=(1, 4),
              requests={"full": 200, "smoke": 20}, first_hour=19, quarters=16, first_days=7,
              p99_ms=150.0, vs_singles=0.25)
# Issue 12's targets of the room search: p99 of one request at a time (an idle service) and
# req/s at BENCH_CONNECTIONS as a share of pgbench running the same SQL at as many clients.
SEARCH_TARGETS = dict(idle_p99_ms=20.0, vs_same_sql=0.5, idle_requests=300)
# Issue 14's invitations: POST /reservations inviting `attendees` employees (each booking queues
# attendees + 1 messages: the organizer's too), at BENCH_CONNECTIONS for BENCH_SECONDS, first
# with mail off, then with reservation-service restarted with SMTP_URL (Mailpit, started by the
# bench) and the default MAIL_SENDERS; then the wait until the senders have sent every message
# (at most drain_s seconds).  What mail costs a booking, and how fast invitations leave.
INVITATIONS = dict(attendees=3, drain_s={"full": 300, "smoke": 60})
# Issue 15's utilisation report: GET /reports/utilisation over `days` local days of every room,
# each grouping, one request at a time (`requests` of each, each on another window of the seeded
# past), "< 500 ms over 1 M reservations" as the p99 of all of them.  For the measurement every
# other active room gets opening hours in reservation-service's copy (OPENING_HOURS: the
# schedules the report intersects; without any it would measure only the 24-hour case), put back
# afterwards (the other scenarios book at night).
UTILISATION = dict(days=30, requests={"full": 20, "smoke": 3}, p99_ms=500.0,
                   group_by=("room", "building", "hour_of_week"))
OPENING_HOURS = {"opening_hours": dict({d: [["08:00", "12:00"], ["13:00", "18:00"]]
                                        for d in ("mon", "tue", "wed", "thu", "fri")},
                                       sat=[], sun=[])}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


# ---- processes: CPU and memory ----

def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in seconds, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK,
            (int(fields[13]) + int(fields[14])) / CLK_TCK)


def children_of(ppid):
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] == ppid:
                kids.append(int(name))
    return kids


def tree_cpu(pid):
    """CPU seconds of pid, its reaped children and its live children (PostgreSQL backends, nginx
    workers): differences of two readings are the CPU the tree used in between."""
    st = proc_stat(pid)
    if not st:
        return 0.0
    total = st[1] + st[2]
    for kid in children_of(pid):
        k = proc_stat(kid)
        if k:
            total += k[1]
    return total


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "Threads"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def pidfile(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, int(math.ceil(p / 100.0 * len(sorted_values))) - 1))
    return sorted_values[i]


# ---- pgbench templates (bench/sql/*.pgbench) ----

def hide_colons(sql):
    """pgbench (-M prepared) takes every :name as a variable, also inside string literals
    ('HH24:MI:SS'): write such literals as E'…\\x3a…', the same constant without a colon."""
    out, i = [], 0
    while i < len(sql):
        c = sql[i]
        if c != "'":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while True:
            k = sql.index("'", j)
            if k + 1 < len(sql) and sql[k + 1] == "'":
                j = k + 2
                continue
            break
        lit = sql[i + 1:k]
        if ":" in lit:
            out.append("E'" + lit.replace("\\", "\\\\").replace(":", "\\x3a") + "'")
        else:
            out.append(sql[i:k + 1])
        i = k + 1
    return "".join(out)


def render_pgbench(name, subst):
    """Returns (pgbench script text, [statements exactly as the service sends them])."""
    lines = open(os.path.join(SQL, name)).read().splitlines()
    script, canon, cur = [], [], None

    def flush():
        if cur is None:
            return
        canon.append(cur["sql"])

        def bind(m):
            if m.group(1) not in cur["bind"]:
                raise ValueError(f"{name}: no BIND for ${m.group(1)}")
            return cur["bind"][m.group(1)]
        text = re.sub(r"\$(\d+)", bind, hide_colons(cur["sql"]))
        if cur["gset"]:
            script.append(f"SELECT * FROM ({text}) AS q({', '.join(cur['gset'])}) \\gset")
        else:
            script.append(text + ";")

    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("SQL "):
            flush()
            cur = {"sql": line[4:], "bind": {}, "gset": None}
        elif line.startswith("BIND "):
            for tok in line[5:].split():
                k, _, v = tok.partition("=")
                cur["bind"][k.lstrip("$")] = v
        elif line.startswith("GSET "):
            cur["gset"] = line[5:].split()
        else:
            flush()
            cur = None
            for k, v in subst.items():
                line = line.replace(k, v)
            script.append(line)
    flush()
    return "\n".join(script) + "\n", canon


# ---- the stack ----

class BenchStack(harness.Stack):
    """The harness stack with the services' default settings (the harness' test settings such as
    NUM_THREADS removed; BENCH_SERVICE_THREADS sets NUM_THREADS), room for the bench's own
    database clients (pgbench) and pg_stat_statements loaded (round trips per request)."""

    def __init__(self, service_threads, max_connections, replicas=1):
        super().__init__()
        self.threads = service_threads
        self.max_connections = max_connections
        self.replicas = replicas
        # Each service's replicas, the first (self.user, self.room, self.reservation) first.
        self.replica_sets = {}

    def start(self):
        self.pg.start()
        self.psql("postgres", f"ALTER SYSTEM SET max_connections = {self.max_connections}")
        self.psql("postgres", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        self.pg.stop()
        self.pg.start()
        # pg_stat_statements.track is "top" by default: statements the clients sent.
        self.psql("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.oidc.start()
        self.kafka.start()
        self.user = self.user_service()
        self.room = self.room_service()
        self.reservation = self.reservation_service()
        for svc in (self.user, self.room, self.reservation):
            svc.env.pop("NUM_THREADS", None)
            if self.threads:
                svc.env["NUM_THREADS"] = str(self.threads)
            svc.start()
        # The gateway with its defaults too: the harness keeps one idle upstream connection per
        # worker and group for the tests' small thread counts, which made nearly every proxied
        # request open a new connection to the service (half the gateway's req/s for a room).
        self.gateway.env.pop("GATEWAY_UPSTREAM_KEEPALIVE", None)
        if self.replicas > 1:
            # Replicas 2..N with the first one's settings (logs <name>-<k>.log) and a gateway
            # over all of them (with the settings above), which becomes the stack's gateway.
            group = harness.Replicas(self, self.replicas).start()
            self.gateway = group.gateway
            self.replica_sets = {name: group.of(name) for name in SERVICES}
        else:
            self.gateway.start(self.user.port, self.room.port, self.reservation.port)
        return self

    def by_name(self, name):
        return {"user-service": self.user, "room-service": self.room,
                "reservation-service": self.reservation}[name]

    def psql(self, db, sql):
        """One statement as the PostgreSQL superuser (over the cluster's Unix socket)."""
        out = subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/psql", "-X", "-q",
                              "-v", "ON_ERROR_STOP=1", "-h", self.pg.dir, "-p", str(self.pg.port),
                              "-d", db, "-At", "-c", sql], capture_output=True,
                             text=True, timeout=600)
        if out.returncode:
            raise RuntimeError(f"psql {db}: {sql}: {out.stderr}")
        return out.stdout.strip()


class BackendSampler:
    """PostgreSQL backends per application_name (each service sets its name), from
    pg_stat_activity every interval seconds in a thread: the maximum over the whole run and per
    phase (the run going on: set .phase)."""

    def __init__(self, dsn, interval=0.5):
        self.dsn, self.interval = dsn, interval
        self.phase = "start"
        self.max = {}
        self.by_phase = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        conn = psycopg2.connect(self.dsn, application_name="bench-sampler")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    cur.execute("SELECT application_name, count(*) FROM pg_stat_activity "
                                "WHERE backend_type = 'client backend' AND pid <> "
                                "pg_backend_pid() GROUP BY 1")
                    phase = self.by_phase.setdefault(self.phase, {})
                    for app, n in cur.fetchall():
                        app = app or "?"
                        self.max[app] = max(self.max.get(app, 0), n)
                        phase[app] = max(phase.get(app, 0), n)
                    self.samples += 1
                    self._stop.wait(self.interval)
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)


class BenchNginx:
    """A second nginx for the bench only: the HTTP ceiling (fixed bodies) and a copy of the
    gateway whose upstream connections are kept alive (to measure what that would change)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "bench-nginx")
        self.ceiling_port = harness.free_port()
        self.keepalive_port = harness.free_port()
        self.keepalive_ok = False

    def start(self, gateway_conf, bodies):
        os.makedirs(self.dir, exist_ok=True)
        text = open(gateway_conf).read()
        ports = sorted(set(re.findall(r"server 127\.0\.0\.1:(\d+)", text)))
        ka, n1 = re.subn(r"proxy_set_header Connection close;", 'proxy_set_header Connection "";',
                         text)
        # Every upstream group of the gateway (one per service and retry policy) keeps its
        # connections alive.
        ka, n2 = re.subn(r"(upstream \w+ \{\n)",
                         r"\1    keepalive 64; keepalive_timeout 4s; keepalive_requests 1000000;\n",
                         ka)
        ka, n3 = re.subn(r"listen 127\.0\.0\.1:\d+;",
                         f"listen 127.0.0.1:{self.keepalive_port};", ka)
        self.keepalive_ok = bool(n1 == 1 and n2 >= 3 and n3 == 1 and ports)
        with open(os.path.join(self.dir, "gateway-keepalive.conf"), "w") as f:
            f.write(ka if self.keepalive_ok else "")
        # Bodies as files (nginx limits a quoted string to 4 KB), kept open by open_file_cache.
        fixed = os.path.join(self.dir, "fixed")
        os.makedirs(fixed, exist_ok=True)
        for name, body in bodies.items():
            with open(os.path.join(fixed, name), "w") as f:
                f.write(body)
        d = self.dir
        conf = f"""user nobody nogroup;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  client_body_temp_path {d}/client_body_temp;
  proxy_temp_path {d}/proxy_temp;
  fastcgi_temp_path {d}/fastcgi_temp;
  uwsgi_temp_path {d}/uwsgi_temp;
  scgi_temp_path {d}/scgi_temp;
  include {d}/gateway-keepalive.conf;
  access_log {d}/access.log {'gateway' if self.keepalive_ok else 'combined'};
  server {{
    listen 127.0.0.1:{self.ceiling_port};
    access_log off;
    default_type application/json;
    etag off;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
    location /fixed/ {{
      alias {d}/fixed/;
      add_header X-Request-ID $request_id;
      add_header Cache-Control no-store;
    }}
  }}
}}
"""
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        cmd = ["nginx", "-p", d + "/", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"]
        subprocess.run(cmd + ["-t", "-q"], check=True, timeout=30)
        subprocess.run(cmd, check=True, timeout=30)
        harness.wait_until(lambda: requests.get(self.url("ceiling") + "/fixed/room_get",
                                                timeout=2).status_code == 200,
                           what="bench nginx")

    def url(self, which):
        port = self.ceiling_port if which == "ceiling" else self.keepalive_port
        return f"http://127.0.0.1:{port}"

    def pids(self):
        master = pidfile(os.path.join(self.dir, "nginx.pid"))
        return [master] if master else []

    def stop(self):
        master = pidfile(os.path.join(self.dir, "nginx.pid"))
        if not master:
            return
        try:
            os.kill(master, signal.SIGQUIT)
        except ProcessLookupError:
            return
        for _ in range(100):
            if not proc_stat(master):
                return
            time.sleep(0.1)
        try:
            os.kill(master, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- the bench ----

class Bench:
    def __init__(self):
        self.scale = os.environ.get("BENCH_SCALE", "full") or "full"
        if self.scale not in SCALES:
            raise SystemExit(f"bench: BENCH_SCALE must be one of {', '.join(SCALES)}")
        self.size = dict(SCALES[self.scale])
        self.seconds = env_int("BENCH_SECONDS", 10)
        self.connections = env_int("BENCH_CONNECTIONS", 64)
        self.wrk_threads = min(env_int("BENCH_WRK_THREADS", 2), self.connections)
        self.service_threads = env_int("BENCH_SERVICE_THREADS", 0) or None
        self.replicas = env_int("BENCH_REPLICAS", 1)
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise SystemExit(f"bench: BENCH_REPLICAS must be 1 to {MAX_REPLICAS}")
        self.ceiling_seconds = env_int("BENCH_CEILING_SECONDS", max(1, (self.seconds + 1) // 2))
        self.sweep_clients = SWEEP_CLIENTS["smoke" if self.scale == "smoke" else "full"]
        self.out_dir = os.path.abspath(os.environ.get("BENCH_OUT") or os.path.join(ROOT, "build",
                                                                                   "bench"))
        self.check = os.environ.get("BENCH_CHECK") == "1"
        self.keep = os.environ.get("BENCH_KEEP") == "1"
        # The services' pools (or, before issue 18, one connection per worker thread) and the
        # bench's pgbench clients.
        # (Each replica: its pool and dedicated sessions, about 10 per service.)
        self.stack = BenchStack(self.service_threads,
                                max(400, 3 * (self.service_threads or 0) + 2 * self.connections
                                    + 50 + 30 * self.replicas), self.replicas)
        self.sampler = None
        self.baseline = None
        self.nginx = None
        self.mailpit = None
        self.day0 = int(datetime.datetime.now(datetime.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0).timestamp())
        self.next_day = 1
        self.report = {"meta": {}, "seed": {}, "sql_check": {}, "scenarios": {},
                       "scaling": {"availability": [], "create": []}, "rss": {}, "targets": [],
                       "round_trips": {}, "explain_room_list": [], "explain_feeds": {},
                       "backends": {},
                       "starvation": {}, "attack": {}, "silent_connection": {},
                       "series_create": {}, "invitations": {}}
        self.seeded = 0
        self.series_lane = 0
        self.only = os.environ.get("BENCH_ONLY", "").strip()
        if self.only not in ("", "utilisation", "find_a_room", "replicas"):
            raise SystemExit("bench: BENCH_ONLY must be empty, utilisation, find_a_room or "
                             "replicas")
        self.report["utilisation"] = {}

    # -- database helpers --

    def db(self, name):
        conn = psycopg2.connect(self.stack.pg.dsn(name), application_name="bench")
        conn.autocommit = True
        return conn

    @contextlib.contextmanager
    def cursor(self, name):
        """An autocommit cursor (not `with conn`: psycopg2 2.9 opens a transaction there, and
        VACUUM cannot run in one)."""
        conn = self.db(name)
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def query(self, dbname, sql, params=None):
        with self.cursor(dbname) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    # -- seeding --

    def seed_base(self):
        t0 = time.monotonic()
        s = self.size
        token, admin_id = harness.operator_token(self.stack.user, "bench-admin@example.com",
                                                 role="admin", name="Bench Admin")
        self.admin = harness.bearer(token)
        sql = open(os.path.join(SQL, "seed_users.sql")).read()
        with self.cursor("user_db") as cur:
            cur.execute(sql, {"users": s["users"]})
            cur.execute("ANALYZE users")
            cur.execute("SELECT id, email, name FROM users WHERE google_sub LIKE 'bench-sub-%%' "
                        "ORDER BY id")
            users = cur.fetchall()
        assert len(users) == s["users"], len(users)
        assert users[-1][0] - users[0][0] + 1 == len(users), "user ids are not contiguous"
        assert all(u[1] == SEED_EMAIL.format(k + 1) for k, u in enumerate(users)), \
            "seeded addresses are not in id order"
        self.uid_lo, self.uid_hi = users[0][0], users[-1][0]
        # Tokens for (up to) 2,000 of them: the wrk scripts pick one per request; pgbench picks
        # user ids from the same range.
        self.token_users = users[:2000]
        self.uid_hi_tokens = self.token_users[-1][0]
        self.tokens = [harness.forge_token(uid, email=email, name=name, exp_in=6 * 3600)
                       for uid, email, name in self.token_users]
        # Their calendar feed tokens (stored as SHA-256, as POST /calendars/me/token does), with
        # their addresses: a feed lists the invitations to its token's address.
        with self.cursor("reservation_db") as cur:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO feed_tokens (user_id, token_hash, email) "
                     f"SELECT u, encode(sha256(convert_to({FEED_TOKEN_SQL}, 'UTF8')), 'hex'), e "
                     "FROM (VALUES %s) AS v (u, e)",
                [(uid, email) for uid, email, _ in self.token_users], template="(%s::bigint, %s)")

        rooms = self.make_rooms()
        api = rooms[:s["api_rooms"]]
        for room in api:
            body = {k: room[k] for k in ("name", "capacity", "equipment", "building", "floor",
                                         "description", "time_zone", "active")}
            r = requests.post(f"{self.stack.room.url}/rooms", json=body, headers=self.admin,
                              timeout=10)
            assert r.status_code == 201, (r.status_code, r.text)
            assert r.json()["id"] == room["id"], ("room ids must start at 1", r.json())
        bulk = rooms[s["api_rooms"]:]
        with self.cursor("room_db") as cur:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO rooms (id, name, capacity, equipment, building, floor, "
                     "description, time_zone, active) VALUES %s",
                [(r["id"], r["name"], r["capacity"], r["equipment"], r["building"], r["floor"],
                  r["description"], r["time_zone"], r["active"]) for r in bulk])
            cur.execute("SELECT setval('rooms_id_seq', (SELECT max(id) FROM rooms))")
            cur.execute("ANALYZE rooms")
        # reservation-service's copy of the bulk rooms: the very rows of room_db.
        rows = self.query("room_db", "SELECT id, name, capacity, time_zone, active, version, "
                                     "equipment, building, floor, true FROM rooms WHERE id > %s "
                                     "ORDER BY id", (s["api_rooms"],))
        with self.cursor("reservation_db") as cur:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO rooms (id, name, capacity, time_zone, active, version, "
                     "equipment, building, floor, details_known) VALUES %s", rows)
        # The API rooms reach reservation-service through Kafka.
        harness.wait_until(lambda: self.query(
            "reservation_db", "SELECT count(*) FROM rooms WHERE id <= %s",
            (s["api_rooms"],))[0][0] == s["api_rooms"], timeout=60, interval=0.2,
            what="API rooms in reservation_db")
        a = self.query("room_db", "SELECT id, name, capacity, time_zone, active, version, "
                                  "equipment, building, floor FROM rooms ORDER BY id")
        b = self.query("reservation_db", "SELECT id, name, capacity, time_zone, active, version, "
                                         "equipment, building, floor FROM rooms "
                                         "WHERE NOT deleted AND details_known ORDER BY id")
        assert a == b, "room_db.rooms and reservation_db.rooms differ"
        self.query("reservation_db", "ANALYZE rooms")
        self.rooms = len(a)
        self.active = sum(1 for r in a if r[4])
        # The rooms of the invitations' bookings: active, room for the attendees and organizer.
        self.invite_rooms = [r[0] for r in a if r[4] and r[2] > INVITATIONS["attendees"]]
        assert all(r[4] == (r[0] % 20 != 0) for r in a)
        self.report["seed"].update(users=len(users), rooms=self.rooms, active_rooms=self.active,
                                   api_rooms=s["api_rooms"], rooms_consistent=True,
                                   base_seconds=round(time.monotonic() - t0, 1))
        self.write_lua_data()
        log(f"seeded {len(users)} users, {self.rooms} rooms ({s['api_rooms']} through the API, "
            f"copies consistent) in {time.monotonic() - t0:.1f}s")

    def make_rooms(self):
        import random
        rnd = random.Random(42)
        buildings = ["Atlas", "Borealis", "Cedar", "Delta", "Echo", "Fjord", "Granite", "Harbor"]
        peaks = ["Everest", "K2", "Kangchenjunga", "Lhotse", "Makalu", "Cho Oyu", "Denali",
                 "Aconcagua", "Elbrus", "Kilimanjaro", "Vinson", "Fuji", "Olympus", "Etna"]
        equipment = ["projector", "whiteboard", "tv", "video conferencing", "phone", "speakers"]
        zones = ["UTC"] * 8 + ["Europe/Berlin"] * 5 + ["America/New_York"] * 4 + ["Asia/Tokyo"] * 3
        rooms = []
        for i in range(1, self.size["rooms"] + 1):
            b = rnd.choice(buildings)
            floor = rnd.randint(0, 12)
            cap = rnd.choice([2, 4, 4, 6, 6, 8, 8, 10, 12, 16, 20, 30, 50])
            eq = [e for e in equipment if rnd.random() < (0.5 if e == "projector" else 0.3)]
            rooms.append(dict(
                id=i, name=f"{b} {floor}.{i:04d} {rnd.choice(peaks)}", capacity=cap,
                equipment=eq, building=b, floor=floor,
                description=f"{cap}-seat meeting room on floor {floor} of {b}",
                time_zone=rnd.choice(zones), active=i % 20 != 0))
        return rooms

    def write_lua_data(self):
        dates = self.dates()
        path = os.path.join(self.stack.workdir, "bench-data.lua")
        with open(path, "w") as f:
            dates_lua = ", ".join(json.dumps(d) for d in dates)
            uids_lua = ", ".join(str(u[0]) for u in self.token_users)
            tokens_lua = ",\n".join(f'    "{t}"' for t in self.tokens)
            f.write(f"return {{\n  rooms = {self.rooms},\n  active = {self.active},\n"
                    f"  equipment = {json.dumps(EQUIPMENT_FILTER)},\n")
            f.write(f"  uid_lo = {self.uid_lo},\n  users = {self.size['users']},\n")
            f.write(f"  invite_rooms = {{{', '.join(map(str, self.invite_rooms))}}},\n")
            f.write(f"  dates = {{{dates_lua}}},\n")
            f.write(f"  uids = {{{uids_lua}}},\n")
            f.write(f"  tokens = {{\n{tokens_lua}\n  }},\n}}\n")
        self.lua_data = path

    def dates(self):
        """DATES days spread evenly over the seeded two years (a year back, a year ahead)."""
        first = self.day0 - 364 * 86400
        step = (728 * 86400) // (DATES - 1)
        return [time.strftime("%Y-%m-%d", time.gmtime(first + i * step)) for i in range(DATES)]

    def seed_reservations(self, upto):
        if upto <= self.seeded:
            return
        s = self.size
        assert upto // s["rooms"] < 7300, "too many reservations per room for the slot grid"
        t0 = time.monotonic()
        sql = open(os.path.join(SQL, "seed_reservations.sql")).read()
        with self.cursor("reservation_db") as cur:
            cur.execute(sql, {"lo": self.seeded, "hi": upto, "rooms": s["rooms"],
                              "users": s["users"], "uid_lo": self.uid_lo, "day0": self.day0})
        # Vacuumed, analyzed and its pages written out now: otherwise the checkpoint the seed
        # set off spreads its writes (and the kernel's write-back) over the next minutes, into
        # the first scenarios after the 1 M stage and not into the 10 k one
        # (bench/README.md#a-checkpoint-after-each-seed-stage).
        self.quiesce()
        took = time.monotonic() - t0
        log(f"seeded reservations {self.seeded:,} .. {upto:,} in {took:.1f}s")
        self.report["seed"].setdefault("reservation_stages", []).append(
            {"upto": upto, "seconds": round(took, 1)})
        self.seeded = upto

    def api_reservations(self):
        """A sample through the API (and a 201 and a 409 body for the HTTP ceiling)."""
        runday = self.take_day()
        bodies = {}
        n = self.size["api_reservations"]
        for i in range(n):
            token = self.tokens[i % len(self.tokens)]
            room = 1 + i % 19
            start = self.day0 + runday * 86400 + (i // 19) * 900
            body = {"room_id": room, "start_time": iso(start), "end_time": iso(start + 900),
                    "purpose": "seed-api"}
            r = requests.post(f"{self.stack.reservation.url}/reservations", json=body,
                              headers=harness.bearer(token), timeout=10)
            assert r.status_code == 201, (r.status_code, r.text)
            bodies["create"] = r.text
        r = requests.post(f"{self.stack.reservation.url}/reservations", json=body,
                          headers=harness.bearer(self.tokens[0]), timeout=10)
        assert r.status_code == 409, (r.status_code, r.text)
        bodies["conflict_storm"] = r.text
        self.end_day(runday)
        self.report["seed"]["api_reservations"] = n
        return bodies

    # -- slots for the create scenarios --

    def take_day(self):
        day = self.next_day
        if day + 3 > 364:
            raise RuntimeError("the create scenarios ran out of days within the booking horizon")
        return day

    def end_day(self, runday):
        """After a run that booked from runday on: the next run starts on a day after every
        night slot booked so far (requests still in flight when wrk stopped included)."""
        rows = self.query("reservation_db",
                          "SELECT extract(epoch FROM max(start_time))::bigint FROM reservations "
                          "WHERE start_time >= to_timestamp(%s) "
                          "AND extract(hour FROM start_time AT TIME ZONE 'UTC') < 8",
                          (self.day0 + 86400,))
        last = rows[0][0] or self.day0
        self.next_day = max(self.next_day, runday + 1, (last - self.day0) // 86400 + 2)

    # -- runs --

    def cpu_snapshot(self):
        st = self.stack
        # Each service's replicas together (one, unless BENCH_REPLICAS).
        snap = {name: sum(tree_cpu(svc.proc.pid) for svc in
                          st.replica_sets.get(name) or [st.by_name(name)]) for name in SERVICES}
        snap.update({
            "postgres": tree_cpu(pidfile(os.path.join(st.pg.dir, "postmaster.pid")) or 0),
            "gateway": tree_cpu(pidfile(os.path.join(st.gateway.dir, "nginx.pid")) or 0),
            "kafka+oidc": tree_cpu(pidfile(os.path.join(st.kafka.dir, "kafka.pid")) or 0)
            + tree_cpu(pidfile(os.path.join(st.oidc.dir, "oidc.pid")) or 0),
        })
        if self.nginx:
            snap["bench-nginx"] = sum(tree_cpu(p) for p in self.nginx.pids())
        if self.mailpit:
            snap["mailpit"] = tree_cpu(pidfile(os.path.join(self.mailpit.dir, "mailpit.pid"))
                                       or 0)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        snap["client"] = ru.ru_utime + ru.ru_stime
        with open("/proc/stat") as f:
            j = [int(x) for x in f.readline().split()[1:9]]
        snap["machine"] = (sum(j) - j[3] - j[4]) / CLK_TCK
        snap["t"] = time.monotonic()
        return snap

    @staticmethod
    def cpu_delta(a, b):
        """CPU used between two snapshots, in % of one core; "other" is what processes outside
        the bench used (this machine may be shared: it skews every number when large)."""
        wall = b["t"] - a["t"]
        d = {k: round(100.0 * (b[k] - a[k]) / wall, 1) for k in a if k != "t" and k in b}
        ours = sum(v for k, v in d.items() if k != "machine")
        d["other"] = round(max(0.0, d["machine"] - ours), 1)
        return d

    def wrk(self, base_url, lua, ok=None, extra_env=None, connections=None, seconds=None):
        connections = connections or self.connections
        threads = min(self.wrk_threads, connections)  # wrk wants a connection per thread
        seconds = seconds or self.seconds
        cmd, env = self.wrk_command(base_url, lua, threads, connections, seconds, extra_env)
        c0 = self.cpu_snapshot()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
        c1 = self.cpu_snapshot()
        res = self.wrk_result(out.returncode, out.stdout, out.stderr, ok)
        res["cpu_percent"] = self.cpu_delta(c0, c1)
        return res

    def wrk_command(self, base_url, lua, threads, connections, seconds, extra_env=None):
        """wrk's command line and environment for one run of a bench/lua script."""
        env = dict(os.environ, BENCH_DATA=self.lua_data, BENCH_LUA=LUA,
                   BENCH_THREADS=str(threads), BENCH_DAY0=str(self.day0))
        env.update(extra_env or {})
        cmd = ["wrk", f"-t{threads}", f"-c{connections}",
               f"-d{seconds}s", "--timeout", "5s", "-s", os.path.join(LUA, lua), base_url]
        return cmd, env

    def wrk_spread(self, base_urls, lua, ok=None, extra_env=None):
        """One wrk per URL (a service's replicas) at the same time, BENCH_CONNECTIONS split
        between them (and wrk's threads numbered across them, so the create slots stay
        distinct): the sum of their figures, p50 the mean weighted by requests, p99 and max the
        worst run's, with each run under "per_replica"."""
        n = len(base_urls)
        conns = [self.connections // n + (1 if i < self.connections % n else 0)
                 for i in range(n)]
        if min(conns) < 1:
            raise SystemExit(f"bench: BENCH_CONNECTIONS ({self.connections}) must be at least "
                             f"the replicas ({n})")
        threads = [min(self.wrk_threads, c) for c in conns]
        procs = []
        c0 = self.cpu_snapshot()
        for i, url in enumerate(base_urls):
            env = dict(extra_env or {}, BENCH_THREADS=str(sum(threads)),
                       BENCH_TID_BASE=str(sum(threads[:i])))
            cmd, env = self.wrk_command(url, lua, threads[i], conns[i], self.seconds, env)
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=self.seconds + 120) for p in procs]
        c1 = self.cpu_snapshot()
        runs = [dict(self.wrk_result(p.returncode, o, e, ok), connections=c, url=url)
                for p, (o, e), c, url in zip(procs, outs, conns, base_urls, strict=True)]
        total = sum(r["requests"] for r in runs)
        codes = {}
        for r in runs:
            for k, v in r["codes"].items():
                codes[k] = codes.get(k, 0) + v
        detail = {}
        for r in runs:
            for k, v in r["error_detail"].items():
                detail[k] = detail.get(k, 0) + v
        return {
            "tool": "wrk", "replicas": n, "rps": round(sum(r["rps"] for r in runs), 1),
            "requests": total, "seconds": max(r["seconds"] for r in runs),
            "p50_ms": sum(r["p50_ms"] * r["requests"] for r in runs) / max(1, total),
            "p90_ms": max(r["p90_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
            "max_ms": max(r["max_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "error_detail": detail,
            "codes": dict(sorted(codes.items())),
            "bytes_per_response": round(sum(r["bytes_per_response"] * r["requests"]
                                            for r in runs) / max(1, total)),
            "cpu_percent": self.cpu_delta(c0, c1),
            "per_replica": runs,
        }

    @staticmethod
    def wrk_result(returncode, stdout, stderr, ok=None):
        """The figures of a finished wrk run (bench/lua/common.lua's BENCH_JSON line)."""
        line = next((x for x in stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if returncode or not line:
            raise RuntimeError(f"wrk failed ({returncode}): {stdout}\n{stderr}")
        d = json.loads(line[len("BENCH_JSON "):])
        secs = d["duration_us"] / 1e6
        e = d["errors"]
        codes = {int(k): v for k, v in d["codes"].items()}
        socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
        if ok:
            unexpected = sum(v for k, v in codes.items() if k not in ok)
            # responses that reached no status callback (should be none)
            unexpected += max(0, d["requests"] - sum(codes.values()))
        else:
            unexpected = e["status"]
        lat = d["latency_us"]
        return {
            "tool": "wrk", "rps": round(d["requests"] / secs, 1), "requests": d["requests"],
            "seconds": round(secs, 2), "p50_ms": lat["p50"] / 1000.0, "p90_ms": lat["p90"] / 1000.0,
            "p99_ms": lat["p99"] / 1000.0, "max_ms": lat["max"] / 1000.0,
            "errors": unexpected + socket_errors,
            "error_detail": dict(e, non_expected_status=unexpected),
            "codes": {str(k): v for k, v in sorted(codes.items())},
            "bytes_per_response": round(d["bytes"] / max(1, d["requests"])),
        }

    def pgbench(self, template, db, defines, clients=None, seconds=None):
        """One pgbench run (-M prepared) of a bench/sql template at clients clients."""
        subst = {"@DATES@": self.dates_case(), "@DAYSTARTS@": self.daystarts_case()}
        script, _ = render_pgbench(template, subst)
        wd = os.path.join(self.stack.workdir, "pgbench")
        os.makedirs(wd, exist_ok=True)
        path = os.path.join(wd, template.replace(".pgbench", ".sql"))
        with open(path, "w") as f:
            f.write(script)
        for old in os.listdir(wd):
            if old.startswith("log"):
                os.unlink(os.path.join(wd, old))
        clients = clients or self.connections
        seconds = seconds or self.seconds
        cmd = [f"{PGBIN}/pgbench", "-n", "-M", "prepared", "-c", str(clients),
               "-j", str(min(self.wrk_threads, clients)), "-T", str(seconds), "-f", path,
               "-l", "--log-prefix", os.path.join(wd, "log")]
        base = dict(rooms=self.rooms, active=self.active, nclients=clients, cnt=0,
                    uid_lo=self.uid_lo, uid_hi=self.uid_hi_tokens, ndates=DATES)
        base.update(defines)
        for k, v in base.items():
            cmd += ["-D", f"{k}={v}"]
        cmd.append(self.stack.pg.dsn(db))
        c0 = self.cpu_snapshot()
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=seconds + 120, cwd=wd)
        c1 = self.cpu_snapshot()
        text = out.stdout + out.stderr
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
        if out.returncode or not m:
            raise RuntimeError(f"pgbench {template} failed ({out.returncode}):\n{text[-3000:]}")
        processed = int(re.search(r"number of transactions actually processed: (\d+)",
                                  text).group(1))
        failed_m = re.search(r"number of failed transactions: (\d+)", text)
        aborted = len(re.findall(r"client \d+ aborted", text))
        lat = []
        for name in os.listdir(wd):
            if name.startswith("log"):
                with open(os.path.join(wd, name)) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) > 2 and parts[2].isdigit():
                            lat.append(int(parts[2]))
        lat.sort()
        return {
            "tool": "pgbench", "clients": clients, "rps": round(float(m.group(1)), 1),
            "requests": processed,
            "seconds": seconds, "p50_ms": percentile(lat, 50) / 1000.0,
            "p90_ms": percentile(lat, 90) / 1000.0, "p99_ms": percentile(lat, 99) / 1000.0,
            "max_ms": (lat[-1] / 1000.0) if lat else 0.0,
            "errors": (int(failed_m.group(1)) if failed_m else 0) + aborted,
            "error_detail": {"failed": int(failed_m.group(1)) if failed_m else 0,
                             "aborted_clients": aborted},
            "cpu_percent": self.cpu_delta(c0, c1),
        }

    def daystarts_case(self):
        ds = [int(datetime.datetime.strptime(d, "%Y-%m-%d").replace(
            tzinfo=datetime.UTC).timestamp()) for d in self.dates()]
        return "CASE " + " ".join(f"WHEN :di = {i} THEN {d}" for i, d in enumerate(ds)) + \
            f" ELSE {ds[0]} END"

    def dates_case(self):
        ds = [d.replace("-", "") for d in self.dates()]
        return "CASE " + " ".join(f"WHEN :di = {i} THEN {d}" for i, d in enumerate(ds)) + \
            f" ELSE {ds[0]} END"

    def service_url(self, scenario, via):
        svc = SCENARIOS[scenario]["service"]
        if via == "direct":
            return (self.stack.room if svc == "room" else self.stack.reservation).url
        if via == "gateway":
            return self.stack.gateway.url
        return self.nginx.url("keepalive")

    def run_http(self, scenario, via):
        sc = SCENARIOS[scenario]
        env = {}
        if scenario == "create":
            runday = self.take_day()
            env = {"BENCH_RUNDAY": str(runday), "BENCH_PURPOSE": f"bench-{via}"}
        elif scenario == "conflict_storm":
            runday = self.take_day()
            env = {"BENCH_STORM": "1", "BENCH_STORM_ROOM": "1",
                   "BENCH_STORM_START": str(self.day0 + runday * 86400),
                   "BENCH_PURPOSE": f"bench-storm-{via}"}
        self.phase(f"{scenario} {via}")
        replicas = self.stack.replica_sets.get(sc["service"] + "-service", [])
        if via == "direct" and len(replicas) > 1:
            res = self.wrk_spread([svc.url for svc in replicas], sc["lua"], ok=sc.get("ok"),
                                  extra_env=env)
        else:
            spread = via == "gateway" and len(replicas) > 1
            before = [answered(svc) for svc in replicas] if spread else []
            res = self.wrk(self.service_url(scenario, via), sc["lua"], ok=sc.get("ok"),
                           extra_env=env)
            if spread:
                # How the gateway spread the run: the requests each replica answered.
                res["answered_per_replica"] = [answered(svc) - b
                                               for svc, b in zip(replicas, before, strict=True)]
        if scenario in ("create", "conflict_storm"):
            self.end_day(runday)
        if scenario == "conflict_storm":
            created = int(res["codes"].get("201", 0))
            res["created"] = created
            if created != 1:
                res["errors"] += abs(created - 1)
                res["error_detail"]["storm_created"] = created
        return res

    def run_pgbench(self, scenario, template=None, clients=None, seconds=None):
        sc = SCENARIOS[scenario]
        defines = {}
        if scenario == "room_list":
            # The service's equipment parameter: a text[] literal (room-service/src/repo.c).
            defines = {"equipment": f'{{"{EQUIPMENT_FILTER}"}}', "active": "true",
                       "limit": 21}
            if template == sc["minimal"]:
                defines = {"equipment": EQUIPMENT_FILTER}
        elif scenario == "room_search":
            # The service's equipment parameter: a JSON array (reservation-service/src/search.c).
            defines = {"equipment": json.dumps([EQUIPMENT_FILTER])}
            if template == sc["minimal"]:
                defines = {"equipment": EQUIPMENT_FILTER}
        elif scenario == "user_reservations":
            defines = {"status": "confirmed", "limit": 21}
        elif scenario == "create":
            runday = self.take_day()
            defines = {"day0": self.day0, "runday": runday, "purpose": "bench-pgbench",
                       "topic": "reservation_events"}
        template = template or sc["pgbench"]
        self.phase(f"{scenario} pgbench {template} c={clients or self.connections}")
        res = self.pgbench(template, sc["db"], defines, clients=clients, seconds=seconds)
        if scenario == "create":
            self.end_day(runday)
        return res

    def sweep(self, scenario, template):
        """pgbench at each client count of the sweep: the best run (rps), with all of them."""
        runs = [self.run_pgbench(scenario, template, clients=c, seconds=self.ceiling_seconds)
                for c in self.sweep_clients]
        best = dict(max(runs, key=lambda r: r["rps"]))
        best["sweep"] = [{"clients": r["clients"], "rps": r["rps"], "p99_ms": r["p99_ms"],
                          "errors": r["errors"]} for r in runs]
        best["errors"] = sum(r["errors"] for r in runs)
        best["requests"] = min(r["requests"] for r in runs)
        best["script"] = template
        return best

    def quiesce(self):
        """Vacuums and analyzes the reservations, then checkpoints: the work autovacuum and the
        checkpointer would otherwise do during the next measurement.  Returns the seconds it
        took."""
        t0 = time.monotonic()
        self.phase("quiesce")
        with self.cursor("reservation_db") as cur:
            cur.execute("VACUUM (ANALYZE) reservations")
        harness.superuser_sql(self.stack.pg, "CHECKPOINT")
        return round(time.monotonic() - t0, 1)

    def phase(self, name):
        if self.sampler:
            self.sampler.phase = name

    def run_fixed(self, scenario):
        self.phase(f"{scenario} nginx fixed body")
        return self.wrk(self.nginx.url("ceiling"), "fixed.lua",
                        extra_env={"BENCH_PATH": f"/fixed/{scenario}"})

    def rss(self):
        st = self.stack
        return {name: proc_status(svc.proc.pid) for name, svc in
                (("user-service", st.user), ("room-service", st.room),
                 ("reservation-service", st.reservation))}

    # -- checks of the SQL the ceilings run --

    def statement_log(self, on):
        """PostgreSQL's statement log (log_statement = all, each line naming its database and
        application: parse_pg_log) on or back to the default; on waits a second for the reload."""
        st = self.stack
        if on:
            st.psql("postgres", "ALTER SYSTEM SET log_statement = 'all'")
            st.psql("postgres", "ALTER SYSTEM SET log_line_prefix = '%m [%p] db=%d app=%a '")
        else:
            st.psql("postgres", "ALTER SYSTEM RESET log_statement")
            st.psql("postgres", "ALTER SYSTEM RESET log_line_prefix")
        st.psql("postgres", "SELECT pg_reload_conf()")
        if on:
            time.sleep(1.0)

    def check_sql(self):
        """Captures the statements the services run for one request of each scenario (PostgreSQL
        log_statement), checks that the pgbench templates still run exactly those, and EXPLAINs
        the room-list statements."""
        st = self.stack
        logfile = os.path.join(st.pg.dir, "log")
        self.statement_log(True)
        offset = os.path.getsize(logfile)
        tok = harness.bearer(self.tokens[0])
        rs, rm = st.reservation.url, st.room.url
        date = self.dates()[len(self.dates()) // 2]
        runday = self.take_day()
        start = self.day0 + runday * 86400
        calls = {
            "room_get": lambda: requests.get(f"{rm}/rooms/3", headers=tok, timeout=10),
            "room_list": lambda: requests.get(
                f"{rm}/rooms?min_capacity=4&equipment={EQUIPMENT_FILTER}&active=true&limit=20",
                headers=tok, timeout=10),
            "availability": lambda: requests.get(f"{rs}/availability?room_id=3&date={date}",
                                                 headers=tok, timeout=10),
            "user_reservations": lambda: requests.get(f"{rs}/reservations?limit=20",
                                                      headers=tok, timeout=10),
            "grid": lambda: requests.get(f"{rs}/availability/grid?date={date}&limit=200",
                                         headers=tok, timeout=10),
            "room_search": lambda: requests.get(f"{rs}/{self.search_path(date, 10, 4)}",
                                                headers=tok, timeout=10),
            "create": lambda: requests.post(f"{rs}/reservations", headers=tok, timeout=10,
                                            json={"room_id": 3, "start_time": iso(start),
                                                  "end_time": iso(start + 900),
                                                  "purpose": "bench-verify"}),
        }
        windows = {}
        for name, call in calls.items():
            w0 = os.path.getsize(logfile)
            r = call()
            assert r.status_code in (200, 201), (name, r.status_code, r.text)
            time.sleep(0.3)
            windows[name] = (w0 - offset, os.path.getsize(logfile) - offset)
        # The room-list variants the bench sends (bench/lua/room_list.lua), in a window of
        # their own: their statements are EXPLAINed.
        list_offset = os.path.getsize(logfile)
        for cap in (2, 4, 6, 8):
            r = requests.get(f"{rm}/rooms?min_capacity={cap}&equipment={EQUIPMENT_FILTER}"
                             f"&active=true&limit=20", headers=tok, timeout=10)
            assert r.status_code == 200, (r.status_code, r.text)
        time.sleep(0.5)
        self.statement_log(False)
        self.end_day(runday)
        with open(logfile, "rb") as f:
            f.seek(offset)
            raw = f.read()

        def part(a, b=None):
            return raw[a:b].decode("utf-8", errors="replace")
        text = part(0)
        entries = parse_pg_log(text)
        seen = {e["sql"] for e in entries if e["sql"]}
        for name, sc in SCENARIOS.items():
            if not sc["pgbench"]:
                continue
            _, canon = render_pgbench(sc["pgbench"], {"@DATES@": "0"})
            missing = [s for s in canon if s not in seen]
            a, b = windows[name]
            sent = [e for e in parse_pg_log(part(a, b))
                    if e["db"] == sc["db"] and e["app"] == sc["service"] + "-service"]
            # A request answered without any statement (e.g. from a cache) is no drift: the
            # template then says what a miss costs.
            same = (not missing) if sent else None
            self.report["sql_check"][name] = {"statements": len(canon),
                                              "sent_by_request": len(sent),
                                              "same_as_service": same}
            if missing and sent:
                log(f"WARNING: {sc['pgbench']} no longer matches what the service runs: "
                    f"{[m[:80] for m in missing]}")
        log("pgbench SQL checked against the statements the services sent: " + ", ".join(
            f"{k} {sql_check_text(v)}" for k, v in self.report["sql_check"].items()))
        self.explain_room_list(parse_pg_log(part(list_offset - offset)))

    @staticmethod
    def search_path(date, hour, capacity):
        """A room search as bench/lua/room_search.lua sends it."""
        return (f"availability/rooms?start={date}T{hour:02d}:00:00Z&end={date}T{hour + 1:02d}"
                f":00:00Z&capacity={capacity}&equipment={EQUIPMENT_FILTER}&limit=20")

    def find_a_room_idle(self):
        """Issue 12's latencies alone (BENCH_ONLY=find_a_room): on the quiesced, otherwise idle
        stack, the day grid (200 rooms) and the room search, one request at a time."""
        self.report["meta"]["quiesce_seconds"] = self.quiesce()
        import random
        rnd = random.Random(12)
        tok = harness.bearer(self.tokens[0])
        dates, took = self.dates(), []
        self.phase("grid one at a time")
        with requests.Session() as sess:
            for _ in range(SEARCH_TARGETS["idle_requests"]):
                t0 = time.perf_counter()
                r = sess.get(f"{self.stack.reservation.url}/availability/grid",
                             params={"date": rnd.choice(dates), "limit": 200}, headers=tok,
                             timeout=10)
                took.append((time.perf_counter() - t0) * 1000.0)
                assert r.status_code == 200 and r.json(), (r.status_code, r.text[:200])
        took.sort()
        self.report["find_a_room"] = {
            "grid": {"requests": len(took), "p50_ms": round(percentile(took, 50), 2),
                     "p99_ms": round(percentile(took, 99), 2), "max_ms": round(took[-1], 2)},
            "room_search": self.search_idle()}

    def search_idle(self):
        """Issue 12: room searches one at a time on a keep-alive connection (the service
        otherwise idle): latency percentiles in ms."""
        import random
        rnd = random.Random(12)
        tok = harness.bearer(self.tokens[0])
        dates, took = self.dates(), []
        self.phase("room_search one at a time")
        with requests.Session() as sess:
            for _ in range(SEARCH_TARGETS["idle_requests"]):
                path = self.search_path(rnd.choice(dates), rnd.randint(8, 17),
                                        2 * rnd.randint(1, 4))
                t0 = time.perf_counter()
                r = sess.get(f"{self.stack.reservation.url}/{path}", headers=tok, timeout=10)
                took.append((time.perf_counter() - t0) * 1000.0)
                assert r.status_code == 200, (r.status_code, r.text)
        took.sort()
        return {"requests": len(took), "p50_ms": round(percentile(took, 50), 2),
                "p99_ms": round(percentile(took, 99), 2), "max_ms": round(took[-1], 2)}

    def sample_bodies(self, extra):
        tok = harness.bearer(self.tokens[0])
        rs, rm = self.stack.reservation.url, self.stack.room.url
        dates = self.dates()
        urls = {"room_list": f"{rm}/rooms?min_capacity=4&equipment={EQUIPMENT_FILTER}"
                             f"&active=true&limit=20",
                "room_get": f"{rm}/rooms/7",
                "availability": f"{rs}/availability?room_id=7&date={dates[len(dates) // 2]}",
                "user_reservations": f"{rs}/reservations?limit=20",
                "grid": f"{rs}/availability/grid?date={dates[len(dates) // 2]}&limit=200",
                "room_search": f"{rs}/{self.search_path(dates[len(dates) // 2], 10, 4)}",
                "feed_room": f"{rs}/calendars/rooms/7.ics",
                "feed_me": f"{rs}/calendars/me.ics?token={feed_token(self.uid_lo)}"}
        bodies = {}
        for name, url in urls.items():
            r = requests.get(url, headers=tok, timeout=10)
            assert r.status_code == 200, (url, r.status_code, r.text)
            bodies[name] = r.text
        bodies.update(extra)
        return bodies

    # -- the whole run --

    def run(self):
        t_start = time.monotonic()
        s = self.size
        self.report["meta"] = {
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "scale": self.scale, "sizes": {k: s[k] for k in ("rooms", "reservations", "users")},
            "stages": s["stages"], "seconds_per_run": self.seconds,
            "connections": self.connections, "wrk_threads": self.wrk_threads,
            "service_num_threads": self.service_threads or "service default",
            "replicas": self.replicas,
            "ceiling_seconds": self.ceiling_seconds, "sweep_clients": self.sweep_clients,
            "bin_dir": harness.BIN_DIR,
            "git": git_rev(), "cpus": os.cpu_count(), "kernel": os.uname().release,
            "postgres_max_connections": self.stack.max_connections,
            "baseline": {k: (self.baseline or {}).get(k) for k in
                         ("commit", "describe", "measured", "scale", "seconds_per_run",
                          "connections")},
        }
        log(f"starting the stack (NUM_THREADS={self.service_threads or 'default'}, binaries "
            f"{harness.BIN_DIR})")
        self.stack.start()
        self.sampler = BackendSampler(self.stack.pg.dsn("postgres"))
        self.sampler.start()
        log(f"stack up in {time.monotonic() - t_start:.1f}s: gateway {self.stack.gateway.url}")
        self.seed_base()
        if self.only:
            # One part alone: the seed (in one stage), then that part.
            self.report["meta"]["only"] = self.only
            self.seed_reservations(s["reservations"])
            self.report["seed"]["reservations"] = self.query(
                "reservation_db", "SELECT count(*) FROM reservations")[0][0]
            if self.only == "utilisation":
                self.utilisation()
            elif self.only == "replicas":
                for name in REPLICAS_SCENARIOS:
                    self.replicas_scenario(name)
            else:
                self.find_a_room_idle()
            self.sampler.stop()
            self.report["meta"]["total_seconds"] = round(time.monotonic() - t_start, 1)
            return
        extra_bodies = self.api_reservations()
        stages = sorted(set(min(x, s["reservations"]) for x in s["stages"]) |
                        {s["reservations"]})
        for i, upto in enumerate(stages):
            self.seed_reservations(upto)
            if i == 0:
                self.check_sql()
            if upto != stages[-1]:
                self.scaling_point(upto)
        n, att = self.query("reservation_db", "SELECT count(*), "
                            "round(avg(cardinality(attendees)), 2)::float8 FROM reservations")[0]
        self.report["seed"].update(reservations=n, attendees_per_reservation=att)
        self.explain_feeds()
        self.round_trips()
        self.nginx = BenchNginx(self.stack.workdir)
        self.nginx.start(os.path.join(self.stack.gateway.dir, "gateway.conf"),
                         self.sample_bodies(extra_bodies))
        for name in SCENARIOS:
            self.scenario(name)
        self.utilisation()
        self.series_create()
        self.scaling_final()
        self.report["rss"] = self.rss()
        self.starvation()
        # The silent connections (directly on the services) wait while the gateway is attacked.
        silent = threading.Thread(target=self.silent_connection)
        silent.start()
        self.attack()
        silent.join()
        # Last: it restarts reservation-service (with mail on).
        self.invitations()
        self.sampler.stop()
        self.backends()
        self.report["meta"]["total_seconds"] = round(time.monotonic() - t_start, 1)

    def replicas_scenario(self, name):
        """BENCH_ONLY=replicas: a scenario directly (summed over the replicas) and through the
        gateway (balanced over all of them), nothing else."""
        sc = SCENARIOS[name]
        n = self.query("reservation_db", "SELECT count(*) FROM reservations")[0][0]
        res = {"title": sc["title"], "service": sc["service"] + "-service",
               "reservations_before": n}
        res["direct"] = self.run_http(name, "direct")
        res["gateway"] = self.run_http(name, "gateway")
        res["ratios"] = {"gateway_vs_direct": ratio(res["gateway"], res["direct"])}
        self.report["scenarios"][name] = res
        log(f"{name} with {self.replicas} replica(s): direct {res['direct']['rps']:.0f}/s p99 "
            f"{res['direct']['p99_ms']:.1f} ms"
            + ("".join(f", #{i + 1} {r['rps']:.0f}/s" for i, r in
                       enumerate(res["direct"].get("per_replica", []))))
            + f"; gateway {res['gateway']['rps']:.0f}/s p99 {res['gateway']['p99_ms']:.1f} ms")

    def scaling_point(self, upto):
        n = self.query("reservation_db", "SELECT count(*) FROM reservations")[0][0]
        row_a = {"reservations": n, "direct": self.run_http("availability", "direct"),
                 "pgbench": self.run_pgbench("availability")}
        row_c = {"reservations": n, "direct": self.run_http("create", "direct"),
                 "pgbench": self.run_pgbench("create")}
        for row in (row_a, row_c):
            row["ratio_vs_pgbench"] = ratio(row["direct"], row["pgbench"])
        self.report["scaling"]["availability"].append(row_a)
        self.report["scaling"]["create"].append(row_c)
        log(f"scaling at {n:,} reservations: availability {row_a['direct']['rps']:.0f}/s "
            f"(pgbench {row_a['pgbench']['rps']:.0f}), create {row_c['direct']['rps']:.0f}/s "
            f"(pgbench {row_c['pgbench']['rps']:.0f})")
        # Back to the stage's size for the next measurements.
        with self.cursor("reservation_db") as cur:
            cur.execute("DELETE FROM reservations WHERE purpose LIKE 'bench-%%'")
            cur.execute("VACUUM (ANALYZE) reservations")

    def scaling_final(self):
        sc = self.report["scenarios"]
        for name in ("availability", "create"):
            self.report["scaling"][name].append({
                "reservations": sc[name]["reservations_before"], "direct": sc[name]["direct"],
                "pgbench": sc[name]["pgbench"],
                "ratio_vs_pgbench": ratio(sc[name]["direct"], sc[name]["pgbench"])})

    def scenario(self, name):
        sc = SCENARIOS[name]
        n = self.query("reservation_db", "SELECT count(*) FROM reservations")[0][0]
        res = {"title": sc["title"], "service": sc["service"] + "-service",
               "reservations_before": n}
        res["direct"] = self.run_http(name, "direct")
        if sc.get("p99_single_ms"):
            # One request at a time, directly: the latency of a single client on an otherwise
            # idle machine (the issues' wording), so the background work the earlier writes left
            # (autovacuum of the created rows, a checkpoint) is done first, not measured.
            res["quiesce_seconds"] = self.quiesce()
            self.phase(f"{name} direct, one connection")
            res["single"] = self.wrk(self.service_url(name, "direct"), sc["lua"], ok=sc.get("ok"),
                                     connections=1)
        res["gateway"] = self.run_http(name, "gateway")
        if self.nginx.keepalive_ok:
            res["gateway_keepalive"] = self.run_http(name, "keepalive")
        if sc["pgbench"]:
            res["pgbench_minimal"] = self.sweep(name, sc["minimal"])
            res["pgbench"] = self.sweep(name, sc["pgbench"])
        if name == "room_search":
            res["idle"] = self.search_idle()
            res["pgbench_at_connections"] = self.run_pgbench(name)
        res["http_ceiling"] = self.run_fixed(name)
        b = self.baseline or {}
        # A baseline measured at another scale or concurrency is no comparison.
        same = (b.get("scale"), b.get("connections")) == (self.scale, self.connections)
        base = (b.get("scenarios") or {}).get(name) or {} if same else {}
        res["baseline"] = base.get("direct")
        res["ratios"] = {
            "direct_vs_baseline": ratio(res["direct"], res["baseline"]),
            "direct_vs_pgbench_minimal": ratio(res["direct"], res.get("pgbench_minimal")),
            "direct_vs_pgbench": ratio(res["direct"], res.get("pgbench")),
            "direct_vs_http_ceiling": ratio(res["direct"], res["http_ceiling"]),
            "gateway_vs_direct": ratio(res["gateway"], res["direct"]),
            "gateway_keepalive_vs_direct": ratio(res.get("gateway_keepalive"), res["direct"]),
        }
        res["rss_after"] = self.rss()
        self.report["scenarios"][name] = res
        log(f"{name}: direct {res['direct']['rps']:.0f}/s p99 {res['direct']['p99_ms']:.1f} ms "
            f"(x{fmt_ratio(res['ratios']['direct_vs_baseline'])} baseline), "
            f"gateway {res['gateway']['rps']:.0f}/s"
            + (f", pgbench minimal {res['pgbench_minimal']['rps']:.0f}/s "
               f"(c={res['pgbench_minimal']['clients']}), same SQL {res['pgbench']['rps']:.0f}/s "
               f"(c={res['pgbench']['clients']})" if sc["pgbench"] else "")
            + f", nginx fixed body {res['http_ceiling']['rps']:.0f}/s")

    # -- issue 15: the utilisation report --

    def utilisation_windows(self, n):
        """n windows of UTILISATION['days'] local days in the seeded past: (from, to) dates, the
        i-th ending i weeks before today."""
        days = UTILISATION["days"]
        return [(time.strftime("%Y-%m-%d", time.gmtime(self.day0 - (days + 7 * i) * 86400)),
                 time.strftime("%Y-%m-%d", time.gmtime(self.day0 - 7 * i * 86400)))
                for i in range(n)]

    def utilisation_statements(self):
        """One report of each grouping with the statement log on: {group_by: (sql, params)} of
        the report's statement as reservation-service sent it, and the sql_check entry of
        utilisation.pgbench (every statement of the script among those a request sent)."""
        st = self.stack
        logfile = os.path.join(st.pg.dir, "log")
        self.statement_log(True)
        (f, t), = self.utilisation_windows(1)
        seen, sent = {}, []
        try:
            for g in UTILISATION["group_by"]:
                offset = os.path.getsize(logfile)
                r = requests.get(f"{st.reservation.url}/reports/utilisation", headers=self.admin,
                                 params={"from": f, "to": t, "group_by": g}, timeout=60)
                assert r.status_code == 200, (r.status_code, r.text)
                time.sleep(0.3)
                with open(logfile, "rb") as fh:
                    fh.seek(offset)
                    text = fh.read().decode("utf-8", errors="replace")
                for e in parse_pg_log(text):
                    if e["db"] == "reservation_db" and e["app"] == "reservation-service" \
                            and e["sql"]:
                        sent.append(e["sql"])
                        if "res_utilisation" in e["sql"]:
                            seen[g] = (e["sql"], e.get("params") or [])
        finally:
            self.statement_log(False)
        _, canon = render_pgbench("utilisation.pgbench", {"@DATES@": "0"})
        self.report["sql_check"]["utilisation"] = {
            "statements": len(canon), "sent_by_request": len(sent) // len(UTILISATION["group_by"]),
            "same_as_service": all(c in sent for c in canon) if sent else None}
        return seen

    def explain_literal(self, sql, params):
        """EXPLAIN (ANALYZE, BUFFERS) of sql with its parameters written in as literals (the
        service plans the report for its values at every run: db_exec_planned), with the
        settings the service gives it (no JIT, more work_mem: repo_report.c)."""
        text = re.sub(r"\$(\d+)", lambda m: params[int(m.group(1)) - 1], sql)
        try:
            with self.cursor("reservation_db") as cur:
                cur.execute("SET jit = off")
                cur.execute("SET work_mem = '64MB'")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + text.replace("%", "%%"))
                return [r[0] for r in cur.fetchall()]
        except (psycopg2.Error, IndexError) as exc:
            return [f"EXPLAIN failed: {exc}".strip()]

    def utilisation(self):
        """Issue 15: the utilisation report, one request at a time (UTILISATION), its statement
        checked against utilisation.pgbench and EXPLAINed, and pgbench of it at one client."""
        u = UTILISATION
        n = u["requests"]["smoke" if self.scale == "smoke" else "full"]
        rs = self.stack.reservation.url
        out = {"days": u["days"], "requests": 0, "errors": 0, "by_group": {}, "explain": {}}
        self.phase("utilisation")
        changed = [r[0] for r in self.query(
            "reservation_db", "UPDATE rooms SET policies = %s::jsonb WHERE active AND NOT "
            "deleted AND policies IS NULL AND id %% 2 = 0 RETURNING id",
            (json.dumps(OPENING_HOURS),))]
        try:
            out["rooms"] = self.query("reservation_db", "SELECT count(*) FROM rooms WHERE "
                                      "active AND NOT deleted")[0][0]
            out["with_opening_hours"] = len(changed)
            out["reservations"] = self.query("reservation_db",
                                             "SELECT count(*) FROM reservations")[0][0]
            for g, (sql, params) in self.utilisation_statements().items():
                out["explain"][g] = {"sql": sql, "params": params,
                                     "plan": self.explain_literal(sql, params)}
            all_ms = []
            with requests.Session() as sess:
                for g in u["group_by"]:
                    took, size, rows = [], 0, 0
                    for f, t in self.utilisation_windows(n):
                        t0 = time.perf_counter()
                        r = sess.get(f"{rs}/reports/utilisation", headers=self.admin,
                                     params={"from": f, "to": t, "group_by": g}, timeout=60)
                        took.append((time.perf_counter() - t0) * 1000.0)
                        if r.status_code != 200:
                            out["errors"] += 1
                            continue
                        size, rows = len(r.content), len(r.json()["rows"])
                    all_ms += took
                    took.sort()
                    out["by_group"][g] = {"requests": len(took), "rows": rows, "bytes": size,
                                          "p50_ms": round(percentile(took, 50), 2),
                                          "p99_ms": round(percentile(took, 99), 2),
                                          "max_ms": round(took[-1], 2)}
            all_ms.sort()
            out.update(requests=len(all_ms), p50_ms=round(percentile(all_ms, 50), 2),
                       p99_ms=round(percentile(all_ms, 99), 2), max_ms=round(all_ms[-1], 2))
            self.phase("utilisation pgbench c=1")
            out["pgbench"] = self.pgbench("utilisation.pgbench", "reservation_db", {},
                                          clients=1, seconds=self.ceiling_seconds)
        finally:
            self.query("reservation_db", "UPDATE rooms SET policies = NULL WHERE id = ANY(%s)",
                       (changed,))
        self.report["utilisation"] = out
        log(f"utilisation: {out['requests']} reports one at a time over "
            f"{out['reservations']:,} reservations, p50 {out['p50_ms']:.1f} ms, p99 "
            f"{out['p99_ms']:.1f} ms (" + ", ".join(f"{g} p99 {v['p99_ms']:.1f} ms" for g, v in
                                                   out["by_group"].items())
            + f"); pgbench c=1 p50 {out['pgbench']['p50_ms']:.1f} ms; statement "
            f"{sql_check_text(self.report['sql_check']['utilisation'])}")

    # -- issue 13: a series of 52 weekly occurrences against single bookings --

    def series_lanes(self, count):
        """count (room, start) of lanes never used before (SERIES): a series there has 52 free
        weeks, a single booking a free slot."""
        out = []
        for lane in range(self.series_lane, self.series_lane + count):
            j, k = lane % self.active, lane // self.active
            if k >= SERIES["quarters"] * SERIES["first_days"]:
                raise RuntimeError("series_create ran out of free lanes")
            day = 1 + k // SERIES["quarters"]
            start = self.day0 + day * 86400 + SERIES["first_hour"] * 3600 + \
                (k % SERIES["quarters"]) * 900
            out.append((j + j // 19 + 1, start))  # active rooms: ids not a multiple of 20
        self.series_lane += count
        return out

    def series_run(self, kind, conns, count):
        """count POST /reservations of kind (series or single), each in a lane of its own, over
        conns keep-alive connections: the run's figures in wrk's shape (201 expected; a series
        also checked in the database: 52 confirmed occurrences each)."""
        purpose = f"bench-{kind}-c{conns}-{self.series_lane}"
        reqs = []
        for i, (room, start) in enumerate(self.series_lanes(count)):
            body = {"room_id": room, "start_time": iso(start), "end_time": iso(start + 900),
                    "purpose": purpose}
            if kind == "series":
                body["recurrence"] = SERIES["rule"]
            data = json.dumps(body).encode()
            reqs.append(b"POST /reservations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Authorization: Bearer " + self.tokens[i % len(self.tokens)].encode()
                        + b"\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(data)).encode() + b"\r\n\r\n" + data)
        c0 = self.cpu_snapshot()
        out = clients.timed_requests("127.0.0.1", self.stack.reservation.port, reqs, conns)
        c1 = self.cpu_snapshot()
        lat = sorted(t * 1000.0 for _, t, _ in out["results"])
        codes, socket_errors = {}, {}
        for status, _, err in out["results"]:
            if err:
                socket_errors[err] = socket_errors.get(err, 0) + 1
            else:
                codes[str(status)] = codes.get(str(status), 0) + 1
        created = codes.get("201", 0)
        res = {"tool": "bench/clients.py", "clients": conns, "requests": count,
               "rps": round(count / out["seconds"], 1), "seconds": round(out["seconds"], 2),
               "p50_ms": round(percentile(lat, 50), 2), "p90_ms": round(percentile(lat, 90), 2),
               "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(lat[-1], 2),
               "errors": count - created, "codes": codes,
               "error_detail": dict(socket_errors, reconnects=out["reconnects"]),
               "cpu_percent": self.cpu_delta(c0, c1)}
        if kind == "series":
            booked = self.query(
                "reservation_db", "SELECT count(DISTINCT s.id), count(r.id) FROM "
                "reservation_series s JOIN reservations r ON r.series_id = s.id AND "
                "r.status = 'confirmed' WHERE s.purpose = %s", (purpose,))[0]
            res["occurrences_per_s"] = round(booked[1] / out["seconds"], 1)
            res["occurrences_booked"] = booked[1]
            want = created * SERIES["occurrences"]
            if tuple(booked) != (created, want):
                res["errors"] += 1
                res["error_detail"]["booked"] = f"{booked[0]} series, {booked[1]} occurrences " \
                                                f"(expected {created}, {want})"
        return res

    def series_create(self):
        """Issue 13: series of 52 weekly occurrences and single bookings, each kind at every
        client count of SERIES, the same client code and request count; the database time of
        one request of each kind (pg_stat_statements, at one client)."""
        n = SERIES["requests"]["full" if self.scale == "full" else "smoke"]
        reservations = self.query("reservation_db", "SELECT count(*) FROM reservations")[0][0]
        self.phase("series_create warm-up")
        for kind in ("single", "series"):  # every pooled connection plans the functions once
            self.series_run(kind, max(SERIES["clients"]), 2 * max(SERIES["clients"]))
        runs, db = [], {}
        for c in SERIES["clients"]:
            row = {"clients": c}
            for kind in ("single", "series"):
                self.phase(f"series_create {kind} c={c}")
                if c == 1:
                    row[kind], rows, quiet, _ = self.statements_around(
                        "reservation_db", functools.partial(self.series_run, kind, c, n))
                    db[kind] = request_statements(rows, quiet, n)
                else:
                    row[kind] = self.series_run(kind, c, n)
            row["series_p50_vs_52_singles"] = round(
                row["series"]["p50_ms"] / (SERIES["occurrences"] * row["single"]["p50_ms"]), 3)
            row["series_p99_vs_52_singles"] = round(
                row["series"]["p99_ms"] / (SERIES["occurrences"] * row["single"]["p99_ms"]), 3)
            runs.append(row)
        db["series_vs_52_singles"] = round(
            db["series"]["ms_per_request"] / max(1e-9, SERIES["occurrences"]
                                                 * db["single"]["ms_per_request"]), 3)
        self.report["series_create"] = {
            "title": f"POST /reservations with recurrence {SERIES['rule']} (a free room and "
                     "15-minute slot, every week for a year) vs single bookings",
            "service": "reservation-service", "rule": SERIES["rule"],
            "occurrences": SERIES["occurrences"], "requests_per_run": n,
            "reservations_before": reservations, "runs": runs, "database": db,
            "rss_after": self.rss()}
        for row in runs:
            log(f"series_create c={row['clients']}: series p50 {row['series']['p50_ms']:.1f} / "
                f"p99 {row['series']['p99_ms']:.1f} ms ({row['series']['rps']:.0f}/s), single "
                f"p50 {row['single']['p50_ms']:.2f} / p99 {row['single']['p99_ms']:.2f} ms; "
                f"series p50 = {row['series_p50_vs_52_singles']:.3f} x 52 singles; errors "
                f"{row['series']['errors']}/{row['single']['errors']}")
        log(f"series_create database time per request (c=1): series "
            f"{db['series']['ms_per_request']:.2f} ms in {db['series']['per_request']:g} "
            f"statements, single {db['single']['ms_per_request']:.3f} ms in "
            f"{db['single']['per_request']:g}")

    # -- issue 14: what invitations cost a booking --

    def invite_run(self, label, seconds=None):
        """POST /reservations inviting INVITATIONS["attendees"] employees each (bench/lua/
        create.lua, BENCH_ATTENDEES), directly at BENCH_CONNECTIONS: wrk's figures, the bookings
        made, the recipients they have (organizer and attendees) and the mail queued since."""
        runday = self.take_day()
        purpose = f"bench-invite-{label}"
        first = self.query("reservation_db", "SELECT coalesce(max(id), 0) FROM deliveries")[0][0]
        self.phase(f"invitations mail {label}")
        res = self.wrk(self.stack.reservation.url, "create.lua", ok=(201,), seconds=seconds,
                       extra_env={"BENCH_RUNDAY": str(runday), "BENCH_PURPOSE": purpose,
                                  "BENCH_ATTENDEES": str(INVITATIONS["attendees"])})
        time.sleep(0.5)  # the requests still in flight when wrk stopped
        self.end_day(runday)
        booked, recipients = self.query(
            "reservation_db", "SELECT count(*), coalesce(sum(cardinality(attendees) "
            "+ (organizer_email IS NOT NULL)::int), 0) FROM reservations WHERE purpose = %s",
            (purpose,))[0]
        queued = self.query("reservation_db", "SELECT count(*) FROM deliveries "
                            "WHERE kind = 'mail' AND id > %s", (first,))[0][0]
        res.update(booked=booked, recipients=recipients, mail_queued=queued,
                   deliveries_after_id=first)
        return res

    def mail_drain(self, first, timeout):
        """Waits until no message queued after delivery id first is pending (at most timeout
        seconds); what became of them: counts, the wait from queued to sent (p50, p99, max),
        how many were sent while bookings were still being made, and the rate from the first
        queued to the last sent."""
        where = "FROM deliveries WHERE kind = 'mail' AND id > %s"
        t0 = time.monotonic()
        while True:
            pending = self.query("reservation_db", f"SELECT count(*) {where} AND status = "
                                 "'pending'", (first,))[0][0]
            if not pending or time.monotonic() - t0 > timeout:
                break
            time.sleep(0.25)
        waited = time.monotonic() - t0
        row = self.query(
            "reservation_db", "SELECT count(*), count(*) FILTER (WHERE status = 'sent'), "
            "count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = "
            "'pending'), count(*) FILTER (WHERE attempts > 1), "
            "count(*) FILTER (WHERE sent_at <= (SELECT max(created_at) " + where + ")), "
            "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM "
            "sent_at - created_at)), extract(epoch FROM max(sent_at - created_at)), "
            "extract(epoch FROM max(sent_at) - min(created_at)) " + where, (first, first))[0]
        queued, sent, failed, pending, retried, early, pcts, worst, span = row
        pcts = pcts or [None, None]
        return {"queued": queued, "sent": sent, "failed": failed, "pending": pending,
                "retried": retried, "sent_while_booking": early,
                "drain_wait_s": round(waited, 1), "timeout_s": timeout,
                "queued_to_sent_p50_s": None if pcts[0] is None else round(pcts[0], 3),
                "queued_to_sent_p99_s": None if pcts[1] is None else round(pcts[1], 3),
                "queued_to_sent_max_s": None if worst is None else round(float(worst), 3),
                "sent_per_s": round(sent / float(span), 1) if span else None}

    def invitations(self):
        """Issue 14: bookings with attendees, mail off (the run so far) against mail on
        (reservation-service restarted with SMTP_URL: Mailpit, started here; MAIL_SENDERS its
        default), the same client and load; then how long the senders take to send it all. The
        bookings' rate and latency with and without invitations, and the senders' rate."""
        n = INVITATIONS["attendees"]
        drain_s = INVITATIONS["drain_s"]["full" if self.scale == "full" else "smoke"]
        st = self.stack
        out = {"title": f"POST /reservations inviting {n} attendees ({n + 1} messages a booking "
                        "with the organizer's), mail off vs on", "attendees": n,
               "reservations_before": self.query(
                   "reservation_db", "SELECT count(*) FROM reservations")[0][0]}
        self.invite_run("off warm-up", seconds=1)
        out["off"] = self.invite_run("off")
        self.phase("invitations mail on: restart")
        st.reservation.stop()
        since = len(st.reservation.log_text())
        self.mailpit = harness.Mailpit(st.workdir, name="bench-mailpit")
        self.mailpit.start()
        # The bench's few organizers invite far more people an hour than the abuse limit
        # allows (docs/operations.md#mail-abuse): lifted, so that the run measures sending.
        st.reservation.env.update(SMTP_URL=self.mailpit.smtp_url, SMTP_FROM=st.MAIL_FROM,
                                  MAIL_MAX_RECIPIENTS_PER_HOUR="1000000")
        st.reservation.start()
        harness.wait_until(lambda: self.query(
            "reservation_db", "SELECT coalesce(bool_or(enabled), false) FROM mail_settings")[0][0],
            what="mail on (mail_settings)")
        harness.wait_until(lambda: "mail" in self.sender_sessions(since),
                           what="the mail senders' start in reservation-service's log")
        out["senders"] = self.sender_sessions(since)
        # Every pooled connection prepares the booking's statements; its mail leaves before
        # the measured run.
        warm = self.invite_run("on warm-up", seconds=1)
        self.mail_drain(warm["deliveries_after_id"], drain_s)
        out["on"] = self.invite_run("on")
        self.phase("invitations mail on: sending")
        c0 = self.cpu_snapshot()
        out["delivery"] = self.mail_drain(out["on"]["deliveries_after_id"], drain_s)
        out["delivery"]["cpu_percent"] = self.cpu_delta(c0, self.cpu_snapshot())
        out["rps_on_vs_off"] = ratio(out["on"], out["off"])
        out["p99_on_vs_off"] = round(out["on"]["p99_ms"] / max(1e-9, out["off"]["p99_ms"]), 2)
        self.report["invitations"] = out
        d = out["delivery"]
        log(f"invitations ({n} attendees): mail off {out['off']['rps']:.0f}/s p99 "
            f"{out['off']['p99_ms']:.1f} ms, mail on {out['on']['rps']:.0f}/s p99 "
            f"{out['on']['p99_ms']:.1f} ms (x{fmt_ratio(out['rps_on_vs_off'])}); "
            f"{d['sent']}/{d['queued']} messages sent ({d['failed']} failed, {d['pending']} "
            f"pending) at {d['sent_per_s'] or 0:.0f}/s, queued-to-sent p99 "
            f"{d['queued_to_sent_p99_s']} s, all sent {d['drain_wait_s']} s after the run")

    def sender_sessions(self, since=0):
        """reservation-service's sender threads (one database session each), from its log from
        byte since on: {kind: count} of its "<kind> deliveries: N sender(s)" lines (webhook;
        mail when mail is on)."""
        text = self.stack.reservation.log_text()[since:]
        return {kind: int(num) for kind, num in
                re.findall(r"(\w+) deliveries: (\d+) sender\(s\)", text)}

    # -- backends, round trips, EXPLAIN, starvation, attacks --

    def pool_sizes(self):
        """Each service's pool size from its /metrics (a metric whose name holds pool_size),
        None when it has none (before issue 18: one connection per worker thread)."""
        out = {}
        for name in SERVICES:
            size = None
            try:
                text = requests.get(self.stack.by_name(name).url + "/metrics", timeout=5).text
                m = re.search(r"^\w*pool_size\w*(?:\{[^}]*\})?\s+([0-9.e+]+)\s*$", text, re.M)
                size = int(float(m.group(1))) if m else None
            except requests.RequestException:
                pass
            out[name] = size
        return out

    def backends(self):
        """The sampled maximum of each service's backends against its pool + dedicated
        sessions; reservation-service's phases with mail on (the end of invitations(), its
        mail senders added) apart from the rest."""
        pools = self.pool_sizes()
        webhook = self.sender_sessions().get("webhook", 0)
        mail = (self.report["invitations"].get("senders") or {}).get("mail", 0)
        out = {}
        for name in SERVICES:
            dedicated = DEDICATED_SESSIONS[name]
            if name == "reservation-service":
                dedicated += webhook
            groups = {"": (dedicated, False)}
            if name == "reservation-service" and self.report["invitations"]:
                groups["mail_on"] = (dedicated + mail, True)
            for key, (ded, mail_on) in groups.items():
                phases = [(ph, v.get(name, 0)) for ph, v in self.sampler.by_phase.items()
                          if ph.startswith("invitations mail on") == mail_on or
                          name != "reservation-service"]
                worst = max(phases, key=lambda x: x[1], default=("", 0))
                v = {"max_backends": worst[1], "pool_size": pools[name],
                     "dedicated_sessions": ded,
                     # Every replica's (the application name is the service's).
                     "limit": None if pools[name] is None else (pools[name] + ded)
                     * self.replicas,
                     "at_start": self.sampler.by_phase.get("start", {}).get(name, 0),
                     "worst_phase": worst[0]}
                if key:
                    out[name][key] = dict(v, mail_senders=mail)
                else:
                    out[name] = v
        out["samples"] = self.sampler.samples
        out["other_clients_max"] = {k: v for k, v in self.sampler.max.items()
                                    if k not in SERVICES}
        self.report["backends"] = out

    def statements_by_db(self, db):
        """(query, calls, total execution ms) of each statement pg_stat_statements holds for
        database db."""
        return self.query("postgres", "SELECT s.query, sum(s.calls)::bigint, "
                          "sum(s.total_exec_time)::float8 FROM pg_stat_statements s "
                          "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s GROUP BY 1",
                          (db,))

    def statements_around(self, db, work):
        """pg_stat_statements of database db while work() runs, after a quiet interval (the
        services' background work alone) measured the same way just before. Returns (work's
        result, [(query, calls, ms)] during work, {query: calls} of the quiet interval, the
        calls the background would have made in as long a time)."""
        self.stack.psql("postgres", "SELECT pg_stat_statements_reset()")
        t0 = time.monotonic()
        time.sleep(1.0 if self.scale == "full" else 0.4)
        quiet_rows = {q: c for q, c, _ in self.statements_by_db(db)}
        quiet_s = time.monotonic() - t0
        self.stack.psql("postgres", "SELECT pg_stat_statements_reset()")
        t0 = time.monotonic()
        result = work()
        took = time.monotonic() - t0
        rows = self.statements_by_db(db)
        return result, rows, quiet_rows, sum(quiet_rows.values()) * took / quiet_s

    def round_trips(self):
        """Statements per request (pg_stat_statements calls, top level, BEGIN/COMMIT included)
        of each scenario: reset, n requests one after the other on one keep-alive connection,
        the calls of the statements that ran at least n / 2 times, / n. Also the raw figure:
        all calls / n minus what the services' background work (outbox publisher, sweeper,
        health checks) ran in as long a quiet interval just before."""
        n = 100 if self.scale == "full" else 10
        tok = harness.bearer(self.tokens[0])
        rs, rm = self.stack.reservation.url, self.stack.room.url
        dates = self.dates()
        runday = self.take_day()
        http = requests.Session()
        urls = {
            "room_list": lambda i: f"{rm}/rooms?min_capacity={2 * (1 + i % 4)}&equipment="
                                   f"{EQUIPMENT_FILTER}&active=true&limit=20",
            "room_get": lambda i: f"{rm}/rooms/{1 + (i * 7) % self.rooms}",
            "availability": lambda i: f"{rs}/availability?room_id={1 + (i * 7) % self.rooms}"
                                      f"&date={dates[i % len(dates)]}",
            "user_reservations": lambda i: f"{rs}/reservations?limit=20",
            "grid": lambda i: f"{rs}/availability/grid?date={dates[i % len(dates)]}&limit=200",
            "feed_room": lambda i: f"{rs}/calendars/rooms/{1 + (i * 7) % self.rooms}.ics",
            "feed_me": lambda i: f"{rs}/calendars/me.ics?token="
                                 f"{feed_token(self.token_users[i % len(self.token_users)][0])}",
        }

        def create(i):
            start = self.day0 + runday * 86400 + (i // 19) * 900
            r = http.post(f"{rs}/reservations", headers=tok, timeout=10,
                          json={"room_id": 1 + i % 19, "start_time": iso(start),
                                "end_time": iso(start + 900), "purpose": "bench-roundtrips"})
            assert r.status_code == 201, (r.status_code, r.text)

        def requests_of(name):
            for i in range(n):
                if name == "create":
                    create(i)
                else:
                    r = http.get(urls[name](i), headers=tok, timeout=10)
                    assert r.status_code == 200, (name, r.status_code, r.text)
        self.phase("round trips")
        for name in ("room_list", "room_get", "availability", "user_reservations", "grid",
                     "feed_room", "feed_me", "create"):
            _, rows, quiet_rows, background = self.statements_around(
                SCENARIOS[name]["db"], functools.partial(requests_of, name))
            rows = [(q, c) for q, c, _ in rows]
            total = sum(c for _, c in rows)
            top = sorted(rows, key=lambda x: -x[1])[:12]
            # Statements the requests ran at least every other time and that did not run while
            # no request did; the rest is background (the publisher's polls, health checks),
            # which the raw figure only estimates.
            per_req = sum(c for q, c in rows if c >= n / 2 and q not in quiet_rows) / n
            self.report["round_trips"][name] = {
                "requests": n, "calls": total, "background_estimate": round(background, 1),
                "per_request": round(per_req, 2),
                "raw_per_request": round(max(0.0, total - background) / n, 2),
                "statements": [{"query": q[:160], "per_request": round(c / n, 2),
                                "also_without_requests": q in quiet_rows} for q, c in top]}
        self.end_day(runday)
        log("statements per request: " + ", ".join(
            f"{k} {v['per_request']:.2f}" for k, v in self.report["round_trips"].items()))

    def explain(self, db, seen):
        """EXPLAIN (ANALYZE, BUFFERS) of each statement of seen ({sql: params}) in database db,
        prepared and executed five times first, as the service's prepared statement would be:
        [{sql, params, plan}]."""
        out = []
        for sql, params in seen.items():
            args = "(" + ", ".join(params) + ")" if params else ""
            try:
                with self.cursor(db) as cur:
                    cur.execute("PREPARE bench_q AS " + sql.replace("%", "%%"))
                    for _ in range(5):
                        cur.execute("EXECUTE bench_q" + args.replace("%", "%%"))
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q"
                                + args.replace("%", "%%"))
                    plan = [r[0] for r in cur.fetchall()]
            except psycopg2.Error as exc:
                plan = [f"EXPLAIN failed: {exc}".strip()]
            out.append({"sql": sql, "params": params, "plan": plan})
        return out

    def explain_room_list(self, entries):
        """EXPLAIN (ANALYZE, BUFFERS) of each distinct room_db statement on rooms that the room
        list requests sent (with the parameters of its first request)."""
        seen = {}
        for e in entries:
            if e.get("db") == "room_db" and e["sql"] and re.search(r"\brooms\b", e["sql"]) \
                    and e["sql"].lstrip().upper().startswith(("SELECT", "WITH")):
                seen.setdefault(e["sql"], e.get("params") or [])
        out = self.explain("room_db", seen)
        self.report["explain_room_list"] = out
        log(f"EXPLAIN of {len(out)} room-list statement(s)"
            + ("" if out else " (none sent: served from the cache?)"))

    def explain_feeds(self):
        """Issue 14: EXPLAIN (ANALYZE, BUFFERS) of the statement each calendar feed sends (taken
        from the statement log with its parameters) on the full table, and whether its plan
        reads the indexes it should: (room_id, start_time) for a room; for a user's feed
        (user_id, start_time) for the bookings they organise and reservation_attendees'
        (email_key, start_time) for those that invite them (migration 017). Also how many
        events the feed holds (for the user's, how many they organise and how many invite
        them)."""
        st = self.stack
        logfile = os.path.join(st.pg.dir, "log")
        self.statement_log(True)
        rs = st.reservation.url
        calls = {"feed_room": (f"{rs}/calendars/rooms/7.ics", harness.bearer(self.tokens[0]),
                               ("reservations_room_start",)),
                 "feed_me": (f"{rs}/calendars/me.ics?token={feed_token(self.uid_lo)}", {},
                             ("reservations_user_start", "reservation_attendees_pkey"))}
        out = {}
        try:
            for name, (url, headers, indexes) in calls.items():
                offset = os.path.getsize(logfile)
                r = requests.get(url, headers=headers, timeout=10)
                assert r.status_code == 200, (name, r.status_code, r.text)
                time.sleep(0.3)
                with open(logfile, "rb") as f:
                    f.seek(offset)
                    text = f.read().decode("utf-8", errors="replace")
                seen = {}
                for e in parse_pg_log(text):
                    if e["db"] == "reservation_db" and e["app"] == "reservation-service" \
                            and e["sql"] and "reservations" in e["sql"]:
                        seen.setdefault(e["sql"], e.get("params") or [])
                explain = self.explain("reservation_db", seen)
                out[name] = {"index": " and ".join(indexes), "explain": explain,
                             "uses_index": bool(seen) and all(
                                 any(ix in line for ex in explain for line in ex["plan"])
                                 for ix in indexes),
                             "events": r.text.count("BEGIN:VEVENT"),
                             "bytes": len(r.content)}
            # The user's share: organised, invited (by the address of the token), in the window.
            organised, invited = self.query(
                "reservation_db", "SELECT (SELECT count(*) FROM reservations r "
                "  WHERE r.user_id = t.user_id AND r.start_time < now() + interval '365 days' "
                "  AND r.end_time > now() - interval '30 days'), "
                "(SELECT count(*) FROM reservation_attendees a WHERE a.email_key = lower(t.email) "
                "  AND a.start_time < now() + interval '365 days' "
                "  AND a.end_time > now() - interval '30 days') "
                "FROM feed_tokens t WHERE t.user_id = %s", (self.uid_lo,))[0]
            out["feed_me"].update(organised=organised, invited=invited)
        finally:
            self.statement_log(False)
        self.report["explain_feeds"] = out
        log("calendar feed plans: " + ", ".join(
            f"{k} {'reads ' + v['index'] if v['uses_index'] else 'DOES NOT read ' + v['index']}"
            f" ({v['events']} events)" for k, v in out.items()))

    def starvation(self):
        """256 keep-alive clients per service, each counting its own completed answers."""
        conns = 256
        secs = 5 if self.scale == "full" else 2
        rooms, dates = self.rooms, self.dates()
        for name, path in (("user-service", lambda i: "/users/me"),
                           ("room-service", lambda i: f"/rooms/{1 + (i * 7) % rooms}"),
                           ("reservation-service",
                            lambda i: f"/availability?room_id={1 + (i * 7) % rooms}"
                                      f"&date={dates[i % len(dates)]}")):
            svc = self.stack.by_name(name)
            reqs = [(f"GET {path(i)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                     f"{self.tokens[i % len(self.tokens)]}\r\n\r\n").encode()
                    for i in range(conns)]
            self.phase(f"starvation {name}")
            res = clients.keepalive_counts("127.0.0.1", svc.port, reqs, conns, secs)
            self.report["starvation"][name] = res
            log(f"starvation {name}: {conns} keep-alive clients, {res['rps']:.0f} req/s, "
                f"per connection min {res['min_per_connection']} median "
                f"{res['median_per_connection']} max {res['max_per_connection']}, "
                f"{res['starved_connections']} starved, errors {res['errors']}")

    def attack(self):
        """A steady client (wrk, 8 connections, room by id) through the gateway, without and
        with 500 idle connections and 50 slowloris clients (from other loopback addresses, so
        that the gateway's per-address limit applies to them and not to the steady client)."""
        idle, slow = (500, 50) if self.scale == "full" else (50, 10)
        secs = self.seconds
        gw = self.stack.gateway.url

        def steady():
            return self.wrk(gw, "room_get.lua", connections=8, seconds=secs)
        self.phase("attack: steady client alone")
        calm = steady()
        port = int(gw.rsplit(":", 1)[1])
        att = clients.Attack("127.0.0.1", port, idle, slow)
        self.phase("attack: idle + slowloris")
        att.start()
        time.sleep(1.5)
        opened = att.open_now()
        under = steady()
        stats = att.stop()
        stats.update(open_when_measuring=opened)
        delay = round(under["p99_ms"] - calm["p99_ms"], 2)
        self.report["attack"] = {"idle": idle, "slowloris": slow, "calm": calm, "under": under,
                                 "p99_delay_ms": delay, "attackers": stats}
        log(f"attack: steady client p99 {calm['p99_ms']:.1f} ms alone, {under['p99_ms']:.1f} ms "
            f"with {idle} idle + {slow} slowloris ({opened} open), errors "
            f"{calm['errors']}/{under['errors']}, attackers {stats}")

    def silent_connection(self):
        """How long each service keeps a connection that sent nothing (capped)."""
        cap = 12.0 if self.scale == "full" else 7.0
        res = clients.stays_open([(n, "127.0.0.1", self.stack.by_name(n).port)
                                  for n in SERVICES], cap)
        self.report["silent_connection"] = {"cap_seconds": cap, "closed_after_s": res}
        log("a connection that sends nothing is closed after: " + ", ".join(
            f"{k} " + (f"> {cap:.0f} s" if v is None else f"{v:.1f} s") for k, v in res.items()))

    # -- targets, report --

    def evaluate(self):
        t, sc, out = TARGETS, self.report["scenarios"], []

        def add(name, value, limit, ok, note=""):
            out.append({"target": name, "value": value, "limit": limit, "ok": bool(ok),
                        "note": note})
        if self.only == "find_a_room":
            fr = self.report["find_a_room"]
            add("grid (200 rooms) p99 < 30 ms one request at a time, idle (issue 12)",
                fr["grid"]["p99_ms"], 30.0, fr["grid"]["p99_ms"] < 30.0,
                f"{fr['grid']['requests']} requests, p50 {fr['grid']['p50_ms']:.2f} ms")
            rs = fr["room_search"]
            add(f"room search p99 < {SEARCH_TARGETS['idle_p99_ms']:g} ms one request at a time, "
                "idle (issue 12)", rs["p99_ms"], SEARCH_TARGETS["idle_p99_ms"],
                rs["p99_ms"] < SEARCH_TARGETS["idle_p99_ms"],
                f"{rs['requests']} requests, p50 {rs['p50_ms']:.2f} ms")
            self.report["targets"] = out
            return
        if self.only == "replicas":
            for name, res in self.report["scenarios"].items():
                for via in ("direct", "gateway"):
                    run = res[via]
                    add(f"{name} {via}: no errors", run["errors"], 0, run["errors"] == 0,
                        f"{run['requests']} requests, {run['rps']:.0f}/s")
            self.report["targets"] = out
            return
        ut = self.report["utilisation"]
        add(f"utilisation report p99 < {UTILISATION['p99_ms']:g} ms one request at a time "
            f"({UTILISATION['days']} days, every room, each group_by; issue 15)",
            ut["p99_ms"], UTILISATION["p99_ms"], ut["p99_ms"] < UTILISATION["p99_ms"],
            f"{ut['requests']} requests over {ut['reservations']:,} reservations, {ut['rooms']} "
            "rooms; p99 by group_by " + ", ".join(f"{g} {v['p99_ms']:.1f} ms" for g, v in
                                                  ut["by_group"].items()))
        if self.only:
            self.report["targets"] = out
            return
        c = self.connections
        b = self.report["meta"]["baseline"]
        for name, factor in BASELINE_FACTORS.items():
            r = sc[name]["ratios"]["direct_vs_baseline"]
            add(f"{name} direct >= {factor:g}x baseline req/s at {c} connections", r, factor,
                r is not None and r >= factor,
                f"baseline {(b.get('describe') or b.get('commit') or 'missing')[:40]}"
                + ("" if (b.get("scale"), b.get("connections")) in
                   ((None, None), (self.scale, c)) else
                   f", measured at scale {b.get('scale')}, {b.get('connections')} connections:"
                   " not compared"))
        for name in SCENARIOS:
            single = SCENARIOS[name].get("p99_single_ms")
            if single:
                p99 = sc[name]["single"]["p99_ms"]
                add(f"{name} direct p99 <= {single:g} ms one request at a time (1 connection)",
                    p99, single, p99 <= single,
                    f"p99 {sc[name]['direct']['p99_ms']:.1f} ms at {c} connections")
                continue
            p99 = sc[name]["direct"]["p99_ms"]
            write = name in ("create", "conflict_storm")
            limit = t["p99_create_ms"] if write else t["p99_read_ms"]
            add(f"{name} direct p99 <= {limit:g} ms at {c} connections", p99, limit,
                p99 <= limit,
                "every client the same room row: serialised by design" if name ==
                "conflict_storm" else "")
        for name in SCENARIOS:
            if not SCENARIOS[name]["pgbench"] or SCENARIOS[name].get("issue"):
                continue
            m = sc[name]["pgbench_minimal"]
            r = sc[name]["ratios"]["direct_vs_pgbench_minimal"]
            add(f"{name} >= {t['vs_minimal_sql']:.0%} of pgbench minimal SQL (best client "
                f"count)", r, t["vs_minimal_sql"], r is not None and r >= t["vs_minimal_sql"],
                f"minimal {m['rps']:.0f}/s at {m['clients']} clients; endpoint's own SQL "
                f"{sc[name]['pgbench']['rps']:.0f}/s at {sc[name]['pgbench']['clients']}")
        for name in SCENARIOS:
            r = sc[name]["ratios"]["gateway_vs_direct"]
            add(f"{name} through the gateway >= {t['gateway_vs_direct']:.0%} of direct", r,
                t["gateway_vs_direct"], r is not None and r >= t["gateway_vs_direct"])
        for name, v in self.report["explain_feeds"].items():
            add(f"{name} plan reads {v['index']} (issue 14)", v["uses_index"], True,
                v["uses_index"], "EXPLAIN (ANALYZE) of the statement the feed sent")
        search = sc["room_search"]
        idle = search["idle"]
        add(f"room_search p99 one request at a time < {SEARCH_TARGETS['idle_p99_ms']:g} ms "
            "(issue 12)", idle["p99_ms"], SEARCH_TARGETS["idle_p99_ms"],
            idle["p99_ms"] < SEARCH_TARGETS["idle_p99_ms"],
            f"{idle['requests']} requests, p50 {idle['p50_ms']} ms")
        same = search["pgbench_at_connections"]
        r = ratio(search["direct"], same)
        add(f"room_search >= {SEARCH_TARGETS['vs_same_sql']:.0%} of pgbench of the same SQL at "
            f"{c} clients (issue 12)", r, SEARCH_TARGETS["vs_same_sql"],
            r is not None and r >= SEARCH_TARGETS["vs_same_sql"],
            f"pgbench {same['rps']:.0f}/s at {same['clients']} clients; minimal SQL "
            f"{search['pgbench_minimal']['rps']:.0f}/s at {search['pgbench_minimal']['clients']}")
        series = self.report["series_create"]
        top = series["runs"][-1]
        add(f"series_create p99 <= {SERIES['p99_ms']:g} ms at {top['clients']} clients "
            f"({SERIES['rule']}, issue 13)", top["series"]["p99_ms"], SERIES["p99_ms"],
            top["series"]["p99_ms"] <= SERIES["p99_ms"],
            f"p50 {top['series']['p50_ms']:.1f} ms; {series['requests_per_run']} series")
        one = series["runs"][0]
        r = one["series_p50_vs_52_singles"]
        add(f"series_create p50 <= {SERIES['vs_singles']:g} x 52 single bookings' p50 at "
            f"{one['clients']} client (issue 13)", r, SERIES["vs_singles"],
            r <= SERIES["vs_singles"],
            f"series {one['series']['p50_ms']:.1f} ms, single {one['single']['p50_ms']:.2f} ms")
        storm = sc["conflict_storm"]
        created = (storm["direct"].get("created"), storm["gateway"].get("created"))
        add("conflict storm: exactly one 201 (direct, gateway)", list(created), 1,
            created == (1, 1))
        for svc, st in self.report["rss"].items():
            mb = st.get("VmHWM", 0) / 1024.0
            add(f"{svc} peak RSS < {t['rss_mb']:.0f} MB at {c} connections", round(mb, 1),
                t["rss_mb"], mb < t["rss_mb"])
        for svc in SERVICES:
            for label, bk in ((svc, self.report["backends"][svc]),
                              (f"{svc} (mail on)", self.report["backends"][svc].get("mail_on"))):
                if not bk:
                    continue
                add(f"{label} PostgreSQL backends <= pool + dedicated sessions",
                    bk["max_backends"], bk["limit"],
                    bk["limit"] is not None and bk["max_backends"] <= bk["limit"],
                    f"pool {pool_text(bk['pool_size'])} + {bk['dedicated_sessions']} dedicated"
                    + (f" ({bk['mail_senders']} mail senders)" if "mail_senders" in bk else "")
                    + (f", x {self.replicas} replicas" if self.replicas > 1 else "")
                    + f"; most during '{bk['worst_phase']}'")
        iv = self.report["invitations"]
        d = iv["delivery"]
        add("invitations: every message queued by the mail-on bookings sent once (issue 14)",
            d["sent"], d["queued"], d["queued"] > 0 and d["sent"] == d["queued"]
            and d["queued"] == iv["on"]["recipients"],
            f"{iv['on']['recipients']} recipients of {iv['on']['booked']} bookings; "
            f"{d['failed']} failed, {d['pending']} pending after {d['drain_wait_s']} s; "
            f"bookings with mail on {fmt_ratio(iv['rps_on_vs_off'])} of mail off's req/s")
        for svc, st in self.report["starvation"].items():
            add(f"{svc}: every one of {st['connections']} keep-alive clients served",
                st["min_per_connection"], 1, st["min_per_connection"] >= 1,
                f"{st['starved_connections']} starved; per connection median "
                f"{st['median_per_connection']}, max {st['max_per_connection']}")
        a = self.report["attack"]
        add(f"gateway p99 delay with {a['idle']} idle + {a['slowloris']} slowloris <= "
            f"{t['attack_delay_ms']:g} ms", a["p99_delay_ms"], t["attack_delay_ms"],
            a["p99_delay_ms"] <= t["attack_delay_ms"] and not a["under"]["errors"],
            f"p99 {a['calm']['p99_ms']:.1f} -> {a['under']['p99_ms']:.1f} ms, errors "
            f"{a['under']['errors']}")
        sil = self.report["silent_connection"]
        for svc, v in sil["closed_after_s"].items():
            add(f"{svc}: a connection that sends nothing is closed within "
                f"{t['silent_close_s']:g} s", v, t["silent_close_s"],
                v is not None and v <= t["silent_close_s"],
                "" if v is not None else f"still open after {sil['cap_seconds']:g} s")
        rows = self.report["scaling"]["availability"]
        if len(rows) >= 2:
            flat = rows[-1]["direct"]["rps"] / max(1e-9, rows[0]["direct"]["rps"])
            add(f"availability flat from {rows[0]['reservations']:,} to "
                f"{rows[-1]['reservations']:,} reservations (rate kept >= "
                f"{t['availability_flat']:.0%})", round(flat, 2), t["availability_flat"],
                flat >= t["availability_flat"],
                f"p50 {rows[0]['direct']['p50_ms']:.2f} -> {rows[-1]['direct']['p50_ms']:.2f} ms")
        self.report["targets"] = out

    def table(self, previous):
        lines = []
        m = self.report["meta"]
        if self.only:
            lines.append(f"make bench, {self.only} alone (BENCH_ONLY), {self.replicas} replica(s) "
                         f"of each service — scale {m['scale']} "
                         f"({m['sizes']['rooms']:,} rooms, "
                         f"{self.report['seed'].get('reservations', 0):,} reservations), "
                         f"{m['cpus']} CPUs shared by everything")
            if self.only == "utilisation":
                lines.extend(self.utilisation_table())
            elif self.only == "replicas":
                lines.extend(self.replicas_table())
            else:
                fr = self.report["find_a_room"]
                lines.append(f"== find a room, one request at a time after VACUUM (ANALYZE) and "
                             f"CHECKPOINT ({self.report['meta']['quiesce_seconds']} s)")
                for k, v in fr.items():
                    lines.append(f"  {k:12} {v['requests']} requests, p50 {v['p50_ms']:.2f} / "
                                 f"p99 {v['p99_ms']:.2f} / max {v['max_ms']:.2f} ms")
            lines.append("")
            lines.append("== targets")
            lines.extend(self.target_lines())
            return "\n".join(lines)
        lines.append(f"make bench — scale {m['scale']} ({m['sizes']['rooms']:,} rooms, "
                     f"{self.report['seed'].get('reservations', 0):,} reservations, "
                     f"{m['sizes']['users']:,} users), {m['seconds_per_run']} s per run, "
                     f"{m['connections']} connections, wrk -t{m['wrk_threads']}, "
                     f"NUM_THREADS={m['service_num_threads']}, {m['cpus']} CPUs shared by "
                     f"everything")
        b = m.get("baseline") or {}
        lines.append(f"baseline: {b.get('describe') or b.get('commit') or 'none'} measured "
                     f"{b.get('measured') or '-'} (scale {b.get('scale') or '-'}, "
                     f"{b.get('seconds_per_run') or '-'} s per run, "
                     f"{b.get('connections') or '-'} connections); pgbench ceilings: best of "
                     f"{m.get('sweep_clients')} clients, {m.get('ceiling_seconds')} s each")
        hdr = f"  {'':28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  ratio"
        prev = (previous or {}).get("scenarios", {})
        for name, res in self.report["scenarios"].items():
            lines.append("")
            lines.append(f"== {name}: {res['title']} [{res['service']}]")
            lines.append(hdr)
            r = res["ratios"]
            rows = [("direct", res["direct"],
                     f"{fmt_ratio(r['direct_vs_pgbench_minimal'])} of minimal SQL, "
                     f"{fmt_ratio(r['direct_vs_pgbench'])} of same SQL, "
                     f"{fmt_ratio(r['direct_vs_http_ceiling'])} of nginx fixed body"),
                    ("gateway", res["gateway"], f"{fmt_ratio(r['gateway_vs_direct'])} of direct"
                     + ("; answered per replica " + " / ".join(
                         map(str, res["gateway"]["answered_per_replica"]))
                        if res["gateway"].get("answered_per_replica") else ""))]
            rows[1:1] = self.replica_rows(res["direct"])
            if "single" in res:
                rows.append(("direct, 1 connection", res["single"], "one request at a time"))
            if "gateway_keepalive" in res:
                rows.append(("gateway+upstream keepalive", res["gateway_keepalive"],
                             f"{fmt_ratio(r['gateway_keepalive_vs_direct'])} of direct "
                             "(experiment)"))
            if res.get("baseline"):
                factor = BASELINE_FACTORS.get(name)
                rows.append(("baseline direct", res["baseline"],
                             f"now x{fmt_ratio(r['direct_vs_baseline'])}"
                             + (f" (target x{factor:g})" if factor else "")))
            if "pgbench_minimal" in res:
                pm, pg = res["pgbench_minimal"], res["pgbench"]
                rows.append((f"pgbench minimal SQL c={pm['clients']}", pm,
                             "ceiling (database, cheapest SQL)"))
                rows.append((f"pgbench same SQL c={pg['clients']}", pg,
                             "ceiling (database, the endpoint's SQL)"))
            for label, run, note in rows:
                lines.append(f"  {label:28}{run['rps']:>9.0f}{run['p50_ms']:>9.2f}"
                             f"{run['p99_ms']:>9.2f}{run['errors']:>8}  {note}")
            cpu = res["direct"]["cpu_percent"]
            svc = res["service"]
            extra = ""
            if name in prev and prev[name].get("direct"):
                p = prev[name]["direct"]["rps"]
                extra = f"; previous run direct {p:.0f}/s ({res['direct']['rps'] / p - 1:+.0%})" \
                    if p else ""
            if name == "conflict_storm":
                extra += f"; created {res['direct'].get('created')} (direct), " \
                         f"{res['gateway'].get('created')} (gateway), the rest 409"
            lines.append(f"  CPU during direct run: {svc} {cpu.get(svc, 0):.0f}%, postgres "
                         f"{cpu.get('postgres', 0):.0f}%, wrk {cpu.get('client', 0):.0f}%, "
                         f"processes outside the bench {cpu.get('other', 0):.0f}% (of "
                         f"{100 * (os.cpu_count() or 1)}%); peak RSS "
                         + ", ".join(f"{k.split('-')[0]} {v.get('VmHWM', 0) / 1024:.1f} MB"
                                     for k, v in res["rss_after"].items()) + extra)
        lines.extend(self.utilisation_table())
        lines.extend(self.series_table())
        lines.extend(self.invitations_table())
        lines.append("")
        lines.append("== scaling (direct, reservations in the database when measured)")
        lines.append(f"  {'':14}{'reservations':>14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
                     f"{'pgbench/s':>11}{'ratio':>8}")
        for name, rows in self.report["scaling"].items():
            for row in rows:
                d, p = row["direct"], row["pgbench"]
                lines.append(f"  {name:14}{row['reservations']:>14,}{d['rps']:>9.0f}"
                             f"{d['p50_ms']:>9.2f}{d['p99_ms']:>9.2f}{p['rps']:>11.0f}"
                             f"{fmt_ratio(row['ratio_vs_pgbench']):>8}")
        lines.append("")
        lines.append("== peak RSS (VmHWM) at the end: " + ", ".join(
            f"{k} {v.get('VmHWM', 0) / 1024:.1f} MB ({v.get('Threads', 0)} threads)"
            for k, v in self.report["rss"].items()))
        sqlc = self.report["sql_check"]
        lines.append("== pgbench scripts vs the statements the services sent: " + ", ".join(
            f"{k} {sql_check_text(v)}" for k, v in sqlc.items()))
        lines.append("")
        lines.append("== statements per request (pg_stat_statements calls; BEGIN/COMMIT count, "
                     "a pipelined batch counts each statement)")
        for name, rt in self.report["round_trips"].items():
            lines.append(f"  {name:18}{rt['per_request']:>6.2f} "
                         f"(raw {rt['raw_per_request']:.2f})  ("
                         + "; ".join(f"{x['per_request']:g}x {x['query'][:60]}"
                                     for x in rt["statements"][:4]) + ")")
        lines.append("")
        lines.append("== EXPLAIN (ANALYZE, BUFFERS) of the room-list statements")
        for ex in self.report["explain_room_list"] or [{"sql": "(no statement sent: served "
                                                               "from the cache)", "params": [],
                                                        "plan": []}]:
            lines.append(f"  -- {ex['sql'][:200]}")
            lines.append(f"  -- parameters: {', '.join(ex['params'] or [])}")
            lines.extend("     " + x for x in ex["plan"])
        lines.append("")
        lines.append("== EXPLAIN (ANALYZE, BUFFERS) of the calendar feeds' statements (issue 14)")
        for name, v in self.report["explain_feeds"].items():
            lines.append(f"  {name}: {'reads' if v['uses_index'] else 'does NOT read'} "
                         f"{v['index']}; {v.get('events', '?')} events, {v.get('bytes', 0):,} "
                         "bytes" + (f" (organised {v['organised']}, invited {v['invited']})"
                                    if "invited" in v else ""))
            for ex in v["explain"]:
                lines.extend("     " + x for x in ex["plan"])
        lines.append("")
        bk = self.report["backends"]
        lines.append(f"== PostgreSQL backends per service (pg_stat_activity, {bk.get('samples')} "
                     "samples every 0.5 s)")
        for svc in SERVICES:
            v = bk[svc]
            for label, x in ((svc, v), (f"{svc} with mail on", v.get("mail_on"))):
                if x:
                    lines.append(f"  {label:20} max {x['max_backends']:>4} (at start "
                                 f"{x['at_start']}); pool "
                                 f"{x['pool_size'] if x['pool_size'] is not None else '-'} + "
                                 f"{x['dedicated_sessions']} dedicated"
                                 + (f", x {self.replicas} replicas" if self.replicas > 1 else "")
                                 + f" = {x['limit'] or '-'}; "
                                 f"most during '{x['worst_phase']}'")
        lines.append("")
        lines.append("== starvation: 256 keep-alive clients per service, answers per connection")
        for svc, v in self.report["starvation"].items():
            lines.append(f"  {svc:20} {v['rps']:>8.0f} req/s  min {v['min_per_connection']} "
                         f"median {v['median_per_connection']} max {v['max_per_connection']}, "
                         f"{v['starved_connections']} starved, errors {v['errors'] or 0}")
        a = self.report["attack"]
        lines.append(f"== gateway under {a['idle']} idle + {a['slowloris']} slowloris "
                     f"connections: steady client p99 {a['calm']['p99_ms']:.2f} ms alone, "
                     f"{a['under']['p99_ms']:.2f} ms under attack (delay {a['p99_delay_ms']:.2f} "
                     f"ms; {a['calm']['rps']:.0f} -> {a['under']['rps']:.0f} req/s, errors "
                     f"{a['under']['errors']}); attackers {a['attackers']}")
        sil = self.report["silent_connection"]
        lines.append("== a connection that sends nothing, directly on a service port, is closed "
                     "after: " + ", ".join(
                         f"{k} " + (f"> {sil['cap_seconds']:g} s (still open)" if v is None
                                    else f"{v:.1f} s")
                         for k, v in sil["closed_after_s"].items()))
        lines.append("")
        lines.append("== targets")
        lines.extend(self.target_lines())
        return "\n".join(lines)

    @staticmethod
    def replica_rows(run):
        """Table rows of a direct run spread over replicas (wrk_spread): one per replica."""
        return [(f"  replica {i + 1} ({r['connections']} conn.)", r, r["url"])
                for i, r in enumerate(run.get("per_replica", []))]

    def replicas_table(self):
        """BENCH_ONLY=replicas: each scenario directly (the sum, then each replica) and through
        the gateway, with the CPU of the services and PostgreSQL."""
        lines = [f"  {self.replicas} replica(s) of each service, {self.connections} connections "
                 f"in all, {self.seconds} s per run; direct = the sum over the replicas (p50 "
                 "weighted by requests, p99 the worst replica's); gateway = balanced over all"]
        hdr = f"  {'':28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  CPU % (of " \
              f"{100 * (os.cpu_count() or 1)}): service, postgres, gateway, wrk, others"
        for name, res in self.report["scenarios"].items():
            lines.append("")
            lines.append(f"== {name}: {res['title']} [{res['service']}]")
            lines.append(hdr)
            rows = [("direct", res["direct"], None)] + self.replica_rows(res["direct"]) + \
                [("gateway", res["gateway"], None)]
            spread = res["gateway"].get("answered_per_replica")
            if spread:
                rows.append(("  answered per replica", None, " / ".join(map(str, spread))))
            for label, run, note in rows:
                if run is None:
                    lines.append(f"  {label:28}{note}")
                    continue
                cpu = run.get("cpu_percent")
                note = "" if not cpu else (
                    f"{cpu.get(res['service'], 0):.0f}, {cpu.get('postgres', 0):.0f}, "
                    f"{cpu.get('gateway', 0):.0f}, {cpu.get('client', 0):.0f}, "
                    f"{cpu.get('other', 0):.0f}")
                lines.append(f"  {label:28}{run['rps']:>9.0f}{run['p50_ms']:>9.2f}"
                             f"{run['p99_ms']:>9.2f}{run['errors']:>8}  {note}")
        return lines

    def target_lines(self):
        lines = []
        for t in self.report["targets"]:
            v = t["value"]
            vs = "n/a" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
            lines.append(f"  [{'ok' if t['ok'] else 'FAIL'}] {t['target']}: {vs}"
                         + (f" ({t['note']})" if t["note"] else ""))
        return lines

    def utilisation_table(self):
        """The utilisation report's section of the text report (issue 15)."""
        ut = self.report["utilisation"]
        lines = ["", f"== utilisation: GET /reports/utilisation, {ut['days']} days, every room "
                     f"({ut['rooms']}, {ut['with_opening_hours']} with opening hours), one "
                     f"request at a time, {ut['reservations']:,} reservations "
                     f"[reservation-service, direct]",
                 f"  {'':28}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  rows, bytes"]
        for g, v in ut["by_group"].items():
            lines.append(f"  {'group_by=' + g:28}{v['requests']:>9}{v['p50_ms']:>9.1f}"
                         f"{v['p99_ms']:>9.1f}{v['max_ms']:>9.1f}  {v['rows']} rows, "
                         f"{v['bytes']:,} bytes")
        pg = ut.get("pgbench")
        if pg:
            lines.append(f"  {'pgbench same SQL c=1':28}{pg['requests']:>9}{pg['p50_ms']:>9.1f}"
                         f"{pg['p99_ms']:>9.1f}{pg['max_ms']:>9.1f}  the statement alone "
                         f"({pg['errors']} errors)")
        lines.append(f"  statement checked against what the service sent: "
                     f"{sql_check_text(self.report['sql_check']['utilisation'])}")
        for g, ex in ut["explain"].items():
            lines.append(f"  -- EXPLAIN (ANALYZE, BUFFERS), group_by={g}, parameters "
                         f"{', '.join(ex['params'])}")
            lines.extend("     " + x for x in ex["plan"])
        return lines

    def series_table(self):
        """The series_create section of the text report (issue 13)."""
        sc = self.report["series_create"]
        lines = ["", f"== series_create: {sc['title']} [{sc['service']}], {sc['requests_per_run']}"
                     f" requests per run, {sc['reservations_before']:,} reservations before",
                 f"  {'':28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  ratio"]
        for row in sc["runs"]:
            c = row["clients"]
            se = row["series"]
            lines.append(f"  {'series c=' + str(c):28}{se['rps']:>9.1f}{se['p50_ms']:>9.2f}"
                         f"{se['p99_ms']:>9.2f}{se['errors']:>8}  p50 "
                         f"{row['series_p50_vs_52_singles']:.3f} x 52 singles (p99 "
                         f"{row['series_p99_vs_52_singles']:.3f}); "
                         f"{se.get('occurrences_per_s', 0):.0f} occurrences/s")
            si = row["single"]
            lines.append(f"  {'single c=' + str(c):28}{si['rps']:>9.1f}{si['p50_ms']:>9.2f}"
                         f"{si['p99_ms']:>9.2f}{si['errors']:>8}  the same client, one "
                         "reservation each")
        db = sc["database"]
        lines.append(f"  database per request at 1 client (pg_stat_statements): series "
                     f"{db['series']['ms_per_request']:.2f} ms in "
                     f"{db['series']['per_request']:g} statements, single "
                     f"{db['single']['ms_per_request']:.3f} ms in "
                     f"{db['single']['per_request']:g} (series {db['series_vs_52_singles']:.3f}"
                     " x 52 singles)")
        return lines

    def invitations_table(self):
        """The invitations section of the text report (issue 14)."""
        iv = self.report["invitations"]
        if not iv:
            return []
        d, on, off = iv["delivery"], iv["on"], iv["off"]
        lines = ["", f"== invitations: {iv['title']} [reservation-service, direct], "
                     f"{iv['reservations_before']:,} reservations before",
                 f"  {'':28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  "
                 "messages queued"]
        for label, run, note in (("mail off", off, ""),
                                 ("mail on (SMTP_URL: Mailpit)", on,
                                  f"; x{fmt_ratio(iv['rps_on_vs_off'])} req/s, "
                                  f"x{iv['p99_on_vs_off']:.2f} p99 of mail off")):
            lines.append(f"  {label:28}{run['rps']:>9.0f}{run['p50_ms']:>9.2f}"
                         f"{run['p99_ms']:>9.2f}{run['errors']:>8}  {run['mail_queued']} for "
                         f"{run['booked']} bookings ({run['recipients']} recipients){note}")
        cpu = on["cpu_percent"]
        lines.append(f"  CPU with mail on: reservation-service "
                     f"{cpu.get('reservation-service', 0):.0f}% (its "
                     f"{iv['senders'].get('mail', '?')} mail senders included), postgres "
                     f"{cpu.get('postgres', 0):.0f}%, Mailpit {cpu.get('mailpit', 0):.0f}%, wrk "
                     f"{cpu.get('client', 0):.0f}%, outside the bench {cpu.get('other', 0):.0f}% "
                     f"(mail off: reservation-service "
                     f"{off['cpu_percent'].get('reservation-service', 0):.0f}%, postgres "
                     f"{off['cpu_percent'].get('postgres', 0):.0f}%)")
        lines.append(f"  sending: {d['sent']} of {d['queued']} sent ({d['failed']} failed, "
                     f"{d['pending']} pending, {d['retried']} retried), "
                     f"{d['sent_while_booking']} while the bookings went on; "
                     f"{d['sent_per_s'] or 0:.0f} messages/s from the first queued to the last "
                     f"sent; queued to sent p50 {d['queued_to_sent_p50_s']} s, p99 "
                     f"{d['queued_to_sent_p99_s']} s, max {d['queued_to_sent_max_s']} s; all "
                     f"sent {d['drain_wait_s']} s after the run")
        cpu = d.get("cpu_percent") or {}
        lines.append(f"  CPU while only sending (after the run): reservation-service "
                     f"{cpu.get('reservation-service', 0):.0f}%, postgres "
                     f"{cpu.get('postgres', 0):.0f}%, Mailpit {cpu.get('mailpit', 0):.0f}%, "
                     f"outside the bench {cpu.get('other', 0):.0f}%")
        return lines

    def write(self):
        os.makedirs(self.out_dir, exist_ok=True)
        # BENCH_ONLY=replicas and runs with replicas keep reports of their own (REPLICAS=1 and
        # 2 side by side), e.g. latest-full-replicas2.txt.
        tag = self.scale + (f"-replicas{self.replicas}"
                            if self.only == "replicas" or self.replicas > 1 else "")
        latest = os.path.join(self.out_dir, f"latest-{tag}.json")
        previous = None
        if os.path.exists(latest):
            try:
                previous = json.load(open(latest))
            except ValueError:
                previous = None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = os.path.join(self.out_dir, f"bench-{stamp}-{tag}.json")
        with open(path, "w") as f:
            json.dump(self.report, f, indent=1, sort_keys=False)
        shutil.copyfile(path, latest)
        text = self.table(previous)
        with open(os.path.join(self.out_dir, f"latest-{tag}.txt"), "w") as f:
            f.write(text + "\n")
        print(text, flush=True)
        log(f"report: {path} (and {latest})")
        return path

    def verify(self, path):
        """make bench-smoke: the report exists and every scenario ran without unexpected
        errors."""
        report = json.load(open(path))
        problems = []
        if self.only == "find_a_room":
            return bool(report.get("find_a_room"))
        if self.only == "replicas":
            for name in REPLICAS_SCENARIOS:
                res = report["scenarios"].get(name) or {}
                for via in ("direct", "gateway"):
                    run = res.get(via)
                    if not run or run["requests"] <= 0 or run["errors"]:
                        problems.append(f"{name} {via}: " + (
                            f"{run['requests']} requests, {run['errors']} errors "
                            f"{run['error_detail']}" if run else "missing"))
                spread = (res.get("direct") or {}).get("per_replica", [])
                if self.replicas > 1 and (len(spread) != self.replicas or
                                          any(r["requests"] <= 0 for r in spread)):
                    problems.append(f"{name} direct: not every replica answered: "
                                    f"{[r['requests'] for r in spread]}")
            for p in problems:
                log(f"CHECK FAILED: {p}")
            return not problems
        ut = report["utilisation"]
        if not ut or ut["errors"] or ut["requests"] <= 0 or len(ut["by_group"]) != 3:
            problems.append(f"utilisation: {ut and {k: ut[k] for k in ('requests', 'errors')}}")
        elif not ut.get("pgbench") or ut["pgbench"]["errors"] or not ut["explain"] or any(
                not e["plan"] or e["plan"][0].startswith("EXPLAIN failed")
                for e in ut["explain"].values()):
            problems.append("utilisation: pgbench or EXPLAIN missing or failed")
        if report["sql_check"].get("utilisation", {}).get("same_as_service") is not True:
            problems.append("utilisation: utilisation.pgbench does not run the service's SQL")
        if self.only:
            for p in problems:
                log(f"CHECK FAILED: {p}")
            return not problems
        for name, sc in SCENARIOS.items():
            res = report["scenarios"].get(name)
            if not res:
                problems.append(f"{name}: missing")
                continue
            kinds = ["direct", "gateway", "http_ceiling"] + (["pgbench", "pgbench_minimal"]
                                                             if sc["pgbench"] else [])
            kinds += ["single"] if sc.get("p99_single_ms") else []
            for kind in kinds + (["gateway_keepalive"] if "gateway_keepalive" in res else []):
                run = res.get(kind)
                if not run:
                    problems.append(f"{name} {kind}: missing")
                elif run["requests"] <= 0 or run["errors"]:
                    problems.append(f"{name} {kind}: {run['requests']} requests, "
                                    f"{run['errors']} errors {run.get('error_detail')}")
        series = report["series_create"]
        for row in series.get("runs") or [{"clients": "-"}]:
            for kind in ("series", "single"):
                run = row.get(kind)
                if not run or run["requests"] <= 0 or run["errors"]:
                    problems.append(f"series_create {kind} c={row['clients']}: "
                                    + (f"{run['requests']} requests, {run['errors']} errors "
                                       f"{run['codes']} {run['error_detail']}" if run
                                       else "missing"))
        for kind in ("series", "single"):
            if not (series.get("database") or {}).get(kind, {}).get("per_request"):
                problems.append(f"series_create: no statements of a {kind} create measured")
        for name in ("availability", "create"):
            if len(report["scaling"][name]) < 2:
                problems.append(f"scaling {name}: fewer than two sizes")
        if any(v["same_as_service"] is False for v in report["sql_check"].values()):
            problems.append("a pgbench script no longer runs the service's SQL")
        for name in BASELINE_FACTORS:
            rt = report["round_trips"].get(name)
            if not rt or rt["requests"] <= 0:
                problems.append(f"round trips {name}: not measured")
        for ex in report["explain_room_list"]:
            if not ex["plan"] or ex["plan"][0].startswith("EXPLAIN failed"):
                problems.append(f"EXPLAIN failed: {ex['plan'][:1]} for {ex['sql'][:80]}")
        for name in ("feed_room", "feed_me"):
            ex = report["explain_feeds"].get(name)
            if not ex or not ex["explain"]:
                problems.append(f"EXPLAIN {name}: no statement captured")
            elif any(not e["plan"] or e["plan"][0].startswith("EXPLAIN failed")
                     for e in ex["explain"]):
                problems.append(f"EXPLAIN {name} failed: {ex['explain'][0]['plan'][:1]}")
        bk = report["backends"]
        if bk.get("samples", 0) < 2 or not all(bk[s]["max_backends"] > 0 for s in SERVICES):
            problems.append(f"backends not sampled: {bk}")
        iv = report["invitations"]
        for leg in ("off", "on"):
            run = iv.get(leg)
            if not run or run["requests"] <= 0 or run["errors"] or not run["booked"]:
                problems.append(f"invitations mail {leg}: " + (
                    f"{run['requests']} requests, {run['errors']} errors "
                    f"{run['error_detail']}, {run['booked']} booked" if run else "missing"))
        if iv.get("off") and iv["off"]["mail_queued"]:
            problems.append(f"invitations: mail off queued {iv['off']['mail_queued']} messages")
        d = iv.get("delivery") or {}
        if iv.get("on") and not (d.get("queued") == d.get("sent") == iv["on"]["recipients"]
                                 and d["queued"] > 0):
            problems.append(f"invitations: {iv['on']['recipients']} recipients, messages {d}")
        if not (bk.get("reservation-service") or {}).get("mail_on", {}).get("mail_senders"):
            problems.append("backends: reservation-service's mail senders not counted")
        for svc in SERVICES:
            st = report["starvation"].get(svc)
            if not st or st["completed"] <= 0:
                problems.append(f"starvation {svc}: no answer at all ({st})")
        a = report["attack"]
        if not a or a["calm"]["requests"] <= 0 or a["under"]["requests"] <= 0:
            problems.append(f"attack: the steady client got no answer ({a})")
        elif a["calm"]["errors"]:
            problems.append(f"attack: the steady client had errors without an attack {a['calm']}")
        if len(report["silent_connection"].get("closed_after_s", {})) != len(SERVICES):
            problems.append("silent connection: not measured")
        for p in problems:
            log(f"CHECK FAILED: {p}")
        return not problems

    def stop(self):
        if self.nginx:
            self.nginx.stop()
        if self.mailpit:
            self.mailpit.stop()
        self.stack.stop()
        if self.keep:
            log(f"work directory kept: {self.stack.workdir}")
        else:
            self.stack.cleanup()


LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[\d+\] (.*)$")
LOG_STATEMENT = re.compile(r"^(?:db=(\S*) app=(\S*) )?(?:LOG|DETAIL):  "
                           r"(?:(?:execute [^:\n]*|statement): (.*)|parameters: (.*))$", re.S)
LOG_PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")


def parse_pg_log(text):
    """The statements in a stretch of the server log (log_statement = all): a list of
    {db, app, sql, params}, params the literals of the DETAIL line that follows an execute.
    Matches "execute <unnamed>:", any named prepared statement ("execute s0123abcd:") and
    "statement:" (simple protocol); a message's further lines start with a tab."""
    entries, cur = [], None
    for line in text.split("\n"):
        if line.startswith("\t") and cur is not None:
            cur.append(line[1:])
            continue
        m = LOG_ENTRY.match(line)
        if m:
            cur = [m.group(1)]
            entries.append(cur)
        else:
            cur = None
    out = []
    for lines in entries:
        m = LOG_STATEMENT.match("\n".join(lines))
        if not m:
            continue
        if m.group(3) is not None:
            out.append({"db": m.group(1), "app": m.group(2), "sql": m.group(3), "params": None})
        elif out and out[-1]["params"] is None:
            params = sorted((int(k), v) for k, v in LOG_PARAM.findall(m.group(4)))
            out[-1]["params"] = [v for _, v in params]
    return out


def answered(svc):
    """The requests svc answered so far, by its /metrics (http_requests_total, all routes)."""
    text = requests.get(svc.url + "/metrics", timeout=5).text
    return sum(int(float(v)) for v in
               re.findall(r"^\w*http_requests_total\{.*\} ([0-9.e+]+)$", text, re.M))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def ratio(a, b):
    if not a or not b or not b.get("rps"):
        return None
    return round(a["rps"] / b["rps"], 3)


def sql_check_text(v):
    if v["same_as_service"] is None:
        return "no SQL sent by the request"
    return "same" if v["same_as_service"] else "DRIFTED"


def request_statements(rows, quiet_rows, n):
    """Of pg_stat_statements rows [(query, calls, ms)] taken while n requests ran: the
    statements the requests ran (at least every other request, and not while no request ran:
    the rest is the services' background work, e.g. the outbox publisher sending the events),
    their calls and execution ms per request, and the top statements."""
    mine = [(q, c, ms) for q, c, ms in rows if c >= n / 2 and q not in quiet_rows]
    return {"requests": n, "per_request": round(sum(c for _, c, _ in mine) / n, 2),
            "ms_per_request": round(sum(ms for _, _, ms in mine) / n, 3),
            "statements": [{"query": q[:160], "per_request": round(c / n, 2),
                            "ms_per_call": round(ms / c, 3)}
                           for q, c, ms in sorted(mine, key=lambda x: -x[2])[:8]]}


def pool_text(size):
    return "unknown (no pool_size metric)" if size is None else str(size)


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}"


def git_rev():
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def run_baseline(commit):
    """Measures commit with its own bench: a temporary git worktree, its release build, its
    bench/bench.py at this run's scale, seconds and connections. Writes bench/baseline.json
    (the commit and the direct and gateway figures of each scenario) and returns it."""
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", commit + "^{commit}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    subject = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%s", sha], check=True,
                             capture_output=True, text=True).stdout.strip()
    wt = tempfile.mkdtemp(prefix="mr-bench-base-", dir="/tmp")
    os.rmdir(wt)
    log(f"baseline: {sha[:12]} ({subject[:60]}) in {wt}")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", wt, sha], check=True,
                   stdout=subprocess.DEVNULL)
    try:
        # What is not in git (Kafka's jars, the OIDC test provider's modules, pinned tools).
        for rel in ("kafka/libs", "tests/oidc/node_modules", ".tools"):
            if os.path.exists(os.path.join(ROOT, rel)) and \
                    not os.path.exists(os.path.join(wt, rel)):
                os.symlink(os.path.join(ROOT, rel), os.path.join(wt, rel))
        t0 = time.monotonic()
        subprocess.run(["make", "--no-print-directory", "-C", wt, "-j2", "all"], check=True,
                       stdout=subprocess.DEVNULL)
        log(f"baseline: built in {time.monotonic() - t0:.0f}s; running its bench")
        out = os.path.join(wt, "build", "bench-out")
        env = dict(os.environ, BIN_DIR=os.path.join(wt, "build", "bin"), BENCH_OUT=out)
        for k in ("BENCH_CHECK", "BENCH_BASELINE", "BENCH_SERVICE_THREADS", "BENCH_REPLICAS"):
            env.pop(k, None)
        subprocess.run(["/usr/bin/python3", os.path.join(wt, "bench", "bench.py")], check=True,
                       env=env, cwd=wt)
        scale = os.environ.get("BENCH_SCALE", "full") or "full"
        rep = json.load(open(os.path.join(out, f"latest-{scale}.json")))
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", wt],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(wt, ignore_errors=True)

    def brief(run):
        return None if not run else {k: run.get(k) for k in
                                     ("rps", "requests", "p50_ms", "p90_ms", "p99_ms", "errors")}
    m = rep["meta"]
    base = {
        "commit": sha, "describe": f"{sha[:7]} {subject[:70]}",
        "measured": m.get("started"), "scale": m.get("scale"),
        "seconds_per_run": m.get("seconds_per_run"), "connections": m.get("connections"),
        "service_num_threads": m.get("service_num_threads"), "cpus": m.get("cpus"),
        "reservations": rep.get("seed", {}).get("reservations"),
        "scenarios": {name: {"direct": brief(r.get("direct")), "gateway": brief(r.get("gateway")),
                             "pgbench_same_sql": brief(r.get("pgbench"))}
                      for name, r in rep.get("scenarios", {}).items()},
        "scaling": {name: [{"reservations": row["reservations"],
                            "direct": brief(row["direct"])} for row in rows]
                    for name, rows in rep.get("scaling", {}).items()},
        "rss_kb": {k: v.get("VmHWM") for k, v in rep.get("rss", {}).items()},
        "total_seconds": m.get("total_seconds"),
    }
    with open(BASELINE_FILE, "w") as f:
        json.dump(base, f, indent=1)
        f.write("\n")
    log(f"baseline written to {BASELINE_FILE}")
    return base


def load_baseline():
    try:
        with open(BASELINE_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        log(f"no baseline ({BASELINE_FILE}): ratios to the baseline are n/a")
        return None


def main():
    # scripts/bench.sh bounds the run with timeout(1): SIGTERM still stops the stack.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("wrk", f"{PGBIN}/pgbench", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (make deps)")
    t0 = time.monotonic()
    commit = os.environ.get("BENCH_BASELINE", "").strip()
    baseline = run_baseline(commit) if commit else load_baseline()
    bench = Bench()
    bench.baseline = baseline
    ok = True
    try:
        bench.run()
        bench.evaluate()
        path = bench.write()
        log(f"wall time {time.monotonic() - t0:.0f} s"
            + (" (baseline included)" if commit else ""))
        if bench.check:
            ok = bench.verify(path)
            log("smoke check " + ("passed" if ok else "FAILED"))
    finally:
        bench.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
