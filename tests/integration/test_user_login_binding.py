"""Issue 11 item 2: a sign-in is bound to the browser that started it (docs/api.md#user-service).
/auth/google/login sets a short-lived cookie holding a random value whose hash is stored with
the state; the callback needs that cookie, so whoever else sees a callback URL can neither finish
nor cancel the sign-in, and a callback URL of someone else's sign-in does not sign a browser in
(login CSRF).  The callback clears the cookie once it has taken the cookie's state (a sign-in or
the provider's refusal of it); a callback refused as another browser's, or of an unknown state,
leaves it, so that a second tab or a crafted link does not cancel a sign-in in progress."""
import os
import subprocess

import psycopg2
import requests

from harness import assert_error, bearer, query_of

COOKIE = "mr_login"  # over http; __Host-mr_login over https


def start(base, email, browser):
    """login → provider in browser (a requests.Session, which keeps cookies); returns (login
    response, callback URL)."""
    r = browser.get(f"{base}/auth/google/login", params={"login_hint": email},
                    allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    p = requests.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert p.status_code == 302, p.text
    return r, p.headers["Location"]


def set_cookie(r):
    """The response's one Set-Cookie header as (name, value, {attribute: value}), attribute
    names lower-cased."""
    raw = r.raw.headers.getlist("Set-Cookie")
    assert len(raw) == 1, raw
    first, *attrs = [part.strip() for part in raw[0].split(";")]
    name, _, value = first.partition("=")
    parsed = {}
    for a in attrs:
        k, _, v = a.partition("=")
        parsed[k.lower()] = v
    return name, value, parsed


def assert_kept(r):
    """The answer does not touch the browser's sign-in cookie."""
    assert not r.raw.headers.getlist("Set-Cookie"), r.headers


def assert_cleared(r, name=COOKIE, secure=False):
    cname, value, attrs = set_cookie(r)
    assert (cname, value) == (name, ""), r.headers
    assert attrs.get("max-age") == "0" and attrs.get("path") == "/", attrs
    assert ("secure" in attrs) == secure, attrs


def test_login_sets_a_short_lived_http_only_cookie(user_url):
    browser = requests.Session()
    r, _ = start(user_url, "cookie.attrs@example.com", browser)
    name, value, attrs = set_cookie(r)
    assert name == COOKIE
    # 32 random bytes in base64url.
    assert len(value) == 43 and set(value) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), value
    assert attrs == {"max-age": "600", "path": "/", "httponly": "", "samesite": "Lax"}, attrs
    # Another sign-in, another value.
    other = requests.Session()
    r2, _ = start(user_url, "cookie.attrs@example.com", other)
    assert set_cookie(r2)[1] != value


def test_cookie_is_host_prefixed_and_secure_over_https(stack):
    # GOOGLE_REDIRECT_URI says where the browser comes back: over HTTPS the cookie is Secure and
    # named __Host- (the browser then keeps it to this host, over HTTPS, Path=/).
    svc = stack.user_service(tag="login-https",
                             GOOGLE_REDIRECT_URI="https://rooms.example.com/auth/google/callback")
    svc.start()
    try:
        r = requests.get(f"{svc.url}/auth/google/login", allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        name, value, attrs = set_cookie(r)
        assert name == "__Host-mr_login" and len(value) == 43
        assert attrs == {"max-age": "600", "path": "/", "httponly": "", "samesite": "Lax",
                         "secure": ""}, attrs
        assert "domain" not in attrs
        state = query_of(r.headers["Location"])["state"]
        # The plain-http name is not accepted in its place (and the refusal leaves the cookie).
        r = requests.get(f"{svc.url}/auth/google/callback", params={"state": state, "code": "x"},
                         headers={"Cookie": f"mr_login={value}"}, timeout=10)
        assert_error(r, 403, "forbidden")
        assert_kept(r)
        # The provider's refusal with the right cookie takes the state and clears the cookie
        # under the same name and attributes (a browser ignores a __Host- Set-Cookie without
        # Secure).
        r = requests.get(f"{svc.url}/auth/google/callback",
                         params={"state": state, "error": "access_denied"},
                         headers={"Cookie": f"__Host-mr_login={value}"}, timeout=10)
        assert_error(r, 401, "unauthorized")
        assert_cleared(r, "__Host-mr_login", secure=True)
    finally:
        svc.stop()


def test_callback_without_the_cookie_is_refused(user_url):
    victim = requests.Session()
    _, callback = start(user_url, "bound.victim@example.com", victim)
    # Whoever sees the callback URL (a log, a proxy, a Referer) tries it first, without cookies.
    r = requests.get(callback, allow_redirects=False, timeout=10)
    body = assert_error(r, 403, "forbidden", mentions="another browser")
    assert "access_token" not in r.text and "details" not in body
    assert_kept(r)
    # Again: still refused, and the attempts did not spend the victim's sign-in.
    assert_error(requests.get(callback, allow_redirects=False, timeout=10), 403, "forbidden")
    r = victim.get(callback, allow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == "bound.victim@example.com"
    assert_cleared(r)
    assert COOKIE not in victim.cookies
    # Now the state is spent for everyone.
    assert_error(requests.get(callback, allow_redirects=False, timeout=10), 400, "bad_request",
                 detail="state")


def test_callback_with_another_browsers_cookie_is_refused(user_url):
    victim, attacker = requests.Session(), requests.Session()
    _, victim_callback = start(user_url, "bound.other@example.com", victim)
    # The attacker holds a cookie of a sign-in of their own.
    _, attacker_callback = start(user_url, "bound.attacker@example.com", attacker)
    assert attacker.cookies.get(COOKIE) != victim.cookies.get(COOKIE)
    r = attacker.get(victim_callback, allow_redirects=False, timeout=10)
    assert_error(r, 403, "forbidden")
    assert "access_token" not in r.text
    # Login CSRF: the attacker's callback URL opened in the victim's browser does not sign the
    # victim in as the attacker.
    r = victim.get(attacker_callback, allow_redirects=False, timeout=10)
    assert_error(r, 403, "forbidden")
    assert "access_token" not in r.text
    # Neither refusal touched the cookie of the browser that made it: each browser still
    # finishes its own sign-in.
    for browser, callback, email in ((victim, victim_callback, "bound.other@example.com"),
                                     (attacker, attacker_callback, "bound.attacker@example.com")):
        r = browser.get(callback, allow_redirects=False, timeout=10)
        assert r.status_code == 200, r.text
        assert_cleared(r)
        assert requests.get(f"{user_url}/users/me", headers=bearer(r.json()["access_token"]),
                            timeout=10).json()["email"] == email


def test_forged_cookie_is_refused(user_url):
    victim = requests.Session()
    _, callback = start(user_url, "bound.forged@example.com", victim)
    real = victim.cookies.get(COOKIE)
    for value in ("", "x", real[:-1], real + "A", real.upper(), "A" * 200):
        r = requests.get(callback, headers={"Cookie": f"{COOKIE}={value}"},
                         allow_redirects=False, timeout=10)
        assert_error(r, 403, "forbidden")
    # The real one, also among other cookies, works.
    r = requests.get(callback, headers={"Cookie": f"theme=dark; {COOKIE}={real}; lang=en"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text


def test_callback_clears_the_cookie_once_its_state_is_taken(user_url):
    browser = requests.Session()
    # Refused by the provider (error=) with the browser's own state: the state is spent.
    _, q = start(user_url, "denied.clears@example.com", browser)
    r = browser.get(f"{user_url}/auth/google/callback",
                    params={"state": query_of(q)["state"], "error": "access_denied"})
    assert_error(r, 401, "unauthorized")
    assert_cleared(r)
    # No state, no code, an unknown state, or the provider's error without this browser's
    # state (a crafted link): refused, and the sign-in in progress is left alone.
    _, callback = start(user_url, "clears@example.com", browser)
    for params in ({}, {"state": "x"}, {"state": "no-such-state", "code": "x"}):
        r = browser.get(f"{user_url}/auth/google/callback", params=params, timeout=10)
        assert_error(r, 400, "bad_request")
        assert_kept(r)
    for params in ({"error": "x"}, {"state": "no-such-state", "error": "x"}):
        r = browser.get(f"{user_url}/auth/google/callback", params=params, timeout=10)
        assert_error(r, 401, "unauthorized")
        assert_kept(r)
    r = browser.get(callback, allow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text
    assert_cleared(r)
    assert COOKIE not in browser.cookies


def test_two_tabs_the_later_sign_in_finishes(user_url):
    # Two sign-ins started in one browser: the second overwrote the cookie, so the first tab's
    # callback is refused — without spending the second's cookie, which then finishes.
    browser = requests.Session()
    _, first = start(user_url, "two.tabs@example.com", browser)
    _, second = start(user_url, "two.tabs@example.com", browser)
    r = browser.get(first, allow_redirects=False, timeout=10)
    assert_error(r, 403, "forbidden")
    assert_kept(r)
    r = browser.get(second, allow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == "two.tabs@example.com"


def test_provider_refusal_needs_the_cookie_to_cancel(user_url):
    # A stranger's error=access_denied with the victim's state does not cancel the sign-in.
    victim = requests.Session()
    _, callback = start(user_url, "bound.cancel@example.com", victim)
    state = query_of(callback)["state"]
    r = requests.get(f"{user_url}/auth/google/callback",
                     params={"state": state, "error": "access_denied"}, timeout=10)
    assert_error(r, 401, "unauthorized")
    assert victim.get(callback, allow_redirects=False, timeout=10).status_code == 200


def test_state_without_a_binding_matches_no_browser(stack, user_url):
    # A state written before migration 002 (or by an older replica during an upgrade) has no
    # browser hash: no cookie finishes it.
    browser = requests.Session()
    _, callback = start(user_url, "bound.legacy@example.com", browser)
    conn = psycopg2.connect(stack.pg.dsn("user_db"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE login_states SET browser_hash = NULL WHERE state = %s",
                        (query_of(callback)["state"],))
            assert cur.rowcount == 1
    finally:
        conn.close()
    assert_error(browser.get(callback, allow_redirects=False, timeout=10), 403, "forbidden")


def test_command_line_sign_in_with_a_cookie_jar(user_url, tmp_path):
    # The README's walkthrough: curl keeps the cookie in a jar (-c writes it, -b sends it).
    jar = str(tmp_path / "jar")

    def curl(*args):
        out = subprocess.run(["curl", "-s", "-c", jar, "-b", jar, *args], capture_output=True,
                             text=True, timeout=30, check=True)
        return out.stdout

    login = curl("-o", "/dev/null", "-w", "%{redirect_url}",
                 f"{user_url}/auth/google/login?login_hint=curl.jar@example.com")
    callback = curl("-o", "/dev/null", "-w", "%{redirect_url}", login)
    assert "/auth/google/callback?" in callback
    body = curl(callback)
    assert '"access_token"' in body and '"curl.jar@example.com"' in body, body
    # Without the jar the same kind of walk is refused at the callback.
    login = subprocess.run(["curl", "-s", "-o", os.devnull, "-w", "%{redirect_url}",
                            f"{user_url}/auth/google/login?login_hint=curl.nojar@example.com"],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    callback = subprocess.run(["curl", "-s", "-o", os.devnull, "-w", "%{redirect_url}", login],
                              capture_output=True, text=True, timeout=30, check=True).stdout
    body = subprocess.run(["curl", "-s", callback], capture_output=True, text=True, timeout=30,
                          check=True).stdout
    assert '"forbidden"' in body, body
