import pytest

from harness import Stack, bearer, login


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    try:
        s.start()
        yield s
    finally:
        s.stop()
        reports = {svc.log_path: svc.sanitizer_reports() for svc in s.services}
        bad = {path: r for path, r in reports.items() if r}
        if not bad:
            s.cleanup()
        else:
            print(f"sanitizer reports in {bad}; logs kept in {s.workdir}")
    assert not bad, f"sanitizer reports: {bad}"


@pytest.fixture(scope="session")
def user_url(stack):
    return stack.user.url


@pytest.fixture(scope="session")
def room_url(stack):
    return stack.room.url


@pytest.fixture(scope="session")
def res_url(stack):
    return stack.reservation.url


@pytest.fixture(scope="session")
def gateway_url(stack):
    return stack.gateway.url


@pytest.fixture(scope="session")
def admin(stack):
    """Tokens of the bootstrap admin (signed in through the real flow)."""
    r = login(stack.user.url, stack.ADMIN_EMAIL)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def admin_headers(admin):
    return bearer(admin["access_token"])


@pytest.fixture()
def employee(stack, request):
    """A fresh employee signed in through the real flow, unique per test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-").lower()[:40]
    r = login(stack.user.url, f"emp-{name}@example.com")
    assert r.status_code == 200, r.text
    return r.json()
