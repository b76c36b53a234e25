"""The end-to-end flows through the nginx gateway, next to the same flows against the services
directly: the gateway routes by path prefix, passes paths and bodies unchanged, never redirects,
carries X-Request-ID, and answers for itself in the standard error shape."""
import uuid

import pytest
import requests

from harness import (
    bearer,
    book,
    create_room,
    login,
    operator_token,
    room_bookable,
    shift,
    utc_at,
    wait_until,
)


@pytest.fixture(scope="module")
def tokens(stack):
    admin = operator_token(stack.user, f"gw-admin-{uuid.uuid4().hex[:6]}@example.com", role="admin")
    emp = operator_token(stack.user, f"gw-emp-{uuid.uuid4().hex[:6]}@example.com")
    return bearer(admin[0]), bearer(emp[0])


def bases(stack, via):
    """(user, room, reservation) base URLs: all the gateway, or each service directly."""
    if via == "gateway":
        return (stack.gateway.url,) * 3
    return stack.user.url, stack.room.url, stack.reservation.url


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_sign_in_and_profile(stack, via):
    user_url, _, _ = bases(stack, via)
    r = login(user_url, f"gw-{via}-{uuid.uuid4().hex[:6]}@example.com")
    assert r.status_code == 200, r.text
    tokens = r.json()
    r = requests.get(f"{user_url}/users/profile", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.json()["id"] == tokens["user"]["id"]
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200 and r.json()["refresh_token"] != tokens["refresh_token"]


@pytest.mark.parametrize("via", ["direct", "gateway"])
def test_room_and_booking_flow(stack, tokens, via):
    admin, emp = tokens
    user_url, room_url, res_url = bases(stack, via)
    room = create_room(room_url, admin, time_zone="Europe/Berlin")
    r = requests.get(f"{room_url}/rooms/{room['id']}/", headers=emp, allow_redirects=False)
    assert r.status_code == 200 and r.json() == room
    wait_until(lambda: room_bookable(res_url, emp, room["id"]), timeout=30, what="room bookable")
    start = utc_at(3, 9)
    r = book(res_url, emp, room["id"], start, shift(start, hours=1), purpose="flow")
    assert r.status_code == 201, r.text
    reservation = r.json()
    assert r.headers["Location"] == f"/reservations/{reservation['id']}"
    r = book(res_url, admin, room["id"], shift(start, minutes=30), shift(start, hours=2))
    assert r.status_code == 409
    assert r.json()["details"]["conflicts"] == [{"start_time": start,
                                                 "end_time": shift(start, hours=1)}]
    r = requests.get(f"{res_url}/availability",
                     params={"room_id": room["id"], "date": start[:10]}, headers=emp)
    assert r.status_code == 200
    assert r.json()["busy"] == [{"start_time": start, "end_time": shift(start, hours=1)}]
    r = requests.delete(f"{res_url}/reservations/{reservation['id']}", headers=emp)
    assert r.status_code == 204
    r = requests.get(f"{res_url}/reservations/{reservation['id']}", headers=emp)
    assert r.json()["status"] == "cancelled"


@pytest.mark.parametrize("path", ["/rooms", "/rooms/", "/reservations/", "/users/profile/",
                                  "/admin/users/", "/availability/rooms/1"])
def test_gateway_never_redirects_and_passes_the_path(gateway_url, tokens, path):
    admin, _ = tokens
    r = requests.get(f"{gateway_url}{path}", headers=admin, allow_redirects=False)
    assert r.status_code in (200, 400), (path, r.status_code, r.text)
    assert "Location" not in r.headers


def test_gateway_request_ids(gateway_url, tokens):
    admin, _ = tokens
    r = requests.get(f"{gateway_url}/rooms/999999999",
                     headers={**admin, "X-Request-ID": "gw-abc.1"})
    assert r.status_code == 404
    assert r.headers["X-Request-ID"] == "gw-abc.1"
    assert r.json()["request_id"] == "gw-abc.1"            # the service saw the same id
    r = requests.get(f"{gateway_url}/rooms/999999999", headers=admin)
    rid = r.headers["X-Request-ID"]
    assert 1 <= len(rid) <= 64 and r.json()["request_id"] == rid
    assert len(r.headers.get_all("X-Request-ID") if hasattr(r.headers, "get_all") else [rid]) == 1
    r = requests.get(f"{gateway_url}/rooms", headers={**admin, "X-Request-ID": "bad id!"})
    assert r.headers["X-Request-ID"] != "bad id!"


def test_gateway_own_errors_are_json(gateway_url):
    r = requests.get(f"{gateway_url}/nowhere")
    assert r.status_code == 404
    body = r.json()
    assert body["error"] is True and body["code"] == "not_found" and body["status_code"] == 404
    assert body["request_id"] == r.headers["X-Request-ID"]
    r = requests.post(f"{gateway_url}/rooms", data=b"x" * 70000,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    r = requests.get(f"{gateway_url}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_gateway_answers_502_in_json_when_a_service_is_down(stack, tokens):
    admin, _ = tokens
    svc = stack.room
    assert svc.stop() == 0
    try:
        r = requests.get(f"{stack.gateway.url}/rooms", headers=admin)
        assert r.status_code == 502
        assert r.json()["code"] == "bad_gateway"
    finally:
        svc.start()
    assert requests.get(f"{stack.gateway.url}/rooms", headers=admin).status_code == 200
