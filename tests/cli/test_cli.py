"""The `jukinet` command: init writes config and databases; serve answers its health endpoint."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.config import Config
from jukinet.web.app import create_app

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_q2_init_sqlite_writes_config_and_migrated_databases(tmp_path):
    r = runner.invoke(app, ["init", "--data-dir", str(tmp_path), "--port-base", "9100"])
    assert r.exit_code == 0, r.output
    cfg = Config.load(tmp_path)
    assert cfg.server.port == 9100 and cfg.national.port == 9101 and cfg.national.fuhyo_port == 9102
    assert (tmp_path / "juki.sqlite3").exists() and (tmp_path / "fuhyo.sqlite3").exists()
    assert oct((tmp_path / "jukinet.toml").stat().st_mode)[-3:] == "600"


def test_q2_commands_without_init_give_a_clear_error(tmp_path):
    r = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "nothing")])
    assert r.exit_code == 2
    assert "CONFIG_MISSING" in r.output


def test_q2_init_refuses_unsupported_database_url(tmp_path):
    r = runner.invoke(app, ["init", "--data-dir", str(tmp_path), "--db-url", "mysql://x@localhost/y"])
    assert r.exit_code == 2 and "DB_URL_UNSUPPORTED" in r.output


def test_health_reports_every_database(config):
    with TestClient(create_app(config)) as client:
        r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert set(body["registers"]) == {"juki", "fuhyo", "admin"}
    assert all(v["up_to_date"] for v in body["registers"].values())


def test_serve_starts_and_answers_health(tmp_path):
    port = free_port()
    assert runner.invoke(app, ["init", "--data-dir", str(tmp_path), "--port-base", str(port)]).exit_code == 0
    exe = Path(sys.executable).with_name("jukinet")
    proc = subprocess.Popen([str(exe), "serve", "--data-dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"server did not start: {proc.stderr.read().decode() if proc.poll() is not None else ''}")
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


def test_u1_init_with_a_relative_data_dir_puts_every_certificate_under_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["init", "--data-dir", "jukinet-data"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "jukinet-data" / "pki" / "cs" / "242012.pem").exists()
    assert not (tmp_path / "jukinet-data" / "jukinet-data").exists()
