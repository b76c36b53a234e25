"""Re-delivered, stale and unusable messages on room_events / user_events
(docs/events.md#consumer-rules: re-delivery changes nothing; events older than the stored version
are ignored; a message that cannot be parsed is copied to <topic>.dlq and consumption goes on)."""
import datetime
import json
import subprocess
import uuid

import requests

from harness import (
    bearer,
    create_room,
    operator_token,
    res_db_query,
    res_outbox_unsent,
    reservation_events,
    utc_at,
    wait_known_room,
    wait_until,
)

at = utc_at  # at(days, hour, minute=0): that UTC time, days after today


def employee_headers(stack, prefix="re"):
    token, uid = operator_token(stack.user, f"{prefix}-{uuid.uuid4().hex[:10]}@example.com")
    return bearer(token), uid


def post(res_url, headers, room_id, start, end):
    return requests.post(f"{res_url}/reservations", json={"room_id": room_id,
                         "start_time": start, "end_time": end}, headers=headers, timeout=10)


def book(res_url, headers, room_id, start, end):
    r = post(res_url, headers, room_id, start, end)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def produce_to(kafka, topic, partition, key, value):
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", topic, "-p", str(partition),
                    "-k", key], input=value, text=True, check=True, timeout=20)


def dlq_has(kafka, topic, key, payload):
    return any(m.get("key") == key and m.get("payload") == payload
               for m in kafka.read(f"{topic}.dlq"))


def events_of(kafka, topic, key):
    """The events with key as first published (markers and re-delivered copies left out)."""
    seen, out = set(), []
    for m in kafka.read(topic):
        if m.get("key") == str(key) and isinstance(m["value"], dict) and \
                m["value"].get("event_id") not in seen:
            seen.add(m["value"].get("event_id"))
            out.append(m)
    return out


def consumed_up_to_here(kafka, topic, key):
    """Appends an unusable marker with key (so on key's partition) and waits until it reaches
    the DLQ: every earlier message of that partition has then been handled."""
    marker = f"marker {uuid.uuid4()}"
    kafka.produce(topic, str(key), marker)
    wait_until(lambda: dlq_has(kafka, topic, str(key), marker), timeout=20, interval=0.2,
               what=f"marker on {topic}.dlq")
    return marker


def redeliver(kafka, topic, msg):
    """Produces the exact bytes (key and value) of msg again and waits until it is consumed."""
    kafka.produce(topic, msg["key"], msg["payload"])
    consumed_up_to_here(kafka, topic, msg["key"])
    copies = [m for m in kafka.read(topic)
              if m.get("key") == msg["key"] and m["payload"] == msg["payload"]]
    assert len(copies) >= 2 and {m["partition"] for m in copies} == {msg["partition"]}, copies


def room_row(stack, room_id, stamp=True):
    """The local copy of a room (with its updated_at unless stamp=False: re-applying a
    room_deleted refreshes the tombstone's internal time stamp, which no answer shows)."""
    return res_db_query(stack.pg, "SELECT name, capacity, time_zone, active, deleted, version"
                                  + (", updated_at" if stamp else "") + " FROM rooms "
                                  "WHERE id = %s", room_id)


def reservations_of(stack, column, value):
    return res_db_query(stack.pg, f"SELECT id, status, cancel_reason, version, updated_at, "
                                  f"start_time, end_time FROM reservations WHERE {column} = %s "
                                  f"ORDER BY id", value)


def settled_events(stack, ids):
    wait_until(lambda: res_outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
               what="reservation outbox drained")
    return [(m["key"], m["value"]["event_type"]) for m in reservation_events(stack.kafka, ids)]


def test_redelivered_room_events_change_nothing(stack, room_url, res_url, admin_headers):
    headers, uid = employee_headers(stack)
    room = create_room(room_url, admin_headers)
    rid = room["id"]
    wait_known_room(res_url, admin_headers, rid)
    kept = book(res_url, headers, rid, at(12, 9), at(12, 10))
    url = f"{room_url}/rooms/{rid}"
    assert requests.put(url, json={"active": False}, headers=admin_headers).status_code == 200
    wait_until(lambda: post(res_url, headers, rid, at(12, 9), at(12, 10)).status_code == 422,
               timeout=10, what="room inactive")
    created, deactivated = events_of(stack.kafka, "room_events", rid)
    assert created["value"]["event_type"] == "room_created"
    assert deactivated["value"]["version"] == 2

    before = room_row(stack, rid)
    redeliver(stack.kafka, "room_events", created)      # v1, active: must not reactivate
    redeliver(stack.kafka, "room_events", deactivated)
    assert room_row(stack, rid) == before
    r = post(res_url, headers, rid, at(12, 11), at(12, 12))
    assert r.status_code == 422 and "room_id" in r.json()["details"], r.text

    assert requests.put(url, json={"active": True}, headers=admin_headers).status_code == 200
    wait_until(lambda: post(res_url, headers, rid, at(12, 9), at(12, 10)).status_code == 409,
               timeout=10, what="room active again")
    later = book(res_url, headers, rid, at(13, 9), at(13, 10))
    assert requests.delete(url, headers=admin_headers).status_code == 204
    wait_until(lambda: reservations_of(stack, "room_id", rid)[-1][1] == "cancelled", timeout=10,
               what="room_deleted applied")
    msgs = events_of(stack.kafka, "room_events", rid)
    assert [m["value"]["event_type"] for m in msgs] == \
        ["room_created", "room_updated", "room_updated", "room_deleted"]

    ids = [kept["id"], later["id"]]
    rows = reservations_of(stack, "room_id", rid)
    assert [(r[1], r[2]) for r in rows] == [("cancelled", "room_deleted")] * 2
    events = settled_events(stack, ids)
    room_before = room_row(stack, rid, stamp=False)
    for msg in msgs:                                     # all four again, in order
        redeliver(stack.kafka, "room_events", msg)
    assert reservations_of(stack, "room_id", rid) == rows
    assert room_row(stack, rid, stamp=False) == room_before
    assert room_before[0][4] is True                     # still a tombstone
    assert settled_events(stack, ids) == events          # no new reservation_cancelled
    r = requests.get(f"{res_url}/availability", params={"room_id": rid, "date": at(12, 0)[:10]},
                     headers=headers)
    assert r.status_code == 404, r.text
    r = post(res_url, headers, rid, at(14, 9), at(14, 10))
    assert r.status_code == 422 and "room_id" in r.json()["details"], r.text


def test_redelivered_room_created_changes_no_availability(stack, room_url, res_url,
                                                          admin_headers):
    headers, _ = employee_headers(stack)
    room = create_room(room_url, admin_headers)
    wait_known_room(res_url, admin_headers, room["id"])
    book(res_url, headers, room["id"], at(15, 9), at(15, 10))
    book(res_url, headers, room["id"], at(15, 13), at(15, 14))
    q = {"room_id": room["id"], "date": at(15, 0)[:10]}
    before = requests.get(f"{res_url}/availability", params=q, headers=headers).json()
    rows = reservations_of(stack, "room_id", room["id"])
    (created,) = events_of(stack.kafka, "room_events", room["id"])
    redeliver(stack.kafka, "room_events", created)
    assert requests.get(f"{res_url}/availability", params=q, headers=headers).json() == before
    assert reservations_of(stack, "room_id", room["id"]) == rows
    assert len(before["busy"]) == 2


def test_older_room_updated_is_ignored(stack, room_url, res_url, admin_headers):
    headers, _ = employee_headers(stack)
    room = create_room(room_url, admin_headers)
    rid = room["id"]
    wait_known_room(res_url, admin_headers, rid)
    r = requests.put(f"{room_url}/rooms/{rid}", json={"capacity": 9}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    wait_until(lambda: room_row(stack, rid)[0][5] == 2, timeout=10, what="version 2 applied")
    current = room_row(stack, rid)

    for version in (1, 2):  # older, then equal: both must be ignored
        stale = {"event_type": "room_updated", "event_id": str(uuid.uuid4()),
                 "occurred_at": datetime.datetime.now(datetime.UTC).strftime(
                     "%Y-%m-%dT%H:%M:%S.000Z"),
                 "version": version, "room": {**r.json(), "active": False, "version": version,
                                              "capacity": 1, "name": "stale copy"}}
        stack.kafka.produce("room_events", str(rid), json.dumps(stale))
        consumed_up_to_here(stack.kafka, "room_events", rid)
        assert room_row(stack, rid) == current
        book(res_url, headers, rid, at(16, 9 + version), at(16, 10 + version))

    # A real, newer change still applies (so the stale ones were read, and ignored).
    assert requests.put(f"{room_url}/rooms/{rid}", json={"active": False},
                        headers=admin_headers).status_code == 200
    wait_until(lambda: post(res_url, headers, rid, at(16, 14), at(16, 15)).status_code == 422,
               timeout=10, what="version 3 (inactive) applied")
    assert room_row(stack, rid)[0][5] == 3


def user_deleted_message(stack, uid):
    def find():
        return [m for m in stack.kafka.read("user_events")
                if isinstance(m["value"], dict) and m["value"].get("event_type") == "user_deleted"
                and m["value"].get("user_id") == uid]
    return wait_until(find, timeout=20, interval=0.2, what=f"user_deleted of {uid}")[0]


def delete_user_and_wait(stack, admin_headers, uid, res_id):
    r = requests.delete(f"{stack.user.url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 204, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT status FROM reservations WHERE id = %s",
                                    res_id)[0][0] == "cancelled",
               timeout=10, what="user_deleted applied")
    return user_deleted_message(stack, uid)


def test_redelivered_user_deleted_changes_nothing(stack, room_url, res_url, admin_headers):
    u_headers, uid = employee_headers(stack, "gone")
    v_headers, vid = employee_headers(stack, "kept")
    room = create_room(room_url, admin_headers)
    wait_known_room(res_url, admin_headers, room["id"])
    mine = book(res_url, u_headers, room["id"], at(17, 9), at(17, 10))
    theirs = book(res_url, v_headers, room["id"], at(17, 10), at(17, 11))
    msg = delete_user_and_wait(stack, admin_headers, uid, mine["id"])
    assert msg["key"] == str(uid)

    rows_u, rows_v = reservations_of(stack, "user_id", uid), reservations_of(stack, "user_id", vid)
    assert [(r[1], r[2]) for r in rows_u] == [("cancelled", "user_deleted")]
    events = settled_events(stack, [mine["id"], theirs["id"]])
    redeliver(stack.kafka, "user_events", msg)
    assert reservations_of(stack, "user_id", uid) == rows_u
    assert reservations_of(stack, "user_id", vid) == rows_v
    assert settled_events(stack, [mine["id"], theirs["id"]]) == events


def test_deleted_users_token_cannot_book_and_redelivery_changes_nothing(stack, room_url,
                                                                        res_url, admin_headers):
    u_headers, uid = employee_headers(stack, "ghost")
    room = create_room(room_url, admin_headers)
    wait_known_room(res_url, admin_headers, room["id"])
    first = book(res_url, u_headers, room["id"], at(18, 9), at(18, 10))
    msg = delete_user_and_wait(stack, admin_headers, uid, first["id"])
    # The access token is revoked with the deletion (docs/architecture.md#revocation): no
    # booking can come after it, so a redelivered user_deleted has nothing new to cancel.
    wait_until(lambda: post(res_url, u_headers, room["id"], at(18, 11), at(18, 12)).status_code
               == 401, timeout=5, interval=0.05, what="the deleted user's token refused")
    r = post(res_url, u_headers, room["id"], at(18, 11), at(18, 12))
    assert r.status_code == 401 and r.json()["code"] == "token_revoked", r.text
    rows = reservations_of(stack, "user_id", uid)
    redeliver(stack.kafka, "user_events", msg)
    assert reservations_of(stack, "user_id", uid) == rows
    assert [(row[1], row[2]) for row in rows] == [("cancelled", "user_deleted")]


GARBAGE_ROOM_EVENTS = {
    "not-json": "not json",
    "no-event-type": json.dumps({"hello": "world", "room": {"id": 1}}),
    "room-without-id": json.dumps({
        "event_type": "room_created", "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-01-01T00:00:00.000Z", "version": 1,
        "room": {"name": "No id", "capacity": 3, "time_zone": "UTC", "active": True}}),
    "deleted-without-room-id": json.dumps({
        "event_type": "room_deleted", "event_id": str(uuid.uuid4()),
        "occurred_at": "2026-01-01T00:00:00.000Z", "version": 2}),
}


def test_unusable_room_events_go_to_the_dlq_and_consumption_goes_on(stack, room_url, res_url,
                                                                    admin_headers):
    tag = uuid.uuid4().hex[:8]
    sent = []
    # Into every partition, so whichever partition the next room lands on.
    for partition in range(stack.kafka.partitions("room_events")):
        for kind, value in GARBAGE_ROOM_EVENTS.items():
            key = f"garbage-{kind}-{partition}-{tag}"
            produce_to(stack.kafka, "room_events", partition, key, value)
            sent.append((key, value))

    def all_in_dlq():
        got = {(m.get("key"), m.get("payload")) for m in stack.kafka.read("room_events.dlq")}
        return all(s in got for s in sent)
    wait_until(all_in_dlq, timeout=20, interval=0.3, what="garbage copied to room_events.dlq")

    room = create_room(room_url, admin_headers)
    elapsed = wait_known_room(res_url, admin_headers, room["id"], timeout=10)
    print(f"room {room['id']} bookable {elapsed:.2f} s after POST /rooms (behind the garbage)")
    assert elapsed < 10
    headers, _ = employee_headers(stack)
    book(res_url, headers, room["id"], at(19, 9), at(19, 10))


def test_unusable_user_events_go_to_the_dlq_and_consumption_goes_on(stack, room_url, res_url,
                                                                    admin_headers):
    tag = uuid.uuid4().hex[:8]
    sent = []
    for partition in range(stack.kafka.partitions("user_events")):
        for kind, value in {"not-json": "{\"truncated\": ",
                            "no-user-id": json.dumps({"event_type": "user_deleted",
                                                      "event_id": str(uuid.uuid4())})}.items():
            key = f"garbage-{kind}-{partition}-{tag}"
            produce_to(stack.kafka, "user_events", partition, key, value)
            sent.append((key, value))

    def all_in_dlq():
        got = {(m.get("key"), m.get("payload")) for m in stack.kafka.read("user_events.dlq")}
        return all(s in got for s in sent)
    wait_until(all_in_dlq, timeout=20, interval=0.3, what="garbage copied to user_events.dlq")

    # A real user_deleted after the garbage is still applied.
    u_headers, uid = employee_headers(stack, "after-garbage")
    room = create_room(room_url, admin_headers)
    wait_known_room(res_url, admin_headers, room["id"])
    res = book(res_url, u_headers, room["id"], at(20, 9), at(20, 10))
    delete_user_and_wait(stack, admin_headers, uid, res["id"])
    assert reservations_of(stack, "id", res["id"])[0][2] == "user_deleted"
