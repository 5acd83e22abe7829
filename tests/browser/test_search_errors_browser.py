"""Issue 19 in a real browser (Debian's chromium, headless): no silent failure on the search screen.

An invalid 生年月日 (昭和99年13月1日), an empty search, a search by 性別 alone: the server's coded
Japanese message appears under the field (``aria-invalid`` + ``aria-describedby``) and in an error
summary at the top that takes focus, with the machine code in small print. A refusal page, a server
failure (500) and a lost network are shown too. And the 個人番号 on the detail page is masked, shown in
full only by 「個人番号を表示」 for a purpose that needs it (A3).

Each test starts from the search screen of its own logged-in operator (module fixture: one server,
one browser) and asserts only on what it did itself: any test passes alone and in any order.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from harness import Browser, Server, activate_and_enroll, free_port, login_as, require_browser, setup_site  # noqa

pytestmark = pytest.mark.xdist_group("browser")
require_browser()

OPERATOR = "KENSAKU01"
NUMBER = "123456789018"


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    from jukinet.domain.records import JukiRecord, derive_juki
    from jukinet.security.oplog import Actor

    port = free_port()
    _config, registers, app, code, admin_id, _admin_token = setup_site(tmp_path_factory.mktemp("errors") / "data",
                                                                      port=port)
    sec = app.state.security
    _op, token = sec.register_operator(Actor(admin_id, None), display_name="検索　担当", roles=["operator"],
                                       registers=["juki"], affairs=["search"], operator_id=OPERATOR)
    with registers.juki_uow() as uow:
        uow.repo.apply(derive_juki(JukiRecord(
            juminhyo_code="10000000011", name="番号　花子", name_kana="バンゴウ　ハナコ", birth_date=date(1975, 6, 1),
            sex="2", address="三重県津市広明町13番地", kojin_bango=NUMBER, reason="国内転入",
            change_date=date(2020, 4, 1), municipality_code="242012")))

    class S:
        pass

    st = S()
    st.base, st.registers, st.app = f"http://localhost:{port}", registers, app
    with Server(app, port):
        b = Browser()
        st.b = b
        try:
            activate_and_enroll(b, st.base, code, (token,))
            login_as(b, st.base, OPERATOR)
            yield st
        finally:
            b.close()
            registers.dispose()


def _search_form(s, purpose="inquiry"):
    from selenium.webdriver.support.ui import Select

    s.b.go(f"{s.base}/search")
    Select(s.b.wait_css("#purpose_code")).select_by_value(purpose)
    return s.b


def _active_id(b) -> str:
    return b.driver.execute_script("return document.activeElement && document.activeElement.id")


def _juki_log(s):
    from jukinet.store.tables_security import OPLOG

    log, _ = OPLOG["juki"]
    with s.registers.engine("juki").connect() as conn:
        return conn.execute(select(log).order_by(log.c.seq)).all()


def test_s1_invalid_birth_date_is_shown_under_the_field_and_in_a_focused_summary(s):
    b = _search_form(s)
    before = len(_juki_log(s))
    b.find("#birth_from").send_keys("昭和99年13月1日")
    b.find("#search-button").click()
    summary = b.wait_css("#error-summary")
    assert "生年月日" in summary.text and "DATE_FORMAT" in summary.text
    assert summary.get_attribute("role") == "alert"
    b.wait(lambda d: _active_id(b) == "error-summary")                  # the summary takes focus
    link = summary.find_element("css selector", "a")
    assert link.get_attribute("href").endswith("#birth_from")
    field = b.find("#birth_from")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby").split() == ["birth_from-error", "birth_from-hint"]
    msg = b.find("#birth_from-error")
    assert msg.is_displayed() and "生年月日" in msg.text and "DATE_FORMAT" not in msg.text   # plain Japanese first
    assert field.get_attribute("value") == "昭和99年13月1日"                                  # what was typed stays
    # the code is in small print, below the message
    code = summary.find_element("css selector", ".error-code")
    def size(el) -> float:
        return float(b.driver.execute_script("return parseFloat(getComputedStyle(arguments[0]).fontSize)", el))
    assert "DATE_FORMAT" in code.text and size(code) < size(link)
    assert "昭和99" not in b.driver.current_url
    # following the summary's link puts the cursor in the field
    link.click()
    b.wait(lambda d: _active_id(b) == "birth_from")
    # logged as an input error (not a refusal)
    new = _juki_log(s)[before:]
    assert [(e.action, e.outcome) for e in new] == [("search", "invalid")]


def test_s1_empty_search_and_sex_only_are_shown_next_to_the_name_field(s):
    from selenium.webdriver.support.ui import Select

    b = _search_form(s)
    b.find("#search-button").click()
    summary = b.wait_css("#error-summary")
    assert "氏名・生年月日・住所のいずれかを入力してください" in summary.text and "SEARCH_TOO_BROAD" in summary.text
    assert b.find("#name").get_attribute("aria-invalid") == "true"
    assert "いずれかを入力してください" in b.find("#name-error").text
    b.wait(lambda d: _active_id(b) == "error-summary")
    # a correction clears the error: the next search shows results and no summary
    Select(b.find("#sex")).select_by_value("2")
    b.find("#search-button").click()
    b.wait(lambda d: _active_id(b) == "error-summary" and "SEARCH_TOO_BROAD" in b.find("#error-summary").text)
    b.find("#name").send_keys("番号　花子")
    b.find("#search-button").click()
    b.wait(lambda d: "該当" in b.find("#results").text)
    assert not b.finds("#error-summary") and b.find("#name").get_attribute("aria-invalid") is None


def test_s1_a_refusal_page_is_shown_not_dropped(s):
    b = _search_form(s)
    b.find("#name").send_keys("番号")
    # a register out of the operator's scope (only reachable by tampering with the form): 403
    b.driver.execute_script("""const i = document.createElement('input'); i.type = 'hidden';
        i.name = 'registers'; i.value = 'fuhyo'; document.getElementById('search-form').appendChild(i);""")
    b.find("#search-button").click()
    box = b.wait_css("#request-error")
    assert "この操作を行う権限がありません" in box.text and "FORBIDDEN" in box.text
    b.wait(lambda d: _active_id(b) == "request-error")


def test_s1_server_failure_and_network_loss_are_shown(s, monkeypatch):
    from jukinet.search import service as search_service

    def broken(*a, **kw):
        raise RuntimeError("simulated failure")

    b = _search_form(s)
    b.find("#name").send_keys("番号")
    monkeypatch.setattr(search_service, "search", broken)
    b.find("#search-button").click()
    box = b.wait_css("#request-error")
    assert "サーバ内部でエラーが発生" in box.text and "INTERNAL_ERROR" in box.text     # the server's coded message
    b.wait(lambda d: _active_id(b) == "request-error")
    monkeypatch.undo()
    # the network is lost
    b.driver.execute_cdp_cmd("Network.enable", {})
    b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        b.find("#search-button").click()
        b.wait(lambda d: "NETWORK_ERROR" in b.find("#request-error").text)
        assert "サーバに接続できませんでした" in b.find("#request-error").text
    finally:
        b.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    # back online: the search works (Post/Redirect/Get: the results page) and no error box is left
    b.find("#search-button").click()
    b.wait(lambda d: "該当" in b.find("#results").text)
    assert b.driver.current_url.endswith("/search/results")
    assert not [e for e in b.finds("#request-error") if e.is_displayed()]


def _open_detail(s, purpose):
    b = _search_form(s, purpose)
    b.find("#name").send_keys("番号　花子")
    b.find("#search-button").click()
    b.wait(lambda d: "該当" in b.find("#results").text)
    b.find(".detail-button").click()
    b.wait_css("#record")
    return b


def test_a3_kojin_bango_masked_on_the_detail_page_and_revealed_only_for_a_purpose_that_needs_it(s):
    b = _open_detail(s, "inquiry")
    assert NUMBER not in b.source()
    assert b.find("#kojin-bango-masked").text == "●●●●●●●●9018"
    assert not b.finds("#kojin-bango-reveal")
    b = _open_detail(s, "correction")
    assert NUMBER not in b.source()
    before = len(_juki_log(s))
    b.find("#kojin-bango-reveal").click()
    assert b.wait_css("#kojin-bango-full").text == NUMBER
    assert "操作ログに記録しました" in b.find("#kojin-bango-cell").text
    assert b.find("#record")                                     # still on the detail page
    new = _juki_log(s)[before:]
    assert [(e.action, e.outcome, e.purpose_code) for e in new] == [("kojin_bango_reveal", "granted", "correction")]
