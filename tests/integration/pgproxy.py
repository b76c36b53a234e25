"""A fault-injecting TCP proxy between a service and PostgreSQL (test_db_lost_reply.py).

It forwards both directions byte for byte and reads the server's side as protocol messages
(a type byte and a 4-byte length; connect with sslmode=disable and gssencmode=disable so that
no untyped negotiation byte comes first). Armed with a marker and a fault, it dooms the first
connection whose client sends the marker (one shot: later connections, such as the service's
retry or its question about the outcome, pass untouched):

- "reply":   closes both sides right before forwarding the server's next ReadyForQuery with
             transaction status 'I' (idle), the answer that tells the client its statement or
             COMMIT is done: the write committed, the client never hears it.
- "request": closes both sides when the client sends COMMIT, before forwarding it: the server
             never receives COMMIT and rolls the transaction back when it sees the end of the
             session.
- "stall":   when the client sends COMMIT, closes the client's side only and forwards nothing
             more: the server's session stays open, idle in its transaction, like a backend
             behind a half-open TCP connection.

arm(..., outage=seconds) also refuses every new connection (accepts and closes it at once) for
that long after the fault fired, like a database that is restarting: the client cannot open a
session to ask what became of its transaction until the outage ends.

freeze() makes the database stop answering, like a paused or blackholed host: nothing more is
forwarded in either direction and new connections are left unanswered (the kernel completes
their handshake) until thaw(), which forwards what was held back.
"""
import socket
import threading
import time
import urllib.parse

FAULTS = ("reply", "request", "stall")


class PgProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        self.marker = None
        self.fault = None
        self.outage = 0.0
        self.refuse_until = 0.0  # time.monotonic() before which new connections are refused
        self.refused = 0         # connections refused so far
        self.fired = []          # the faults injected, in order
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.sockets = set()
        self.thawed = threading.Event()
        self.thawed.set()

    def dsn(self, url, db):
        """url (postgresql://user:password@host:port) pointed at the proxy, for database db."""
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        return f"postgresql://{auth}127.0.0.1:{self.port}/{db}?sslmode=disable&gssencmode=disable"

    def arm(self, marker, fault="reply", outage=0.0):
        assert fault in FAULTS, fault
        with self.lock:
            self.marker = marker.encode() if isinstance(marker, str) else marker
            self.fault = fault
            self.outage = outage

    def freeze(self):
        self.thawed.clear()

    def thaw(self):
        self.thawed.set()

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.stopping = True
        self.thawed.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.sockets)
        for s in socks:
            _close(s)

    # -- internals --
    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.thawed.wait()  # frozen: this one and those behind it get no answer
            with self.lock:
                refuse = time.monotonic() < self.refuse_until
                self.refused += refuse
            if refuse:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            conn = _Conn(self, client, server)
            with self.lock:
                self.sockets.update((client, server))
            threading.Thread(target=conn.client_to_server, daemon=True).start()
            threading.Thread(target=conn.server_to_client, daemon=True).start()

    def record(self, conn, data):
        """Called with every chunk a client sends (conn tells the connections apart); a
        subclass may keep them (test_db_pool.py)."""

    def _claim(self, data):
        """The fault this connection is doomed with, if data carries the armed marker."""
        with self.lock:
            if self.marker is not None and self.marker in data:
                fault, self.marker, self.fault = self.fault, None, None
                return fault
        return None


def _close(s, how=None):
    try:
        if how is not None:
            s.shutdown(how)
        else:
            s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    if how is None:
        try:
            s.close()
        except OSError:
            pass


class _Conn:
    def __init__(self, proxy, client, server):
        self.proxy, self.client, self.server = proxy, client, server
        self.doomed = None       # the fault, once the marker went by
        self.dead = False

    def _fire(self, what):
        with self.proxy.lock:
            self.proxy.fired.append(what)
            if self.proxy.outage:
                self.proxy.refuse_until = time.monotonic() + self.proxy.outage

    def client_to_server(self):
        tail = b""
        while not self.dead:
            try:
                data = self.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            self.proxy.record(self, data)
            window = tail + data
            if self.doomed is None:
                self.doomed = self.proxy._claim(window)
            elif self.doomed in ("request", "stall") and b"COMMIT" in data:
                self._fire(self.doomed)
                self.dead = True
                _close(self.client)
                if self.doomed == "request":
                    _close(self.server)
                return   # "stall": the server's side stays open and silent
            tail = window[-256:]
            self.proxy.thawed.wait()
            try:
                self.server.sendall(data)
            except OSError:
                break
        if not self.dead:
            self.dead = True
            _close(self.server)
            _close(self.client)

    def server_to_client(self):
        buf = b""
        while not self.dead:
            try:
                data = self.server.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            out = b""
            while len(buf) >= 5:
                length = int.from_bytes(buf[1:5], "big")
                if len(buf) < 1 + length:
                    break
                msg, buf = buf[:1 + length], buf[1 + length:]
                if self.doomed == "reply" and msg[:1] == b"Z" and msg[5:6] == b"I":
                    if out:
                        try:
                            self.client.sendall(out)
                        except OSError:
                            pass
                    self._fire("reply")
                    self.dead = True
                    _close(self.client)
                    _close(self.server)
                    return
                out += msg
            self.proxy.thawed.wait()
            if out:
                try:
                    self.client.sendall(out)
                except OSError:
                    break
        if not self.dead:
            self.dead = True
            _close(self.client)
            _close(self.server)
