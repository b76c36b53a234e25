"""The gateway in front of three replicas of each service (harness.Replicas, scripts/nginx.sh with
port lists, gateway.conf's upstream groups):
- GET requests are spread over every replica (each replica's own /metrics counts some);
- with one replica of each service killed (SIGKILL), then two of three, every GET is still
  answered (nginx passes it on to the next replica: each server of the group once);
- a POST that a dead replica refused (nothing was sent) goes on to a live one: one 201, one
  booking;
- a POST, PUT or DELETE that reached a replica which then dies (SIGSTOP after nginx sent it,
  then SIGKILL) is answered 502 and never sent to another replica: the booking is not made
  twice, the cancellation not applied elsewhere.
The replicas 2 and 3 run beside the session's stack (replica 1), on its databases and broker, and
are stopped at the end of the module.
"""
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

from harness import (
    ROOT,
    Gateway,
    Replicas,
    bearer,
    book,
    booked,
    create_room,
    operator_token,
    res_db_query,
    room_bookable,
    shift,
    utc_at,
    wait_until,
)

# One GET path per service (route template as /metrics names it).
GETS = {"user-service": ("/users/profile", "/users/profile"),
        "room-service": ("/rooms", "/rooms"),
        "reservation-service": ("/reservations", "/reservations")}


@pytest.fixture(scope="module")
def replicas(stack):
    r = Replicas(stack, 3, name="nginx-replicas").start()
    try:
        yield r
    finally:
        r.stop()
        # A replica killed here leaves its consumer group member behind until its session
        # times out (6 s, common/src/kafka.c): let the group settle before the next module.
        time.sleep(7)


@pytest.fixture(scope="module")
def tokens(stack):
    admin = operator_token(stack.user, f"rep-admin-{uuid.uuid4().hex[:6]}@example.com",
                           role="admin")
    emp = operator_token(stack.user, f"rep-emp-{uuid.uuid4().hex[:6]}@example.com")
    return bearer(admin[0]), bearer(emp[0])


@pytest.fixture(scope="module")
def room(stack, tokens):
    admin, emp = tokens
    room = create_room(stack.room.url, admin)
    wait_until(lambda: room_bookable(stack.reservation.url, emp, room["id"]), timeout=30,
               what="room bookable")
    return room


def gets_served(svc, route):
    """GET requests svc answered on route, by its /metrics (http_requests_total)."""
    text = requests.get(f"{svc.url}/metrics", timeout=10).text
    return sum(int(n) for n in re.findall(
        rf'^\w*http_requests_total\{{route="{re.escape(route)}",method="GET",status="\d+"\}} '
        r'(\d+)$', text, re.M))


def gateway_lines(gateway, needle, timeout=5.0):
    """The gateway's access-log lines containing needle (the log is flushed once a second)."""
    path = f"{gateway.dir}/access.log"

    def lines():
        with open(path, encoding="utf-8") as f:
            return [ln for ln in f if needle in ln]

    return wait_until(lines, timeout=timeout, interval=0.2, what=f"access log line {needle}")


def test_nginx_sh_writes_a_line_per_replica_and_refuses_bad_port_lists(replicas, tmp_path):
    conf = open(f"{replicas.gateway.dir}/gateway.conf", encoding="utf-8").read()
    for group, name in (("user", "user-service"), ("room", "room-service"),
                        ("reservation", "reservation-service")):
        ports = [svc.port for svc in replicas.of(name)]
        for kind, suffix in (("retry", " max_fails=0"), ("once", " fail_timeout=2s")):
            body = re.search(rf"^upstream {group}_{kind} \{{\n(.*?)\n    keepalive ", conf,
                             re.S | re.M).group(1)
            assert body.splitlines() == [f"    server 127.0.0.1:{p}{suffix};" for p in ports]
    for bad, message in (("5000,,5010", "bad port list"), ("5000,", "bad port list"),
                         ("5000;5010", "bad port list"), ("5000,70000", "bad port: 70000"),
                         ("5000,05010", "bad port: 05010"), ("5000,5010,5000", "named twice")):
        out = subprocess.run([f"{ROOT}/scripts/nginx.sh", "start", str(tmp_path / "gw"), "18080",
                              "5000", bad, "5002"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and message in out.stderr, (bad, out.stderr)
        assert not (tmp_path / "gw").exists()


def test_gets_are_spread_over_every_replica(replicas, tokens):
    _, emp = tokens
    for name, (path, route) in GETS.items():
        before = [gets_served(svc, route) for svc in replicas.of(name)]
        for _ in range(30):
            r = requests.get(replicas.gateway.url + path, headers=emp, timeout=10)
            assert r.status_code == 200, (name, r.status_code, r.text)
        served = [gets_served(svc, route) - b
                  for svc, b in zip(replicas.of(name), before, strict=True)]
        assert sum(served) == 30 and all(n >= 3 for n in served), (name, served)


def test_reload_takes_a_replica_out_of_the_gateway_and_back(replicas, tokens):
    """nginx.sh reload without a replica's port: no request reaches it, none fails; reloaded with
    it, it serves again."""
    _, emp = tokens
    out = replicas.of("room-service")[2]
    before = gets_served(out, "/rooms")
    replicas.out.add(out)
    try:
        replicas.reload()
        for _ in range(20):
            r = requests.get(replicas.gateway.url + "/rooms", headers=emp, timeout=10)
            assert r.status_code == 200, r.text
        assert gets_served(out, "/rooms") == before
    finally:
        replicas.out.discard(out)
        replicas.reload()
    for _ in range(20):
        assert requests.get(replicas.gateway.url + "/rooms", headers=emp,
                            timeout=10).status_code == 200
    assert gets_served(out, "/rooms") > before


def test_every_get_is_answered_with_one_then_two_replicas_of_three_killed(replicas, tokens):
    _, emp = tokens
    try:
        for dead in (1, 2):
            for name in GETS:
                replicas.of(name)[dead].stop(signal.SIGKILL)
            failed = []
            for _ in range(20):
                for name, (path, _route) in GETS.items():
                    r = requests.get(replicas.gateway.url + path, headers=emp, timeout=15)
                    if r.status_code != 200:
                        failed.append((name, dead, r.status_code, r.text))
            assert not failed, failed
    finally:
        replicas.restart([svc for name in GETS for svc in replicas.of(name)[1:]])


def test_a_post_refused_by_a_dead_replica_goes_to_a_live_one_once(replicas, tokens, room, stack):
    _, emp = tokens
    dead = replicas.of("reservation-service")[1]
    dead.stop(signal.SIGKILL)
    try:
        purposes = []
        for i in range(8):
            start = utc_at(40 + i, 9)
            purpose = f"refused-{uuid.uuid4().hex[:8]}"
            purposes.append(purpose)
            r = book(replicas.gateway.url, {**emp, "X-Request-ID": purpose}, room["id"], start,
                     shift(start, hours=1), purpose=purpose)
            assert r.status_code == 201, r.text
        for purpose in purposes:
            rows = res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE purpose = %s",
                                purpose)
            assert rows == [(1,)], (purpose, rows)
        # At least one of them was refused by the dead replica first and passed on (nginx
        # leaves a refusing server out for 10 s afterwards, per worker).
        passed_on = [ln for p in purposes for ln in gateway_lines(replicas.gateway, f"rid={p} ")
                     if f"127.0.0.1:{dead.port}, " in ln]
        assert passed_on, "no POST was refused by the dead replica first"
    finally:
        replicas.restart([dead])


def hung_request(stopped, send, tries=12):
    """Sends requests (send(i) -> response) one at a time until one hangs: nginx sent it to the
    stopped replica (the others were answered by a live one).  Returns (i, its thread, the dict
    its response will be in, under "r")."""
    for i in range(tries):
        result = {}
        t = threading.Thread(target=lambda i=i, result=result: result.update(r=send(i)))
        t.start()
        t.join(1.0)
        if t.is_alive():
            return i, t, result
        assert result["r"].status_code < 500, result["r"].text
    raise AssertionError(f"no request reached the stopped replica on port {stopped.port}")


def test_a_request_sent_to_a_replica_that_dies_is_never_repeated(replicas, tokens, room, stack):
    """A POST, a PUT and a DELETE that nginx sent to a replica that then died: each answered 502
    and none applied by another replica.  nginx itself counts PUT and DELETE idempotent and
    would send them to the next replica after the error (gateway.conf: @once)."""
    _, emp = tokens
    res = replicas.of("reservation-service")
    victim = res[1]
    # A gateway of its own over replicas 1 and 2 of reservation-service: a request that hangs is
    # on the victim, and no replica is left out for an earlier test's failure (max_fails).
    gateway = Gateway(stack.gateway_dir, name="nginx-replicas-once", env=stack.gateway.env)
    gateway.start(stack.user.port, stack.room.port, [res[0].port, victim.port])
    tag = uuid.uuid4().hex[:8]
    targets = {method: [booked(stack.reservation.url, emp, room["id"], utc_at(day, 9),
                               utc_at(day, 10), purpose=f"{method}-{tag}")["id"]
                        for day in range(first, first + 6)]
               for method, first in (("PUT", 60), ("DELETE", 70))}

    def post(i):
        start = utc_at(80 + i, 9)
        return book(gateway.url, {**emp, "X-Request-ID": f"POST-{tag}-{i}"}, room["id"],
                    start, shift(start, hours=1), purpose=f"POST-{tag}-{i}")

    def change(method):
        def send(i):
            return requests.request(
                method, f"{gateway.url}/reservations/{targets[method][i]}",
                json={"purpose": f"changed-{tag}"} if method == "PUT" else None,
                headers={**emp, "X-Request-ID": f"{method}-{tag}-{i}"}, timeout=30)
        return send

    hung = {}
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        for method, send in (("POST", post), ("PUT", change("PUT")),
                             ("DELETE", change("DELETE"))):
            hung[method] = hung_request(victim, send, tries=6)
    finally:
        victim.stop(signal.SIGKILL)
    try:
        for method, (i, thread, result) in hung.items():
            thread.join(20)
            r = result["r"]
            assert r.status_code == 502 and r.json()["code"] == "bad_gateway", (method, r.text)
            (line,) = gateway_lines(gateway, f"rid={method}-{tag}-{i} ")
            # Sent to the victim alone, never passed on.
            assert f"upstream=127.0.0.1:{victim.port} " in line, line
        # Nothing of them applied: no booking, no change, no cancellation.
        i = hung["POST"][0]
        assert res_db_query(stack.pg, "SELECT count(*) FROM reservations WHERE purpose = %s",
                            f"POST-{tag}-{i}") == [(0,)]
        for method in ("PUT", "DELETE"):
            rid = targets[method][hung[method][0]]
            assert res_db_query(stack.pg, "SELECT purpose, status FROM reservations WHERE id = %s",
                                rid) == [(f"{method}-{tag}", "confirmed")], method
    finally:
        gateway.stop()
        replicas.restart([victim])
