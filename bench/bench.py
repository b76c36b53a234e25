#!/usr/bin/env python3
"""make bench: load tests of the suite on loopback, with their ceilings measured in the same run.

Starts the whole stack with the integration harness (tests/integration/harness.py: PostgreSQL,
Kafka, the OIDC provider, the three services from BIN_DIR, the nginx gateway), seeds it (users,
rooms and reservations through SQL in bulk, a sample of rooms and reservations through the API so
that the consumers' copies are consistent), then runs every scenario with wrk and the bench Lua
scripts (bench/lua/), directly and through the gateway, next to its ceilings: pgbench running the
SQL the endpoint runs (bench/sql/*.pgbench) and nginx answering a fixed body of the same size.
Writes build/bench/bench-<time>-<scale>.json (and latest-<scale>.json) and prints a table per
scenario, the scaling table (availability and create at growing reservation counts) and the
targets.

Environment (scripts/bench.sh and mk/bench.mk set them):
  BENCH_SCALE        full (1,000 rooms, 1,000,000 reservations, 10,000 users; stages 10k/100k/1M)
                     or smoke (20 rooms, 2,000 reservations, 50 users) [full]
  BENCH_SECONDS      seconds per run [10]        BENCH_CONNECTIONS  wrk/pgbench clients [64]
  BENCH_WRK_THREADS  wrk -t and pgbench -j [2]   BENCH_SERVICE_THREADS  NUM_THREADS [128]
  BENCH_OUT          report directory [build/bench]
  BENCH_CHECK=1      fail unless every scenario ran with zero unexpected errors (make bench-smoke)
  BENCH_KEEP=1       keep the work directory (logs) under /tmp
  BIN_DIR            the binaries [build/bin]
Every run is bounded by BENCH_SECONDS; nothing leaves loopback.
"""
import contextlib
import datetime
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import psycopg2
import psycopg2.extras
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
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
# and database (None: no SQL ceiling), and the statuses that are not errors.
SCENARIOS = {
    "room_list": dict(title="GET /rooms?min_capacity&equipment&active&limit=20 (filtered list)",
                      service="room", lua="room_list.lua", pgbench="room_list.pgbench",
                      db="room_db"),
    "room_get": dict(title="GET /rooms/{id}", service="room", lua="room_get.lua",
                     pgbench="room_get.pgbench", db="room_db"),
    "availability": dict(title="GET /availability?room_id&date (one room, one day)",
                         service="reservation", lua="availability.lua",
                         pgbench="availability.pgbench", db="reservation_db"),
    "user_reservations": dict(title="GET /reservations?limit=20 (an employee's own)",
                              service="reservation", lua="user_reservations.lua",
                              pgbench="user_reservations.pgbench", db="reservation_db"),
    "create": dict(title="POST /reservations (distinct 15-minute slots across rooms)",
                   service="reservation", lua="create.lua", pgbench="create.pgbench",
                   db="reservation_db", ok=(201,)),
    "conflict_storm": dict(title="POST /reservations, every client the same slot",
                           service="reservation", lua="create.lua", pgbench=None,
                           db="reservation_db", ok=(201, 409)),
}
EQUIPMENT_FILTER = "projector"
DATES = 60          # availability: days of the seeded two years that the requests pick from
SLOTS_PER_DAY = 32  # create: 15-minute slots from 00:00 to 08:00 UTC (the seeded grid is empty)

TARGETS = dict(read_vs_pgbench=0.5, create_vs_pgbench=0.4, gateway_vs_direct=0.7, p99_ms=10.0,
               rss_mb=50.0, availability_flat=0.8)


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
    """pgbench -M extended takes every :name as a variable, also inside string literals
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
    """The harness stack with NUM_THREADS for the bench and room for its database connections:
    each civetweb worker thread keeps its own PostgreSQL connection."""

    def __init__(self, service_threads, max_connections):
        super().__init__()
        self.threads = str(service_threads)
        self.max_connections = max_connections

    def start(self):
        self.pg.start()
        self.psql("postgres", f"ALTER SYSTEM SET max_connections = {self.max_connections}")
        self.pg.stop()
        self.pg.start()
        self.oidc.start()
        self.kafka.start()
        self.user = self.user_service(NUM_THREADS=self.threads)
        self.room = self.room_service(NUM_THREADS=self.threads)
        self.reservation = self.reservation_service(NUM_THREADS=self.threads)
        for svc in (self.user, self.room, self.reservation):
            svc.start()
        self.gateway.start(self.user.port, self.room.port, self.reservation.port)
        return self

    def psql(self, db, sql):
        """One statement as the PostgreSQL superuser (over the cluster's Unix socket)."""
        out = subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/psql", "-X", "-q",
                              "-v", "ON_ERROR_STOP=1", "-h", self.pg.dir, "-p", str(self.pg.port),
                              "-d", db, "-At", "-c", sql], capture_output=True,
                             text=True, timeout=600)
        if out.returncode:
            raise RuntimeError(f"psql {db}: {sql}: {out.stderr}")
        return out.stdout.strip()


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
        self.service_threads = env_int("BENCH_SERVICE_THREADS", 128)
        self.out_dir = os.path.abspath(os.environ.get("BENCH_OUT") or os.path.join(ROOT, "build",
                                                                                   "bench"))
        self.check = os.environ.get("BENCH_CHECK") == "1"
        self.keep = os.environ.get("BENCH_KEEP") == "1"
        if self.service_threads < self.connections:
            log(f"warning: NUM_THREADS {self.service_threads} < {self.connections} connections: "
                "civetweb serves one keep-alive connection per thread, the rest would wait")
        # Each service thread may hold a database connection, pgbench adds its clients.
        max_conn = 3 * self.service_threads + self.connections + 50
        self.stack = BenchStack(self.service_threads, max(200, max_conn))
        self.nginx = None
        self.day0 = int(datetime.datetime.now(datetime.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0).timestamp())
        self.next_day = 1
        self.report = {"meta": {}, "seed": {}, "sql_check": {}, "scenarios": {},
                       "scaling": {"availability": [], "create": []}, "rss": {}, "targets": []}
        self.seeded = 0

    # -- database helpers --

    def db(self, name):
        conn = psycopg2.connect(self.stack.pg.dsn(name))
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
        self.uid_lo, self.uid_hi = users[0][0], users[-1][0]
        # Tokens for (up to) 2,000 of them: the wrk scripts pick one per request; pgbench picks
        # user ids from the same range.
        self.token_users = users[:2000]
        self.uid_hi_tokens = self.token_users[-1][0]
        self.tokens = [harness.forge_token(uid, email=email, name=name, exp_in=6 * 3600)
                       for uid, email, name in self.token_users]

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
        rows = self.query("room_db", "SELECT id, name, capacity, time_zone, active, version "
                                     "FROM rooms WHERE id > %s ORDER BY id", (s["api_rooms"],))
        with self.cursor("reservation_db") as cur:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO rooms (id, name, capacity, time_zone, active, version) VALUES %s",
                rows)
        # The API rooms reach reservation-service through Kafka.
        harness.wait_until(lambda: self.query(
            "reservation_db", "SELECT count(*) FROM rooms WHERE id <= %s",
            (s["api_rooms"],))[0][0] == s["api_rooms"], timeout=60, interval=0.2,
            what="API rooms in reservation_db")
        a = self.query("room_db", "SELECT id, name, capacity, time_zone, active, version "
                                  "FROM rooms ORDER BY id")
        b = self.query("reservation_db", "SELECT id, name, capacity, time_zone, active, version "
                                         "FROM rooms WHERE NOT deleted ORDER BY id")
        assert a == b, "room_db.rooms and reservation_db.rooms differ"
        self.query("reservation_db", "ANALYZE rooms")
        self.rooms = len(a)
        self.active = sum(1 for r in a if r[4])
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
            cur.execute("VACUUM (ANALYZE) reservations")
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
        snap = {
            "user-service": tree_cpu(st.user.proc.pid),
            "room-service": tree_cpu(st.room.proc.pid),
            "reservation-service": tree_cpu(st.reservation.proc.pid),
            "postgres": tree_cpu(pidfile(os.path.join(st.pg.dir, "postmaster.pid")) or 0),
            "gateway": tree_cpu(pidfile(os.path.join(st.gateway.dir, "nginx.pid")) or 0),
            "kafka+oidc": tree_cpu(pidfile(os.path.join(st.kafka.dir, "kafka.pid")) or 0)
            + tree_cpu(pidfile(os.path.join(st.oidc.dir, "oidc.pid")) or 0),
        }
        if self.nginx:
            snap["bench-nginx"] = sum(tree_cpu(p) for p in self.nginx.pids())
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

    def warm(self):
        """Every civetweb worker thread opens its own database connection on its first request
        (SCRAM authentication, a new backend: tens of ms): one short run with a connection per
        thread opens them all before anything is measured."""
        for svc, lua in ((self.stack.room, "room_get.lua"),
                         (self.stack.reservation, "availability.lua")):
            self.wrk(svc.url, lua, connections=self.service_threads, seconds=2)

    def wrk(self, base_url, lua, ok=None, extra_env=None, connections=None, seconds=None):
        env = dict(os.environ, BENCH_DATA=self.lua_data, BENCH_LUA=LUA,
                   BENCH_THREADS=str(self.wrk_threads), BENCH_DAY0=str(self.day0))
        env.update(extra_env or {})
        seconds = seconds or self.seconds
        cmd = ["wrk", f"-t{self.wrk_threads}", f"-c{connections or self.connections}",
               f"-d{seconds}s", "--timeout", "5s", "-s", os.path.join(LUA, lua), base_url]
        c0 = self.cpu_snapshot()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
        c1 = self.cpu_snapshot()
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if out.returncode or not line:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
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
            "cpu_percent": self.cpu_delta(c0, c1),
        }

    def pgbench(self, template, db, defines):
        subst = {"@DATES@": self.dates_case()}
        script, _ = render_pgbench(template, subst)
        wd = os.path.join(self.stack.workdir, "pgbench")
        os.makedirs(wd, exist_ok=True)
        path = os.path.join(wd, template.replace(".pgbench", ".sql"))
        with open(path, "w") as f:
            f.write(script)
        for old in os.listdir(wd):
            if old.startswith("log"):
                os.unlink(os.path.join(wd, old))
        clients = self.connections
        cmd = [f"{PGBIN}/pgbench", "-n", "-M", "extended", "-c", str(clients),
               "-j", str(min(self.wrk_threads, clients)), "-T", str(self.seconds), "-f", path,
               "-l", "--log-prefix", os.path.join(wd, "log")]
        base = dict(rooms=self.rooms, active=self.active, nclients=clients, cnt=0,
                    uid_lo=self.uid_lo, uid_hi=self.uid_hi_tokens, ndates=DATES)
        base.update(defines)
        for k, v in base.items():
            cmd += ["-D", f"{k}={v}"]
        cmd.append(self.stack.pg.dsn(db))
        c0 = self.cpu_snapshot()
        out = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=self.seconds + 120, cwd=wd)
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
            "tool": "pgbench", "rps": round(float(m.group(1)), 1), "requests": processed,
            "seconds": self.seconds, "p50_ms": percentile(lat, 50) / 1000.0,
            "p90_ms": percentile(lat, 90) / 1000.0, "p99_ms": percentile(lat, 99) / 1000.0,
            "max_ms": (lat[-1] / 1000.0) if lat else 0.0,
            "errors": (int(failed_m.group(1)) if failed_m else 0) + aborted,
            "error_detail": {"failed": int(failed_m.group(1)) if failed_m else 0,
                             "aborted_clients": aborted},
            "cpu_percent": self.cpu_delta(c0, c1),
        }

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
        res = self.wrk(self.service_url(scenario, via), sc["lua"], ok=sc.get("ok"),
                       extra_env=env)
        if scenario in ("create", "conflict_storm"):
            self.end_day(runday)
        if scenario == "conflict_storm":
            created = int(res["codes"].get("201", 0))
            res["created"] = created
            if created != 1:
                res["errors"] += abs(created - 1)
                res["error_detail"]["storm_created"] = created
        return res

    def run_pgbench(self, scenario):
        sc = SCENARIOS[scenario]
        defines = {}
        if scenario == "room_list":
            defines = {"equipment": json.dumps([EQUIPMENT_FILTER]), "active": "true",
                       "limit": 21}
        elif scenario == "user_reservations":
            defines = {"status": "confirmed", "limit": 21}
        elif scenario == "create":
            runday = self.take_day()
            defines = {"day0": self.day0, "runday": runday, "purpose": "bench-pgbench",
                       "topic": "reservation_events"}
        res = self.pgbench(sc["pgbench"], sc["db"], defines)
        if scenario == "create":
            self.end_day(runday)
        return res

    def run_fixed(self, scenario):
        return self.wrk(self.nginx.url("ceiling"), "fixed.lua",
                        extra_env={"BENCH_PATH": f"/fixed/{scenario}"})

    def rss(self):
        st = self.stack
        return {name: proc_status(svc.proc.pid) for name, svc in
                (("user-service", st.user), ("room-service", st.room),
                 ("reservation-service", st.reservation))}

    # -- checks of the SQL the ceilings run --

    def check_sql(self):
        """Captures the statements the services run for one request of each scenario (PostgreSQL
        log_statement) and checks that the pgbench templates still run exactly those."""
        st = self.stack
        logfile = os.path.join(st.pg.dir, "log")
        st.psql("postgres", "ALTER SYSTEM SET log_statement = 'all'")
        st.psql("postgres", "SELECT pg_reload_conf()")
        time.sleep(1.0)
        offset = os.path.getsize(logfile)
        tok = harness.bearer(self.tokens[0])
        rs, rm = st.reservation.url, st.room.url
        date = self.dates()[len(self.dates()) // 2]
        gets = [f"{rm}/rooms/3", f"{rm}/rooms?min_capacity=4&equipment={EQUIPMENT_FILTER}"
                                 f"&active=true&limit=20",
                f"{rs}/availability?room_id=3&date={date}", f"{rs}/reservations?limit=20"]
        for url in gets:
            r = requests.get(url, headers=tok, timeout=10)
            assert r.status_code == 200, (url, r.status_code, r.text)
        runday = self.take_day()
        start = self.day0 + runday * 86400
        r = requests.post(f"{rs}/reservations", headers=tok, timeout=10,
                          json={"room_id": 3, "start_time": iso(start),
                                "end_time": iso(start + 900), "purpose": "bench-verify"})
        assert r.status_code == 201, (r.status_code, r.text)
        time.sleep(0.5)
        st.psql("postgres", "ALTER SYSTEM RESET log_statement")
        st.psql("postgres", "SELECT pg_reload_conf()")
        self.end_day(runday)
        with open(logfile, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            seen = set(re.findall(r"(?:execute <unnamed>|statement): (.*)$", f.read(), re.M))
        for name, sc in SCENARIOS.items():
            if not sc["pgbench"]:
                continue
            _, canon = render_pgbench(sc["pgbench"], {"@DATES@": "0"})
            missing = [s for s in canon if s not in seen]
            self.report["sql_check"][name] = {"statements": len(canon),
                                              "same_as_service": not missing}
            if missing:
                log(f"WARNING: {sc['pgbench']} no longer matches what the service runs: "
                    f"{[m[:80] for m in missing]}")
        log("pgbench SQL checked against the statements the services sent: " + ", ".join(
            f"{k} {'ok' if v['same_as_service'] else 'DRIFTED'}"
            for k, v in self.report["sql_check"].items()))

    def sample_bodies(self, extra):
        tok = harness.bearer(self.tokens[0])
        rs, rm = self.stack.reservation.url, self.stack.room.url
        dates = self.dates()
        urls = {"room_list": f"{rm}/rooms?min_capacity=4&equipment={EQUIPMENT_FILTER}"
                             f"&active=true&limit=20",
                "room_get": f"{rm}/rooms/7",
                "availability": f"{rs}/availability?room_id=7&date={dates[len(dates) // 2]}",
                "user_reservations": f"{rs}/reservations?limit=20"}
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
            "service_num_threads": self.service_threads, "bin_dir": harness.BIN_DIR,
            "git": git_rev(), "cpus": os.cpu_count(), "kernel": os.uname().release,
            "postgres_max_connections": self.stack.max_connections,
        }
        log(f"starting the stack (NUM_THREADS={self.service_threads}, binaries {harness.BIN_DIR})")
        self.stack.start()
        log(f"stack up in {time.monotonic() - t_start:.1f}s: gateway {self.stack.gateway.url}")
        self.seed_base()
        extra_bodies = self.api_reservations()
        stages = sorted(set(min(x, s["reservations"]) for x in s["stages"]) |
                        {s["reservations"]})
        for i, upto in enumerate(stages):
            self.seed_reservations(upto)
            if i == 0:
                self.check_sql()
                self.warm()
            if upto != stages[-1]:
                self.scaling_point(upto)
        self.report["seed"]["reservations"] = self.query(
            "reservation_db", "SELECT count(*) FROM reservations")[0][0]
        self.nginx = BenchNginx(self.stack.workdir)
        self.nginx.start(os.path.join(self.stack.gateway.dir, "gateway.conf"),
                         self.sample_bodies(extra_bodies))
        self.warm()
        for name in SCENARIOS:
            self.scenario(name)
        self.scaling_final()
        self.report["rss"] = self.rss()
        self.report["meta"]["total_seconds"] = round(time.monotonic() - t_start, 1)

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
        res["gateway"] = self.run_http(name, "gateway")
        if self.nginx.keepalive_ok:
            res["gateway_keepalive"] = self.run_http(name, "keepalive")
        if sc["pgbench"]:
            res["pgbench"] = self.run_pgbench(name)
        res["http_ceiling"] = self.run_fixed(name)
        res["ratios"] = {
            "direct_vs_pgbench": ratio(res["direct"], res.get("pgbench")),
            "direct_vs_http_ceiling": ratio(res["direct"], res["http_ceiling"]),
            "gateway_vs_direct": ratio(res["gateway"], res["direct"]),
            "gateway_keepalive_vs_direct": ratio(res.get("gateway_keepalive"), res["direct"]),
        }
        res["rss_after"] = self.rss()
        self.report["scenarios"][name] = res
        log(f"{name}: direct {res['direct']['rps']:.0f}/s p99 {res['direct']['p99_ms']:.1f} ms, "
            f"gateway {res['gateway']['rps']:.0f}/s"
            + (f", pgbench {res['pgbench']['rps']:.0f}/s" if sc["pgbench"] else "")
            + f", nginx fixed body {res['http_ceiling']['rps']:.0f}/s")

    # -- targets, report --

    def evaluate(self):
        t, sc, out = TARGETS, self.report["scenarios"], []

        def add(name, value, limit, ok, note=""):
            out.append({"target": name, "value": value, "limit": limit, "ok": bool(ok),
                        "note": note})
        for name in ("availability", "room_list"):
            r = sc[name]["ratios"]["direct_vs_pgbench"]
            add(f"{name} >= {t['read_vs_pgbench']:.0%} of pgbench (same SQL)", r,
                t["read_vs_pgbench"], r is not None and r >= t["read_vs_pgbench"])
        r = sc["create"]["ratios"]["direct_vs_pgbench"]
        add(f"create >= {t['create_vs_pgbench']:.0%} of pgbench insert", r,
            t["create_vs_pgbench"], r is not None and r >= t["create_vs_pgbench"])
        for name in SCENARIOS:
            r = sc[name]["ratios"]["gateway_vs_direct"]
            add(f"{name} through the gateway >= {t['gateway_vs_direct']:.0%} of direct", r,
                t["gateway_vs_direct"], r is not None and r >= t["gateway_vs_direct"])
        for name in SCENARIOS:
            for via in ("direct", "gateway"):
                p99 = sc[name][via]["p99_ms"]
                storm = name == "conflict_storm"
                add(f"{name} {via} p99 < {t['p99_ms']:.0f} ms at {self.connections} connections",
                    p99, t["p99_ms"], p99 < t["p99_ms"],
                    "one row lock serialises every request by design" if storm else "")
        for svc, st in self.report["rss"].items():
            mb = st.get("VmHWM", 0) / 1024.0
            add(f"{svc} peak RSS < {t['rss_mb']:.0f} MB", round(mb, 1), t["rss_mb"],
                mb < t["rss_mb"])
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
        lines.append(f"make bench — scale {m['scale']} ({m['sizes']['rooms']:,} rooms, "
                     f"{self.report['seed'].get('reservations', 0):,} reservations, "
                     f"{m['sizes']['users']:,} users), {m['seconds_per_run']} s per run, "
                     f"{m['connections']} connections, wrk -t{m['wrk_threads']}, "
                     f"NUM_THREADS={m['service_num_threads']}, {m['cpus']} CPUs shared by "
                     f"everything")
        hdr = f"  {'':28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  ratio"
        prev = (previous or {}).get("scenarios", {})
        for name, res in self.report["scenarios"].items():
            lines.append("")
            lines.append(f"== {name}: {res['title']} [{res['service']}]")
            lines.append(hdr)
            r = res["ratios"]
            rows = [("direct", res["direct"],
                     f"{fmt_ratio(r['direct_vs_pgbench'])} of pgbench, "
                     f"{fmt_ratio(r['direct_vs_http_ceiling'])} of nginx fixed body"),
                    ("gateway", res["gateway"], f"{fmt_ratio(r['gateway_vs_direct'])} of direct")]
            if "gateway_keepalive" in res:
                rows.append(("gateway+upstream keepalive", res["gateway_keepalive"],
                             f"{fmt_ratio(r['gateway_keepalive_vs_direct'])} of direct "
                             "(experiment)"))
            if "pgbench" in res:
                rows.append(("pgbench, same SQL", res["pgbench"], "ceiling (database)"))
            rows.append(("nginx fixed body", res["http_ceiling"],
                         f"ceiling (HTTP, {res['http_ceiling']['bytes_per_response']} B)"))
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
            f"{k} {'same' if v['same_as_service'] else 'DRIFTED'}" for k, v in sqlc.items()))
        lines.append("")
        lines.append("== targets")
        for t in self.report["targets"]:
            v = t["value"]
            vs = "n/a" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
            lines.append(f"  [{'ok' if t['ok'] else 'FAIL'}] {t['target']}: {vs}"
                         + (f" ({t['note']})" if t["note"] else ""))
        return "\n".join(lines)

    def write(self):
        os.makedirs(self.out_dir, exist_ok=True)
        latest = os.path.join(self.out_dir, f"latest-{self.scale}.json")
        previous = None
        if os.path.exists(latest):
            try:
                previous = json.load(open(latest))
            except ValueError:
                previous = None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = os.path.join(self.out_dir, f"bench-{stamp}-{self.scale}.json")
        with open(path, "w") as f:
            json.dump(self.report, f, indent=1, sort_keys=False)
        shutil.copyfile(path, latest)
        text = self.table(previous)
        with open(os.path.join(self.out_dir, f"latest-{self.scale}.txt"), "w") as f:
            f.write(text + "\n")
        print(text, flush=True)
        log(f"report: {path} (and {latest})")
        return path

    def verify(self, path):
        """make bench-smoke: the report exists and every scenario ran without unexpected
        errors."""
        report = json.load(open(path))
        problems = []
        for name, sc in SCENARIOS.items():
            res = report["scenarios"].get(name)
            if not res:
                problems.append(f"{name}: missing")
                continue
            kinds = ["direct", "gateway", "http_ceiling"] + (["pgbench"] if sc["pgbench"] else [])
            for kind in kinds + (["gateway_keepalive"] if "gateway_keepalive" in res else []):
                run = res.get(kind)
                if not run:
                    problems.append(f"{name} {kind}: missing")
                elif run["requests"] <= 0 or run["errors"]:
                    problems.append(f"{name} {kind}: {run['requests']} requests, "
                                    f"{run['errors']} errors {run.get('error_detail')}")
        for name in ("availability", "create"):
            if len(report["scaling"][name]) < 2:
                problems.append(f"scaling {name}: fewer than two sizes")
        if not all(v["same_as_service"] for v in report["sql_check"].values()):
            problems.append("a pgbench script no longer runs the service's SQL")
        for p in problems:
            log(f"CHECK FAILED: {p}")
        return not problems

    def stop(self):
        if self.nginx:
            self.nginx.stop()
        self.stack.stop()
        if self.keep:
            log(f"work directory kept: {self.stack.workdir}")
        else:
            self.stack.cleanup()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def ratio(a, b):
    if not a or not b or not b.get("rps"):
        return None
    return round(a["rps"] / b["rps"], 3)


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


def main():
    # scripts/bench.sh bounds the run with timeout(1): SIGTERM still stops the stack.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for tool in ("wrk", f"{PGBIN}/pgbench", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (make deps)")
    bench = Bench()
    ok = True
    try:
        bench.run()
        bench.evaluate()
        path = bench.write()
        if bench.check:
            ok = bench.verify(path)
            log("smoke check " + ("passed" if ok else "FAILED"))
    finally:
        bench.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
