"""Issue 19 in a real browser (Debian's chromium, headless): every screen passes axe-core, and every form
shows a wrong input's message next to its field.

* **A11y (WCAG 2.2 AA)**: axe-core (npm, vendored in tests/browser/vendor) runs on every screen of the
  operator UI — signed out, as a 業務担当者 who is also 管理責任者 and 監査者 (every 事務 in scope), as the
  システム管理者 and as the 運用担当者 — and on the screens with an error shown: 0 serious or critical
  violations.
* **Errors where the eye is**: for every form, a wrong input gives the error summary at the top (it takes
  focus, links to the field), the message in the field's own block under the control, the field
  ``aria-invalid="true"`` and ``aria-describedby`` naming the message; the machine code only in small
  print in the summary.
* **Search**: results kept in the session — paging and 「検索結果に戻る」 from a detail log no new search;
  sorted in kana order (清音化 key); the 状態 column filled; no personal data in any URL; a reload of a
  result or a detail re-submits nothing (Post/Redirect/Get).
* **/provision**: the 提供先 select stays inside its card; each option names the requester.

Each test builds its own installation on the engine under test (SQLite, and PostgreSQL when
``JUKINET_TEST_POSTGRES_URL`` is set) and asserts only on what it did itself.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import axe  # noqa: E402
from harness import activate_and_enroll, login_as, require_browser  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")
require_browser()

GYOMU = "GYOMU01"
UNYO = "UNYO01"

# (persona, path, what must be on it) — every screen of the operator UI an operator reaches by a link
SCREENS = [
    (GYOMU, "/", "#main h1"),
    (GYOMU, "/search", "#search-form"),
    (GYOMU, "/provision", "#provision-form"),
    (GYOMU, "/provision/batch", "#batch-form"),
    (GYOMU, "/provision/approvals", "#approval-form"),
    (GYOMU, "/provision/media", "#main h1"),
    (GYOMU, "/provision/records", "#main h1"),
    (GYOMU, "/query/national", "#national-form"),
    (GYOMU, "/disclosure", "#intake-form"),
    (GYOMU, "/disclosure/corrections", "#correction-form"),
    (GYOMU, "/disclosure/forms", "#form-register"),
    (GYOMU, "/disclosure/inquiries", "#inquiry-form"),
    (GYOMU, "/stats", "#stats-apply"),
    (GYOMU, "/audit/reports", "#action-form"),
    (GYOMU, "/audit", "#main h1"),
    ("admin", "/", "#main h1"),
    ("admin", "/roster", "#new-operator"),
    ("admin", "/roster/training", "#training-form"),
    ("admin", "/roster/inventory", "#main h1"),
    ("admin", "/provision/catalogue", "#requester-form"),
    (UNYO, "/ops", "#ops-databases"),
]


@pytest.fixture
def site(make_site, browser):
    """A fresh installation: residents (tests/web/operator_site.py) plus a few more for sorting and
    paging, the default provision catalogue, GYOMU01 (業務担当者・管理責任者・監査者, every 事務), the
    bootstrapped administrator and UNYO01 (運用担当者), all enrolled on this browser's terminal."""
    from jukinet.codes import juminhyo_code_check_digit, kojin_bango_check_digit
    from jukinet.domain.records import JukiRecord, derive_juki
    from jukinet.provision import catalogue as C
    from jukinet.security.oplog import Actor

    s = make_site(people=True)
    s.config.provision.national_fallback = False
    C.ensure_default(s.registers, s.app.state.provision.oplog)
    # 25 more 津市 residents named in an order that is not the kana order of their codes
    kana = ["ワタナベ", "アオキ", "ガトウ", "カトウ", "サイトウ", "ザイツ", "タナカ", "ダテ", "ナカムラ", "ハシモト",
            "バンドウ", "パク", "マツモト", "ヤマグチ", "ラン", "イシイ", "ウエダ", "エトウ", "オオノ", "キムラ",
            "クボ", "ケンモチ", "コバヤシ", "シミズ", "スズキ"]
    with s.registers.juki_uow() as uow:
        for i, k in enumerate(kana):
            code = f"2{i:09d}"
            code += juminhyo_code_check_digit(code)
            number = f"3{i:010d}"
            number += kojin_bango_check_digit(number)
            uow.repo.apply(derive_juki(JukiRecord(
                juminhyo_code=code, name=f"試験　{i:02d}", name_kana=f"{k}　イチロウ", birth_date=date(1990, 1, 1 + i % 28),
                sex="1", address="三重県津市栄町一丁目99番地", reason="国内転入", change_date=date(2020, 4, 1),
                municipality_code="242012", kojin_bango=number)))
    sec = s.sec
    _, t1 = sec.register_operator(Actor(s.admin_id, None), display_name="業務　一郎",
                                  roles=["operator", "manager", "auditor"], registers=["juki", "fuhyo"],
                                  affairs=["search", "provision", "disclosure", "national"], operator_id=GYOMU)
    _, t2 = sec.register_operator(Actor(s.admin_id, None), display_name="運用　担当", roles=["operations"],
                                  operator_id=UNYO)
    s.tokens = {GYOMU: t1, UNYO: t2, "admin": s.admin_token}
    s.b = browser
    return s


def _enroll_all(s):
    """Screens seen on the way in (activation, enrollment, login) pass axe too; returns their violations."""
    b, found = s.b, []
    b.go(f"{s.base}/terminal/activate?code={s.code}")
    b.wait_css("#activate-button")
    found += axe.blocking(b, "/terminal/activate")
    activate_and_enroll(b, s.base, s.code, ())
    for who in (GYOMU, UNYO, "admin"):
        b.go(f"{s.base}/enroll?token={s.tokens[who]}")
        b.wait_css("#enroll-button")
        if who == GYOMU:
            found += axe.blocking(b, "/enroll")
        b.find("#enroll-button").click()
        b.wait_css("#enroll-done")
    b.go(f"{s.base}/login")
    b.wait_css("#operator_id")
    found += axe.blocking(b, "/login")
    return found


def _as(s, who: str) -> None:
    b = s.b
    if b.finds("#logout-button"):
        b.find("#logout-button").click()
        b.wait_css("#operator_id")
    login_as(b, s.base, s.admin_id if who == "admin" else who)


def _active_id(b) -> str:
    return b.driver.execute_script("return document.activeElement && document.activeElement.id")


def _search(s, **fields):
    from selenium.webdriver.support.ui import Select

    b = s.b
    b.go(f"{s.base}/search")
    Select(b.wait_css("#purpose_code")).select_by_value(fields.pop("purpose", "inquiry"))
    for k, v in fields.items():
        el = b.find(f"#{k}")
        el.clear()
        el.send_keys(v)
    b.find("#search-button").click()


def test_q4_axe_every_screen_has_no_serious_or_critical_violation(site):
    s, b = site, site.b
    found = _enroll_all(s)
    seen = set()
    for who in (GYOMU, "admin", UNYO):
        _as(s, who)
        for persona, path, marker in SCREENS:
            if persona != who:
                continue
            b.go(f"{s.base}{path}")
            b.wait_css(marker)
            assert not b.finds("#error-summary"), path      # a screen opened plainly shows no error
            found += axe.blocking(b, f"{path} ({who})")
            seen.add(path)
        if who == GYOMU:
            # the search with an error, its results, a detail; the provision form with an error
            _search(s, birth_from="昭和99年13月1日")
            b.wait_css("#error-summary")
            found += axe.blocking(b, "/search (error)")
            _search(s, address="三重県津市栄町一丁目99")
            b.wait_css("#result-count")
            found += axe.blocking(b, "/search/results")
            b.find(".detail-button").click()
            b.wait_css("#record")
            found += axe.blocking(b, "/detail/view")
            b.go(f"{s.base}/provision")
            b.wait_css("#provide-button").click()
            b.wait_css("#error-summary")
            found += axe.blocking(b, "/provision (error)")
    b.find("#lock-button").click()
    b.wait_path("/lock")
    found += axe.blocking(b, "/lock")
    assert {p for _, p, _ in SCREENS} <= seen
    assert not found, "\n".join(found)


def _expect_field_error(b, field_id: str, code: str | None = None, group: str | None = None) -> str:
    """The error summary (focused, linking to the field) and the message in the field's block, under the
    control, with aria-invalid/aria-describedby; returns the message text."""
    summary = b.wait_css("#error-summary")
    b.wait(lambda d: _active_id(b) == "error-summary")
    assert summary.get_attribute("role") == "alert"
    link = summary.find_element("css selector", "a")
    assert link.get_attribute("href").endswith(f"#{field_id}"), (field_id, link.get_attribute("href"))
    small = summary.find_element("css selector", ".error-code")
    if code:
        assert code in small.text
    field = b.find(f"#{field_id}")
    assert field.get_attribute("aria-invalid") == "true", field_id
    # a single control names its message; a group of checkboxes: its fieldset does (``group``: its name)
    holder = b.driver.execute_script("return arguments[0].closest('fieldset')", field) if group else field
    described = (holder.get_attribute("aria-describedby") or "").split()
    msg_id = f"{group or field_id}-error"
    msg = b.find(f"#{msg_id}")
    assert msg_id in described and msg.is_displayed()
    # next to the field: in the same form-field block, below the control
    same_block = b.driver.execute_script(
        "const f = arguments[0].closest('.form-field'); return !!f && f.contains(arguments[1]);", field, msg)
    assert same_block, field_id
    assert msg.location["y"] >= field.location["y"]
    assert msg.text.strip() and (code is None or code not in msg.text)       # plain Japanese, no code
    assert float(small.value_of_css_property("font-size")[:-2]) < float(link.value_of_css_property("font-size")[:-2])
    # the summary's link brings the cursor to the field
    link.click()
    b.wait(lambda d: _active_id(b) == field_id)
    return msg.text


def test_q2_q4_every_form_shows_a_wrong_input_next_to_its_field(site):
    from selenium.webdriver.support.ui import Select

    s, b = site, site.b
    activate_and_enroll(b, s.base, s.code, [s.tokens[GYOMU], s.tokens["admin"]])
    _as(s, GYOMU)

    # 事務5 検索: an impossible 生年月日
    _search(s, birth_from="昭和99年13月1日")
    _expect_field_error(b, "birth_from", "DATE_FORMAT")

    # 事務2 提供 (1件): a 住民票コード whose 検査数字 is wrong
    b.go(f"{s.base}/provision")
    Select(b.wait_css("#grant")).select_by_value("KOAN|KOAN-UNTEN")
    b.find("#juminhyo_code").send_keys("10000000002")
    b.find("#provide-button").click()
    _expect_field_error(b, "juminhyo_code", "JUMINHYO_CODE_CHECKSUM")
    # … and no 提供先 chosen
    b.go(f"{s.base}/provision")
    b.wait_css("#provide-button").click()
    _expect_field_error(b, "grant")

    # 事務4 全国サーバへの照会: no purpose
    b.go(f"{s.base}/query/national")
    b.wait_css("#juminhyo_code").send_keys("10000000001")
    b.find("#national-button").click()
    _expect_field_error(b, "purpose_code")

    # 一括提供: no file
    b.go(f"{s.base}/provision/batch")
    b.wait_css("#batch-button").click()
    _expect_field_error(b, "file")

    # 一括提供の事前承認: a number of rows that is not a number
    b.go(f"{s.base}/provision/approvals")
    b.wait_css("#ap-requester").send_keys("KOAN")
    b.find("#ap-affair").send_keys("KOAN-UNTEN")
    b.find("#ap-rows").send_keys("たくさん")
    b.find("#ap-purpose").send_keys("年次照合")
    b.find("#approval-request-button").click()
    _expect_field_error(b, "ap-rows")

    # 事務3 開示請求の受付: an impossible 生年月日
    b.go(f"{s.base}/disclosure")
    b.wait_css("#request_no").send_keys("R-1")
    b.find("#name").send_keys("山田　太郎")
    b.find("#birth_date").send_keys("昭和99年13月1日")
    b.find("#address").send_keys("三重県津市広明町13番地")
    b.find("#intake-button").click()
    _expect_field_error(b, "birth_date")

    # 問合せ記録: no 概要
    b.go(f"{s.base}/disclosure/inquiries")
    b.wait_css("#inquiry-button").click()
    _expect_field_error(b, "summary")

    # 訂正等の申出: a 請求番号 that was never received
    b.go(f"{s.base}/disclosure/corrections")
    b.wait_css("#c_request_no").send_keys("NONE-1")
    b.find("#c-item-name").click()
    b.find("#correction-button").click()
    _expect_field_error(b, "c_request_no")

    # 月次分析: フラグへの対応 with a month in the wrong form
    b.go(f"{s.base}/audit/reports")
    b.wait_css("#action_month").send_keys("令和8年")
    b.find("#action_flag").send_keys("1")
    b.find("#action_operator").send_keys(GYOMU)
    b.driver.execute_script("arguments[0].value = '2026-11-02';", b.find("#action_date"))
    b.find("#action-submit").click()
    _expect_field_error(b, "action_month")

    # 統計: a period that ends before it starts
    b.go(f"{s.base}/stats?from=2026-10&to=2026-01")
    _expect_field_error(b, "stats-from")

    # システム管理者: 操作者の登録 without a name, 操作端末 without a name, 研修 in the future
    _as(s, "admin")
    b.go(f"{s.base}/roster")
    b.wait_css("#new-role-auditor").click()
    b.find("#create-operator").click()
    _expect_field_error(b, "new_display_name", "NAME_REQUIRED")
    b.go(f"{s.base}/roster")
    b.wait_css("#create-terminal").click()
    _expect_field_error(b, "terminal_name", "NAME_REQUIRED")
    b.go(f"{s.base}/roster")
    b.wait_css("#new_display_name").send_keys("新人　花子")
    b.find("#create-operator").click()
    _expect_field_error(b, "new-role-operator", "ROLE_REQUIRED", group="roles")           # no role: the first of the roles, in its fieldset
    b.go(f"{s.base}/roster/training")
    field = b.wait_css("#training_date")
    b.driver.execute_script("arguments[0].removeAttribute('max'); arguments[0].value = '2099-04-01';", field)
    b.find("#training-submit").click()
    _expect_field_error(b, "training_date")
    # 提供先・移転先の追加 without a name
    b.go(f"{s.base}/provision/catalogue")
    b.wait_css("#rq-code").send_keys("NEW1")
    b.find("#requester-form button[type=submit]").click()
    _expect_field_error(b, "rq-name")

    # 操作端末の登録 (signed out): a wrong 端末登録コード
    b.find("#logout-button").click()
    b.wait_css("#operator_id")
    b.go(f"{s.base}/terminal/activate")
    b.wait_css("#code").send_keys("WRONG-CODE")
    b.find("#activate-button").click()
    _expect_field_error(b, "code")


def _juki_log(s):
    from jukinet.store.tables_security import OPLOG

    log, _ = OPLOG["juki"]
    with s.registers.engine("juki").connect() as conn:
        return conn.execute(select(log.c.action, log.c.outcome).order_by(log.c.seq)).all()


def test_s1_q4_search_results_kept_in_the_session_kana_order_status_paging_and_prg(site):
    s, b = site, site.b
    activate_and_enroll(b, s.base, s.code, [s.tokens[GYOMU]])
    _as(s, GYOMU)
    before = len(_juki_log(s))
    _search(s, address="三重県津市栄町一丁目99")
    b.wait_path("/search/results")
    count = b.wait_css("#result-count").text
    assert "該当 25 件" in count and "1〜20 件目" in count and "1 / 2 ページ" in count
    # kana order of the 清音化 key (ア… before ワ…; ガトウ ≡ カトウ by the key), 状態 filled
    kanas = [r.text for r in b.finds("#results tbody tr td:nth-child(3)")]
    assert kanas[0].startswith("アオキ") and kanas[1].startswith("イシイ")
    states = [r.text for r in b.finds("#results tbody td.status")]
    assert states and set(states) == {"現存"}
    # paging: the second page, no new search logged
    b.find("#next-page").click()
    b.wait(lambda d: "21〜25 件目" in b.find("#result-count").text)
    kanas += [r.text for r in b.finds("#results tbody tr td:nth-child(3)")]
    first = [k.split("\u3000")[0] for k in kanas]
    assert first[-1] == "ラン"
    # ワ is read as ハ and 濁音・半濁音 as 清音: パク ハシモト ワタナベ バンドウ, in that order
    assert [k for k in first if k in ("パク", "ハシモト", "ワタナベ", "バンドウ")] == ["パク", "ハシモト", "ワタナベ", "バンドウ"]
    # a detail, then back to the same page of results: one detail logged, no second search
    b.finds(".detail-button")[0].click()
    b.wait_css("#record")
    assert "/detail/view/detail-" in b.driver.current_url
    b.driver.refresh()                                    # a reload re-submits nothing
    b.wait_css("#record")
    b.find("#back-to-results").click()
    b.wait(lambda d: "21〜25 件目" in b.find("#result-count").text)
    b.driver.refresh()
    b.wait(lambda d: "21〜25 件目" in b.find("#result-count").text)
    assert [(a, o) for a, o in _juki_log(s)[before:]] == [("search", "granted"), ("detail", "granted")]
    # no personal data in any URL seen
    for part in ("三重", "%E4%B8%89", "栄町", "search?"):
        assert part not in b.driver.current_url
    # locking the screen forgets the kept result
    b.find("#lock-button").click()
    b.wait_path("/lock")
    login_as(b, s.base, GYOMU)
    b.go(f"{s.base}/search/results")
    b.wait_css("#results-expired")
    assert not b.finds("#results tbody tr")


def test_p2_q4_provision_select_stays_in_its_card_and_names_the_requester(site):
    s, b = site, site.b
    activate_and_enroll(b, s.base, s.code, [s.tokens[GYOMU]])
    _as(s, GYOMU)
    for width in (1280, 800):
        b.driver.set_window_size(width, 900)
        b.go(f"{s.base}/provision")
        sel = b.wait_css("#grant")
        inside = b.driver.execute_script("""
            const card = document.getElementById('provision-form').getBoundingClientRect();
            return [...document.querySelectorAll('#provision-form select, #provision-form fieldset, #provision-form input')]
              .filter(e => e.type !== 'hidden')
              .every(e => { const r = e.getBoundingClientRect(); return r.left >= card.left - 0.5 && r.right <= card.right + 0.5; });""")
        assert inside, width
        opts = b.driver.execute_script(
            "return [...arguments[0].querySelectorAll('optgroup')].map(g => [g.label, [...g.querySelectorAll('option')].map(o => o.text)]);",
            sel)
        assert opts
        for label, texts in opts:
            name = label.split(" (")[0]
            assert all(t.startswith(name + ":") for t in texts), (label, texts[:2])
    b.driver.set_window_size(1280, 900)


@pytest.mark.parametrize("status,body,expect", [
    (400, None, "入力内容"),                              # a form error page without the swapped element
    (409, {"code": "AUDIT_REPORT_CHANGED", "message": "報告書が更新されました。開き直してください。"}, "報告書が更新されました"),
    (413, None, "送信したデータが大きすぎます"),
    (422, {"code": "INPUT_INVALID", "message": "入力の形式が正しくありません。"}, "入力の形式が正しくありません"),
    (500, None, "サーバで障害が発生"),
    (503, None, "サーバで障害が発生"),
])
def test_q2_q4_htmx_shows_every_error_status(site, status, body, expect):
    """static/app.js: whatever status an htmx request gets back, the operator sees a message and a code
    (never a silent failure). A route answering ``status`` stands in for the server."""
    from fastapi.responses import JSONResponse, PlainTextResponse

    s, b = site, site.b

    def answer():
        if body is not None:
            return JSONResponse(status_code=status, content={"error": body})
        return PlainTextResponse("x", status_code=status)

    s.app.add_api_route(f"/__i19/{status}", answer, methods=["POST"])
    activate_and_enroll(b, s.base, s.code, [s.tokens[GYOMU]])
    _as(s, GYOMU)
    b.go(f"{s.base}/search")
    form = b.wait_css("#search-form")
    b.driver.execute_script(f"arguments[0].setAttribute('hx-post', '/__i19/{status}'); htmx.process(arguments[0]);", form)
    b.find("#search-button").click()
    box = b.wait_css("#request-error")
    b.wait(lambda d: _active_id(b) == "request-error")
    assert expect in box.text
    assert (body["code"] if body else f"HTTP_{status}") in box.find_element("css selector", ".error-code").text


def _provision_records(s):
    from jukinet.store.tables_provision import PROVISION_RECORDS

    t = PROVISION_RECORDS["juki"]
    with s.registers.engine("juki").connect() as conn:
        return conn.execute(select(t.c.record_id, t.c.outcome)).all()


def test_p5_q4_reload_after_a_provision_records_nothing_new(site):
    """Post/Redirect/Get for an action: the result page of a provision is a GET; reloading it shows the same
    result and neither provides nor records again; the URL carries only a random key."""
    from selenium.webdriver.support.ui import Select

    s, b = site, site.b
    activate_and_enroll(b, s.base, s.code, [s.tokens[GYOMU]])
    _as(s, GYOMU)
    b.go(f"{s.base}/provision")
    Select(b.wait_css("#grant")).select_by_value("KOAN|KOAN-UNTEN")
    from jukinet.codes import juminhyo_code_check_digit

    code = "2000000000" + juminhyo_code_check_digit("2000000000")      # ワタナベ, seeded by the fixture
    b.find("#juminhyo_code").send_keys(code)
    b.find("#provide-button").click()
    first = b.wait_css("#provision-result").get_attribute("data-outcome")
    record_id = b.find("#record-id").text
    after = _provision_records(s)
    assert first == "provided"
    assert "/provision?shown=shown-" in b.driver.current_url and code not in b.driver.current_url
    b.driver.refresh()
    assert b.wait_css("#provision-result").get_attribute("data-outcome") == first
    assert b.find("#record-id").text == record_id
    assert _provision_records(s) == after
