"""The room cache across replicas and conditional GETs (docs/architecture.md#the-room-cache,
docs/api.md#versions-and-etags), and the indexes of the filtered room list (migration 002).

Two extra room-service replicas (A and B) share the session's room_db with the session's own
room-service.  Each keeps answers of GET /rooms/{id} and GET /rooms in memory and drops them on
PostgreSQL notifications (a trigger on rooms, whoever writes); while its listening session is
down it answers from the database.  A change must be visible on every replica within 1 s.
"""
import http.client
import re
import time
import urllib.parse
import uuid

import psycopg2
import pytest
import requests

from harness import create_room, room_db_query, wait_until

LISTENER = "room-service cache listener"
VISIBLE_WITHIN = 1.0


@pytest.fixture(scope="module")
def replicas(stack):
    tag = uuid.uuid4().hex[:6]
    a = stack.room_service(tag=f"cache-{tag}-a")
    b = stack.room_service(tag=f"cache-{tag}-b")
    off = stack.room_service(tag=f"cache-{tag}-off", ROOM_CACHE_MAX_ENTRIES="0")
    for svc in (a, b, off):
        svc.start()
    for svc in (a, b):
        wait_until(lambda s=svc: metric(s, "room_cache_listening") == 1, timeout=15,
                   what=f"{svc.log_path}: cache listening")
    yield a, b, off
    for svc in (a, b, off):
        svc.stop()


def metric(svc, name):
    text = requests.get(f"{svc.url}/metrics", timeout=5).text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def get_room(svc, headers, room_id, **extra):
    return requests.get(f"{svc.url}/rooms/{room_id}", headers={**headers, **extra}, timeout=5)


def seen_within(check, limit=VISIBLE_WITHIN):
    """Polls check() until true; returns the seconds it took (asserted ≤ limit by callers)."""
    t0 = time.monotonic()
    wait_until(check, timeout=5, interval=0.01, what="the change")
    return time.monotonic() - t0


def sql(pg, statement, *params):
    conn = psycopg2.connect(pg.dsn("room_db"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
    finally:
        conn.close()


def test_reads_are_answered_from_memory(replicas, admin_headers):
    a, _, off = replicas
    room = create_room(a.url, admin_headers)
    first = get_room(a, admin_headers, room["id"])
    # The room's own change notification may still be on its way and empty the cache once
    # after the first read: read until one read is answered from memory, then count.
    def read_hits():
        before = metric(a, "room_cache_hits_total")
        get_room(a, admin_headers, room["id"])
        return metric(a, "room_cache_hits_total") > before
    wait_until(read_hits, what="a read answered from memory")
    hits = metric(a, "room_cache_hits_total")
    for _ in range(3):
        r = get_room(a, admin_headers, room["id"])
        assert r.status_code == 200 and r.content == first.content
    assert metric(a, "room_cache_hits_total") >= hits + 3
    text = requests.get(f"{a.url}/metrics", timeout=5).text
    for name in ("room_cache_hits_total", "room_cache_misses_total"):
        assert f"# TYPE {name} counter" in text
    # Byte for byte what a replica without the cache answers.
    plain = get_room(off, admin_headers, room["id"])
    assert plain.content == first.content and plain.headers["ETag"] == first.headers["ETag"]
    assert metric(off, "room_cache_hits_total") is None


def test_change_through_one_replica_is_seen_by_the_other_within_1s(replicas, admin_headers):
    a, b, _ = replicas
    room = create_room(a.url, admin_headers, capacity=5)
    listing = {"q": room["name"]}
    assert get_room(b, admin_headers, room["id"]).json()["capacity"] == 5
    assert requests.get(f"{b.url}/rooms", params=listing, headers=admin_headers,
                        timeout=5).json()[0]["capacity"] == 5
    r = requests.put(f"{a.url}/rooms/{room['id']}", json={"capacity": 7}, headers=admin_headers,
                     timeout=5)
    assert r.status_code == 200, r.text
    took = seen_within(lambda: get_room(b, admin_headers, room["id"]).json()["capacity"] == 7)
    assert took <= VISIBLE_WITHIN
    took = seen_within(lambda: requests.get(f"{b.url}/rooms", params=listing,
                                            headers=admin_headers,
                                            timeout=5).json()[0]["capacity"] == 7)
    assert took <= VISIBLE_WITHIN
    # The writer itself never answers the old value again.
    assert get_room(a, admin_headers, room["id"]).json()["capacity"] == 7


def test_change_by_sql_is_seen_by_every_replica_within_1s(stack, replicas, admin_headers):
    a, b, _ = replicas
    room = create_room(a.url, admin_headers, capacity=3)
    for svc in (a, b, stack.room):
        assert get_room(svc, admin_headers, room["id"]).json()["capacity"] == 3
        assert get_room(svc, admin_headers, room["id"]).json()["capacity"] == 3   # cached
    sql(stack.pg, "UPDATE rooms SET capacity = 9, version = version + 1 WHERE id = %s",
        room["id"])
    for svc in (a, b, stack.room):
        took = seen_within(
            lambda s=svc: get_room(s, admin_headers, room["id"]).json()["capacity"] == 9)
        assert took <= VISIBLE_WITHIN, svc.log_path
    sql(stack.pg, "DELETE FROM rooms WHERE id = %s", room["id"])
    for svc in (a, b):
        took = seen_within(
            lambda s=svc: get_room(s, admin_headers, room["id"]).status_code == 404)
        assert took <= VISIBLE_WITHIN


def test_no_stale_answer_while_the_listener_is_down(stack, replicas, admin_headers):
    _, b, _ = replicas
    room = create_room(b.url, admin_headers, capacity=4)
    assert get_room(b, admin_headers, room["id"]).json()["capacity"] == 4
    assert get_room(b, admin_headers, room["id"]).json()["capacity"] == 4   # cached
    listeners = room_db_query(stack.pg, "SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = %s", LISTENER)[0][0]
    assert listeners >= 3   # the session's room-service, A and B (and the cache-off one: none)
    ended = room_db_query(stack.pg, "SELECT pg_terminate_backend(pid, 5000) "
                                    "FROM pg_stat_activity WHERE application_name = %s",
                          LISTENER)
    assert ended and all(row[0] for row in ended)
    # Changed while no replica listens: none may answer the old value, not even once.
    sql(stack.pg, "UPDATE rooms SET capacity = 6, version = version + 1 WHERE id = %s",
        room["id"])
    for _ in range(20):
        assert get_room(b, admin_headers, room["id"]).json()["capacity"] == 6
    # The listener comes back and the cache is used again, still right.
    wait_until(lambda: metric(b, "room_cache_listening") == 1, timeout=10,
               what="listener back")
    sql(stack.pg, "UPDATE rooms SET capacity = 8, version = version + 1 WHERE id = %s",
        room["id"])
    took = seen_within(lambda: get_room(b, admin_headers, room["id"]).json()["capacity"] == 8)
    assert took <= VISIBLE_WITHIN


@pytest.mark.parametrize("which", ["cached", "uncached"])
def test_conditional_get_of_a_room(replicas, admin_headers, which):
    a, _, off = replicas
    svc = a if which == "cached" else off
    room = create_room(a.url, admin_headers)
    r = get_room(svc, admin_headers, room["id"])
    etag = r.headers["ETag"]
    assert etag == '"1"'
    for header in (etag, f"W/{etag}", f'"x", {etag}', "*"):
        r = get_room(svc, admin_headers, room["id"], **{"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b"" and r.headers["ETag"] == etag
        assert "Content-Length" not in r.headers
    # "*" names any representation only alone (RFC 9110 13.1.2).
    for header in ('"2"', '"2", *', "*garbage"):
        r = get_room(svc, admin_headers, room["id"], **{"If-None-Match": header})
        assert r.status_code == 200 and r.json()["id"] == room["id"], header
    r = requests.put(f"{a.url}/rooms/{room['id']}", json={"capacity": 11}, headers=admin_headers,
                     timeout=5)
    assert r.status_code == 200
    took = seen_within(lambda: get_room(svc, admin_headers, room["id"],
                                        **{"If-None-Match": etag}).status_code == 200)
    assert took <= VISIBLE_WITHIN
    r = get_room(svc, admin_headers, room["id"], **{"If-None-Match": etag})
    assert r.headers["ETag"] == '"2"' and r.json()["capacity"] == 11
    # A missing room is still 404, whatever the client sends.
    assert get_room(svc, admin_headers, 10**12, **{"If-None-Match": "*"}).status_code == 404


@pytest.mark.parametrize("which", ["cached", "uncached"])
def test_conditional_get_of_a_list(replicas, admin_headers, which):
    a, _, off = replicas
    svc = a if which == "cached" else off
    t = uuid.uuid4().hex[:10]
    rooms = [create_room(a.url, admin_headers, name=f"Cond {t} {i}") for i in range(3)]
    params = {"q": f"Cond {t}", "limit": 2}
    r = requests.get(f"{svc.url}/rooms", params=params, headers=admin_headers, timeout=5)
    etag, link = r.headers["ETag"], r.headers["Link"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag), etag
    assert r.headers["Cache-Control"] == "private, no-cache"
    r2 = requests.get(f"{svc.url}/rooms", params=params, headers=admin_headers, timeout=5)
    assert r2.content == r.content and r2.headers["ETag"] == etag and r2.headers["Link"] == link
    r = requests.get(f"{svc.url}/rooms", params=params,
                     headers={**admin_headers, "If-None-Match": etag}, timeout=5)
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag
    # The same list through a keep-alive connection after a 304: the same connection serves
    # the next request (http.client does not reconnect silently: a closed one fails).
    url = urllib.parse.urlsplit(svc.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        path = "/rooms?" + urllib.parse.urlencode(params)
        conn.request("GET", path, headers={**admin_headers, "If-None-Match": etag})
        first = conn.getresponse()
        assert first.status == 304 and first.read() == b""
        sock = conn.sock
        assert sock is not None, "the server closed the connection after 304"
        conn.request("GET", path, headers=admin_headers)
        second = conn.getresponse()
        assert conn.sock is sock
        assert second.status == 200 and second.read() == r2.content
    finally:
        conn.close()
    requests.put(f"{a.url}/rooms/{rooms[0]['id']}", json={"capacity": 12},
                 headers=admin_headers, timeout=5).raise_for_status()
    took = seen_within(lambda: requests.get(f"{svc.url}/rooms", params=params,
                                            headers={**admin_headers, "If-None-Match": etag},
                                            timeout=5).status_code == 200)
    assert took <= VISIBLE_WITHIN
    r = requests.get(f"{svc.url}/rooms", params=params, headers=admin_headers, timeout=5)
    assert r.headers["ETag"] != etag and r.json()[0]["capacity"] == 12


@pytest.mark.parametrize("which", ["cached", "uncached"])
def test_list_etag_covers_the_next_page(replicas, admin_headers, which):
    """A room added after the last one of a full page leaves the body as it was but adds a next
    page (Link): the old ETag no longer names the answer."""
    a, _, off = replicas
    svc = a if which == "cached" else off
    t = uuid.uuid4().hex[:10]
    for i in range(2):
        create_room(a.url, admin_headers, name=f"Zpage {t} {i}")
    params = {"q": f"Zpage {t}", "limit": 2}
    r = requests.get(f"{svc.url}/rooms", params=params, headers=admin_headers, timeout=5)
    assert r.status_code == 200 and len(r.json()) == 2 and "Link" not in r.headers
    etag, body = r.headers["ETag"], r.content
    create_room(a.url, admin_headers, name=f"Zpage {t} 9")   # sorts last: not on page 1

    def answered():
        got = requests.get(f"{svc.url}/rooms", params=params,
                           headers={**admin_headers, "If-None-Match": etag}, timeout=5)
        return got if got.status_code == 200 else None
    took = seen_within(answered)
    assert took <= VISIBLE_WITHIN
    r = answered()
    assert r.content == body and "Link" in r.headers and r.headers["ETag"] != etag
    # The new ETag names the new answer.
    again = requests.get(f"{svc.url}/rooms", params=params,
                         headers={**admin_headers, "If-None-Match": r.headers["ETag"]},
                         timeout=5)
    assert again.status_code == 304


def test_list_filters_use_the_indexes(stack):
    """Selective equipment and q filters on a few thousand rooms are answered from migration 002's
    indexes, not by folding every row (rows added in a transaction that is rolled back)."""
    indexes = {name: d for name, d in room_db_query(
        stack.pg, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rooms'")}
    assert "gin (equipment_key)" in indexes["rooms_equipment_key"]
    for col in ("name", "building", "description"):
        assert f"gin (room_fold({col}) gin_trgm_ops)" in indexes[f"rooms_{col}_trgm"]
    assert "(lower(name), id)" in indexes["rooms_list_order"]
    # room_fold is not inlined (its cost would go) and sets nothing per call: PL/pgSQL, no SET.
    lang, config = room_db_query(
        stack.pg, "SELECT l.lanname, p.proconfig FROM pg_proc p JOIN pg_language l "
                  "ON l.oid = p.prolang WHERE p.proname = 'room_fold'")[0]
    assert (lang, config) == ("plpgsql", None)
    conn = psycopg2.connect(stack.pg.dsn("room_db"))
    try:
        with conn.cursor() as cur:
            t = uuid.uuid4().hex[:8]
            cur.execute("INSERT INTO rooms (name, capacity, equipment, building, description) "
                        "SELECT %s || i, 1 + i %% 40, CASE WHEN i %% 100 = 0 "
                        "THEN ARRAY['Kettle', 'tv'] ELSE ARRAY['tv'] END, 'B' || i %% 9, "
                        "'room ' || i FROM generate_series(1, 3000) i", (f"Idx {t} ",))
            cur.execute("ANALYZE rooms")
            # The conditions of room_repo_list (room-service/src/repo.c) for these filters.
            plans = {}
            for name, where, param in (
                    ("rooms_equipment_key",
                     "r.equipment_key @> room_equipment_key(%s::text[])", '{"KETTLE"}'),
                    ("rooms_description_trgm", "(room_fold(r.name) LIKE lower(%s) OR "
                     "room_fold(r.building) LIKE lower(%s) OR room_fold(r.description) "
                     "LIKE lower(%s))", "%room 1234%")):
                params = (param,) * where.count("%s")
                cur.execute("EXPLAIN SELECT r.id FROM (SELECT * FROM rooms r WHERE true AND "
                            + where + " ORDER BY lower(r.name), r.id LIMIT 21) r "
                            "ORDER BY lower(r.name), r.id", params)
                plans[name] = "\n".join(row[0] for row in cur.fetchall())
                assert name in plans[name], plans[name]
                assert "Seq Scan" not in plans[name], plans[name]
    finally:
        conn.rollback()
        conn.close()


def test_conditional_get_through_the_gateway(stack, admin_headers):
    room = create_room(stack.room.url, admin_headers)
    url = f"{stack.gateway.url}/rooms/{room['id']}"
    r = requests.get(url, headers=admin_headers, timeout=5)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    r = requests.get(url, headers={**admin_headers, "If-None-Match": '"1"'}, timeout=5)
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == '"1"'
    r = requests.get(f"{stack.gateway.url}/rooms", params={"q": room["name"]},
                     headers=admin_headers, timeout=5)
    r2 = requests.get(f"{stack.gateway.url}/rooms", params={"q": room["name"]},
                      headers={**admin_headers, "If-None-Match": r.headers["ETag"]}, timeout=5)
    assert r2.status_code == 304 and r2.headers["ETag"] == r.headers["ETag"]
