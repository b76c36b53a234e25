"""PostgreSQL ends the session of a client whose host vanished without closing its connection,
and with it the advisory lock the session held (issue 19: the outbox publisher's lock passes to
another replica < 5 s after the holder's node dies).

kill -9 of a process closes its sockets (the kernel sends FIN), which PostgreSQL notices at once;
a node that loses power or its network sends nothing.  Here two lock holders run, each in a
network namespace of its own behind a veth pair, on one server with scripts/pg.sh's settings;
their links are then set down together (packets dropped, no FIN or RST) and the holders killed,
and a follower on loopback asks for each lock every 100 ms:
- the publisher: its session sets what the outbox publisher's sets (outbox_session_sql, read from
  common/src/outbox.c: keepalives 1 s + 1 s x 2, tcp_user_timeout 3 s) and sends a statement
  every 100 ms (the publisher's idle poll).  Its lock is free within 4 s of the link's death;
  the publisher's own retry (every 1 s) makes the takeover bound 5 s.
- a plain idle session (a pool's): the server-wide keepalives (scripts/pg.sh, the chart's
  postgresql.deadClientDetection: 5 s + 2 s x 3) end it within their bound, 11 s.
Without them the lock stayed held for more than 60 s (PostgreSQL 15's defaults: the kernel's
keepalive after 2 hours, ~15 minutes of retransmissions).

Needs root and `ip netns` (skipped otherwise).
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg2
import pytest

from harness import ROOT, Postgres, superuser_sql, write_reliability

POLL_S = 0.1
PUBLISHER_FREED_MAX_S = 4.0  # the publisher's per-session bound (3 s) and a second's margin
FOLLOWER_RETRY_S = 1.0  # OUTBOX_FOLLOW_MS (common/src/outbox.c)
TAKEOVER_TARGET_S = 5.0
LOCK_KEYS = {"publisher": 4242, "plain": 4243}

# A lock holder, run in a namespace: runs its session's SQL (argv[3], may be empty), takes the
# lock, says so, then a statement every 100 ms ("poll") or nothing ("idle").
HOLDER = """
import sys, time
import psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
if sys.argv[3]:
    cur.execute(sys.argv[3])
cur.execute("SELECT pg_try_advisory_lock(%s)", (int(sys.argv[2]),))
print(cur.fetchone()[0], flush=True)
while True:
    if sys.argv[4] == "poll":
        cur.execute("SELECT 1")
        cur.fetchone()
    time.sleep(0.1)
"""


def publisher_session_sql():
    """outbox.c's outbox_session_sql: the SQL the publisher's session starts with."""
    with open(os.path.join(ROOT, "common", "src", "outbox.c"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"outbox_session_sql\[\] =((?:\s*\"[^\"]*\")+);", text)
    assert m, "outbox_session_sql not found in common/src/outbox.c"
    return "".join(re.findall(r'"([^"]*)"', m.group(1)))


def session_bound(settings):
    """Seconds until the server gives a vanished client up: keepalives after idle, every interval,
    count of them; tcp_user_timeout (ms, 0: none) while sent data is unacknowledged."""
    keepalive = (settings["tcp_keepalives_idle"]
                 + settings["tcp_keepalives_interval"] * settings["tcp_keepalives_count"])
    return max(keepalive, settings.get("tcp_user_timeout", 0) / 1000.0)


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def netns_usable():
    """Skips unless root may make network namespaces and veth pairs (a container without
    CAP_NET_ADMIN has neither)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and ip netns")
    probe = f"mrprobe{os.getpid() % 100000}"
    ok = run("ip", "netns", "add", probe, check=False).returncode == 0
    if ok:
        ok = run("ip", "netns", "exec", probe, "ip", "link", "add", "p0", "type", "veth", "peer",
                 "name", "p1", check=False).returncode == 0
        run("ip", "netns", "del", probe, check=False)
    if not ok:
        pytest.skip("ip netns cannot make a namespace with a veth pair here (CAP_NET_ADMIN)")


@contextlib.contextmanager
def namespace(index):
    """A network namespace joined to the host by a veth pair: (namespace, host address,
    namespace address, the namespace side's link)."""
    tag = (os.getpid() * 2 + index) % 100000
    ns, host_if, ns_if = f"mrdead{tag}", f"mrd{tag}h", f"mrd{tag}n"
    octet, base = tag % 250, (tag // 250) % 64 * 4
    host_ip, ns_ip = f"10.231.{octet}.{base + 1}", f"10.231.{octet}.{base + 2}"
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", ns)
        run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        yield ns, host_ip, ns_ip, ns_if
    finally:
        run("ip", "link", "del", host_if, check=False)
        run("ip", "netns", "del", ns, check=False)


def server_settings(cur):
    out = {}
    for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count",
                 "tcp_user_timeout"):
        cur.execute("SELECT setting::int FROM pg_settings WHERE name = %s", (name,))
        out[name] = cur.fetchone()[0]
    return out


def test_a_vanished_clients_advisory_lock_is_released_within_the_bound(netns_usable):
    """Both holders at once (the test takes about the plain session's bound, 11 s)."""
    sql = publisher_session_sql()
    publisher = dict(re.findall(r"set_config\('(\w+)', '(\d+)'", sql))
    publisher = {k: int(v) for k, v in publisher.items()}
    assert set(publisher) == {"tcp_keepalives_idle", "tcp_keepalives_interval",
                              "tcp_keepalives_count", "tcp_user_timeout"}, sql
    workdir = tempfile.mkdtemp(prefix="mr-it-dead-", dir="/tmp")
    pg = Postgres(workdir)
    holders = {}
    try:
        with namespace(0) as ns_pub, namespace(1) as ns_plain:
            nets = {"publisher": ns_pub, "plain": ns_plain}
            pg.start()
            # Reachable on the veth addresses too, from the namespaces' addresses.
            hosts = ",".join(net[1] for net in nets.values())
            superuser_sql(pg, f"ALTER SYSTEM SET listen_addresses = '127.0.0.1,{hosts}'")
            with open(os.path.join(pg.dir, "pg_hba.conf"), "a") as f:
                for net in nets.values():
                    f.write(f"host all all {net[2]}/32 scram-sha-256\n")
            pg.stop()
            pg.start()
            for kind, (ns, host_ip, _, _) in nets.items():
                remote = pg.dsn("postgres").replace("@127.0.0.1:", f"@{host_ip}:")
                holders[kind] = subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-c", HOLDER, remote,
                     str(LOCK_KEYS[kind]), sql if kind == "publisher" else "",
                     "poll" if kind == "publisher" else "idle"],
                    stdout=subprocess.PIPE, text=True)
            for kind, holder in holders.items():
                assert holder.stdout.readline().strip() == "True", f"{kind}: no lock"
            follower = psycopg2.connect(pg.dsn("postgres"))
            follower.autocommit = True
            cur = follower.cursor()
            bounds = {"publisher": session_bound(publisher),
                      "plain": session_bound(server_settings(cur))}

            def try_lock(kind):
                cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEYS[kind],))
                return cur.fetchone()[0]

            assert not any(try_lock(kind) for kind in holders), "a lock is not held"
            # The idle holder's last statement acknowledged (delayed ACKs) well before.
            time.sleep(1.05)
            t0 = {}
            for kind, (ns, _, _, ns_if) in nets.items():
                run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "down")
                t0[kind] = time.monotonic()
                holders[kind].kill()
            freed = {}
            while len(freed) < len(holders):
                for kind in holders:
                    if kind not in freed and try_lock(kind):
                        freed[kind] = round(time.monotonic() - t0[kind], 2)
                assert time.monotonic() - min(t0.values()) < 30, \
                    f"a lock is still held 30 s after the link died: {freed}"
                time.sleep(POLL_S)
            follower.close()
    finally:
        for holder in holders.values():
            if holder.poll() is None:
                holder.kill()
            holder.wait()
        pg.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {"publisher_lock_freed_s": freed["publisher"],
               "publisher_detection_bound_s": bounds["publisher"],
               "publisher_takeover_bound_s": round(freed["publisher"] + FOLLOWER_RETRY_S, 2),
               "plain_session_freed_s": freed["plain"],
               "plain_detection_bound_s": bounds["plain"]}
    write_reliability("pg_dead_client", figures)
    print(f"\nadvisory locks of vanished clients freed: {figures}")
    assert freed["publisher"] <= PUBLISHER_FREED_MAX_S, figures
    assert freed["publisher"] + FOLLOWER_RETRY_S < TAKEOVER_TARGET_S, figures
    assert freed["plain"] <= bounds["plain"] + 0.5, figures
