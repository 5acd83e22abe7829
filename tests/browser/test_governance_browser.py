"""G5 and G4 in a real browser (Debian's chromium, headless; a CDP virtual authenticator stands in for
the terminal's fingerprint reader): a 保守作業者 signs in at the terminal only together with the
管理責任者, who authenticates by fingerprint in the same screen; the screen shows the maintenance
mode and its witness; 「立会いを終了」 ends the session. Then the manager opens an incident and finds
the maintenance session's entries on the log screen with the witness beside them. With
``JUKINET_SHOTS_DIR`` set, the screens are saved there as PNG."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from harness import Browser, Server, activate_and_enroll, free_port, login_as, require_browser, setup_site  # noqa

from jukinet.security.oplog import Actor
from jukinet.store.tables_security import sessions

pytestmark = pytest.mark.xdist_group("browser")
require_browser()
JST = timezone(timedelta(hours=9))


def _shot(b, name: str) -> None:
    d = os.environ.get("JUKINET_SHOTS_DIR")
    if d:
        b.driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(1))")
        b.screenshot(Path(d) / name)


def test_g5_g4_witnessed_maintenance_and_incident_in_a_real_browser(tmp_path, backend, request):
    port = free_port()
    config, registers, app, code, admin_id, admin_token = setup_site(tmp_path / "data", port=port, people=False,
                                                                 backend=backend, request=request)
    sec = app.state.security
    inst = app.state.installation
    boot = Actor("bootstrap", None)
    _op, token = sec.register_operator(boot, display_name="中村　由紀", department="市町村課", roles=["manager"],
                                       registers=["juki", "fuhyo"], operator_id="KANRI01")
    sec.register_operator(boot, display_name="保守　一郎", department="委託先", roles=["maintenance"],
                          operator_id="MNT-01", password_allowed=True)
    grant = sec.grant_password(boot, "MNT-01")
    inst.governance.add_worker(boot, company="日本電気株式会社三重支店", name="保守　一郎", duty="端末の運用管理支援",
                               from_date=datetime.now(JST).date(), operator_id="MNT-01")
    base = f"http://localhost:{port}"
    with Server(app, port):
        b = Browser(width=1280, height=900)
        try:
            activate_and_enroll(b, base, code, (token,))
            b.go(f"{base}/login")
            b.wait_css("#maintenance-login-link").click()
            b.wait_css("#c_operator_id").send_keys("MNT-01")
            b.find("#c_password").send_keys(grant.password)
            b.find("#c_totp").send_keys(pyotp.TOTP(grant.totp_secret).now())
            b.find("#w_operator_id").send_keys("KANRI01")
            _shot(b, "maintenance-login.png")
            b.find("#witness-fingerprint").click()      # the manager's fingerprint, in the same flow
            banner = b.wait_css("#maintenance-banner")
            assert "KANRI01" in banner.text and b.find("#operator-id").text == "MNT-01"
            assert "/ops" in b.source() and "/search" not in b.source()
            b.go(f"{base}/ops")
            b.wait_css("#maintenance-banner")
            _shot(b, "maintenance-session.png")
            b.find("#end-witness-button").click()
            b.wait_path("/login")
            with registers.admin_tx(write=False) as conn:
                s = conn.execute(select(sessions).where(sessions.c.operator_id == "MNT-01")).one()
            assert (s.witness_id, s.method, s.end_reason) == ("KANRI01", "mnt:pw+wa", "witness_ended")

            # the manager: an incident, and the maintenance session's entries on the log screen
            login_as(b, base, "KANRI01")
            b.go(f"{base}/incidents")
            b.wait_css("#inc_title").send_keys("保守作業中の設定誤り")
            now = datetime.now(JST)
            for field, t in (("#inc_occurred", now - timedelta(hours=1)), ("#inc_discovered", now - timedelta(minutes=5))):
                b.driver.execute_script("arguments[0].value = arguments[1]", b.find(field), t.strftime("%Y-%m-%dT%H:%M"))
            b.find("#inc_summary").send_keys("保守作業で端末の設定を誤った。個人情報への影響なし。")
            b.find("#incident-submit").click()
            no = b.wait_css("#incident-no").text
            assert no.startswith("INC-") and "対応中" in b.find("#incident-status").text
            _shot(b, "incident.png")
        finally:
            b.close()
    assert inst.incidents.get(no).row.title == "保守作業中の設定誤り"
