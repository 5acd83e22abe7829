"""Issue 19 (ADR 0048) in a real browser: long work shows its progress, printing a 帳票 confirms its number.

- 一括提供 of a large conditions file runs in the background: the browser is sent to a progress page
  (``/jobs/<random key>``, nothing personal in the URL) whose bar htmx refreshes every second; when the
  run is over the result page follows by itself, with the result file's password — shown once: a reload
  of the same page says it was shown and no longer shows it.
- Printing a disclosure form (PDF) confirms on the screen 「帳票番号 X を発行しました」 with the serial of
  the form register; a wrong number of copies is shown at the screen's error summary instead.
- axe-core: 0 serious or critical violations on the progress page, the result page and the confirmation.

Debian's chromium, headless; the PDF itself is not written to disk by the test."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import axe  # noqa: E402
from harness import require_browser  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")

require_browser()


@pytest.fixture
def provision_site(make_site, browser):
    from provision import people as P   # tests/provision/people.py

    from jukinet.provision import catalogue as C
    from jukinet.security.oplog import Actor

    s = make_site(people=False)
    s.config.provision.national_fallback = False
    s.config.provision.batch_approval_threshold = 1_000_000
    P.seed(s.registers)
    C.ensure_default(s.registers, s.app.state.provision.oplog)
    _op, token = s.sec.register_operator(Actor("bootstrap", None), display_name="提供　担当", roles=["operator"],
                                         registers=["juki", "fuhyo"], affairs=["provision"], operator_id="PROV01")
    browser.activate_enroll_login(s.base, s.code, token, "PROV01")
    return {"b": browser, "base": s.base, "registers": s.registers, "P": P}


def test_q4_batch_provision_shows_progress_then_the_result_and_the_password_once(provision_site, tmp_path):
    from selenium.webdriver.support.ui import Select

    from jukinet.store.tables_provision import provision_media

    b, base, P = provision_site["b"], provision_site["base"], provision_site["P"]
    rows = 20_000          # long enough (seconds) for the progress page to be seen
    conditions = tmp_path / "conditions.csv"
    conditions.write_text("依頼番号,住民票コード\n" + "".join(f"R-{i},{P.TARO}\n" for i in range(rows)),
                          encoding="utf-8")
    b.go(f"{base}/provision/batch")
    Select(b.wait_css("#requester_code")).select_by_value("SOMU")
    Select(b.find("#affair_code")).select_by_value("SOMU-KENZEI")
    b.find("#file").send_keys(str(conditions))
    b.find("#batch-button").click()

    bar = b.wait_css("#job-progress")
    url = b.driver.current_url
    assert "/jobs/job-" in url and P.TARO not in url
    assert bar.get_attribute("hx-trigger") == "every 1s"
    assert b.find("h1").text.startswith("一括提供")
    assert axe.blocking(b, "一括提供 処理の状況") == []
    if os.environ.get("JUKINET_SCREENSHOTS"):
        b.screenshot(Path(os.environ["JUKINET_SCREENSHOTS"]) / "batch-progress.png")
    seen = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = b.finds("#job-count")
        if found:
            try:
                seen.add(found[0].text)
            except Exception:           # swapped while read: read it at the next turn
                pass
        if b.finds("#batch-result"):
            break
        time.sleep(0.2)
    assert b.finds("#batch-result"), "the result page did not follow the progress page"
    assert any(f"/ {rows:,} 行" in t for t in seen), seen      # the counts were shown while it ran
    assert b.driver.current_url == url                         # the result page is the same GET (PRG)
    password = b.find("#media-password").text
    media_id = b.find("#media-id").text
    assert len(password) >= 12 and f"{rows}" in b.find("#batch-result").text.replace(",", "")
    assert axe.blocking(b, "一括提供 結果") == []
    with provision_site["registers"].admin_tx(write=False) as conn:
        m = conn.execute(select(provision_media).where(provision_media.c.media_id == media_id)).one()
    assert m.operator_id == "PROV01" and m.rows_total == rows and m.status == "written"

    b.driver.refresh()                                         # a reload: the password is not shown again
    b.wait_css("#media-password-shown")
    assert not b.finds("#media-password") and password not in b.source()
    assert b.find("#media-id").text == media_id


@pytest.fixture
def disclosure_site(make_site, browser):
    from disclosure.conftest import seed   # tests/disclosure/conftest.py

    from jukinet.security.oplog import Actor

    s = make_site(people=False)
    seed(s.registers)
    _op, token = s.sec.register_operator(Actor("bootstrap", None), display_name="開示　担当", roles=["operator"],
                                         registers=["juki", "fuhyo"], affairs=["disclosure"], operator_id="DISC01")
    browser.activate_enroll_login(s.base, s.code, token, "DISC01")
    return {"b": browser, "base": s.base, "registers": s.registers}


def test_q4_printing_a_disclosure_form_confirms_its_form_number(disclosure_site):
    from selenium.webdriver.support.ui import Select

    from jukinet.store.tables_disclosure import form_register

    b, base = disclosure_site["b"], disclosure_site["base"]
    b.go(f"{base}/disclosure")
    b.wait_css("#request_no").send_keys("B-0002")
    b.find("#name").send_keys("葛城吉子")
    b.find("#birth_date").send_keys("S36.2.3")
    Select(b.find("#sex")).select_by_value("2")
    b.find("#address").send_keys("名張市丸之内79番地")
    b.find("#intake-button").click()
    b.wait_css("#intake-result")
    row = '#requests tr[data-request="B-0002"]'
    if b.finds(f"{row} select.reason"):
        Select(b.find(f"{row} select.reason")).select_by_value("gaiji_variant")
        b.find(f"{row} .decide-button").click()
        b.wait_css("#disclosure-notice")

    # a wrong number of copies: the message is shown, nothing is issued
    copies = b.wait_css(f"{row} input[name=copies]")
    copies.clear()
    copies.send_keys("9")
    b.find(f"{row} .issue-button").click()
    summary = b.wait_css("#error-summary")
    assert "部数" in summary.text
    with disclosure_site["registers"].admin_tx(write=False) as conn:
        assert conn.execute(select(form_register)).all() == []

    b.go(f"{base}/disclosure")
    b.wait_css(f"{row} .issue-button").click()
    notice = b.wait_css("#print-notice")
    with disclosure_site["registers"].admin_tx(write=False) as conn:
        serial = conn.execute(select(form_register.c.serial)).scalar_one()
    assert notice.text.startswith(f"帳票番号 {serial} を発行しました")
    assert b.find("#print-serial").text == serial
    assert notice.get_attribute("role") == "status"
    assert axe.blocking(b, "帳票の発行の確認") == []
    if os.environ.get("JUKINET_SCREENSHOTS"):
        b.screenshot(Path(os.environ["JUKINET_SCREENSHOTS"]) / "print-confirmation.png")
    # the form register lists the same number
    b.find("#print-notice a").click()
    assert "交付済み" in b.wait_css(f'#form-register tr[data-serial="{serial}"]').text
