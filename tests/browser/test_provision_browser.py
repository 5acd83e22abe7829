"""P2/P5 in a real browser: an operator with 事務2 in scope activates the terminal, enrolls a fingerprint
(virtual WebAuthn authenticator), logs in and makes a single provision — the result shows only the
affair's items and the 突合 item by item; a refusal is shown with its code; both are in the provision
record with the terminal. Debian's chromium, headless; nothing is downloaded."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).parent))
from harness import require_browser  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")

require_browser()


@pytest.fixture
def site(make_site, browser):
    """A fresh installation with the provision residents, the default catalogue and the operator PROV01
    (事務2 in scope); this browser activated as the terminal T0001, PROV01 enrolled and logged in."""
    from provision import people as P   # tests/provision/people.py

    from jukinet.provision import catalogue as C
    from jukinet.security.oplog import Actor

    s = make_site(people=False)
    s.config.provision.national_fallback = False
    P.seed(s.registers)
    C.ensure_default(s.registers, s.app.state.provision.oplog)
    _op, token = s.sec.register_operator(Actor("bootstrap", None), display_name="提供　担当", roles=["operator"],
                                         registers=["juki", "fuhyo"], affairs=["provision"], operator_id="PROV01")
    browser.activate_enroll_login(s.base, s.code, token, "PROV01")
    return {"b": browser, "base": s.base, "registers": s.registers, "P": P}


def records(site):
    from jukinet.store.tables_provision import PROVISION_RECORDS

    t = PROVISION_RECORDS["juki"]
    with site["registers"].engine("juki").connect() as conn:
        return conn.execute(select(t).order_by(t.c.record_id)).all()


def test_p2_single_provision_in_a_real_browser(site):
    from selenium.webdriver.support.ui import Select

    b, base, P = site["b"], site["base"], site["P"]

    b.go(f"{base}/provision")
    Select(b.wait_css("#grant")).select_by_value("KOAN|KOAN-UNTEN")
    b.find("#juminhyo_code").send_keys(P.TARO)
    b.find("#name").send_keys("山田太郎")
    b.find("#birth_date").send_keys("S55.4.1")
    Select(b.find("#sex")).select_by_value("2")
    b.find("#provide-button").click()
    result = b.wait_css("#provision-result")
    assert result.get_attribute("data-outcome") == "provided"
    assert b.find("#outcome").text == "提供"
    items = {r.get_attribute("data-item") for r in b.finds("#provided-items tr")}
    assert items == {"name", "name_kana", "former_surname", "birth_date", "sex", "address", "reason", "change_date"}
    assert "山田　太郎" in b.find("#provided-items").text and P.TARO_NO not in b.source()
    match = b.find("#match").text
    assert "氏名 一致" in match and "生年月日 一致" in match and "性別 不一致" in match
    assert P.TARO not in b.driver.current_url
    rec = records(site)[-1]
    assert rec.outcome == "provided" and rec.operator_id == "PROV01" and rec.terminal_id == "T0001"
    assert rec.requester_code == "KOAN" and rec.affair_code == "KOAN-UNTEN"

    # the same terminal, an affair the requester is not granted: refused on screen, recorded
    Select(b.find("#grant")).select_by_value("SOMU|SOMU-KENZEI")
    kb = b.find("#kojin_bango")
    kb.clear()
    b.find("#juminhyo_code").clear()
    b.find("#juminhyo_code").send_keys(P.TARO[:-1] + ("0" if P.TARO[-1] != "0" else "1"))
    b.find("#provide-button").click()
    err = b.wait_css("#error-summary")                     # the summary at the top, the message at the field
    assert err.get_attribute("data-code") == "JUMINHYO_CODE_CHECKSUM" and "検査数字" in err.text
    assert "検査数字" in b.find("#juminhyo_code-error").text
    assert b.find("#juminhyo_code").get_attribute("aria-invalid") == "true"
    assert records(site)[-1].reason_code == "JUMINHYO_CODE_CHECKSUM"
    shots = os.environ.get("JUKINET_SCREENSHOTS")
    if shots:
        b.screenshot(Path(shots) / "provision.png")
