#!/usr/bin/env python3
"""Screenshots of the operator terminal's main screens → docs/screenshots/*.png.

Uses the browser harness of the tests (tests/browser/harness.py: Debian's chromium, headless, a
virtual WebAuthn authenticator) against a fresh installation with a few synthetic residents:
login, search (and a wrong input shown at its field), results, detail, lock screen, roster.

Usage: .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from harness import Browser, Server, free_port, login_as, setup_site  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    a = ap.parse_args()
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="jukinet-shots-")) / "data"
    config, registers, app, code, admin_id, token = setup_site(data, port=port)
    sec = app.state.security
    base = f"http://localhost:{port}"
    from selenium.webdriver.support.ui import Select

    from jukinet.security.oplog import Actor

    op, op_token = sec.register_operator(Actor(admin_id, None), display_name="検索　担当", department="市町村課",
                                         roles=["operator"], registers=["juki", "fuhyo"], affairs=["search"],
                                         operator_id="KENSAKU01")
    with Server(app, port):
        b = Browser(width=1280, height=860)
        try:
            b.go(f"{base}/terminal/activate?code={code}")
            b.wait_css("#activate-button").click()
            b.wait_css("#message")
            for t in (token, op_token):
                b.go(f"{base}/enroll?token={t}")
                b.wait_css("#enroll-button").click()
                b.wait_css("#enroll-done")

            def login(oid):
                login_as(b, base, oid)

            b.go(f"{base}/login")
            b.wait_css("#operator_id").send_keys(admin_id)
            b.screenshot(a.out / "login.png")
            login(admin_id)
            b.go(f"{base}/roster")
            b.wait_css("#roster")
            b.screenshot(a.out / "roster.png")
            b.find("#logout-button").click()
            b.wait_path("/login")
            login("KENSAKU01")
            b.go(f"{base}/search")
            Select(b.wait_css("#purpose_code")).select_by_value("inquiry")
            b.find("#reg-fuhyo").click()
            b.find("#name").send_keys("やまだ")
            b.find("#match-prefix").click()
            b.screenshot(a.out / "search.png")
            # a wrong input: the summary at the top, the message under the field (ADR 0043)
            b.find("#birth_from").send_keys("昭和99年13月1日")
            b.find("#search-button").click()
            b.wait_css("#birth_from-error")
            b.screenshot(a.out / "search-error.png")
            b.find("#birth_from").clear()
            b.find("#search-button").click()
            b.wait(lambda d: "該当" in b.find("#results").text)
            b.driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(1))")
            b.driver.execute_script("document.getElementById('results').scrollIntoView()")
            b.screenshot(a.out / "results.png")
            rows = b.finds("table.results tbody tr")
            next(r for r in rows if "山田　太郎" in r.text and "住基" in r.text).find_element(
                "css selector", ".detail-button").click()
            b.wait_css("#record")
            b.driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(1))")
            b.screenshot(a.out / "detail.png")
            sec.cfg.idle_minutes = 0.05
            b.go(f"{base}/search")
            b.wait_path("/lock", timeout=15)
            b.wait_css("#lock-message")
            time.sleep(0.3)
            b.screenshot(a.out / "lock.png")
        finally:
            b.close()
            registers.dispose()
    for p in sorted(a.out.glob("*.png")):
        print(p.relative_to(ROOT))


if __name__ == "__main__":
    main()
