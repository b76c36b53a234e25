"""Operational endpoints, the operator command, configuration errors and SIGTERM
(docs/operations.md)."""
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from harness import BIN_DIR, assert_error, bearer, decode_jwt_payload, operator_token, wait_until

# ---- endpoints ----

def test_health(user_url):
    r = requests.get(f"{user_url}/health")
    assert r.status_code == 200, r.text
    body = r.json()
    # "degraded" (still 200) when a soft dependency such as Kafka is missing in this stack.
    assert body["status"] in ("ok", "degraded") and body["service"] == "user-service"
    for name, check in body["checks"].items():
        assert check["status"] in ("ok", "degraded"), (name, check)
        assert isinstance(check["latency_ms"], (int, float)) and check["latency_ms"] >= 0
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["identity_provider"]["status"] == "ok"


def test_live_and_ready(user_url):
    r = requests.get(f"{user_url}/live")
    assert r.status_code == 200 and r.json()["status"] == "alive"
    r = requests.get(f"{user_url}/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_operational_endpoints_need_no_token(user_url):
    for path in ("/health", "/live", "/ready", "/metrics"):
        r = requests.get(f"{user_url}{path}", headers={"Authorization": "Bearer garbage"})
        assert r.status_code == 200, (path, r.text)


def test_metrics(user_url, employee):
    h = bearer(employee["access_token"])
    requests.get(f"{user_url}/users/profile", headers=h)
    requests.get(f"{user_url}/admin/users/12345", headers=h)
    r = requests.get(f"{user_url}/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    assert "# TYPE http_requests_total counter" in text
    m = re.search(r'^http_requests_total\{route="/users/profile",method="GET",status="200"\} '
                  r'(\d+)$', text, re.M)
    assert m and int(m.group(1)) >= 1, text
    # Requests are labelled by route template, not by concrete path.
    assert 'route="/admin/users/{id}",method="GET",status="403"' in text
    assert "/admin/users/12345" not in text
    assert "# TYPE outbox_backlog gauge" in text
    assert re.search(r"^outbox_backlog \d+(\.\d+)?$", text, re.M), text
    assert "http_request_duration_seconds_bucket" in text


def test_metrics_count_increases(user_url, employee):
    h = bearer(employee["access_token"])
    pat = re.compile(r'^http_requests_total\{route="/users/me",method="GET",status="200"\} (\d+)$',
                     re.M)

    def count():
        m = pat.search(requests.get(f"{user_url}/metrics").text)
        return int(m.group(1)) if m else 0
    before = count()
    for _ in range(3):
        requests.get(f"{user_url}/users/me", headers=h)
    assert count() == before + 3


# ---- operator command ----

def test_token_command(stack, user_url):
    out = stack.user.run("token", "--email", "ops.robot@example.com", "--role", "admin",
                         "--name", "Ops Robot")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    claims = decode_jwt_payload(token)
    assert claims["role"] == "admin" and claims["email"] == "ops.robot@example.com"
    assert claims["iss"] == "meeting-rooms" and claims["name"] == "Ops Robot"
    r = requests.get(f"{user_url}/admin/users", headers=bearer(token))
    assert r.status_code == 200, r.text
    me = requests.get(f"{user_url}/users/me", headers=bearer(token)).json()
    assert me["id"] == int(claims["sub"]) and me["role"] == "admin" and me["name"] == "Ops Robot"
    # Running it again updates the same user.
    token2, uid2 = operator_token(stack.user, "ops.robot@example.com", role="employee")
    assert uid2 == int(claims["sub"])
    assert decode_jwt_payload(token2)["role"] == "employee"
    r = requests.get(f"{user_url}/admin/users", headers=bearer(token2))
    assert_error(r, 403, "forbidden")


def test_token_command_accepts_200_character_names(stack):
    name = "é" * 150
    token, _ = operator_token(stack.user, "ops.accent@example.com", name=name)
    assert decode_jwt_payload(token)["name"] == name


def test_token_command_default_role_is_employee(stack):
    token, _ = operator_token(stack.user, "ops.default@example.com")
    assert decode_jwt_payload(token)["role"] == "employee"


@pytest.mark.parametrize("args", [
    ["token", "--email", "x@example.com", "--role", "root"],
    ["token"],
    ["token", "--role", "admin"],
    ["token", "--email"],
    ["token", "--email", "not-an-email"],
    ["token", "--email", "x@example.com", "extra"],
    ["token", "--email", "x@example.com", "--bogus"],
    ["frobnicate"],
], ids=["bad-role", "nothing", "no-email", "email-without-value", "bad-email", "extra-arg",
        "unknown-option", "unknown-command"])
def test_token_command_usage_errors_exit_2(stack, args):
    out = stack.user.run(*args)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stdout == ""
    assert "usage" in out.stderr


# ---- configuration ----

def run_daemon(stack, tag, **env_changes):
    """Starts the daemon with a modified environment and waits for it to exit (or 10 s)."""
    svc = stack.user_service(tag=tag)
    env = dict(svc.env)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return subprocess.run([os.path.join(BIN_DIR, "user-service")], env=env,
                          capture_output=True, text=True, timeout=10)


def config_error_line(out):
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_short_jwt_secret_exits_2_without_leaking_it(stack):
    secret = "Sh0rtSecr3"  # 10 bytes
    line = config_error_line(run_daemon(stack, "cfg-secret", JWT_SECRET_KEY=secret))
    assert "JWT_SECRET_KEY" in line and secret not in line


def test_missing_jwt_secret_exits_2(stack):
    line = config_error_line(run_daemon(stack, "cfg-nosecret", JWT_SECRET_KEY=None))
    assert "JWT_SECRET_KEY" in line


@pytest.mark.parametrize("port", ["abc", "0", "70000", "80x"])
def test_bad_port_exits_2(stack, port):
    line = config_error_line(run_daemon(stack, f"cfg-port-{port}", PORT=port))
    assert "PORT" in line


def test_missing_database_url_exits_2(stack):
    line = config_error_line(run_daemon(stack, "cfg-nodb", DATABASE_URL=None))
    assert "DATABASE_URL" in line


@pytest.mark.parametrize("var,value", [("LOG_LEVEL", "loud"), ("NUM_THREADS", "0"),
                                       ("MAX_BODY_BYTES", "lots"), ("JWT_ACCESS_TTL_SECONDS", "-5"),
                                       ("OIDC_ALLOW_HTTP_LOOPBACK", "maybe"),
                                       ("HEALTH_CHECK_INTERVAL_MS", "999"),
                                       ("DRAIN_DELAY_MS", "-1"),
                                       ("TRUSTED_GATEWAYS", "127.0.0.1, 10.0.0.0/33"),
                                       ("TRUSTED_GATEWAYS", "gateway.local")])
def test_other_invalid_settings_exit_2(stack, var, value):
    line = config_error_line(run_daemon(stack, f"cfg-{var.lower()}", **{var: value}))
    assert var in line


def test_removed_trust_forwarded_for_exits_2(stack):
    """TRUST_FORWARDED_FOR=true believed X-Forwarded-For from anyone; it is refused rather than
    ignored (which would put every client behind the gateway into one bucket)."""
    line = config_error_line(run_daemon(stack, "cfg-trust-xff", TRUST_FORWARDED_FOR="true"))
    assert "TRUST_FORWARDED_FOR" in line and "TRUSTED_GATEWAYS" in line


def test_google_client_id_without_secret_exits_2(stack):
    line = config_error_line(run_daemon(stack, "cfg-google", GOOGLE_CLIENT_SECRET=None))
    assert "GOOGLE_CLIENT_SECRET" in line


def test_google_client_id_without_redirect_uri_exits_2(stack):
    line = config_error_line(run_daemon(stack, "cfg-google-redirect", GOOGLE_REDIRECT_URI=""))
    assert line == "user-service: GOOGLE_REDIRECT_URI is required when GOOGLE_CLIENT_ID is set"


# ---- shutdown ----

def test_sigterm_exits_0_within_10_seconds(stack):
    svc = stack.user_service(tag="sigterm")
    svc.start()
    assert requests.get(f"{svc.url}/health").status_code == 200
    t0 = time.monotonic()
    rc = svc.stop(signal.SIGTERM, timeout=12)
    elapsed = time.monotonic() - t0
    assert rc == 0, svc.log_tail()
    assert elapsed < 10, elapsed
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{svc.url}/live", timeout=2)


def test_drain_delay_keeps_serving_after_sigterm(stack):
    """DRAIN_DELAY_MS: after SIGTERM /ready answers 503 at once (the load balancer stops sending)
    while requests, on new connections too, are still served for the delay; then the usual
    stop, exit 0."""
    svc = stack.user_service(tag="drain", DRAIN_DELAY_MS="5000")
    svc.start()
    token, _ = operator_token(svc, "ops.drain@example.com")
    h = {**bearer(token), "Connection": "close"}
    t0 = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)

    def ready_503():
        r = requests.get(f"{svc.url}/ready", headers={"Connection": "close"}, timeout=2)
        return (r,) if r.status_code == 503 else None  # a 503 Response is falsy itself
    (r,) = wait_until(ready_503, timeout=3, interval=0.02, what="/ready 503 after SIGTERM")
    assert_error(r, 503, "unavailable")
    r = requests.get(f"{svc.url}/users/profile", headers=h, timeout=2)
    assert r.status_code == 200, r.text
    assert requests.get(f"{svc.url}/live", headers=h, timeout=2).status_code == 200
    # A client asking to keep the connection is told it closes: a gateway then keeps none that
    # the stop could close under the next request it sends.
    r = requests.get(f"{svc.url}/live", timeout=2)
    assert r.status_code == 200 and r.headers.get("Connection") == "close", r.headers
    # Five requests on new connections to a sanitizer build: a wide window for a loaded machine.
    assert time.monotonic() - t0 < 4.5, "the checks above must fall inside the drain window"
    rc = svc.proc.wait(timeout=20)
    elapsed = time.monotonic() - t0
    assert rc == 0, svc.log_tail()
    assert 5.0 <= elapsed < 15, elapsed
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{svc.url}/live", timeout=2)
    assert "draining" in svc.log_text()


def test_sigint_exits_0(stack):
    svc = stack.user_service(tag="sigint")
    svc.start()
    assert svc.stop(signal.SIGINT, timeout=12) == 0, svc.log_tail()
