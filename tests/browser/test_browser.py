"""A1, A2, A3, A6, S1, D4 in a real browser: Debian's chromium (headless) with a virtual WebAuthn
platform authenticator (user verification on), against the server on a local port.

Each test stands on its own (issue 17): it gets a fresh installation on the engine under test (SQLite,
and PostgreSQL when configured) and the module's browser reset to a blank state, and its fixtures build
the rest of what it needs — the terminal activated as T0001, the administrator enrolled and logged in,
the operators KENSAKU01 / KANSA01 registered (an enrollment link in ``j.links``), enrolled, logged in.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from harness import browser_available, login_as  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")

if not browser_available():
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("chromium / chromium-driver are missing: CI must run the browser tests "
                           "(apt-get install chromium chromium-driver)")
    pytest.skip("chromium / chromium-driver not installed", allow_module_level=True)


OPERATORS = {  # what the administrator registers on the roster in test_a2
    "KENSAKU01": dict(display_name="検索　担当", roles=["operator"], registers=["juki", "fuhyo"], affairs=["search"]),
    "KANSA01": dict(display_name="監査　担当", roles=["auditor"], registers=[], affairs=[]),
}


@pytest.fixture
def j(make_site, browser):
    """A fresh installation (people seeded; terminal pending; administrator registered, not enrolled)
    and the reset browser; nothing done in it yet."""
    s = make_site()
    s.b = browser
    s.activation = s.code
    s.links = {}
    return s


@pytest.fixture
def terminal(j):
    """This browser activated as the terminal T0001."""
    j.b.go(f"{j.base}/terminal/activate?code={j.code}")
    j.b.wait_css("#activate-button").click()
    j.b.wait_css("#message")
    assert "T0001" in j.b.find("#message").text


@pytest.fixture
def admin_logged_in(j, terminal):
    """The administrator's fingerprint enrolled on this terminal; logged in."""
    enroll(j, f"{j.base}/enroll?token={j.admin_token}")
    login(j, j.admin_id)


def register(j, operator_id: str) -> None:
    """Register an operator as the administrator does on the roster; keep the enrollment link."""
    from jukinet.security.oplog import Actor

    _op, token = j.sec.register_operator(Actor(j.admin_id, "T0001"), operator_id=operator_id,
                                         **OPERATORS[operator_id])
    j.links[operator_id] = f"{j.base}/enroll?token={token}"


@pytest.fixture
def kensaku_registered(j, terminal):
    register(j, "KENSAKU01")


@pytest.fixture
def kensaku_logged_in(j, kensaku_registered):
    enroll(j, j.links["KENSAKU01"])
    login(j, "KENSAKU01")


@pytest.fixture
def kansa_registered(j, terminal):
    register(j, "KANSA01")


def login(j, operator_id: str):
    login_as(j.b, j.base, operator_id)
    assert j.b.find("#operator-id").text == operator_id


def logout(j):
    j.b.find("#logout-button").click()
    j.b.wait_path("/login")


def enroll(j, link: str):
    b = j.b
    b.go(link)
    b.wait_css("#enroll-button").click()
    b.wait_css("#enroll-done")


def oplog(j, chain: str):
    from jukinet.store.tables_security import OPLOG

    log, _ = OPLOG[chain]
    with j.registers.engine(chain).connect() as conn:
        return conn.execute(select(log).order_by(log.c.seq)).all()


def test_a1_terminal_activation_enrollment_and_biometric_login(j):
    b = j.b
    b.go(f"{j.base}/terminal/activate?code={j.activation}")
    b.wait_css("#activate-button").click()
    b.wait_css("#message")
    assert "T0001" in b.find("#message").text
    enroll(j, f"{j.base}/enroll?token={j.admin_token}")
    creds = b.credentials()
    assert len(creds) == 1 and creds[0]["rpId"] == "localhost"
    login(j, j.admin_id)
    assert "業務メニュー" in b.source()
    entries = [(e.action, e.outcome, e.operator_id, e.terminal_id) for e in oplog(j, "admin")]
    assert ("enroll", "granted", j.admin_id, "T0001") in entries
    assert ("login", "granted", j.admin_id, "T0001") in entries
    login_entry = [e for e in oplog(j, "admin") if e.action == "login"][-1]
    assert json.loads(login_entry.detail)["method"] == "webauthn"


def test_a1_login_refused_without_user_verification(j, admin_logged_in):
    b = j.b
    logout(j)
    j.last_login_seq = oplog(j, "admin")[-1].seq
    b.set_user_verified(False)
    try:
        b.go(f"{j.base}/login")
        b.wait_css("#operator_id").send_keys(j.admin_id)
        b.find("#login-button").click()
        b.wait_css("#webauthn-error")
        assert b.driver.current_url.endswith("/login")
    finally:
        b.set_user_verified(True)
    # the browser will not even produce an assertion without user verification (UV is required);
    # no session was opened
    assert not [e for e in oplog(j, "admin") if e.action == "login" and e.outcome == "granted"
                and e.seq > j.last_login_seq]
    login(j, j.admin_id)


def test_a2_administrator_registers_operators_on_the_roster(j, admin_logged_in):
    b = j.b
    b.go(f"{j.base}/roster")
    b.wait_css("#new-operator")
    for oid, name, roles, regs, affairs in (("KENSAKU01", "検索　担当", ["operator"], ["juki", "fuhyo"], ["search"]),
                                            ("KANSA01", "監査　担当", ["auditor"], [], [])):
        b.find("#new_display_name").send_keys(name)
        b.find("#new_operator_id").send_keys(oid)
        for r in roles:
            b.find(f"#new-role-{r}").click()
        for r in regs:
            b.find(f"#new-reg-{r}").click()
        for a in affairs:
            b.find(f"#new-affair-{a}").click()
        b.find("#create-operator").click()
        b.wait_css("#notice-link")
        j.links[oid] = b.find("#notice-link").text.strip()
        assert j.links[oid].startswith(f"{j.base}/enroll?token=")
    rows = b.find("#roster").text
    assert "KENSAKU01" in rows and "KANSA01" in rows
    registered = [json.loads(e.detail)["target"] for e in oplog(j, "admin") if e.action == "operator_register"]
    assert {"KENSAKU01", "KANSA01"} <= set(registered)
    logout(j)


def test_s1_d4_search_and_detail_in_the_browser(j, kensaku_registered):
    b = j.b
    enroll(j, j.links["KENSAKU01"])
    login(j, "KENSAKU01")
    b.go(f"{j.base}/search")
    from selenium.webdriver.support.ui import Select

    Select(b.wait_css("#purpose_code")).select_by_value("inquiry")
    b.find("#reg-fuhyo").click()
    b.find("#name").send_keys("やまだ")
    b.find("#match-prefix").click()
    b.find("#search-button").click()
    b.wait(lambda d: "該当" in b.find("#results").text)
    text = b.find("#results").text
    assert "山田　太郎" in text and "山多　次郎" in text  # ヤマダ ≡ ヤマタ on the 清音化 key
    assert "昭和55年4月1日" in text                       # 和暦
    assert "山田　一" not in text                         # removed persons only on request
    assert "/search" in b.driver.current_url and "やまだ" not in b.driver.current_url
    # the detail of 山田 太郎 in D1, with its history
    rows = b.finds("table.results tbody tr")
    target = next(r for r in rows if "山田　太郎" in r.text and "住基" in r.text)
    target.find_element("css selector", ".detail-button").click()
    b.wait_css("#record")
    assert "丸之内" in b.find("#record").text and "広明町" in b.find("#history").text
    assert "10000000001" not in b.driver.current_url
    # 外字: 𠮷 is shown in IPAmj明朝 served from the system font
    b.go(f"{j.base}/search")
    Select(b.wait_css("#purpose_code")).select_by_value("inquiry")
    b.find("#name").send_keys("𠮷田　さくら")
    b.find("#search-button").click()
    b.wait(lambda d: "該当" in b.find("#results").text)
    cell = b.find("td.name")
    assert cell.text == "𠮷田　さくら"
    family = b.driver.execute_script("return getComputedStyle(arguments[0]).fontFamily", cell)
    assert "IPAmjMincho" in family
    loaded = b.driver.execute_async_script(
        "const done = arguments[0]; document.fonts.load('16px IPAmjMincho', '𠮷').then(f => done(f.length))")
    assert loaded >= 1
    actions = [(e.action, e.outcome, e.operator_id, e.purpose_code) for e in oplog(j, "juki")]
    assert ("search", "granted", "KENSAKU01", "inquiry") in actions and ("detail", "granted", "KENSAKU01", "inquiry") in actions


def test_a6_idle_screen_locks_blanks_personal_data_and_needs_reauthentication(j, kensaku_logged_in):
    b = j.b
    from selenium.webdriver.support.ui import Select

    j.sec.cfg.idle_minutes = 0.1  # 6 seconds
    try:
        b.go(f"{j.base}/search")
        Select(b.wait_css("#purpose_code")).select_by_value("inquiry")
        b.find("#name").send_keys("ヤマダ")
        b.find("#match-prefix").click()
        b.find("#search-button").click()
        b.wait(lambda d: "山田" in b.find("#results").text)
        b.wait_path("/lock", timeout=30)
        b.wait_css("#lock-message")
        assert "山田" not in b.source() and "ヤマダ" not in b.source()
        # the server refuses the old session too
        b.go(f"{j.base}/search")
        b.wait_path("/lock")
    finally:
        j.sec.cfg.idle_minutes = 5
    idle = [e for e in oplog(j, "admin") if e.action == "screen_lock" or json.loads(e.detail).get("code") == "SESSION_IDLE"]
    assert idle
    assert b.find("#operator_id").get_attribute("value") == "KENSAKU01"
    b.find("#login-button").click()
    b.wait_css("#operator-id")
    assert "業務メニュー" in b.source()
    logout(j)


def test_a3_role_without_scope_is_refused_and_logged(j, kansa_registered):
    b = j.b
    enroll(j, j.links["KANSA01"])
    login(j, "KANSA01")
    assert "本人確認情報検索" not in b.find("header").text
    b.go(f"{j.base}/search")
    msg = b.wait_css("#message")
    assert msg.get_attribute("data-code") == "FORBIDDEN"
    refusals = [e for e in oplog(j, "admin") if e.outcome == "refused" and e.operator_id == "KANSA01"]
    assert refusals and json.loads(refusals[-1].detail)["code"] == "FORBIDDEN"
    b.go(f"{j.base}/audit")
    b.wait_css("#verify-button").click()
    b.wait_css("#verify-result")
    assert b.find("#verify-result").text.count("正常") == 3
    logout(j)
