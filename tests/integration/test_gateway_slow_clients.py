"""Idle and slow clients at the gateway cannot starve a service (issue 18 item 5).

A gateway of its own (scripts/nginx.sh with its defaults, as `make run` starts it) in front of a
room-service of its own with the default NUM_THREADS: the p99 latency of a steady stream of
ordinary requests is measured without and then during an attack of 500 connections that send
nothing and 50 slowloris clients that send one header byte a second.  The attack may add at most
50 ms to the p99.  The idle connections are closed by client_header_timeout (5 s), and so are the
slowloris ones, whose header never ends; nginx buffers requests, so none of them reaches the
service.  The figures go to build/reliability/gateway_slow_clients.json (write_reliability).
"""
import socket
import threading
import time

import pytest

from harness import Gateway, write_reliability

IDLE = 500
SLOWLORIS = 50
HEADER_TIMEOUT_S = 5.0  # client_header_timeout in helm/meeting-rooms/files/gateway.conf
STREAM_S = 6.0
STREAMS = 4
MAX_P99_INCREASE_S = 0.050


@pytest.fixture(scope="module")
def gateway(stack):
    room = stack.room_service(tag="room-slow-clients")
    room.env.pop("NUM_THREADS")
    room.start()
    gw = Gateway(stack.gateway_dir, name="nginx-slow-clients")
    gw.start(stack.user.port, room.port, stack.reservation.port)
    yield gw
    gw.stop()
    room.stop()


def p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def steady_stream(port, headers, seconds):
    """STREAMS clients, each sending GET /rooms?limit=5 on one keep-alive connection one after the
    other for seconds: (latencies in seconds, statuses other than 200)."""
    latencies, bad = [], []
    lock = threading.Lock()
    request = (f"GET /rooms?limit=5 HTTP/1.1\r\nHost: t\r\nAuthorization: "
               f"{headers['Authorization']}\r\n\r\n").encode()

    def client():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        mine, wrong = [], []
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                t0 = time.monotonic()
                s.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    assert chunk, f"gateway closed the connection after {data!r}"
                    data += chunk
                head, rest = data.split(b"\r\n\r\n", 1)
                fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
                length = int(fields[b"content-length"])
                while len(rest) < length:
                    rest += s.recv(65536)
                mine.append(time.monotonic() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    wrong.append(head.split(b"\r\n", 1)[0])
                if fields.get(b"connection", b"").strip() == b"close":
                    # nginx ends a connection after keepalive_requests (1000) requests.
                    s.close()
                    s = socket.create_connection(("127.0.0.1", port), timeout=10)
        finally:
            s.close()
            with lock:
                latencies.extend(mine)
                bad.extend(wrong)

    threads = [threading.Thread(target=client) for _ in range(STREAMS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return latencies, bad


class Attack:
    """IDLE connections that send nothing and SLOWLORIS ones that send a header byte a second;
    records when the gateway closed each."""

    def __init__(self, port):
        self.port = port
        self.t0 = None
        self.idle, self.slow = [], []
        self.closed = {}  # socket -> seconds after its connect
        self.stop = threading.Event()
        self.dripper = threading.Thread(target=self._drip)

    def start(self):
        self.t0 = time.monotonic()
        for _ in range(IDLE):
            self.idle.append((socket.create_connection(("127.0.0.1", self.port), timeout=5),
                              time.monotonic()))
        for _ in range(SLOWLORIS):
            self.slow.append((socket.create_connection(("127.0.0.1", self.port), timeout=5),
                              time.monotonic()))
        self.dripper.start()

    def _drip(self):
        header = b"GET /rooms HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 1000
        i = 0
        while not self.stop.wait(1.0):
            for s, _ in self.slow:
                try:
                    s.sendall(header[i:i + 1])
                except OSError:
                    pass
            i += 1

    def wait_closed(self, limit):
        """Seconds after its connect at which each connection was closed by the gateway (None:
        still open at limit)."""
        deadline = self.t0 + limit
        out = {"idle": [], "slow": []}
        for kind, socks in (("idle", self.idle), ("slow", self.slow)):
            for s, at in socks:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    while s.recv(4096):
                        pass
                    out[kind].append(time.monotonic() - at)
                except ConnectionResetError:
                    out[kind].append(time.monotonic() - at)
                except TimeoutError:
                    out[kind].append(None)
        return out

    def close(self):
        self.stop.set()
        if self.dripper.is_alive():
            self.dripper.join()
        for s, _ in self.idle + self.slow:
            s.close()


def test_idle_and_slowloris_clients_do_not_delay_others(gateway, admin_headers):
    steady_stream(gateway.port, admin_headers, 1.0)  # warm up: connections, caches
    quiet, bad = steady_stream(gateway.port, admin_headers, STREAM_S)
    assert not bad and len(quiet) > 100, (bad[:3], len(quiet))

    attack = Attack(gateway.port)
    try:
        attack.start()
        # The stream runs while every attacking connection is open (they are closed at 5 s).
        during, bad = steady_stream(gateway.port, admin_headers, HEADER_TIMEOUT_S - 1.5)
        assert not bad and len(during) > 50, (bad[:3], len(during))
        closed = attack.wait_closed(HEADER_TIMEOUT_S + 10)
    finally:
        attack.close()

    increase = p99(during) - p99(quiet)
    figures = {"p99_quiet_ms": round(p99(quiet) * 1000, 2),
               "p99_attack_ms": round(p99(during) * 1000, 2),
               "requests_quiet": len(quiet), "requests_attack": len(during),
               "idle": IDLE, "slowloris": SLOWLORIS}
    write_reliability("gateway_slow_clients", figures)
    assert increase <= MAX_P99_INCREASE_S, figures

    for kind in ("idle", "slow"):
        times = closed[kind]
        still_open = sum(1 for t in times if t is None)
        assert still_open == 0, f"{still_open} {kind} connections still open after 15 s"
        assert all(HEADER_TIMEOUT_S - 1 <= t <= HEADER_TIMEOUT_S + 3 for t in times), (
            kind, min(times), max(times))
