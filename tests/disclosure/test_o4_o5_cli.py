"""O4/O5 from the command line (``jukinet disclosure …``) and the CS simulator's verb
(``jukinet sim cs-reports``): a script an administrator or a municipality's CS operator would run."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from jukinet.bootstrap import bootstrap
from jukinet.cli import app
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import operators

from .conftest import OP
from .test_disclosure import intake
from .test_o5_reports import NABARI, server  # noqa: F401  (the running prefectural server)

runner = CliRunner()


@pytest.fixture
def cli_operator(world):
    inst = bootstrap(world.config, registers=world.registers)
    op, _ = inst.security.register_operator(Actor("bootstrap", None), display_name="CLI 担当", roles=["operator"],
                                            registers=["juki", "fuhyo"], affairs=["disclosure"], operator_id="CLI-1")
    with world.registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
    return op.operator_id


def jk(world, *args, input=None):
    return runner.invoke(app, [*args, "--data-dir", str(world.config.data_dir)], input=input)


def test_o4_o5_cli_suspension_report_and_cs_receipt(world, cli_operator, server, tmp_path):  # noqa: F811
    intake(world, "C-0001")
    world.svc.disclosure_form("juki", "C-0001", OP, "T0001")
    base = ["--operator", cli_operator]
    r = jk(world, "disclosure", "suspension", "open", *base, "--request-no", "C-0001", "--kind", "erase",
           "--grounds", "unlawful_acquisition", "--copies", "4", "--copy-size", "B4",
           "--receipt-out", str(tmp_path / "receipt.pdf"), input="不正な手段で取得された\n")
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0].split("\t")
    sid = first[1]
    assert first[0] == "suspension" and "合計=40円" in first and "手数料=0円" in first
    assert (tmp_path / "receipt.pdf").read_bytes().startswith(b"%PDF")

    bad = jk(world, "disclosure", "suspension", "open", *base, "--request-no", "C-0001", "--kind", "erase",
             "--grounds", "unlawful_acquisition", "--copy-size", "A0", "--copies", "1", input="x")
    assert bad.exit_code == 2 and "COPY_SIZE_OVER_A3" in bad.output
    assert jk(world, "disclosure", "suspension", "step", *base, "--id", sid, "--to", "investigating").exit_code == 0
    r = jk(world, "disclosure", "suspension", "report", *base, "--id", sid, "--municipality", NABARI,
           "--kind", "correct", "--item", "address")
    assert r.exit_code == 0, r.output
    rid = r.output.split("\t")[1]
    r = jk(world, "disclosure", "reports", *base, "--pending")
    assert r.exit_code == 0 and rid in r.output and "\tpending\t0\t" in r.output

    # Nabari's CS (simulator) polls the CS channel, keeps the 通報 and acknowledges it
    r = jk(world, "sim", "cs-reports", "--municipality", NABARI)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.splitlines()[0]) == {"report_id": rid, "received": "new", "ack": "acknowledged"}
    shown = jk(world, "sim", "cs-reports", "--municipality", NABARI, "--show")
    assert json.loads(shown.output.splitlines()[0])["report_id"] == rid
    r = jk(world, "disclosure", "reports", *base)
    assert "\tacknowledged\t1\t" in r.output
    assert jk(world, "disclosure", "reports", *base, "--pending").output == ""

    assert jk(world, "disclosure", "suspension", "decide", *base, "--id", sid, "--decision", "suspend",
              "--reason", "violation_found").exit_code == 0
    r = jk(world, "disclosure", "suspension", "letter", *base, "--id", sid, "--out", str(tmp_path / "letter.pdf"))
    assert r.exit_code == 0 and r.output.startswith("form\tS")
    r = jk(world, "disclosure", "suspension", "list", *base)
    assert sid in r.output and "\tdecided\t" in r.output
    r = jk(world, "disclosure", "suspension", "list", "--operator", "NOBODY")
    assert r.exit_code == 2 and "OPERATOR_INACTIVE" in r.output
