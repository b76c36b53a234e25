"""GET /reservations: own reservations for employees, everything for admins, filters, order and
pagination; and 401 without a token on every route (docs/api.md#pagination, #authentication)."""
import urllib.parse

import pytest
import requests

from harness import assert_error, bearer, booked, forge_token, query_of, shift, utc_at

POOL_BATCH = 12


def listing(res_url, headers, **params):
    r = requests.get(f"{res_url}/reservations", params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert isinstance(r.json(), list)
    return r.json()


def ids(res_url, headers, **params):
    return [x["id"] for x in listing(res_url, headers, **params)]


def test_employees_see_their_own_admins_see_all(res_url, users, room):
    (alice, alice_id), (bob, bob_id), (root, _) = users["alice"], users["bob"], users["root"]
    a1 = booked(res_url, alice, room["id"], utc_at(40, 9), utc_at(40, 10))
    b1 = booked(res_url, bob, room["id"], utc_at(40, 10), utc_at(40, 11))
    a2 = booked(res_url, alice, room["id"], utc_at(40, 11), utc_at(40, 12))
    assert listing(res_url, alice, room_id=room["id"]) == [a1, a2]
    assert ids(res_url, bob, room_id=room["id"]) == [b1["id"]]
    assert listing(res_url, root, room_id=room["id"]) == [a1, b1, a2]
    # Admins may filter by user; employees may name themselves, nobody else.
    assert ids(res_url, root, room_id=room["id"], user_id=bob_id) == [b1["id"]]
    assert ids(res_url, root, room_id=room["id"], user_id=alice_id) == [a1["id"], a2["id"]]
    assert ids(res_url, alice, room_id=room["id"], user_id=alice_id) == [a1["id"], a2["id"]]
    r = requests.get(f"{res_url}/reservations", params={"user_id": bob_id}, headers=alice)
    assert_error(r, 403, "forbidden")
    # An employee's list without filters holds nothing of anybody else.
    assert {x["user_id"] for x in listing(res_url, bob, limit=200)} == {bob_id}


def test_ordered_by_start_time(res_url, alice, room):
    made = [booked(res_url, alice, room["id"], utc_at(41, h), utc_at(41, h + 1))
            for h in (15, 9, 12, 7)]
    made.append(booked(res_url, alice, room["id"], utc_at(39, 20), utc_at(39, 21)))
    got = listing(res_url, alice, room_id=room["id"])
    assert [x["start_time"] for x in got] == sorted(x["start_time"] for x in made)
    assert sorted(x["id"] for x in got) == sorted(x["id"] for x in made)


def test_room_filter(res_url, alice, pool):
    one, two = pool.take(), pool.take()
    a = booked(res_url, alice, one["id"], utc_at(42, 10), utc_at(42, 11))
    b = booked(res_url, alice, two["id"], utc_at(42, 10), utc_at(42, 11))
    assert ids(res_url, alice, room_id=one["id"]) == [a["id"]]
    assert ids(res_url, alice, room_id=two["id"]) == [b["id"]]
    assert ids(res_url, alice, room_id=999999999) == []


def test_date_filter_uses_the_rooms_time_zone(res_url, alice, pool):
    """Asia/Tokyo is UTC+9 all year: 20:00Z on day D is 05:00 on D+1 there."""
    tokyo = pool.take(time_zone="Asia/Tokyo")
    d, d1 = utc_at(43)[:10], utc_at(44)[:10]
    late = booked(res_url, alice, tokyo["id"], f"{d}T20:00:00Z", f"{d}T21:00:00Z")
    early = booked(res_url, alice, tokyo["id"], f"{d}T10:00:00Z", f"{d}T11:00:00Z")
    assert ids(res_url, alice, room_id=tokyo["id"], date=d) == [early["id"]]
    assert ids(res_url, alice, room_id=tokyo["id"], date=d1) == [late["id"]]
    # Local midnight is 15:00Z: a booking touching it from before belongs to D only.
    edge = booked(res_url, alice, tokyo["id"], f"{d}T14:00:00Z", f"{d}T15:00:00Z")
    assert ids(res_url, alice, room_id=tokyo["id"], date=d) == [early["id"], edge["id"]]
    assert ids(res_url, alice, room_id=tokyo["id"], date=d1) == [late["id"]]


def test_date_filter_includes_bookings_across_midnight(res_url, alice, room):
    d, d1, d2 = utc_at(45)[:10], utc_at(46)[:10], utc_at(47)[:10]
    r = booked(res_url, alice, room["id"], f"{d}T22:00:00Z", f"{d1}T02:00:00Z")
    assert ids(res_url, alice, room_id=room["id"], date=d) == [r["id"]]
    assert ids(res_url, alice, room_id=room["id"], date=d1) == [r["id"]]
    assert ids(res_url, alice, room_id=room["id"], date=d2) == []


def test_from_to_select_overlapping_reservations(res_url, alice, room):
    a = booked(res_url, alice, room["id"], utc_at(48, 10), utc_at(48, 11))
    b = booked(res_url, alice, room["id"], utc_at(48, 12), utc_at(48, 13))
    q = lambda **p: ids(res_url, alice, room_id=room["id"], **p)  # noqa: E731
    assert q(**{"from": utc_at(48, 11), "to": utc_at(48, 12)}) == []  # half-open
    assert q(**{"from": utc_at(48, 10, 30), "to": utc_at(48, 12, 30)}) == [a["id"], b["id"]]
    assert q(**{"from": utc_at(48, 10, 59), "to": utc_at(48, 11, 1)}) == [a["id"]]
    assert q(**{"from": utc_at(48, 11)}) == [b["id"]]
    assert q(to=utc_at(48, 12)) == [a["id"]]
    assert q(to=utc_at(48, 12, 1)) == [a["id"], b["id"]]
    # With an offset (the + must be sent encoded, as any client library does).
    day = utc_at(48)[:10]
    assert q(**{"from": f"{day}T14:30:00+02:00", "to": f"{day}T15:00:00+02:00"}) == [b["id"]]


def test_status_filter(res_url, alice, room):
    keep = booked(res_url, alice, room["id"], utc_at(49, 9), utc_at(49, 10))
    gone = booked(res_url, alice, room["id"], utc_at(49, 11), utc_at(49, 12))
    assert requests.delete(f"{res_url}/reservations/{gone['id']}", headers=alice) \
        .status_code == 204
    assert ids(res_url, alice, room_id=room["id"]) == [keep["id"]]
    assert ids(res_url, alice, room_id=room["id"], status="confirmed") == [keep["id"]]
    cancelled = listing(res_url, alice, room_id=room["id"], status="cancelled")
    assert [x["id"] for x in cancelled] == [gone["id"]]
    assert cancelled[0]["status"] == "cancelled"
    assert cancelled[0]["cancel_reason"] == "cancelled_by_user"
    assert ids(res_url, alice, room_id=room["id"], status="all") == [keep["id"], gone["id"]]


def follow(res_url, headers, **params):
    """Every page of a listing through Link rel="next"; returns (items, number of pages)."""
    r = requests.get(f"{res_url}/reservations", params=params, headers=headers)
    items, pages = [], 0
    while True:
        assert r.status_code == 200, r.text
        items += r.json()
        pages += 1
        assert pages < 50
        link = r.headers.get("Link")
        if not link:
            return items, pages
        assert link.startswith("<") and link.endswith('>; rel="next"'), link
        target = link[1:link.index(">")]
        assert target.startswith("/reservations?"), link
        q = query_of(target)
        for k, v in params.items():
            assert q[k] == str(v), (k, link)
        r = requests.get(f"{res_url}{target}", headers=headers)


def test_pagination_follows_link_until_absent(res_url, alice, room):
    made = [booked(res_url, alice, room["id"], utc_at(50, h), utc_at(50, h + 1))
            for h in range(8, 13)]
    items, pages = follow(res_url, alice, room_id=room["id"], limit=2)
    assert [x["id"] for x in items] == [x["id"] for x in made]
    assert pages == 3
    # Exactly one page: no Link.
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"], "limit": 5},
                     headers=alice)
    assert len(r.json()) == 5 and "Link" not in r.headers
    items, pages = follow(res_url, alice, room_id=room["id"], limit=1)
    assert [x["id"] for x in items] == [x["id"] for x in made] and pages == 5
    items, pages = follow(res_url, alice, room_id=room["id"], limit=4, status="all")
    assert len(items) == 5 and pages == 2


def test_pagination_keeps_id_order_for_equal_starts(res_url, root, users, pool):
    """Same start in several rooms: the admin's list pages through all without loss."""
    alice, alice_id = users["alice"]
    rooms = [pool.take() for _ in range(3)]
    made = [booked(res_url, alice, rm["id"], utc_at(51, 10), utc_at(51, 11)) for rm in rooms]
    made.sort(key=lambda x: x["id"])
    start, end = utc_at(51, 10), utc_at(51, 10, 30)
    items, pages = follow(res_url, root, **{"from": start, "to": end, "limit": 1,
                                            "user_id": alice_id})
    assert [x["id"] for x in items] == [x["id"] for x in made] and pages == 3


def test_default_and_maximum_page_size(res_url, alice, room):
    base = utc_at(52, 0)
    for i in range(56):
        booked(res_url, alice, room["id"], shift(base, minutes=10 * i),
               shift(base, minutes=10 * i + 5))
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"]}, headers=alice)
    assert r.status_code == 200 and len(r.json()) == 50 and "Link" in r.headers
    r = requests.get(f"{res_url}/reservations", params={"room_id": room["id"], "limit": 200},
                     headers=alice)
    assert r.status_code == 200 and len(r.json()) == 56 and "Link" not in r.headers


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"limit": -1}, {"cursor": "%%%"},
    {"cursor": "bm90LWpzb24"}, {"cursor": "WzEsMl0"},
    {"room_id": "abc"}, {"room_id": 0}, {"user_id": "x"}, {"user_id": -5},
    {"date": "tomorrow"}, {"date": "2027-02-30"}, {"date": "2027-1-5"}, {"date": "20270105"},
    {"from": "garbage"}, {"to": "2027-01-01"}, {"from": "2027-01-01T10:00:00Z",
                                                "to": "2027-01-01T10:00:00Z"},
    {"from": "2027-01-02T10:00:00Z", "to": "2027-01-01T10:00:00Z"},
    {"status": "waiting"}, {"status": "CONFIRMED"}, {"status": ""},
], ids=lambda p: urllib.parse.urlencode(p))
def test_bad_query_values_are_400(res_url, alice, params):
    r = requests.get(f"{res_url}/reservations", params=params, headers=alice)
    assert_error(r, 400, "bad_request")


def test_trailing_slash_lists_too(res_url, alice, room):
    mine = booked(res_url, alice, room["id"], utc_at(54, 10), utc_at(54, 11))
    r = requests.get(f"{res_url}/reservations/", params={"room_id": room["id"]}, headers=alice,
                     allow_redirects=False)
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [mine["id"]]


# ---- authentication on every route ----

ROUTES = [("GET", "/reservations"), ("POST", "/reservations"), ("GET", "/reservations/1"),
          ("PUT", "/reservations/1"), ("DELETE", "/reservations/1"),
          ("GET", "/availability?room_id=1&date=2027-01-01"),
          ("GET", "/availability/rooms/1?start_date=2027-01-01&end_date=2027-01-02")]


@pytest.mark.parametrize("headers", [{}, bearer("garbage"), {"Authorization": "Basic YTpi"},
                                     bearer(forge_token(1, role="admin", secret="y" * 40)),
                                     bearer(forge_token(1, role="admin", exp_in=-120))],
                         ids=["none", "garbage", "basic", "wrong-secret", "expired"])
def test_missing_or_invalid_token_is_401_everywhere(res_url, headers):
    for method, path in ROUTES:
        body = {"room_id": 1, "start_time": utc_at(60, 10), "end_time": utc_at(60, 11)} \
            if method in ("POST", "PUT") else None
        r = requests.request(method, f"{res_url}{path}", json=body, headers=headers)
        assert_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer"), (method, path, r.headers)


def test_forged_valid_token_is_accepted(res_url, room):
    """reservation-service trusts the signed claims; it does not ask user-service."""
    h = bearer(forge_token(777001, "robot@example.com"))
    res = booked(res_url, h, room["id"], utc_at(61, 10), utc_at(61, 11))
    assert res["user_id"] == 777001
