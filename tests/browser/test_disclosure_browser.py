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
