"""GET /rooms: order, filters, pagination with Link, bad parameters (docs/api.md#pagination,
#room-service)."""
import base64
import json
import re
import uuid

import pytest
import requests

from harness import ROOM_KEYS, assert_error, create_room, query_of

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def tag():
    return uuid.uuid4().hex[:10]


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def listing(room_url, headers, **params):
    r = requests.get(f"{room_url}/rooms", params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert "Link" not in r.headers, "the test expects one page"
    return r.json()


def names(rooms):
    return [r["name"] for r in rooms]


def test_list_is_ordered_by_name_case_insensitively(room_url, admin_headers):
    t = tag()
    for suffix in ("d", "B", "a", "C", "e2", "E1"):
        create_room(room_url, admin_headers, name=f"Order {t} {suffix}")
    rooms = listing(room_url, admin_headers, q=f"Order {t}")
    assert names(rooms) == [f"Order {t} {s}" for s in ("a", "B", "C", "d", "E1", "e2")]
    for room in rooms:
        assert set(room) == ROOM_KEYS


def test_default_page_is_50_and_whole_list_is_ordered(room_url, admin_headers):
    for _ in range(3):
        create_room(room_url, admin_headers)
    r = requests.get(f"{room_url}/rooms", headers=admin_headers)
    assert r.status_code == 200
    rooms = r.json()
    assert 3 <= len(rooms) <= 50
    if "Link" in r.headers:
        assert len(rooms) == 50
    keys = [(x["name"].lower(), x["id"]) for x in rooms]
    assert keys == sorted(keys)


def test_pagination_follows_link_and_keeps_the_filter(room_url, admin_headers):
    t = tag()
    created = [create_room(room_url, admin_headers, name=f"Page {t} {i:02d}",
                           capacity=10 if i % 3 else 2) for i in range(9)]
    # Rooms that match the q filter but not min_capacity must not show up on any page.
    expected = sorted((x for x in created if x["capacity"] >= 5), key=lambda x: x["name"])
    assert len(expected) == 6
    url = f"{room_url}/rooms?q=Page+{t}&min_capacity=5&limit=2"
    seen, pages = [], 0
    while url:
        r = requests.get(url, headers=admin_headers, allow_redirects=False)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page) <= 2
        seen += page
        link = r.headers.get("Link")
        if link:
            m = LINK.match(link)
            assert m, link
            q = query_of(m.group(1))
            assert q["q"] == f"Page {t}" and q["min_capacity"] == "5" and q["limit"] == "2", q
            assert q["cursor"]
            assert m.group(1).startswith("/rooms?")
            url = room_url + m.group(1)
        else:
            url = None
        assert pages <= 10
    assert [x["id"] for x in seen] == [x["id"] for x in expected]
    assert pages == 3   # 2 + 2 + 2: no empty trailing page


def test_pagination_with_uneven_last_page(room_url, admin_headers):
    t = tag()
    for i in range(5):
        create_room(room_url, admin_headers, name=f"Uneven {t} {i}")
    r = requests.get(f"{room_url}/rooms", params={"q": f"Uneven {t}", "limit": 2},
                     headers=admin_headers)
    got, sizes = [], []
    while True:
        assert r.status_code == 200, r.text
        got += names(r.json())
        sizes.append(len(r.json()))
        if "Link" not in r.headers:
            break
        r = requests.get(room_url + LINK.match(r.headers["Link"]).group(1), headers=admin_headers)
    assert sizes == [2, 2, 1]
    assert got == [f"Uneven {t} {i}" for i in range(5)]


def test_min_capacity_filter(room_url, admin_headers):
    t = tag()
    for cap in (5, 10, 20, 10000):
        create_room(room_url, admin_headers, name=f"Cap {t} {cap:05d}", capacity=cap)
    assert [x["capacity"] for x in listing(room_url, admin_headers, q=t, min_capacity=10)] == \
        [10, 20, 10000]
    assert [x["capacity"] for x in listing(room_url, admin_headers, q=t, min_capacity=10000)] \
        == [10000]
    assert [x["capacity"] for x in listing(room_url, admin_headers, q=t, min_capacity=1)] == \
        [5, 10, 20, 10000]


def test_equipment_filter_requires_all_items_case_insensitively(room_url, admin_headers):
    t = tag()
    a = create_room(room_url, admin_headers, name=f"Eq {t} a", equipment=["Projector",
                                                                          "Whiteboard"])
    create_room(room_url, admin_headers, name=f"Eq {t} b", equipment=["projector"])
    c = create_room(room_url, admin_headers, name=f"Eq {t} c",
                    equipment=["WHITEBOARD", "TV", "PROJECTOR"])
    create_room(room_url, admin_headers, name=f"Eq {t} d", equipment=[])
    create_room(room_url, admin_headers, name=f"Eq {t} e", equipment=["Projector screen",
                                                                      "Whiteboard"])
    rooms = listing(room_url, admin_headers, q=t, equipment="projector,WHITEBOARD")
    assert [x["id"] for x in rooms] == [a["id"], c["id"]]
    rooms = listing(room_url, admin_headers, q=t, equipment=" Projector , , projector ")
    assert names(rooms) == [f"Eq {t} {s}" for s in "abc"]
    assert names(listing(room_url, admin_headers, q=t, equipment="tv")) == [f"Eq {t} c"]
    assert listing(room_url, admin_headers, q=t, equipment="projector,tv,kettle") == []


def test_equipment_filter_is_case_insensitive_beyond_ascii(room_url, admin_headers):
    t = tag()
    room = create_room(room_url, admin_headers, name=f"Eq8 {t}", equipment=["écran"])
    assert listing(room_url, admin_headers, q=t, equipment="écran") == [room]
    assert listing(room_url, admin_headers, q=t, equipment="ÉCRAN") == [room]


def test_q_matches_name_building_and_description(room_url, admin_headers):
    t = tag()
    n = create_room(room_url, admin_headers, name=f"Named {t.upper()}")
    b = create_room(room_url, admin_headers, building=f"Block-{t}-West")
    d = create_room(room_url, admin_headers, description=f"Has a {t} inside")
    create_room(room_url, admin_headers, name=f"Other {tag()}", building="Elsewhere",
                description="nothing here")
    rooms = listing(room_url, admin_headers, q=t)
    assert {x["id"] for x in rooms} == {n["id"], b["id"], d["id"]}
    assert {x["id"] for x in listing(room_url, admin_headers, q=t.upper())} == \
        {n["id"], b["id"], d["id"]}
    # Wildcards are literal text.
    assert listing(room_url, admin_headers, q=f"{t}%") == []
    assert listing(room_url, admin_headers, q=f"_{t[1:]}") == []


def test_active_filter(room_url, admin_headers):
    t = tag()
    on = create_room(room_url, admin_headers, name=f"Act {t} on")
    off = create_room(room_url, admin_headers, name=f"Act {t} off", active=False)
    assert [x["id"] for x in listing(room_url, admin_headers, q=t, active="false")] == [off["id"]]
    assert [x["id"] for x in listing(room_url, admin_headers, q=t, active="true")] == [on["id"]]
    assert [x["id"] for x in listing(room_url, admin_headers, q=t)] == [off["id"], on["id"]]


def test_filters_combine(room_url, admin_headers):
    t = tag()
    want = create_room(room_url, admin_headers, name=f"Combo {t} 1", capacity=12,
                       equipment="Projector")
    create_room(room_url, admin_headers, name=f"Combo {t} 2", capacity=12, equipment="Projector",
                active=False)
    create_room(room_url, admin_headers, name=f"Combo {t} 3", capacity=4, equipment="Projector")
    create_room(room_url, admin_headers, name=f"Combo {t} 4", capacity=12)
    rooms = listing(room_url, admin_headers, q=t, min_capacity=10, equipment="PROJECTOR",
                    active="true")
    assert rooms == [want]


@pytest.mark.parametrize("param,value", [
    ("min_capacity", "0"), ("min_capacity", "abc"), ("min_capacity", "10001"),
    ("min_capacity", "5x"), ("min_capacity", ""), ("active", "maybe"), ("active", "yes"),
    ("limit", "0"), ("limit", "201"), ("limit", "-1"), ("limit", "ten"),
    ("cursor", "garbage!"), ("cursor", "bm90IGpzb24"), ("cursor", b64({"a": 1})),
    ("cursor", b64(["x"])), ("cursor", b64([1, 2])), ("cursor", b64(["x", "y"])),
    ("q", "x" * 300),
])
def test_bad_query_parameter_is_400(room_url, admin_headers, param, value):
    r = requests.get(f"{room_url}/rooms", params={param: value}, headers=admin_headers)
    assert_error(r, 400, "bad_request", detail=param)


@pytest.mark.parametrize("raw", ["%FF", "%C3", "abc%C3%28"])
def test_q_that_is_not_utf8_is_400(room_url, admin_headers, raw):
    r = requests.get(f"{room_url}/rooms?q={raw}", headers=admin_headers)
    assert_error(r, 400, "bad_request", detail="q")


def test_equipment_filter_that_is_not_utf8_is_400(room_url, admin_headers):
    r = requests.get(f"{room_url}/rooms?equipment=%FF", headers=admin_headers)
    assert_error(r, 400, "bad_request", detail="equipment")


def test_limit_bounds_are_accepted(room_url, admin_headers):
    for limit in (1, 200):
        r = requests.get(f"{room_url}/rooms", params={"limit": limit}, headers=admin_headers)
        assert r.status_code == 200 and len(r.json()) <= limit


def test_equipment_filter_with_quotes_backslashes_and_braces(room_url, admin_headers):
    t = tag()
    odd = ['Say "hi"', "back\\slash", "{braces}", "NULL"]
    room = create_room(room_url, admin_headers, name=f"EqOdd {t}", equipment=odd)
    create_room(room_url, admin_headers, name=f"EqOdd {t} plain", equipment=["hi"])
    for item in odd:
        assert listing(room_url, admin_headers, q=t, equipment=item.upper()) == [room], item
    assert listing(room_url, admin_headers, q=t, equipment=",".join(odd)) == [room]
    assert listing(room_url, admin_headers, q=t, equipment='"hi"') == []
