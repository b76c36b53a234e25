"""Which problem a refused create or change is answered with when it has several: the checks
run in one order (access, body, room, times, rules, revocation, key, state, conflicts), whether
the request is one call of the booking function or (a body or time notation the service refuses
itself) a read first (docs/architecture.md#request-walk)."""
import requests

from harness import assert_error, book, booked, utc_at

POOL_BATCH = 8  # read by conftest.py's pool fixture: rooms made per batch for `room`


def put(res_url, headers, rid, body):
    return requests.put(f"{res_url}/reservations/{rid}", json=body, headers=headers, timeout=10)


def test_create_unknown_room_wins_over_bad_times(res_url, alice):
    body = assert_error(book(res_url, alice, 987654321, "garbage", utc_at(30, 11)), 422,
                        "validation_failed", detail="room_id")
    assert body["details"] == {"room_id": "names no known room"}, body


def test_create_bad_start_is_named_alone(res_url, alice, room):
    body = assert_error(book(res_url, alice, room["id"], "garbage", "garbage too"), 422,
                        "validation_failed", detail="start_time")
    assert list(body["details"]) == ["start_time"], body


def test_create_rules_are_worded_for_local_times(res_url, alice, room):
    # Wall-clock times in the room's zone, an hour apart the wrong way round.
    start, end = utc_at(30, 11)[:19], utc_at(30, 10)[:19]
    body = assert_error(book(res_url, alice, room["id"], start, end), 422, "validation_failed",
                        detail="end_time")
    assert body["details"] == {"end_time": "must be after start_time"}, body


def test_put_someone_elses_with_a_bad_body_is_403(res_url, alice, bob, room):
    res = booked(res_url, alice, room["id"], utc_at(31, 10), utc_at(31, 11))
    assert_error(put(res_url, bob, res["id"], {"purpose": 5}), 403, "forbidden")
    assert_error(put(res_url, bob, res["id"], {"start_time": "garbage"}), 403, "forbidden")
    assert_error(put(res_url, bob, res["id"], {"purpose": "mine"}), 403, "forbidden")


def test_put_unknown_id_with_bad_times_is_404(res_url, alice):
    assert_error(put(res_url, alice, 987654321, {"start_time": "garbage"}), 404, "not_found")
    assert_error(put(res_url, alice, 987654321, {"purpose": 5}), 404, "not_found")


def test_put_unknown_room_wins_over_bad_times(res_url, alice, room):
    res = booked(res_url, alice, room["id"], utc_at(32, 10), utc_at(32, 11))
    body = assert_error(put(res_url, alice, res["id"], {"room_id": 987654321,
                                                        "end_time": "garbage"}),
                        422, "validation_failed", detail="room_id")
    assert body["details"] == {"room_id": "names no known room"}, body
    body = assert_error(put(res_url, alice, res["id"], {"end_time": "garbage"}), 422,
                        "validation_failed", detail="end_time")
    assert list(body["details"]) == ["end_time"], body


def test_put_rules_before_the_cancelled_state(res_url, alice, room):
    res = booked(res_url, alice, room["id"], utc_at(33, 10), utc_at(33, 11))
    r = requests.delete(f"{res_url}/reservations/{res['id']}", headers=alice, timeout=10)
    assert r.status_code == 204, r.text
    assert_error(put(res_url, alice, res["id"], {"end_time": utc_at(33, 9)}), 422,
                 "validation_failed", detail="end_time")
    assert_error(put(res_url, alice, res["id"], {"purpose": "late"}), 409, "conflict",
                 mentions="cancelled")


def test_failed_keyed_create_leaves_the_key_free_for_a_twin(res_url, alice, bob, room):
    """A keyed create that meets a conflict remembers nothing: the same key books once the slot
    is free, and is replayed after that."""
    taken = booked(res_url, bob, room["id"], utc_at(34, 10), utc_at(34, 11))
    headers = {**alice, "Idempotency-Key": f"twin-{taken['id']}"}
    body = {"room_id": room["id"], "start_time": utc_at(34, 10), "end_time": utc_at(34, 11)}
    r = requests.post(f"{res_url}/reservations", json=body, headers=headers, timeout=10)
    assert_error(r, 409, "conflict")
    r = requests.delete(f"{res_url}/reservations/{taken['id']}", headers=bob, timeout=10)
    assert r.status_code == 204, r.text
    first = requests.post(f"{res_url}/reservations", json=body, headers=headers, timeout=10)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers, first.text
    again = requests.post(f"{res_url}/reservations", json=body, headers=headers, timeout=10)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
