"""Small asyncio HTTP/1.1 clients for the bench checks that wrk cannot make (bench/bench.py):

- keepalive_counts: N keep-alive connections, each sending requests one after the other for a
  few seconds and counting its own completed answers (does any connection starve?);
- Attack: idle TCP connections (no byte sent) and slowloris clients (headers sent one line at a
  time, never finished) held open in a background thread, reopened when the server closes them;
- stays_open: how long a connection that sent nothing stays open;
- timed_requests: a fixed list of requests, each sent once, over a few keep-alive connections,
  with each request's status and latency (series_create: series vs single bookings).
Everything talks to loopback only.
"""
import asyncio
import threading
import time


async def _read_response(reader):
    """Reads one response; returns (status, close) or raises on a closed connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            close = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def _keepalive_conn(host, port, request, deadline, connect_timeout):
    """One connection's loop: (completed answers, 2xx answers, reconnects, error or None)."""
    done = ok = reconnects = 0
    writer = None
    try:
        while time.monotonic() < deadline:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                        connect_timeout)
            writer.write(request)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                status, close = await asyncio.wait_for(_read_response(reader), left)
            except TimeoutError:
                break
            done += 1
            ok += 200 <= status < 300
            if close:
                writer.close()
                writer, reconnects = None, reconnects + 1
        return done, ok, reconnects, None
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        return done, ok, reconnects, type(exc).__name__
    finally:
        if writer is not None:
            writer.close()


def keepalive_counts(host, port, requests, connections, seconds):
    """connections keep-alive clients; client i sends requests[i % len(requests)] (raw bytes)
    again and again for seconds. Returns a summary with each connection's completed count."""
    async def main():
        deadline = time.monotonic() + seconds
        return await asyncio.gather(*(
            _keepalive_conn(host, port, requests[i % len(requests)], deadline, seconds)
            for i in range(connections)))
    t0 = time.monotonic()
    res = asyncio.run(main())
    took = time.monotonic() - t0
    counts = sorted(r[0] for r in res)
    errors = {}
    for r in res:
        if r[3]:
            errors[r[3]] = errors.get(r[3], 0) + 1
    return {"connections": connections, "seconds": round(took, 2),
            "completed": sum(counts), "ok": sum(r[1] for r in res),
            "rps": round(sum(counts) / max(took, 1e-9), 1),
            "min_per_connection": counts[0] if counts else 0,
            "median_per_connection": counts[len(counts) // 2] if counts else 0,
            "max_per_connection": counts[-1] if counts else 0,
            "starved_connections": sum(1 for c in counts if c == 0),
            "reconnects": sum(r[2] for r in res), "errors": errors}


def timed_requests(host, port, requests, connections, timeout=30.0):
    """Sends each raw request of the list once over connections keep-alive connections
    (connection i sends requests i, i + connections, … one after the other). Returns
    {"results": [(status or None, seconds, error name or None)] in the list's order,
    "seconds": wall time of the whole run, "reconnects"}."""
    results = [None] * len(requests)
    reconnects = 0

    async def conn(first):
        nonlocal reconnects
        writer = None
        try:
            for i in range(first, len(requests), connections):
                t0 = time.perf_counter()
                try:
                    if writer is None:
                        # Connecting is not part of the request's latency.
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(host, port), timeout)
                        t0 = time.perf_counter()
                    writer.write(requests[i])
                    status, close = await asyncio.wait_for(_read_response(reader), timeout)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    results[i] = (None, time.perf_counter() - t0, type(exc).__name__)
                    if writer is not None:
                        writer.close()
                    writer = None
                    continue
                results[i] = (status, time.perf_counter() - t0, None)
                if close:
                    writer.close()
                    writer, reconnects = None, reconnects + 1
        finally:
            if writer is not None:
                writer.close()

    async def main():
        await asyncio.gather(*(conn(i) for i in range(min(connections, len(requests)))))
    t0 = time.monotonic()
    asyncio.run(main())
    return {"results": results, "seconds": time.monotonic() - t0, "reconnects": reconnects}


class Attack:
    """idle connections that never send a byte and slowloris clients that send a request line
    and then one header line per interval, never the blank line; each is reopened (after a short
    pause) when the server closes it. Runs its own event loop in a thread: start(), stop()."""

    def __init__(self, host, port, idle, slowloris, idle_from="127.0.0.2",
                 slow_from="127.0.0.3", interval=1.0):
        self.host, self.port = host, port
        self.idle, self.slowloris = idle, slowloris
        self.idle_from, self.slow_from, self.interval = idle_from, slow_from, interval
        self.stats = {"idle_closed": 0, "slowloris_closed": 0, "connect_failed": 0,
                      "idle_open_max": 0, "slowloris_open_max": 0}
        self._open = {"idle": 0, "slowloris": 0}
        self._loop = None
        self._thread = None
        self._stop = None

    async def _one(self, kind, n):
        src = self.idle_from if kind == "idle" else self.slow_from
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    self.host, self.port, local_addr=(src, 0)), 5)
            except (OSError, TimeoutError):
                self.stats["connect_failed"] += 1
                await asyncio.sleep(0.5)
                continue
            self._open[kind] += 1
            key = f"{kind}_open_max"
            self.stats[key] = max(self.stats[key], self._open[kind])
            try:
                if kind == "slowloris":
                    writer.write(b"GET /rooms/1 HTTP/1.1\r\nHost: bench\r\n")
                i = 0
                while not self._stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(4096), self.interval)
                        if not data:
                            break
                    except TimeoutError:
                        pass
                    if kind == "slowloris":
                        i += 1
                        writer.write(f"X-Slow-{n}-{i}: a\r\n".encode())
                        await writer.drain()
                else:
                    writer.close()
                    return
                self.stats[f"{kind}_closed"] += 1
            except OSError:
                self.stats[f"{kind}_closed"] += 1
            finally:
                self._open[kind] -= 1
                writer.close()
            await asyncio.sleep(0.5)

    async def _main(self, ready):
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._one("idle", i)) for i in range(self.idle)]
        tasks += [asyncio.create_task(self._one("slowloris", i)) for i in range(self.slowloris)]
        ready.set()
        await self._stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._main(ready))
            self._loop.close()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)

    def open_now(self):
        return dict(self._open)

    def stop(self):
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(30)
        return dict(self.stats)


def stays_open(targets, cap):
    """For each (name, host, port): seconds until the server closed a connection that sent
    nothing, or None when it was still open after cap seconds."""
    async def one(host, port):
        t0 = time.monotonic()
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                left = cap - (time.monotonic() - t0)
                if left <= 0:
                    return None
                data = await asyncio.wait_for(reader.read(4096), left)
                if not data:
                    return round(time.monotonic() - t0, 2)
        except TimeoutError:
            return None
        except OSError:
            return round(time.monotonic() - t0, 2)
        finally:
            writer.close()

    async def main():
        return await asyncio.gather(*(one(h, p) for _, h, p in targets))
    return dict(zip((t[0] for t in targets), asyncio.run(main()), strict=True))
