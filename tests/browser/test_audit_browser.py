"""A4/A2 in a real browser: the 管理責任者 enrolls a fingerprint (virtual WebAuthn authenticator), logs
in, opens the monthly access-log analysis from the menu, creates last month's report (a night-time
lookup is flagged), and records the sign-off; the システム管理者 confirms the annual inventory.
Debian's chromium, headless. With ``JUKINET_SHOTS_DIR`` set, the screens are saved there as PNG."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from harness import Browser, Server, activate_and_enroll, free_port, login_as, require_browser, setup_site  # noqa

pytestmark = pytest.mark.xdist_group("browser")
require_browser()


def _shot(b, name: str) -> None:
    d = os.environ.get("JUKINET_SHOTS_DIR")
    if d:
        b.driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(1))")
        b.screenshot(Path(d) / name)


def test_a4_a2_manager_signs_off_and_administrator_confirms_inventory_in_a_real_browser(tmp_path, backend, request):

    from jukinet.audit.service import JST, previous_month
    from jukinet.security.oplog import Actor
    from jukinet.store.tables_audit import audit_signoffs, roster_inventories

    port = free_port()
    config, registers, app, code, admin_id, admin_token = setup_site(tmp_path / "data", port=port,
                                                                 backend=backend, request=request)
    sec = app.state.security
    _op, token = sec.register_operator(Actor(admin_id, None), display_name="中村　由紀", roles=["manager"],
                                       registers=["juki", "fuhyo"], operator_id="KANRI01")
    m = previous_month()
    with registers.uow("juki") as uow:
        sec.oplog.append(uow.conn, "juki", actor=Actor("KENSAKU9", "T0001"), action="detail", purpose_code="inquiry",
                         keys={"juminhyo_code": "10000000001"}, result_count=1,
                         now=datetime(m.year, m.month, 7, 23, 5, tzinfo=JST))
    base = f"http://localhost:{port}"
    with Server(app, port):
        b = Browser(width=1280, height=900)
        try:
            activate_and_enroll(b, base, code, (token, admin_token))
            login_as(b, base, "KANRI01")
            b.go(f"{base}/")
            assert "操作ログ月次分析" in b.wait_css("ul.menu").text
            b.go(f"{base}/audit/reports")
            b.wait_css(f"#generate-{m.key}").click()
            flags = b.wait_css("#audit-flags")
            assert "時間外照会" in flags.text and "KENSAKU9" in flags.text
            sha = b.find("#report-sha256").text
            b.find("#decision-follow_up").click()
            b.find("#comment").send_keys("KENSAKU9 に理由を確認する")
            _shot(b, "audit-report.png")
            b.find("#signoff-button").click()
            assert "確認を記録しました" in b.wait_css("#notice").text
            assert "要対応" in b.find(f"#month-{m.key}").text
            _shot(b, "audit-reports.png")
            with registers.admin_tx(write=False) as conn:
                s = conn.execute(select(audit_signoffs)).one()
            assert (s.pdf_sha256, s.signed_by, s.decision) == (sha, "KANRI01", "follow_up")
            b.find("#logout-button").click()
            b.wait_path("/login")

            login_as(b, base, admin_id)
            b.go(f"{base}/roster/inventory")
            assert "棚卸しの記録がありません" in b.wait_css("#inventory-last").text
            b.find("#inventory-confirm").click()
            assert "棚卸し (記録番号" in b.wait_css("#notice").text
            _shot(b, "inventory.png")
            with registers.admin_tx(write=False) as conn:
                assert conn.execute(select(roster_inventories.c.confirmed_by)).scalar_one() == admin_id
        finally:
            b.close()
            registers.dispose()
