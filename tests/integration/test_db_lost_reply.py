"""A write whose answer from PostgreSQL is lost is never reported failed when it committed, nor
done when it did not (docs/architecture.md#guarantees, common/src/db.c db_write/db_commit).

Extra room- and reservation-service instances reach the session's PostgreSQL through a
fault-injecting proxy (pgproxy.py). A request carries a unique marker (in a room name or a
purpose); the proxy then breaks the connection of the statement that carries it:
- "reply": after the server committed, right before the answer that says so: the service must
  find out that it committed (201/200 with exactly one row), where a blind retry answered 409
  for the room it had just created, 412 for an If-Match update it had applied, and 503 for a
  booking it had stored;
- "request": COMMIT never reaches the server: nothing committed, so the service runs the write
  again on a new connection (201, exactly one row);
- "stall": the client's side closes at COMMIT but the server's session stays open, idle in the
  transaction (a half-open connection): the service waits DB_RESOLVE_MS (2 s), ends that
  backend, learns that nothing committed and runs the write again;
- "reply" followed by an outage (the proxy refuses new connections for a few seconds, like a
  restarting database): the service keeps trying to ask for longer than DB_RESOLVE_MS (up to
  DB_RESOLVE_UNREACHABLE_MS, 10 s) and answers 201 once the database is back, where it used to
  answer 503 after 2 s and the client's retry 409.
"""
import time
import uuid

import pytest
import requests

from harness import assert_error, create_room, db_query, utc_at
from pgproxy import PgProxy


@pytest.fixture(scope="module")
def room_proxy(stack):
    p = PgProxy(stack.pg.port).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def res_proxy(stack):
    p = PgProxy(stack.pg.port).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def proxied_room(stack, room_proxy):
    svc = stack.room_service(tag="room-lost-reply",
                             DATABASE_URL=room_proxy.dsn(stack.pg.url, "room_db"))
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def proxied_res(stack, res_proxy):
    svc = stack.reservation_service(tag="res-lost-reply",
                                    DATABASE_URL=res_proxy.dsn(stack.pg.url, "reservation_db"))
    svc.start()
    yield svc
    svc.stop()


def marker():
    return f"__drop_reply__{uuid.uuid4().hex[:10]}"


def rooms_named(pg, name):
    return db_query(pg, "room_db", "SELECT id, version FROM rooms WHERE name = %s", name)


def room_events_of(pg, room_id, event_type):
    return db_query(pg, "room_db", "SELECT count(*) FROM outbox WHERE key = %s "
                    "AND payload->>'event_type' = %s", str(room_id), event_type)[0][0]


@pytest.mark.parametrize("fault", ["reply", "request", "stall"])
def test_room_create_whose_connection_breaks_at_commit_answers_201_once(
        stack, room_proxy, proxied_room, admin_headers, fault):
    name = f"Lost {marker()}"
    room_proxy.arm(name, fault)
    t0 = time.monotonic()
    r = requests.post(f"{proxied_room.url}/rooms", json={"name": name, "capacity": 4},
                      headers=admin_headers, timeout=30)
    took = time.monotonic() - t0
    assert room_proxy.fired[-1:] == [fault], "the proxy did not break the connection"
    assert r.status_code == 201, (r.status_code, r.text, proxied_room.log_tail())
    room = r.json()
    assert room["name"] == name and room["version"] == 1
    assert rooms_named(stack.pg, name) == [(room["id"], 1)]
    assert room_events_of(stack.pg, room["id"], "room_created") == 1
    if fault == "stall":
        # The old backend held the transaction (and its locks) until the service ended it.
        assert took >= 2.0, took
        assert "terminated it" in proxied_room.log_text()


def test_room_create_whose_commit_reply_is_lost_while_the_database_is_away_answers_201_once(
        stack, room_proxy, proxied_room, admin_headers):
    outage = 4.0   # longer than DB_RESOLVE_MS (2 s), shorter than DB_RESOLVE_UNREACHABLE_MS (10 s)
    name = f"Away {marker()}"
    room_proxy.arm(name, "reply", outage=outage)
    refused = room_proxy.refused
    t0 = time.monotonic()
    r = requests.post(f"{proxied_room.url}/rooms", json={"name": name, "capacity": 4},
                      headers=admin_headers, timeout=30)
    took = time.monotonic() - t0
    assert room_proxy.fired[-1:] == ["reply"], "the proxy did not break the connection"
    assert room_proxy.refused > refused, "the service never tried to reconnect"
    assert r.status_code == 201, (r.status_code, r.text, proxied_room.log_tail())
    assert took >= outage - 0.5, took
    room = r.json()
    assert rooms_named(stack.pg, name) == [(room["id"], 1)]
    assert room_events_of(stack.pg, room["id"], "room_created") == 1


def test_room_update_with_if_match_whose_reply_is_lost_answers_200(
        stack, room_proxy, proxied_room, admin_headers):
    room = create_room(proxied_room.url, admin_headers)
    name = f"Renamed {marker()}"
    room_proxy.arm(name, "reply")
    r = requests.put(f"{proxied_room.url}/rooms/{room['id']}", json={"name": name},
                     headers={**admin_headers, "If-Match": f'"{room["version"]}"'}, timeout=30)
    assert room_proxy.fired[-1:] == ["reply"], "the proxy did not break the connection"
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["name"] == name and r.json()["version"] == room["version"] + 1
    assert r.headers["ETag"] == f'"{room["version"] + 1}"'
    assert rooms_named(stack.pg, name) == [(room["id"], room["version"] + 1)]
    assert room_events_of(stack.pg, room["id"], "room_updated") == 1


def test_booking_whose_commit_reply_is_lost_answers_201_once(
        stack, res_proxy, proxied_res, pool, alice):
    """The booking runs in an explicit transaction (db_begin … db_commit): the outcome of its
    COMMIT is resolved the same way."""
    room = pool.take()
    purpose = f"lost {marker()}"
    res_proxy.arm(purpose, "reply")
    body = {"room_id": room["id"], "start_time": utc_at(41, 9), "end_time": utc_at(41, 10),
            "purpose": purpose}
    r = requests.post(f"{proxied_res.url}/reservations", json=body, headers=alice, timeout=30)
    assert res_proxy.fired[-1:] == ["reply"], "the proxy did not break the connection"
    assert r.status_code == 201, (r.status_code, r.text)
    rows = db_query(stack.pg, "reservation_db", "SELECT id FROM reservations WHERE purpose = %s",
                    purpose)
    assert rows == [(r.json()["id"],)]
    # And the answer is the truth: the slot is taken.
    assert_error(requests.post(f"{proxied_res.url}/reservations", json=body, headers=alice,
                               timeout=30), 409, "conflict")


def test_a_failure_before_commit_is_a_failure(stack, room_proxy, proxied_room, admin_headers):
    """The other direction: a create that meets a real conflict is still 409, also when its
    connection breaks after the server refused it (nothing to resolve: no COMMIT was sent)."""
    name = f"Taken {marker()}"
    create_room(proxied_room.url, admin_headers, name=name)
    room_proxy.arm(name, "reply")
    r = requests.post(f"{proxied_room.url}/rooms", json={"name": name, "capacity": 4},
                      headers=admin_headers, timeout=30)
    assert_error(r, 409, "conflict")
    assert len(rooms_named(stack.pg, name)) == 1
