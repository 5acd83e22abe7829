"""A7 (ADR 0027): ``jukinet serve`` writes one JSON object per line — its own start and stop, uvicorn's
lines, one line per request with the route template — and no access log, no query string, no
personal data; SIGTERM (``systemctl stop``) stops it cleanly (docs/operations.md)."""

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a7_serve_logs_json_lines_without_personal_data_and_stops_on_sigterm(config, tmp_path):
    config.server.port, config.national.port, config.national.fuhyo_port = free_port(), free_port(), free_port()
    config.retention.enabled = False
    config.save()
    exe = Path(sys.executable).with_name("jukinet")
    err = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(config.data_dir)], stdout=subprocess.DEVNULL,
                            stderr=err)
    base = f"http://127.0.0.1:{config.server.port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{base}/health", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("server did not start: " + (tmp_path / "serve.log").read_text())
                time.sleep(0.2)
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 200          # loopback
        r = httpx.get(f"{base}/search", params={"name": "山田　太郎", "birth": "1980-04-01"}, timeout=5)
        assert r.status_code == 403                                                  # no registered terminal
        r = httpx.post(f"{base}/cs/v1/notifications", json={"record": {"name": "山田　太郎"}}, timeout=5)
        assert r.status_code == 401                                                  # no CS certificate
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        err.close()
    text = (tmp_path / "serve.log").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]        # every line is JSON
    assert code in (0, -signal.SIGTERM)     # uvicorn shuts down, then re-raises SIGTERM (a clean stop for systemd)
    events = [x["event"] for x in lines]
    assert events[0] == "起動" and events[-1].startswith("Finished server process")  # uvicorn's lines, as JSON
    assert "Shutting down" in events and "Application shutdown complete." in events
    requests = [x for x in lines if x["event"] == "http_request"]
    assert [(x["method"], x["route"], x["status"]) for x in requests] == [
        ("GET", "/health", 200), ("GET", "/metrics", 200), ("GET", "/search", 403),
        ("POST", "/cs/v1/notifications", 401)]
    assert "山田" not in text and "1980-04-01" not in text and "name=" not in text and '"GET /' not in text
