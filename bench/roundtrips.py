#!/usr/bin/env python3
"""Round trips to PostgreSQL per request, endpoint by endpoint.

Starts the integration stack (tests/integration/harness.py, binaries from BIN_DIR) with each
service's database connection going through a counting TCP proxy, and sends each request a few
times (the least of REPEAT tries: a pooled connection's first use of a statement adds the round
trip that prepares it).  For a request the proxy counts:

- round trips: how often the client sent after hearing from the server (a pipelined batch, such
  as db_write's BEGIN + transaction id + statement, is one);
- statements: Query ('Q') and Execute ('E') messages.

The pool lends its connections to background threads too (revocation cache, metrics), so a
client turn whose statements are background work (BACKGROUND below, by the SQL text read from the
Parse or Query message, or from an earlier Parse of the prepared statement a Bind names) is not
counted, and connections that talk while no request runs and never serve one (the outbox
publisher's session) are left out.  Prints a Markdown table.

Usage: BIN_DIR=build/bin python3 bench/roundtrips.py [--json out.json]
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

REPEAT = 8
# Statements of the services' background threads, by a piece of their text.
BACKGROUND = ("token_revocations WHERE not_before >", "sent_at IS NULL", "SET sent_at",
              "pg_try_advisory_lock", "pg_advisory_unlock", "ctid = ANY")
BACKGROUND_EXACT = ("SELECT 1",)  # db_ping: /health and /ready


def background(text):
    return text in BACKGROUND_EXACT or any(b in text for b in BACKGROUND)


def cstr(buf, at):
    end = buf.index(b"\0", at)
    return buf[at:end].decode(errors="replace"), end + 1


class CountingProxy:
    """Forwards one service's PostgreSQL connections and counts, per connection, the client's
    turns and its statements."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.lock = threading.Lock()
        self.counts = {}  # connection number -> [round trips, statements]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, url, db):
        parts = urllib.parse.urlsplit(url)
        auth = parts.netloc.rsplit("@", 1)[0] + "@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{db}?sslmode=disable&gssencmode=disable"

    def snapshot(self):
        with self.lock:
            return {k: list(v) for k, v in self.counts.items()}

    def _accept(self):
        n = 0
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.upstream)
            n += 1
            with self.lock:
                self.counts[n] = [0, 0]
            # Counting starts once the session is ready (the server's first ReadyForQuery):
            # connecting and authenticating is not a request's work.
            state = {"heard": True, "ready": False, "n": n,
                     "turn": {"statements": 0, "texts": []}}
            threading.Thread(target=self._up, args=(n, client, server, state),
                             daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state),
                             daemon=True).start()

    def _close_turn(self, n, turn):
        """Counts a turn the server has begun to answer (under self.lock)."""
        if turn["statements"] and not any(background(t) for t in turn["texts"]):
            self.counts[n][0] += 1
            self.counts[n][1] += turn["statements"]
        turn["statements"], turn["texts"] = 0, []

    def _up(self, n, client, server, state):
        buf, started, named = b"", False, {}
        turn = state["turn"]
        while True:
            data = client.recv(65536)
            if not data:
                break
            with self.lock:
                ready = state["ready"]
                state["heard"] = False
            buf += data
            if not started:  # the startup message has no type byte
                if len(buf) < 4 or len(buf) < int.from_bytes(buf[:4], "big"):
                    server.sendall(data)
                    continue
                buf, started = buf[int.from_bytes(buf[:4], "big"):], True
            while len(buf) >= 5 and len(buf) >= 1 + int.from_bytes(buf[1:5], "big"):
                kind, body = buf[:1], buf[5:1 + int.from_bytes(buf[1:5], "big")]
                with self.lock:
                    if ready and kind == b"Q":
                        turn["statements"] += 1
                        turn["texts"].append(cstr(body, 0)[0])
                    elif ready and kind == b"P":
                        name, at = cstr(body, 0)
                        text = cstr(body, at)[0]
                        named[name] = text
                        turn["texts"].append(text)
                    elif ready and kind == b"B":
                        _, at = cstr(body, 0)
                        turn["texts"].append(named.get(cstr(body, at)[0], ""))
                    elif ready and kind == b"E":
                        turn["statements"] += 1
                buf = buf[1 + int.from_bytes(buf[1:5], "big"):]
            server.sendall(data)
        server.close()

    def _down(self, server, client, state):
        buf = b""
        while True:
            data = server.recv(65536)
            if not data:
                break
            if not state["ready"]:
                buf += data
                while len(buf) >= 5 and len(buf) >= 1 + int.from_bytes(buf[1:5], "big"):
                    if buf[:1] == b"Z":
                        state["ready"] = True
                    buf = buf[1 + int.from_bytes(buf[1:5], "big"):]
            with self.lock:
                if not state["heard"]:
                    self._close_turn(state["n"], state["turn"])
                state["heard"] = True
            client.sendall(data)
        client.close()


def delta(before, after, background):
    rt = st = 0
    for k, (r, s) in after.items():
        if k in background:
            continue
        r0, s0 = before.get(k, [0, 0])
        rt += r - r0
        st += s - s0
    return rt, st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    stack = harness.Stack()
    stack.pg.start()
    stack.oidc.start()
    stack.kafka.start()
    proxies = {db: CountingProxy(int(urllib.parse.urlsplit(stack.pg.dsn(db)).port))
               for db in ("user_db", "room_db", "reservation_db")}
    stack.user = stack.user_service(DATABASE_URL=proxies["user_db"].dsn(stack.pg.dsn("user_db"),
                                                                         "user_db"))
    stack.room = stack.room_service(DATABASE_URL=proxies["room_db"].dsn(stack.pg.dsn("room_db"),
                                                                         "room_db"))
    stack.reservation = stack.reservation_service(
        DATABASE_URL=proxies["reservation_db"].dsn(stack.pg.dsn("reservation_db"),
                                                    "reservation_db"))
    rows = []
    try:
        for svc in (stack.user, stack.room, stack.reservation):
            svc.start()
        admin_tok, _ = harness.operator_token(stack.user, "boss@example.com", role="admin")
        user_tok, uid = harness.operator_token(stack.user, "rt@example.com")
        admin, user = harness.bearer(admin_tok), harness.bearer(user_tok)
        rs, rm, us = stack.reservation.url, stack.room.url, stack.user.url
        room = harness.create_room(rm, admin, time_zone="Europe/Berlin")
        harness.wait_known_room(rs, user, room["id"], timeout=30)
        day = 40
        made = []

        def create_utc():
            nonlocal day
            day += 1
            r = harness.book(rs, user, room["id"], harness.utc_at(day, 10),
                             harness.utc_at(day, 11))
            made.append(r.json()["id"])
            return r

        def create_local():
            nonlocal day
            day += 1
            t = harness.utc_at(day, 10)[:19]
            r = harness.book(rs, user, room["id"], t, harness.utc_at(day, 11)[:19])
            made.append(r.json()["id"])
            return r

        def create_key():
            nonlocal day
            day += 1
            return requests.post(f"{rs}/reservations", headers={**user, "Idempotency-Key":
                                                                f"k{day}"},
                                 json={"room_id": room["id"], "start_time":
                                       harness.utc_at(day, 10),
                                       "end_time": harness.utc_at(day, 11)}, timeout=10)

        def conflict():
            return harness.book(rs, user, room["id"], harness.utc_at(41, 10),
                                harness.utc_at(41, 11))

        def put():
            return requests.put(f"{rs}/reservations/{made[0]}", headers=user,
                                json={"purpose": f"p{time.monotonic()}"}, timeout=10)

        def put_move():
            nonlocal day
            day += 1
            return requests.put(f"{rs}/reservations/{made[1]}", headers=user,
                                json={"start_time": harness.utc_at(day, 12),
                                      "end_time": harness.utc_at(day, 13)}, timeout=10)

        def cancel():
            return requests.delete(f"{rs}/reservations/{made.pop()}", headers=user, timeout=10)

        date = harness.utc_at(41, 10)[:10]
        cases = [
            ("reservation", "POST /reservations (UTC times)", create_utc, 201),
            ("reservation", "POST /reservations (room-local times)", create_local, 201),
            ("reservation", "POST /reservations (Idempotency-Key)", create_key, 201),
            ("reservation", "POST /reservations (409 conflict)", conflict, 409),
            ("reservation", "PUT /reservations/{id} (purpose)", put, 200),
            ("reservation", "PUT /reservations/{id} (times)", put_move, 200),
            ("reservation", "DELETE /reservations/{id}", cancel, 204),
            ("reservation", "GET /reservations/{id}",
             lambda: requests.get(f"{rs}/reservations/{made[0]}", headers=user), 200),
            ("reservation", "GET /reservations",
             lambda: requests.get(f"{rs}/reservations?limit=20", headers=user), 200),
            ("reservation", "GET /availability",
             lambda: requests.get(f"{rs}/availability?room_id={room['id']}&date={date}",
                                  headers=user), 200),
            ("reservation", "GET /availability/rooms/{id}",
             lambda: requests.get(f"{rs}/availability/rooms/{room['id']}?start_date={date}"
                                  f"&end_date={date}", headers=user), 200),
            ("room", "POST /rooms", lambda: requests.post(
                f"{rm}/rooms", headers=admin, json={"name": harness.unique_name(),
                                                    "capacity": 4}), 201),
            ("room", "PUT /rooms/{id}", lambda: requests.put(
                f"{rm}/rooms/{room['id']}", headers=admin,
                json={"description": f"d{time.monotonic()}"}), 200),
            ("room", "GET /rooms/{id}",
             lambda: requests.get(f"{rm}/rooms/{room['id']}", headers=user), 200),
            ("room", "GET /rooms", lambda: requests.get(f"{rm}/rooms?limit=20", headers=user),
             200),
            ("user", "GET /users/me", lambda: requests.get(f"{us}/users/me", headers=user), 200),
            ("user", "PUT /users/me", lambda: requests.put(
                f"{us}/users/me", headers=user, json={"name": f"n{time.monotonic()}"}), 200),
            ("user", "GET /auth/google/login", lambda: requests.get(
                f"{us}/auth/google/login", allow_redirects=False), 302),
        ]
        db_of = {"reservation": "reservation_db", "room": "room_db", "user": "user_db"}
        # Warm every worker thread's connection, then find the background connections.
        time.sleep(2.0)
        for service, name, fn, want in cases:
            proxy = proxies[db_of[service]]
            s0 = proxy.snapshot()
            time.sleep(1.5)
            s1 = proxy.snapshot()
            background = {k for k, v in s1.items() if v != s0.get(k)}
            seen = []
            for _ in range(REPEAT):
                before = proxy.snapshot()
                r = fn()
                assert r.status_code == want, (name, r.status_code, r.text)
                time.sleep(0.15)
                seen.append(delta(before, proxy.snapshot(), background))
            rt = min(x[0] for x in seen)
            st = min(x[1] for x in seen)
            rows.append({"service": service, "request": name, "round_trips": rt,
                         "statements": st, "samples": seen})
    finally:
        stack.stop()
        stack.cleanup()
    print("| request | round trips | statements |")
    print("|---|---:|---:|")
    for row in rows:
        print(f"| {row['request']} | {row['round_trips']} | {row['statements']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
