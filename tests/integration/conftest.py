import shutil
import tempfile

import pytest

from browser import browser, browsers, web_url  # noqa: F401 - the browser tests' fixtures
from harness import Mailpit, RoomPool, Stack, bearer, login, operator_token


@pytest.fixture(scope="session")
def stack(mailpit):
    """The whole suite; reservation-service sends its invitations to the session's Mailpit
    (tests that do not read mail ignore them)."""
    s = Stack(mailpit=mailpit)
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
def mailpit():
    """Mailpit (harness.Mailpit) for the session, on its own: tests that only send mail do not
    start the rest of the stack."""
    workdir = tempfile.mkdtemp(prefix="mr-mail-", dir="/tmp")
    m = Mailpit(workdir)
    try:
        m.start()
        yield m
    finally:
        m.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture()
def mailbox(mailpit):
    """The session's Mailpit, emptied for this test, without the invitations reservation-service
    may still be sending for earlier tests (Stack.MAIL_FROM)."""
    mailpit.delete_all()
    mailpit.hidden_senders = {Stack.MAIL_FROM}
    yield mailpit
    mailpit.hidden_senders = set()


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


# ---- shared by the reservation API modules (test_res_api_*.py) ----

@pytest.fixture(scope="module")
def users(stack, request):
    """Per module: employees alice and bob and an admin root, as (headers, user id)."""
    prefix = request.module.__name__.replace("test_", "").replace("_", "-")
    out = {}
    for name, role in (("alice", None), ("bob", None), ("root", "admin")):
        token, uid = operator_token(stack.user, f"{prefix}-{name}@example.com", role=role)
        out[name] = (bearer(token), uid)
    return out


@pytest.fixture(scope="module")
def alice(users):
    return users["alice"][0]


@pytest.fixture(scope="module")
def bob(users):
    return users["bob"][0]


@pytest.fixture(scope="module")
def root(users):
    return users["root"][0]


@pytest.fixture(scope="module")
def pool(room_url, res_url, admin_headers, request):
    """Rooms reservation-service already knows; a module sets POOL_BATCH to its appetite."""
    return RoomPool(room_url, res_url, admin_headers,
                    batch=getattr(request.module, "POOL_BATCH", 12))


@pytest.fixture()
def room(pool):
    """A room of its own for a test that books."""
    return pool.take()
