"""Hostile input against all three services (docs/api.md conventions and fields): SQL-injection
strings in every string field and string query parameter, oversized and chunked bodies, oversized
and numerous headers, deep nesting, broken UTF-8, NUL, huge numbers, non-positive ids and slow
clients.  Nothing may answer 500 or crash; the services stay healthy and sanitizer-clean."""
import json
import socket
import time
import uuid

import pytest
import requests

from harness import (
    RoomPool,
    assert_error,
    bearer,
    book,
    booked,
    create_room,
    operator_token,
    unique_name,
    utc_at,
)
from test_hardening_authz import ROUTES

SERVICES = ("user", "room", "reservation")
SQLI = ["'; DROP TABLE rooms; --", "' OR '1'='1", r"\'; SELECT pg_sleep(5); --", "$1", "%' --"]
SQLI_IDS = ["drop-table", "or-1-eq-1", "pg-sleep", "dollar-1", "like-comment"]
SLOW = 4.0  # seconds; pg_sleep(5) taking effect would show
MEGABYTE = 1 << 20
HEADER_TIMEOUT_S = 5  # the services' HEADER_TIMEOUT_MS default, which the harness keeps


# ---- raw HTTP ----

def exchange(port, data, timeout=5.0):
    """Sends bytes on a fresh connection; returns everything read until the server closes it
    or nothing arrives for timeout seconds."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
    return out


def responses(raw):
    """The HTTP responses in raw, as [(status, headers, body)]."""
    found = []
    while raw.startswith(b"HTTP/"):
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:] if ":" in line)}
        n = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:n]))
        raw = rest[n:]
    return found


def json_error(status, headers, body):
    assert headers.get("content-type", "").startswith("application/json"), headers
    err = json.loads(body)
    assert err["error"] is True and err["status_code"] == status, err
    return err


def stall(port, data=b"GET /rea"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    return s


def detached(stack, service, tag, **env):
    """An extra instance of a service on the session's databases whose log this module judges
    itself (it is not in stack.services, so the session's sanitizer check does not see it)."""
    svc = getattr(stack, f"{service}_service")(tag=tag, **env)
    stack.services.remove(svc)
    return svc


# ---- fixtures ----

@pytest.fixture(scope="module")
def emp(stack):
    token, uid = operator_token(stack.user, f"hardening-input-{uuid.uuid4().hex[:8]}@example.com")
    return bearer(token), uid


@pytest.fixture(scope="module")
def pool(stack, admin_headers):
    return RoomPool(stack.room.url, stack.reservation.url, admin_headers, batch=2)


@pytest.fixture(scope="module")
def bookable(pool):
    return pool.take()


@pytest.fixture(scope="module")
def control_room(stack, admin_headers):
    return create_room(stack.room.url, admin_headers, name=unique_name("Hardening control"),
                       equipment=["Projector"], building="Main", description="plain")


@pytest.fixture(scope="module")
def control_user(stack, admin_headers):
    _, uid = operator_token(stack.user, f"hardening-control-{uuid.uuid4().hex[:8]}@example.com",
                            name="Hardening Control")
    return uid


def timed(fn, *args, **kwargs):
    t0 = time.monotonic()
    r = fn(*args, timeout=15, **kwargs)
    assert time.monotonic() - t0 < SLOW, ("slow answer", r.request.url)
    return r


def accepted_or_refused(r, ok):
    """ok (the value stored verbatim) or a 400/422 error; never anything else."""
    assert r.status_code in (ok, 400, 422), (r.status_code, r.text)
    if r.status_code != ok:
        assert r.json()["error"] is True
        return False
    return True


_slots = iter(range(10_000))


def slot():
    i = next(_slots)
    return utc_at(60 + i // 10, 8 + i % 10), utc_at(60 + i // 10, 9 + i % 10)


# ---- SQL-injection strings in bodies: stored verbatim or refused ----

@pytest.mark.parametrize("payload", SQLI, ids=SQLI_IDS)
def test_sqli_in_room_fields(stack, admin_headers, payload):
    url = stack.room.url
    body = {"name": f"Hardening {uuid.uuid4().hex[:8]} {payload}", "capacity": 5,
            "building": payload, "description": payload, "equipment": [payload]}
    r = timed(requests.post, f"{url}/rooms", json=body, headers=admin_headers)
    if accepted_or_refused(r, 201):
        room = timed(requests.get, f"{url}/rooms/{r.json()['id']}", headers=admin_headers).json()
        assert {k: room[k] for k in body} == body, room
        # Every field again through PUT, as a partial update each.
        for field, value in (("name", f"{payload} {uuid.uuid4().hex[:8]}"),
                             ("building", payload + "!"), ("description", "!" + payload),
                             ("equipment", [payload, "x"])):
            u = timed(requests.put, f"{url}/rooms/{room['id']}", json={field: value},
                      headers=admin_headers)
            if accepted_or_refused(u, 200):
                got = timed(requests.get, f"{url}/rooms/{room['id']}", headers=admin_headers)
                assert got.json()[field] == value, got.text


@pytest.mark.parametrize("payload", SQLI, ids=SQLI_IDS)
def test_sqli_in_profile_name(stack, emp, payload):
    headers, _ = emp
    r = timed(requests.put, f"{stack.user.url}/users/profile", json={"name": payload},
              headers=headers)
    if accepted_or_refused(r, 200):
        got = timed(requests.get, f"{stack.user.url}/users/profile", headers=headers)
        assert got.json()["name"] == payload, got.text


@pytest.mark.parametrize("payload", SQLI, ids=SQLI_IDS)
def test_sqli_in_admin_user_name(stack, admin_headers, payload):
    _, uid = operator_token(stack.user, f"hardening-sqli-{uuid.uuid4().hex[:8]}@example.com")
    r = timed(requests.put, f"{stack.user.url}/admin/users/{uid}", json={"name": payload},
              headers=admin_headers)
    if accepted_or_refused(r, 200):
        got = timed(requests.get, f"{stack.user.url}/admin/users/{uid}", headers=admin_headers)
        assert got.json()["name"] == payload, got.text


@pytest.mark.parametrize("payload", SQLI, ids=SQLI_IDS)
def test_sqli_in_reservation_purpose(stack, emp, bookable, payload):
    headers, _ = emp
    url = stack.reservation.url
    start, end = slot()
    r = timed(requests.post, f"{url}/reservations", headers=headers,
              json={"room_id": bookable["id"], "start_time": start, "end_time": end,
                    "purpose": payload})
    if accepted_or_refused(r, 201):
        rid = r.json()["id"]
        assert timed(requests.get, f"{url}/reservations/{rid}", headers=headers).json()[
            "purpose"] == payload
        u = timed(requests.put, f"{url}/reservations/{rid}", json={"purpose": payload + payload},
                  headers=headers)
        if accepted_or_refused(u, 200):
            assert timed(requests.get, f"{url}/reservations/{rid}", headers=headers).json()[
                "purpose"] == payload + payload


# ---- SQL-injection strings in query parameters: 200 or 400, never 500, never slow ----

QUERY_PARAMS = [("room", "/rooms", p) for p in ("q", "equipment", "cursor")] + \
               [("user", "/admin/users", p) for p in ("q", "role", "cursor")] + \
               [("user", "/auth/google/login", "login_hint")] + \
               [("reservation", "/reservations", p) for p in
                ("date", "status", "cursor", "user_id", "room_id", "from", "to")] + \
               [("reservation", "/availability", p) for p in ("room_id", "date")] + \
               [("reservation", "/availability/rooms/{id}", p) for p in ("start_date", "end_date")]


@pytest.mark.parametrize("service,path,param", QUERY_PARAMS,
                         ids=[f"{p}?{q}" for _, p, q in QUERY_PARAMS])
def test_sqli_in_query_parameters(stack, admin_headers, emp, bookable, service, path, param):
    url = getattr(stack, service).url + path.replace("{id}", str(bookable["id"]))
    for payload in SQLI:
        for headers in (admin_headers, emp[0]):
            r = timed(requests.get, url, params={param: payload}, headers=headers,
                      allow_redirects=False)
            assert r.status_code in (200, 302, 400, 403, 422), (payload, r.status_code, r.text)
            if r.status_code == 200:
                assert isinstance(r.json(), (list, dict)), r.text


@pytest.mark.parametrize("payload", SQLI + ["%", "_"], ids=SQLI_IDS + ["percent", "underscore"])
def test_room_search_matches_the_literal_text(stack, admin_headers, control_room, payload):
    url = stack.room.url
    mine = create_room(url, admin_headers, name=f"Hardening q {uuid.uuid4().hex[:8]} {payload}")
    for params in ({"q": payload}, {"q": payload, "limit": 200}):
        r = timed(requests.get, f"{url}/rooms", params=params, headers=admin_headers)
        assert r.status_code == 200, r.text
        found = {x["id"] for x in r.json()}
        assert mine["id"] in found and control_room["id"] not in found, (payload, r.text[:300])
    r = timed(requests.get, f"{url}/rooms", params={"equipment": payload}, headers=admin_headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert control_room["id"] not in {x["id"] for x in r.json()}


@pytest.mark.parametrize("payload", SQLI + ["%", "_"], ids=SQLI_IDS + ["percent", "underscore"])
def test_user_search_matches_the_literal_text(stack, admin_headers, control_user, payload):
    url = stack.user.url
    _, uid = operator_token(stack.user, f"hardening-q-{uuid.uuid4().hex[:8]}@example.com",
                            name=f"Q {payload}")
    r = timed(requests.get, f"{url}/admin/users", params={"q": payload, "limit": 200},
              headers=admin_headers)
    assert r.status_code == 200, r.text
    found = {x["id"] for x in r.json()}
    assert uid in found and control_user not in found, (payload, r.text[:300])


# ---- body size and transfer encoding ----

BODY_ROUTE = {"user": ("PUT", "/users/profile"), "room": ("POST", "/rooms"),
              "reservation": ("POST", "/reservations")}


def body_headers(service, admin_headers, emp):
    return {**(admin_headers if service == "room" else emp[0]), "Content-Type": "application/json"}


@pytest.mark.parametrize("service", SERVICES)
def test_one_megabyte_body_is_413(stack, admin_headers, emp, service):
    method, path = BODY_ROUTE[service]
    svc = getattr(stack, service)
    big = b'{"name":"' + b"x" * MEGABYTE + b'"}'
    r = requests.request(method, svc.url + path, data=big,
                         headers=body_headers(service, admin_headers, emp), timeout=15)
    assert_error(r, 413, "payload_too_large")

    def chunks():
        yield b'{"name":"'
        for _ in range(MEGABYTE // 8192):
            yield b"x" * 8192
        yield b'"}'
    r = requests.request(method, svc.url + path, data=chunks(),
                         headers=body_headers(service, admin_headers, emp), timeout=15)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r, 413, "payload_too_large")


def test_one_megabyte_body_through_the_gateway_is_413(stack, admin_headers):
    r = requests.post(f"{stack.gateway.url}/rooms", data=b"[" + b" " * MEGABYTE + b"]",
                      headers={**admin_headers, "Content-Type": "application/json"}, timeout=15)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large", r.text


def test_chunked_bodies_create(stack, admin_headers, emp, bookable):
    body = json.dumps({"name": unique_name("Chunked"), "capacity": 7}).encode()
    r = requests.post(f"{stack.room.url}/rooms", data=iter([body[:5], body[5:20], body[20:]]),
                      headers={**admin_headers, "Content-Type": "application/json"}, timeout=15)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201 and r.json()["capacity"] == 7, r.text
    start, end = slot()
    body = json.dumps({"room_id": bookable["id"], "start_time": start, "end_time": end}).encode()
    r = requests.post(f"{stack.reservation.url}/reservations",
                      data=iter([body[i:i + 7] for i in range(0, len(body), 7)]),
                      headers={**emp[0], "Content-Type": "application/json"}, timeout=15)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201 and r.json()["start_time"] == start, r.text


# ---- headers ----

@pytest.mark.parametrize("service", SERVICES)
def test_twenty_kilobyte_header_is_a_json_4xx(stack, admin_headers, service):
    svc = getattr(stack, service)
    r = requests.get(f"{svc.url}/ready", headers={**admin_headers, "X-Filler": "a" * 20000},
                     timeout=10)
    assert 400 <= r.status_code < 500, r.status_code
    err = r.json()
    assert err["error"] is True and err["status_code"] == r.status_code, err
    assert err["request_id"] == r.headers.get("X-Request-ID"), (err, r.headers)
    assert requests.get(f"{svc.url}/live", timeout=5).status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_a_hundred_headers_do_no_harm(stack, service):
    svc = getattr(stack, service)
    filler = b"".join(b"X-Filler-%d: %d\r\n" % (i, i) for i in range(100))
    got = responses(exchange(svc.port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                             + filler + b"\r\n"))
    assert len(got) == 1, got
    status, headers, body = got[0]
    # More headers than civetweb keeps (64): refused with its own plain-text 400 — the one error
    # page that also closes the connection, so nothing after the headers is read as a request.
    assert status == 400, got
    assert "close" in str(headers).lower()
    assert requests.get(f"{svc.url}/live", timeout=5).status_code == 200


def test_headers_past_the_limit_are_refused_not_dropped(stack, admin_headers):
    filler = b"".join(b"X-Filler-%d: %d\r\n" % (i, i) for i in range(100))
    inner = b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = (b"POST /rooms HTTP/1.1\r\nHost: x\r\nAuthorization: "
           + admin_headers["Authorization"].encode() + b"\r\nContent-Type: application/json\r\n"
           + filler + b"Content-Length: %d\r\n\r\n" % len(inner) + inner)
    got = responses(exchange(stack.room.port, raw, timeout=2))
    # One request went in, so one response comes out: the body is never a request of its own.
    assert len(got) == 1, [(s, b[:80]) for s, _, b in got]
    assert 400 <= got[0][0] < 500, got


# ---- deep nesting, UTF-8, NUL, numbers ----

@pytest.mark.parametrize("service", SERVICES)
def test_moderately_nested_json_is_400(stack, admin_headers, emp, service):
    method, path = BODY_ROUTE[service]
    svc = getattr(stack, service)
    for body in (b"[" * 200 + b"]" * 200, b'{"name":' + b"[" * 200 + b"]" * 200 + b"}"):
        r = requests.request(method, svc.url + path, data=body,
                             headers=body_headers(service, admin_headers, emp), timeout=10)
        assert r.status_code in (400, 422), r.text
        assert r.json()["error"] is True
    assert requests.get(f"{svc.url}/live", timeout=5).status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_deeply_nested_json_is_400_not_a_crash(stack, admin_headers, emp, service):
    # On an instance of its own: the crash must not take the session's services with it.
    env = {"KAFKA_CONSUMER_GROUP": f"hardening-{uuid.uuid4().hex[:8]}"} \
        if service == "reservation" else {}
    svc = detached(stack, service, f"hardening-nested-{service}", **env)
    svc.start()
    try:
        method, path = BODY_ROUTE[service]
        try:
            r = requests.request(method, svc.url + path, data=b"[" * 10000 + b"]" * 10000,
                                 headers=body_headers(service, admin_headers, emp), timeout=10)
            status = r.status_code
        except requests.ConnectionError as exc:
            status = exc
        time.sleep(0.2)
        alive = svc.proc.poll() is None
        assert status == 400 and alive and not svc.sanitizer_reports(), \
            (status, alive, svc.log_tail(5))
    finally:
        svc.stop()


@pytest.mark.parametrize("raw", [b'"\xff"', b'"a\xc0\x80b"', b'"\xed\xa0\x80"',
                                 b'"\xf4\x90\x80\x80"', b'"\\ud800"', b'"ok"\xff'],
                         ids=["ff", "overlong-nul", "surrogate-bytes", "above-10ffff",
                              "lone-surrogate-escape", "after-the-string"])
@pytest.mark.parametrize("service", SERVICES)
def test_invalid_utf8_in_a_json_string_is_400(stack, admin_headers, emp, service, raw):
    method, path = BODY_ROUTE[service]
    field = b"purpose" if service == "reservation" else b"name"
    r = requests.request(method, getattr(stack, service).url + path,
                         data=b'{"' + field + b'":' + raw + b"}",
                         headers=body_headers(service, admin_headers, emp), timeout=10)
    assert_error(r, 400, "bad_request")


NUL_FIELDS = [("room", "POST", "/rooms", f) for f in
              ("name", "building", "description", "time_zone", "equipment")] + \
             [("user", "PUT", "/users/profile", f) for f in ("name", "picture")] + \
             [("user", "PUT", "/admin/users/{uid}", f) for f in ("name", "email")] + \
             [("reservation", "POST", "/reservations", f) for f in ("purpose", "start_time")] + \
             [("reservation", "PUT", "/reservations/{rid}", f) for f in ("purpose", "end_time")]


@pytest.mark.parametrize("service,method,path,field", NUL_FIELDS,
                         ids=[f"{m} {p} {f}" for _, m, p, f in NUL_FIELDS])
def test_nul_in_a_string_is_422_naming_the_field(stack, admin_headers, emp, bookable, service,
                                                 method, path, field):
    start, end = slot()
    valid = {"/rooms": {"name": unique_name("Nul"), "capacity": 3},
             "/users/profile": {"name": "Nul"}, "/admin/users/{uid}": {"name": "Nul"},
             "/reservations": {"room_id": bookable["id"], "start_time": start, "end_time": end},
             "/reservations/{rid}": {"purpose": "nul"}}[path]
    headers = admin_headers if path in ("/rooms", "/admin/users/{uid}") else emp[0]
    if "{rid}" in path:
        path = path.replace("{rid}", str(booked(stack.reservation.url, emp[0], bookable["id"],
                                                start, end)["id"]))
    path = path.replace("{uid}", str(emp[1]))
    value = "a\u0000b"
    valid[field] = [value] if field == "equipment" else value
    r = requests.request(method, getattr(stack, service).url + path, json=valid, headers=headers,
                         timeout=10)
    assert_error(r, 422, "validation_failed", detail=field)


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"99999999999999999999",
                                    b"-99999999999999999999", b"1e308", b"9223372036854775808"])
def test_huge_numbers_are_400_or_422(stack, admin_headers, emp, bookable, number):
    r = requests.post(f"{stack.room.url}/rooms",
                      data=b'{"name":"%s","capacity":%s}' % (unique_name("Huge").encode(), number),
                      headers={**admin_headers, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code in (400, 422) and r.json()["error"] is True, r.text
    if r.status_code == 422:
        assert "capacity" in r.json()["details"], r.text
    r = requests.post(f"{stack.room.url}/rooms",
                      data=b'{"name":"%s","capacity":3,"floor":%s}' % (
                          unique_name("Huge").encode(), number),
                      headers={**admin_headers, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code in (400, 422) and r.json()["error"] is True, r.text
    start, end = slot()
    r = requests.post(f"{stack.reservation.url}/reservations",
                      data=b'{"room_id":%s,"start_time":"%s","end_time":"%s"}' % (
                          number, start.encode(), end.encode()),
                      headers={**emp[0], "Content-Type": "application/json"}, timeout=10)
    assert r.status_code in (400, 422) and r.json()["error"] is True, r.text
    r = requests.get(f"{stack.reservation.url}/reservations", params={"room_id": number.decode()},
                     headers=emp[0], timeout=10)
    assert r.status_code == 400, r.text


# ---- non-positive ids ----

ID_ROUTES = [(s, m, p) for s, m, p, _, _ in ROUTES if "{id}" in p]
BAD_IDS = ["0", "-1", "00", "-0", "+1", "1.0", "0x1", "99999999999999999999"]


@pytest.mark.parametrize("service,method,path", ID_ROUTES,
                         ids=[f"{m} {p}" for _, m, p in ID_ROUTES])
def test_non_positive_ids_in_paths_are_404(stack, admin_headers, service, method, path):
    url = getattr(stack, service).url
    for bad in BAD_IDS:
        r = requests.request(method, url + path.replace("{id}", bad), headers=admin_headers,
                             json={} if method in ("PUT", "POST", "PATCH") else None, timeout=10)
        assert_error(r, 404, "not_found")


def test_percent_encoded_nul_in_a_path_is_404(stack, admin_headers):
    for path in ("/rooms/%00", "/rooms%00/1"):
        r = requests.get(stack.room.url + path, headers=admin_headers, timeout=10)
        assert r.status_code in (400, 404), (path, r.status_code, r.text[:100])


@pytest.mark.parametrize("room_id", [0, -1, -9007199254740993])
def test_non_positive_ids_in_bodies_are_422(stack, emp, bookable, room_id):
    url = stack.reservation.url
    start, end = slot()
    r = book(url, emp[0], room_id, start, end)
    assert_error(r, 422, "validation_failed", detail="room_id")
    res = booked(url, emp[0], bookable["id"], start, end)
    r = requests.put(f"{url}/reservations/{res['id']}", json={"room_id": room_id},
                     headers=emp[0], timeout=10)
    assert_error(r, 422, "validation_failed", detail="room_id")
    for param in ("room_id", "user_id"):
        r = requests.get(f"{url}/reservations", params={param: room_id}, headers=emp[0], timeout=10)
        assert_error(r, 400, "bad_request")
    r = requests.get(f"{url}/availability", params={"room_id": room_id, "date": "2030-01-01"},
                     headers=emp[0], timeout=10)
    assert r.status_code in (400, 404) and r.json()["error"] is True, r.text


# ---- slow clients ----

@pytest.mark.parametrize("service", SERVICES)
def test_stalled_clients_do_not_starve_the_others(stack, admin_headers, service):
    svc = getattr(stack, service)
    # Fewer than the worker threads: a civetweb worker waits up to the header timeout for a
    # stalled request.
    n = int(svc.env["NUM_THREADS"]) - 3
    socks = [stall(svc.port) for _ in range(n)]
    try:
        time.sleep(0.2)
        for path in ("/live", "/ready", "/health", "/openapi.json", "/metrics"):
            t0 = time.monotonic()
            r = requests.get(svc.url + path, headers=admin_headers, timeout=2)
            assert r.status_code == 200 and time.monotonic() - t0 < 1.0, (path, r.status_code)
    finally:
        for s in socks:
            s.close()


def test_twenty_stalled_clients_at_the_gateway_do_not_starve_the_others(stack, admin_headers):
    port = stack.gateway.port
    half = [stall(port, b"GET /rooms HT") for _ in range(10)]
    # Complete headers, body never finished: nginx buffers it, the service never sees it.
    body = [stall(port, b"POST /rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Authorization: " + admin_headers["Authorization"].encode()
                        + b"\r\nContent-Length: 100\r\n\r\n{") for _ in range(10)]
    try:
        time.sleep(0.2)
        for _ in range(3):
            for path in ("/rooms", "/reservations", "/users/profile"):
                t0 = time.monotonic()
                r = requests.get(stack.gateway.url + path, headers=admin_headers, timeout=2)
                assert r.status_code == 200 and time.monotonic() - t0 < 1.0, (path, r.status_code)
    finally:
        for s in half + body:
            s.close()


# ---- afterwards ----

def test_zz_tables_still_exist_and_services_are_healthy(stack, admin_headers, emp):
    assert requests.get(f"{stack.room.url}/rooms", params={"q": "Hardening"},
                        headers=admin_headers, timeout=10).json(), "rooms are gone"
    assert requests.get(f"{stack.user.url}/admin/users", headers=admin_headers,
                        timeout=10).json(), "users are gone"
    r = requests.get(f"{stack.reservation.url}/reservations", headers=emp[0], timeout=10)
    assert r.status_code == 200 and r.json(), r.text
    for svc in (stack.user, stack.room, stack.reservation):
        assert requests.get(f"{svc.url}/health", timeout=10).status_code == 200, svc.name
        assert svc.proc.poll() is None and not svc.sanitizer_reports(), svc.log_tail()


def test_stalled_request_is_cut_off_by_the_header_timeout(stack):
    """The header timeout (HEADER_TIMEOUT_MS, 5 s by default; it replaced REQUEST_TIMEOUT_MS's
    30 s for this in issue 18) ends a request whose line never completes; the client gets at
    most a JSON 4xx and the connection is closed."""
    s = socket.create_connection(("127.0.0.1", stack.reservation.port), timeout=5)
    t0 = time.monotonic()
    s.sendall(b"GET /reservations HTT")
    s.settimeout(HEADER_TIMEOUT_S + 10)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pytest.fail(f"still open after {time.monotonic() - t0:.1f} s")
    except OSError:
        pass
    finally:
        s.close()
    waited = time.monotonic() - t0
    assert HEADER_TIMEOUT_S - 1 <= waited <= HEADER_TIMEOUT_S + 3, waited
    got = responses(data)
    assert len(got) <= 1, got
    if got:
        status, headers, body = got[0]
        assert 400 <= status < 500, got
        json_error(status, headers, body)
