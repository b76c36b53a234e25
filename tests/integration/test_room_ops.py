"""Operational endpoints of room-service (docs/operations.md#probes): /ready, /live, /health,
/metrics, request ids."""
import re

import requests

from harness import assert_error, create_room, outbox_unsent, wait_until


def test_ready_live_and_health(room_url):
    for path in ("/ready", "/live", "/ready/"):
        r = requests.get(f"{room_url}{path}", allow_redirects=False)
        assert r.status_code == 200, (path, r.text)
    r = requests.get(f"{room_url}/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["service"] == "room-service", body
    assert set(body["checks"]) == {"database", "kafka"}, body
    for check in body["checks"].values():
        assert check["status"] == "ok" and isinstance(check["latency_ms"], (int, float)), body


def test_metrics_have_route_templates_and_outbox_backlog(stack, room_url, admin_headers):
    room = create_room(room_url, admin_headers)
    requests.get(f"{room_url}/rooms/{room['id']}", headers=admin_headers)
    requests.get(f"{room_url}/rooms/987654321", headers=admin_headers)
    r = requests.get(f"{room_url}/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    assert "# TYPE http_requests_total counter" in text
    m = re.search(r'^http_requests_total\{route="/rooms/\{id\}",method="GET",status="200"\} '
                  r'(\d+)$', text, re.M)
    assert m and int(m.group(1)) >= 1, text
    assert 'http_requests_total{route="/rooms/{id}",method="GET",status="404"}' in text
    assert 'http_requests_total{route="/rooms",method="POST",status="201"}' in text
    assert f"/rooms/{room['id']}" not in text and "/rooms/987654321" not in text
    assert "# TYPE outbox_backlog gauge" in text
    assert re.search(r"^outbox_backlog \d+(\.\d+)?$", text, re.M), text
    # The age is read from the database (-1 when it cannot be): never negative here.
    assert "# TYPE outbox_oldest_pending_age_seconds gauge" in text
    assert re.search(r"^outbox_oldest_pending_age_seconds \d+(\.\d+)?$", text, re.M), text
    assert 'http_request_duration_seconds_bucket{route="/rooms/{id}",method="GET"' in text


def test_outbox_backlog_returns_to_zero(stack, room_url, admin_headers):
    create_room(room_url, admin_headers)
    wait_until(lambda: outbox_unsent(stack.pg) == 0, timeout=30, interval=0.1,
               what="an empty outbox")

    def backlog():
        text = requests.get(f"{room_url}/metrics").text
        return float(re.search(r"^outbox_backlog (\S+)$", text, re.M).group(1))
    wait_until(lambda: backlog() == 0, timeout=10, what="outbox_backlog 0")


def test_request_id_is_echoed_and_in_errors(room_url, admin_headers):
    r = requests.get(f"{room_url}/rooms/abc", headers={**admin_headers, "X-Request-ID": "rid-42"})
    body = assert_error(r, 404, "not_found")
    assert r.headers["X-Request-ID"] == "rid-42" and body["request_id"] == "rid-42"
    r = requests.get(f"{room_url}/rooms", headers={**admin_headers, "X-Request-ID": "bad id!"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] not in ("", "bad id!")


def test_unknown_path_is_404(room_url, admin_headers):
    assert_error(requests.get(f"{room_url}/roomz", headers=admin_headers), 404, "not_found")
    assert_error(requests.get(f"{room_url}/rooms/1/extra", headers=admin_headers), 404,
                 "not_found")
