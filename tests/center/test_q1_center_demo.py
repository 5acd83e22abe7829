"""Q1 (issue 14; ADR 0045): ``make demo CENTER=1`` — ``jukinet center demo`` creates a center, seeds
synthetic residents in each prefecture, starts simulated national servers and CS per prefecture,
serves them all, and tells where each prefecture's operators and the center operator log in. A short
run with two prefectures and a small population (the make target uses 三重県・愛知県・岐阜県)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from test_q1_center import free_port

from jukinet.center.registry import Center
from jukinet.config import Config
from jukinet.sim.national import dump


@pytest.mark.xdist_group("demo")
def test_q1_center_demo_serves_each_prefecture_with_its_own_simulated_peers(tmp_path):
    d, port = tmp_path / "center", free_port()
    console = open(tmp_path / "console.txt", "wb")
    env = dict(os.environ, COLUMNS="240", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "jukinet.cli", "center", "demo", "--center-dir", str(d),
                             "--prefectures", "24,23", "--residents", "150", "--port", str(port)],
                            stdout=console, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("center demo did not start: " + (tmp_path / "console.txt").read_text())
            time.sleep(0.5)
        health = httpx.get(f"{base}/health").json()
        assert health["tenants"] == {"23": "ok", "24": "ok"}
        rows = {r["prefecture"]: r for r in httpx.get(f"{base}/center/api/status").json()["tenants"]}
        assert {n: r["scheduler"] for n, r in rows.items()} == {23: "running", 24: "running"}
        c = Center.load(d)
        configs = {t.prefecture: Config.load(c.tenant_dir(t)) for t in c.tenants}
        # each prefecture's simulated CS reach its own files through the center, and its outbox its
        # own simulated national server
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(dump(cfg, "juki") for cfg in configs.values()):
            time.sleep(1)
        for n, cfg in configs.items():
            got = dump(cfg, "juki")
            assert got and {m["municipality_code"][:2] for m in got} == {f"{n:02d}"}, (n, got[:1])
        # an operator of 三重県 is registered with the printed command; the printed link (its form is
        # served by the first tenant, 愛知県) makes this browser a terminal of 三重県
        out = subprocess.run([sys.executable, "-m", "jukinet.cli", "operator", "bootstrap", "--data-dir",
                              str(configs[24].data_dir), "--name", "三重 管理者"], env=env, capture_output=True,
                             text=True, check=True).stdout
        link = re.search(r"(http://\S+/terminal/activate\?code=\S+)", out).group(1)
        with httpx.Client(base_url=base) as browser:
            form = browser.get(link.replace(f"http://localhost:{port}", base).replace(f"http://127.0.0.1:{port}", base))
            assert form.status_code == 200
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            code = re.search(r"code=(\S+)", link).group(1)
            r = browser.post("/terminal/activate", data={"code": code, "csrf_token": csrf})
            assert r.status_code in (200, 303) and "jukinet_terminal" in r.headers.get("set-cookie", ""), r.text
            login = browser.get("/login")
            assert login.status_code == 200 and "三重県" in login.text and "愛知県" not in login.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        console.close()
    text = (tmp_path / "console.txt").read_text(encoding="utf-8")
    assert f"{base}/center/ops" in text
    for name, n in (("三重県", 24), ("愛知県", 23)):
        assert name in text and f"jukinet operator bootstrap --data-dir {d / 'tenants' / f'{n:02d}'}" in text
    assert proc.returncode == 0, text
