"""The gateway serving the web app (web/, copied by scripts/nginx.sh with its version filled in),
as a client and a real browser see it: index.html at every app path with the strict
Content-Security-Policy and the other hardening headers and no-cache, the assets under
/assets/<version>/ cached for a year with the right MIME types, every other path the JSON 404 as
before, gzip on the app's files and never on an API answer, and in headless Chromium a page whose
module script runs without a console error while an inline script is refused."""
import gzip
import os
import re
import time

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from browser import console_errors, new_browser, wait_for
from harness import ROOT, bearer, create_room, operator_token, script, write_reliability

WEB = os.path.join(ROOT, "web")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HARDENING = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
             "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
MIME = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
        ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png",
        ".html": "text/html", ".woff2": "font/woff2"}
APP_PATHS = ["/", "/app", "/app/", "/app/find", "/app/grid", "/app/mine", "/app/admin/rooms",
             "/app/admin/users", "/app/admin/usage", "/app/signin?error=forbidden"]


@pytest.fixture(scope="module")
def version():
    v = script("nginx.sh", "web-version")
    assert re.fullmatch(r"[0-9a-f]{12}", v), v
    return v


def read(path):
    with open(os.path.join(WEB, path), "rb") as f:
        return f.read()


def assets():
    """Every file under web/assets, as its path relative to web/assets."""
    base = os.path.join(WEB, "assets")
    return sorted(os.path.relpath(os.path.join(d, f), base)
                  for d, _, files in os.walk(base) for f in files)


def assert_hardened(r):
    for name, value in HARDENING.items():
        assert r.headers.get(name) == value, (r.url, name, r.headers.get(name))
    # The location's add_header replaces the server's: X-Request-ID must still be there, once.
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers.get("X-Request-ID", "")), r.headers


def assert_json_404(r):
    assert r.status_code == 404, (r.url, r.status_code)
    assert r.headers["Content-Type"] == "application/json", r.headers
    body = r.json()
    assert body["code"] == "not_found" and body["request_id"] == r.headers["X-Request-ID"]
    assert "Content-Security-Policy" not in r.headers and "Cache-Control" not in r.headers


@pytest.mark.parametrize("path", APP_PATHS)
def test_app_paths_answer_index_html_hardened_and_not_cached(gateway_url, version, path):
    r = requests.get(gateway_url + path, allow_redirects=False)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert_hardened(r)
    assert r.content == read("index.html").replace(b"__WEB_VERSION__", version.encode())
    assert f'src="/assets/{version}/' in r.text and "__WEB_VERSION__" not in r.text
    etag = r.headers["ETag"]
    again = requests.get(gateway_url + path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["Cache-Control"] == "no-cache"


def test_assets_are_immutable_with_their_mime_types(gateway_url, version):
    files = assets()
    assert files, "web/assets is empty"
    for name in files:
        r = requests.get(f"{gateway_url}/assets/{version}/{name}")
        assert r.status_code == 200, (name, r.status_code)
        assert r.content == read(os.path.join("assets", name)), name
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable", name
        assert_hardened(r)
        mime = MIME.get(os.path.splitext(name)[1], "application/octet-stream")
        assert r.headers["Content-Type"].split(";")[0] == mime, (name, r.headers["Content-Type"])
    r = requests.head(f"{gateway_url}/assets/{version}/app.js")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize("path", [
    "/assets/000000000000/app.js", "/assets/app.js", "/assets/", "/assets",
    "/assets/{v}/no-such-file.js", "/assets/{v}", "/assets/{v}/", "/assets/{v}/nowhere/",
    "/assets/{v}/../../index.html",
    "/assets/{v}/%2e%2e/%2e%2e/nginx.conf", "/index.html", "/web/index.html", "/application",
    "/apps", "/nowhere", "/favicon.ico", "/x.html"])
def test_other_paths_answer_the_json_404(gateway_url, version, path):
    assert_json_404(requests.get(gateway_url + path.replace("{v}", version)))


def test_only_get_and_head_on_the_app(gateway_url, version):
    for method, path in (("POST", "/"), ("PUT", "/app/grid"),
                         ("DELETE", f"/assets/{version}/app.js")):
        r = requests.request(method, gateway_url + path, data=b"{}")
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.json()["code"] == "method_not_allowed" and r.headers["Allow"] == "GET, HEAD"
        assert r.headers["Content-Type"] == "application/json"
    assert_json_404(requests.post(gateway_url + "/nowhere", data=b"{}"))


def test_missing_files_leave_no_error_log_line(stack, gateway_url, version):
    """A scanner asking for files that are not there does not fill the error log (the pod's
    stderr): no "open() failed", no "directory index is forbidden" (review 16a L4)."""
    log = os.path.join(stack.gateway.dir, "error.log")
    before = os.path.getsize(log)
    marker = f"scan{time.monotonic_ns()}"
    for path in (f"/assets/{version}/{marker}.js", f"/assets/{version}/", f"/{marker}",
                 f"/assets/{version}/{marker}/"):
        assert_json_404(requests.get(gateway_url + path))
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(before)
        added = f.read()
    assert marker not in added and "forbidden" not in added, added


def test_methods_nginx_refuses_itself_are_not_the_apps_405(gateway_url):
    """The app's JSON 405 (Allow: GET, HEAD) is the app's only: TRACE, which nginx refuses before
    choosing a location, answers nginx's own 405 on every path, as before the web app, and never
    claims GET and HEAD for an API route."""
    for path in ("/auth/refresh", "/rooms", "/app/find"):
        r = requests.request("TRACE", gateway_url + path)
        assert r.status_code == 405, (path, r.status_code)
        assert "Allow" not in r.headers and "method_not_allowed" not in r.text, r.headers


def test_gzip_on_the_app_and_never_on_the_api(stack, gateway_url, version):
    figures = {}
    for path in ["/", *(f"/assets/{version}/{n}" for n in assets())]:
        raw = requests.get(gateway_url + path, headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in raw.headers
        r = requests.get(gateway_url + path, headers={"Accept-Encoding": "gzip"}, stream=True)
        body = r.raw.read()
        textual = r.headers["Content-Type"].split(";")[0] != "image/png"
        if textual and len(raw.content) >= 256:   # gzip_min_length
            assert r.headers.get("Content-Encoding") == "gzip", path
            assert r.headers["Vary"] == "Accept-Encoding", path
            assert gzip.decompress(body) == raw.content, path
        else:
            assert "Content-Encoding" not in r.headers, path
        figures[path.replace(version, "<version>")] = {"bytes": len(raw.content),
                                                       "sent_gzip": len(body)}
    write_reliability("web_gateway_gzip", figures)

    api_bytes = {}
    token, _ = operator_token(stack.user, "web-gw-gzip@example.com", role="admin")
    for _ in range(3):  # answers long enough for gzip_min_length
        create_room(stack.room.url, bearer(token), description="x" * 200)
    for path in ("/rooms?limit=100", "/users/profile", "/admin/users"):
        r = requests.get(gateway_url + path, headers={**bearer(token), "Accept-Encoding": "gzip"},
                         stream=True)
        body = r.raw.read()
        assert r.status_code == 200, (path, r.status_code)
        assert "Content-Encoding" not in r.headers, path
        assert r.headers["Content-Type"].startswith("application/json"), path
        assert "Content-Security-Policy" not in r.headers, path
        api_bytes[path] = len(body)
    assert api_bytes["/rooms?limit=100"] > 600, api_bytes  # well above gzip_min_length
    r = requests.get(gateway_url + "/health", headers={"Accept-Encoding": "gzip"})
    assert r.json() == {"status": "ok"} and "Content-Encoding" not in r.headers


def test_in_chromium_the_module_runs_and_inline_script_is_refused(gateway_url):
    """index.html holds no #signin or #whoami: the app's module script makes one of them.  The
    console then holds no error (no CSP violation, no failed load of the app's files); a script
    element with inline code, added to the page, is refused by the CSP and reported there."""
    html = requests.get(gateway_url + "/").text
    assert 'id="signin"' not in html and 'id="whoami"' not in html
    started = time.monotonic()
    driver = new_browser()
    start_seconds = time.monotonic() - started
    try:
        driver.get(gateway_url + "/")
        wait_for(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#signin, #whoami")),
                 "the app's module to show #signin or #whoami")
        # The app asks POST /auth/refresh at start whether it is signed in: signed out, that is
        # user-service's 401 "not signed in", logged by the browser as a failed load; nothing
        # else may be in the console.
        errors = console_errors(driver)
        probes = [e for e in errors if "/auth/refresh - " in e]
        assert len(probes) == 1 and re.search(r"/auth/refresh - .* status of 401 ", probes[0]), \
            errors
        assert [e for e in errors if e not in probes] == []
        load = driver.execute_script("""
            const entries = [...performance.getEntriesByType("navigation"),
                             ...performance.getEntriesByType("resource")
                .filter(e => !["fetch", "xmlhttprequest"].includes(e.initiatorType))];
            return entries.map(e => [e.name, e.encodedBodySize, e.decodedBodySize]);
        """)
        compressed = sum(e[1] for e in load)
        write_reliability("web_gateway_first_load", {
            "chromium_start_seconds": round(start_seconds, 2),
            "first_load_compressed_bytes": compressed,
            "first_load_uncompressed_bytes": sum(e[2] for e in load),
            "files": len(load)})
        assert compressed <= 150 * 1024, load

        driver.execute_script("""
            const s = document.createElement("script");
            s.textContent = "window.inlineRan = true;";
            document.head.append(s);
        """)
        assert driver.execute_script("return window.inlineRan === undefined")
        errors = console_errors(driver)
        assert any("Content Security Policy" in e for e in errors), errors
    finally:
        driver.quit()


def test_sign_in_through_the_web_gateway_comes_back_to_the_app(web_url):
    """The browser tests' gateway (browser.web_url): a web sign-in started there comes back
    there, at the app path it named, with the refresh cookie the app then refreshes with."""
    s = requests.Session()
    r = s.get(f"{web_url}/auth/google/login", allow_redirects=False,
              params={"return_to": "/app/grid", "login_hint": "web-gw-signin@example.com"})
    assert r.status_code == 302, r.text
    r = s.get(r.headers["Location"], allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(f"{web_url}/auth/"), r.headers
    r = s.get(r.headers["Location"], allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/app/grid", (r.status_code, r.text)
    r = s.get(web_url + r.headers["Location"])
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    r = s.post(f"{web_url}/auth/refresh", json={}, headers={"X-Requested-With": "meeting-rooms"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = s.get(f"{web_url}/users/profile", headers=bearer(token))
    assert r.json()["email"] == "web-gw-signin@example.com"
