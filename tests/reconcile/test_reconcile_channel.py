"""C1 over the real CS channel (HTTPS, mutual TLS) and from the command line; U1/U6 for 事務6."""

from __future__ import annotations

import io
import json
import socket
import ssl

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from jukinet import pki
from jukinet.cli import app
from jukinet.server import PrefectureServer
from jukinet.reconcile.simulate import build_snapshot
from jukinet.sim.cs import CsClient
from jukinet.store.tables_intake import INTAKE_TABLES
from jukinet.store.tables_reconcile import RECONCILE

from reconcile_people import AS_OF, TSU, YOKKAICHI

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(config, populated):
    config.server.port = free_port()
    config.national.port = free_port()
    config.national.fuhyo_port = free_port()
    config.save()
    pki.ensure_dev_pki(config.tls, config.data_dir, config.prefecture_code, municipalities=[TSU, YOKKAICHI])
    srv = PrefectureServer(config, populated, outbox=False).start()
    yield srv
    srv.stop()


def snapshot(registers, register="juki", municipality=TSU, inject=0) -> bytes:
    buf = io.BytesIO()
    build_snapshot(registers, register, municipality, buf, inject=inject, seed=3, as_of=AS_OF)
    return buf.getvalue()


def comm_rows(registers, register="juki"):
    t = INTAKE_TABLES[register][2]
    with registers.engine(register).connect() as c:
        return c.execute(select(t).where(t.c.message_id.like("consistency:%")).order_by(t.c.log_id)).all()


@pytest.mark.parametrize("register", ["juki", "fuhyo"])
def test_c1_u6_snapshot_over_mutual_tls_returns_the_result_document(server, populated, config, register):
    data = snapshot(populated, register, inject=9)
    cs = CsClient(config, TSU)
    try:
        r = cs.http.post(f"/cs/v1/consistency/{register}", content=data,
                         headers={"content-type": "application/x-ndjson"})
    finally:
        cs.close()
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    head, body, trailer = lines[0], lines[1:-1], lines[-1]
    assert head["counts"] == {"snapshot": 200, "server": 200, "matched": 194, "only_in_snapshot": 3,
                              "only_on_server": 3, "differs": 3, "pending": 0}
    assert head["municipality_code"] == TSU and int(r.headers["x-jukinet-run-id"]) == head["run_id"]
    assert len(body) == 9 == trailer["count"]
    rows = comm_rows(populated, register)
    assert [(x.direction, x.result) for x in rows] == [("in", "accepted"), ("out", "sent")]
    assert rows[0].size == len(data) and rows[0].peer == f"lg:{TSU}" and len(rows[0].digest) == 64
    assert rows[1].size == len(r.content)
    assert "三重" not in r.text  # never a value in the result


def test_c1_u1_municipality_is_the_certificates_not_the_payloads(server, populated, config):
    data = snapshot(populated, "juki", TSU)       # 津市's file, sent with 四日市市's certificate
    cs = CsClient(config, YOKKAICHI)
    try:
        r = cs.http.post("/cs/v1/consistency/juki", content=data)
    finally:
        cs.close()
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "RECONCILE_MUNICIPALITY_MISMATCH" and err["line"] == 1 and err["run_id"]
    runs, diffs = RECONCILE["juki"]
    with populated.juki_engine.connect() as c:
        stored = c.execute(select(runs)).all()
        assert c.execute(select(diffs)).all() == []
    assert [(s.status, s.municipality_code) for s in stored] == [("refused", YOKKAICHI)]
    assert [(x.direction, x.result, x.code) for x in comm_rows(populated)] == [
        ("in", "rejected", "RECONCILE_MUNICIPALITY_MISMATCH")]


def test_c1_u1_without_a_cs_certificate_nothing_is_read(server, populated, config):
    verify = ssl.create_default_context(cafile=str(config.resolve(config.tls.ca_cert)))  # trusts us, no cert
    with httpx.Client(base_url=server.base_url, verify=verify) as c:
        r = c.post("/cs/v1/consistency/juki", content=snapshot(populated))
    assert r.status_code == 401 and r.json()["error"]["code"] == "CLIENT_CERT_REQUIRED"
    runs, _ = RECONCILE["juki"]
    with populated.juki_engine.connect() as c:
        assert c.execute(select(runs)).all() == []


def test_c1_result_can_be_fetched_again_only_by_its_municipality(server, populated, config):
    tsu, yok = CsClient(config, TSU), CsClient(config, YOKKAICHI)
    try:
        r = tsu.http.post("/cs/v1/consistency/juki", content=snapshot(populated, inject=3))
        run_id = r.headers["x-jukinet-run-id"]
        again = tsu.http.get(f"/cs/v1/consistency/juki/results/{run_id}")
        other = yok.http.get(f"/cs/v1/consistency/juki/results/{run_id}")
        due_tsu = tsu.http.get("/cs/v1/consistency/juki/due").json()
        due_yok = yok.http.get("/cs/v1/consistency/juki/due").json()
    finally:
        tsu.close()
        yok.close()
    assert again.status_code == 200 and again.text == r.text
    assert other.status_code == 404 and other.json()["error"]["code"] == "RECONCILE_RUN_NOT_FOUND"
    assert due_tsu["due"] is False and due_tsu["last_run_id"] == int(run_id)
    assert due_yok["due"] is True and due_yok["last_completed"] is None


def test_c1_sim_cs_snapshot_command_sends_injected_differences(server, populated, config, tmp_path):
    out = tmp_path / "result.jsonl"
    r = runner.invoke(app, ["sim", "cs-snapshot", "--data-dir", str(config.data_dir), "--municipality", TSU,
                            "--register", "fuhyo", "--inject-differences", "6", "--result-out", str(out)])
    assert r.exit_code == 0, r.output
    head = json.loads(r.stdout.strip().splitlines()[-1])
    assert head["counts"]["differs"] == 2 and head["counts"]["only_in_snapshot"] == 2
    assert head["counts"]["only_on_server"] == 2 and head["register"] == "fuhyo"
    assert len(out.read_text().splitlines()) == 1 + 6 + 1


def test_c1_reconcile_command_checks_a_file_and_writes_the_result(populated, config, tmp_path):
    snap = tmp_path / "snap.jsonl"
    r = runner.invoke(app, ["sim", "cs-snapshot", "--data-dir", str(config.data_dir), "--municipality", TSU,
                            "--inject-differences", "3", "--out", str(snap)])
    assert r.exit_code == 0, r.output
    res = tmp_path / "res.jsonl"
    r = runner.invoke(app, ["reconcile", "--data-dir", str(config.data_dir), "--municipality", TSU,
                            "--register", "juki", str(snap), "--out", str(res)])
    assert r.exit_code == 0, r.output
    assert "項目相違" in r.output
    head = json.loads(res.read_text().splitlines()[0])
    assert head["counts"]["differs"] == 1 and head["status"] == "completed"
    r = runner.invoke(app, ["reconcile", "--data-dir", str(config.data_dir), "--status"])
    assert r.exit_code == 0 and TSU in r.output and "津市" in r.output
    # a refused file: exit 2, code and line on stderr, nothing but a refusal record
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(snap.read_bytes().splitlines(keepends=True)[:-1]))
    r = runner.invoke(app, ["reconcile", "--data-dir", str(config.data_dir), "--municipality", TSU, str(bad)])
    assert r.exit_code == 2 and "RECONCILE_TRUNCATED" in r.output
