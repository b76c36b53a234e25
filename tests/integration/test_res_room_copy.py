"""reservation-service's copy of the rooms keeps what a room search needs (equipment, building,
floor: docs/api.md#finding-a-room), through the real room-service and broker; a copy made before
those were kept is filled in by room-service's one-time re-publication (room-service migration
003, docs/operations.md#upgrading-to-room-search), or, when those events passed this release by,
by reservation-service's replay of room_events at its start."""
import json
import random
import re

import requests

from harness import (
    create_room,
    res_db_query,
    room_db_query,
    wait_known_room,
    wait_until,
)


def copy_of(stack, room_id):
    rows = res_db_query(stack.pg, "SELECT name, capacity, equipment, equipment_key, building, "
                                  "floor, active, details_known, version FROM rooms "
                                  "WHERE id = %s", room_id)
    return rows[0] if rows else None


def test_created_and_updated_room_details_are_copied(stack, room_url, res_url, admin_headers):
    room = create_room(room_url, admin_headers, capacity=6, equipment=["Projector", "Whiteboard"],
                       building="HQ", floor=3)
    wait_known_room(res_url, admin_headers, room["id"])
    assert copy_of(stack, room["id"]) == (room["name"], 6, ["Projector", "Whiteboard"],
                                          ["projector", "whiteboard"], "HQ", 3, True, True, 1)

    # Equipment removed, building and floor cleared, capacity lowered: the copy follows.
    r = requests.put(f"{room_url}/rooms/{room['id']}", headers=admin_headers, timeout=10,
                     json={"capacity": 2, "equipment": [], "building": None, "floor": None})
    assert r.status_code == 200, r.text
    wait_until(lambda: copy_of(stack, room["id"])[8] == 2, timeout=10,
               what="room update copied")
    assert copy_of(stack, room["id"]) == (room["name"], 2, [], [], None, None, True, True, 2)


def test_copy_without_details_is_filled_by_the_republication(stack, room_url, res_url,
                                                             admin_headers):
    room = create_room(room_url, admin_headers, capacity=8, equipment=["Screen"],
                       building="Annex", floor=-1)
    wait_known_room(res_url, admin_headers, room["id"])
    # What a copy made by the previous release looks like: the details were never kept.
    res_db_query(stack.pg, "UPDATE rooms SET equipment = '{}', building = NULL, floor = NULL, "
                           "details_known = false WHERE id = %s", room["id"])
    # reservation-service tells at its start what is missing and what to do.
    # (Without a broker the replay of room_events that comes first cannot help: it gives up
    # after its timeout.)
    res = stack.reservation_service(tag="reservation-details-check",
                                    KAFKA_BROKER_URL="127.0.0.1:1",
                                    ROOM_EVENTS_REPLAY_TIMEOUT_SECONDS="1")
    res.start()
    try:
        wait_until(lambda: "room(s) lack equipment, building and floor" in res.log_text(),
                   timeout=10, what="warning about rooms without details")
    finally:
        res.stop()
    # An operator's request (the migration makes the first one), then a room-service start.
    room_db_query_commit(stack, "INSERT INTO room_republish DEFAULT VALUES")
    svc = stack.room_service(tag="room-republish")
    svc.start()
    try:
        wait_until(lambda: copy_of(stack, room["id"])[7], timeout=15,
                   what="room details filled in from the re-published event")
        assert copy_of(stack, room["id"]) == (room["name"], 8, ["Screen"], ["screen"], "Annex",
                                              -1, True, True, 1)
        assert "room(s) published again" in svc.log_text()
        # Done once: the request is gone.
        assert room_db_query(stack.pg, "SELECT count(*) FROM room_republish") == [(0,)]
    finally:
        svc.stop()


def test_copy_without_details_is_filled_by_the_replay(stack, room_url, res_url, admin_headers):
    """The reviewer's order: room-service re-published every room while reservation-service of
    the previous release was still consuming; it ignored the events and committed past them.
    Here the consumer group of the session's reservation-service is past every event too.  A new
    instance (same database, same consumer group, so its consumer starts at the committed
    offsets and only the replay reaches the old events) fills the copy in from the topic: the
    room_created event carries the details, at the copy's version."""
    room = create_room(room_url, admin_headers, capacity=7, equipment=["Camera", "Screen"],
                       building="West", floor=4)
    wait_known_room(res_url, admin_headers, room["id"])
    res_db_query(stack.pg, "UPDATE rooms SET equipment = '{}', building = NULL, floor = NULL, "
                           "details_known = false WHERE id = %s", room["id"])
    res = stack.reservation_service(tag="reservation-replay")
    res.start()
    try:
        wait_until(lambda: copy_of(stack, room["id"])[7], timeout=30,
                   what="room details filled in by the replay")
        assert copy_of(stack, room["id"]) == (room["name"], 7, ["Camera", "Screen"],
                                              ["camera", "screen"], "West", 4, True, True, 1)
        wait_until(lambda: "room_events replayed" in res.log_text(), timeout=30,
                   what="the replay's summary")
        m = re.search(r"room_events replayed: (\d+) event\(s\) applied again", res.log_text())
        assert m and int(m.group(1)) >= 1, res.log_text()
    finally:
        res.stop()


def test_room_without_events_stays_unknown_after_the_replay(stack):
    """A room lacking details whose events the topic no longer holds (retention): the replay
    ends at the end of the topic, the room stays unknown, and the warning tells what to do."""
    ghost = random.randint(900_000_000, 999_999_999)
    res_db_query(stack.pg, "INSERT INTO rooms (id, name, capacity, version, details_known) "
                           "VALUES (%s, 'Ghost', 3, 1, false)", ghost)
    try:
        res = stack.reservation_service(tag="reservation-replay-none")
        res.start()
        try:
            wait_until(lambda: "room_events replayed" in res.log_text(), timeout=30,
                       what="the replay's summary")
            log = res.log_text()
            m = re.search(r"(\d+) room\(s\) still without details", log)
            assert m and int(m.group(1)) >= 1, log
            assert ("room(s) lack equipment, building and floor (copied before they were kept; "
                    "the room events still on the topic have none)") in log
            assert "INSERT INTO room_republish DEFAULT VALUES" in log
            assert copy_of(stack, ghost)[7] is False
        finally:
            res.stop()
    finally:
        res_db_query(stack.pg, "DELETE FROM rooms WHERE id = %s", ghost)


def test_republished_event_does_not_overwrite_a_known_copy(stack, room_url, res_url,
                                                           admin_headers):
    """An event at the copy's version is taken only to fill in missing details: it never undoes
    a local state, e.g. a tombstone, or an already complete copy."""
    room = create_room(room_url, admin_headers, capacity=5, equipment=["TV"])
    wait_known_room(res_url, admin_headers, room["id"])
    res_db_query(stack.pg, "UPDATE rooms SET capacity = 99 WHERE id = %s", room["id"])
    before = consumed(stack)
    room_db_query_commit(stack, "INSERT INTO room_republish DEFAULT VALUES")
    svc = stack.room_service(tag="room-republish-known")
    svc.start()
    try:
        wait_until(lambda: published(svc) is not None, timeout=15, what="re-publication")
        # Every re-published event handled by the consumer (nothing else is produced meanwhile).
        wait_until(lambda: consumed(stack) >= before + published(svc), timeout=15,
                   what="re-published events consumed")
        assert copy_of(stack, room["id"])[1] == 99
    finally:
        svc.stop()


def consumed(stack):
    text = requests.get(f"{stack.reservation.url}/metrics", timeout=10).text
    m = re.search(r"^kafka_messages_consumed_total (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def published(svc):
    m = re.search(r"(\d+) room\(s\) published again", svc.log_text())
    return int(m.group(1)) if m else None


def room_db_query_commit(stack, sql, *params):
    import psycopg2
    conn = psycopg2.connect(stack.pg.dsn("room_db"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
    finally:
        conn.close()


def test_newer_event_without_details_marks_them_unknown(stack, room_url, res_url,
                                                         admin_headers):
    """An older producer (a room-service of the previous release during a rolling upgrade) sends
    a newer version without equipment, building and floor: the copy keeps what it had but no
    longer claims to know it, so a search lists the room as unknown rather than wrongly."""
    room = create_room(room_url, admin_headers, capacity=4, equipment=["Projector"],
                       building="HQ", floor=2)
    wait_known_room(res_url, admin_headers, room["id"])
    old = {"event_type": "room_updated", "event_id": "old-producer", "version": 2,
           "occurred_at": "2026-11-30T12:00:00.000Z",
           "room": {"id": room["id"], "name": room["name"], "capacity": 3,
                    "time_zone": "UTC", "active": True}}
    stack.kafka.produce("room_events", str(room["id"]), json.dumps(old))
    wait_until(lambda: copy_of(stack, room["id"])[8] == 2, timeout=10,
               what="older producer's event applied")
    assert copy_of(stack, room["id"]) == (room["name"], 3, ["Projector"], ["projector"], "HQ", 2,
                                          True, False, 2)
    # Leave no copy without details behind: every later reservation-service start would replay
    # room_events for it.
    r = requests.delete(f"{room_url}/rooms/{room['id']}", headers=admin_headers, timeout=10)
    assert r.status_code == 204, r.text
    wait_until(lambda: res_db_query(stack.pg, "SELECT deleted FROM rooms WHERE id = %s",
                                    room["id"]) == [(True,)], timeout=10, what="room deleted")
