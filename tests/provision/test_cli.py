"""The command line of 事務2/事務4: init loads the catalogue, catalogue load/export, batch + decrypt,
approvals, national query (P1, P4, A5, N1)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.provision import catalogue as C
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import OPLOG, operators

from . import people as P

runner = CliRunner()
pytestmark = pytest.mark.xdist_group("provision-cli")


def invoke(*args, input=None, env=None):
    return runner.invoke(app, [str(a) for a in args], input=input, env=env, catch_exceptions=False)


def add_operator(world, oid, roles, regs=("juki", "fuhyo"), affairs=("provision", "national")):
    from jukinet.security.service import Security

    sec = Security(world.config, world.registers)
    sec.register_operator(Actor("bootstrap", None), display_name=f"{oid} 担当", roles=list(roles), registers=list(regs),
                          affairs=list(affairs), operator_id=oid)
    with world.registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == oid).values(status="active"))


def test_p1_init_loads_the_shipped_catalogue(tmp_path):
    d = tmp_path / "inst"
    r = invoke("init", "--data-dir", d)
    assert r.exit_code == 0, r.output
    r = invoke("catalogue", "show", "--data-dir", d)
    assert r.exit_code == 0 and "SOMU-KENZEI" in r.output and "KOAN-UNTEN" in r.output
    r = invoke("catalogue", "export", "--data-dir", d)
    assert C.parse(r.stdout.encode()).affairs.keys() == C.load_default().affairs.keys()


def test_p1_cli_catalogue_load_logs_the_changes(world, tmp_path):
    add_operator(world, "ADM-9", ["admin"], regs=(), affairs=())
    f = tmp_path / "cat.toml"
    f.write_text(C.DEFAULT_PATH.read_text(encoding="utf-8").replace(
        'name = "警備業法による認定に関する事務"', 'name = "警備業法による認定等に関する事務"'), encoding="utf-8")
    d = world.config.data_dir
    r = invoke("catalogue", "load", f, "--operator", "ADM-9", "--data-dir", d)
    assert r.exit_code == 0, r.output
    assert "change\taffair\tKOAN-KEIBI" in r.stdout
    add_operator(world, "OP-NOADM", ["operator"])
    r = invoke("catalogue", "load", f, "--operator", "OP-NOADM", "--data-dir", d)
    assert r.exit_code == 2 and "FORBIDDEN" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 'x'\n", encoding="utf-8")
    r = invoke("catalogue", "load", bad, "--data-dir", d)
    assert r.exit_code == 2 and "CATALOGUE_FORMAT" in r.output
    log, _ = OPLOG["admin"]
    with world.registers.admin_tx(write=False) as conn:
        entries = conn.execute(select(log).where(log.c.action == "catalogue_change", log.c.operator_id == "ADM-9")).all()
    assert len(entries) == 1 and entries[0].terminal_id == "CONSOLE"


def test_p4_cli_batch_check_run_and_decrypt(world, tmp_path):
    add_operator(world, "OP-CLI", ["operator"])
    add_operator(world, "MGR-CLI", ["manager"], affairs=())
    d = world.config.data_dir
    src = tmp_path / "in.csv"
    src.write_text("依頼番号,住民票コード,氏名,生年月日\n"
                   f"X1,{P.TARO},山田太郎,1980-04-01\nX2,{P.TARO[:-1]}0,,\nX3,{P.HANAKO},,\n", encoding="cp932")
    r = invoke("provision", "batch", "--operator", "OP-CLI", "--requester", "SOMU", "--affair", "SOMU-KENZEI",
               "--in", src, "--check", "--data-dir", d)
    assert r.exit_code == 0, r.output
    assert "件数 3" in r.stdout and "cp932" in r.stdout and "JUMINHYO_CODE_CHECKSUM: 1" in r.stdout
    out = tmp_path / "result.jkm"
    r = invoke("provision", "batch", "--operator", "OP-CLI", "--requester", "SOMU", "--affair", "SOMU-KENZEI",
               "--in", src, "--out", out, "--purpose", "県税", "--data-dir", d)
    assert r.exit_code == 0, r.output
    password = r.stdout.split("パスワード")[1].split(": ")[1].split()[0]
    assert out.exists() and P.TARO.encode() not in out.read_bytes()
    media_id = r.stdout.split("媒体ID: ")[1].split()[0]
    plain = tmp_path / "result.csv"
    r = invoke("provision", "decrypt", out, "--out", plain, env={"JUKINET_MEDIA_PASSWORD": password})
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(plain.read_text(encoding="utf-8"))))
    assert [x["結果"] for x in rows] == ["提供", "エラー", "提供"] and rows[0]["個人番号"] == P.TARO_NO
    r = invoke("provision", "decrypt", out, "--out", tmp_path / "x.csv", env={"JUKINET_MEDIA_PASSWORD": "AAAAA-AAAAA"})
    assert r.exit_code == 2 and "MEDIA_PASSWORD" in r.output
    r = invoke("provision", "media", "--data-dir", d)
    assert media_id in r.stdout and "written" in r.stdout
    r = invoke("provision", "records", "--data-dir", d)
    assert r.exit_code == 0 and P.TARO not in r.stdout and "SOMU-KENZEI" in r.stdout
    # A5 through the command line
    world.config.provision.batch_approval_threshold = 2
    world.config.save()
    r = invoke("provision", "batch", "--operator", "OP-CLI", "--requester", "SOMU", "--affair", "SOMU-KENZEI",
               "--in", src, "--data-dir", d)
    assert r.exit_code == 2 and "APPROVAL_REQUIRED" in r.output
    r = invoke("provision", "approval", "request", "--operator", "OP-CLI", "--requester", "SOMU", "--affair",
               "SOMU-KENZEI", "--rows", "3", "--purpose", "県税の調査", "--data-dir", d)
    assert r.exit_code == 0, r.output
    ap = r.stdout.split("申請しました: ")[1].split()[0]
    r = invoke("provision", "approval", "decide", "--operator", "MGR-CLI", "--id", ap, "--approve", "--data-dir", d)
    assert r.exit_code == 0 and "承認済み" in r.stdout
    r = invoke("provision", "batch", "--operator", "OP-CLI", "--requester", "SOMU", "--affair", "SOMU-KENZEI",
               "--in", src, "--approval", ap, "--data-dir", d)
    assert r.exit_code == 0, r.output
    r = invoke("provision", "approval", "list", "--data-dir", d)
    assert ap in r.stdout and "使用済み" in r.stdout
    world.config.provision.batch_approval_threshold = 1000
    world.config.save()


def test_n1_cli_query_reads_keys_from_stdin(world):
    add_operator(world, "OP-Q", ["operator"])
    d = world.config.data_dir
    r = invoke("query", "national", "--operator", "OP-Q", "--purpose", "inquiry", "--data-dir", d,
               input="not json")
    assert r.exit_code == 2 and "QUERY_FORMAT" in r.output
    r = invoke("query", "national", "--operator", "NOBODY", "--purpose", "inquiry", "--data-dir", d,
               input=json.dumps({"juminhyo_code": P.TARO}))
    assert r.exit_code == 2 and "OPERATOR_INACTIVE" in r.output
