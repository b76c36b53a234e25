"""Room policies (docs/api.md#room-policies): admins set a room's booking rules with the room,
each checked at its bounds (422 naming policies.<key>), normalised, returned by every read and
carried by the room's events (docs/events.md#room_events).  Enforcement is reservation-service's
and is not tested here."""
import pytest
import requests

from harness import (
    assert_error,
    bearer,
    create_room,
    outbox_unsent,
    room_db_query,
    room_events,
    unique_name,
    wait_room_events,
    wait_until,
)

FULL = {
    "opening_hours": {"Mon": [["08:00", "18:00"]],
                      "tue": [["08:00", "12:00"], ["13:00", "18:00"]],
                      "sat": [], "sun": None},
    "min_duration_minutes": 15, "max_duration_minutes": 240, "buffer_minutes": 10,
    "max_advance_days": 60, "max_bookings_per_user_per_day": 2,
    "max_bookings_per_user_per_week": 5, "allowed_roles": ["employee", "admin"],
    "allowed_users": [40, 12, 40], "requires_approval": False, "check_in_required": True,
    "check_in_window_minutes": 15, "release_after_minutes": 10,
}
# FULL as the service stores and returns it: days lower-case, null days dropped, roles and users
# each once in a fixed order.
FULL_NORMALISED = {
    "opening_hours": {"mon": [["08:00", "18:00"]],
                      "tue": [["08:00", "12:00"], ["13:00", "18:00"]], "sat": []},
    "min_duration_minutes": 15, "max_duration_minutes": 240, "buffer_minutes": 10,
    "max_advance_days": 60, "max_bookings_per_user_per_day": 2,
    "max_bookings_per_user_per_week": 5, "allowed_roles": ["admin", "employee"],
    "allowed_users": [12, 40], "requires_approval": False, "check_in_required": True,
    "check_in_window_minutes": 15, "release_after_minutes": 10,
}
CHECK_IN = {"check_in_required": True, "check_in_window_minutes": 15,
            "release_after_minutes": 10}


def room_of(room_url, headers, rid):
    r = requests.get(f"{room_url}/rooms/{rid}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def put(room_url, headers, rid, body):
    return requests.put(f"{room_url}/rooms/{rid}", json=body, headers=headers)


def test_create_and_read_with_policies(room_url, admin_headers):
    room = create_room(room_url, admin_headers, policies=FULL)
    assert room["policies"] == FULL_NORMALISED
    # Every read returns the same object: the room, twice (the second from the cache), the list.
    assert room_of(room_url, admin_headers, room["id"]) == room
    assert room_of(room_url, admin_headers, room["id"]) == room
    r = requests.get(f"{room_url}/rooms", params={"q": room["name"]}, headers=admin_headers)
    assert r.status_code == 200 and r.json() == [room]


def test_stored_as_jsonb(stack, room_url, admin_headers):
    room = create_room(room_url, admin_headers, policies={"buffer_minutes": 5})
    plain = create_room(room_url, admin_headers)
    rows = room_db_query(stack.pg, "SELECT id, jsonb_typeof(policies), policies->>'buffer_minutes' "
                                   "FROM rooms WHERE id = ANY(%s) ORDER BY id",
                         [room["id"], plain["id"]])
    assert rows == [(room["id"], "object", "5"), (plain["id"], None, None)]


def test_room_without_rules_has_null(room_url, admin_headers):
    assert create_room(room_url, admin_headers)["policies"] is None
    # An object without rules (empty, or only null members) is no rules at all.
    assert create_room(room_url, admin_headers, policies={})["policies"] is None
    assert create_room(room_url, admin_headers,
                       policies={"buffer_minutes": None,
                                 "opening_hours": {"sun": None}})["policies"] is None
    assert create_room(room_url, admin_headers, policies=None)["policies"] is None


def test_put_absent_keeps_null_clears_object_replaces(room_url, admin_headers):
    room = create_room(room_url, admin_headers, policies=FULL)
    rid = room["id"]
    # Absent: the stored rules stay.
    r = put(room_url, admin_headers, rid, {"capacity": 9})
    assert r.status_code == 200, r.text
    assert r.json()["policies"] == FULL_NORMALISED and r.json()["version"] == 2
    # An object replaces the whole object (no merge with what was stored).
    r = put(room_url, admin_headers, rid, {"policies": {"buffer_minutes": 5}})
    assert r.status_code == 200, r.text
    assert r.json()["policies"] == {"buffer_minutes": 5}
    assert r.json()["version"] == 3 and r.headers["ETag"] == '"3"'
    assert room_of(room_url, admin_headers, rid) == r.json()
    # null clears every rule; so does an object without rules.
    r = put(room_url, admin_headers, rid, {"policies": None})
    assert r.status_code == 200 and r.json()["policies"] is None and r.json()["version"] == 4
    assert room_of(room_url, admin_headers, rid) == r.json()
    r = put(room_url, admin_headers, rid, {"policies": CHECK_IN})
    assert r.json()["policies"] == CHECK_IN
    r = put(room_url, admin_headers, rid, {"policies": {}})
    assert r.status_code == 200 and r.json()["policies"] is None and r.json()["version"] == 6
    assert room_of(room_url, admin_headers, rid)["policies"] is None


# (policies, the field details must name).  Each bound is tested on both sides: the accepted
# side is in ACCEPTED below.
INVALID = [
    ([], "policies"), ("rules", "policies"), (5, "policies"),
    ({"colour": "red"}, "policies.colour"),
    ({"min_duration_minutes": 0}, "policies.min_duration_minutes"),
    ({"min_duration_minutes": 1441}, "policies.min_duration_minutes"),
    ({"min_duration_minutes": "15"}, "policies.min_duration_minutes"),
    ({"max_duration_minutes": 0}, "policies.max_duration_minutes"),
    ({"max_duration_minutes": 1441}, "policies.max_duration_minutes"),
    ({"min_duration_minutes": 61, "max_duration_minutes": 60}, "policies.max_duration_minutes"),
    ({"buffer_minutes": -1}, "policies.buffer_minutes"),
    ({"buffer_minutes": 241}, "policies.buffer_minutes"),
    ({"buffer_minutes": 1.5}, "policies.buffer_minutes"),
    ({"max_advance_days": 0}, "policies.max_advance_days"),
    ({"max_advance_days": 3651}, "policies.max_advance_days"),
    ({"max_bookings_per_user_per_day": 0}, "policies.max_bookings_per_user_per_day"),
    ({"max_bookings_per_user_per_day": 1001}, "policies.max_bookings_per_user_per_day"),
    ({"max_bookings_per_user_per_week": 0}, "policies.max_bookings_per_user_per_week"),
    ({"max_bookings_per_user_per_week": 1001}, "policies.max_bookings_per_user_per_week"),
    ({"allowed_roles": []}, "policies.allowed_roles"),
    ({"allowed_roles": ["manager"]}, "policies.allowed_roles"),
    ({"allowed_roles": "admin"}, "policies.allowed_roles"),
    ({"allowed_users": []}, "policies.allowed_users"),
    ({"allowed_users": [0]}, "policies.allowed_users"),
    ({"allowed_users": ["12"]}, "policies.allowed_users"),
    ({"allowed_users": list(range(1, 1002))}, "policies.allowed_users"),
    ({"requires_approval": "yes"}, "policies.requires_approval"),
    ({"check_in_required": 1}, "policies.check_in_required"),
    ({"check_in_required": True, "release_after_minutes": 10},
     "policies.check_in_window_minutes"),
    ({"check_in_required": True, "check_in_window_minutes": 10},
     "policies.release_after_minutes"),
    ({"release_after_minutes": 10}, "policies.release_after_minutes"),
    ({**CHECK_IN, "check_in_window_minutes": -1}, "policies.check_in_window_minutes"),
    ({**CHECK_IN, "check_in_window_minutes": 241}, "policies.check_in_window_minutes"),
    ({**CHECK_IN, "release_after_minutes": 0}, "policies.release_after_minutes"),
    ({**CHECK_IN, "release_after_minutes": 241}, "policies.release_after_minutes"),
    ({"opening_hours": []}, "policies.opening_hours"),
    ({"opening_hours": {"monday": []}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": ["08:00", "18:00"]}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": [["8:00", "18:00"]]}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": [["08:00", "24:01"]]}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": [["24:00", "24:00"]]}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": [["08:60", "18:00"]]}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": [["18:00", "08:00"]]}}, "policies.opening_hours"),
    ({"opening_hours": {"mon": [["08:00", "08:00"]]}}, "policies.opening_hours"),
    ({"opening_hours": {"tue": [["13:00", "18:00"], ["08:00", "12:00"]]}},
     "policies.opening_hours"),
    ({"opening_hours": {"tue": [["08:00", "12:00"], ["12:00", "18:00"]]}},
     "policies.opening_hours"),
    ({"opening_hours": {"sun": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(5)]}},
     "policies.opening_hours"),
]

ACCEPTED = [
    ({"min_duration_minutes": 1, "max_duration_minutes": 1440},
     {"min_duration_minutes": 1, "max_duration_minutes": 1440}),
    ({"min_duration_minutes": 60, "max_duration_minutes": 60},
     {"min_duration_minutes": 60, "max_duration_minutes": 60}),
    ({"buffer_minutes": 0}, {"buffer_minutes": 0}),
    ({"buffer_minutes": 240, "max_advance_days": 3650},
     {"buffer_minutes": 240, "max_advance_days": 3650}),
    ({"max_advance_days": 1, "max_bookings_per_user_per_day": 1,
      "max_bookings_per_user_per_week": 1000},
     {"max_advance_days": 1, "max_bookings_per_user_per_day": 1,
      "max_bookings_per_user_per_week": 1000}),
    ({"allowed_users": list(range(1000, 0, -1))}, {"allowed_users": list(range(1, 1001))}),
    ({**CHECK_IN, "check_in_window_minutes": 0, "release_after_minutes": 240},
     {**CHECK_IN, "check_in_window_minutes": 0, "release_after_minutes": 240}),
    ({**CHECK_IN, "check_in_window_minutes": 240, "release_after_minutes": 1},
     {**CHECK_IN, "check_in_window_minutes": 240, "release_after_minutes": 1}),
    ({"opening_hours": {"WED": [["00:00", "06:00"], ["06:01", "12:00"], ["13:00", "14:00"],
                                ["23:59", "24:00"]]}},
     {"opening_hours": {"wed": [["00:00", "06:00"], ["06:01", "12:00"], ["13:00", "14:00"],
                                ["23:59", "24:00"]]}}),
]


def short_id(value):
    return repr(value)[:60]


@pytest.mark.parametrize("policies,field", INVALID, ids=[short_id(p) for p, _ in INVALID])
def test_invalid_policy_is_422_naming_it(room_url, admin_headers, policies, field):
    name = unique_name()
    r = requests.post(f"{room_url}/rooms", json={"name": name, "capacity": 4,
                                                 "policies": policies}, headers=admin_headers)
    body = assert_error(r, 422, "validation_failed", detail=field)
    assert set(body["details"]) == {field}, body
    assert requests.get(f"{room_url}/rooms", params={"q": name},
                        headers=admin_headers).json() == []
    # The same on PUT, and the room is left as it was.
    room = create_room(room_url, admin_headers, policies={"buffer_minutes": 3})
    body = assert_error(put(room_url, admin_headers, room["id"], {"policies": policies}), 422,
                        "validation_failed", detail=field)
    assert set(body["details"]) == {field}, body
    assert room_of(room_url, admin_headers, room["id"]) == room


@pytest.mark.parametrize("policies,stored", ACCEPTED, ids=[short_id(p) for p, _ in ACCEPTED])
def test_bounds_accepted(room_url, admin_headers, policies, stored):
    assert create_room(room_url, admin_headers, policies=policies)["policies"] == stored


def test_every_problem_reported_together(room_url, admin_headers):
    r = requests.post(f"{room_url}/rooms", json={
        "name": unique_name(), "capacity": 0,
        "policies": {"buffer_minutes": 999, "colour": 1, "opening_hours": {"xyz": []},
                     "check_in_window_minutes": 5}}, headers=admin_headers)
    body = assert_error(r, 422, "validation_failed")
    assert set(body["details"]) == {"capacity", "policies.buffer_minutes", "policies.colour",
                                    "policies.opening_hours",
                                    "policies.check_in_window_minutes"}, body


def test_employee_cannot_set_policies(room_url, admin_headers, employee):
    emp = bearer(employee["access_token"])
    room = create_room(room_url, admin_headers)
    assert_error(requests.post(f"{room_url}/rooms", json={"name": unique_name(), "capacity": 2,
                                                          "policies": {"buffer_minutes": 5}},
                               headers=emp), 403, "forbidden")
    assert_error(put(room_url, emp, room["id"], {"policies": {"buffer_minutes": 5}}), 403,
                 "forbidden")
    assert_error(put(room_url, emp, room["id"], {"policies": None}), 403, "forbidden")
    # Nothing changed; an employee reads the rules like every other field.
    assert room_of(room_url, emp, room["id"]) == room


def test_events_carry_policies(stack, room_url, admin_headers):
    room = create_room(room_url, admin_headers, policies=FULL)
    rid = room["id"]
    r1 = put(room_url, admin_headers, rid, {"capacity": 6})
    r2 = put(room_url, admin_headers, rid, {"policies": CHECK_IN})
    r3 = put(room_url, admin_headers, rid, {"policies": None})
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200]
    wait_room_events(stack.kafka, [rid], 4)
    wait_until(lambda: outbox_unsent(stack.pg, [rid]) == 0, timeout=30, interval=0.1,
               what="outbox drained")
    msgs = room_events(stack.kafka, [rid])
    values = [m["value"] for m in msgs]
    assert [(v["event_type"], v["version"]) for v in values] == \
        [("room_created", 1), ("room_updated", 2), ("room_updated", 3), ("room_updated", 4)]
    # Each event's room is exactly what the API answered, rules included.
    assert [v["room"] for v in values] == [room, r1.json(), r2.json(), r3.json()]
    assert [v["room"]["policies"] for v in values] == [FULL_NORMALISED, FULL_NORMALISED,
                                                       CHECK_IN, None]
