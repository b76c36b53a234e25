"""The conventions of docs/api.md as a client sees them on user-service: request ids, unknown paths,
methods, trailing slashes, CORS."""
import re

import pytest
import requests

from harness import assert_error, bearer

UUIDISH = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def test_valid_request_id_is_echoed(user_url, employee):
    h = bearer(employee["access_token"])
    for rid in ("abc-123.x_y", "A", "x" * 64):
        r = requests.get(f"{user_url}/users/profile", headers={**h, "X-Request-ID": rid})
        assert r.status_code == 200
        assert r.headers["X-Request-ID"] == rid


@pytest.mark.parametrize("rid", ["x" * 65, "has space", "semi;colon", "slash/no", "ü-nicode",
                                 "quote\"d"])
def test_invalid_request_id_is_replaced(user_url, employee, rid):
    h = bearer(employee["access_token"])
    r = requests.get(f"{user_url}/users/profile",
                     headers={**h, "X-Request-ID": rid.encode("utf-8")})
    assert r.status_code == 200
    new = r.headers["X-Request-ID"]
    assert new != rid and UUIDISH.match(new), new


def test_request_id_on_every_response(user_url, employee):
    h = bearer(employee["access_token"])
    cases = [
        requests.get(f"{user_url}/health"),
        requests.get(f"{user_url}/metrics"),
        requests.get(f"{user_url}/auth/google/login", allow_redirects=False),
        requests.get(f"{user_url}/no/such/path"),
        requests.delete(f"{user_url}/users/profile", headers=h),
        requests.get(f"{user_url}/users/profile"),
        requests.post(f"{user_url}/auth/logout", json={"all": False}, headers=h),
    ]
    ids = [r.headers.get("X-Request-ID") for r in cases]
    assert all(ids), [(r.status_code, r.headers) for r in cases]
    assert len(set(ids)) == len(ids), "each request gets its own id"
    # With an id given, errors echo it in the header and in the body.
    for r in (requests.get(f"{user_url}/no/such/path", headers={"X-Request-ID": "err-1"}),
              requests.get(f"{user_url}/users/profile", headers={"X-Request-ID": "err-2"}),
              requests.put(f"{user_url}/users/profile", data=b"{", headers={
                  **h, "Content-Type": "application/json", "X-Request-ID": "err-3"})):
        body = r.json()
        assert r.headers["X-Request-ID"] == body["request_id"]
        assert body["request_id"].startswith("err-")
    r = requests.get(f"{user_url}/no/such/path", headers={"X-Request-ID": "bad id"})
    assert r.json()["request_id"] == r.headers["X-Request-ID"] != "bad id"


def test_request_id_reaches_the_log(stack, user_url, employee):
    requests.get(f"{user_url}/users/profile", headers={**bearer(employee["access_token"]),
                                                         "X-Request-ID": "log-trace-42"})
    assert '"request_id":"log-trace-42"' in stack.user.log_text()


@pytest.mark.parametrize("path", ["/no/such/path", "/users/profile/extra", "/admin",
                                  "/admin/users/1/x", "/auth/google", "/", "/auth/refresh/x"])
def test_unknown_path_is_404_json(user_url, path):
    assert_error(requests.get(f"{user_url}{path}", allow_redirects=False), 404, "not_found")


def test_wrong_method_is_405_with_allow(user_url, employee):
    h = bearer(employee["access_token"])
    r = requests.delete(f"{user_url}/users/profile", headers=h)
    assert_error(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "PUT"} <= allow and "DELETE" not in allow
    r = requests.get(f"{user_url}/auth/refresh")
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    r = requests.post(f"{user_url}/admin/users", json={}, headers=h)
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]
    r = requests.post(f"{user_url}/health")
    assert_error(r, 405, "method_not_allowed")


def test_trailing_slash_works_without_redirect(user_url, employee):
    h = bearer(employee["access_token"])
    a = requests.get(f"{user_url}/users/profile/", headers=h, allow_redirects=False)
    assert a.status_code == 200, a.text
    assert a.json() == requests.get(f"{user_url}/users/profile", headers=h).json()
    r = requests.put(f"{user_url}/users/me/", json={"name": "Slashed"}, headers=h,
                     allow_redirects=False)
    assert r.status_code == 200 and r.json()["name"] == "Slashed"
    r = requests.post(f"{user_url}/auth/refresh/",
                      json={"refresh_token": employee["refresh_token"]}, allow_redirects=False)
    assert r.status_code == 200, r.text
    r = requests.get(f"{user_url}/health/", allow_redirects=False)
    assert r.status_code == 200
    r = requests.get(f"{user_url}/auth/google/login/", allow_redirects=False)
    assert r.status_code == 302 and "/authorize" in r.headers["Location"]


def test_cors_is_off_by_default(user_url, employee):
    h = {**bearer(employee["access_token"]), "Origin": "https://evil.example"}
    r = requests.get(f"{user_url}/users/profile", headers=h)
    assert r.status_code == 200
    assert not any(k.lower().startswith("access-control-") for k in r.headers), r.headers
    r = requests.options(f"{user_url}/users/profile", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_allows_configured_origins_only(stack, employee):
    svc = stack.user_service(tag="cors", CORS_ORIGINS="https://app.example.com, https://b.example")
    svc.start()
    try:
        h = {**bearer(employee["access_token"]), "Origin": "https://app.example.com"}
        r = requests.get(f"{svc.url}/users/profile", headers=h)
        assert r.status_code == 200
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert "ETag" in r.headers["Access-Control-Expose-Headers"]
        assert "Origin" in r.headers["Vary"]
        # Preflight: answered by the service itself, listing the path's methods.
        r = requests.options(f"{svc.url}/users/profile", headers={
            "Origin": "https://b.example", "Access-Control-Request-Method": "PUT"})
        assert r.status_code == 204
        assert r.headers["Access-Control-Allow-Origin"] == "https://b.example"
        assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "PUT"}
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
        # Another origin gets no CORS headers at all.
        r = requests.get(f"{svc.url}/users/profile",
                         headers={**bearer(employee["access_token"]), "Origin": "https://evil.example"})
        assert r.status_code == 200
        assert "Access-Control-Allow-Origin" not in r.headers
    finally:
        assert svc.stop() == 0


def test_json_responses_are_not_cached(user_url, employee):
    r = requests.get(f"{user_url}/users/profile", headers=bearer(employee["access_token"]))
    assert r.headers["Content-Type"].startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", "")


def test_secrets_and_tokens_are_not_logged(stack, user_url):
    from harness import SECRET, login
    r = login(user_url, "log.secrets@example.com")
    tokens = r.json()
    rotated = requests.post(f"{user_url}/auth/refresh",
                            json={"refresh_token": tokens["refresh_token"]}).json()
    requests.get(f"{user_url}/users/profile", headers=bearer(rotated["access_token"]))
    text = stack.user.log_text()
    assert '"msg":"request"' in text
    for secret in (SECRET, "test-client-secret", tokens["refresh_token"], tokens["access_token"],
                   rotated["refresh_token"], rotated["access_token"],
                   tokens["access_token"].split(".")[2]):
        assert secret not in text


def test_oversized_headers_get_a_json_error(user_url, employee):
    r = requests.get(f"{user_url}/users/profile",
                     headers={**bearer(employee["access_token"]), "X-Filler": "a" * 20000})
    assert r.status_code in (400, 413, 431)
    assert r.headers.get("X-Request-ID"), r.headers
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.text
    body = r.json()
    assert body["error"] is True and body["status_code"] == r.status_code
    assert body["request_id"] == r.headers["X-Request-ID"]
