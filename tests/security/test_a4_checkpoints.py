"""A4 (issue 17): a log deleted whole — every entry *and* the head row of a chain — is found by
``jukinet audit verify`` without anyone remembering a command: the running system records a MAC'd
checkpoint of every chain at its start, daily and on every ``audit report``, in the data directory
(outside the databases) and on the operations status."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.ops import status
from jukinet.scheduler import OpsScheduler
from jukinet.security.oplog import Actor
from jukinet.security.service import Security
from jukinet.store.tables_security import OPLOG, operators

runner = CliRunner()
ADMIN = Actor("bootstrap", None)
CHECKPOINTS = "audit/checkpoints.jsonl"


def history(config, registers) -> Security:
    """Real history in all three chains: an operator registered (admin), searches logged (juki, fuhyo)."""
    sec = Security(config, registers)
    op, _ = sec.register_operator(ADMIN, display_name="照会 担当", roles=["operator"], registers=["juki", "fuhyo"],
                                  affairs=["search"], operator_id="OP0001")
    with registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
    for chain in ("juki", "fuhyo"):
        for i in range(3):
            with registers.uow(chain) as uow:
                sec.oplog.append(uow.conn, chain, actor=Actor("OP0001", "T0001"), action="search",
                                 purpose_code="inquiry", keys={"name_seion": f"ヤマタ{i}"}, result_count=i)
    return sec


def serve_starts(config, registers) -> OpsScheduler:
    """What ``jukinet serve`` does at its start: the ops scheduler (only the checkpoint job matters here)."""
    config.retention.enabled = False
    config.backup.enabled = False
    config.audit.monthly_report = False
    sched = OpsScheduler(config, registers=registers).start()
    sched.stop()
    return sched


def delete_whole(registers, chain: str) -> None:
    log, head = OPLOG[chain]
    with registers.engine(chain).begin() as conn:
        conn.execute(delete(log))
        conn.execute(delete(head))


def verify(config, *extra):
    return runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir), *extra])


@pytest.mark.parametrize("chain", ["juki", "fuhyo", "admin"])
def test_a4_log_and_head_deleted_whole_fail_verify_after_serve_started(config, registers, chain):
    history(config, registers)
    sched = serve_starts(config, registers)
    assert sched.checkpoint_outcome == "ok"
    assert verify(config, "--no-checkpoint").exit_code == 0
    delete_whole(registers, chain)
    r = verify(config)
    assert r.exit_code == 1, r.output
    assert f"{chain}: 異常" in r.output and "OPLOG_SHORTER_THAN_CHECKPOINT" in r.output
    assert "操作ログがチェックポイント" in r.output
    for other in {"juki", "fuhyo", "admin"} - {chain}:
        assert f"{other}: 正常" in r.output
    # the daily checkpoint does not bless the deletion: it declines, by code, and verify still fails
    taken = {t.chain: t for t in sched.run_checkpoint_once()}
    assert taken[chain].code == "OPLOG_SHORTER_THAN_CHECKPOINT" and chain in sched.checkpoint_outcome
    assert verify(config).exit_code == 1


def test_a4_audit_report_records_a_checkpoint_so_a_deleted_log_is_found(config, registers, tmp_path):
    history(config, registers)
    before = (config.data_dir / CHECKPOINTS).read_text(encoding="utf-8").splitlines()
    r = runner.invoke(app, ["audit", "report", "--month", "2026-10", "--out", str(tmp_path),
                            "--data-dir", str(config.data_dir)])
    assert r.exit_code == 0, r.output
    after = (config.data_dir / CHECKPOINTS).read_text(encoding="utf-8").splitlines()
    recorded = {json.loads(line)["chain"]: json.loads(line) for line in after[len(before):]}
    assert set(recorded) == {"juki", "fuhyo", "admin"} and recorded["juki"]["seq"] == 3
    assert all(cp["source"] == "report" for cp in recorded.values())
    for chain in ("juki", "fuhyo", "admin"):
        delete_whole(registers, chain)
    r = verify(config)
    assert r.exit_code == 1 and r.output.count("OPLOG_SHORTER_THAN_CHECKPOINT") == 3, r.output


def test_a4_forged_checkpoint_fails_verify(config, registers):
    history(config, registers)
    serve_starts(config, registers)
    path = config.data_dir / CHECKPOINTS
    lines = path.read_text(encoding="utf-8").splitlines()
    cp = [json.loads(line) for line in lines if json.loads(line)["chain"] == "juki"][-1]
    assert cp["seq"] == 3
    cp["seq"] = 2                                   # moved back, with the MAC of the genuine line
    path.write_text("\n".join(lines + [json.dumps(cp)]) + "\n", encoding="utf-8")
    r = verify(config)
    assert r.exit_code == 1 and "OPLOG_CHECKPOINT_FORGED" in r.output and "MAC" in r.output, r.output
    # a checkpoint made up without the key ring is refused the same way
    path.write_text("\n".join(lines + [json.dumps({**cp, "seq": 3, "mac": "0" * 64})]) + "\n", encoding="utf-8")
    assert "OPLOG_CHECKPOINT_FORGED" in verify(config).output


def test_a4_history_without_a_checkpoint_fails_verify_until_one_is_recorded(config, registers):
    history(config, registers)
    (config.data_dir / CHECKPOINTS).unlink()
    r = verify(config)
    assert r.exit_code == 1 and r.output.count("OPLOG_CHECKPOINT_MISSING") == 3, r.output
    assert verify(config).exit_code == 1            # verify alone never adopts the current state
    serve_starts(config, registers)                 # nor does the running system
    assert verify(config).exit_code == 1
    # a person decides: audit checkpoint verifies every chain and records it
    assert runner.invoke(app, ["audit", "checkpoint", "--data-dir", str(config.data_dir)]).exit_code == 0
    assert verify(config).exit_code == 0


def test_a4_everything_deleted_with_the_checkpoint_file_fails_verify(config, registers):
    """Log, head rows and checkpoint file gone: the roster still shows the installation has history."""
    history(config, registers)
    serve_starts(config, registers)
    for chain in ("juki", "fuhyo", "admin"):
        delete_whole(registers, chain)
    (config.data_dir / CHECKPOINTS).unlink()
    r = verify(config)
    assert r.exit_code == 1 and "admin: 異常" in r.output and "OPLOG_CHECKPOINT_MISSING" in r.output, r.output


def test_a4_fresh_installation_without_history_verifies_clean(config, registers):
    assert (config.data_dir / CHECKPOINTS).exists()          # recorded at init (the empty chains)
    r = verify(config)
    assert r.exit_code == 0 and r.output.count("正常") == 3, r.output
    serve_starts(config, registers)
    assert verify(config).exit_code == 0
    (config.data_dir / CHECKPOINTS).unlink()                  # an installation from before checkpoints
    assert verify(config, "--no-checkpoint").exit_code == 0


def test_a4_ops_status_shows_each_chains_last_checkpoint(config, registers):
    history(config, registers)
    sched = serve_starts(config, registers)
    st = status.collect(registers, config, sched=sched)
    seqs = {c.chain: (c.seq, c.source, c.error_code) for c in st.checkpoints}
    assert seqs["juki"] == (3, "start", None) and seqs["fuhyo"] == (3, "start", None)
    assert seqs["admin"][1:] == ("start", None) and seqs["admin"][0] >= 1
    d = st.as_dict()
    assert d["checkpoint_outcome"] == "ok" and {c["chain"] for c in d["checkpoints"]} == {"juki", "fuhyo", "admin"}
    assert "entry_hash" not in json.dumps(d["checkpoints"])
