"""The Kafka broker goes away and comes back (docs/events.md, /health "degraded").
Named zz so that it runs after the other room tests: it stops the session's broker (and always
starts it again)."""
import re

import requests

from harness import create_room, outbox_unsent, room_events, wait_room_events, wait_until


def health(url):
    return requests.get(f"{url}/health", timeout=15)


def test_broker_outage_keeps_the_api_working_and_delivers_later(stack, room_url, admin_headers):
    # Publishing works before the outage.
    first = create_room(room_url, admin_headers)
    wait_room_events(stack.kafka, [first["id"]], 1)

    expected = {}   # room id -> [(event_type, version)]
    try:
        stack.kafka.stop()

        a = create_room(room_url, admin_headers, equipment="Projector")
        b = create_room(room_url, admin_headers)
        c = create_room(room_url, admin_headers)
        for body in ({"capacity": 9}, {"equipment": None}, {"active": False}):
            r = requests.put(f"{room_url}/rooms/{a['id']}", json=body, headers=admin_headers,
                             timeout=10)
            assert r.status_code == 200, r.text
        r = requests.put(f"{room_url}/rooms/{b['id']}", json={"floor": 4}, headers=admin_headers,
                         timeout=10)
        assert r.status_code == 200, r.text
        r = requests.delete(f"{room_url}/rooms/{b['id']}", headers=admin_headers, timeout=10)
        assert r.status_code == 204, r.text
        r = requests.put(f"{room_url}/rooms/{first['id']}", json={"capacity": 30},
                         headers=admin_headers, timeout=10)
        assert r.status_code == 200, r.text
        expected = {
            a["id"]: [("room_created", 1), ("room_updated", 2), ("room_updated", 3),
                      ("room_updated", 4)],
            b["id"]: [("room_created", 1), ("room_updated", 2), ("room_deleted", 3)],
            c["id"]: [("room_created", 1)],
            first["id"]: [("room_created", 1), ("room_updated", 2)],
        }
        # Reads keep working too.
        r = requests.get(f"{room_url}/rooms/{a['id']}", headers=admin_headers, timeout=10)
        assert r.status_code == 200 and r.json()["version"] == 4

        # /health answers from the background check's last result: wait until it noticed.
        wait_until(lambda: health(room_url).json()["status"] == "degraded", timeout=10,
                   interval=0.1, what="/health degraded")
        r = health(room_url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "degraded", body
        assert body["checks"]["kafka"]["status"] == "degraded", body
        assert body["checks"]["database"]["status"] == "ok", body
        assert requests.get(f"{room_url}/ready", timeout=10).status_code == 200

        pending = outbox_unsent(stack.pg, expected)
        assert pending == 9, pending   # every change of the outage waits in the outbox
        text = requests.get(f"{room_url}/metrics", timeout=10).text
        assert float(re.search(r"^outbox_backlog (\S+)$", text, re.M).group(1)) >= 9
    finally:
        stack.kafka.start()

    ids = list(expected)
    wait_room_events(stack.kafka, ids, 10, timeout=60)
    wait_until(lambda: outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
               what="the outbox to drain")
    msgs = room_events(stack.kafka, ids)
    event_ids = [m["value"]["event_id"] for m in msgs]
    assert len(event_ids) == len(set(event_ids)) == 10, "an event was delivered twice"
    for rid, want in expected.items():
        got = [(m["value"]["event_type"], m["value"]["version"]) for m in msgs
               if m["key"] == str(rid)]
        assert got == want, (rid, got)
    wait_until(lambda: health(room_url).json()["status"] == "ok", timeout=30, interval=0.2,
               what="/health ok after the broker returned")
    assert stack.room.proc.poll() is None, "room-service must not have died"

    # And new changes go straight out again.
    d = create_room(room_url, admin_headers)
    wait_room_events(stack.kafka, [d["id"]], 1)
