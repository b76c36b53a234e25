"""Calendar feeds (docs/api.md#calendar-feeds): a room's busy times for anyone signed in
(GET /calendars/rooms/{id}.ics) and a user's own reservations behind a feed token
(GET /calendars/me.ics?token=…, POST/DELETE /calendars/me/token), read the way calendar clients
read them (icalendar, recurring_ical_events): busy-only content, the window, series occurrences,
ETag/304, the token's lifecycle (rotation, deletion, user deleted or disabled) and a token that
never reaches a log."""
import datetime
import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid

import icalendar
import pytest
import recurring_ical_events
import requests

from harness import (
    Gateway,
    bearer,
    booked,
    free_port,
    next_dst_days,
    operator_token,
    res_db_query,
    utc_at,
    wait_until,
)

POOL_BATCH = 4
UTC = datetime.UTC
SECRET_PURPOSE = "Secret merger talks; Q3, plan B"


@pytest.fixture(scope="module")
def berlin(pool):
    return pool.take(time_zone="Europe/Berlin")


def parse(text):
    return icalendar.Calendar.from_ical(text)


def events(cal):
    return {str(ev["UID"]): ev for ev in cal.walk("VEVENT")}


def utc(v):
    """An iCalendar DTSTART/DTEND value as the API writes times."""
    return v.dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def room_feed(res_url, headers, room_id, **kw):
    return requests.get(f"{res_url}/calendars/rooms/{room_id}.ics", headers=headers, timeout=10,
                        **kw)


def new_token(res_url, headers):
    r = requests.post(f"{res_url}/calendars/me/token", headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"token", "url"}
    assert body["url"] == f"/calendars/me.ics?token={body['token']}"
    return body["token"]


def my_feed(base, token, **kw):
    return requests.get(f"{base}/calendars/me.ics", params={"token": token}, timeout=10, **kw)


def assert_calendar_reply(r):
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert r.headers["Cache-Control"] == "private, max-age=300"
    assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["ETag"])
    assert r.content.startswith(b"BEGIN:VCALENDAR\r\n") and r.content.endswith(b"END:VCALENDAR\r\n")
    # RFC 5545 3.1: no line longer than 75 octets.
    assert max(len(line) for line in r.content.split(b"\r\n")) <= 75


def test_room_feed_shows_busy_times_only(res_url, users, berlin):
    alice, _ = users["alice"]
    bob, _ = users["bob"]
    a = booked(res_url, alice, berlin["id"], utc_at(3, 9), utc_at(3, 10), purpose=SECRET_PURPOSE)
    b = booked(res_url, alice, berlin["id"], utc_at(4, 13, 30), utc_at(4, 15),
               purpose=SECRET_PURPOSE)
    c = booked(res_url, alice, berlin["id"], utc_at(5, 9), utc_at(5, 10), purpose=SECRET_PURPOSE)
    assert requests.delete(f"{res_url}/reservations/{c['id']}", headers=alice).status_code == 204
    r = room_feed(res_url, bob, berlin["id"])
    assert_calendar_reply(r)
    # Nothing of who booked or why: not the purpose, not its parts, not the holder.
    for secret in (b"Secret", b"merger", b"plan B", b"ORGANIZER", b"ATTENDEE", b"DESCRIPTION",
                   b"feeds-alice"):
        assert secret not in r.content, secret
    cal = parse(r.content)
    assert str(cal["X-WR-CALNAME"]) == f"{berlin['name']} (busy)"
    assert [str(z["TZID"]) for z in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    evs = events(cal)
    # Confirmed reservations only: the cancelled one is gone from a subscription's next poll.
    assert set(evs) == {f"busy-{a['id']}@meeting-rooms", f"busy-{b['id']}@meeting-rooms"}
    for res in (a, b):
        ev = evs[f"busy-{res['id']}@meeting-rooms"]
        assert str(ev["SUMMARY"]) == "Busy" and str(ev["STATUS"]) == "CONFIRMED"
        assert str(ev["LOCATION"]) == berlin["name"]
        assert (utc(ev["DTSTART"]), utc(ev["DTEND"])) == (res["start_time"], res["end_time"])
    # The room's own clock: 09:00Z is 10:00 or 11:00 in Berlin, written with its TZID.
    assert ev["DTSTART"].params["TZID"] == "Europe/Berlin"


def test_room_feed_needs_a_bearer_and_a_known_room(res_url, users, berlin):
    alice, _ = users["alice"]
    r = room_feed(res_url, {}, berlin["id"])
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for path in ("/calendars/rooms/2147480000.ics", "/calendars/rooms/abc.ics",
                 f"/calendars/rooms/{berlin['id']}", "/calendars/rooms/.ics"):
        r = requests.get(f"{res_url}{path}", headers=alice, timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "not_found", path


def test_room_feed_takes_a_feed_token_instead_of_a_bearer(res_url, users, berlin):
    """Calendar clients send no bearer token: a room's feed also answers ?token=<the caller's
    feed token>, with the same busy-only content; a token that names no feed is 404."""
    alice, _ = users["alice"]
    bob, _ = users["bob"]
    booked(res_url, alice, berlin["id"], utc_at(13, 9), utc_at(13, 10), purpose=SECRET_PURPOSE)
    token = new_token(res_url, bob)
    with_bearer = room_feed(res_url, bob, berlin["id"])
    r = room_feed(res_url, {}, berlin["id"], params={"token": token})
    assert_calendar_reply(r)
    assert r.content == with_bearer.content
    assert SECRET_PURPOSE.encode() not in r.content
    assert all(str(e["SUMMARY"]) == "Busy" for e in events(parse(r.content)).values())
    r304 = room_feed(res_url, {"If-None-Match": r.headers["ETag"]}, berlin["id"],
                     params={"token": token})
    assert r304.status_code == 304
    for bad in ("x" * 43, token[:-1], token + "A", ""):
        r = room_feed(res_url, {}, berlin["id"], params={"token": bad})
        assert r.status_code == 404 and r.json()["code"] == "not_found", bad
        assert bad == "" or bad not in r.text
    # Rotated: the old token no longer opens the room's feed either.
    new_token(res_url, bob)
    assert room_feed(res_url, {}, berlin["id"], params={"token": token}).status_code == 404


def test_etag_gives_304_until_a_booking_changes_the_feed(res_url, users, pool):
    alice, _ = users["alice"]
    room = pool.take()
    booked(res_url, alice, room["id"], utc_at(6, 9), utc_at(6, 10))
    r = room_feed(res_url, alice, room["id"])
    assert_calendar_reply(r)
    etag = r.headers["ETag"]
    again = room_feed(res_url, alice, room["id"])
    assert again.headers["ETag"] == etag and again.content == r.content   # the same bytes
    r = room_feed(res_url, {**alice, "If-None-Match": etag}, room["id"])
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag
    booked(res_url, alice, room["id"], utc_at(6, 11), utc_at(6, 12))
    r = room_feed(res_url, {**alice, "If-None-Match": etag}, room["id"])
    assert r.status_code == 200 and r.headers["ETag"] != etag
    assert len(parse(r.content).walk("VEVENT")) == 2


def test_window_is_30_days_back_to_365_days_ahead(stack, res_url, users, pool):
    alice, alice_id = users["alice"]
    room = pool.take()
    # Written straight into the table: the API books neither the past nor past the horizon.
    # Two hours each, starting this many hours from now: the window is [-720 h, +8760 h).
    spans = {"before": (-723, False), "across_start": (-721, True), "last": (8759, True),
             "after": (8761, False)}
    ids = {}
    for name, (hours, _) in spans.items():
        ids[name] = res_db_query(
            stack.pg, "INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time) "
                      "VALUES (%s, %s, %s, now() + make_interval(hours => %s), "
                      "now() + make_interval(hours => %s + 2)) RETURNING id",
            room["id"], alice_id, f"window {name}", hours, hours)[0][0]
    r = room_feed(res_url, alice, room["id"])
    assert_calendar_reply(r)
    assert set(events(parse(r.content))) == {f"busy-{ids[n]}@meeting-rooms"
                                            for n, (_, inside) in spans.items() if inside}
    token = new_token(res_url, alice)
    mine = events(parse(my_feed(res_url, token).content))
    for name, (_, inside) in spans.items():
        assert (f"reservation-{ids[name]}@meeting-rooms" in mine) == inside, name


def test_a_feed_larger_than_its_chunks_arrives_whole(stack, res_url, users, pool):
    """A body over 16 KB leaves after the head in a write of its own, from the handler's memory
    (http_reply.c): 1,200 reservations (~400 KB, folded non-ASCII purposes in the owner's feed)
    arrive complete, with the Content-Length and the ETag (the body's SHA-256) of the very bytes
    sent, and the kept-alive connection serves the next requests cleanly."""
    alice, alice_id = users["alice"]
    room = pool.take(time_zone="Europe/Berlin")
    purpose = "Überprüfung – Zürich, Straße; " * 4
    ids = [row[0] for row in res_db_query(
        stack.pg, "INSERT INTO reservations (room_id, user_id, purpose, start_time, end_time) "
                  "SELECT %s, %s, %s || g, date_trunc('hour', now()) + g * interval '7 hours', "
                  "date_trunc('hour', now()) + g * interval '7 hours' + interval '1 hour' "
                  "FROM generate_series(1, 1200) g RETURNING id",
        room["id"], alice_id, purpose)]
    token = new_token(res_url, alice)
    with requests.Session() as s:
        for url, kw, uid in ((f"{res_url}/calendars/rooms/{room['id']}.ics", {"headers": alice},
                              "busy-{}@meeting-rooms"),
                             (f"{res_url}/calendars/me.ics", {"params": {"token": token}},
                              "reservation-{}@meeting-rooms")):
            r = s.get(url, timeout=30, **kw)
            assert_calendar_reply(r)
            assert len(r.content) > 300_000
            assert int(r.headers["Content-Length"]) == len(r.content)
            assert r.headers["ETag"] == f'"{hashlib.sha256(r.content).hexdigest()[:32]}"'
            evs = events(parse(r.content))
            assert {uid.format(i) for i in ids} <= set(evs)
            if uid.startswith("reservation"):
                assert str(evs[uid.format(ids[-1])]["SUMMARY"]) == f"{purpose}1200"
            again = s.get(url, timeout=30, **kw)
            assert again.content == r.content and again.headers["ETag"] == r.headers["ETag"]
            conditional = {**kw.get("headers", {}), "If-None-Match": r.headers["ETag"]}
            cached = s.get(url, timeout=30, **{**kw, "headers": conditional})
            assert cached.status_code == 304 and cached.content == b""
        assert s.get(f"{res_url}/live", timeout=10).status_code == 200


def test_my_feed_has_details_and_cancellations(stack, res_url, users, berlin):
    alice, alice_id = users["alice"]
    bob, _ = users["bob"]
    token = new_token(res_url, alice)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)                       # 256 bits, URL-safe
    mine = booked(res_url, alice, berlin["id"], utc_at(8, 9), utc_at(8, 10),
                  purpose=SECRET_PURPOSE)
    gone = booked(res_url, alice, berlin["id"], utc_at(8, 11), utc_at(8, 12), purpose="Dropped")
    assert requests.delete(f"{res_url}/reservations/{gone['id']}", headers=alice).status_code == 204
    theirs = booked(res_url, bob, berlin["id"], utc_at(8, 13), utc_at(8, 14), purpose="Bob's")
    r = my_feed(res_url, token)
    assert_calendar_reply(r)
    cal = parse(r.content)
    assert str(cal["X-WR-CALNAME"]) == "My reservations"
    evs = events(cal)
    assert f"reservation-{theirs['id']}@meeting-rooms" not in evs
    ev = evs[f"reservation-{mine['id']}@meeting-rooms"]
    assert str(ev["SUMMARY"]) == SECRET_PURPOSE                 # escaped on the wire, read back
    assert str(ev["LOCATION"]) == berlin["name"] and str(ev["STATUS"]) == "CONFIRMED"
    assert ev["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert (utc(ev["DTSTART"]), utc(ev["DTEND"])) == (mine["start_time"], mine["end_time"])
    assert int(ev["SEQUENCE"]) == mine["version"] - 1
    cancelled = evs[f"reservation-{gone['id']}@meeting-rooms"]
    assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) == 1
    # Stored hashed only.
    rows = res_db_query(stack.pg, "SELECT token_hash, email FROM feed_tokens WHERE user_id = %s",
                        alice_id)
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), "feeds-alice@example.com")]


def test_my_feed_has_the_invitations_of_my_address(res_url, users, berlin):
    """The reservations that invite the token's address (any case) are in the feed with their
    details and meeting link; a room's feed stays busy times only."""
    alice, _ = users["alice"]
    bob, _ = users["bob"]
    token = new_token(res_url, bob)
    invite = booked(res_url, alice, berlin["id"], utc_at(9, 9), utc_at(9, 10),
                    purpose="Invited", attendees=["FEEDS-BOB@example.com"], online_meeting=True)
    other = booked(res_url, alice, berlin["id"], utc_at(9, 11), utc_at(9, 12),
                   purpose="Not invited", attendees=["someone@example.com"])
    r = my_feed(res_url, token)
    assert_calendar_reply(r)
    evs = events(parse(r.content))
    assert f"reservation-{other['id']}@meeting-rooms" not in evs
    ev = evs[f"reservation-{invite['id']}@meeting-rooms"]
    assert str(ev["SUMMARY"]) == "Invited"
    assert str(ev["URL"]) == invite["meeting_url"]
    assert invite["meeting_url"] in str(ev["DESCRIPTION"])
    busy = events(parse(room_feed(res_url, bob, berlin["id"]).content))
    assert all("URL" not in e and "DESCRIPTION" not in e for e in busy.values())


def test_times_near_a_dst_change_are_utc_and_round_trip(res_url, users, berlin):
    alice, _ = users["alice"]
    day = next_dst_days("Europe/Berlin")[0][0]
    near = booked(res_url, alice, berlin["id"], f"{day}T10:00:00", f"{day}T11:00:00")
    token = new_token(res_url, alice)
    r = my_feed(res_url, token)
    ev = events(parse(r.content))[f"reservation-{near['id']}@meeting-rooms"]
    assert "TZID" not in ev["DTSTART"].params and r.text.count(f"DTSTART:{day.replace('-', '')}T")
    assert (utc(ev["DTSTART"]), utc(ev["DTEND"])) == (near["start_time"], near["end_time"])


def test_series_occurrences_expand_as_the_server_lists_them(res_url, users, berlin):
    alice, _ = users["alice"]
    start = datetime.date.today() + datetime.timedelta(days=10)
    r = requests.post(f"{res_url}/reservations", headers=alice, timeout=30, json={
        "room_id": berlin["id"], "start_time": f"{start}T16:00:00",
        "end_time": f"{start}T17:00:00", "recurrence": "FREQ=WEEKLY;COUNT=5",
        "purpose": "Weekly sync"})
    assert r.status_code == 201, r.text
    occ = r.json()["occurrences"]
    assert len(occ) == 5
    dropped = occ[1]
    assert requests.delete(f"{res_url}/reservations/{dropped['id']}",
                           headers=alice).status_code == 204
    token = new_token(res_url, alice)
    cal = parse(my_feed(res_url, token).content)
    now = datetime.datetime.now(UTC)
    seen = [ev for ev in recurring_ical_events.of(cal).between(now, now + datetime.timedelta(
        days=60)) if str(ev["SUMMARY"]) == "Weekly sync"]
    confirmed = sorted((utc(ev["DTSTART"]), utc(ev["DTEND"])) for ev in seen
                       if str(ev["STATUS"]) == "CONFIRMED")
    assert confirmed == sorted((o["start_time"], o["end_time"]) for o in occ
                               if o["id"] != dropped["id"])
    assert [str(ev["UID"]) for ev in seen if str(ev["STATUS"]) == "CANCELLED"] == [
        f"reservation-{dropped['id']}@meeting-rooms"]


def test_token_rotation_and_revocation(res_url, users):
    alice, _ = users["alice"]
    first = new_token(res_url, alice)
    assert my_feed(res_url, first).status_code == 200
    second = new_token(res_url, alice)
    assert second != first
    r = my_feed(res_url, first)
    assert r.status_code == 404 and r.json()["code"] == "not_found" and first not in r.text
    assert my_feed(res_url, second).status_code == 200
    r = requests.delete(f"{res_url}/calendars/me/token", headers=alice, timeout=10)
    assert r.status_code == 204
    assert my_feed(res_url, second).status_code == 404
    # Revoking again is no error; a token never made, a malformed one or none name no feed.
    assert requests.delete(f"{res_url}/calendars/me/token", headers=alice).status_code == 204
    for params in ({"token": "A" * 43}, {"token": "not a token"}, {"token": ""}, {}):
        r = requests.get(f"{res_url}/calendars/me.ics", params=params, timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "not_found", params
    r = requests.get(f"{res_url}/calendars/me.ics", params={"token": "x" * 5000}, timeout=10)
    assert r.status_code == 400 and "x" * 20 not in r.text
    assert requests.post(f"{res_url}/calendars/me/token", timeout=10).status_code == 401


@pytest.mark.parametrize("change", ["deleted", "disabled"])
def test_user_deleted_or_disabled_loses_the_feed(stack, res_url, admin_headers, change):
    token, uid = operator_token(stack.user, f"feeds-{change}-{uuid.uuid4().hex[:6]}@example.com")
    feed = new_token(res_url, bearer(token))
    assert my_feed(res_url, feed).status_code == 200
    url = f"{stack.user.url}/admin/users/{uid}"
    if change == "deleted":
        r = requests.delete(url, headers=admin_headers, timeout=10)
        assert r.status_code == 204, r.text
    else:
        r = requests.put(url, json={"disabled": True}, headers=admin_headers, timeout=10)
        assert r.status_code == 200, r.text
    # The user_events consumer removes the token in the transaction of the revocation.
    wait_until(lambda: my_feed(res_url, feed).status_code == 404, timeout=30, interval=0.2,
               what=f"feed gone after user_{change}")
    assert res_db_query(stack.pg, "SELECT 1 FROM feed_tokens WHERE user_id = %s", uid) == []


def test_my_feed_follows_a_changed_email_address(stack, res_url, users, admin_headers, berlin):
    """An admin changes a user's e-mail (user-service publishes user_email_changed): the feed
    drops the invitations of the old address, which may now be someone else's, and lists those
    of the new one; a token made afterwards with an access token that still names the old
    address takes the new one too."""
    tag = uuid.uuid4().hex[:6]
    old, new = f"feeds-old-{tag}@example.com", f"feeds-new-{tag}@example.com"
    token, uid = operator_token(stack.user, old)
    feed = new_token(res_url, bearer(token))
    alice, _ = users["alice"]
    to_old = booked(res_url, alice, berlin["id"], utc_at(12, 9), utc_at(12, 10),
                    purpose="For the old address", attendees=[old])
    to_new = booked(res_url, alice, berlin["id"], utc_at(12, 11), utc_at(12, 12),
                    purpose="For the new address", attendees=[new.upper()])
    uid_old = f"reservation-{to_old['id']}@meeting-rooms"
    uid_new = f"reservation-{to_new['id']}@meeting-rooms"
    assert uid_old in events(parse(my_feed(res_url, feed).content))
    r = requests.put(f"{stack.user.url}/admin/users/{uid}", json={"email": new},
                     headers=admin_headers, timeout=10)
    assert r.status_code == 200, r.text

    def now_new():
        evs = events(parse(my_feed(res_url, feed).content))
        return uid_new in evs and uid_old not in evs
    wait_until(now_new, timeout=30, interval=0.2, what="feed follows the new address")
    assert res_db_query(stack.pg, "SELECT email FROM feed_tokens WHERE user_id = %s",
                        uid) == [(new,)]
    # The event as published (docs/events.md), in user-service's outbox.
    import psycopg2
    conn = psycopg2.connect(stack.pg.dsn("user_db"))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT payload FROM outbox WHERE key = %s "
                    "AND payload->>'event_type' = 'user_email_changed'", (str(uid),))
        payloads = [row[0] for row in cur.fetchall()]
    conn.close()
    assert len(payloads) == 1, payloads
    assert list(payloads[0]) == ["event_type", "event_id", "occurred_at", "user_id", "email"]
    assert payloads[0]["user_id"] == uid and payloads[0]["email"] == new
    # The access token still names the old address: a token rotated with it takes the new one.
    rotated = new_token(res_url, bearer(token))
    evs = events(parse(my_feed(res_url, rotated).content))
    assert uid_new in evs and uid_old not in evs


def test_gateway_routes_calendars_and_no_log_holds_the_token(stack, users, berlin):
    alice, _ = users["alice"]
    gw = stack.gateway.url
    token = new_token(gw, alice)
    r = my_feed(gw, token)
    assert_calendar_reply(r)
    assert my_feed(gw, token, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    assert my_feed(stack.reservation.url, token).status_code == 200
    assert_calendar_reply(room_feed(gw, alice, berlin["id"]))
    assert_calendar_reply(room_feed(gw, {}, berlin["id"], params={"token": token}))
    # With a trailing slash too, as every prefix.
    r = requests.get(f"{gw}/calendars/rooms/{berlin['id']}.ics/", headers=alice, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/calendar")
    assert requests.get(f"{gw}/calendars", headers=alice).json()["code"] == "not_found"
    # The access log is flushed every second: wait for this request's line, then look.
    access = os.path.join(stack.gateway.dir, "access.log")

    def logged():
        with open(access, encoding="utf-8", errors="replace") as f:
            return f"GET /calendars/rooms/{berlin['id']}.ics/ " in f.read()
    wait_until(logged, timeout=10, interval=0.2, what="access log line")
    for path in (access, os.path.join(stack.gateway.dir, "error.log")):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        assert token not in text, path
    assert "GET /calendars/me.ics " in open(access, encoding="utf-8").read()
    time.sleep(0.2)
    service_log = stack.reservation.log_text()
    assert '"/calendars/me.ics"' in service_log and token not in service_log
    assert f'"/calendars/rooms/{berlin["id"]}.ics"' in service_log
    assert requests.delete(f"{gw}/calendars/me/token/", headers=alice).status_code == 204
    assert my_feed(gw, token).status_code == 404


def test_gateway_logs_no_feed_token_when_reservation_service_is_down():
    """A gateway whose upstreams are all down (nothing listens on their ports) answers every
    feed path with 502, and its error log holds none of the tokens: the personal feed with a
    trailing slash and nginx's normalised forms of it, the room feed, a misspelt path (review
    14d-B L1).  The same failure on another prefix is logged with its query string, so the
    check can see a token when one is written."""
    workdir = tempfile.mkdtemp(prefix="mr-gw-down-", dir="/tmp")
    gw = Gateway(workdir, name="nginx-down")
    paths = ["/calendars/me.ics", "/calendars/me.ics/", "/calendars/me.ics/./",
             "//calendars//me.ics", "/calendars/./me.ics/", "/calendars/rooms/1.ics",
             "/calendars/rooms/1.ics/", "/calendars/ME.ics", "/calendars/me.ics.txt"]
    try:
        gw.start(free_port(), free_port(), free_port())
        secrets = {}
        for i, path in enumerate(paths):
            secret = f"FEEDSECRET{i}x{uuid.uuid4().hex}"
            secrets[path] = secret
            r = requests.get(f"{gw.url}{path}?token={secret}", timeout=30)
            assert r.status_code == 502, (path, r.status_code, r.text)
            assert r.json()["code"] == "bad_gateway"
        control = f"CONTROLSECRET{uuid.uuid4().hex}"
        assert requests.get(f"{gw.url}/rooms?token={control}", timeout=30).status_code == 502
        error_log = os.path.join(gw.dir, "error.log")

        def control_logged():
            with open(error_log, encoding="utf-8", errors="replace") as f:
                return control in f.read()
        wait_until(control_logged, timeout=10, interval=0.2, what="the control's error line")
        logs = ""
        for name in os.listdir(gw.dir):
            if name.endswith(".log"):
                with open(os.path.join(gw.dir, name), encoding="utf-8", errors="replace") as f:
                    logs += f.read()
        leaked = [path for path, secret in secrets.items() if secret in logs]
        assert not leaked, leaked
    finally:
        gw.stop()
        shutil.rmtree(workdir, ignore_errors=True)
