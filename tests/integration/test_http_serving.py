"""How a service serves connections, directly on its port, with the default NUM_THREADS and
HEADER_TIMEOUT_MS (issue 18):

- 256 keep-alive clients connected at once are all served: each civetweb worker serves one
  connection for its whole life, so with fewer workers the clients beyond them got no answer
  until others hung up (16 of 32 waited 15 s with the old default of 16).
- A connection that sends nothing, half a request line or headers that never end, and a kept-alive
  connection that sends no next request, are closed after HEADER_TIMEOUT_MS.
- 40 idle connections do not delay anybody else (they stalled a 16-thread service for ~60 s).
- The Connection header of every reply says what civetweb then does with the connection, which
  the gateway relies on now that it keeps upstream connections alive.
"""
import socket
import threading
import time

import pytest

from harness import wait_until

HEADER_TIMEOUT_S = 5.0  # HEADER_TIMEOUT_MS's default
CLIENTS = 256
ROUNDS = 4


def read_response(sock, pending=None):
    """One HTTP response from sock: (status, headers with lower-case names, body); None when the
    server closed the connection before a response began.  Bytes after the response are an error,
    unless pending (a bytearray) is given: it then holds what came before and keeps what follows
    (pipelined responses)."""
    data = bytes(pending or b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if data:
                raise AssertionError(f"connection closed inside a response head: {data!r}")
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        rest += chunk
    if pending is None:
        assert len(rest) == length, "bytes after the body"
    else:
        pending[:] = rest[length:]
    return status, headers, rest[:length]


def closed_after(sock, limit):
    """Seconds until the server closed sock (reading and dropping whatever it sent), or
    pytest.fail after limit seconds."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"connection still open after {limit} s")
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def svc(stack):
    """A room-service of its own with the defaults of NUM_THREADS and HEADER_TIMEOUT_MS (the
    session's services run with fewer threads)."""
    s = stack.room_service(tag="room-serving-defaults")
    s.env.pop("NUM_THREADS")
    s.start()
    yield s
    s.stop()


def connect(svc):
    return socket.create_connection(("127.0.0.1", svc.port), timeout=30)


def test_256_keep_alive_clients_are_all_served(svc):
    """Every client keeps its connection and none may start round n + 1 before all have their
    answer of round n: a client without a worker makes the barrier time out."""
    socks = [connect(svc) for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS, timeout=30)
    answers = [0] * CLIENTS
    errors = []

    def client(i):
        try:
            for _ in range(ROUNDS):
                socks[i].sendall(b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
                got = read_response(socks[i])
                assert got and got[0] == 200 and got[1]["connection"] == "keep-alive", got
                answers[i] += 1
                barrier.wait()
        except Exception as exc:  # noqa: BLE001 - reported below with the client's number
            errors.append((i, repr(exc)))
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        for s in socks:
            s.close()
    starved = [i for i, n in enumerate(answers) if n < ROUNDS]
    assert not starved, (f"{len(starved)} of {CLIENTS} clients got fewer than {ROUNDS} answers "
                         f"in {time.monotonic() - t0:.1f} s; first errors: {errors[:3]}")


@pytest.mark.parametrize("sent", [b"", b"GET /live HT", b"GET /live HTTP/1.1\r\nHost: t\r\nX-A: 1"],
                         ids=["nothing", "half a request line", "unfinished headers"])
def test_a_connection_without_a_whole_header_is_closed_after_the_header_timeout(svc, sent):
    s = connect(svc)
    try:
        s.sendall(sent)
        waited = closed_after(s, HEADER_TIMEOUT_S + 10)
    finally:
        s.close()
    assert HEADER_TIMEOUT_S - 1 <= waited <= HEADER_TIMEOUT_S + 3, waited


def test_a_slowly_dripped_header_is_closed_after_the_header_timeout(svc):
    s = connect(svc)
    stop = threading.Event()

    def drip():
        for b in b"GET /live HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
            if stop.wait(0.5):
                return
            try:
                s.sendall(bytes([b]))
            except OSError:
                return

    t = threading.Thread(target=drip)
    t.start()
    try:
        waited = closed_after(s, HEADER_TIMEOUT_S + 10)
    finally:
        stop.set()
        t.join()
        s.close()
    assert HEADER_TIMEOUT_S - 1 <= waited <= HEADER_TIMEOUT_S + 3, waited


def test_an_idle_kept_alive_connection_is_closed_after_the_header_timeout(svc):
    s = connect(svc)
    try:
        s.sendall(b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = read_response(s)
        assert status == 200 and headers["connection"] == "keep-alive"
        waited = closed_after(s, HEADER_TIMEOUT_S + 10)
    finally:
        s.close()
    assert HEADER_TIMEOUT_S - 1 <= waited <= HEADER_TIMEOUT_S + 3, waited


def test_forty_idle_connections_do_not_delay_other_clients(svc, admin_headers):
    idle = [connect(svc) for _ in range(40)]
    try:
        time.sleep(0.3)
        worst = 0.0
        for _ in range(20):
            for path in ("/live", "/rooms?limit=5"):
                s = connect(svc)
                try:
                    t0 = time.monotonic()
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: "
                              f"{admin_headers['Authorization']}\r\n\r\n".encode())
                    status, _, _ = read_response(s)
                    worst = max(worst, time.monotonic() - t0)
                finally:
                    s.close()
                assert status == 200, path
        assert worst < 0.5, f"slowest answer {worst:.3f} s with 40 idle connections open"
        # And they are gone after the header timeout, workers free again.
        for s in idle:
            assert closed_after(s, HEADER_TIMEOUT_S + 10) <= HEADER_TIMEOUT_S + 3
    finally:
        for s in idle:
            s.close()


# (HTTP version, Connection header or None, kept alive?) - what civetweb 1.15 decides, measured
# against its own header functions before replies were assembled by http_reply.c.
KEEP_ALIVE_CASES = [
    ("1.1", None, True), ("1.1", "close", False), ("1.1", "Close", False),
    ("1.1", "keep-alive", True), ("1.1", "upgrade", False), ("1.1", "TE, close", False),
    ("1.1", "keep-alive, close", True), ("1.0", None, False), ("1.0", "keep-alive", True),
    ("1.0", "Keep-Alive", True), ("1.0", "TE, keep-alive", True),
]


@pytest.mark.parametrize("version,connection,kept", KEEP_ALIVE_CASES)
def test_the_connection_header_says_what_happens_to_the_connection(svc, version, connection,
                                                                   kept):
    s = connect(svc)
    try:
        extra = f"Connection: {connection}\r\n" if connection else ""
        s.sendall(f"GET /live HTTP/{version}\r\nHost: t\r\n{extra}\r\n".encode())
        status, headers, body = read_response(s)
        assert status == 200 and body.startswith(b"{")
        assert headers["connection"] == ("keep-alive" if kept else "close"), headers
        assert headers["x-request-id"] and headers["date"].endswith(" GMT")
        if kept:
            s.sendall(f"GET /live HTTP/{version}\r\nHost: t\r\n{extra}\r\n".encode())
            again = read_response(s)
            assert again and again[0] == 200
        else:
            assert closed_after(s, 3) < 3
    finally:
        s.close()


def test_a_request_body_left_unread_closes_the_connection_and_says_so(svc):
    """A POST refused before its body is read (no token: 401): civetweb closes the connection
    afterwards, so the reply must not promise keep-alive (the gateway would reuse it)."""
    s = connect(svc)
    try:
        body = b'{"name": "x"}' + b" " * 100000
        s.sendall(b"POST /rooms HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        status, headers, _ = read_response(s)
        assert status == 401 and headers["connection"] == "close", (status, headers)
    finally:
        s.close()


def test_many_replies_on_one_connection_are_whole_and_in_order(svc, admin_headers):
    """Pipelined requests on one connection: each reply complete, with its own request id."""
    s = connect(svc)
    try:
        ids = [f"pipe-{i}" for i in range(50)]
        s.sendall(b"".join(
            f"GET /rooms?limit=2 HTTP/1.1\r\nHost: t\r\nX-Request-ID: {rid}\r\nAuthorization: "
            f"{admin_headers['Authorization']}\r\n\r\n".encode() for rid in ids))
        pending = bytearray()
        for rid in ids:
            status, headers, body = read_response(s, pending)
            assert status == 200 and headers["x-request-id"] == rid and body.startswith(b"[")
    finally:
        s.close()
    wait_until(lambda: svc.proc.poll() is None, 1, what="service alive")
