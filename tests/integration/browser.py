"""A real browser for the web app's tests: Debian's headless Chromium driven by Selenium through the
system chromedriver (scripts/deps.sh installs chromium, chromium-driver and python3-selenium;
nothing is downloaded at test time).

    new_browser(zone)               a headless Chromium (1280x900) whose clock runs in `zone`
                                    (BROWSER_ZONE, America/New_York, unless given: not the
                                    machine's zone, so that no page may confuse the browser's
                                    zone with a room's or with UTC), its console log captured
    browser, browsers               pytest fixtures (registered in conftest.py): one browser for a
                                    test; a factory for more at once (browsers() -> a new one);
                                    every one is quit after the test
    web_url                         session fixture: the address of the gateway to sign in
                                    through (below); stack.gateway.url serves the app as well,
                                    but its sign-in callback goes to user-service's own port
    sign_in(driver, base_url, email, path)
                                    the real sign-in: the app's button, the local provider's
                                    chooser page, back in the app until #whoami shows the e-mail
    axe(driver)                     axe-core's serious and critical violations of the page
    screenshot(driver, name)        saves SCREENSHOT_DIR/<name>.png (default build/screenshots)
    console_errors(driver)          SEVERE console entries since the last call (CSP violations,
                                    uncaught exceptions, failed loads)
"""
import json
import os
import re
import urllib.parse

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from harness import Gateway

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE_JS = os.path.join(ROOT, "tests", "web", "node_modules", "axe-core", "axe.min.js")
WAIT = 20  # seconds a step of sign_in may take (the whole stack runs with sanitizers)
# The browser's time zone: one that is neither UTC nor the tests' rooms' Europe/Berlin, with
# other DST dates than Berlin's.
BROWSER_ZONE = "America/New_York"


def screenshot_dir():
    return os.environ.get("SCREENSHOT_DIR", os.path.join(ROOT, "build", "screenshots"))


def new_browser(zone=BROWSER_ZONE):
    """A headless Chromium in the time zone `zone` (its TZ); the caller quits it (the fixtures
    below do)."""
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--window-size=1280,900", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--lang=en-US",
                # /dev/shm is small in containers (CI's is 1 GB, but not everyone's).
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, env={**os.environ, "TZ": zone})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


class Browsers:
    """The `browsers` fixture: each call starts one more browser, all quit at the end."""

    def __init__(self):
        self.drivers = []

    def __call__(self):
        driver = new_browser()
        self.drivers.append(driver)
        return driver

    def quit_all(self):
        for driver in self.drivers:
            driver.quit()
        self.drivers.clear()


@pytest.fixture()
def browsers():
    b = Browsers()
    try:
        yield b
    finally:
        b.quit_all()


@pytest.fixture()
def browser(browsers):
    return browsers()


@pytest.fixture(scope="session")
def web_url(stack):
    """A gateway of its own (scripts/nginx.sh, as `make run` starts it) in front of the stack's
    room- and reservation-service and a user-service of its own whose GOOGLE_REDIRECT_URI is this
    gateway, as in `make run` and production: the provider sends the browser back to the app's
    origin, where the refresh cookie belongs.  The stack's user-service keeps its own callback
    (tests assert it); this one shares its database, Kafka and secret, and has the production
    default grace period for a repeated refresh (30 s, not the suite's 0: two tabs of the app
    that refresh at once keep the sign-in).  The /auth/* limits are set out of the way (the
    browser tests sign in many times from one address), and one idle upstream connection per
    worker and group, as the stack's gateway (the services run few threads)."""
    gw = Gateway(stack.gateway_dir, name="nginx-web",
                 env={"GATEWAY_UPSTREAM_KEEPALIVE": "1", "GATEWAY_AUTH_PER_MINUTE": "6000",
                      "GATEWAY_AUTH_BURST": "1000", "GATEWAY_REFRESH_PER_MINUTE": "6000",
                      "GATEWAY_REFRESH_BURST": "1000"})
    user = stack.user_service(
        tag="user-service-web",
        GOOGLE_REDIRECT_URI=f"http://127.0.0.1:{gw.port}/auth/google/callback")
    del user.env["REFRESH_REUSE_GRACE_SECONDS"]
    user.start()  # stopped (and its sanitizer reports read) with the stack
    try:
        yield gw.start(user.port, stack.room.port, stack.reservation.port)
    finally:
        gw.stop()


def block_urls(driver, patterns):
    """Makes the browser fail every request whose URL matches one of `patterns` (e.g.
    "*/auth/logout") as a network error, until called again ([] lets everything through)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(patterns)})


def wait_for(driver, condition, what, timeout=WAIT):
    """WebDriverWait with a failure message naming what was awaited and where the browser is."""
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                             f"(at {driver.current_url})") from None


def sign_in(driver, base_url, email, path="/app/find"):
    """Signs in as `email` the way a person does: opens `path` in the app, presses its sign-in
    button (#signin), chooses the identity on the local provider's page (#email, then its
    #signin) and waits until the app is back with #whoami showing the e-mail."""
    driver.get(base_url + path)
    wait_for(driver, EC.element_to_be_clickable((By.ID, "signin")),
             "the app's sign-in button #signin").click()
    field = wait_for(driver, EC.element_to_be_clickable((By.ID, "email")),
                     "the provider's chooser page (#email)")
    provider = urllib.parse.urlsplit(driver.current_url)
    field.clear()
    field.send_keys(email)
    driver.find_element(By.ID, "signin").click()
    wait_for(driver, EC.text_to_be_present_in_element((By.ID, "whoami"), email),
             f"#whoami showing {email}")
    assert driver.current_url.startswith(base_url), driver.current_url
    # The provider's page is not the app: its console entries (e.g. its /favicon.ico 404) are
    # dropped, the app's are kept for console_errors().
    origin = f"{provider.scheme}://{provider.netloc}/"
    kept(driver).extend(e for e in driver.get_log("browser") if not e["message"].startswith(origin))


def axe(driver):
    """Runs axe-core (tests/web, pinned) on the page as it is now; returns the violations of
    impact serious or critical, each {id, impact, help, targets}."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        with open(AXE_JS, encoding="utf-8") as f:
            driver.execute_script(f.read())
    result = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ["violations"]})
           .then(r => done(JSON.stringify(r.violations)))
           .catch(e => done(JSON.stringify({error: String(e)})));
    """)
    violations = json.loads(result)
    assert not isinstance(violations, dict), f"axe-core failed: {violations}"
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [n["target"] for n in v["nodes"]]}
            for v in violations if v["impact"] in ("serious", "critical")]


def screenshot(driver, name):
    """Saves the viewport as <SCREENSHOT_DIR>/<name>.png; returns the path."""
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
    directory = screenshot_dir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.png")
    assert driver.save_screenshot(path), path
    return path


def kept(driver):
    """Console entries read from the browser but not yet returned by console_errors()."""
    if not hasattr(driver, "mr_console"):
        driver.mr_console = []
    return driver.mr_console


def console_errors(driver):
    """The console's SEVERE entries since the previous call (reading the log empties it), the
    sign-in provider's page left out: CSP violations, uncaught exceptions, console.error, and
    loads that failed (a 4xx/5xx answer to a fetch is logged too, with its URL)."""
    entries = kept(driver) + driver.get_log("browser")
    kept(driver).clear()
    return [e["message"] for e in entries if e["level"] == "SEVERE"]
