"""Starts and stops the real processes the integration tests talk to.

Everything runs on free loopback ports in a private temporary directory, so the suite can run
while `make run` is up, and nothing is left behind: every process started here is stopped in
teardown (also when a test fails).
"""
import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN_DIR = os.environ.get("BIN_DIR", os.path.join(ROOT, "build", "bin"))
SECRET = "integration-test-secret-0123456789abcdef"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


def script(*args, env=None):
    """Runs one of scripts/*.sh (with env added to the environment) and returns its stdout (one
    line)."""
    out = subprocess.run([os.path.join(ROOT, "scripts", args[0])] + list(args[1:]),
                         check=True, stdout=subprocess.PIPE, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    return out.stdout.strip()


def free_port():
    return int(script("freeport.sh"))


def wait_until(predicate, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except requests.RequestException as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Postgres:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        self.port = free_port()
        self.url = None

    def start(self):
        self.url = script("pg.sh", "start", self.dir, str(self.port))
        return self.url

    def stop(self):
        script("pg.sh", "stop", self.dir)

    def kill(self):
        script("pg.sh", "kill", self.dir)

    def dsn(self, db):
        return f"{self.url}/{db}"


PG_BIN = "/usr/lib/postgresql/15/bin"


def superuser_sql(pg, sql):
    """Runs sql as the postgres superuser on pg (a Postgres) over its socket, in the postgres
    database; returns psql's unaligned output."""
    out = subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-XAtq", "-v",
                          "ON_ERROR_STOP=1", "-h", pg.dir, "-p", str(pg.port), "-d", "postgres",
                          "-c", sql], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


class Oidc:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "oidc")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.discovery = None

    def start(self):
        self.discovery = script("oidc.sh", "start", self.dir, str(self.port))
        return self.discovery

    def stop(self):
        script("oidc.sh", "stop", self.dir)


class Kafka:
    """A private single-node KRaft broker (kafka/kafka.sh) with the suite's topics, and a second
    listener that requires SASL/PLAIN (sasl_bootstrap, user sasl_user, sasl_password)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "kafka")
        self.port = free_port()
        self.bootstrap = None
        self.sasl_port = free_port()
        self.sasl_bootstrap = f"127.0.0.1:{self.sasl_port}"
        self.sasl_user = "suite"
        self.sasl_password = "sasl-" + os.urandom(12).hex()

    def start(self):
        env = {**os.environ, "KAFKA_SASL_LISTENER_PORT": str(self.sasl_port),
               "KAFKA_SASL_LISTENER_USER": self.sasl_user,
               "KAFKA_SASL_LISTENER_PASSWORD": self.sasl_password}
        out = subprocess.run([os.path.join(ROOT, "kafka", "kafka.sh"), "start", self.dir,
                              str(self.port)], check=True, stdout=subprocess.PIPE, text=True,
                             timeout=120, env=env)
        self.bootstrap = out.stdout.strip()
        return self.bootstrap

    def pid(self):
        """The broker JVM's pid (kafka/kafka.sh writes it to DIR/kafka.pid)."""
        with open(os.path.join(self.dir, "kafka.pid"), encoding="utf-8") as f:
            return int(f.read().strip())

    def stop(self):
        subprocess.run([os.path.join(ROOT, "kafka", "kafka.sh"), "stop", self.dir], check=True,
                       timeout=60)

    def kill(self):
        subprocess.run([os.path.join(ROOT, "kafka", "kafka.sh"), "kill", self.dir], check=True,
                       timeout=60)

    def read(self, topic, timeout=20):
        """Every message of topic from the beginning, as dicts with key, payload (parsed JSON
        when possible), partition and offset, in per-partition order."""
        out = subprocess.run(["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-o", "beginning",
                              "-e", "-J", "-q"], capture_output=True, text=True, timeout=timeout)
        messages = []
        for line in out.stdout.splitlines():
            m = json.loads(line)
            try:
                m["value"] = json.loads(m.get("payload") or "null")
            except ValueError:
                m["value"] = None
            messages.append(m)
        return messages

    def partitions(self, topic):
        """The number of partitions of topic (kafka/kafka.sh: KAFKA_PARTITIONS, default 6)."""
        out = subprocess.run(["kcat", "-b", self.bootstrap, "-L", "-t", topic, "-J"],
                             capture_output=True, text=True, check=True, timeout=20)
        (meta,) = json.loads(out.stdout)["topics"]
        return len(meta["partitions"])

    def produce(self, topic, key, value):
        subprocess.run(["kcat", "-b", self.bootstrap, "-P", "-t", topic, "-k", key],
                       input=value, text=True, check=True, timeout=20)

    def create_topics(self, *names, partitions=3):
        """Creates topics (the broker does not auto-create them) and waits until usable."""
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "kafka", "topics.py"),
                        self.bootstrap, "60"] + [f"{n}:{partitions}" for n in names],
                       check=True, timeout=90)


class Mailpit:
    """Mailpit (scripts/mailpit.sh): an SMTP server on smtp_port that keeps every message, read
    back through its HTTP API at url.  Started with chaos enabled (failures injected on demand,
    chaos()) and with every recipient at the .invalid domain (RFC 2606: never deliverable)
    refused with 550, a permanent failure."""

    # Go's RE2 has no negative look-ahead: an address matches unless it ends in ".invalid".
    ALLOWED = r"(?i)(?:[^d]|[^i]d|[^l]id|[^a]lid|[^v]alid|[^n]valid|[^i]nvalid|[^.]invalid)$"

    def __init__(self, workdir, name="mailpit"):
        self.dir = os.path.join(workdir, name)
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.smtp_url = f"smtp://127.0.0.1:{self.smtp_port}"
        self.url = None
        # Messages from these senders are left out of messages() and wait_messages().
        self.hidden_senders = set()

    def start(self):
        self.url = script("mailpit.sh", "start", self.dir, str(self.smtp_port),
                          str(self.http_port), "--enable-chaos",
                          "--smtp-allowed-recipients", self.ALLOWED)
        return self.url

    def stop(self):
        script("mailpit.sh", "stop", self.dir)

    def messages(self, query=None):
        """Summaries of the stored messages, newest first (GET /api/v1/messages, or
        /api/v1/search when query is given, e.g. 'subject:"Weekly"' or 'to:a@example.com'),
        without those from hidden_senders."""
        if query is None:
            r = requests.get(f"{self.url}/api/v1/messages", params={"limit": 1000}, timeout=10)
        else:
            r = requests.get(f"{self.url}/api/v1/search", params={"query": query, "limit": 1000},
                             timeout=10)
        r.raise_for_status()
        return [m for m in r.json()["messages"]
                if (m.get("From") or {}).get("Address") not in self.hidden_senders]

    def message(self, mid):
        """One message in full (GET /api/v1/message/{id}): From, To, Cc, Subject (decoded),
        Text, HTML, Attachments (with PartID), MessageID, Date."""
        r = requests.get(f"{self.url}/api/v1/message/{mid}", timeout=10)
        r.raise_for_status()
        return r.json()

    def headers(self, mid):
        """The message's headers as Mailpit parsed them: name -> list of values."""
        r = requests.get(f"{self.url}/api/v1/message/{mid}/headers", timeout=10)
        r.raise_for_status()
        return r.json()

    def raw(self, mid):
        """The message as received (bytes)."""
        r = requests.get(f"{self.url}/api/v1/message/{mid}/raw", timeout=10)
        r.raise_for_status()
        return r.content

    def part(self, mid, part_id):
        """One MIME part's decoded content (an attachment), as bytes."""
        r = requests.get(f"{self.url}/api/v1/message/{mid}/part/{part_id}", timeout=10)
        r.raise_for_status()
        return r.content

    def delete_all(self):
        """Deletes every stored message (test isolation)."""
        requests.delete(f"{self.url}/api/v1/messages", json={"IDs": []},
                        timeout=10).raise_for_status()

    @staticmethod
    def oldest_first(summaries):
        """Summaries (as messages() returns them, newest first) oldest first.  Created is Go's
        RFC 3339 with trailing zeros of the fraction trimmed ("...:31.12Z" is 120 ms), so it
        must be compared as a time, not as text; a tie keeps Mailpit's own order."""
        def created(m):
            text = m["Created"].replace("Z", "+00:00")
            head, dot, rest = text.partition(".")
            if dot:  # at most microseconds for fromisoformat
                digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
                text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
            return datetime.datetime.fromisoformat(text)
        ranked = sorted(enumerate(summaries), key=lambda im: (created(im[1]), -im[0]))
        return [m for _, m in ranked]

    def wait_messages(self, count, query=None, timeout=15.0):
        """Waits until at least count messages (matching query) are stored; returns them."""
        found = []

        def enough():
            found[:] = self.messages(query)
            return len(found) >= count
        wait_until(enough, timeout=timeout, interval=0.1,
                   what=f"{count} message(s) in Mailpit" + (f" for {query}" if query else ""))
        return list(found)

    @contextlib.contextmanager
    def chaos(self, sender=0, recipient=0, authentication=0):
        """Within the block every MAIL FROM (sender), RCPT TO (recipient) or AUTH
        (authentication) is answered with that SMTP code (0: normally); reset afterwards."""
        def put(s, r, a):
            body = {k: {"ErrorCode": code or 451, "Probability": 100 if code else 0}
                    for k, code in (("Sender", s), ("Recipient", r), ("Authentication", a))}
            body["Authentication"]["ErrorCode"] = a or 535
            requests.put(f"{self.url}/api/v1/chaos", json=body, timeout=10).raise_for_status()
        put(sender, recipient, authentication)
        try:
            yield self
        finally:
            put(0, 0, 0)


class Gateway:
    """The nginx gateway (scripts/nginx.sh) in front of the three services; env holds its
    optional settings (GATEWAY_TRUSTED_PROXIES, GATEWAY_AUTH_PER_MINUTE, GATEWAY_AUTH_BURST,
    GATEWAY_REFRESH_PER_MINUTE, GATEWAY_REFRESH_BURST)."""

    def __init__(self, workdir, name="nginx", env=None):
        self.dir = os.path.join(workdir, name)
        self.port = free_port()
        self.env = dict(env or {})
        self.url = None

    def start(self, user_ports, room_ports, reservation_ports):
        """Each argument is one port or a list of the replicas' ports, balanced across."""
        self.url = self._script("start", user_ports, room_ports, reservation_ports)
        return self.url

    def reload(self, user_ports, room_ports, reservation_ports):
        """The running gateway on other port lists (nginx.sh reload): returns once the new
        workers serve; the old ones finish their requests."""
        self._script("reload", user_ports, room_ports, reservation_ports)

    def _script(self, command, *ports):
        def listed(p):
            return ",".join(map(str, p)) if isinstance(p, (list, tuple)) else str(p)

        return script("nginx.sh", command, self.dir, str(self.port), *map(listed, ports),
                      env=self.env)

    def stop(self):
        script("nginx.sh", "stop", self.dir)


class Service:
    """One service process (build/bin/<name>) with its environment and log file."""

    def __init__(self, name, workdir, env, port=None, tag=None):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"{tag or name}.log")
        self.env = dict(os.environ)
        self.env.update({"PORT": str(self.port), "LOG_LEVEL": "info",
                         "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
                         "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
        self.env.update(env)
        self.proc = None
        self.returncodes = []

    def start(self, wait_ready=True):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN_DIR, self.name)], env=self.env,
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if wait_ready:
            wait_until(lambda: self._ready(), what=f"{self.name} /ready")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 + self.log_tail())
        return requests.get(self.url + "/ready", timeout=2).status_code == 200

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the process; returns its exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.returncodes.append(rc)
        return rc

    def run(self, *args, timeout=60):
        """Runs the binary as a command (e.g. `token --email …`) with the same environment."""
        return subprocess.run([os.path.join(BIN_DIR, self.name)] + list(args), env=self.env,
                              capture_output=True, text=True,
                              timeout=timeout)

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in text]


class Stack:
    """PostgreSQL + the OIDC provider + user-service, as the tests see them."""

    ADMIN_EMAIL = "boss@example.com"
    HOSTED_DOMAIN = "example.com"

    # The invitations' sender: not test_mail_send.py's, whose mailbox fixture hides these.
    MAIL_FROM = "reservations@example.com"

    def __init__(self, mailpit=None):
        # Logs, databases and the provider's files: the owner's only (mkdtemp's 0700).
        self.workdir = tempfile.mkdtemp(prefix="mr-it-", dir="/tmp")
        # The gateways' directories (scripts/nginx.sh DIR) apart: their workers (nobody) read
        # the web app from <gateway_dir>/<name>/web, so this one is searchable by others.
        self.gateway_dir = tempfile.mkdtemp(prefix="mr-it-gw-", dir="/tmp")
        os.chmod(self.gateway_dir, 0o755)
        self.mailpit = mailpit
        self.pg = Postgres(self.workdir)
        self.oidc = Oidc(self.workdir)
        self.kafka = Kafka(self.workdir)
        # The services here run with NUM_THREADS 8 or 16 (below): the gateway's idle upstream
        # connections (2 workers x 2 upstream groups x this) must stay fewer, or they would hold
        # every worker thread of a service until nginx drops them (docs/operations.md).
        self.gateway = Gateway(self.gateway_dir, env={"GATEWAY_UPSTREAM_KEEPALIVE": "1"})
        self.services = []
        self.user = None
        self.room = None
        self.reservation = None

    def start(self):
        self.pg.start()
        self.oidc.start()
        self.kafka.start()
        self.user = self.user_service()
        self.room = self.room_service()
        self.reservation = self.reservation_service()
        self.user.start()
        self.room.start()
        self.reservation.start()
        self.gateway.start(self.user.port, self.room.port, self.reservation.port)
        return self

    def user_env(self, port):
        return {
            "DATABASE_URL": self.pg.dsn("user_db"),
            "JWT_SECRET_KEY": SECRET,
            "GOOGLE_CLIENT_ID": "test-client-id",
            "GOOGLE_CLIENT_SECRET": "test-client-secret",
            "GOOGLE_REDIRECT_URI": f"http://127.0.0.1:{port}/auth/google/callback",
            "GOOGLE_DISCOVERY_URL": self.oidc.discovery,
            "GOOGLE_HOSTED_DOMAIN": self.HOSTED_DOMAIN,
            "OIDC_ALLOW_HTTP_LOOPBACK": "true",
            "ADMIN_EMAILS": f" Other@Example.com , {self.ADMIN_EMAIL.upper()} ",
            "MAX_BODY_BYTES": "65536",
            "NUM_THREADS": "8",
            # The suite signs in hundreds of times from one address; the limit has its own test.
            "RATE_LIMIT_AUTH_PER_MINUTE": "0",
            "RATE_LIMIT_REFRESH_PER_MINUTE": "0",
            # The gateway (scripts/nginx.sh) reaches the services from 127.0.0.1, as in make run.
            "TRUSTED_GATEWAYS": "127.0.0.1",
            # Spent refresh tokens revoke at once, as the older tests expect; the grace period
            # for a repeated refresh has its own tests (test_user_refresh_grace.py).
            "REFRESH_REUSE_GRACE_SECONDS": "0",
            "KAFKA_BROKER_URL": self.kafka.bootstrap,
        }

    def reservation_service(self, tag=None, **overrides):
        env = {"DATABASE_URL": self.pg.dsn("reservation_db"), "JWT_SECRET_KEY": SECRET,
               "KAFKA_BROKER_URL": self.kafka.bootstrap, "NUM_THREADS": "16",
               # Webhook retries in tenths of a second, given up after 3.6 s (test_webhooks.py).
               "WEBHOOK_RETRY_BASE_MS": "200", "WEBHOOK_RETRY_HOURS": "0.001",
               "WEBHOOK_TIMEOUT_MS": "2000",
               # Receivers in the tests listen on loopback (refused by default).
               "WEBHOOK_ALLOW_LOOPBACK": "true"}
        if self.mailpit:
            # Mail retries from a tenth of a second on (test_res_mail.py stops Mailpit); one
            # sender, so that the suite's bookings' mail takes little of the machine.
            env.update({"SMTP_URL": self.mailpit.smtp_url, "SMTP_FROM": self.MAIL_FROM,
                        "MAIL_RETRY_BASE_MS": "100",
                        # A send that times out after Mailpit took the message is sent again
                        # (at least once): on a loaded 2-core CI 5 s was reached once.
                        "MAIL_TIMEOUT_MS": "30000",
                        "MAIL_SENDERS": "1",
                        # The suite's few users invite far more people an hour than the
                        # default quota allows; the quota has its own service in
                        # test_res_attendees.py.
                        "MAIL_MAX_RECIPIENTS_PER_HOUR": "1000000"})
        env.update(overrides)
        svc = Service("reservation-service", self.workdir, env, tag=tag)
        self.services.append(svc)
        return svc

    def room_service(self, tag=None, **overrides):
        env = {"DATABASE_URL": self.pg.dsn("room_db"), "JWT_SECRET_KEY": SECRET,
               "KAFKA_BROKER_URL": self.kafka.bootstrap, "NUM_THREADS": "8"}
        env.update(overrides)
        svc = Service("room-service", self.workdir, env, tag=tag)
        self.services.append(svc)
        return svc

    def user_service(self, tag=None, **overrides):
        port = free_port()
        env = self.user_env(port)
        env.update(overrides)
        svc = Service("user-service", self.workdir, env, port=port, tag=tag)
        self.services.append(svc)
        return svc

    def stop(self):
        for svc in self.services:
            try:
                svc.stop()
            except Exception:  # noqa: BLE001 - teardown must go on
                pass
        for part in (self.gateway, self.oidc, self.kafka, self.pg):
            try:
                part.stop()
            except Exception:  # noqa: BLE001
                pass

    def cleanup(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self.gateway_dir, ignore_errors=True)


class Replicas:
    """n replicas of each service of a started Stack, behind a gateway of their own (the scale-out
    tier, the gateway tests, the bench).  The stack's own services are replica 1; replicas 2..n
    run with the same environment (the same databases, broker and secret; user-service's
    GOOGLE_REDIRECT_URI keeps naming replica 1) on their own ports, logging to
    <workdir>/<name>-<k>.log.  They join stack.services, so the stack's teardown stops them and
    checks their logs for sanitizer reports.

        r = Replicas(stack, 3).start()
        r.gateway.url                 # balances over every replica (scripts/nginx.sh)
        r.of("room-service")          # [replica 1, 2, 3]: harness.Service, to stop/kill/start
        r.scale_in([svc])             # out of the gateway, then SIGTERM
        r.restart([svc])              # started again (and back in the gateway)
        r.stop()                      # the gateway and replicas 2..n; the stack's stay up
    """

    NAMES = ("user-service", "room-service", "reservation-service")

    def __init__(self, stack, n, name="nginx-replicas"):
        assert n >= 1
        self.stack = stack
        self.by_name = {}
        for first in (stack.user, stack.room, stack.reservation):
            env = {k: v for k, v in first.env.items() if k != "PORT"}
            self.by_name[first.name] = [first] + [
                Service(first.name, stack.workdir, env, tag=f"{first.name}-{k}")
                for k in range(2, n + 1)]
        self.gateway = Gateway(stack.gateway_dir, name=name, env=stack.gateway.env)
        self.out = set()

    def of(self, name):
        return self.by_name[name]

    def all(self):
        return [svc for name in self.NAMES for svc in self.by_name[name]]

    def start(self):
        """Starts replicas 2..n (each waits for its /ready) and the gateway; returns self."""
        for svc in self.all():
            if svc.proc is None:
                self.stack.services.append(svc)
                svc.start()
        self.gateway.start(*([svc.port for svc in self.by_name[name]] for name in self.NAMES))
        return self

    def serving(self):
        """The replicas the gateway balances over: every one but those scaled in."""
        return {name: [svc for svc in self.by_name[name] if svc not in self.out]
                for name in self.NAMES}

    def reload(self):
        """The gateway's upstream lists as serving() gives them."""
        self.gateway.reload(*([svc.port for svc in svcs] for svcs in self.serving().values()))

    def scale_in(self, svcs, grace=0.5, sig=signal.SIGTERM):
        """Scales replicas in as Kubernetes does: out of the gateway first (its upstream lists
        reloaded without them; the old workers finish what they sent them), then, after grace
        seconds, the signal (SIGTERM: the replica drains and stops).  Does not wait for them to
        exit; restart() brings them back into the gateway."""
        self.out.update(svcs)
        self.reload()
        time.sleep(grace)
        for svc in svcs:
            svc.proc.send_signal(sig)

    def restart(self, svcs, timeout=60):
        """Starts stopped (or killed) replicas again, same port and log, waits until each is
        ready, and puts those scaled in back into the gateway."""
        for svc in svcs:
            if svc.proc is not None and svc.proc.poll() is None:
                svc.stop(signal.SIGKILL)
            svc.start(wait_ready=False)
        for svc in svcs:
            wait_until(lambda svc=svc: svc._ready(), timeout=timeout, interval=0.05,
                       what=f"{svc.log_path} ready")
        if self.out & set(svcs):
            self.out -= set(svcs)
            self.reload()

    def stop(self):
        with contextlib.suppress(Exception):
            self.gateway.stop()
        for name in self.NAMES:
            for svc in self.by_name[name][1:]:
                svc.stop()


def login(base_url, email, session=None):
    """Walks the real sign-in: service login → provider authorize → service callback.
    Returns the callback's response."""
    s = session or requests.Session()
    r = s.get(f"{base_url}/auth/google/login", params={"login_hint": email},
              allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    authorize = r.headers["Location"]
    r = s.get(authorize, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    callback = r.headers["Location"]
    return s.get(callback, allow_redirects=False, timeout=10)


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def decode_jwt_payload(token):
    import base64
    part = token.split(".")[1]
    part += "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(part))


# ---- helpers for the user-service tests (test_user_*.py) ----

ERROR_KEYS = {"error", "code", "message", "status_code", "timestamp", "request_id", "details"}


def assert_error(r, status, code, detail=None, mentions=None):
    """Asserts an error reply (docs/api.md#errors): status, JSON shape, request id; optionally that
    details names a field (detail=) and that the message contains a text (mentions=)."""
    import re
    assert r.status_code == status, (r.status_code, r.headers, r.text)
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) <= ERROR_KEYS and {"error", "code", "message", "status_code", "timestamp",
                                        "request_id"} <= set(body), body
    assert body["error"] is True, body
    assert body["code"] == code, body
    assert body["status_code"] == status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", body["timestamp"]), body
    assert body["request_id"] == r.headers.get("X-Request-ID"), (body, r.headers)
    if detail is not None:
        assert isinstance(body.get("details"), dict) and detail in body["details"], body
    if mentions is not None:
        assert mentions in body["message"], body
    return body


def forge_token(sub, email="someone@example.com", role="employee", *, secret=SECRET,
                alg="HS256", iss="meeting-rooms", exp_in=3600, drop=(), **extra):
    """An access token signed by hand (PyJWT), for authorization tests."""
    import uuid

    import jwt
    now = int(time.time())
    claims = {"sub": str(sub), "email": email, "name": "Forged", "role": role, "iat": now,
              "exp": now + exp_in, "iss": iss, "jti": str(uuid.uuid4())}
    claims.update(extra)
    for k in drop:
        claims.pop(k, None)
    return jwt.encode(claims, secret, algorithm=alg)


def operator_token(svc, email, role=None, name=None):
    """`user-service token …`: creates/updates the user and returns (token, user id)."""
    args = ["token", "--email", email]
    if role:
        args += ["--role", role]
    if name:
        args += ["--name", name]
    out = svc.run(*args)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    return token, int(decode_jwt_payload(token)["sub"])


# ---- helpers for the room-service tests (test_room_*.py) ----

ROOM_KEYS = {"id", "name", "capacity", "equipment", "building", "floor", "description",
             "time_zone", "active", "created_at", "updated_at", "version", "policies"}


def unique_name(prefix="Room"):
    """A room name no other test uses (the database is shared by the whole session)."""
    import uuid
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def create_room(url, headers, **fields):
    """POST /rooms with a unique name and capacity 4 unless given; returns the created room."""
    body = {"name": unique_name(), "capacity": 4}
    body.update(fields)
    r = requests.post(f"{url}/rooms", json=body, headers=headers, timeout=10)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def room_events(kafka, keys, topic="room_events"):
    """The messages of topic whose key is one of keys (room ids), in per-partition order (one
    room's events always share a partition)."""
    keys = {str(k) for k in keys}
    return [m for m in kafka.read(topic) if m.get("key") in keys]


def wait_room_events(kafka, keys, count, timeout=30.0):
    """Waits until at least count messages for keys are on the broker and returns them."""
    found = []

    def enough():
        found[:] = room_events(kafka, keys)
        return len(found) >= count
    wait_until(enough, timeout=timeout, interval=0.3,
               what=f"{count} room event(s) for keys {sorted(map(str, keys))}")
    return list(found)


def room_db_query(pg, sql, *params):
    """Runs one query on room_db (psycopg2) and returns all rows."""
    import psycopg2
    with psycopg2.connect(pg.dsn("room_db")) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def outbox_unsent(pg, keys=None):
    """Outbox rows not yet published (only those of keys, room ids, when given)."""
    if keys is None:
        return room_db_query(pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]
    return room_db_query(pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND key = ANY(%s)",
                         [str(k) for k in keys])[0][0]


# ---- helpers for the reservation-service API tests (test_res_api_*.py) ----

RESERVATION_KEYS = {"id", "room_id", "user_id", "purpose", "start_time", "end_time", "status",
                    "cancel_reason", "created_at", "updated_at", "version", "series_id",
                    "occurrence_start", "attendees", "organizer_email", "organizer_name",
                    "online_meeting", "meeting_url", "check_in_from", "release_at",
                    "checked_in_at"}


def utc_at(days, hour=10, minute=0, second=0):
    """"YYYY-MM-DDTHH:MM:SSZ" at the given UTC time of day, days after today (UTC)."""
    import datetime
    d = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=days)
    return f"{d.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}Z"


def utc_text(dt):
    """An aware datetime as "YYYY-MM-DDTHH:MM:SSZ"."""
    import datetime
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day(date, zone):
    """(start, end) of the calendar day date in zone, as "…Z" texts (the oracle: zoneinfo)."""
    import datetime
    from zoneinfo import ZoneInfo
    d = datetime.date.fromisoformat(date)
    start = datetime.datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone))
    nxt = d + datetime.timedelta(days=1)
    end = datetime.datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo(zone))
    return utc_text(start), utc_text(end)


def next_dst_days(zone="Europe/Berlin"):
    """The next two days (ISO dates, at least 3 days ahead) whose length in zone is not 24 h,
    with their length in hours: Berlin's last Sundays of March (23 h) and October (25 h), both
    within a year."""
    import datetime
    out, d = [], datetime.date.today() + datetime.timedelta(days=3)
    while len(out) < 2:
        s, e = local_day(d.isoformat(), zone)
        length = (datetime.datetime.fromisoformat(e.replace("Z", "+00:00")) -
                  datetime.datetime.fromisoformat(s.replace("Z", "+00:00")))
        if length != datetime.timedelta(hours=24):
            out.append((d.isoformat(), length.total_seconds() / 3600))
        d += datetime.timedelta(days=1)
    return out


def shift(ts, **delta):
    """A "…Z" time moved by a timedelta (e.g. shift(t, minutes=30)), again as "…Z"."""
    import datetime
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ") + datetime.timedelta(**delta)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def room_bookable(res_url, headers, room_id):
    """True once reservation-service knows the room (its consumer applied room_created)."""
    r = requests.get(f"{res_url}/availability", params={"room_id": room_id, "date": "2030-01-01"},
                     headers=headers, timeout=10)
    return r.status_code == 200


class RoomPool:
    """Rooms that reservation-service already knows, created in batches through room-service so
    that a test module waits for the consumer once rather than once per room."""

    def __init__(self, room_url, res_url, headers, batch=8):
        self.room_url, self.res_url, self.headers, self.batch = room_url, res_url, headers, batch
        self.ready = {}

    def take(self, **fields):
        """A known room with fields (e.g. time_zone=...); special rooms come in batches of 3."""
        key = tuple(sorted(fields.items()))
        if not self.ready.get(key):
            rooms = [create_room(self.room_url, self.headers, **fields)
                     for _ in range(self.batch if not fields else 3)]
            for room in rooms:
                wait_until(lambda rid=room["id"]: room_bookable(self.res_url, self.headers, rid),
                           timeout=30, interval=0.1, what=f"room {room['id']} bookable")
            self.ready[key] = rooms
        return self.ready[key].pop()


def wait_room_state(res_url, headers, room_id, inactive):
    """Waits until reservation-service applied a room's active flag: an inactive room is named
    in the details of a create (the garbage times make sure nothing is ever booked)."""
    def applied():
        r = book(res_url, headers, room_id, "garbage", "garbage")
        assert r.status_code == 422, r.text
        return ("room_id" in r.json()["details"]) == inactive
    wait_until(applied, timeout=30, interval=0.1, what=f"room {room_id} inactive={inactive}")


def book(res_url, headers, room_id, start, end, **extra):
    """POST /reservations; returns the response."""
    body = {"room_id": room_id, "start_time": start, "end_time": end}
    body.update(extra)
    return requests.post(f"{res_url}/reservations", json=body, headers=headers, timeout=10)


def booked(res_url, headers, room_id, start, end, **extra):
    """POST /reservations that must succeed; returns the reservation."""
    r = book(res_url, headers, room_id, start, end, **extra)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


# ---- helpers for the reservation race and event tests (test_res_race*.py, test_res_events*.py) --

def res_db_query(pg, sql, *params):
    """Runs one statement on reservation_db (psycopg2), commits, and returns all rows (or [])."""
    import psycopg2
    conn = psycopg2.connect(pg.dsn("reservation_db"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def overlapping_confirmed_pairs(pg):
    """Pairs of confirmed reservations of one room whose [start, end) spans overlap: the
    exclusion guarantee (docs/architecture.md) says there are none."""
    return res_db_query(pg, "SELECT a.id, b.id FROM reservations a JOIN reservations b "
                            "ON a.room_id = b.room_id AND a.id < b.id "
                            "AND tstzrange(a.start_time, a.end_time, '[)') && "
                            "    tstzrange(b.start_time, b.end_time, '[)') "
                            "WHERE a.status = 'confirmed' AND b.status = 'confirmed'")


def wait_known_room(res_url, headers, room_id, timeout=10.0):
    """Waits until reservation-service knows room_id (GET /availability answers 200); returns
    the seconds it took."""
    t0 = time.monotonic()
    wait_until(lambda: requests.get(f"{res_url}/availability",
                                    params={"room_id": room_id, "date": "2030-01-01"},
                                    headers=headers, timeout=10).status_code == 200,
               timeout=timeout, interval=0.05, what=f"room {room_id} known to reservation-service")
    return time.monotonic() - t0


def res_outbox_unsent(pg):
    return res_db_query(pg, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]


def reservation_events(kafka, ids):
    """reservation_events messages whose key is one of the reservation ids, in order."""
    keys = {str(i) for i in ids}
    return [m for m in kafka.read("reservation_events") if m.get("key") in keys]


# ---- helpers for the fault, secrets and soak runs (test_zz_faults_*.py, test_zz_secrets.py,
# tests/soak/soak.py) ----

RELIABILITY_DIR = os.path.join(ROOT, "build", "reliability")


def db_query(pg, db, sql, *params):
    """Runs one statement on database db (user_db, room_db or reservation_db), commits, and
    returns all rows (or [])."""
    import psycopg2
    conn = psycopg2.connect(pg.dsn(db))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def db_exec(pg, db, sql, *params):
    """Runs one statement on database db and commits; returns (rows affected, all rows or
    None when the statement returns none)."""
    import psycopg2
    conn = psycopg2.connect(pg.dsn(db))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount, (cur.fetchall() if cur.description else None)
    finally:
        conn.close()

def write_reliability(name, figures):
    """Writes figures (JSON-serialisable) to build/reliability/<name>.json, where the README
    quotes measured figures from; returns the path."""
    os.makedirs(RELIABILITY_DIR, exist_ok=True)
    path = os.path.join(RELIABILITY_DIR, f"{name}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def service_ready(svc):
    """True when svc's /ready answers 200 (False on any other answer or no answer)."""
    try:
        return requests.get(f"{svc.url}/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False
