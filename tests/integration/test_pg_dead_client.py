"""PostgreSQL ends the session of a client whose host vanished without closing its connection,
and with it the advisory lock the session held (issue 19: the outbox publisher's lock passes to
another replica < 5 s after the holder's node dies).

kill -9 of a process closes its sockets (the kernel sends FIN), which PostgreSQL notices at once;
a node that loses power or its network sends nothing.  Here the lock holder runs in a network
namespace of its own behind a veth pair, takes the lock and then sends a statement every 100 ms
(the outbox publisher's idle poll); its link is then set down (packets dropped, no FIN or RST)
and the holder killed.  A follower on loopback asks for the lock every 100 ms.  scripts/pg.sh's
settings (TCP keepalives 1 s + 1 s x 2, tcp_user_timeout 3 s: the chart's
postgresql.deadClientDetection) bound the wait to ~3 s; the publisher's own retry (every 1 s)
adds at most a second.  Without them the lock stayed held for more than 60 s (PostgreSQL 15's
defaults: the kernel's keepalive after 2 hours, ~15 minutes of retransmissions).

Needs root and `ip netns` (skipped otherwise).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg2
import pytest

from harness import Postgres, superuser_sql, write_reliability

DETECTION_BOUND_S = 3.0  # max(idle + interval x count, tcp_user_timeout) of scripts/pg.sh
POLL_S = 0.1
FOLLOWER_RETRY_S = 1.0  # OUTBOX_FOLLOW_MS (common/src/outbox.c)
TAKEOVER_TARGET_S = 5.0
LOCK_KEY = 4242

# The lock holder, run in the namespace: takes the lock, says so, then a statement every 100 ms.
HOLDER = """
import sys, time
import psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT pg_try_advisory_lock(%s)", (int(sys.argv[2]),))
print(cur.fetchone()[0], flush=True)
while True:
    cur.execute("SELECT 1")
    cur.fetchone()
    time.sleep(0.1)
"""


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


def netns_usable():
    """Root with the right to make network namespaces and veth pairs (a container without
    CAP_NET_ADMIN has neither)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    probe = f"mrprobe{os.getpid() % 100000}"
    ok = run("ip", "netns", "add", probe, check=False).returncode == 0
    if ok:
        ok = run("ip", "netns", "exec", probe, "ip", "link", "add", "p0", "type", "veth", "peer",
                 "name", "p1", check=False).returncode == 0
        run("ip", "netns", "del", probe, check=False)
    return ok


@pytest.fixture
def namespace():
    """A network namespace joined to the host by a veth pair: (namespace, host address,
    namespace address, the namespace side's link)."""
    tag = os.getpid() % 100000
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


@pytest.mark.skipif(not netns_usable(), reason="needs root and ip netns")
def test_a_vanished_clients_advisory_lock_is_released_within_the_bound(namespace):
    ns, host_ip, ns_ip, ns_if = namespace
    workdir = tempfile.mkdtemp(prefix="mr-it-dead-", dir="/tmp")
    pg = Postgres(workdir)
    holder = None
    try:
        pg.start()
        # Reachable on the veth address too, from the namespace's address.
        superuser_sql(pg, f"ALTER SYSTEM SET listen_addresses = '127.0.0.1,{host_ip}'")
        with open(os.path.join(pg.dir, "pg_hba.conf"), "a") as f:
            f.write(f"host all all {ns_ip}/32 scram-sha-256\n")
        pg.stop()
        pg.start()
        remote = pg.dsn("postgres").replace("@127.0.0.1:", f"@{host_ip}:")
        holder = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", HOLDER,
                                   remote, str(LOCK_KEY)], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "True", "the holder did not get the lock"
        follower = psycopg2.connect(pg.dsn("postgres"))
        follower.autocommit = True
        cur = follower.cursor()

        def try_lock():
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            return cur.fetchone()[0]

        assert try_lock() is False, "the lock is not held by the holder"
        time.sleep(1.05)
        t0 = time.monotonic()
        run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "down")
        holder.kill()
        while not try_lock():
            assert time.monotonic() - t0 < 30, "the lock is still held 30 s after the link died"
            time.sleep(POLL_S)
        freed = time.monotonic() - t0
        follower.close()
        takeover = freed + FOLLOWER_RETRY_S
        write_reliability("pg_dead_client", {"lock_freed_s": round(freed, 2),
                                             "takeover_bound_s": round(takeover, 2),
                                             "detection_bound_s": DETECTION_BOUND_S})
        print(f"\nadvisory lock of a vanished client freed after {freed:.2f} s (bound "
              f"{DETECTION_BOUND_S:g} s); publisher takeover at most {takeover:.2f} s")
        assert freed <= DETECTION_BOUND_S + 1.0, freed
        assert takeover < TAKEOVER_TARGET_S, takeover
    finally:
        if holder and holder.poll() is None:
            holder.kill()
        if holder:
            holder.wait()
        pg.kill()
        shutil.rmtree(workdir, ignore_errors=True)
