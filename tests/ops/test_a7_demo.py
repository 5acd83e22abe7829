"""A7 / Q2 (ADR 0028): ``jukinet demo`` shows backups — a demo-only prefecture key pair (marked as
such), the public key installed where ``[backup].public_key`` expects it, one backup at startup
visible on the operations status — and its console stays readable (the JSON log goes to a file)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jukinet.backup import keys
from jukinet.backup.demo import DEMO_KEY_DIR, demo_backup
from jukinet.backup.service import verify_backup
from jukinet.config import Config
from jukinet.ops import status as S
from jukinet.store.registers import Registers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a7_demo_backup_makes_a_marked_demo_key_installs_the_public_key_and_one_backup(config):
    shot = demo_backup(config, bits=2048)
    assert shot.error_code is None and shot.created_key
    key_dir = config.data_dir / DEMO_KEY_DIR
    readme = (key_dir / "README.txt").read_text(encoding="utf-8")
    assert "デモ専用" in readme and "DEMO ONLY" in readme and "keygen" in readme
    assert oct((key_dir / keys.PRIVATE_NAME).stat().st_mode)[-3:] == "600"
    installed = config.resolve(config.backup.public_key)
    assert installed.read_bytes() == (key_dir / keys.PUBLIC_NAME).read_bytes()
    # the backup opens with the demo private key, and does not carry that private key
    got = verify_backup(shot.backup_file, keys.PrivateKeyFile(shot.private_key))
    assert got["header"]["engine"] in ("sqlite", "postgresql")
    paths = [f["path"] for f in got["manifest"]["files"]]
    assert "keys/backup-public.pem" in paths and "jukinet.toml" in paths
    assert not any(DEMO_KEY_DIR in p or keys.PRIVATE_NAME in p for p in paths)
    # /ops (and /metrics, from the same status) show a last backup
    regs = Registers(config)
    try:
        st = S.collect(regs, config, counts=False)
    finally:
        regs.dispose()
    assert st.backup.present and st.backup.last_success_at is not None
    assert st.backup.last_file == shot.backup_file.name and st.backup.last_bytes == shot.backup_bytes
    again = demo_backup(config, bits=2048)                 # a second demo start: same key, a new backup
    assert not again.created_key and again.backup_file != shot.backup_file
    assert again.private_key.read_bytes() == shot.private_key.read_bytes()


@pytest.mark.xdist_group("demo")
def test_q2_demo_console_is_readable_and_shows_where_the_backup_and_logs_are(tmp_path):
    d = tmp_path / "demo"
    exe = Path(sys.executable).with_name("jukinet")
    subprocess.run([str(exe), "init", "--data-dir", str(d)], check=True, capture_output=True)
    config = Config.load(d)
    config.server.port, config.national.port, config.national.fuhyo_port = free_port(), free_port(), free_port()
    config.save()
    err = open(tmp_path / "console.txt", "wb")
    proc = subprocess.Popen([str(exe), "demo", "--data-dir", str(d), "--residents", "200"],
                            stdout=subprocess.DEVNULL, stderr=err, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    base = f"http://127.0.0.1:{config.server.port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("demo did not start: " + (tmp_path / "console.txt").read_text())
            time.sleep(0.3)
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        time.sleep(4)                                    # the CS sims send a few changes meanwhile
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        err.close()
    assert "jukinet_backup_status_present 1.0" in metrics
    assert "jukinet_backup_last_success_timestamp_seconds" in metrics
    console = (tmp_path / "console.txt").read_text(encoding="utf-8")
    assert "バックアップ: " in console and ".jkb" in console and "デモ専用の鍵" in console
    assert str(d / "logs" / "demo-serve.jsonl") in console
    assert '"event"' not in console and "http_request" not in console     # no JSON log lines on the console
    logged = [json.loads(x) for x in (d / "logs" / "demo-serve.jsonl").read_text(encoding="utf-8").splitlines()]
    assert logged[0]["event"] == "起動" and any(x["event"] == "http_request" for x in logged)
