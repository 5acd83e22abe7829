"""A7 in a real browser: the 運用担当者 logs in on a registered terminal with a fingerprint, finds
運用状況 and 統計 in the menu (nothing else), reads the status — counts, sizes and 和暦 times, no
resident's data — and is refused the search screen. Debian's chromium, headless."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import Browser, Server, free_port, require_browser, setup_site  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")

require_browser()


def test_a7_operations_contractor_sees_status_and_is_refused_personal_data(tmp_path, backend, request):
    from jukinet.security.oplog import Actor

    port = free_port()
    config, registers, app, code, _admin_id, _token = setup_site(tmp_path / "data", port=port, backend=backend,
                                                                    request=request)
    status_file = config.resolve(config.observability.backup_status_file)
    status_file.parent.mkdir(parents=True, exist_ok=True)
    status_file.write_text(json.dumps({"last_success_at": "2026-11-25T17:30:00+00:00", "last_failure_at": None,
                                       "last_failure_code": None, "last_bytes": 52428800, "last_seconds": 12.0,
                                       "last_file": "jukinet-20261126.tar.enc"}))
    _, token = app.state.security.register_operator(Actor("bootstrap", None), display_name="運用　担当",
                                                    department="保守委託", roles=["operations"],
                                                    operator_id="UNYO01")
    people = sys.modules["jukinet_web_fixtures"].PEOPLE       # seeded by setup_site
    with Server(app, port):
        b = Browser(width=1280, height=1000)
        try:
            base = f"http://localhost:{port}"
            b.activate_enroll_login(base, code, token, "UNYO01")
            links = {a.get_attribute("href").replace(base, "") for a in b.finds("ul.menu a")}
            assert links == {"/ops", "/stats", "/media"}   # /media: the backup media register (G2), no personal data
            b.find('ul.menu a[href="/ops"]').click()
            b.wait_css("#ops-databases")
            assert b.find("#ops-overall").get_attribute("data-status") == "ok"
            text = b.find("main").text
            assert "令和8年11月26日 02:30:00" in text and "50.0 MiB" in text and "本人確認情報 (現存)" in text
            assert "juki_current" not in text          # table names in Japanese (ADR 0042)
            page = b.source()
            assert not [p for p in people if p.name in page or p.juminhyo_code in page or p.address in page]
            shots = os.environ.get("JUKINET_SCREENSHOTS")
            if shots:
                b.screenshot(Path(shots) / "ops.png")
            b.go(f"{base}/search")
            b.wait_css("#message")
            assert "FORBIDDEN" in b.source() and "権限がありません" in b.find("main").text
        finally:
            b.close()
            registers.dispose()
