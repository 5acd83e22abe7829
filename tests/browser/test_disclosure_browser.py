"""O1/A5 in a real browser: an operator with 事務3 in scope activates the terminal, enrolls a fingerprint
(virtual WebAuthn authenticator), logs in, takes a written disclosure request at the counter whose name
is written without the 外字 (partial match), records the decision, prints the disclosure form (PDF,
IPAmj明朝) and finds it in the form register. Debian's chromium, headless; nothing is downloaded."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from harness import require_browser  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")

require_browser()


@pytest.fixture
def site(make_site, browser):
    """A fresh installation with the disclosure residents and the operator DISC01 (事務3 in scope); this
    browser activated as the terminal T0001, DISC01's fingerprint enrolled, DISC01 logged in."""
    from disclosure.conftest import seed   # tests/disclosure/conftest.py

    from jukinet.security.oplog import Actor

    s = make_site(people=False)
    seed(s.registers)
    _op, token = s.sec.register_operator(Actor("bootstrap", None), display_name="開示　担当", roles=["operator"],
                                         registers=["juki", "fuhyo"], affairs=["disclosure"], operator_id="DISC01")
    browser.activate_enroll_login(s.base, s.code, token, "DISC01")
    return {"b": browser, "base": s.base, "registers": s.registers, "app": s.app}


def test_o1_disclosure_request_partial_match_decision_and_form_in_a_real_browser(site):
    from pypdf import PdfReader
    from selenium.webdriver.support.ui import Select

    from disclosure.conftest import KATSURAGI_NAME

    from jukinet.store.tables_disclosure import DISCLOSURE_REQUESTS, form_register

    b, base = site["b"], site["base"]

    b.go(f"{base}/disclosure")
    b.wait_css("#request_no").send_keys("B-0001")
    b.find("#name").send_keys("葛城吉子")          # written without the 外字 / IVS
    b.find("#birth_date").send_keys("S36.2.3")
    Select(b.find("#sex")).select_by_value("2")
    b.find("#address").send_keys("名張市丸之内79番地")
    Select(b.find("#scope")).select_by_value("history")
    b.find("#intake-button").click()
    result = b.wait_css("#intake-result")
    assert result.get_attribute("data-outcome") == "partial"
    assert "氏名 不一致" in b.find("#match").text and "生年月日 一致" in b.find("#match").text
    assert "B-0001" not in b.driver.current_url and "葛" not in b.driver.current_url

    row = '#requests tr[data-request="B-0001"]'
    Select(b.find(f"{row} select.reason")).select_by_value("gaiji_variant")
    b.find(f"{row} .decide-button").click()
    b.wait_css("#disclosure-notice")
    with site["registers"].engine("juki").connect() as conn:
        req = conn.execute(select(DISCLOSURE_REQUESTS["juki"])).one()
    assert req.decision == "accepted" and req.decided_by == "DISC01" and req.decision_reason == "gaiji_variant"

    # print: the browser POSTs the form; the PDF comes back as a download (fetched here by the same
    # session to read it back), and the form register lists its serial
    b.wait_css(f"{row} .issue-button")
    pdf = b.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const f = document.querySelector('#requests tr[data-request="B-0001"] form.issue');
        fetch(f.action, {method: 'POST', body: new FormData(f), credentials: 'same-origin'})
          .then(r => r.arrayBuffer().then(buf => done({status: r.status, type: r.headers.get('content-type'),
                serial: r.headers.get('x-form-serial'), b64: btoa(String.fromCharCode(...new Uint8Array(buf)))})));
    """)
    assert pdf["status"] == 200 and pdf["type"] == "application/pdf"
    import base64

    text = PdfReader(io.BytesIO(base64.b64decode(pdf["b64"]))).pages[0].extract_text()
    assert KATSURAGI_NAME in text and pdf["serial"] in text and "昭和36年2月3日" in text
    b.go(f"{base}/disclosure/forms")
    reg = b.wait_css(f'#form-register tr[data-serial="{pdf["serial"]}"]')
    assert "交付済み" in reg.text and "DISC01" in reg.text
    with site["registers"].admin_tx(write=False) as conn:
        assert conn.execute(select(form_register.c.terminal_id)).scalar_one() == "T0001"
    shots = os.environ.get("JUKINET_SCREENSHOTS")
    if shots:
        b.screenshot(Path(shots) / "disclosure-forms.png")


def test_o4_o5_suspension_request_report_and_decision_in_a_real_browser(site):
    """O4/O5 at the counter: a 利用停止請求 for a disclosed request — a refusal shown with its code, the
    fees on the screen, investigation, the 通報 to 名張市, the decision; the 通報 list shows it waiting
    for the CS."""
    from selenium.webdriver.support.ui import Select

    from disclosure.conftest import OP

    from jukinet.disclosure.service import DisclosureService, IntakeCommand
    from jukinet.store.tables_disclosure import MUNICIPAL_REPORTS, SUSPENSION_REQUESTS

    b, base = site["b"], site["base"]
    svc = DisclosureService(site["app"].state.config, site["registers"])
    svc.intake(IntakeCommand(register="juki", request_no="B-0100", name="葛城𠮷子".replace("葛", "葛\U000E0102"),
                             birth_date="1961-02-03", sex="2", address="名張市丸之内79番地"), OP, "T0001")
    svc.disclosure_form("juki", "B-0100", OP, "T0001")

    b.go(f"{base}/disclosure/suspensions")
    b.wait_css("#s_request_no").send_keys("B-0100")
    Select(b.find("#s_kind")).select_by_value("stop_use")
    Select(b.find("#s_grounds")).select_by_value("unlawful_provision")     # does not fit 利用の停止
    b.find("#s_statement").send_keys("目的外に利用されている")
    b.find("#suspension-button").click()
    err = b.wait_css("#error-summary")                # the error summary at the top (ADR 0043)
    assert err.get_attribute("data-code") == "SUSPENSION_GROUNDS_MISMATCH"
    with site["registers"].engine("juki").connect() as conn:
        assert conn.execute(select(SUSPENSION_REQUESTS["juki"])).first() is None

    Select(b.find("#s_grounds")).select_by_value("outside_purpose")
    copies = b.find("#s_copy_sheets")
    copies.clear()
    copies.send_keys("2")
    b.find("#suspension-button").click()
    b.wait_css("#disclosure-notice")
    row = b.wait_css('#suspensions tr[data-status="received"]')
    sid = row.get_attribute("data-suspension")
    assert "手数料 無料" in row.text and "複写 2枚 (A4) 20円" in row.text

    sel = f'#suspensions tr[data-suspension="{sid}"]'
    b.find(f'{sel} .step-button[data-to="investigating"]').click()
    b.wait_css(f'#suspensions tr[data-suspension="{sid}"][data-status="investigating"]')
    b.find(f"{sel} form.report input[name=municipality_code]").send_keys("242080")
    b.find(f'{sel} form.report input[name=items][value="address"]').click()
    b.find(f"{sel} .report-button").click()
    # the report form is sent by fetch (data-print, ADR 0048): wait for the new notice, not the step's
    b.wait(lambda d: "通報 juki-" in d.find_element("css selector", "#disclosure-notice").text)
    Select(b.find(f"{sel} form.decide select[name=decision]")).select_by_value("partial")
    Select(b.find(f"{sel} form.decide select[name=reason]")).select_by_value("violation_found")
    b.find(f"{sel} .decide-button").click()
    b.wait_css(f'#suspensions tr[data-suspension="{sid}"][data-status="decided"]')
    with site["registers"].engine("juki").connect() as conn:
        s = conn.execute(select(SUSPENSION_REQUESTS["juki"])).one()
        rep = conn.execute(select(MUNICIPAL_REPORTS["juki"])).one()
    assert (s.decision, s.decided_by, s.fee_yen) == ("partial", "DISC01", 20)
    assert rep.municipality_code == "242080" and rep.state == "pending" and rep.form_serial

    b.go(f"{base}/disclosure/reports")
    r = b.wait_css(f'#municipal-reports tr[data-report="{rep.report_id}"]')
    assert "送信待ち" in r.text and rep.form_serial in r.text
    shots = os.environ.get("JUKINET_SCREENSHOTS")
    if shots:
        b.go(f"{base}/disclosure/suspensions")
        b.wait_css("#suspensions")
        b.screenshot(Path(shots) / "disclosure-suspensions.png")
