"""Issue 16 item 2: sign-in in the browser (docs/api.md, "Sign-in in the browser").

GET /auth/google/login?return_to=<path> starts a web sign-in: its callback answers 303 to that
path (of this site only) with the refresh token in an HttpOnly, SameSite=Strict cookie scoped to
/auth, and nothing in the body or the URL; a failure after the state was taken goes to the app's
sign-in page with the error's code.  POST /auth/refresh and /auth/logout take the cookie in place
of a body token when the request carries X-Requested-With: meeting-rooms and is not reported
cross-site by Sec-Fetch-Site.  Sign-ins without return_to and body tokens are unchanged.

The requests.Session of each test is the browser: it keeps the sign-in and refresh cookies and
sends each back on the paths its attributes allow."""
import concurrent.futures
import hashlib
import html.parser
import json
import urllib.parse

import pytest
import requests

from harness import Gateway, assert_error, bearer, db_exec, login, query_of

CSRF = {"X-Requested-With": "meeting-rooms"}
REFRESH_TTL = "2592000"  # JWT_REFRESH_TTL_SECONDS's default
TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def set_cookies(r):
    """Every Set-Cookie of a response as {name: (value, {attribute: value})}, attribute names
    lower-cased."""
    out = {}
    for raw in r.raw.headers.getlist("Set-Cookie"):
        first, *attrs = [part.strip() for part in raw.split(";")]
        name, _, value = first.partition("=")
        parsed = {}
        for a in attrs:
            k, _, v = a.partition("=")
            parsed[k.lower()] = v
        assert name not in out, r.raw.headers.getlist("Set-Cookie")
        out[name] = (value, parsed)
    return out


def assert_refresh_cookie(r, name="mr_refresh", secure=False):
    """The response sets the refresh cookie with its attributes; returns its value."""
    value, attrs = set_cookies(r)[name]
    assert len(value) == 43 and set(value) <= TOKEN_CHARS, value
    expected = {"max-age": REFRESH_TTL, "path": "/auth", "httponly": "", "samesite": "Strict"}
    if secure:
        expected["secure"] = ""
    assert attrs == expected, attrs
    return value


def assert_refresh_cleared(r, name="mr_refresh"):
    value, attrs = set_cookies(r)[name]
    assert value == "" and attrs == {"max-age": "0", "path": "/auth", "httponly": "",
                                     "samesite": "Strict"}, (value, attrs)


def provider_redirect(base, browser, email, return_to, **params):
    """login (with return_to) → provider; returns (login response, the provider's redirect to
    the callback)."""
    query = {"login_hint": email, **params}
    if return_to is not None:
        query["return_to"] = return_to
    r = browser.get(f"{base}/auth/google/login", params=query, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    p = requests.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert p.status_code == 302, p.text
    return r, p.headers["Location"]


def web_sign_in(base, email, return_to="/app/find", browser=None):
    """A web sign-in to its callback's answer; returns (browser, callback response)."""
    browser = browser or requests.Session()
    _, callback = provider_redirect(base, browser, email, return_to)
    return browser, browser.get(callback, allow_redirects=False, timeout=10)


def signed_in(base, email):
    """A browser signed in on the web; returns (browser, refresh cookie value)."""
    browser, r = web_sign_in(base, email)
    assert r.status_code == 303, r.text
    return browser, assert_refresh_cookie(r)


def cookie_refresh(base, browser, headers=CSRF, **kw):
    return browser.post(f"{base}/auth/refresh", headers=headers, timeout=10, **kw)


def sql(stack, query, *args):
    return db_exec(stack.pg, "user_db", query, *args)


# ---- starting a web sign-in ----

@pytest.mark.parametrize("bad", [
    "//evil.com", "/\\evil.com", "https://evil.com", "javascript:alert(1)", "app/find", "",
    "/app\x01find", "/app\r\nSet-Cookie: x=1", "/app find", "/app#top", "/caf\u00e9",
    "/" + "a" * 512,
    # A browser resolves dot segments (also written %2e) and would land on //evil.com.
    "/..//evil.com", "/.//evil.com", "/%2e%2e//evil.com", "/%2E%2e/app", "/app/./find",
    "/app//find", "/app/find?next=//evil.com",
], ids=["scheme-relative", "backslash", "absolute", "javascript", "relative", "empty",
        "control", "crlf", "blank", "fragment", "non-ascii", "513-chars",
        "dotdot-slashes", "dot-slashes", "encoded-dotdot", "encoded-dotdot-case", "dot-segment",
        "double-slash", "double-slash-in-query"])
def test_return_to_must_be_a_path_of_this_site(user_url, bad):
    r = requests.get(f"{user_url}/auth/google/login",
                     params={"login_hint": "web.bad@example.com", "return_to": bad},
                     allow_redirects=False, timeout=10)
    assert_error(r, 400, "bad_request", detail="return_to")
    assert "return_to" in r.json()["message"]
    assert not r.raw.headers.getlist("Set-Cookie"), r.headers  # no sign-in was started


def test_return_to_with_dots_inside_segments_is_taken(user_url):
    """Only whole "." and ".." segments are refused; dots in names, and in the query, are fine."""
    browser = requests.Session()
    return_to = "/app/find.v2/...?q=..&r=."
    _, callback = provider_redirect(user_url, browser, "web.dots@example.com", return_to)
    r = browser.get(callback, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == return_to, r.text


def test_return_to_of_512_characters_is_taken(user_url):
    longest = "/" + "a" * 511
    browser = requests.Session()
    _, callback = provider_redirect(user_url, browser, "web.longest@example.com", longest)
    r = browser.get(callback, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == longest, r.text


# ---- the callback of a web sign-in ----

def test_web_sign_in_returns_to_the_app_with_the_refresh_cookie(user_url):
    return_to = "/app/grid?date=2026-12-01&building=B%201"
    browser, r = web_sign_in(user_url, "web.alice@example.com", return_to)
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == return_to
    assert r.content == b""
    assert r.headers["Cache-Control"] == "no-store"
    cookies = set_cookies(r)
    assert set(cookies) == {"mr_login", "mr_refresh"}, cookies
    assert cookies["mr_login"][0] == "" and cookies["mr_login"][1]["max-age"] == "0"
    value = assert_refresh_cookie(r)
    # The token travels in the cookie only: not in the Location, not in any other header.
    assert value not in r.headers["Location"]
    assert all(value not in v for k, v in r.headers.items() if k.lower() != "set-cookie")

    # The app's first call: the cookie alone gives an access token, and no refresh token.
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}, body
    assert body["user"]["email"] == "web.alice@example.com"
    rotated = assert_refresh_cookie(r)
    assert rotated != value
    assert rotated not in r.text
    me = requests.get(f"{user_url}/users/me", headers=bearer(body["access_token"]), timeout=10)
    assert me.status_code == 200 and me.json()["email"] == "web.alice@example.com"
    # The browser keeps the rotated cookie, and refreshes again with it.
    assert browser.cookies.get("mr_refresh") == rotated
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200, r.text
    assert assert_refresh_cookie(r) not in (value, rotated)


def test_sign_in_without_return_to_still_answers_tokens_in_json(user_url):
    browser = requests.Session()
    r = login(user_url, "web.api.client@example.com", session=browser)
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] and r.json()["access_token"]
    assert set(set_cookies(r)) == {"mr_login"}, r.headers  # only the sign-in cookie, cleared
    assert "mr_refresh" not in browser.cookies


def test_refused_web_sign_in_goes_to_the_sign_in_page(user_url):
    # The provider says no (local part "denied"): the state is taken, the app shows the error.
    browser, r = web_sign_in(user_url, "denied.web@example.com")
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == "/app/signin?error=unauthorized"
    assert r.content == b""
    cookies = set_cookies(r)
    assert set(cookies) == {"mr_login"} and cookies["mr_login"][0] == "", cookies
    assert "mr_refresh" not in browser.cookies


def test_web_sign_in_of_an_unverified_address_goes_to_the_sign_in_page(user_url):
    browser, r = web_sign_in(user_url, "unverified.web@example.com")
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == "/app/signin?error=forbidden"
    assert "mr_refresh" not in set_cookies(r)


def test_web_sign_in_of_a_disabled_account_goes_to_the_sign_in_page(user_url, admin_headers):
    email = "web.disabled@example.com"
    r = login(user_url, email)
    assert r.status_code == 200, r.text
    uid = r.json()["user"]["id"]
    r = requests.put(f"{user_url}/admin/users/{uid}", json={"disabled": True},
                     headers=admin_headers, timeout=10)
    assert r.status_code == 200, r.text
    browser, r = web_sign_in(user_url, email)
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == "/app/signin?error=forbidden"
    assert "mr_refresh" not in set_cookies(r) and "mr_refresh" not in browser.cookies


def test_callback_refusals_before_the_state_is_taken_stay_json(user_url):
    # Another browser's callback URL of a web sign-in: the state is not this browser's to take.
    _, callback = provider_redirect(user_url, requests.Session(), "web.other@example.com",
                                    "/app/find")
    r = requests.get(callback, allow_redirects=False, timeout=10)
    assert_error(r, 403, "forbidden")
    r = requests.get(f"{user_url}/auth/google/callback", params={"state": "nope", "code": "x"},
                     allow_redirects=False, timeout=10)
    assert_error(r, 400, "bad_request", detail="state")


# ---- errors a person's browser lands on (review 16b M2) ----

# What a browser sends when a person follows a link or a redirect to a page (a top-level
# navigation); a script's fetch says mode "cors" and destination "empty", curl says nothing.
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Site": "same-origin"}


def assert_signin_page(r, code, empty=True):
    """The app's sign-in page with the error's code, and nothing else: no body (nginx's own
    redirects carry its small HTML page, empty=False), no cookie but a cleared sign-in cookie."""
    assert r.status_code == 303, (r.status_code, r.text)
    assert r.headers["Location"] == f"/app/signin?error={code}", r.headers
    assert r.content == b"" or not empty, r.content
    assert all(value == "" for value, _ in set_cookies(r).values()), r.headers


@pytest.mark.parametrize("bad", ["//evil.com", "https://evil.com", "/app\r\nSet-Cookie: x=1",
                                 "/%2e%2e//evil.com", "/" + "a" * 600],
                         ids=["scheme-relative", "absolute", "crlf", "encoded-dotdot", "long"])
def test_a_navigation_with_a_bad_return_to_goes_to_the_sign_in_page(user_url, bad):
    # Not to return_to (it is not a path of this site): to the app's page, with a fixed code.
    r = requests.get(f"{user_url}/auth/google/login", params={"return_to": bad},
                     headers=NAVIGATE, allow_redirects=False, timeout=10)
    assert_signin_page(r, "bad_request")
    assert not set_cookies(r)
    # Only a navigation: a frame or a script gets the JSON error as an API client does.
    for headers in ({**NAVIGATE, "Sec-Fetch-Dest": "iframe"},
                    {**NAVIGATE, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}):
        r = requests.get(f"{user_url}/auth/google/login", params={"return_to": bad},
                         headers=headers, allow_redirects=False, timeout=10)
        assert_error(r, 400, "bad_request", detail="return_to")


def test_a_failed_start_of_a_web_sign_in_goes_to_the_sign_in_page(user_url):
    # return_to says the sign-in is a web one, whoever asks.
    r = requests.get(f"{user_url}/auth/google/login",
                     params={"return_to": "/app/find", "login_hint": "a" * 400 + "@example.com"},
                     allow_redirects=False, timeout=10)
    assert_signin_page(r, "bad_request")
    r = requests.get(f"{user_url}/auth/google/login",
                     params={"login_hint": "a" * 400 + "@example.com"},
                     headers=NAVIGATE, allow_redirects=False, timeout=10)
    assert_error(r, 400, "bad_request", detail="login_hint")  # an API sign-in: JSON


def test_web_sign_in_without_a_provider_or_over_the_limit_goes_to_the_sign_in_page(stack):
    svc = stack.user_service(tag="web-unconfigured", GOOGLE_CLIENT_ID="",
                             RATE_LIMIT_AUTH_PER_MINUTE="3")
    svc.start()
    try:
        login_url, callback_url = (f"{svc.url}/auth/google/login",
                                   f"{svc.url}/auth/google/callback")
        web = {"return_to": "/app/find"}
        assert_signin_page(requests.get(login_url, params=web, allow_redirects=False,
                                        timeout=10), "unavailable")
        assert_error(requests.get(login_url, timeout=10), 503, "unavailable")
        assert_signin_page(requests.get(callback_url, headers=NAVIGATE, allow_redirects=False,
                                        timeout=10), "unavailable")
        # The bucket (3) is empty: the limit's answer too.
        assert_signin_page(requests.get(login_url, params=web, allow_redirects=False,
                                        timeout=10), "rate_limited")
        assert_signin_page(requests.get(callback_url, params={"state": "s", "code": "c"},
                                        headers=NAVIGATE, allow_redirects=False, timeout=10),
                           "rate_limited")
        r = requests.get(login_url, headers=NAVIGATE, allow_redirects=False, timeout=10)
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        assert_error(requests.get(callback_url, timeout=10), 429, "rate_limited")
        # Answered 303, but still seen as what they were (review 16c M3): logged at their level
        # with their status, and counted by it (the 5xx alert adds the 5xx ones).
        metrics = requests.get(f"{svc.url}/metrics", timeout=10).text
        assert 'http_redirected_errors_total{status="503"} 2' in metrics, metrics
        assert 'http_redirected_errors_total{status="429"} 2' in metrics, metrics
        assert_redirect_logged(svc, "error", 503, "unavailable")
        assert_redirect_logged(svc, "warn", 429, "rate_limited")
    finally:
        assert svc.stop() == 0


def assert_redirect_logged(svc, level, status, code):
    """svc logged a web sign-in's error answered 303 at `level`, naming its status and code."""
    lines = [json.loads(line) for line in svc.log_text().splitlines()
             if "answered with a redirect" in line]
    assert any(x.get("level") == level and f": {status} {code} (" in x.get("msg", "")
               for x in lines), lines


def test_web_sign_in_with_the_provider_away_goes_to_the_sign_in_page(stack):
    svc = stack.user_service(tag="web-no-provider",
                             GOOGLE_DISCOVERY_URL="http://127.0.0.1:9/.well-known/openid")
    svc.start()
    try:
        r = requests.get(f"{svc.url}/auth/google/login", params={"return_to": "/app/find"},
                         allow_redirects=False, timeout=30)
        assert_signin_page(r, "bad_gateway")
        r = requests.get(f"{svc.url}/auth/google/login", allow_redirects=False, timeout=30)
        assert_error(r, 502, "bad_gateway")
        metrics = requests.get(f"{svc.url}/metrics", timeout=10).text
        assert 'http_redirected_errors_total{status="502"} 1' in metrics, metrics
        assert_redirect_logged(svc, "error", 502, "bad_gateway")
    finally:
        assert svc.stop() == 0


def test_a_navigation_to_a_callback_without_its_state_goes_to_the_sign_in_page(user_url):
    """An expired or repeated callback (the provider's page left open, Back, a reload), one
    without code, one of another browser: before the state is found nothing says the sign-in
    was a web one, but a person's browser that navigated there sees the app's page."""
    callback_url = f"{user_url}/auth/google/callback"

    def navigate(params, browser=requests):
        return browser.get(callback_url, params=params, headers=NAVIGATE,
                           allow_redirects=False, timeout=10)

    assert_signin_page(navigate({"state": "expired", "code": "x"}), "bad_request")
    assert_signin_page(navigate({"state": "s"}), "bad_request")
    assert_signin_page(navigate({}), "bad_request")
    # The provider's error is carried by nothing but the fixed code.
    assert_signin_page(navigate({"state": "s", "error": "x\r\nLocation: //evil.com"}),
                       "unauthorized")
    browser = requests.Session()
    _, callback = provider_redirect(user_url, browser, "web.repeated@example.com", "/app/mine")
    r = navigate(query_of(callback))  # another browser: the state is not its to take
    assert_signin_page(r, "forbidden")
    r = navigate(query_of(callback), browser)
    assert r.status_code == 303 and r.headers["Location"] == "/app/mine", r.text
    assert_refresh_cookie(r)
    assert_signin_page(navigate(query_of(callback), browser), "bad_request")  # used
    # Without the navigation headers: JSON, as for any API client.
    r = browser.get(callback, allow_redirects=False, timeout=10)
    assert_error(r, 400, "bad_request", detail="state")


def test_the_gateway_limit_sends_a_navigation_to_the_sign_in_page(stack, tmp_path):
    # The gateway refuses before user-service sees the request: its own 429 does the same.
    gw = Gateway(str(tmp_path), name="gw-signin-limit",
                 env={"GATEWAY_AUTH_PER_MINUTE": "1", "GATEWAY_AUTH_BURST": "1"})
    gw.start(stack.user.port, stack.room.port, stack.reservation.port)
    try:
        login_url, web = f"{gw.url}/auth/google/login", {"return_to": "/app/find"}
        for _ in range(2):  # the rate's one and the burst's one
            r = requests.get(login_url, params=web, headers=NAVIGATE, allow_redirects=False,
                             timeout=10)
            assert r.status_code == 302, r.text
        r = requests.get(login_url, params=web, headers={**NAVIGATE, "X-Request-ID": "gw-303"},
                         allow_redirects=False, timeout=10)
        assert_signin_page(r, "rate_limited", empty=False)
        # The 303 keeps what the JSON 429 carries (review 16c L6).
        assert r.headers.get("X-Request-ID") == "gw-303", r.headers
        assert int(r.headers["Retry-After"]) >= 1, r.headers
        assert_signin_page(requests.get(f"{gw.url}/auth/google/callback",
                                        params={"state": "s", "code": "c"}, headers=NAVIGATE,
                                        allow_redirects=False, timeout=10), "rate_limited",
                           empty=False)
        for headers in ({}, {**NAVIGATE, "Sec-Fetch-Dest": "iframe"}):
            r = requests.get(login_url, params=web, headers=headers, allow_redirects=False,
                             timeout=10)
            assert r.status_code == 429 and r.json()["code"] == "rate_limited", r.text
            assert int(r.headers["Retry-After"]) >= 1
    finally:
        gw.stop()


def test_an_api_sign_in_in_a_browser_still_fails_in_json(user_url):
    # No return_to: once its state is taken the sign-in is an API one, even in a browser tab.
    browser = requests.Session()
    _, callback = provider_redirect(user_url, browser, "denied.api@example.com", None)
    r = browser.get(callback, headers=NAVIGATE, allow_redirects=False, timeout=10)
    assert_error(r, 401, "unauthorized")


# ---- the cookie form of POST /auth/refresh ----

def test_cookie_refresh_needs_the_csrf_header(user_url):
    browser, value = signed_in(user_url, "web.csrf@example.com")
    for headers in ({}, {"X-Requested-With": "XMLHttpRequest"},
                    {**CSRF, "Sec-Fetch-Site": "cross-site"},
                    {**CSRF, "Sec-Fetch-Site": "same-site"}):
        r = cookie_refresh(user_url, browser, headers=headers)
        assert_error(r, 403, "forbidden")
        assert "X-Requested-With" in r.json()["message"]
        assert not r.raw.headers.getlist("Set-Cookie"), r.headers
        r = cookie_refresh(user_url, browser, headers=headers, json={})
        assert_error(r, 403, "forbidden")
    # Nothing was rotated: the same cookie still works, from this site's page.
    assert browser.cookies.get("mr_refresh") == value
    r = cookie_refresh(user_url, browser, headers={**CSRF, "Sec-Fetch-Site": "same-origin"},
                       json={})
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()


def test_old_cookie_value_is_refused_and_cleared(user_url):
    # This stack's grace period is 0: the rotated value presented again is a reuse.
    browser, value = signed_in(user_url, "web.reuse@example.com")
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200, r.text
    rotated = assert_refresh_cookie(r)
    stale = {"Cookie": f"mr_refresh={value}", **CSRF}
    r = requests.post(f"{user_url}/auth/refresh", headers=stale, timeout=10)
    assert_error(r, 401, "unauthorized")
    assert_refresh_cleared(r)
    # The reuse ended the sign-in: the current value is refused (and cleared) too.
    r = cookie_refresh(user_url, browser)
    assert_error(r, 401, "unauthorized")
    assert_refresh_cleared(r)
    assert "mr_refresh" not in browser.cookies
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": rotated}, timeout=10)
    assert_error(r, 401, "unauthorized")


def test_unknown_cookie_is_refused_and_cleared(user_url):
    r = requests.post(f"{user_url}/auth/refresh",
                      headers={"Cookie": "mr_refresh=" + "A" * 43, **CSRF}, timeout=10)
    assert_error(r, 401, "unauthorized")
    assert_refresh_cleared(r)


@pytest.fixture(scope="module")
def grace_url(stack):
    """A user-service with the default grace period (the suite's own runs with 0)."""
    svc = stack.user_service(tag="web-grace")
    del svc.env["REFRESH_REUSE_GRACE_SECONDS"]
    svc.start()
    yield svc.url
    svc.stop()


def test_cookie_refresh_repeated_within_grace_gets_the_same_cookie(stack, grace_url):
    browser, value = signed_in(grace_url, "web.grace@example.com")
    r = cookie_refresh(grace_url, browser)
    assert r.status_code == 200, r.text
    successor = assert_refresh_cookie(r)
    # The answer was lost: the browser still holds the old value and sends it again.
    lost = {"Cookie": f"mr_refresh={value}", **CSRF}
    again = requests.post(f"{grace_url}/auth/refresh", headers=lost, timeout=10)
    assert again.status_code == 200, again.text
    assert assert_refresh_cookie(again) == successor
    assert "refresh_token" not in again.json()
    # After the grace period the old value is a reuse: 401, and the cookie goes.
    n, _ = sql(stack, "UPDATE refresh_tokens SET used_at = used_at - interval '1 hour' "
                      "WHERE token_hash = %s AND used_at IS NOT NULL",
               hashlib.sha256(value.encode()).hexdigest())
    assert n == 1
    late = requests.post(f"{grace_url}/auth/refresh", headers=lost, timeout=10)
    assert_error(late, 401, "unauthorized")
    assert_refresh_cleared(late)


def test_two_tabs_refreshing_at_once_keep_the_sign_in(grace_url):
    """Two tabs of the app start together and both present the same cookie: with the default
    grace period both get the same successor, and the sign-in goes on (review 16a L2)."""
    browser, value = signed_in(grace_url, "web.two.tabs@example.com")
    same = {"Cookie": f"mr_refresh={value}", **CSRF}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(
            lambda _: requests.post(f"{grace_url}/auth/refresh", headers=same, timeout=10),
            range(2)))
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    successors = {assert_refresh_cookie(r) for r in answers}
    assert len(successors) == 1 and value not in successors
    r = requests.post(f"{grace_url}/auth/refresh",
                      headers={"Cookie": f"mr_refresh={successors.pop()}", **CSRF}, timeout=10)
    assert r.status_code == 200, r.text


def test_body_token_wins_over_the_cookie(user_url):
    browser, value = signed_in(user_url, "web.body.wins@example.com")
    api = login(user_url, "web.body.wins@example.com").json()
    # A body token needs no CSRF header and answers as always; the cookie is left alone.
    r = browser.post(f"{user_url}/auth/refresh", json={"refresh_token": api["refresh_token"]},
                     timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] and r.json()["refresh_token"] != api["refresh_token"]
    assert not r.raw.headers.getlist("Set-Cookie"), r.headers
    assert browser.cookies.get("mr_refresh") == value
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200, r.text


def test_signed_out_probe_of_the_app_answers_401(user_url):
    """The app asks POST /auth/refresh (its header, no cookie) whether it is signed in: 401
    unauthorized, with no body or with {}, and nothing to clear (review 16a L6)."""
    for kw in ({}, {"json": {}}, {"data": b"", "headers": {**CSRF, "Content-Type": "text/plain"}}):
        r = requests.post(f"{user_url}/auth/refresh", **{"headers": CSRF, **kw}, timeout=10)
        assert_error(r, 401, "unauthorized")
        assert "not signed in" in r.json()["message"]
        assert not r.raw.headers.getlist("Set-Cookie")
    # A token in the body is still read, and checked, as always.
    r = requests.post(f"{user_url}/auth/refresh", json={"refresh_token": 5}, headers=CSRF,
                      timeout=10)
    assert_error(r, 422, "validation_failed", detail="refresh_token")


def test_refresh_without_cookie_or_token_is_unchanged_for_api_clients(user_url):
    """Without the app's header (an API client): the answers from before the web app."""
    r = requests.post(f"{user_url}/auth/refresh", json={}, timeout=10)
    assert_error(r, 422, "validation_failed", detail="refresh_token")
    assert not r.raw.headers.getlist("Set-Cookie")
    r = requests.post(f"{user_url}/auth/refresh", timeout=10)
    assert_error(r, 415, "unsupported_media_type")


def test_a_repeated_refresh_cookie_is_refused_and_left_alone(user_url):
    """A sibling host of the same site can set a second refresh cookie (Domain=, a longer Path),
    which the browser sends first: neither is used, nothing is cleared (clearing would remove
    only this site's own), and the sign-in is untouched (review 16a L3)."""
    browser, mine = signed_in(user_url, "web.tossed@example.com")
    _, planted = signed_in(user_url, "web.tosser@example.com")
    both = {"Cookie": f"mr_refresh={planted}; mr_refresh={mine}", **CSRF}
    for path in ("/auth/refresh", "/auth/logout"):
        for kw in ({}, {"json": {}}):
            r = requests.post(f"{user_url}{path}", headers=both, timeout=10, **kw)
            assert_error(r, 401, "unauthorized")
            assert "came more than once" in r.json()["message"], r.text
            assert not r.raw.headers.getlist("Set-Cookie"), r.headers
    # Neither sign-in was rotated or revoked: each cookie alone still works.
    for value in (mine, planted):
        r = requests.post(f"{user_url}/auth/refresh",
                          headers={"Cookie": f"mr_refresh={value}", **CSRF}, timeout=10)
        assert r.status_code == 200, r.text


# ---- the cookie form of POST /auth/logout ----

def test_logout_by_cookie_revokes_and_clears(user_url):
    browser, value = signed_in(user_url, "web.logout@example.com")
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200, r.text
    current = assert_refresh_cookie(r)
    # Without the header (a form of another site could post): refused, nothing revoked.
    r = browser.post(f"{user_url}/auth/logout", timeout=10)
    assert_error(r, 403, "forbidden")
    r = browser.post(f"{user_url}/auth/logout", headers={**CSRF, "Sec-Fetch-Site": "cross-site"},
                     timeout=10)
    assert_error(r, 403, "forbidden")
    assert browser.cookies.get("mr_refresh") == current
    # No bearer token needed: the cookie is the credential.
    r = browser.post(f"{user_url}/auth/logout", headers=CSRF, timeout=10)
    assert r.status_code == 204, r.text
    assert_refresh_cleared(r)
    assert "mr_refresh" not in browser.cookies
    r = requests.post(f"{user_url}/auth/refresh",
                      headers={"Cookie": f"mr_refresh={current}", **CSRF}, timeout=10)
    assert_error(r, 401, "unauthorized")
    assert_refresh_cleared(r)
    assert value != current


def test_logout_body_forms_still_need_the_bearer(user_url):
    browser, value = signed_in(user_url, "web.logout.body@example.com")
    for body in ({"refresh_token": value}, {"all": True}):
        r = browser.post(f"{user_url}/auth/logout", json=body, headers=CSRF, timeout=10)
        assert_error(r, 401, "unauthorized")
    r = requests.post(f"{user_url}/auth/logout", json={"refresh_token": value}, timeout=10)
    assert_error(r, 401, "unauthorized")
    # Nothing was revoked.
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    # With the bearer, all: every sign-in of the user ends, this browser's cookie with them.
    r = browser.post(f"{user_url}/auth/logout", json={"all": True},
                     headers=bearer(access), timeout=10)
    assert r.status_code == 204, r.text
    assert_refresh_cleared(r)
    r = requests.post(f"{user_url}/auth/logout", headers=bearer(access), timeout=10)
    assert_error(r, 415, "unsupported_media_type")  # no cookie, no body: as always


# ---- over HTTPS ----

def test_cookies_are_secure_and_prefixed_over_https(stack):
    # GOOGLE_REDIRECT_URI says where the browser comes back: over HTTPS the refresh cookie is
    # Secure and named __Secure- (requests would not send Secure cookies over http: the test
    # sends them by hand).
    svc = stack.user_service(tag="web-https",
                             GOOGLE_REDIRECT_URI="https://rooms.example.com/auth/google/callback")
    svc.start()
    try:
        browser = requests.Session()
        r, callback = provider_redirect(svc.url, browser, "web.https@example.com", "/app/mine")
        login_cookie = set_cookies(r)["__Host-mr_login"][0]
        parts = urllib.parse.urlsplit(callback)
        assert parts.netloc == "rooms.example.com"
        r = requests.get(f"{svc.url}{parts.path}", params=query_of(callback),
                         headers={"Cookie": f"__Host-mr_login={login_cookie}"},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"] == "/app/mine", r.text
        value = assert_refresh_cookie(r, "__Secure-mr_refresh", secure=True)
        # The plain name does not stand in for it: no cookie, so the app is not signed in.
        r = requests.post(f"{svc.url}/auth/refresh", json={},
                          headers={"Cookie": f"mr_refresh={value}", **CSRF}, timeout=10)
        assert_error(r, 401, "unauthorized")
        assert "not signed in" in r.json()["message"]
        r = requests.post(f"{svc.url}/auth/refresh",
                          headers={"Cookie": f"__Secure-mr_refresh={value}", **CSRF}, timeout=10)
        assert r.status_code == 200, r.text
        current = assert_refresh_cookie(r, "__Secure-mr_refresh", secure=True)
        r = requests.post(f"{svc.url}/auth/logout",
                          headers={"Cookie": f"__Secure-mr_refresh={current}", **CSRF},
                          timeout=10)
        assert r.status_code == 204, r.text
        cleared, attrs = set_cookies(r)["__Secure-mr_refresh"]
        assert cleared == "" and attrs["max-age"] == "0" and "secure" in attrs, attrs
    finally:
        svc.stop()


# ---- the local provider's sign-in page ----

class Forms(html.parser.HTMLParser):
    """The forms of a page: [{"action", "method", "fields": [(name, value)], "ids": {...}}]."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"),
                               "fields": [], "ids": set()})
        elif self.forms and tag in ("input", "button"):
            if a.get("name"):
                self.forms[-1]["fields"].append((a["name"], a.get("value", "")))
            if a.get("id"):
                self.forms[-1]["ids"].add(a["id"])


def test_provider_without_login_hint_lets_a_person_choose(stack, user_url):
    browser = requests.Session()
    r = browser.get(f"{user_url}/auth/google/login", params={"return_to": "/app/mine"},
                    allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    authorize = r.headers["Location"]
    params = query_of(authorize)
    assert "login_hint" not in params
    page = requests.get(authorize, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<script" not in page.text
    parser = Forms()
    parser.feed(page.text)
    main = [f for f in parser.forms if {"email", "signin"} <= f["ids"]]
    assert len(main) == 1, parser.forms
    suggested = [f for f in parser.forms if f is not main[0]]
    assert suggested and all(f["method"] == "get" for f in parser.forms)
    # Each form carries the request's parameters back; the main one adds the typed address.
    for form in parser.forms:
        carried = {k: v for k, v in form["fields"] if k != "login_hint"}
        assert carried == params, (carried, params)
    assert any(v == "admin@example.com" for f in suggested for k, v in f["fields"]
               if k == "login_hint")
    # The person types an address and submits: the provider goes on as that identity.
    fields = [(k, "web.chosen@example.com" if k == "login_hint" else v)
              for k, v in main[0]["fields"]]
    r = requests.get(urllib.parse.urljoin(authorize, main[0]["action"]), params=fields,
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    r = browser.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/app/mine", r.text
    assert_refresh_cookie(r)
    r = cookie_refresh(user_url, browser)
    assert r.status_code == 200 and r.json()["user"]["email"] == "web.chosen@example.com", r.text


def test_provider_page_escapes_what_it_carries(stack):
    hostile = '"><script>alert(1)</script>'
    page = requests.get(f"http://localhost:{stack.oidc.port}/authorize",
                        params={"state": hostile, "client_id": "c"}, timeout=10)
    assert page.status_code == 200, page.text
    assert "<script" not in page.text and "&quot;&gt;&lt;script&gt;" in page.text


# ---- the refresh limit ----

def test_a_rate_limited_sign_out_says_so_and_keeps_the_cookie(stack):
    """Refresh and logout share their own limit (RATE_LIMIT_REFRESH_PER_MINUTE), apart from the
    sign-ins'.  A logout over it answers 429 rate_limited with Retry-After - an error the app
    shows, not a sign-out - and leaves the cookie and the sign-in as they were (review 16a M2)."""
    svc = stack.user_service(tag="web-refresh-limit", RATE_LIMIT_REFRESH_PER_MINUTE="2")
    svc.start()
    try:
        browser, _ = signed_in(svc.url, "web.limited@example.com")
        assert cookie_refresh(svc.url, browser).status_code == 200
        current = assert_refresh_cookie(cookie_refresh(svc.url, browser))
        r = browser.post(f"{svc.url}/auth/logout", headers=CSRF, timeout=10)
        assert_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 30
        assert not r.raw.headers.getlist("Set-Cookie"), r.headers
        assert browser.cookies.get("mr_refresh") == current
        # Signing in is another budget.
        signed_in(svc.url, "web.limited.other@example.com")
        _, rows = sql(stack, "SELECT revoked_at IS NULL FROM refresh_tokens WHERE token_hash = %s",
                      hashlib.sha256(current.encode()).hexdigest())
        assert rows == [(True,)]
    finally:
        assert svc.stop() == 0
