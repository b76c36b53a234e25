"""Revocation (docs/architecture.md#revocation): a user deleted, disabled or given another role
loses the tokens issued before the change on all three services within 2 seconds (401
`token_revoked`), through user-service's own table and the user_events that room- and
reservation-service consume from the real broker; bookings made after a deletion are cancelled,
and none racing with it survives."""
import datetime
import random
import re
import threading
import time
import uuid

import pytest
import requests

from harness import (
    assert_error,
    bearer,
    create_room,
    db_query,
    decode_jwt_payload,
    forge_token,
    login,
    operator_token,
    res_db_query,
    shift,
    utc_at,
    wait_known_room,
    wait_until,
)

SERVICES = ("user", "room", "reservation")
# A read every signed-in user may do, per service.
PROBES = {"user": "/users/profile", "room": "/rooms?limit=1",
          "reservation": "/reservations?limit=1"}
DATABASES = {"user": "user_db", "room": "room_db", "reservation": "reservation_db"}
WITHIN_SECONDS = 2.0
OCCURRED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def unique_email(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def signed_in(stack, email):
    r = login(stack.user.url, email)
    assert r.status_code == 200, r.text
    return r.json()


def probe(stack, svc, headers):
    return requests.get(getattr(stack, svc).url + PROBES[svc], headers=headers, timeout=10)


def assert_accepted_everywhere(stack, headers):
    for svc in SERVICES:
        r = probe(stack, svc, headers)
        assert r.status_code == 200, (svc, r.status_code, r.text)


def wait_revoked_everywhere(stack, headers, since):
    """Polls the three services until each refuses the token with 401 token_revoked (until then
    it must still be served); returns the seconds from since (time.monotonic() before the change
    was sent) to each refusal, which must all be within WITHIN_SECONDS."""
    took = {}
    deadline = since + 10 * WITHIN_SECONDS
    while len(took) < len(SERVICES) and time.monotonic() < deadline:
        for svc in SERVICES:
            if svc in took:
                continue
            r = probe(stack, svc, headers)
            if r.status_code == 401:
                assert_error(r, 401, "token_revoked", mentions="revoked")
                assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers
                took[svc] = round(time.monotonic() - since, 3)
            else:
                assert r.status_code == 200, (svc, r.status_code, r.text)
        time.sleep(0.02)
    print(f"token refused after {took} s")
    assert set(took) == set(SERVICES), f"not refused everywhere: {took}"
    assert max(took.values()) <= WITHIN_SECONDS, took
    return took


def user_events(stack, uid, count, timeout=20):
    """The values of the first count messages with key uid on user_events (from the beginning);
    they must be that many, not more."""
    found = []

    def enough():
        found[:] = [m for m in stack.kafka.read("user_events") if m.get("key") == str(uid)]
        return len(found) >= count
    wait_until(enough, timeout=timeout, interval=0.2, what=f"{count} user_events of user {uid}")
    assert len(found) == count, [m["value"] for m in found]
    return [m["value"] for m in found]


def assert_envelope(ev, uid, event_type, role=None):
    """docs/events.md: the user event envelope, with role only for user_role_changed."""
    keys = ["event_type", "event_id", "occurred_at", "user_id"] + (["role"] if role else [])
    assert list(ev) == keys, ev
    assert ev["event_type"] == event_type and ev["user_id"] == uid, ev
    uuid.UUID(ev["event_id"])
    assert OCCURRED_AT.fullmatch(ev["occurred_at"]), ev
    if role:
        assert ev["role"] == role, ev


def not_before(stack, svc, uid):
    """The user's not_before in svc's database as the events spell times, or None."""
    rows = db_query(stack.pg, DATABASES[svc],
                    "SELECT to_char(not_before AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM token_revocations "
                    "WHERE user_id = %s", uid)
    return rows[0][0] if rows else None


def assert_not_before_everywhere(stack, uid, occurred_at):
    """Every service's table says: void before the change's time, the event's occurred_at."""
    for svc in SERVICES:
        wait_until(lambda svc=svc: not_before(stack, svc, uid) is not None, timeout=10,
                   interval=0.1, what=f"token_revocations row of {uid} in {svc}")
        assert not_before(stack, svc, uid) == occurred_at, svc


def put_user(stack, admin_headers, uid, body):
    r = requests.put(f"{stack.user.url}/admin/users/{uid}", json=body, headers=admin_headers)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module", autouse=True)
def consumers_running(stack, admin_headers):
    """The timings below measure a running system: both consumers of user_events have joined
    their groups and applied a first revocation (a new group's first assignment takes longer)."""
    uid = signed_in(stack, unique_email("rv-warm-up"))["user"]["id"]
    r = requests.delete(f"{stack.user.url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 204, r.text
    for svc in ("room", "reservation"):
        wait_until(lambda svc=svc: not_before(stack, svc, uid) is not None, timeout=30,
                   interval=0.1, what=f"{svc} applying user_events")


def test_deleted_users_token_is_refused_everywhere(stack, admin_headers):
    user = signed_in(stack, unique_email("rv-del"))
    uid, headers = user["user"]["id"], bearer(user["access_token"])
    assert_accepted_everywhere(stack, headers)

    t0 = time.monotonic()
    r = requests.delete(f"{stack.user.url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 204, r.text
    wait_revoked_everywhere(stack, headers, t0)

    [ev] = user_events(stack, uid, 1)
    assert_envelope(ev, uid, "user_deleted")
    assert_not_before_everywhere(stack, uid, ev["occurred_at"])


def test_disabled_user_is_refused_everywhere_and_signs_in_again_once_enabled(stack,
                                                                             admin_headers):
    email = unique_email("rv-dis")
    user = signed_in(stack, email)
    uid, headers = user["user"]["id"], bearer(user["access_token"])
    assert_accepted_everywhere(stack, headers)

    t0 = time.monotonic()
    assert put_user(stack, admin_headers, uid, {"disabled": True})["disabled"] is True
    wait_revoked_everywhere(stack, headers, t0)
    assert_error(login(stack.user.url, email), 403, "forbidden")

    assert put_user(stack, admin_headers, uid, {"disabled": False})["disabled"] is False
    again = signed_in(stack, email)
    assert again["user"]["id"] == uid
    # The new token is good at once everywhere; the old one stays refused.
    assert_accepted_everywhere(stack, bearer(again["access_token"]))
    for svc in SERVICES:
        assert_error(probe(stack, svc, headers), 401, "token_revoked")

    disabled, enabled = user_events(stack, uid, 2)
    assert_envelope(disabled, uid, "user_disabled")
    assert_envelope(enabled, uid, "user_enabled")
    assert enabled["occurred_at"] >= disabled["occurred_at"]
    # Enabling voids nothing: not_before stays the disabling's time.
    assert_not_before_everywhere(stack, uid, disabled["occurred_at"])


def test_demoted_admin_loses_admin_rights_everywhere(stack, admin_headers):
    user = signed_in(stack, unique_email("rv-role"))
    uid = user["user"]["id"]
    assert user["user"]["role"] == "employee"

    # Promoted: the employee token is revoked, a refresh brings the admin role at once.
    put_user(stack, admin_headers, uid, {"role": "admin"})
    r = requests.post(f"{stack.user.url}/auth/refresh",
                      json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 200, r.text
    promoted = r.json()
    assert decode_jwt_payload(promoted["access_token"])["role"] == "admin"
    admin_token = bearer(promoted["access_token"])
    assert requests.get(f"{stack.user.url}/admin/users", headers=admin_token).status_code == 200
    r = requests.post(f"{stack.room.url}/rooms", headers=admin_token,
                      json={"name": f"Revocation {uuid.uuid4().hex[:12]}", "capacity": 3})
    assert r.status_code == 201, r.text

    t0 = time.monotonic()
    put_user(stack, admin_headers, uid, {"role": "employee"})
    # A token issued right after the change (often in the same second) is good.
    r = requests.post(f"{stack.user.url}/auth/refresh",
                      json={"refresh_token": promoted["refresh_token"]})
    assert r.status_code == 200, r.text
    demoted = bearer(r.json()["access_token"])
    assert decode_jwt_payload(r.json()["access_token"])["role"] == "employee"
    assert_accepted_everywhere(stack, demoted)

    wait_revoked_everywhere(stack, admin_token, t0)
    # The admin token can no longer do admin actions; the new one is an employee's.
    assert_error(requests.get(f"{stack.user.url}/admin/users", headers=admin_token), 401,
                 "token_revoked")
    assert_error(requests.post(f"{stack.room.url}/rooms", headers=admin_token,
                               json={"name": f"Late {uuid.uuid4().hex[:12]}", "capacity": 3}),
                 401, "token_revoked")
    assert_error(requests.get(f"{stack.user.url}/admin/users", headers=demoted), 403,
                 "forbidden")
    assert_error(requests.post(f"{stack.room.url}/rooms", headers=demoted,
                               json={"name": f"Late {uuid.uuid4().hex[:12]}", "capacity": 3}),
                 403, "forbidden")
    assert_accepted_everywhere(stack, demoted)

    up, down = user_events(stack, uid, 2)
    assert_envelope(up, uid, "user_role_changed", role="admin")
    assert_envelope(down, uid, "user_role_changed", role="employee")
    assert_not_before_everywhere(stack, uid, down["occurred_at"])


def test_changes_that_change_nothing_publish_and_void_nothing(stack, admin_headers):
    user = signed_in(stack, unique_email("rv-same"))
    uid, headers = user["user"]["id"], bearer(user["access_token"])
    put_user(stack, admin_headers, uid, {"name": "Same Role", "role": "employee",
                                         "disabled": False})
    # Events are written in the statement of the change: there would be an outbox row by now.
    assert db_query(stack.pg, "user_db", "SELECT payload FROM outbox WHERE key = %s",
                    str(uid)) == []
    assert not_before(stack, "user", uid) is None
    assert_accepted_everywhere(stack, headers)


def known_room(stack, admin_headers):
    room = create_room(stack.room.url, admin_headers)
    wait_known_room(stack.reservation.url, admin_headers, room["id"])
    return room


def book(stack, headers, room_id, start, minutes=60):
    return requests.post(f"{stack.reservation.url}/reservations", headers=headers, timeout=10,
                         json={"room_id": room_id, "start_time": start,
                               "end_time": shift(start, minutes=minutes)})


def test_bookings_made_after_the_deletion_are_cancelled(stack, admin_headers):
    # A user reservation-service has not yet heard is deleted: the token (signed with the suite's
    # key, issued before the deletion) still books; the user_deleted is sent by hand afterwards,
    # as a consumer that lags behind would receive it.
    uid = 10 ** 12 + random.randrange(10 ** 9)
    headers = bearer(forge_token(uid, email=unique_email("rv-late"), role="employee"))
    room = known_room(stack, admin_headers)
    start = utc_at(days=40, hour=9)
    r = book(stack, headers, room["id"], start)
    assert r.status_code == 201, r.text
    before = r.json()
    time.sleep(1.1)  # the deletion falls in a later second than the token's iat
    deleted_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    time.sleep(0.05)
    r = book(stack, headers, room["id"], shift(start, hours=2))
    assert r.status_code == 201, r.text
    after = r.json()
    assert after["created_at"] > deleted_at, (after, deleted_at)

    stack.kafka.produce("user_events", str(uid), (
        f'{{"event_type":"user_deleted","event_id":"{uuid.uuid4()}",'
        f'"occurred_at":"{deleted_at}","user_id":{uid}}}'))
    ids = (before["id"], after["id"])

    def cancelled():
        rows = res_db_query(stack.pg, "SELECT status, cancel_reason FROM reservations "
                                      "WHERE id = ANY(%s)", list(ids))
        return len(rows) == 2 and all(row == ("cancelled", "user_deleted") for row in rows)
    wait_until(cancelled, timeout=10, interval=0.1, what=f"reservations {ids} cancelled")
    wait_until(lambda: probe(stack, "reservation", headers).status_code == 401, timeout=10,
               interval=0.05, what="token refused")
    assert_error(book(stack, headers, room["id"], shift(start, hours=4)), 401, "token_revoked")
    assert not_before(stack, "reservation", uid) == deleted_at


def test_a_far_future_time_is_cut_to_a_minute_ahead(stack):
    # A malformed or forged user_disabled dated 2099 would void the user's tokens for good:
    # each consumer cuts it to the database's clock + 1 minute.
    uid = 10 ** 12 + random.randrange(10 ** 9)
    stack.kafka.produce("user_events", str(uid), (
        f'{{"event_type":"user_disabled","event_id":"{uuid.uuid4()}",'
        f'"occurred_at":"2099-01-01T00:00:00.000Z","user_id":{uid}}}'))
    for svc in ("room", "reservation"):
        wait_until(lambda svc=svc: not_before(stack, svc, uid) is not None, timeout=10,
                   interval=0.1, what=f"token_revocations row of {uid} in {svc}")
        [(ahead,)] = db_query(stack.pg, DATABASES[svc],
                              "SELECT extract(epoch FROM not_before - now()) "
                              "FROM token_revocations WHERE user_id = %s", uid)
        assert 0 < ahead <= 60, (svc, ahead)


def test_no_booking_racing_with_the_deletion_survives(stack, admin_headers):
    token, uid = operator_token(stack.user, unique_email("rv-race"))
    headers = bearer(token)
    room = known_room(stack, admin_headers)
    base = utc_at(days=60, hour=0)
    answers, lock = [], threading.Lock()

    def booker(i):
        for j in range(400):
            r = book(stack, headers, room["id"], shift(base, minutes=15 * (i * 400 + j)), 15)
            code = r.json().get("code") if r.status_code != 201 else None
            with lock:
                answers.append((r.status_code, code))
            if r.status_code == 401:
                return

    threads = [threading.Thread(target=booker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(1 for a in answers if a[0] == 201) >= 8, timeout=20, interval=0.02,
               what="bookings before the deletion")
    r = requests.delete(f"{stack.user.url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 204, r.text
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    made = sum(1 for a in answers if a[0] == 201)
    refused = [a for a in answers if a[0] != 201]
    print(f"{made} bookings made, then refused: {sorted(set(refused))}")
    assert refused and all(a == (401, "token_revoked") for a in refused), sorted(set(refused))
    assert len(refused) == len(threads)
    # Every booking that was made is cancelled: none got past the deletion.
    rows = res_db_query(stack.pg, "SELECT status, cancel_reason, count(*) FROM reservations "
                                  "WHERE user_id = %s GROUP BY 1, 2", uid)
    assert rows == [("cancelled", "user_deleted", made)], rows


def test_operator_role_change_revokes_too(stack):
    email = unique_email("rv-op")
    old, uid = operator_token(stack.user, email)
    assert_accepted_everywhere(stack, bearer(old))
    t0 = time.monotonic()
    new, same = operator_token(stack.user, email, role="admin")
    assert same == uid
    # The command's token is issued with the change: good at once, with the new role.
    assert decode_jwt_payload(new)["role"] == "admin"
    assert_accepted_everywhere(stack, bearer(new))
    wait_revoked_everywhere(stack, bearer(old), t0)
    [ev] = user_events(stack, uid, 1)
    assert_envelope(ev, uid, "user_role_changed", role="admin")
