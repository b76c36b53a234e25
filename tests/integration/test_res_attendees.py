"""Attendees and online meeting links (docs/api.md#attendees-and-online-meetings): the lists as
stored (validated, de-duplicated, the organizer left out), the room's capacity, GET
/reservations?role=attendee, meeting links (shape, kept for life, one per occurrence, a Jitsi JWT
when configured), the fields in the events, and hostile addresses."""
import json
import os
import re
import subprocess
import time
import uuid

import jwt
import pytest
import requests

from harness import (
    BIN_DIR,
    RESERVATION_KEYS,
    assert_error,
    bearer,
    book,
    booked,
    operator_token,
    res_db_query,
    shift,
    superuser_sql,
    utc_at,
)

POOL_BATCH = 16
LINK = re.compile(r"https://meet\.jit\.si/[a-z2-7]{26}")
SIGNED_BASE = "http://127.0.0.1:9/rooms"


@pytest.fixture(scope="module")
def people(stack, request):
    """Employees with names: the organizer carol and the invited dave (headers, id, email)."""
    out = {}
    for name in ("carol", "dave"):
        email = f"att-{name}@example.com"
        token, uid = operator_token(stack.user, email, name=f"{name.title()} Q. Example")
        out[name] = (bearer(token), uid, email)
    return out


def events_of(stack, rid):
    return [row[0] for row in res_db_query(
        stack.pg, "SELECT payload FROM outbox WHERE key = %s ORDER BY id", str(rid))]


def listing(res_url, headers, **params):
    r = requests.get(f"{res_url}/reservations", params=params, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"] if isinstance(r.json(), dict) else r.json()


# ---- the lists ----

def test_create_keeps_attendees_deduplicated_without_the_organizer(res_url, stack, people, room):
    carol, _, carol_email = people["carol"]
    start = utc_at(3, 9)
    res = booked(res_url, carol, room["id"], start, shift(start, hours=1),
                 attendees=["Dave@Example.com", "erin@example.org", "dave@example.COM",
                            carol_email.upper()])
    assert set(res) == RESERVATION_KEYS, res
    assert res["attendees"] == ["Dave@Example.com", "erin@example.org"]
    assert res["organizer_email"] == carol_email
    assert res["organizer_name"] == "Carol Q. Example"
    assert res["online_meeting"] is False and res["meeting_url"] is None
    # Reads write the same object as the write's answer.
    got = requests.get(f"{res_url}/reservations/{res['id']}", headers=carol, timeout=10).json()
    assert got == res
    # Events carry the fields.
    created = events_of(stack, res["id"])[-1]
    assert created["event_type"] == "reservation_created"
    assert created["reservation"] == res


def test_no_attendees_is_an_empty_list(res_url, people, room):
    carol = people["carol"][0]
    start = utc_at(3, 11)
    for value in (None, []):
        res = booked(res_url, carol, room["id"], start, shift(start, minutes=30),
                     attendees=value)
        assert res["attendees"] == []
        start = shift(start, hours=1)


@pytest.mark.parametrize("attendees, mentions", [
    (["ok@example.com", "not-an-address"], "item 2 is not an e-mail address"),
    (["a@example.com\r\nBcc: evil@example.com"], "item 1 is not an e-mail address"),
    (["a@example.com\nX: y"], "item 1 is not an e-mail address"),
    (["Dave <dave@example.com>"], "item 1 is not an e-mail address"),
    (["x" * 65 + "@example.com"], "item 1 is not an e-mail address"),
    (["jörg@example.com"], "item 1 is not an e-mail address"),
    ([7], "item 1 is not an e-mail address"),
    ([["a@example.com"]], "item 1 is not an e-mail address"),
    ([f"u{i}@example.com" for i in range(101)], "at most 100 addresses besides the organizer's"),
    (["u@example.com"] * 1001, "at most 1000 items"),
    ("dave@example.com", "must be"),
    ({"dave": "dave@example.com"}, "must be"),
])
def test_bad_attendees_are_422_naming_the_item(res_url, people, room, attendees, mentions):
    start = utc_at(4, 9)
    r = book(res_url, people["carol"][0], room["id"], start, shift(start, hours=1),
             attendees=attendees)
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert mentions in r.json()["details"]["attendees"], r.json()


def test_online_meeting_must_be_boolean(res_url, people, room):
    start = utc_at(4, 11)
    for value in ("yes", 1, None):
        r = book(res_url, people["carol"][0], room["id"], start, shift(start, hours=1),
                 online_meeting=value)
        assert_error(r, 422, "validation_failed", detail="online_meeting")


def test_hundred_attendees_pass_validation_and_meet_the_capacity(res_url, people, room):
    start = utc_at(4, 13)
    r = book(res_url, people["carol"][0], room["id"], start, shift(start, hours=1),
             attendees=[f"u{i}@example.com" for i in range(100)])
    assert_error(r, 422, "validation_failed", detail="attendees",
                 mentions="capacity")
    assert r.json()["details"]["attendees"] == (
        "101 people (100 attendees and the organizer) exceed the room's capacity of 4")


# ---- capacity ----

def test_capacity_counts_distinct_attendees_and_the_organizer(res_url, people, room):
    carol, _, carol_email = people["carol"]
    start = utc_at(5, 9)
    four = ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
    r = book(res_url, carol, room["id"], start, shift(start, hours=1), attendees=four)
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert r.json()["details"]["attendees"] == (
        "5 people (4 attendees and the organizer) exceed the room's capacity of 4")
    # Duplicates and the organizer's own address count once: 3 + the organizer fit 4 seats.
    res = booked(res_url, carol, room["id"], start, shift(start, hours=1),
                 attendees=four[:3] + ["A@EXAMPLE.COM", carol_email])
    assert res["attendees"] == four[:3]
    # An update that adds one more is checked again, and refused without a change.
    r = requests.put(f"{res_url}/reservations/{res['id']}", json={"attendees": four},
                     headers=carol, timeout=10)
    assert_error(r, 422, "validation_failed", detail="attendees")
    r = requests.put(f"{res_url}/reservations/{res['id']}", json={"attendees": four[:1]},
                     headers=carol, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["attendees"] == four[:1] and r.json()["version"] == 2


def test_moving_to_a_smaller_room_checks_the_capacity(res_url, people, pool):
    carol = people["carol"][0]
    big, small = pool.take(), pool.take(capacity=2)
    start = utc_at(5, 13)
    res = booked(res_url, carol, big["id"], start, shift(start, hours=1),
                 attendees=["a@example.com", "b@example.com"])
    r = requests.put(f"{res_url}/reservations/{res['id']}", json={"room_id": small["id"]},
                     headers=carol, timeout=10)
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert "capacity of 2" in r.json()["details"]["attendees"]
    # A change of purpose only keeps the list and is not checked against anything new.
    r = requests.put(f"{res_url}/reservations/{res['id']}", json={"purpose": "kept"},
                     headers=carol, timeout=10)
    assert r.status_code == 200 and r.json()["attendees"] == ["a@example.com", "b@example.com"]


# ---- role=attendee ----

def test_attendee_lists_the_reservations_that_invite_them(res_url, people, room):
    carol, _, _ = people["carol"]
    dave, _, dave_email = people["dave"]
    start = utc_at(6, 9)
    res = booked(res_url, carol, room["id"], start, shift(start, hours=1),
                 attendees=[dave_email.upper()])
    other = booked(res_url, carol, room["id"], shift(start, hours=2), shift(start, hours=3))
    invited = [x["id"] for x in listing(res_url, dave, role="attendee", limit=200)]
    assert res["id"] in invited and other["id"] not in invited
    # Dave's own bookings (the default role) do not include it; Carol is no attendee of it.
    assert res["id"] not in [x["id"] for x in listing(res_url, dave, limit=200)]
    assert res["id"] not in [x["id"] for x in listing(res_url, carol, role="attendee",
                                                      limit=200)]
    assert res["id"] in [x["id"] for x in listing(res_url, carol, role="organizer", limit=200)]
    # Cancelled: listed with status=cancelled, as for the organizer.
    assert requests.delete(f"{res_url}/reservations/{res['id']}", headers=carol,
                           timeout=10).status_code == 204
    assert res["id"] not in [x["id"] for x in listing(res_url, dave, role="attendee")]
    assert res["id"] in [x["id"] for x in listing(res_url, dave, role="attendee",
                                                  status="cancelled", limit=200)]


def test_employee_attendee_list_refuses_user_id(res_url, people, admin_headers):
    """role=attendee with user_id: an employee's invitations are organised by others, so the
    pair would only ever list nothing (review 14d-B L4): 400 naming user_id, their own id or
    anyone's.  An admin may combine them (invitations of theirs that user_id organises)."""
    dave, dave_id, _ = people["dave"]
    carol_id = people["carol"][1]
    for uid in (dave_id, carol_id):
        r = requests.get(f"{res_url}/reservations", params={"role": "attendee", "user_id": uid},
                         headers=dave, timeout=10)
        assert_error(r, 400, "bad_request", detail="user_id")
        assert "role=attendee" in r.json()["details"]["user_id"]
    r = requests.get(f"{res_url}/reservations", params={"role": "attendee", "user_id": carol_id},
                     headers=admin_headers, timeout=10)
    assert r.status_code == 200, r.text


def test_bad_role_is_400_naming_role(res_url, people):
    r = requests.get(f"{res_url}/reservations", params={"role": "guest"},
                     headers=people["dave"][0], timeout=10)
    assert_error(r, 400, "bad_request", detail="role")


LOGGED = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (LOG|DETAIL):  (.*)$")


def statement_sent(stack, request, marker):
    """(how, sql, params) of the statement containing marker that reservation-service sends for
    request() (a call), read from the server log with log_statement = all for the call."""
    log = os.path.join(stack.pg.dir, "log")
    superuser_sql(stack.pg, "ALTER SYSTEM SET log_statement = 'all'")
    superuser_sql(stack.pg, "SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        offset = os.path.getsize(log)
        request()
        time.sleep(0.5)
        with open(log, "rb") as f:
            f.seek(offset)
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    finally:
        superuser_sql(stack.pg, "ALTER SYSTEM RESET log_statement")
        superuser_sql(stack.pg, "SELECT pg_reload_conf()")
    for i, line in enumerate(lines):
        m = LOGGED.match(line)
        if m and m.group(2) == "LOG" and marker in m.group(3):
            how, sql = m.group(3).split(": ", 1)
            detail = next(LOGGED.match(x) for x in lines[i + 1:]
                          if LOGGED.match(x) and LOGGED.match(x).group(1) == m.group(1))
            assert detail.group(2) == "DETAIL", detail.group(0)
            params = re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", detail.group(3))
            return how, sql, [v for _, v in sorted(params, key=lambda p: int(p[0]))]
    raise AssertionError(f"no statement with {marker!r} in the log")


def scan_rows(plan, relation):
    """The rows the scans of relation returned in an EXPLAIN (ANALYZE, FORMAT JSON) plan (all
    loops), and the names of every index the plan reads."""
    rows, indexes = 0, set()
    stack_ = [plan]
    while stack_:
        node = stack_.pop()
        if node.get("Relation Name") == relation:
            rows += node["Actual Rows"] * node["Actual Loops"]
        if node.get("Index Name"):
            indexes.add(node["Index Name"])
        stack_.extend(node.get("Plans", []))
    return rows, indexes


def test_attendee_listing_is_bounded_by_the_window(res_url, stack, people, room):
    """The statement GET /reservations?role=attendee&from= sends (taken from the server's log)
    reads the invitations of the address as a range of (email_key, start_time) (review 14d-B
    M2/L3): on a table where the address is invited to 20,000 past reservations (added and
    ANALYZEd in a transaction that is rolled back), a page from now reads a page's rows, not the
    address's history; the old GIN read returned all 20,000.  Planned for its parameters at
    every run (sent unnamed)."""
    dave, _, dave_email = people["dave"]
    carol = people["carol"][0]
    start = utc_at(12, 14)
    mine = booked(res_url, carol, room["id"], start, shift(start, hours=1),
                  attendees=[dave_email])
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    how, sql, params = statement_sent(
        stack, lambda: listing(res_url, dave, role="attendee", **{"from": now}),
        "a.email_key = lower($")
    assert "ORDER BY a.start_time, a.reservation_id LIMIT" in sql, sql
    assert how == "execute <unnamed>", how
    import psycopg2
    conn = psycopg2.connect(stack.pg.dsn("reservation_db"))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO reservations (room_id, user_id, start_time, end_time, status, "
                "attendees, attendees_key) "
                "SELECT %s, 1000000 + i %% 3000, now() - interval '40 days' "
                "- i * interval '1 hour', now() - interval '40 days' - i * interval '1 hour' "
                "+ interval '30 minutes', 'confirmed', ARRAY[%s, 'g' || i || '@example.com'], "
                "ARRAY[lower(%s), 'g' || i || '@example.com'] "
                "FROM generate_series(1, 20000) AS i", (room["id"], dave_email, dave_email))
            cur.execute("SELECT count(*) FROM reservation_attendees WHERE email_key = %s",
                        (dave_email.lower(),))
            assert cur.fetchone()[0] >= 20001
            cur.execute("ANALYZE reservations")
            cur.execute("ANALYZE reservation_attendees")
            cur.execute(f"PREPARE listed AS {sql}")
            cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE listed ({', '.join(params)})")
            plan = cur.fetchone()[0][0]["Plan"]
            cur.execute(f"EXECUTE listed ({', '.join(params)})")
            ids = [row[0] for row in cur.fetchall()]
    finally:
        conn.rollback()
        conn.close()
    assert mine["id"] in ids
    rows, indexes = scan_rows(plan, "reservation_attendees")
    assert rows < 100, (rows, json.dumps(plan)[:2000])
    assert "reservation_attendees_pkey" in indexes, indexes


def test_attendee_rows_follow_the_reservation(res_url, stack, people, room):
    """reservation_attendees follows a reservation's attendees and start (triggers of
    migration 017): a move, a new list, a series' occurrences."""
    carol = people["carol"][0]
    start = utc_at(11, 14)
    res = booked(res_url, carol, room["id"], start, shift(start, hours=1),
                 attendees=["X1@example.com", "x2@example.com"])

    def rows():
        return sorted(res_db_query(
            stack.pg, "SELECT email_key, start_time = (SELECT start_time FROM reservations "
            "WHERE id = %s) FROM reservation_attendees WHERE reservation_id = %s",
            res["id"], res["id"]))
    assert rows() == [("x1@example.com", True), ("x2@example.com", True)]
    r = requests.put(f"{res_url}/reservations/{res['id']}",
                     json={"start_time": shift(start, hours=2), "end_time": shift(start, hours=3),
                           "attendees": ["x2@example.com", "x3@example.com"]},
                     headers=carol, timeout=10)
    assert r.status_code == 200, r.text
    assert rows() == [("x2@example.com", True), ("x3@example.com", True)]
    r = requests.put(f"{res_url}/reservations/{res['id']}", json={"attendees": []},
                     headers=carol, timeout=10)
    assert r.status_code == 200, r.text
    assert rows() == []


# ---- meeting links ----

def test_meeting_link_is_random_and_kept_for_life(res_url, stack, people, room):
    carol = people["carol"][0]
    start = utc_at(7, 9)
    a = booked(res_url, carol, room["id"], start, shift(start, hours=1), online_meeting=True)
    b = booked(res_url, carol, room["id"], shift(start, hours=1), shift(start, hours=2),
               online_meeting=True)
    assert a["online_meeting"] is True and LINK.fullmatch(a["meeting_url"]), a
    assert LINK.fullmatch(b["meeting_url"]) and a["meeting_url"] != b["meeting_url"]
    url = a["meeting_url"]
    for body in ({"purpose": "moved"}, {"start_time": shift(start, hours=3),
                                         "end_time": shift(start, hours=4)},
                 {"online_meeting": True}):
        r = requests.put(f"{res_url}/reservations/{a['id']}", json=body, headers=carol,
                         timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["meeting_url"] == url
    r = requests.put(f"{res_url}/reservations/{a['id']}", json={"online_meeting": False},
                     headers=carol, timeout=10)
    assert r.json()["online_meeting"] is False and r.json()["meeting_url"] is None
    r = requests.put(f"{res_url}/reservations/{a['id']}", json={"online_meeting": True},
                     headers=carol, timeout=10)
    assert LINK.fullmatch(r.json()["meeting_url"]) and r.json()["meeting_url"] != url
    assert events_of(stack, a["id"])[-1]["reservation"]["meeting_url"] == r.json()["meeting_url"]


def test_series_occurrences_share_attendees_and_have_their_own_links(res_url, people, room):
    carol, _, _ = people["carol"]
    dave, _, dave_email = people["dave"]
    start = utc_at(8, 9)
    r = requests.post(f"{res_url}/reservations", headers=carol, timeout=10, json={
        "room_id": room["id"], "start_time": start, "end_time": shift(start, hours=1),
        "recurrence": "FREQ=DAILY;COUNT=3", "attendees": [dave_email],
        "online_meeting": True})
    assert r.status_code == 201, r.text
    occ = r.json()["occurrences"]
    assert len(occ) == 3
    assert all(o["attendees"] == [dave_email] for o in occ)
    links = {o["meeting_url"] for o in occ}
    assert len(links) == 3 and all(LINK.fullmatch(u) for u in links)
    invited = {x["id"] for x in listing(res_url, dave, role="attendee", limit=200)}
    assert {o["id"] for o in occ} <= invited


def test_series_capacity_is_checked(res_url, people, room):
    start = utc_at(9, 9)
    r = requests.post(f"{res_url}/reservations", headers=people["carol"][0], timeout=10, json={
        "room_id": room["id"], "start_time": start, "end_time": shift(start, hours=1),
        "recurrence": "FREQ=DAILY;COUNT=2",
        "attendees": [f"p{i}@example.com" for i in range(4)]})
    assert_error(r, 422, "validation_failed", detail="attendees")


def test_a_split_keeps_attendees_organizer_and_online_meeting(res_url, stack, people, pool):
    carol, _, carol_email = people["carol"]
    dave, _, dave_email = people["dave"]
    room = pool.take()
    start = utc_at(20, 9)
    r = requests.post(f"{res_url}/reservations", headers=carol, timeout=10, json={
        "room_id": room["id"], "start_time": start, "end_time": shift(start, hours=1),
        "recurrence": "FREQ=DAILY;COUNT=4", "attendees": [dave_email], "online_meeting": True})
    assert r.status_code == 201, r.text
    occ = r.json()["occurrences"]
    r = requests.put(f"{res_url}/reservations/{occ[1]['id']}",
                     params={"scope": "this_and_following"},
                     json={"recurrence": "FREQ=DAILY;COUNT=6"}, headers=carol, timeout=30)
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] != occ[1]["series_id"]
    later = [o for o in new["occurrences"] if o["status"] == "confirmed"]
    assert len(later) == 6
    # Every occurrence of the new series, moved or added, still invites dave and names the
    # organizer; the moved ones keep their links and the added ones get their own.
    assert all(o["attendees"] == [dave_email] for o in later), later
    assert all(o["organizer_email"] == carol_email for o in later)
    assert [o["online_meeting"] for o in later] == [True] * 6
    assert [o["meeting_url"] for o in later[:3]] == [o["meeting_url"] for o in occ[1:]]
    assert len({o["meeting_url"] for o in later}) == 6
    assert res_db_query(stack.pg, "SELECT attendees, online_meeting, organizer_email "
                        "FROM reservation_series WHERE id = %s", new["id"]) == [
        ([dave_email], True, carol_email)]
    invited = {x["id"] for x in listing(res_url, dave, role="attendee", limit=200)}
    assert {o["id"] for o in later} <= invited


@pytest.mark.parametrize("split", [False, True])
def test_moving_a_series_to_a_smaller_room_checks_the_capacity(res_url, people, pool, split):
    carol = people["carol"][0]
    big, small = pool.take(), pool.take(capacity=2)
    start = utc_at(21, 9)
    r = requests.post(f"{res_url}/reservations", headers=carol, timeout=10, json={
        "room_id": big["id"], "start_time": start, "end_time": shift(start, hours=1),
        "recurrence": "FREQ=DAILY;COUNT=3",
        "attendees": ["a@example.com", "b@example.com", "c@example.com"]})
    assert r.status_code == 201, r.text
    s = r.json()
    if split:
        r = requests.put(f"{res_url}/reservations/{s['occurrences'][1]['id']}",
                         params={"scope": "this_and_following"}, json={"room_id": small["id"]},
                         headers=carol, timeout=30)
    else:
        r = requests.put(f"{res_url}/reservations/series/{s['id']}",
                         json={"room_id": small["id"]}, headers=carol, timeout=30)
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert r.json()["details"]["attendees"] == (
        "4 people (3 attendees and the organizer) exceed the room's capacity of 2")
    got = requests.get(f"{res_url}/reservations/series/{s['id']}", headers=carol, timeout=10)
    assert got.json()["version"] == s["version"]
    assert {o["room_id"] for o in got.json()["occurrences"]} == {big["id"]}
    # A room that fits takes it.
    roomy = pool.take(capacity=4)
    r = requests.put(f"{res_url}/reservations/series/{s['id']}",
                     json={"room_id": roomy["id"]}, headers=carol, timeout=30)
    assert r.status_code == 200, r.text


# ---- a signed link (JITSI_APP_ID / JITSI_APP_SECRET) ----

@pytest.fixture(scope="module")
def signing(stack):
    svc = stack.reservation_service(tag="res-jitsi", JITSI_BASE_URL=SIGNED_BASE + "/",
                                    JITSI_APP_ID="meeting-rooms",
                                    JITSI_APP_SECRET="jitsi-test-secret-0123456789abcdef")
    svc.start()
    yield svc
    svc.stop()


def test_signed_link_carries_a_jitsi_token(signing, stack, people, room):
    carol, _, carol_email = people["carol"]
    start = utc_at(10, 9)
    res = booked(signing.url, carol, room["id"], start, shift(start, hours=1),
                 online_meeting=True)
    base, _, token = res["meeting_url"].partition("?jwt=")
    assert re.fullmatch(re.escape(SIGNED_BASE) + r"/[a-z2-7]{26}", base), res
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, "jitsi-test-secret-0123456789abcdef", algorithms=["HS256"],
                        audience="jitsi", options={"verify_nbf": False})
    end = int(__import__("datetime").datetime.fromisoformat(
        res["end_time"].replace("Z", "+00:00")).timestamp())
    assert claims["iss"] == "meeting-rooms" and claims["sub"] == "127.0.0.1"
    assert claims["room"] == base.rsplit("/", 1)[1]
    assert claims["exp"] == end + 3600 and claims["nbf"] == end - 3600 - 3600
    assert claims["context"]["user"] == {"name": "Carol Q. Example", "email": carol_email}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret", algorithms=["HS256"], audience="jitsi")
    # Reads sign the same way; the stored link and the events carry no token.
    got = requests.get(f"{signing.url}/reservations/{res['id']}", headers=carol,
                       timeout=10).json()
    assert got == res
    stored = res_db_query(stack.pg, "SELECT meeting_url FROM reservations WHERE id = %s",
                          res["id"])[0][0]
    assert stored == base
    assert "jwt" not in json.dumps(events_of(stack, res["id"]))
    assert token not in signing.log_text()


def claims_of(url):
    return jwt.decode(url.partition("?jwt=")[2], "jitsi-test-secret-0123456789abcdef",
                      algorithms=["HS256"], audience="jitsi", options={"verify_nbf": False})


def test_each_reader_gets_a_token_of_their_own(signing, stack, people, room):
    """The token names whoever the answer is for: an invitee never receives the organizer's."""
    carol, _, carol_email = people["carol"]
    dave, _, dave_email = people["dave"]
    start = utc_at(10, 11)
    res = booked(signing.url, carol, room["id"], start, shift(start, hours=1),
                 online_meeting=True, attendees=[dave_email])
    mine = [x for x in listing(signing.url, dave, role="attendee", limit=200)
            if x["id"] == res["id"]]
    assert len(mine) == 1
    dave_user = {"name": "Dave Q. Example", "email": dave_email}
    assert claims_of(mine[0]["meeting_url"])["context"]["user"] == dave_user
    assert claims_of(res["meeting_url"])["context"]["user"]["email"] == carol_email
    own = [x for x in listing(signing.url, carol, limit=200) if x["id"] == res["id"]]
    assert claims_of(own[0]["meeting_url"])["context"]["user"]["email"] == carol_email
    # An admin reading it gets a token for the admin, not for the organizer.
    admin = bearer(operator_token(stack.user, "att-admin@example.com", role="admin",
                                  name="Ada Admin")[0])
    got = requests.get(f"{signing.url}/reservations/{res['id']}", headers=admin,
                       timeout=10).json()
    assert claims_of(got["meeting_url"])["context"]["user"] == {
        "name": "Ada Admin", "email": "att-admin@example.com"}


@pytest.mark.parametrize("env, variable", [
    ({"JITSI_BASE_URL": "http://meet.example.com"}, "JITSI_BASE_URL"),
    ({"JITSI_BASE_URL": "ftp://meet.example.com"}, "JITSI_BASE_URL"),
    ({"JITSI_BASE_URL": "https://meet.example.com/?x=1"}, "JITSI_BASE_URL"),
    ({"JITSI_BASE_URL": "https://user:pw@meet.example.com"}, "JITSI_BASE_URL"),
    ({"JITSI_APP_ID": "app"}, "JITSI_APP_SECRET"),
    ({"JITSI_APP_SECRET": "s3cret-value-0123456789abcdefghij"}, "JITSI_APP_ID"),
    ({"JITSI_APP_ID": "app", "JITSI_APP_SECRET": "s3cret-value"}, "JITSI_APP_SECRET"),
    ({"JITSI_APP_ID": "app", "JITSI_APP_SECRET": "s3cret-value-0123456789abcdefgh"},
     "JITSI_APP_SECRET"),
])
def test_bad_jitsi_configuration_refuses_to_start(stack, env, variable):
    svc = stack.reservation_service(tag="res-jitsi-bad", **env)
    out = subprocess.run([os.path.join(BIN_DIR, "reservation-service")], env=svc.env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert variable in out.stderr + out.stdout
    assert "s3cret-value" not in out.stderr + out.stdout and "pw@" not in out.stderr


# ---- abuse limits: the mail quota and ATTENDEE_DOMAINS (review 14d-B M1) ----

@pytest.fixture(scope="module")
def limited(stack):
    """A reservation-service whose organizers may invite 100 people an hour (the lowest
    MAIL_MAX_RECIPIENTS_PER_HOUR) and only at example.com and example.org."""
    svc = stack.reservation_service(tag="res-quota", MAIL_MAX_RECIPIENTS_PER_HOUR="100",
                                    ATTENDEE_DOMAINS="example.com, Example.ORG")
    svc.start()
    yield svc
    svc.stop()


def new_organizer(stack, name):
    email = f"quota-{name}-{uuid.uuid4().hex[:8]}@example.com"
    token, uid = operator_token(stack.user, email, name=name.title())
    return bearer(token), uid, email


def stored_for(stack, uid):
    """(reservations, outbox rows, mail deliveries to attendees) of organizer uid."""
    return res_db_query(
        stack.pg, "SELECT (SELECT count(*) FROM reservations WHERE user_id = %s), "
        "(SELECT count(*) FROM outbox o JOIN reservations r ON o.key = r.id::text "
        "  WHERE r.user_id = %s), "
        "(SELECT count(*) FROM deliveries d JOIN reservations r ON d.key = r.id::text "
        "  WHERE d.kind = 'mail' AND r.user_id = %s AND d.target <> r.organizer_email)",
        uid, uid, uid)[0]


def test_mail_quota_refuses_a_change_past_the_hours_limit(limited, stack, pool):
    """An organizer's changes may invite 100 people an hour here: 60 + 40 pass (the limit
    exactly), one more is refused as a whole (429, Retry-After, nothing stored, nothing
    mailed), as are a PUT and a series that would invite more; a booking without attendees (the
    organizer's own copy) and a cancellation are not counted; another organizer is not
    affected."""
    eve, eve_id, _ = new_organizer(stack, "eve")
    hall = pool.take(capacity=500)
    start = utc_at(40, 9)
    guests = [f"q{i}@example.com" for i in range(100)]
    first = booked(limited.url, eve, hall["id"], start, shift(start, hours=1),
                   attendees=guests[:60])
    booked(limited.url, eve, hall["id"], shift(start, hours=1), shift(start, hours=2),
           attendees=guests[60:])
    before = stored_for(stack, eve_id)
    assert before[2] == 100, before
    r = book(limited.url, eve, hall["id"], shift(start, hours=2), shift(start, hours=3),
             attendees=["one-more@example.com"])
    assert_error(r, 429, "rate_limited", detail="attendees")
    assert r.headers["Retry-After"] == "60"
    assert stored_for(stack, eve_id) == before
    assert not res_db_query(stack.pg, "SELECT 1 FROM deliveries WHERE target = %s",
                            "one-more@example.com")
    # A change of an invited meeting mails its attendees again: refused, the reservation kept.
    r = requests.put(f"{limited.url}/reservations/{first['id']}", json={"purpose": "again"},
                     headers=eve, timeout=10)
    assert_error(r, 429, "rate_limited", detail="attendees")
    r = requests.get(f"{limited.url}/reservations/{first['id']}", headers=eve, timeout=10)
    assert r.json()["version"] == first["version"] and r.json()["purpose"] == first["purpose"]
    r = requests.post(f"{limited.url}/reservations", headers=eve, timeout=30, json={
        "room_id": hall["id"], "start_time": shift(start, hours=4),
        "end_time": shift(start, hours=5), "recurrence": "FREQ=DAILY;COUNT=2",
        "attendees": ["series-guest@example.com"]})
    assert_error(r, 429, "rate_limited", detail="attendees")
    assert stored_for(stack, eve_id) == before
    # Not counted: a booking that invites nobody, a cancellation.
    booked(limited.url, eve, hall["id"], shift(start, hours=6), shift(start, hours=7))
    assert requests.delete(f"{limited.url}/reservations/{first['id']}", headers=eve,
                           timeout=10).status_code == 204
    # Another organizer has an hour of their own.
    fay, _, _ = new_organizer(stack, "fay")
    booked(limited.url, fay, hall["id"], shift(start, hours=8), shift(start, hours=9),
           attendees=guests)
    metrics = requests.get(f"{limited.url}/metrics", timeout=10).text
    assert re.search(r"^mail_quota_refusals_total 3(\.0)?$", metrics, re.M), metrics[:500]


def test_attendee_domains_limit_who_is_invited(limited, stack, pool):
    """ATTENDEE_DOMAINS: addresses at the listed domains (any case) are invited, any other is
    refused with 422 attendees naming its item and domain, on a create and an update."""
    gus, _, _ = new_organizer(stack, "gus")
    hall = pool.take(capacity=20)
    start = utc_at(41, 9)
    res = booked(limited.url, gus, hall["id"], start, shift(start, hours=1),
                 attendees=["a@EXAMPLE.com", "b@example.org"])
    assert res["attendees"] == ["a@EXAMPLE.com", "b@example.org"]
    r = book(limited.url, gus, hall["id"], shift(start, hours=1), shift(start, hours=2),
             attendees=["a@example.com", "c@sub.example.com"])
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert r.json()["details"]["attendees"] == (
        "item 2: the domain sub.example.com is not one attendees may be invited from")
    r = requests.put(f"{limited.url}/reservations/{res['id']}", headers=gus, timeout=10,
                     json={"attendees": ["x@elsewhere.example"]})
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert "elsewhere.example" in r.json()["details"]["attendees"]


# ---- hostile input ----

@pytest.mark.parametrize("value", [
    ["a@example.com\u0000b"], ["'; DROP TABLE reservations; --@example.com"],
    ["a\"b@example.com"], ["a\\b@example.com"], ["{a,b}@example.com"], ["a@" + "x" * 300],
    [""], [" a@example.com"], [None], [{"$ne": 1}], [True], [1e308],
])
def test_hostile_attendees_never_reach_the_database(res_url, people, room, value):
    start = utc_at(11, 9)
    r = book(res_url, people["carol"][0], room["id"], start, shift(start, hours=1),
             attendees=value)
    assert r.status_code in (400, 422), r.text


def test_braces_and_quotes_allowed_by_rfc_5321_are_stored_as_given(res_url, people, room):
    start = utc_at(11, 13)
    odd = ["{a}@example.com", "b|c@example.com", "o'hara@example.com"]
    res = booked(res_url, people["carol"][0], room["id"], start, shift(start, hours=1),
                 attendees=odd)
    assert res["attendees"] == odd


# ---- series changes with attendees and online meetings ----

def make_series(res_url, headers, room_id, start, count=3, **extra):
    r = requests.post(f"{res_url}/reservations", headers=headers, timeout=30, json={
        "room_id": room_id, "start_time": start, "end_time": shift(start, hours=1),
        "recurrence": f"FREQ=DAILY;COUNT={count}", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def put_series(res_url, headers, sid, body):
    return requests.put(f"{res_url}/reservations/series/{sid}", json=body, headers=headers,
                        timeout=30)


def series_now(res_url, headers, sid):
    r = requests.get(f"{res_url}/reservations/series/{sid}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_series_shows_its_attendees_and_online_meeting(res_url, stack, people, room):
    carol, _, carol_email = people["carol"]
    dave_email = people["dave"][2]
    s = make_series(res_url, carol, room["id"], utc_at(30, 9), attendees=[dave_email],
                    online_meeting=True)
    want = {"attendees": [dave_email], "organizer_email": carol_email,
            "organizer_name": "Carol Q. Example", "online_meeting": True}
    assert {k: s[k] for k in want} == want, s
    got = series_now(res_url, carol, s["id"])
    assert {k: got[k] for k in want} == want
    created = [p for (p,) in res_db_query(stack.pg, "SELECT payload FROM outbox WHERE key = %s",
                                          f"series-{s['id']}")]
    assert created and {k: created[-1]["series"][k] for k in want} == want


def test_series_put_changes_the_attendees_of_the_series_and_its_future_occurrences(
        res_url, stack, people, room):
    carol, _, carol_email = people["carol"]
    dave, _, dave_email = people["dave"]
    s = make_series(res_url, carol, room["id"], utc_at(31, 9), attendees=[dave_email])
    occ = s["occurrences"]
    # An exception (changed on its own) takes the series' new list too, as it takes a purpose.
    r = requests.put(f"{res_url}/reservations/{occ[1]['id']}", headers=carol, timeout=10,
                     json={"attendees": ["own@example.com"], "purpose": "its own"})
    assert r.status_code == 200, r.text
    r = put_series(res_url, carol, s["id"], {"attendees": ["Erin@example.com", carol_email,
                                                           "erin@EXAMPLE.com"]})
    assert r.status_code == 200, r.text
    assert r.json()["attendees"] == ["Erin@example.com"] and r.json()["version"] == 2
    got = series_now(res_url, carol, s["id"])
    assert got["attendees"] == ["Erin@example.com"]
    assert [o["attendees"] for o in got["occurrences"]] == [["Erin@example.com"]] * 3
    # Times stay, the versions move; dave is no longer invited.
    assert [o["start_time"] for o in got["occurrences"]] == [o["start_time"] for o in occ]
    invited = {x["id"] for x in listing(res_url, dave, role="attendee", limit=200)}
    assert not invited & {o["id"] for o in occ}
    event = res_db_query(stack.pg, "SELECT payload FROM outbox WHERE key = %s ORDER BY id DESC "
                         "LIMIT 1", f"series-{s['id']}")[0][0]
    assert event["event_type"] == "reservation_series_updated"
    assert event["series"]["attendees"] == ["Erin@example.com"]
    # null clears the list.
    r = put_series(res_url, carol, s["id"], {"attendees": None})
    assert r.status_code == 200, r.text
    assert r.json()["attendees"] == [] and all(
        o["attendees"] == [] for o in r.json()["occurrences"])


def test_series_put_attendees_checks_every_room_the_occurrences_end_in(res_url, people, pool):
    carol = people["carol"][0]
    room, small = pool.take(), pool.take(capacity=2)
    s = make_series(res_url, carol, room["id"], utc_at(32, 9), attendees=["a@example.com"])
    four = [f"p{i}@example.com" for i in range(4)]
    r = put_series(res_url, carol, s["id"], {"attendees": four})
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert r.json()["details"]["attendees"] == (
        "5 people (4 attendees and the organizer) exceed the room's capacity of 4")
    # An exception moved to a 2-seat room keeps its room: 3 people do not fit there.
    moved = s["occurrences"][2]
    r = requests.put(f"{res_url}/reservations/{moved['id']}", json={"room_id": small["id"]},
                     headers=carol, timeout=10)
    assert r.status_code == 200, r.text
    r = put_series(res_url, carol, s["id"], {"attendees": four[:2]})
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert "capacity of 2" in r.json()["details"]["attendees"]
    got = series_now(res_url, carol, s["id"])
    assert got["version"] == s["version"] and got["attendees"] == ["a@example.com"]
    assert [o["attendees"] for o in got["occurrences"]] == [["a@example.com"]] * 3
    # The same list with a room change moves the exception too: it fits then.
    r = put_series(res_url, carol, s["id"], {"attendees": four[:2],
                                             "room_id": pool.take()["id"]})
    assert r.status_code == 200, r.text
    assert [o["attendees"] for o in r.json()["occurrences"]] == [four[:2]] * 3


def test_split_carries_the_attendees_the_body_gives(res_url, stack, people, room):
    carol, _, carol_email = people["carol"]
    dave_email = people["dave"][2]
    s = make_series(res_url, carol, room["id"], utc_at(33, 9), count=4, attendees=[dave_email])
    occ = s["occurrences"]
    r = requests.put(f"{res_url}/reservations/{occ[2]['id']}",
                     params={"scope": "this_and_following"}, headers=carol, timeout=30,
                     json={"attendees": ["erin@example.com"], "online_meeting": True})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] != s["id"] and new["parent_id"] == s["id"]
    assert new["attendees"] == ["erin@example.com"] and new["online_meeting"] is True
    assert new["organizer_email"] == carol_email
    assert [o["attendees"] for o in new["occurrences"]] == [["erin@example.com"]] * 2
    assert all(LINK.fullmatch(o["meeting_url"]) for o in new["occurrences"])
    old = series_now(res_url, carol, s["id"])
    assert old["attendees"] == [dave_email] and old["online_meeting"] is False
    assert [o["attendees"] for o in old["occurrences"]] == [[dave_email]] * 2
    assert all(o["meeting_url"] is None for o in old["occurrences"])


def test_turning_the_online_meeting_on_and_off_for_a_series(res_url, people, room):
    carol = people["carol"][0]
    s = make_series(res_url, carol, room["id"], utc_at(34, 9))
    assert s["online_meeting"] is False
    r = put_series(res_url, carol, s["id"], {"online_meeting": True})
    assert r.status_code == 200, r.text
    on = r.json()
    assert on["online_meeting"] is True
    links = [o["meeting_url"] for o in on["occurrences"]]
    assert all(LINK.fullmatch(u) for u in links) and len(set(links)) == 3
    # True again keeps the links; a rule that adds dates gives the added ones their own.
    r = put_series(res_url, carol, s["id"], {"online_meeting": True,
                                             "recurrence": "FREQ=DAILY;COUNT=5"})
    assert r.status_code == 200, r.text
    occ = r.json()["occurrences"]
    assert [o["meeting_url"] for o in occ[:3]] == links
    assert all(LINK.fullmatch(o["meeting_url"]) for o in occ[3:])
    assert len({o["meeting_url"] for o in occ}) == 5
    r = put_series(res_url, carol, s["id"], {"online_meeting": False})
    assert r.status_code == 200, r.text
    assert r.json()["online_meeting"] is False
    assert all(o["online_meeting"] is False and o["meeting_url"] is None
               for o in r.json()["occurrences"])
    # Off: occurrences a later change adds get no link either.
    r = put_series(res_url, carol, s["id"], {"recurrence": "FREQ=DAILY;COUNT=6"})
    assert r.status_code == 200, r.text
    assert all(o["meeting_url"] is None for o in r.json()["occurrences"])


def test_occurrences_a_rule_change_adds_get_their_meeting_link(res_url, people, room):
    carol, _, _ = people["carol"]
    dave_email = people["dave"][2]
    s = make_series(res_url, carol, room["id"], utc_at(35, 9), count=2, attendees=[dave_email],
                    online_meeting=True)
    links = [o["meeting_url"] for o in s["occurrences"]]
    r = put_series(res_url, carol, s["id"], {"recurrence": "FREQ=DAILY;COUNT=4"})
    assert r.status_code == 200, r.text
    occ = r.json()["occurrences"]
    assert len(occ) == 4 and [o["meeting_url"] for o in occ[:2]] == links
    assert all(LINK.fullmatch(o["meeting_url"]) for o in occ[2:])
    assert len({o["meeting_url"] for o in occ}) == 4
    assert all(o["attendees"] == [dave_email] for o in occ)


# ---- an attendee reads what invites them ----

def test_an_attendee_may_read_but_not_change_the_reservation(res_url, stack, people, room):
    carol, _, _ = people["carol"]
    dave, _, dave_email = people["dave"]
    stranger = bearer(operator_token(stack.user, "att-stranger@example.com")[0])
    start = utc_at(36, 9)
    res = booked(res_url, carol, room["id"], start, shift(start, hours=1),
                 attendees=[dave_email.upper()], online_meeting=True)
    r = requests.get(f"{res_url}/reservations/{res['id']}", headers=dave, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == res
    assert r.headers["ETag"] == f'"{res["version"]}"'
    for method, kwargs in (("put", {"json": {"purpose": "mine now"}}), ("delete", {})):
        r = getattr(requests, method)(f"{res_url}/reservations/{res['id']}", headers=dave,
                                      timeout=10, **kwargs)
        assert_error(r, 403, "forbidden")
    r = requests.get(f"{res_url}/reservations/{res['id']}", headers=stranger, timeout=10)
    assert_error(r, 403, "forbidden")
    got = requests.get(f"{res_url}/reservations/{res['id']}", headers=carol, timeout=10).json()
    assert got["version"] == res["version"] and got["status"] == "confirmed"


# ---- the limit: 100 besides the organizer, 1000 items at most ----

def test_the_limit_counts_distinct_addresses_besides_the_organizers(res_url, people, pool):
    carol, _, carol_email = people["carol"]
    hall = pool.take(capacity=500)
    hundred = [f"guest{i}@example.com" for i in range(100)]
    start = utc_at(37, 9)
    # 101 items with the organizer's own address: 100 attendees.
    res = booked(res_url, carol, hall["id"], start, shift(start, hours=1),
                 attendees=hundred + [carol_email.upper()])
    assert res["attendees"] == hundred
    # 1000 items that are 100 addresses in two spellings: accepted.
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=carol, timeout=10,
                     json={"attendees": (hundred + [a.upper() for a in hundred]) * 5})
    assert r.status_code == 200, r.text
    assert r.json()["attendees"] == hundred
    r = requests.put(f"{res_url}/reservations/{res['id']}", headers=carol, timeout=10,
                     json={"attendees": [carol_email] + hundred})
    assert r.status_code == 200 and r.json()["attendees"] == hundred
    # 101 others: refused, whatever the request.
    over = hundred + ["one-more@example.com"]
    refused = [
        book(res_url, carol, hall["id"], shift(start, hours=2), shift(start, hours=3),
             attendees=over),
        requests.put(f"{res_url}/reservations/{res['id']}", headers=carol, timeout=10,
                     json={"attendees": over}),
    ]
    s = make_series(res_url, carol, hall["id"], utc_at(38, 9), count=2,
                    attendees=hundred + [carol_email])
    assert s["attendees"] == hundred
    refused.append(put_series(res_url, carol, s["id"], {"attendees": over}))
    r = put_series(res_url, carol, s["id"], {"attendees": [carol_email] + hundred[::-1]})
    assert r.status_code == 200, r.text
    assert r.json()["attendees"] == hundred[::-1]
    for r in refused:
        assert_error(r, 422, "validation_failed", detail="attendees")
        assert r.json()["details"]["attendees"] == (
            "must list at most 100 addresses besides the organizer's")
    # More than 1000 items are not read at all.
    r = book(res_url, carol, hall["id"], shift(start, hours=4), shift(start, hours=5),
             attendees=["same@example.com"] * 1001)
    assert_error(r, 422, "validation_failed", detail="attendees")
    assert r.json()["details"]["attendees"] == "must be an array of at most 1000 items"
