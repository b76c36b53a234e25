"""Authorization matrix (docs/api.md#authentication, each endpoint's access), generated from the
routing tables.

Every route of <svc>-service/src/routes.c and every operational endpoint of
common/src/http_builtin.c is called with every kind of credential below, against real resources;
the expected outcome follows from the route's access level (HTTP_PUBLIC / HTTP_BEARER /
HTTP_ADMIN) and the ownership rule of GET/PUT/DELETE /reservations/{id} (an invited employee, one
of the reservation's attendees, may read it and nothing more).  A route added to a
table is picked up automatically (routes without a dedicated request builder get a generic one: a
non-existent id and an empty object)."""
import base64
import itertools
import json
import os
import re
import time
import uuid

import pytest
import requests

from harness import (
    ROOT,
    RoomPool,
    bearer,
    booked,
    create_room,
    forge_token,
    operator_token,
    unique_name,
    utc_at,
)

SERVICES = ("user", "room", "reservation")
ROUTE = re.compile(r'\{\{"(GET|POST|PUT|DELETE|PATCH)", "([^"]+)"\}')
ROUTE_ACCESS = re.compile(r'\{\{"(GET|POST|PUT|DELETE|PATCH)",\s*"([^"]+)"\},\s*\w+,\s*'
                          r'(HTTP_PUBLIC|HTTP_BEARER_OR_TOKEN|HTTP_BEARER_OR_COOKIE|HTTP_BEARER|'
                          r'HTTP_ADMIN)\s*\}')

INVALID = ("no token", "garbage", "bad signature", "expired", "alg none", "wrong issuer")
VALID = ("employee", "admin", "owner", "other employee", "invited employee")
KINDS = INVALID + VALID
# Routes where the caller must own the resource (or be admin): docs/api.md#reservation-service.
# The matrix's reservations and series invite the "invited employee", who may read a reservation
# (docs/api.md#attendees-and-online-meetings, "Who reads it") and nothing else of them.
ATTENDEE_READS = {("GET", "/reservations/{id}")}
OWNED = {("GET", "/reservations/{id}"), ("PUT", "/reservations/{id}"),
         ("DELETE", "/reservations/{id}"), ("GET", "/reservations/series/{id}"),
         ("PUT", "/reservations/series/{id}"), ("DELETE", "/reservations/series/{id}"),
         ("GET", "/waitlist/{id}"), ("DELETE", "/waitlist/{id}")}
MISSING_ID = 2147480000
PUBLIC_API = {("GET", "/auth/google/login"), ("GET", "/auth/google/callback"),
              ("POST", "/auth/refresh"), ("GET", "/calendars/me.ics")}


def _parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    plain = ROUTE.findall(text)
    full = ROUTE_ACCESS.findall(text)
    # Every route entry must be understood, access level included.
    assert len(full) == len(plain) and plain, (path, plain, full)
    return [(m, p, a) for m, p, a in full]


def routing_tables():
    """[(service, method, path, access, builtin)] for the three services."""
    builtin = _parse(os.path.join(ROOT, "common", "src", "http_builtin.c"))
    rows = []
    for svc in SERVICES:
        for m, p, a in _parse(os.path.join(ROOT, f"{svc}-service", "src", "routes.c")):
            rows.append((svc, m, p, a, False))
        for m, p, a in builtin:
            rows.append((svc, m, p, a, True))
    return rows


ROUTES = routing_tables()


# Routed only with TEST_CLOCK=true (reservation-service/src/main.c): this stack runs without it,
# so the path answers 404 to anyone, before any check of the caller (review 15a L11).
SWITCHED_OFF = {("PUT", "/internal/test-clock")}


def expected(method, path, access, kind):
    """'allowed', 401 or 403."""
    if (method, path) in SWITCHED_OFF:
        return "allowed"
    # Without ?token= or the refresh cookie (the matrix sends neither) such a route wants a bearer
    # token.
    access = "HTTP_BEARER" if access in ("HTTP_BEARER_OR_TOKEN", "HTTP_BEARER_OR_COOKIE") \
        else access
    if access == "HTTP_PUBLIC":
        return "allowed"
    if kind in INVALID:
        return 401
    if kind == "admin":
        return "allowed"
    if access == "HTTP_ADMIN":
        return 403
    if (method, path) in OWNED and kind != "owner":
        return "allowed" if kind == "invited employee" and (method, path) in ATTENDEE_READS \
            else 403
    return "allowed"


def _b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def alg_none_token(sub, role="admin"):
    now = int(time.time())
    claims = {"sub": str(sub), "email": "boss@example.com", "name": "None", "role": role,
              "iat": now, "exp": now + 3600, "iss": "meeting-rooms", "jti": str(uuid.uuid4())}
    return f'{_b64({"alg": "none", "typ": "JWT"})}.{_b64(claims)}.'


class World:
    """Tokens of every kind and the real resources the requests name."""

    def __init__(self, stack, admin_headers):
        self.stack = stack
        tag = uuid.uuid4().hex[:8]
        emp, _ = operator_token(stack.user, f"authz-employee-{tag}@example.com")
        owner, self.owner_id = operator_token(stack.user, f"authz-owner-{tag}@example.com")
        other, _ = operator_token(stack.user, f"authz-other-{tag}@example.com")
        self.invited_email = f"authz-invited-{tag}@example.com"
        invited, _ = operator_token(stack.user, self.invited_email)
        _, self.target_id = operator_token(stack.user, f"authz-target-{tag}@example.com")
        admin_id = int(json.loads(base64.urlsafe_b64decode(
            admin_headers["Authorization"].split(".")[1] + "==="))["sub"])
        # The invalid tokens claim the admin role: accepting any of them would show as a 2xx.
        self.headers = {
            "no token": {},
            "garbage": {"Authorization": "Bearer not.a.jwt"},
            "bad signature": bearer(forge_token(admin_id, role="admin",
                                                secret="another-secret-0123456789abcdefghij")),
            "expired": bearer(forge_token(admin_id, role="admin", exp_in=-120,
                                          iat=int(time.time()) - 3720)),
            "alg none": bearer(alg_none_token(admin_id)),
            "wrong issuer": bearer(forge_token(admin_id, role="admin", iss="someone-else")),
            "employee": bearer(emp),
            "admin": admin_headers,
            "owner": bearer(owner),
            "other employee": bearer(other),
            "invited employee": bearer(invited),
        }
        self.admin = admin_headers
        self.room = create_room(stack.room.url, admin_headers)
        self.pool = RoomPool(stack.room.url, stack.reservation.url, admin_headers, batch=1)
        self.bookable = self.pool.take()
        self.slots = itertools.count()

    def slot(self):
        """A one-hour slot of self.bookable nobody else uses."""
        i = next(self.slots)
        return utc_at(20 + i // 10, 8 + i % 10), utc_at(20 + i // 10, 9 + i % 10)

    def reservation(self):
        start, end = self.slot()
        return booked(self.stack.reservation.url, self.headers["owner"], self.bookable["id"],
                      start, end, purpose="authz matrix", attendees=[self.invited_email])["id"]

    def series(self, count=1):
        """A series of the owner's (count daily occurrences from a slot far from self.slot()'s;
        at most 10 days)."""
        i = next(self.slots)
        day = 200 + 10 * (i // 10)
        start, end = utc_at(day, 8 + i % 10), utc_at(day, 9 + i % 10)
        body = {"room_id": self.bookable["id"], "start_time": start, "end_time": end,
                "recurrence": f"FREQ=DAILY;COUNT={count}", "purpose": "authz matrix",
                "attendees": [self.invited_email]}
        r = requests.post(f"{self.stack.reservation.url}/reservations",
                          headers=self.headers["owner"], json=body, timeout=15)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def webhook(self):
        """A webhook whose deliveries are refused at once (a private address, a rare event)."""
        r = requests.post(f"{self.stack.reservation.url}/webhooks", headers=self.admin,
                          json={"url": "https://10.255.255.1/authz",
                                "events": ["reservation_series_cancelled"],
                                "secret": "authz-matrix-secret"}, timeout=15)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def waitlist_entry(self):
        """A waiting entry of the owner's, for a slot an admin holds (docs/api.md#waitlist)."""
        start, end = self.slot()
        booked(self.stack.reservation.url, self.admin, self.bookable["id"], start, end)
        r = requests.post(f"{self.stack.reservation.url}/waitlist", headers=self.headers["owner"],
                          json={"room_id": self.bookable["id"], "start_time": start,
                                "end_time": end}, timeout=15)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def read_entry(self):
        """One entry for every read (each entry counts against the owner's 20 waiting)."""
        if not hasattr(self, "_read_entry"):
            self._read_entry = self.waitlist_entry()
        return self._read_entry

    def throwaway_user(self):
        email = f"authz-victim-{uuid.uuid4().hex[:12]}@example.com"
        return operator_token(self.stack.user, email)[1]

    def throwaway_room(self):
        return create_room(self.stack.room.url, self.admin)["id"]


def _reservation_create(w):
    start, end = w.slot()
    return None, None, {"room_id": w.bookable["id"], "start_time": start, "end_time": end}


# (method, path) → builder(world) → (concrete path or None for the template, query, json body).
BUILDERS = {
    ("GET", "/auth/google/login"): lambda w: (None, {"login_hint": "x@example.com"}, None),
    ("GET", "/auth/google/callback"): lambda w: (None, None, None),
    ("POST", "/auth/refresh"): lambda w: (None, None, {}),
    ("POST", "/auth/logout"): lambda w: (None, None, {"refresh_token": "not-a-real-token"}),
    ("PUT", "/users/profile"): lambda w: (None, None, {"name": "Authz Matrix"}),
    ("PUT", "/users/me"): lambda w: (None, None, {"name": "Authz Matrix"}),
    ("GET", "/admin/users/{id}"): lambda w: (f"/admin/users/{w.target_id}", None, None),
    ("PUT", "/admin/users/{id}"): lambda w: (f"/admin/users/{w.target_id}", None,
                                             {"name": "Authz Target"}),
    ("PUT", "/users/{id}"): lambda w: (f"/users/{w.target_id}", None, {"name": "Authz Target"}),
    ("DELETE", "/admin/users/{id}"): lambda w: (f"/admin/users/{w.throwaway_user()}", None, None),
    ("POST", "/rooms"): lambda w: (None, None, {"name": unique_name("Authz"), "capacity": 3}),
    ("GET", "/rooms/{id}"): lambda w: (f"/rooms/{w.room['id']}", None, None),
    ("PUT", "/rooms/{id}"): lambda w: (f"/rooms/{w.room['id']}", None, {"description": "authz"}),
    ("DELETE", "/rooms/{id}"): lambda w: (f"/rooms/{w.throwaway_room()}", None, None),
    ("POST", "/reservations"): _reservation_create,
    ("GET", "/reservations/{id}"): lambda w: (f"/reservations/{w.reservation()}", None, None),
    ("PUT", "/reservations/{id}"): lambda w: (f"/reservations/{w.reservation()}", None,
                                              {"purpose": "changed by the matrix"}),
    ("DELETE", "/reservations/{id}"): lambda w: (f"/reservations/{w.reservation()}", None, None),
    ("GET", "/reservations/series/{id}"): lambda w: (f"/reservations/series/{w.series()}", None,
                                                     None),
    ("PUT", "/reservations/series/{id}"): lambda w: (f"/reservations/series/{w.series()}", None,
                                                     {"purpose": "changed by the matrix"}),
    ("DELETE", "/reservations/series/{id}"): lambda w: (f"/reservations/series/{w.series()}",
                                                        None, None),
    ("GET", "/availability"): lambda w: (None, {"room_id": w.bookable["id"],
                                                "date": utc_at(30)[:10]}, None),
    ("GET", "/availability/rooms"): lambda w: (None, {"start": utc_at(30, 9),
                                                      "end": utc_at(30, 10), "capacity": 2},
                                               None),
    ("GET", "/availability/rooms/{id}"): lambda w: (f"/availability/rooms/{w.bookable['id']}",
                                                    {"start_date": utc_at(30)[:10],
                                                     "end_date": utc_at(31)[:10]}, None),
    ("GET", "/availability/grid"): lambda w: (None, {"date": utc_at(30)[:10], "limit": 5}, None),
    # Allowed: 422 (the slot is free) or 201, never 401/403 for a signed-in caller.
    ("POST", "/waitlist"): _reservation_create,
    ("GET", "/waitlist"): lambda w: (None, None, None),
    ("GET", "/waitlist/{id}"): lambda w: (f"/waitlist/{w.read_entry()}", None, None),
    ("DELETE", "/waitlist/{id}"): lambda w: (f"/waitlist/{w.waitlist_entry()}", None, None),
    ("GET", "/reports/utilisation"): lambda w: (None, {"from": utc_at(30)[:10],
                                                       "to": utc_at(31)[:10],
                                                       "group_by": "building"}, None),
    # Allowed: 422 (no events), so that the matrix registers no webhook.
    ("POST", "/webhooks"): lambda w: (None, None, {"url": "https://10.255.255.1/authz",
                                                   "events": [], "secret": "authz-matrix-secret"}),
    ("GET", "/webhooks/{id}"): lambda w: (f"/webhooks/{w.webhook()}", None, None),
    ("DELETE", "/webhooks/{id}"): lambda w: (f"/webhooks/{w.webhook()}", None, None),
    ("GET", "/webhooks/{id}/deliveries"): lambda w: (f"/webhooks/{w.webhook()}/deliveries", None,
                                                     None),
    ("GET", "/calendars/rooms/{id}"): lambda w: (f"/calendars/rooms/{w.bookable['id']}.ics", None,
                                                 None),
    # The feed token, not a bearer, authenticates: the route is public (a bearer changes nothing).
    ("GET", "/calendars/me.ics"): lambda w: (None, {"token": "A" * 43}, None),
    ("POST", "/calendars/me/token"): lambda w: (None, None, None),
    ("DELETE", "/calendars/me/token"): lambda w: (None, None, None),
}


def build(world, method, path):
    builder = BUILDERS.get((method, path))
    if builder:
        concrete, query, body = builder(world)
        return concrete or path, query, body
    # A route without a builder (e.g. one added later): still checked, on a resource that does
    # not exist and with an empty object as body.
    concrete = re.sub(r"\{[^}]+\}", str(MISSING_ID), path)
    return concrete, None, ({} if method in ("POST", "PUT", "PATCH") else None)


@pytest.fixture(scope="module")
def world(stack, admin_headers):
    return World(stack, admin_headers)


def send(url, method, path, query, body, headers):
    return requests.request(method, url + path, params=query, json=body, headers=headers,
                            allow_redirects=False, timeout=15)


# ---- the table itself ----

@pytest.mark.parametrize("service", SERVICES)
def test_parsed_table_covers_the_openapi_document(stack, service):
    table = {(m, p) for s, m, p, _, _ in ROUTES if s == service}
    own = [r for r in ROUTES if r[0] == service and not r[4]]
    assert own and len(table) > len(own), table
    doc = requests.get(f"{getattr(stack, service).url}/openapi.json", timeout=10).json()
    documented = {(method.upper(), path) for path, item in doc["paths"].items()
                  for method in item if method in ("get", "post", "put", "delete", "patch")}
    assert documented and documented <= table, sorted(documented - table)
    # The operational endpoints are public; of the API only sign-in and refresh are.
    assert all(a == "HTTP_PUBLIC" for s, _, _, a, b in ROUTES if s == service and b)
    public = {(m, p) for s, m, p, a, b in ROUTES if s == service and not b and a == "HTTP_PUBLIC"}
    assert public <= PUBLIC_API, sorted(public - PUBLIC_API)


def test_every_builder_names_a_routed_path():
    routed = {(m, p) for _, m, p, _, _ in ROUTES}
    assert set(BUILDERS) <= routed, sorted(set(BUILDERS) - routed)


# ---- the matrix ----

def _case_id(svc, method, path, builtin, kind):
    return f"{method} {path}{f' ({svc})' if builtin else ''} {kind}"


CASES = [pytest.param(svc, m, p, a, kind, id=_case_id(svc, m, p, b, kind))
         for svc, m, p, a, b in ROUTES for kind in KINDS]


@pytest.mark.parametrize("service,method,path,access,kind", CASES)
def test_authorization(stack, world, service, method, path, access, kind):
    url = getattr(stack, service).url
    concrete, query, body = build(world, method, path)
    want = expected(method, path, access, kind)
    # A refused change changes nothing: the resource reads the same (as admin) before and after.
    readable = want != "allowed" and method in ("PUT", "DELETE", "PATCH") and \
        any(r[:3] == (service, "GET", path) for r in ROUTES)
    before = send(url, "GET", concrete, None, None, world.admin) if readable else None
    r = send(url, method, concrete, query, body, world.headers[kind])
    what = (method, concrete, kind, r.status_code, r.headers.get("WWW-Authenticate"), r.text[:300])
    if want == "allowed":
        assert r.status_code not in (401, 403) and r.status_code < 500, what
        if access == "HTTP_PUBLIC" and kind != "no token":
            # A token on a public route changes nothing: the same request without one.
            concrete, query, body = build(world, method, path)
            plain = send(url, method, concrete, query, body, {})
            assert r.status_code == plain.status_code, (what, plain.status_code, plain.text[:300])
    else:
        assert r.status_code == want, what
        err = r.json()
        assert err["status_code"] == want and err["code"] == {401: "unauthorized",
                                                               403: "forbidden"}[want], what
        if want == 401:
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), what
        if readable:
            after = send(url, "GET", concrete, None, None, world.admin)
            assert before.status_code == 200 and after.status_code == 200, (what, after.text)
            assert after.json() == before.json(), what


# ---- the invited employee on a series' occurrences ----

@pytest.mark.parametrize("method,body", [("PUT", {"purpose": "split by a guest"}),
                                         ("DELETE", None)])
def test_invited_employee_cannot_split_or_end_a_series(stack, world, method, body):
    """An attendee of a series reads its occurrences, but a change of this and the following
    occurrences (PUT or DELETE ?scope=this_and_following) is the owner's or an admin's: 403,
    and the series and the occurrence read the same afterwards."""
    url = stack.reservation.url
    sid = world.series(count=3)
    occ = requests.get(f"{url}/reservations", params={"series_id": sid, "user_id": world.owner_id},
                       headers=world.admin, timeout=15).json()
    occ = occ["data"] if isinstance(occ, dict) else occ
    second = occ[1]["id"]
    guest = world.headers["invited employee"]
    r = requests.get(f"{url}/reservations/{second}", headers=guest, timeout=15)
    assert r.status_code == 200, r.text
    before = (requests.get(f"{url}/reservations/series/{sid}", headers=world.admin,
                           timeout=15).json(), r.json())
    for scope in ("this_and_following", "this"):
        r = requests.request(method, f"{url}/reservations/{second}", params={"scope": scope},
                             json=body, headers=guest, timeout=15)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", (scope, r.text)
    r = requests.get(f"{url}/reservations/series/{sid}", headers=guest, timeout=15)
    assert r.status_code == 403, r.text
    after = (requests.get(f"{url}/reservations/series/{sid}", headers=world.admin,
                          timeout=15).json(),
             requests.get(f"{url}/reservations/{second}", headers=world.admin, timeout=15).json())
    assert after == before
