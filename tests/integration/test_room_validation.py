"""Room input rules (docs/api.md#rooms and the README walkthrough): each invalid value is a 422
naming its field; equipment normalisation; unique names; malformed bodies
(docs/api.md#request-bodies)."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import assert_error, create_room, unique_name

DROP = object()
LIMIT = 65536


def post(url, headers, **fields):
    body = {"name": unique_name(), "capacity": 4}
    for k, v in fields.items():
        if v is DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return requests.post(f"{url}/rooms", json=body, headers=headers)


INVALID = [
    ("name", DROP), ("capacity", DROP),
    ("name", ""), ("name", "x" * 101), ("name", " padded "), ("name", "padded "),
    ("name", "\tpadded"), ("name", None), ("name", 5), ("name", "nul\u0000inside"),
    ("capacity", 0), ("capacity", 10001), ("capacity", -1), ("capacity", "5"), ("capacity", 5.5),
    ("capacity", None), ("capacity", True),
    ("equipment", [1]), ("equipment", [""]), ("equipment", ["   "]), ("equipment", [None]),
    ("equipment", [["x"]]), ("equipment", [f"item {i}" for i in range(51)]),
    ("equipment", ["x" * 51]), ("equipment", "ok, " + "y" * 51), ("equipment", {}),
    ("equipment", 5), ("equipment", True),
    ("time_zone", "Mars/Base"), ("time_zone", "../etc/passwd"), ("time_zone", "posix/UTC"),
    ("time_zone", "right/UTC"), ("time_zone", "/etc/passwd"), ("time_zone", ""),
    ("time_zone", "Europe"), ("time_zone", "zone.tab"), ("time_zone", None), ("time_zone", 1),
    ("floor", 501), ("floor", -101), ("floor", "3"), ("floor", 2.5),
    ("building", "b" * 101), ("building", 7), ("description", "d" * 1001), ("description", []),
    ("active", "yes"), ("active", 1), ("active", None),
    ("colour", "red"), ("id", 5), ("version", 1), ("created_at", "2026-01-01T00:00:00Z"),
]


@pytest.mark.parametrize("field,value", INVALID,
                         ids=[f"{f}={v!r}"[:40] if v is not DROP else f"{f}-missing"
                              for f, v in INVALID])
def test_invalid_field_is_422_naming_it(room_url, admin_headers, field, value):
    r = post(room_url, admin_headers, **{field: value})
    body = assert_error(r, 422, "validation_failed", detail=field)
    assert isinstance(body["details"][field], str) and body["details"][field]
    assert set(body["details"]) == {field}, body


def test_several_errors_are_reported_together(room_url, admin_headers):
    r = requests.post(f"{room_url}/rooms", headers=admin_headers, json={
        "name": "", "capacity": 0, "equipment": [""], "time_zone": "Mars/Base", "floor": "3",
        "building": "b" * 101, "description": 5, "active": "yes", "bogus": 1})
    body = assert_error(r, 422, "validation_failed")
    assert set(body["details"]) == {"name", "capacity", "equipment", "time_zone", "floor",
                                    "building", "description", "active", "bogus"}, body


def test_missing_name_and_capacity_together(room_url, admin_headers):
    r = requests.post(f"{room_url}/rooms", headers=admin_headers, json={})
    body = assert_error(r, 422, "validation_failed")
    assert {"name", "capacity"} <= set(body["details"]), body


def test_boundary_values_are_accepted(room_url, admin_headers):
    long_name = "N" + unique_name("x")[1:].ljust(99, "n")
    assert len(long_name) == 100
    room = create_room(room_url, admin_headers, name=long_name, capacity=10000,
                       floor=500, building="b" * 100, description="d" * 1000,
                       equipment=[f"item {i}" for i in range(50)], time_zone="Etc/GMT+5")
    assert room["name"] == long_name and room["capacity"] == 10000 and room["floor"] == 500
    assert len(room["equipment"]) == 50 and room["time_zone"] == "Etc/GMT+5"
    room = create_room(room_url, admin_headers, capacity=1, floor=-100, building="",
                       description="", equipment=["é" * 50, "x" * 50],
                       time_zone="America/Argentina/Buenos_Aires", active=False)
    assert room["capacity"] == 1 and room["floor"] == -100 and room["active"] is False
    assert room["building"] == "" and room["description"] == ""
    assert room["equipment"] == ["é" * 50, "x" * 50]
    # Multibyte names count characters, not bytes.
    name = "Zürich " + unique_name("ü")[2:]
    name = name + "ö" * (100 - len(name))
    room = create_room(room_url, admin_headers, name=name, floor=None)
    assert room["name"] == name and room["floor"] is None


@pytest.mark.parametrize("given,stored", [
    ("Projector, whiteboard, projector,,", ["Projector", "whiteboard"]),
    (" TV ,Screen", ["TV", "Screen"]),
    ("", []), (",, ,", []), ([], []),
    (["Projector", "PROJECTOR", " projector ", "Whiteboard", "whiteBOARD"],
     ["Projector", "Whiteboard"]),
    (["  Speaker phone  "], ["Speaker phone"]),
])
def test_equipment_is_trimmed_and_deduplicated(room_url, admin_headers, given, stored):
    room = create_room(room_url, admin_headers, equipment=given)
    assert room["equipment"] == stored
    r = requests.get(f"{room_url}/rooms/{room['id']}", headers=admin_headers)
    assert r.json()["equipment"] == stored
    # The same rules apply on PUT.
    other = create_room(room_url, admin_headers, equipment=["Old"])
    r = requests.put(f"{room_url}/rooms/{other['id']}", json={"equipment": given},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["equipment"] == stored


def test_duplicate_name_is_409(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    for name in (room["name"], room["name"].upper(), room["name"].lower()):
        r = post(room_url, admin_headers, name=name)
        assert_error(r, 409, "conflict", detail="name")
    r = requests.get(f"{room_url}/rooms", params={"q": room["name"]}, headers=admin_headers)
    assert [x["id"] for x in r.json()] == [room["id"]]


def test_concurrent_creates_with_one_name_one_wins(room_url, admin_headers):
    name = unique_name("Race")

    def attempt(i):
        return requests.post(f"{room_url}/rooms", headers=admin_headers,
                             json={"name": name if i % 2 else name.upper(), "capacity": 3})
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(r.status_code for r in pool.map(attempt, range(8)))
    assert codes == [201] + [409] * 7, codes


def test_names_are_unique_case_insensitively_beyond_ascii(room_url, admin_headers):
    room = create_room(room_url, admin_headers, name=unique_name("Ärger"))
    assert_error(post(room_url, admin_headers, name=room["name"].lower()), 409, "conflict",
                 detail="name")


def test_rename_to_a_taken_name_is_409(room_url, admin_headers):
    a = create_room(room_url, admin_headers)
    b = create_room(room_url, admin_headers)
    for name in (a["name"], a["name"].swapcase()):
        r = requests.put(f"{room_url}/rooms/{b['id']}", json={"name": name},
                         headers=admin_headers)
        assert_error(r, 409, "conflict", detail="name")
    r = requests.get(f"{room_url}/rooms/{b['id']}", headers=admin_headers)
    assert r.json() == b
    # Renaming a room to another spelling of its own name is no conflict.
    r = requests.put(f"{room_url}/rooms/{b['id']}", json={"name": b["name"].upper()},
                     headers=admin_headers)
    assert r.status_code == 200 and r.json()["name"] == b["name"].upper()


def test_equipment_deduplication_beyond_ascii(room_url, admin_headers):
    room = create_room(room_url, admin_headers, equipment=["Écran", "écran", "ÉCRAN"])
    assert room["equipment"] == ["Écran"]


@pytest.mark.parametrize("tz", ["localtime", "posixrules", "Europe//Berlin"])
def test_time_zone_must_be_an_iana_name(room_url, admin_headers, tz):
    assert_error(post(room_url, admin_headers, time_zone=tz), 422, "validation_failed",
                 detail="time_zone")


@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "EST", "Asia/Kolkata", "America/St_Johns"])
def test_time_zone_names_are_accepted(room_url, admin_headers, tz):
    assert create_room(room_url, admin_headers, time_zone=tz)["time_zone"] == tz


def test_validation_on_put(room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    url = f"{room_url}/rooms/{room['id']}"
    for field, value in [("name", ""), ("name", None), ("name", " x"), ("capacity", 0),
                         ("capacity", None), ("equipment", [""]), ("time_zone", "Mars/Base"),
                         ("time_zone", None), ("floor", 501), ("active", None),
                         ("active", "no"), ("bogus", 1)]:
        r = requests.put(url, json={field: value}, headers=admin_headers)
        assert_error(r, 422, "validation_failed", detail=field)
    r = requests.get(url, headers=admin_headers)
    assert r.json() == room, "invalid updates must change nothing"


@pytest.mark.parametrize("data", [b'{"name": ', b"{name: 1}", b"not json", b'{"name":"x",}',
                                  b'{"a":1} trailing', b"\xff\xfe", b""])
def test_malformed_json_is_400(room_url, admin_headers, data):
    h = {**admin_headers, "Content-Type": "application/json"}
    assert_error(requests.post(f"{room_url}/rooms", data=data, headers=h), 400, "bad_request")
    room = create_room(room_url, admin_headers)
    assert_error(requests.put(f"{room_url}/rooms/{room['id']}", data=data, headers=h), 400,
                 "bad_request")


@pytest.mark.parametrize("data", [b"[]", b"42", b'"x"', b"null", b'[{"name":"x","capacity":1}]'])
def test_body_must_be_an_object(room_url, admin_headers, data):
    h = {**admin_headers, "Content-Type": "application/json"}
    assert_error(requests.post(f"{room_url}/rooms", data=data, headers=h), 400, "bad_request")


def test_duplicate_keys_are_400_naming_the_key(room_url, admin_headers):
    h = {**admin_headers, "Content-Type": "application/json"}
    data = b'{"name": "%s", "capacity": 2, "capacity": 3}' % unique_name().encode()
    assert_error(requests.post(f"{room_url}/rooms", data=data, headers=h), 400, "bad_request",
                 mentions="capacity")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonp", None])
def test_non_json_content_type_is_415(room_url, admin_headers, ctype):
    data = b'{"name": "%s", "capacity": 2}' % unique_name().encode()
    h = dict(admin_headers)
    if ctype:
        h["Content-Type"] = ctype
    assert_error(requests.post(f"{room_url}/rooms", data=data, headers=h), 415,
                 "unsupported_media_type")
    room = create_room(room_url, admin_headers)
    assert_error(requests.put(f"{room_url}/rooms/{room['id']}", data=b'{"capacity": 9}',
                              headers=h), 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_accepted(room_url, admin_headers):
    data = b'{"name": "%s", "capacity": 2}' % unique_name().encode()
    h = {**admin_headers, "Content-Type": "application/json; charset=utf-8"}
    assert requests.post(f"{room_url}/rooms", data=data, headers=h).status_code == 201


def test_body_over_the_limit_is_413(room_url, admin_headers):
    h = {**admin_headers, "Content-Type": "application/json"}
    base = b'{"name": "%s", "capacity": 2}' % unique_name().encode()
    exact = base[:-1] + b" " * (LIMIT - len(base)) + b"}"
    assert len(exact) == LIMIT
    assert requests.post(f"{room_url}/rooms", data=exact, headers=h).status_code == 201
    assert_error(requests.post(f"{room_url}/rooms", data=exact + b" ", headers=h), 413,
                 "payload_too_large")
    big = b'{"name": "x", "capacity": 2, "description": "' + b"d" * (2 * LIMIT) + b'"}'
    assert_error(requests.post(f"{room_url}/rooms", data=big, headers=h), 413,
                 "payload_too_large")
    room = create_room(room_url, admin_headers)
    assert_error(requests.put(f"{room_url}/rooms/{room['id']}", data=big, headers=h), 413,
                 "payload_too_large")
