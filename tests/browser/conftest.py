"""Fixtures of the browser tests: every test builds the state it needs, so any test passes alone and in
any order (issue 17).

- ``browser``: one headless chromium per module (the expensive part), handed to each test *reset*
  (blank page, no cookies, no credential on the virtual authenticator, user verification on).
- ``make_site``: a fresh installation per test on the engine under test (``backend``: SQLite, and
  PostgreSQL when ``JUKINET_TEST_POSTGRES_URL`` is set), served on its own port: a pending terminal
  (T0001 once activated) and the bootstrapped administrator, not yet enrolled.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import Browser, Server, browser_available, free_port, setup_site  # noqa: E402


@pytest.fixture(scope="module")
def browser_process():
    if not browser_available():
        pytest.skip("chromium / chromium-driver not installed")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def browser(browser_process):
    """The module's chromium, as if new: whatever an earlier test left in it is gone."""
    browser_process.reset()
    return browser_process


@pytest.fixture
def make_site(tmp_path, backend):
    """``make_site(people=True)`` → a served fresh installation (attributes: base, config, registers, app,
    sec, code (terminal activation), admin_id, admin_token). Torn down after the test."""
    opened, drops = [], []
    later = SimpleNamespace(addfinalizer=drops.append)   # drop a PostgreSQL database after its server stopped

    def make(*, people: bool = True):
        port = free_port()
        config, registers, app, code, admin_id, token = setup_site(tmp_path / f"data{len(opened)}", port=port,
                                                                   people=people, backend=backend, request=later)
        server = Server(app, port)
        opened.append((server, registers))
        server.__enter__()
        return SimpleNamespace(base=f"http://localhost:{port}", config=config, registers=registers, app=app,
                               sec=app.state.security, code=code, admin_id=admin_id, admin_token=token)

    try:
        yield make
    finally:
        for server, registers in reversed(opened):
            try:
                server.__exit__(None, None, None)
            finally:
                registers.dispose()
        for drop in reversed(drops):
            drop()
