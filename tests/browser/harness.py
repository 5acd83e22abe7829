"""The browser harness: Debian's chromium driven by selenium (chromedriver from chromium-driver),
with a CDP virtual WebAuthn authenticator standing in for the terminal's fingerprint reader.

Used by the browser tests and by ``scripts/screenshots.py``. Nothing here downloads a browser:
the driver and browser are the system's (``/usr/bin/chromedriver``, ``/usr/bin/chromium``).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = os.environ.get("JUKINET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JUKINET_CHROMEDRIVER", "/usr/bin/chromedriver")


def browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def require_browser() -> None:
    """At the top of a browser test module: skip it without chromium — except on CI, which must run it."""
    import os

    import pytest

    if not browser_available():
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError("chromium / chromium-driver are missing: CI must run the browser tests")
        pytest.skip("chromium / chromium-driver not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving ``app`` on 127.0.0.1:port in a thread."""

    def __init__(self, app, port: int):
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Browser:
    """Headless chromium with a virtual platform authenticator (user verification: yes)."""

    def __init__(self, width: int = 1280, height: int = 900):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="jukinet-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--disable-default-apps", "--disable-extensions", "--lang=ja-JP",
                    f"--window-size={width},{height}", f"--user-data-dir={self.profile}"):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(60)
        self.driver.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
        self.authenticator = self.driver.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.driver.execute_cdp_cmd("WebAuthn.getCredentials",
                                           {"authenticatorId": self.authenticator})["credentials"]

    def set_user_verified(self, verified: bool) -> None:
        self.driver.execute_cdp_cmd("WebAuthn.setUserVerified",
                                    {"authenticatorId": self.authenticator, "isUserVerified": verified})

    def reset(self) -> None:
        """Back to a browser that has seen no site: a blank page, no cookies (the session, CSRF and
        terminal cookies of any earlier server: cookies ignore the port), no stored credential on the
        virtual authenticator, user verification on. A test that shares the browser process starts here."""
        self.driver.get("about:blank")
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.driver.execute_cdp_cmd("WebAuthn.clearCredentials", {"authenticatorId": self.authenticator})
        self.set_user_verified(True)

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # small helpers -----------------------------------------------------------------------------
    def go(self, url: str):
        self.driver.get(url)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, cond, timeout: float = 20):
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def settled(driver):
            # an htmx swap can replace the node between chromium's lookup and its visibility check
            # ("Node with given id does not belong to the document"): the same as a stale element
            try:
                return cond(driver)
            except WebDriverException as e:
                if "does not belong to the document" in (e.msg or ""):
                    return False
                raise

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(settled)

    def wait_css(self, css: str, timeout: float = 20):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC

        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def wait_path(self, path: str, timeout: float = 20):
        return self.wait(lambda d: d.current_url.split("?")[0].endswith(path), timeout)

    def source(self) -> str:
        return self.driver.page_source

    def activate_enroll_login(self, base: str, code: str, token: str, operator_id: str) -> None:
        """Activate this browser as a terminal, enroll the virtual fingerprint, log in."""
        self.go(f"{base}/terminal/activate?code={code}")
        self.wait_css("#activate-button").click()
        self.wait_css("#message")
        self.go(f"{base}/enroll?token={token}")
        self.wait_css("#enroll-button").click()
        self.wait_css("#enroll-done")
        self.go(f"{base}/login")
        self.wait_css("#operator_id").send_keys(operator_id)
        self.find("#login-button").click()
        self.wait_css("#operator-id")

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))


def setup_site(data_dir: Path, *, port: int, people: bool = True, backend: str = "sqlite", request=None):
    """A fresh installation, a pending terminal and the bootstrapped administrator.

    ``backend`` is ``"sqlite"`` or ``"postgres"`` (a throwaway database on JUKINET_TEST_POSTGRES_URL,
    dropped by a finalizer on the pytest ``request``, as ``jukinet_testing.make_installation`` does).
    Returns (config, registers, app, activation_code, admin_id, admin_enroll_token).
    """
    import importlib.util
    import sys

    from jukinet.store.registers import Registers
    from jukinet.web.app import create_app

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # tests/: jukinet_testing
    from jukinet_testing import make_installation

    config = make_installation(data_dir, backend, request)   # migrated, as `jukinet init` leaves it
    config.server.port = port
    config.security.training_required = False   # as in tests/jukinet_testing.make_installation (ADR 0034)
    config.save()
    registers = Registers(config)
    app = create_app(config, registers)
    sec = app.state.security
    from jukinet.security.oplog import Actor

    _, code = sec.add_terminal(Actor("bootstrap", None), "代表端末1")
    admin, token = sec.bootstrap_admin(display_name="管理　太郎", operator_id="ADMIN01")
    if people:
        here = Path(__file__).resolve().parent.parent / "web" / "operator_site.py"
        spec = importlib.util.spec_from_file_location("jukinet_web_fixtures", here)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["jukinet_web_fixtures"] = mod
        spec.loader.exec_module(mod)
        mod.seed_people(registers)
    return config, registers, app, code, admin.operator_id, token


def require_browser() -> None:
    """Skip the calling test module without chromium (an error on CI, which must run them)."""
    import pytest

    if not browser_available():
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError("chromium / chromium-driver are missing: CI must run the browser tests")
        pytest.skip("chromium / chromium-driver not installed", allow_module_level=True)


def activate_and_enroll(b: "Browser", base: str, code: str, tokens) -> None:
    """Make this browser the terminal (activation code), then enroll each enrollment token's operator."""
    b.go(f"{base}/terminal/activate?code={code}")
    b.wait_css("#activate-button").click()
    b.wait_css("#message")
    for t in tokens:
        b.go(f"{base}/enroll?token={t}")
        b.wait_css("#enroll-button").click()
        b.wait_css("#enroll-done")


def login_as(b: "Browser", base: str, operator_id: str) -> None:
    b.go(f"{base}/login")
    field = b.wait_css("#operator_id")
    field.clear()
    field.send_keys(operator_id)
    b.find("#login-button").click()
    b.wait_css("#operator-id")
