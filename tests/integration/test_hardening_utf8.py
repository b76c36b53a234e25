"""Text that is not plain ASCII in error bodies and log lines (issue 11 item 13).

Error messages and log lines are built in fixed buffers and handed to jansson, which refuses a
string that is not well-formed UTF-8.  Two triggers made the error body or the log line lose its
content: a message cut at its byte limit inside a multibyte character (an unknown field whose
name is ~600 bytes of non-ASCII text), and a decoded path that is not UTF-8 at all (`%FF`).
Messages must be cut after a whole character and ill-formed bytes replaced by U+FFFD, so that
the client gets its JSON error and every log line of the request is well-formed JSON."""
import http.client
import json
import socket
import uuid

import pytest
import requests

from harness import assert_error, bearer, operator_token, wait_until

SERVICES = ("user", "room", "reservation")
MESSAGE_MAX = 511  # HTTP_ERROR_MESSAGE_MAX (common/include/http.h) less its NUL
ELLIPSIS = "\u2026"


@pytest.fixture(scope="module")
def admin_token(stack):
    token, _ = operator_token(stack.user, f"utf8-admin-{uuid.uuid4().hex[:8]}@example.com",
                              role="admin")
    return token


def request_id():
    return f"utf8-{uuid.uuid4().hex}"


def request_log_lines(svc, rid):
    """The service's log lines of request rid, parsed, once its access line is written.  A line
    that is not UTF-8 or not JSON fails the test at once."""
    def lines():
        with open(svc.log_path, "rb") as f:
            data = f.read()
        found = [json.loads(line.decode("utf-8"))
                 for line in data.split(b"\n") if rid.encode() in line]
        return found if any(x.get("msg") == "request" for x in found) else None
    return wait_until(lines, timeout=5, what=f"the access log line of {rid}")


def assert_access_line(svc, rid, method, path, status):
    lines = request_log_lines(svc, rid)
    for line in lines:
        assert line["request_id"] == rid and line["service"] == svc.name, line
    access = [x for x in lines if x["msg"] == "request"]
    assert len(access) == 1, lines
    assert access[0]["method"] == method, access
    assert access[0]["path"] == path, access
    assert access[0]["status"] == status, access


# ---- an unknown field whose name is ~600 bytes of multibyte text ----

# Repeated to about 600 bytes; "KEY is not a known field" is cut at 511 bytes, inside a
# character for each of these (2-, 3-, 4-byte characters, and a mix).
WIDE = {"2-byte": "\u00e9", "3-byte": "\u20ac", "4-byte": "\U0001F600",
        "mixed": "\u00e9\u20ac\U0001F600"}


def unknown_field_request(service, stack, admin_token, key):
    """(service object, method, path, headers, body) of a request whose body is refused only
    for the unknown field key."""
    if service == "user":
        return stack.user, "POST", "/auth/refresh", {}, {"refresh_token": "x", key: 1}
    if service == "room":
        return stack.room, "POST", "/rooms", bearer(admin_token), {key: 1}
    return stack.reservation, "POST", "/reservations", bearer(admin_token), {key: 1}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("wide", WIDE, ids=list(WIDE))
def test_long_multibyte_unknown_field_is_named_in_a_json_error(stack, admin_token, service,
                                                               wide):
    char = WIDE[wide]
    key = char * (600 // len(char.encode()))
    assert 590 <= len(key.encode()) <= 600
    svc, method, path, headers, body = unknown_field_request(service, stack, admin_token, key)
    rid = request_id()
    r = requests.request(method, svc.url + path, json=body,
                         headers={**headers, "X-Request-ID": rid}, timeout=15)
    err = assert_error(r, 422, "validation_failed", detail=key)
    assert err["details"][key] == "is not a known field", err
    # The message names the field as far as it fits, cut after a whole character.
    message, full = err["message"], f"{key} is not a known field"
    assert len(message.encode()) <= MESSAGE_MAX, message
    assert message.endswith(ELLIPSIS), message
    assert full.startswith(message[:-1]), message
    assert len(message[:-1].encode()) > MESSAGE_MAX - 3 - 4, message
    assert_access_line(svc, rid, method, path, 422)


# ---- paths that are not UTF-8 once decoded ----

# Percent-encoded request targets whose decoded bytes are ill-formed UTF-8: a stray byte, a bad
# second byte, an unfinished 3-byte character, an overlong form, a surrogate, a code point above
# U+10FFFF, a stray continuation byte.
BAD_PATHS = {"ff": "/%FF", "room-id-ff": "/rooms/%FF", "users-id-c328": "/users/%C3%28",
             "reservations-e282": "/reservations/%E2%82", "overlong": "/%C0%AF",
             "surrogate": "/reservations/%ED%A0%80", "above-max": "/%F4%90%80%80",
             "continuation": "/a%80b"}


def decoded(target):
    """The decoded path as the log must show it: ill-formed bytes replaced by U+FFFD."""
    from urllib.parse import unquote_to_bytes
    return unquote_to_bytes(target).decode("utf-8", "replace")


def service_of(stack, name):
    return {"user": stack.user, "room": stack.room, "reservation": stack.reservation}[name]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("name", BAD_PATHS, ids=list(BAD_PATHS))
def test_path_that_is_not_utf8_gets_a_json_error_and_a_log_line(stack, admin_token, service,
                                                                 name):
    svc, target, rid = service_of(stack, service), BAD_PATHS[name], request_id()
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=15)
    try:
        conn.request("GET", target, headers={**bearer(admin_token), "X-Request-ID": rid})
        resp = conn.getresponse()
        status, body = resp.status, resp.read()
        assert resp.getheader("Content-Type", "").startswith("application/json")
        assert resp.getheader("X-Request-ID") == rid
    finally:
        conn.close()
    assert status in (400, 404, 405), (status, body)
    err = json.loads(body.decode("utf-8"))
    assert err["error"] is True and err["status_code"] == status, err
    assert err["request_id"] == rid, err
    assert_access_line(svc, rid, "GET", decoded(target), status)


@pytest.mark.parametrize("service", SERVICES)
def test_raw_bytes_in_the_request_target_are_a_json_400(stack, admin_token, service):
    """The same bytes sent unencoded in the request line: civetweb refuses the request line
    itself (before the dispatcher, so without an access line), in the standard JSON shape."""
    svc = service_of(stack, service)
    request = (b"GET /rooms/\xff\xfe/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
               b"Authorization: Bearer " + admin_token.encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", svc.port), timeout=15) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), data
    err = json.loads(body.decode("utf-8"))
    assert err["error"] is True and err["status_code"] == 400, err
