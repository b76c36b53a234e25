"""Admin user management: list, get, update, delete (docs/api.md#user-service) with the conventions
for lists, ETag/If-Match and errors."""
import base64
import json
import re
import urllib.parse
import uuid

import psycopg2
import pytest
import requests

from harness import assert_error, bearer, login, operator_token, wait_until

ADMIN_KEYS = {"id", "email", "name", "picture", "role", "created_at", "disabled", "updated_at",
              "version"}


def sign_in(url, email):
    r = login(url, email)
    assert r.status_code == 200, r.text
    return r.json()


def all_users(url, headers, **params):
    """Every user the list answers, page after page (other modules sign people in too)."""
    r = requests.get(f"{url}/admin/users", params={"limit": 200, **params}, headers=headers)
    users = []
    while True:
        assert r.status_code == 200, r.text
        users += r.json()
        if "next" not in r.links:
            return users
        r = requests.get(urllib.parse.urljoin(url, r.links["next"]["url"]), headers=headers)


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@pytest.fixture()
def target(user_url, request):
    """A fresh employee to be managed by the admin."""
    name = request.node.name.replace("_", "-").lower()[:40]
    return sign_in(user_url, f"tgt-{name}@example.com")


# ---- list ----

def test_list_and_its_aliases(user_url, admin_headers, target):
    users = all_users(user_url, admin_headers)
    assert isinstance(users, list) and users
    for u in users:
        assert set(u) == ADMIN_KEYS, u
    ids = [u["id"] for u in users]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert target["user"]["id"] in ids
    for path in ("/admin/users/", "/users", "/users/"):
        r = requests.get(f"{user_url}{path}", params={"limit": 200}, headers=admin_headers,
                         allow_redirects=False)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert [u["id"] for u in r.json()] == ids[:200], path


def test_pagination_follows_link_until_the_end(user_url, admin_headers):
    for i in range(3):  # make sure there are several pages
        sign_in(user_url, f"page-filler-{i}@example.com")
    expected = [u["id"] for u in all_users(user_url, admin_headers)]
    seen, pages = [], 0
    url = f"{user_url}/admin/users?limit=2"
    while url:
        r = requests.get(url, headers=admin_headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert 1 <= len(page) <= 2
        pages += 1
        seen += [u["id"] for u in page]
        link = r.headers.get("Link")
        if link is None:
            break
        assert re.fullmatch(r'<[^>]+>; rel="next"', link), link
        assert len(page) == 2
        nxt = r.links["next"]["url"]
        assert "limit=2" in nxt and "cursor=" in nxt
        url = urllib.parse.urljoin(user_url, nxt)
        assert pages < 500
    assert seen == expected
    assert pages == (len(expected) + 1) // 2


def test_pagination_of_an_alias_and_with_a_filter(user_url, admin_headers):
    for i in range(3):
        sign_in(user_url, f"pagedfilter-{i}@example.com")
    seen, url = [], f"{user_url}/users/?q=pagedfilter&limit=1"
    while url:
        r = requests.get(url, headers=admin_headers)
        assert r.status_code == 200, r.text
        seen += [u["email"] for u in r.json()]
        nxt = r.links.get("next", {}).get("url")
        if nxt:
            assert "q=pagedfilter" in nxt
        url = urllib.parse.urljoin(user_url, nxt) if nxt else None
    assert seen == [f"pagedfilter-{i}@example.com" for i in range(3)]


def test_q_filters_by_email_or_name_case_insensitively(user_url, admin_headers):
    a = sign_in(user_url, "qfilter.zebra@example.com")["user"]
    b = sign_in(user_url, "qfilter.yak@example.com")["user"]
    got = all_users(user_url, admin_headers, q="QFILTER")
    assert [u["id"] for u in got] == [a["id"], b["id"]]
    got = all_users(user_url, admin_headers, q="Zebra@EXAMPLE")
    assert [u["id"] for u in got] == [a["id"]]
    # The name ("Qfilter Yak") matches too.
    got = all_users(user_url, admin_headers, q="filter yak")
    assert [u["id"] for u in got] == [b["id"]]
    # LIKE wildcards are literal.
    assert all_users(user_url, admin_headers, q="qfilter%") == []
    assert all_users(user_url, admin_headers, q="no-such-user-anywhere") == []


def test_role_filter(user_url, admin_headers, target):
    admins = all_users(user_url, admin_headers, role="admin")
    assert admins and all(u["role"] == "admin" for u in admins)
    assert "boss@example.com" in [u["email"] for u in admins]
    employees = all_users(user_url, admin_headers, role="employee")
    assert all(u["role"] == "employee" for u in employees)
    assert target["user"]["id"] in [u["id"] for u in employees]
    r = requests.get(f"{user_url}/admin/users", params={"role": "bogus"}, headers=admin_headers)
    assert_error(r, 400, "bad_request", detail="role")


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "", "1.5", "99999999999999999999"])
def test_bad_limit_is_400(user_url, admin_headers, limit):
    r = requests.get(f"{user_url}/admin/users?limit={limit}", headers=admin_headers)
    assert_error(r, 400, "bad_request", detail="limit", mentions="limit")


@pytest.mark.parametrize("cursor", ["!!!not-base64!!!", "abc", b64({"id": 1}), b64([-1]),
                                    b64(["x"]), b64([1, 2]), b64("x")])
def test_bad_cursor_is_400(user_url, admin_headers, cursor):
    r = requests.get(f"{user_url}/admin/users", params={"cursor": cursor}, headers=admin_headers)
    assert_error(r, 400, "bad_request", detail="cursor", mentions="cursor")


def test_limit_boundaries_are_accepted(user_url, admin_headers):
    for limit in ("1", "200"):
        r = requests.get(f"{user_url}/admin/users?limit={limit}", headers=admin_headers)
        assert r.status_code == 200, r.text
    r = requests.get(f"{user_url}/admin/users?limit=1", headers=admin_headers)
    assert len(r.json()) == 1


# ---- get ----

def test_get_one_user_with_etag(user_url, admin_headers, target):
    uid = target["user"]["id"]
    r = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == ADMIN_KEYS
    assert body["id"] == uid and body["email"] == target["user"]["email"]
    assert body["disabled"] is False and isinstance(body["version"], int)
    assert r.headers["ETag"] == f'"{body["version"]}"'
    r2 = requests.get(f"{user_url}/admin/users/{uid}/", headers=admin_headers,
                      allow_redirects=False)
    assert r2.status_code == 200 and r2.json() == body


@pytest.mark.parametrize("uid", ["999999999", "abc", "0", "-1", "1e3",
                                 "99999999999999999999999"])
def test_get_unknown_or_malformed_id_is_404(user_url, admin_headers, uid):
    r = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers)
    assert_error(r, 404, "not_found")


# ---- update ----

def test_put_changes_name_role_and_email(user_url, admin_headers, target):
    uid = target["user"]["id"]
    before = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    new_email = f"renamed-{uid}@example.com"
    r = requests.put(f"{user_url}/admin/users/{uid}",
                     json={"name": "Renamed", "role": "admin", "email": new_email},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == ADMIN_KEYS
    assert (body["name"], body["role"], body["email"]) == ("Renamed", "admin", new_email)
    assert body["version"] > before["version"]
    assert r.headers["ETag"] == f'"{body["version"]}"'
    # Alias PUT /users/{id}, partial update.
    r = requests.put(f"{user_url}/users/{uid}", json={"role": "employee"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "employee" and r.json()["name"] == "Renamed"
    got = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    assert (got["name"], got["role"], got["email"]) == ("Renamed", "employee", new_email)


def test_put_unknown_user_is_404(user_url, admin_headers):
    r = requests.put(f"{user_url}/admin/users/999999999", json={"name": "x"},
                     headers=admin_headers)
    assert_error(r, 404, "not_found")
    r = requests.put(f"{user_url}/admin/users/abc", json={"name": "x"}, headers=admin_headers)
    assert_error(r, 404, "not_found")


def test_duplicate_email_is_409(user_url, admin_headers, target):
    other = sign_in(user_url, "dup.owner@example.com")["user"]
    uid = target["user"]["id"]
    for email in (other["email"], other["email"].upper(), "Dup.Owner@Example.COM"):
        r = requests.put(f"{user_url}/admin/users/{uid}", json={"email": email},
                         headers=admin_headers)
        assert_error(r, 409, "conflict", detail="email")
    got = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    assert got["email"] == target["user"]["email"]
    # Changing the case of one's own address is not a conflict.
    r = requests.put(f"{user_url}/admin/users/{uid}",
                     json={"email": target["user"]["email"].upper()}, headers=admin_headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body,field", [
    ({"role": "superuser"}, "role"),
    ({"role": ""}, "role"),
    ({"role": 1}, "role"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@b"}, "email"),
    ({"email": "two@@example.com"}, "email"),
    ({"email": "has space@example.com"}, "email"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"disabled": "yes"}, "disabled"),
    ({"disabled": None}, "disabled"),
    ({"password": "x"}, "password"),
    ({"id": 5}, "id"),
])
def test_put_invalid_values_are_422(user_url, admin_headers, target, body, field):
    uid = target["user"]["id"]
    before = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    r = requests.put(f"{user_url}/admin/users/{uid}", json=body, headers=admin_headers)
    assert_error(r, 422, "validation_failed", detail=field, mentions=field)
    assert requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json() == before


def test_if_match(user_url, admin_headers, target):
    uid = target["user"]["id"]
    r = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers)
    etag = r.headers["ETag"]
    version = r.json()["version"]
    stale = f'"{version - 1}"' if version > 1 else f'"{version + 5}"'
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"name": "Stale"},
                     headers={**admin_headers, "If-Match": stale})
    assert_error(r, 412, "precondition_failed")
    for bad in ('"abc"', "garbage", '"0"'):
        r = requests.put(f"{user_url}/admin/users/{uid}", json={"name": "Stale"},
                         headers={**admin_headers, "If-Match": bad})
        assert_error(r, 412, "precondition_failed")
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"name": "Fresh"},
                     headers={**admin_headers, "If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Fresh"
    new_etag = r.headers["ETag"]
    assert new_etag != etag
    # The old ETag is stale now.
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"name": "Again"},
                     headers={**admin_headers, "If-Match": etag})
    assert_error(r, 412, "precondition_failed")
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"name": "Star"},
                     headers={**admin_headers, "If-Match": "*"})
    assert r.status_code == 200, r.text
    got = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    assert got["name"] == "Star"


def test_disabled_user_cannot_refresh_or_sign_in(user_url, admin_headers, target):
    uid = target["user"]["id"]
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"disabled": True},
                     headers=admin_headers)
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    assert_error(login(user_url, target["user"]["email"]), 403, "forbidden")
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": target["refresh_token"]})
    assert r.status_code in (401, 403), r.text
    assert "access_token" not in r.json()


def test_disabled_user_refresh_is_403(user_url, admin_headers, target):
    uid = target["user"]["id"]
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"disabled": True},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": target["refresh_token"]})
    assert_error(r, 403, "forbidden")


def test_last_active_admin_stays(stack, user_url, admin, admin_headers):
    boss = admin["user"]["id"]
    # Make boss the only active admin: demote every other admin (and park a disabled admin,
    # which does not count).
    _, parked = operator_token(stack.user, "parked.admin@example.com", role="admin")
    r = requests.put(f"{user_url}/admin/users/{parked}", json={"disabled": True},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    for u in all_users(user_url, admin_headers, role="admin"):
        if u["id"] not in (boss, parked):
            r = requests.put(f"{user_url}/admin/users/{u['id']}", json={"role": "employee"},
                             headers=admin_headers)
            assert r.status_code == 200, r.text
    active = [u for u in all_users(user_url, admin_headers, role="admin") if not u["disabled"]]
    assert [u["id"] for u in active] == [boss]

    before = requests.get(f"{user_url}/admin/users/{boss}", headers=admin_headers).json()
    for body in ({"role": "employee"}, {"disabled": True}, {"role": "employee", "disabled": True}):
        r = requests.put(f"{user_url}/admin/users/{boss}", json=body, headers=admin_headers)
        assert_error(r, 409, "conflict")
        r = requests.put(f"{user_url}/users/{boss}", json=body, headers=admin_headers)
        assert_error(r, 409, "conflict")
    assert_error(requests.delete(f"{user_url}/admin/users/{boss}", headers=admin_headers), 409,
                 "conflict")
    after = requests.get(f"{user_url}/admin/users/{boss}", headers=admin_headers).json()
    assert after == before
    # Other changes to the last admin are fine.
    r = requests.put(f"{user_url}/admin/users/{boss}", json={"name": "Boss", "role": "admin"},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    # With a second active admin, that one can be demoted again.
    r = requests.put(f"{user_url}/admin/users/{parked}", json={"disabled": False},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    r = requests.put(f"{user_url}/admin/users/{parked}", json={"role": "employee"},
                     headers=admin_headers)
    assert r.status_code == 200, r.text


def renew_session_admin(stack, admin, admin_headers):
    """Signs the bootstrap admin in again and puts the new tokens into the session's fixtures: a
    change to that admin (role, disabled) revokes the tokens it had."""
    fresh = sign_in(stack.user.url, stack.ADMIN_EMAIL)
    admin.clear()
    admin.update(fresh)
    admin_headers.update(bearer(fresh["access_token"]))


def test_concurrent_demotions_keep_one_admin(stack, user_url, admin, admin_headers):
    import threading
    boss = admin["user"]["id"]
    emails = {boss: stack.ADMIN_EMAIL, None: "second.admin@example.com"}
    _, second = operator_token(stack.user, emails[None], role="admin")
    emails[second] = emails.pop(None)
    for u in all_users(user_url, admin_headers, role="admin"):
        if u["id"] not in (boss, second) and not u["disabled"]:
            requests.put(f"{user_url}/admin/users/{u['id']}", json={"role": "employee"},
                         headers=admin_headers)

    def fresh(uid):
        """A new token of an active admin (a change to it revoked the ones it had)."""
        return bearer(operator_token(stack.user, emails[uid])[0])

    def restore(survivor):
        headers = fresh(survivor)
        for uid in (second, boss):
            r = requests.put(f"{user_url}/admin/users/{uid}",
                             json={"role": "admin", "disabled": False}, headers=headers)
            assert r.status_code == 200, r.text

    survivor = boss
    try:
        for round_ in range(3):
            restore(survivor)
            headers = fresh(boss)
            barrier, results = threading.Barrier(2), {}

            def demote(uid, body, barrier=barrier, results=results, headers=headers):
                barrier.wait()
                r = requests.put(f"{user_url}/admin/users/{uid}", json=body, headers=headers)
                results[uid] = (r.status_code, r.json().get("code") if r.content else None)
            body = {"role": "employee"} if round_ != 1 else {"disabled": True}
            threads = [threading.Thread(target=demote, args=(uid, body)) for uid in (boss, second)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # One demotion wins.  The other is refused: 409 (the last active admin), or 401
            # token_revoked when the winner demoted boss, whose token both requests carry,
            # before the other was authorised.
            outcomes = sorted(results.values())
            assert outcomes in ([(200, None), (409, "conflict")],
                                [(200, None), (401, "token_revoked")]), results
            if outcomes[1][0] == 401:
                assert results[boss][0] == 200, results
            survivor = next(uid for uid, (status, _) in results.items() if status != 200)
            active = [u for u in all_users(user_url, fresh(survivor), role="admin")
                      if not u["disabled"]]
            assert [u["id"] for u in active] == [survivor], active
    finally:
        restore(survivor)
        requests.put(f"{user_url}/admin/users/{second}", json={"role": "employee"},
                     headers=fresh(boss))
        renew_session_admin(stack, admin, admin_headers)
    got = requests.get(f"{user_url}/admin/users/{boss}", headers=admin_headers).json()
    assert got["role"] == "admin" and not got["disabled"]


# ---- delete ----

def test_delete_user(stack, user_url, admin_headers, target):
    uid = target["user"]["id"]
    r = requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_error(requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers), 404,
                 "not_found")
    assert_error(requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers), 404,
                 "not_found")
    assert uid not in [u["id"] for u in all_users(user_url, admin_headers)]
    # Its refresh tokens are gone, and its still-unexpired access token is revoked (at once on
    # the replica that deleted it).
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": target["refresh_token"]})
    assert_error(r, 401, "unauthorized")
    r = requests.get(f"{user_url}/users/profile", headers=bearer(target["access_token"]))
    assert_error(r, 401, "token_revoked")

    with psycopg2.connect(stack.pg.dsn("user_db")) as conn, conn.cursor() as cur:
        cur.execute("SELECT topic, key, payload FROM outbox "
                    "WHERE key = %s AND payload->>'event_type' = 'user_deleted'", (str(uid),))
        rows = cur.fetchall()
    conn.close()
    assert len(rows) == 1, rows
    topic, key, payload = rows[0]
    assert topic == "user_events" and key == str(uid)
    assert payload["event_type"] == "user_deleted"
    assert payload["user_id"] == uid
    assert list(payload) == ["event_type", "event_id", "occurred_at", "user_id"], payload
    uuid.UUID(payload["event_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", payload["occurred_at"])

    # The outbox publisher sends it to the real broker exactly once, key = user id.
    def published():
        return [m for m in stack.kafka.read("user_events")
                if m["key"] == str(uid) and (m["value"] or {}).get("event_type") == "user_deleted"]
    events = wait_until(published, timeout=20, interval=0.2, what="user_deleted on user_events")
    assert len(events) == 1, events
    assert events[0]["value"] == payload

    # The same person signing in again is a new user.
    again = sign_in(user_url, target["user"]["email"])
    assert again["user"]["id"] != uid


def test_delete_honours_if_match(user_url, admin_headers, target):
    uid = target["user"]["id"]
    r = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers)
    version = r.json()["version"]
    r = requests.delete(f"{user_url}/admin/users/{uid}",
                        headers={**admin_headers, "If-Match": f'"{version + 1}"'})
    assert_error(r, 412, "precondition_failed")
    assert requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).status_code == 200
    r = requests.delete(f"{user_url}/admin/users/{uid}",
                        headers={**admin_headers, "If-Match": f'"{version}"'})
    assert r.status_code == 204, r.text


def test_delete_malformed_id_is_404(user_url, admin_headers):
    for uid in ("abc", "0", "999999999"):
        r = requests.delete(f"{user_url}/admin/users/{uid}", headers=admin_headers)
        assert_error(r, 404, "not_found")


def test_employee_cannot_manage_users(user_url, employee, target):
    h = bearer(employee["access_token"])
    uid = target["user"]["id"]
    assert_error(requests.get(f"{user_url}/admin/users/{uid}", headers=h), 403, "forbidden")
    assert_error(requests.put(f"{user_url}/admin/users/{uid}", json={"role": "admin"}, headers=h),
                 403, "forbidden")
    assert_error(requests.put(f"{user_url}/users/{employee['user']['id']}",
                              json={"role": "admin"}, headers=h), 403, "forbidden")
    assert_error(requests.delete(f"{user_url}/admin/users/{uid}", headers=h), 403, "forbidden")
    assert_error(requests.get(f"{user_url}/users/", headers=h), 403, "forbidden")
