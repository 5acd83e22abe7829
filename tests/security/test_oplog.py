"""A4: the operation log is a hash chain per database; `jukinet audit verify` finds every tampering."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, text, update
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.keyring import KeyRing
from jukinet.security.oplog import Actor, OperationLog, OplogUnavailable, verify_all
from jukinet.store.tables_security import OPLOG

runner = CliRunner()
ACTOR = Actor("OP0001", "T0001")


@pytest.fixture
def oplog(config):
    return OperationLog(KeyRing(config.data_dir), config.data_dir)


def fill(registers, oplog, chain="juki", n=5):
    for i in range(n):
        with registers.uow(chain) as uow:
            oplog.append(uow.conn, chain, actor=ACTOR, action="search", purpose_code="inquiry",
                         keys={"name_seion": f"ヤマタ{i}", "birth_from": "1980-04-01"}, result_count=i,
                         detail={"page": 1})


def verify(registers, oplog, chain="juki"):
    with registers.engine(chain).connect() as conn:
        return oplog.verify(conn, chain)


def audit(config):
    return runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)])


def test_a4_audit_verify_intact_chain_exits_zero(registers, oplog, config):
    fill(registers, oplog)
    fill(registers, oplog, "fuhyo", 2)
    with registers.admin_tx() as conn:
        oplog.append(conn, "admin", actor=ACTOR, action="login")
    rep = verify(registers, oplog)
    assert rep.ok and rep.count == 5 and rep.head_seq == 5
    r = audit(config)
    assert r.exit_code == 0, r.output
    assert "juki" in r.output and "正常" in r.output


def test_a4_log_keeps_keyed_digests_never_the_keys(registers, oplog):
    fill(registers, oplog, n=1)
    with registers.juki_engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM oplog")).one()._mapping
    dump = json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False)
    assert "ヤマタ" not in dump and "1980" not in dump
    keys = json.loads(row["keys"])
    assert keys["name_seion"] == oplog.digest("name_seion", "ヤマタ0")
    assert row["operator_id"] == "OP0001" and row["terminal_id"] == "T0001" and row["purpose_code"] == "inquiry"


def _tamper(registers, chain, sql, **params):
    with registers.engine(chain).begin() as conn:
        conn.execute(text(sql), params)


def test_a4_audit_verify_detects_edit(registers, oplog, config):
    fill(registers, oplog)
    _tamper(registers, "juki", "UPDATE oplog SET result_count = 99 WHERE seq = 3")
    rep = verify(registers, oplog)
    assert not rep.ok and rep.problems[0].seq == 3 and rep.problems[0].kind == "altered"
    r = audit(config)
    assert r.exit_code == 1 and "seq 3" in r.output


def test_a4_audit_verify_detects_rehashed_edit_without_the_key(registers, oplog):
    """Recomputing a plain SHA-256 over an edited entry does not help: the chain is keyed."""
    import hashlib
    fill(registers, oplog)
    _tamper(registers, "juki", "UPDATE oplog SET operator_id = 'OP9999', entry_hash = :h WHERE seq = 2",
            h=hashlib.sha256(b"forged").hexdigest())
    rep = verify(registers, oplog)
    assert any(p.seq == 2 and p.kind == "altered" for p in rep.problems)


def test_a4_audit_verify_detects_delete(registers, oplog, config):
    fill(registers, oplog)
    _tamper(registers, "juki", "DELETE FROM oplog WHERE seq = 2")
    rep = verify(registers, oplog)
    assert rep.problems[0].kind == "deleted" and rep.problems[0].seq == 2
    assert audit(config).exit_code == 1


def test_a4_audit_verify_detects_swap(registers, oplog, config):
    fill(registers, oplog)
    log, _ = OPLOG["juki"]
    with registers.juki_engine.begin() as conn:
        a = dict(conn.execute(log.select().where(log.c.seq == 2)).one()._mapping)
        b = dict(conn.execute(log.select().where(log.c.seq == 4)).one()._mapping)
        for src, seq in ((b, 2), (a, 4)):
            vals = {k: v for k, v in src.items() if k != "seq"}
            conn.execute(update(log).where(log.c.seq == seq).values(**vals))
    rep = verify(registers, oplog)
    assert not rep.ok and rep.problems[0].seq == 2
    r = audit(config)
    assert r.exit_code == 1 and "seq 2" in r.output


def test_a4_audit_verify_detects_truncated_tail(registers, oplog, config):
    fill(registers, oplog)
    _tamper(registers, "juki", "DELETE FROM oplog WHERE seq >= 4")
    rep = verify(registers, oplog)
    assert [p.kind for p in rep.problems] == ["truncated"] and rep.problems[0].seq == 4
    r = audit(config)
    assert r.exit_code == 1 and "末尾" in r.output or "seq 4" in r.output


def test_a4_audit_verify_detects_truncation_with_anchor_rolled_back(registers, oplog, config):
    """Cutting the tail and putting back an older (genuine) anchor is caught by the checkpoints."""
    fill(registers, oplog, n=3)
    _, head = OPLOG["juki"]
    with registers.juki_engine.connect() as conn:
        old_head = dict(conn.execute(head.select()).one()._mapping)
    fill(registers, oplog, n=3)
    verify_all(oplog, {c: registers.engine(c) for c in ("juki", "fuhyo", "admin")}, checkpoint=True)
    with registers.juki_engine.begin() as conn:
        conn.execute(delete(OPLOG["juki"][0]).where(OPLOG["juki"][0].c.seq > 3))
        conn.execute(update(head).values(**old_head))
    rep = verify(registers, oplog)
    assert any(p.kind == "rolled_back" for p in rep.problems)
    assert audit(config).exit_code == 1


def test_a4_audit_verify_detects_forged_anchor(registers, oplog):
    fill(registers, oplog)
    _tamper(registers, "juki", "DELETE FROM oplog WHERE seq = 5")
    _tamper(registers, "juki", "UPDATE oplog_head SET seq = 4")
    rep = verify(registers, oplog)
    assert any(p.kind == "anchor" for p in rep.problems)


def test_a4_log_write_failure_raises_oplog_unavailable(registers, oplog):
    _tamper(registers, "juki", "DROP TABLE oplog")
    with pytest.raises(OplogUnavailable):
        with registers.uow("juki") as uow:
            oplog.append(uow.conn, "juki", actor=ACTOR, action="search")
