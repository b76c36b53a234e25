"""reservation-service as a consumer of room_events and user_events and a producer of
reservation_events (docs/events.md), through the real room-service, user-service and broker."""
import json
import re
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
    wait_room_events,
    wait_until,
)

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


at = utc_at  # at(days, hour, minute=0): that UTC time, days after today


def employee_headers(stack, prefix="ev"):
    token, uid = operator_token(stack.user, f"{prefix}-{uuid.uuid4().hex[:10]}@example.com")
    return bearer(token), uid


def post(res_url, headers, room_id, start, end, **extra):
    body = {"room_id": room_id, "start_time": start, "end_time": end, **extra}
    return requests.post(f"{res_url}/reservations", json=body, headers=headers, timeout=10)


def book(res_url, headers, room_id, start, end, **extra):
    r = post(res_url, headers, room_id, start, end, **extra)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def get_res(res_url, headers, rid):
    r = requests.get(f"{res_url}/reservations/{rid}", headers=headers, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def known_room(room_url, res_url, admin_headers, **fields):
    room = create_room(room_url, admin_headers, **fields)
    wait_known_room(res_url, admin_headers, room["id"])
    return room


def insert_past(stack, room_id, user_id):
    """A reservation that took place two days ago, written directly (the API refuses the past)."""
    return res_db_query(stack.pg, "INSERT INTO reservations (room_id, user_id, purpose, "
                                  "start_time, end_time) VALUES (%s, %s, 'history', "
                                  "now() - interval '2 days', now() - interval '2 days' + "
                                  "interval '1 hour') RETURNING id", room_id, user_id)[0][0]


def status_of(stack, rid):
    return res_db_query(stack.pg, "SELECT status, cancel_reason FROM reservations WHERE id = %s",
                        rid)[0]


def drained_events(stack, ids, count):
    """Waits until the reservation outbox is empty and count events for ids are on the broker."""
    wait_until(lambda: res_outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
               what="reservation outbox drained")
    found = []

    def enough():
        found[:] = reservation_events(stack.kafka, ids)
        return len(found) >= count
    wait_until(enough, timeout=30, interval=0.3, what=f"{count} reservation events for {ids}")
    return found


def test_room_created_in_room_service_becomes_bookable_within_10_s(stack, room_url, res_url,
                                                                   admin_headers):
    headers, _ = employee_headers(stack)
    room = create_room(room_url, admin_headers)
    elapsed = wait_known_room(res_url, admin_headers, room["id"], timeout=10)
    print(f"room {room['id']} bookable {elapsed:.2f} s after POST /rooms")
    assert elapsed < 10
    r = book(res_url, headers, room["id"], at(3, 9), at(3, 10))
    assert r["status"] == "confirmed"


def test_deactivated_room_refuses_bookings_until_reactivated(stack, room_url, res_url,
                                                             admin_headers):
    headers, _ = employee_headers(stack)
    room = known_room(room_url, res_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    held = book(res_url, headers, room["id"], at(4, 9), at(4, 10))
    # The held slot answers 409 while the room is active and 422 once it is inactive.
    probe = lambda: post(res_url, headers, room["id"], at(4, 9), at(4, 10)).status_code  # noqa

    assert requests.put(url, json={"active": False}, headers=admin_headers).status_code == 200
    wait_until(lambda: probe() == 422, timeout=10, what="room inactive for reservation-service")
    r = post(res_url, headers, room["id"], at(4, 11), at(4, 12))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_failed" and "room_id" in body["details"], body
    r = requests.put(f"{res_url}/reservations/{held['id']}", json={"end_time": at(4, 10, 30)},
                     headers=headers)
    assert r.status_code == 422 and "room_id" in r.json()["details"], r.text

    assert requests.put(url, json={"active": True}, headers=admin_headers).status_code == 200
    wait_until(lambda: probe() == 409, timeout=10, what="room active again")
    book(res_url, headers, room["id"], at(4, 11), at(4, 12))
    assert get_res(res_url, headers, held["id"])["status"] == "confirmed"


def test_deleting_a_room_cancels_its_future_reservations_only(stack, room_url, res_url,
                                                              admin_headers):
    headers, uid = employee_headers(stack)
    room = known_room(room_url, res_url, admin_headers)
    other = known_room(room_url, res_url, admin_headers)
    f1 = book(res_url, headers, room["id"], at(5, 9), at(5, 10))
    f2 = book(res_url, headers, room["id"], at(40, 9), at(40, 17))
    mine_elsewhere = book(res_url, headers, other["id"], at(5, 9), at(5, 10))
    gone = book(res_url, headers, room["id"], at(6, 9), at(6, 10))
    assert requests.delete(f"{res_url}/reservations/{gone['id']}",
                           headers=headers).status_code == 204
    past = insert_past(stack, room["id"], uid)

    assert requests.delete(f"{room_url}/rooms/{room['id']}",
                           headers=admin_headers).status_code == 204
    wait_until(lambda: get_res(res_url, headers, f2["id"])["status"] == "cancelled", timeout=10,
               what="future reservations cancelled by room_deleted")
    cancelled = [get_res(res_url, headers, f["id"]) for f in (f1, f2)]
    for before, after in zip((f1, f2), cancelled, strict=True):
        assert after["status"] == "cancelled" and after["cancel_reason"] == "room_deleted", after
        assert after["version"] == before["version"] + 1
        assert (after["start_time"], after["end_time"], after["room_id"]) == \
            (before["start_time"], before["end_time"], before["room_id"])
    assert get_res(res_url, headers, past)["status"] == "confirmed"
    assert status_of(stack, past) == ("confirmed", None)
    assert get_res(res_url, headers, mine_elsewhere["id"])["status"] == "confirmed"
    g = get_res(res_url, headers, gone["id"])
    assert (g["status"], g["cancel_reason"]) == ("cancelled", "cancelled_by_user")

    r = post(res_url, headers, room["id"], at(7, 9), at(7, 10))
    assert r.status_code == 422 and "room_id" in r.json()["details"], r.text
    r = requests.get(f"{res_url}/availability", params={"room_id": room["id"],
                                                         "date": at(5, 0)[:10]}, headers=headers)
    assert r.status_code == 404, r.text

    msgs = drained_events(stack, [f1["id"], f2["id"]], 4)
    for res in cancelled:
        mine = [m["value"] for m in msgs if m["key"] == str(res["id"])]
        assert [v["event_type"] for v in mine] == ["reservation_created", "reservation_cancelled"]
        assert mine[-1]["reservation"] == res
        assert mine[-1]["version"] == res["version"]


def test_deleting_a_user_cancels_that_users_future_reservations_only(stack, room_url, res_url,
                                                                     admin_headers, user_url):
    u_headers, uid = employee_headers(stack, "doomed")
    v_headers, _ = employee_headers(stack, "stays")
    room = known_room(room_url, res_url, admin_headers)
    other = known_room(room_url, res_url, admin_headers)
    u1 = book(res_url, u_headers, room["id"], at(5, 9), at(5, 10))
    u2 = book(res_url, u_headers, other["id"], at(60, 9), at(60, 10))
    v1 = book(res_url, v_headers, room["id"], at(5, 10), at(5, 11))
    past = insert_past(stack, room["id"], uid)

    r = requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 204, r.text
    wait_until(lambda: get_res(res_url, admin_headers, u2["id"])["status"] == "cancelled",
               timeout=10, what="user's reservations cancelled by user_deleted")
    cancelled = [get_res(res_url, admin_headers, x["id"]) for x in (u1, u2)]
    for after in cancelled:
        assert (after["status"], after["cancel_reason"]) == ("cancelled", "user_deleted"), after
    assert get_res(res_url, v_headers, v1["id"]) == v1
    assert status_of(stack, past) == ("confirmed", None)
    # The slot is free again for others.
    book(res_url, v_headers, room["id"], at(5, 9), at(5, 10))

    msgs = drained_events(stack, [u1["id"], u2["id"]], 4)
    for res in cancelled:
        mine = [m["value"] for m in msgs if m["key"] == str(res["id"])]
        assert [v["event_type"] for v in mine] == ["reservation_created", "reservation_cancelled"]
        assert mine[-1]["reservation"] == res


def test_reservation_changes_are_published_with_the_api_body(stack, room_url, res_url,
                                                             admin_headers):
    headers, _ = employee_headers(stack)
    room = known_room(room_url, res_url, admin_headers)
    created = book(res_url, headers, room["id"], at(9, 9), at(9, 10), purpose="Planning ✓")
    r = requests.put(f"{res_url}/reservations/{created['id']}",
                     json={"end_time": at(9, 11), "purpose": "longer"}, headers=headers)
    assert r.status_code == 200, r.text
    updated = r.json()
    assert requests.delete(f"{res_url}/reservations/{created['id']}",
                           headers=headers).status_code == 204
    cancelled = get_res(res_url, headers, created["id"])
    assert cancelled["cancel_reason"] == "cancelled_by_user"

    msgs = drained_events(stack, [created["id"]], 3)
    assert len(msgs) == 3, msgs
    assert all(m["key"] == str(created["id"]) for m in msgs)
    assert len({m["partition"] for m in msgs}) == 1
    values = [m["value"] for m in msgs]
    assert [v["event_type"] for v in values] == ["reservation_created", "reservation_updated",
                                                 "reservation_cancelled"]
    assert [v["reservation"] for v in values] == [created, updated, cancelled]
    assert [v["version"] for v in values] == [1, 2, 3]
    assert len({v["event_id"] for v in values}) == 3
    for v in values:
        assert set(v) == {"event_type", "event_id", "occurred_at", "version", "reservation"}, v
        assert str(uuid.UUID(v["event_id"])) == v["event_id"]
        assert RFC3339_Z.fullmatch(v["occurred_at"]), v
    assert [v["occurred_at"] for v in values] == sorted(v["occurred_at"] for v in values)


def test_refused_changes_publish_nothing(stack, room_url, res_url, admin_headers):
    headers, _ = employee_headers(stack)
    room = known_room(room_url, res_url, admin_headers)
    res = book(res_url, headers, room["id"], at(10, 9), at(10, 10))
    assert post(res_url, headers, room["id"], at(10, 9, 30), at(10, 10)).status_code == 409
    url = f"{res_url}/reservations/{res['id']}"
    assert requests.put(url, json={"end_time": at(10, 8)}, headers=headers).status_code == 422
    assert requests.put(url, json={"purpose": "x"}, headers={**headers, "If-Match": '"9"'}) \
        .status_code == 412
    assert requests.delete(url, headers={**headers, "If-Match": '"9"'}).status_code == 412
    assert requests.delete(url, headers=headers).status_code == 204
    assert requests.delete(url, headers=headers).status_code in (204, 409)
    msgs = drained_events(stack, [res["id"]], 2)
    assert [m["value"]["event_type"] for m in msgs] == ["reservation_created",
                                                        "reservation_cancelled"]


def ordered(raw):
    """A JSON text as nested lists of (key, value) pairs: equal only with the same keys in the
    same order and the same values."""
    return json.loads(raw, object_pairs_hook=list)


def envelope_text(raw, nkeys):
    """The text of a payload up to its nkeys+1-th key, every string and number value masked:
    the spelling of the first nkeys members (order, separators, which values are strings)."""
    token = r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?'
    keys = [m.start() for m in re.finditer(token, raw)
            if raw[m.end():].lstrip().startswith(":")]

    def mask(m):
        return m.group(0) if m.start() in keys else '"~"' if m.group(0)[0] == '"' else "0"
    return re.sub(token, mask, raw[:keys[nkeys]])


def test_one_spelling_of_a_reservation_and_of_the_event_envelope(stack, room_url, res_url,
                                                                admin_headers):
    """The reservation JSON and the event envelope are spelled by the SQL functions res_json and
    res_event (migration 002) for the writes, by res_write_columns (C text) for the reads, and by
    OUTBOX_EVENT (common/include/outbox.h) for the other services' events: a write's answer is
    the read's byte for byte, and a reservation event has the envelope of a room event."""
    headers, _ = employee_headers(stack)
    room = known_room(room_url, res_url, admin_headers)
    purpose = 'Quote " backslash \\ tab \t ✓ <b>&'
    created = post(res_url, headers, room["id"], at(11, 9), at(11, 10), purpose=purpose)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    url = f"{res_url}/reservations/{rid}"
    read = requests.get(url, headers=headers, timeout=10)
    assert read.status_code == 200, read.text
    assert created.content == read.content
    updated = requests.put(url, json={"purpose": purpose + " 2"}, headers=headers, timeout=10)
    assert updated.status_code == 200, updated.text
    reread = requests.get(url, headers=headers, timeout=10)
    assert updated.content == reread.content
    # The list writes its entries as text: the same bytes as the answer to the write.
    page = requests.get(f"{res_url}/reservations?limit=100", headers=headers, timeout=10)
    assert page.status_code == 200, page.text
    assert updated.content in page.content, (updated.text, page.text)

    msgs = drained_events(stack, [rid], 2)
    assert [m["value"]["event_type"] for m in msgs] == ["reservation_created",
                                                        "reservation_updated"]
    for m, answer in zip(msgs, (read, reread), strict=True):
        assert ordered(m["payload"])[4] == ("reservation", ordered(answer.text)), m["payload"]
    room_event = wait_room_events(stack.kafka, [room["id"]], 1)[0]
    assert room_event["value"]["event_type"] == "room_created", room_event
    # event_type, event_id, occurred_at (OUTBOX_EVENT), then version: same order, same spelling.
    for m in msgs:
        assert [k for k, _ in ordered(m["payload"])][:4] == \
            [k for k, _ in ordered(room_event["payload"])][:4] == \
            ["event_type", "event_id", "occurred_at", "version"], (m, room_event)
        assert envelope_text(m["payload"], 4) == envelope_text(room_event["payload"], 4)
        assert len(m["value"]["occurred_at"]) == len(room_event["value"]["occurred_at"])
