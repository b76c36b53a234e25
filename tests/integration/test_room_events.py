"""Room changes as events on room_events, read back from the real broker
(docs/events.md#room_events)."""
import re
import uuid

import requests

from harness import (
    create_room,
    outbox_unsent,
    room_db_query,
    room_events,
    wait_room_events,
    wait_until,
)

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


def settle(stack, ids):
    """Waits until the outbox holds nothing unsent for ids, so that every event is on the
    broker and a count read afterwards is final."""
    wait_until(lambda: outbox_unsent(stack.pg, ids) == 0, timeout=30, interval=0.1,
               what=f"outbox drained for rooms {ids}")


def test_create_update_update_delete_publish_four_events(stack, room_url, admin_headers):
    room = create_room(room_url, admin_headers, equipment="Projector", building="HQ", floor=1)
    rid = room["id"]
    url = f"{room_url}/rooms/{rid}"
    r1 = requests.put(url, json={"capacity": 20, "description": "bigger"}, headers=admin_headers)
    assert r1.status_code == 200, r1.text
    r2 = requests.put(url, json={"equipment": None, "floor": None}, headers=admin_headers)
    assert r2.status_code == 200, r2.text
    assert requests.delete(url, headers=admin_headers).status_code == 204

    wait_room_events(stack.kafka, [rid], 4)
    settle(stack, [rid])
    msgs = room_events(stack.kafka, [rid])
    assert len(msgs) == 4, msgs
    values = [m["value"] for m in msgs]
    assert all(m["key"] == str(rid) for m in msgs)
    assert len({m["partition"] for m in msgs}) == 1
    offsets = [m["offset"] for m in msgs]
    assert offsets == sorted(offsets)
    assert [v["event_type"] for v in values] == ["room_created", "room_updated", "room_updated",
                                                 "room_deleted"]
    assert [v["version"] for v in values] == [1, 2, 3, 4]
    ids = [v["event_id"] for v in values]
    assert len(set(ids)) == 4
    for eid in ids:
        assert str(uuid.UUID(eid)) == eid.lower()
    times = [v["occurred_at"] for v in values]
    assert all(RFC3339_Z.fullmatch(t) for t in times), times
    assert times == sorted(times)
    for v in values[:3]:
        assert set(v) == {"event_type", "event_id", "occurred_at", "version", "room"}, v
    assert values[0]["room"] == room
    assert values[1]["room"] == r1.json()
    assert values[2]["room"] == r2.json()
    assert values[3] == {"event_type": "room_deleted", "event_id": ids[3],
                         "occurred_at": times[3], "version": 4, "room_id": rid}


def test_message_is_the_outbox_row_byte_for_byte(stack, room_url, admin_headers):
    room = create_room(room_url, admin_headers, description="Ünïcødé ✓ \"quoted\"")
    msgs = wait_room_events(stack.kafka, [room["id"]], 1)
    rows = room_db_query(stack.pg, "SELECT payload::text, sent_at FROM outbox WHERE key = %s "
                                   "ORDER BY id", str(room["id"]))
    assert len(rows) == 1 and len(msgs) == 1
    assert msgs[0]["payload"] == rows[0][0]
    assert msgs[0]["value"]["room"]["description"] == "Ünïcødé ✓ \"quoted\""
    settle(stack, [room["id"]])


def test_failed_changes_publish_nothing(stack, room_url, admin_headers):
    other = create_room(room_url, admin_headers)
    room = create_room(room_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    rejected = [
        requests.put(url, json={"capacity": 0}, headers=admin_headers),                  # 422
        requests.put(url, json={"name": other["name"]}, headers=admin_headers),          # 409
        requests.put(url, json={"capacity": 5}, headers={**admin_headers,
                                                         "If-Match": '"7"'}),           # 412
        requests.delete(url, headers={**admin_headers, "If-Match": '"7"'}),              # 412
        requests.post(f"{room_url}/rooms", json={"name": room["name"], "capacity": 3},
                      headers=admin_headers),                                            # 409
    ]
    assert [r.status_code for r in rejected] == [422, 409, 412, 412, 409]
    r = requests.put(url, json={"capacity": 6}, headers=admin_headers)
    assert r.status_code == 200
    wait_room_events(stack.kafka, [room["id"]], 2)
    settle(stack, [room["id"], other["id"]])
    msgs = room_events(stack.kafka, [room["id"]])
    assert [(m["value"]["event_type"], m["value"]["version"]) for m in msgs] == \
        [("room_created", 1), ("room_updated", 2)]
    assert msgs[1]["value"]["room"] == r.json()
    assert len(room_events(stack.kafka, [other["id"]])) == 1


def test_events_of_many_rooms_keep_per_room_order(stack, room_url, admin_headers):
    rooms = [create_room(room_url, admin_headers) for _ in range(6)]
    for room in rooms:
        for cap in (7, 8):
            assert requests.put(f"{room_url}/rooms/{room['id']}", json={"capacity": cap},
                                headers=admin_headers).status_code == 200
    ids = [x["id"] for x in rooms]
    wait_room_events(stack.kafka, ids, 18)
    settle(stack, ids)
    msgs = room_events(stack.kafka, ids)
    assert len(msgs) == 18
    for rid in ids:
        mine = [m for m in msgs if m["key"] == str(rid)]
        assert [m["value"]["version"] for m in mine] == [1, 2, 3]
        assert [m["value"]["room"]["capacity"] for m in mine] == [4, 7, 8]
        assert all(m["value"]["room"]["id"] == rid for m in mine)
