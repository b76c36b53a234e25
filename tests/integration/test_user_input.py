"""Request bodies (docs/api.md#request-bodies): parse errors, duplicate keys, non-objects, size
limit, media type, Content-Length and chunked transfer."""
import json
import socket

import pytest
import requests

from harness import assert_error, bearer

LIMIT = 65536


def put_raw(url, token, data, content_type="application/json", path="/users/profile"):
    return requests.put(f"{url}{path}", data=data,
                        headers={**bearer(token), "Content-Type": content_type})


def raw_http(port, request_bytes, timeout=5):
    """Sends bytes on a fresh connection and returns (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request_bytes)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, headers, body


@pytest.mark.parametrize("data", [b'{"name": ', b"{name: 1}", b"{'name': 'x'}", b'{"name": "x",}',
                                  b"not json", b'{"name":"x"} trailing', b"\xff\xfe"])
def test_malformed_json_is_400(user_url, employee, data):
    r = put_raw(user_url, employee["access_token"], data)
    assert_error(r, 400, "bad_request")


def test_empty_body_is_400(user_url, employee):
    r = put_raw(user_url, employee["access_token"], b"")
    assert r.status_code == 400, r.text


def test_duplicate_keys_are_400_naming_the_key(user_url, employee):
    r = put_raw(user_url, employee["access_token"], b'{"name": "a", "name": "b"}')
    assert_error(r, 400, "bad_request", mentions="name")
    r = requests.post(f"{user_url}/auth/refresh", data=b'{"refresh_token":"a","refresh_token":"b"}',
                      headers={"Content-Type": "application/json"})
    assert_error(r, 400, "bad_request", mentions="refresh_token")


@pytest.mark.parametrize("data", [b"[]", b'"x"', b"42", b"null", b"true", b'[{"name":"x"}]'])
def test_body_must_be_an_object(user_url, employee, data):
    r = put_raw(user_url, employee["access_token"], data)
    body = assert_error(r, 400, "bad_request")
    # Scalars are refused by the parser itself ("'[' or '{' expected"); arrays by the check.
    assert "object" in body["message"] or "'{' expected" in body["message"], body


def test_body_at_the_limit_is_accepted_and_over_it_is_413(user_url, employee):
    tok = employee["access_token"]
    base = b'{"name":"Padded"}'
    exact = base[:-1] + b" " * (LIMIT - len(base)) + b"}"
    assert len(exact) == LIMIT
    r = put_raw(user_url, tok, exact)
    assert r.status_code == 200, r.text
    r = put_raw(user_url, tok, exact + b" ")
    assert_error(r, 413, "payload_too_large")
    r = put_raw(user_url, tok, b'{"name":"' + b"x" * (2 * LIMIT) + b'"}')
    assert_error(r, 413, "payload_too_large")
    # Also before authentication matters: the refresh endpoint has no bearer.
    r = requests.post(f"{user_url}/auth/refresh", data=b" " * (LIMIT + 1),
                      headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonx", "application/json-patch+json",
                                   "multipart/form-data; boundary=x", None])
def test_non_json_content_type_is_415(user_url, employee, ctype):
    headers = bearer(employee["access_token"])
    if ctype:
        headers["Content-Type"] = ctype
    r = requests.put(f"{user_url}/users/profile", data=b'{"name":"x"}', headers=headers)
    assert_error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_variants_are_accepted(user_url, employee, ctype):
    r = put_raw(user_url, employee["access_token"], b'{"name":"Typed"}', content_type=ctype)
    assert r.status_code == 200, r.text


def test_missing_content_length_is_411(stack, employee):
    tok = employee["access_token"]
    port = stack.user.port
    for req in (
        f"PUT /users/profile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n\r\n",
        "POST /auth/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n\r\n",
    ):
        status, headers, body = raw_http(port, req.encode())
        assert status == 411, body
        err = json.loads(body)
        assert err["error"] is True and err["status_code"] == 411
        assert err["request_id"] == headers["x-request-id"]


def test_chunked_body_is_accepted(user_url, employee):
    def parts():
        yield b'{"name":'
        yield b' "Chunked'
        yield b' Name"}'
    r = requests.put(f"{user_url}/users/profile", data=parts(),
                     headers={**bearer(employee["access_token"]),
                              "Content-Type": "application/json"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Chunked Name"


def test_chunked_body_over_the_limit_is_413(user_url, employee):
    def parts():
        yield b'{"name":"'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'
    r = requests.put(f"{user_url}/users/profile", data=parts(),
                     headers={**bearer(employee["access_token"]),
                              "Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


def test_chunked_refresh_works(user_url, employee):
    body = json.dumps({"refresh_token": employee["refresh_token"]}).encode()
    r = requests.post(f"{user_url}/auth/refresh", data=iter([body[:10], body[10:]]),
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_invalid_body_on_admin_put(user_url, admin_headers, employee):
    uid = employee["user"]["id"]
    r = requests.put(f"{user_url}/admin/users/{uid}", data=b"[1]",
                     headers={**admin_headers, "Content-Type": "application/json"})
    assert_error(r, 400, "bad_request")
    r = requests.put(f"{user_url}/admin/users/{uid}", data=b'{"role":"admin","role":"employee"}',
                     headers={**admin_headers, "Content-Type": "application/json"})
    assert_error(r, 400, "bad_request", mentions="role")
    r = requests.put(f"{user_url}/admin/users/{uid}", data=b'{"role":"admin"}',
                     headers={**admin_headers, "Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    got = requests.get(f"{user_url}/admin/users/{uid}", headers=admin_headers).json()
    assert got["role"] == "employee"
