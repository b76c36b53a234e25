"""Configuration errors of reservation-service (docs/operations.md#configuration): a rule between
two variables is checked at start, and a violation ends the process with exit 2 and one line
naming both variables."""
import os
import subprocess

import pytest

from harness import BIN_DIR


def run_daemon(stack, tag, **env_changes):
    """Runs reservation-service with a modified environment until it exits (or 10 s)."""
    env = dict(stack.reservation_service(tag=tag).env)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return subprocess.run([os.path.join(BIN_DIR, "reservation-service")], env=env,
                          capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("minimum,maximum", [("120", "60"), (None, "4")],
                         ids=["both-set", "max-below-default-min"])
def test_min_duration_above_max_exits_2(stack, minimum, maximum):
    out = run_daemon(stack, f"cfg-duration-{maximum}", MIN_DURATION_MINUTES=minimum,
                     MAX_DURATION_MINUTES=maximum)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert lines == ["reservation-service: MIN_DURATION_MINUTES must not exceed "
                     "MAX_DURATION_MINUTES"], out.stderr


def test_equal_min_and_max_duration_start(stack):
    svc = stack.reservation_service(tag="cfg-duration-equal", MIN_DURATION_MINUTES="60",
                                    MAX_DURATION_MINUTES="60")
    svc.start()
    assert svc.stop() == 0, svc.log_tail()


@pytest.mark.parametrize("changes,message", [
    ({"SMTP_FROM": None}, "SMTP_FROM is required when SMTP_URL is set"),
    ({"SMTP_PASSWORD": "hunter2-secret"}, "SMTP_USER is required when SMTP_PASSWORD is set"),
    ({"SMTP_URL": "http://mail.example.com"}, "SMTP_URL must be smtp://"),
    ({"SMTP_URL": "smtp://user:hunter2-secret@mail.example.com"}, "SMTP_URL must be smtp://"),
    ({"SMTP_FROM": "Rooms <rooms@example.com>"}, "SMTP_FROM must be a plain e-mail address"),
    ({"MAIL_RETRY_HOURS": "0"}, "MAIL_RETRY_HOURS"),
    # A valid address whose 195-character domain leaves no room for a Message-ID's left side.
    ({"SMTP_FROM": "rooms@" + ".".join(["d" * 63] * 3) + ".example"},
     "SMTP_FROM must be a plain e-mail address (name@example.com) with a domain of at most 188"),
], ids=["from-missing", "password-without-user", "not-smtp", "credentials-in-url",
        "from-with-name", "retry-zero", "from-domain-too-long"])
def test_mail_configuration_errors_exit_2(stack, changes, message):
    out = run_daemon(stack, "cfg-mail", **{"SMTP_URL": "smtp://127.0.0.1:2525",
                                           "SMTP_FROM": "rooms@example.com", **changes})
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr, out.stderr
    assert "hunter2" not in out.stderr
