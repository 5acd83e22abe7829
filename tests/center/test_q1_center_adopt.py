"""Q1 (issue 14; ADR 0045): ``jukinet center adopt`` makes an existing single-prefecture installation
(made by ``jukinet init``, with residents, history and operation-log entries) a tenant of a center, in
place: its keys, every row, its history and its operation-log chains are kept and verify; it is
served through the center afterwards. Refused with a code, nothing changed: the directory of another
prefecture, a prefecture already hosted. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from jukinet_testing import BACKENDS, PG_URL, PostgresDatabase
from sqlalchemy import func, select
from test_q1_center import ADMIN, MIE_NAME, TSU, cs_client, free_port, jcode, juki_codes, notification
from typer.testing import CliRunner

from jukinet.bootstrap import bootstrap
from jukinet.center.registry import Center, init_center
from jukinet.center.tenants import _keys_digest
from jukinet.center_server import CenterServer
from jukinet.cli import app as cli
from jukinet.security.oplog import CHAINS, OPLOG, verify_all
from jukinet.seed import populate
from jukinet.store.tables import juki_history


def init_args(d, backend, request) -> list[str]:
    """``jukinet init`` of ``d`` on ``backend`` (PostgreSQL: a throwaway database, dropped after the test)."""
    args = ["init", "--data-dir", str(d)]
    if backend == "postgres":
        pg = PostgresDatabase(PG_URL)
        request.addfinalizer(pg.drop)
        args += ["--db-url", pg.url]
    return args


def single_installation(tmp_path, backend, request):
    """What an operator has today: ``jukinet init`` (三重県), residents, an operator on the roster."""
    d = tmp_path / "single"
    r = CliRunner().invoke(cli, init_args(d, backend, request))
    assert r.exit_code == 0, r.output
    with bootstrap(d) as inst:
        populate(inst.registers, 40, 7)
        inst.security.register_operator(ADMIN, display_name="三重 担当", roles=["operator"], registers=["juki"],
                                        affairs=["search"], operator_id="OP-ADOPT")
    return d


def facts(d):
    with bootstrap(d) as inst:
        codes = juki_codes(inst)
        with inst.registers.engine("juki").connect() as c:
            history = c.execute(select(func.count()).select_from(juki_history)).scalar()
        reports = verify_all(inst.oplog, {ch: inst.registers.engine(ch) for ch in CHAINS})
        with inst.registers.engine("admin").connect() as c:
            log, _ = OPLOG["admin"]
            last = c.execute(select(log.c.action).order_by(log.c.seq.desc()).limit(1)).scalar()
    return codes, history, {r.chain: (r.ok, r.head_seq) for r in reports}, last


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_center_adopt_keeps_keys_history_and_chains_and_serves_the_prefecture(backend, tmp_path, request):
    d = single_installation(tmp_path, backend, request)
    c = init_center(tmp_path / "center", port=free_port())
    config_bytes, keys = (d / "jukinet.toml").read_bytes(), _keys_digest(d)
    codes, history, chains, _ = facts(d)
    assert len(codes) > 0 and history > 0 and all(ok for ok, _ in chains.values())

    # the directory of 三重県 offered as 愛知県: refused, nothing changed
    r = CliRunner().invoke(cli, ["center", "adopt", "--center-dir", str(c.dir), "--data-dir", str(d),
                                 "--prefecture", "23"])
    assert r.exit_code == 2 and "CENTER_ADOPT_WRONG_PREFECTURE" in r.output and "三重県" in r.output
    assert Center.load(c.dir).tenants == [] and (d / "jukinet.toml").read_bytes() == config_bytes
    assert facts(d)[2] == chains

    r = CliRunner().invoke(cli, ["center", "adopt", "--center-dir", str(c.dir), "--data-dir", str(d),
                                 "--prefecture", "24"])
    assert r.exit_code == 0, r.output
    center = Center.load(c.dir)
    [t] = center.tenants
    assert (t.prefecture, t.code, center.tenant_dir(t)) == (24, "240001", d.absolute())
    assert list(d.glob("jukinet.toml.pre-center-*"))[0].read_bytes() == config_bytes   # the old config kept

    # kept: every key file, every resident, the history; chains intact, one more entry (the attach)
    codes2, history2, chains2, last = facts(d)
    assert _keys_digest(d) == keys and codes2 == codes and history2 == history
    assert all(ok for ok, _ in chains2.values()) and last == "center_attach"
    assert chains2["admin"][1] == chains["admin"][1] + 1
    assert {k: v for k, v in chains2.items() if k != "admin"} == {k: v for k, v in chains.items() if k != "admin"}

    # already hosted: refused
    r = CliRunner().invoke(cli, ["center", "adopt", "--center-dir", str(c.dir), "--data-dir", str(d),
                                 "--prefecture", "24"])
    assert r.exit_code == 2 and "CENTER_TENANT_EXISTS" in r.output
    events = [(e["event"], e.get("code")) for e in Center.load(c.dir).read_log()]
    assert ("tenant_adopt_refused", "CENTER_ADOPT_WRONG_PREFECTURE") in events and ("tenant_adopt", None) in events
    assert ("tenant_adopt_refused", "CENTER_TENANT_EXISTS") in events

    # served by the center: a CS of 津市 reaches the adopted files, the old residents are there
    srv = CenterServer(center, outbox=False).start()
    try:
        new = jcode(9_900_000_001)
        with cs_client(center, srv, 24, TSU) as cs:
            got = cs.post("/cs/v1/notifications", json=notification("adopt-1", TSU, new, MIE_NAME, "ミエ\u3000イチロウ"))
            assert got.status_code == 200, got.text
        assert juki_codes(srv.tenants[24].installation) == codes | {new}
    finally:
        srv.stop()


def test_q1_center_adopt_refuses_a_prefecture_already_hosted_by_add(tmp_path, request):
    d = single_installation(tmp_path, "sqlite", request)
    c = init_center(tmp_path / "center", port=free_port())
    r = CliRunner().invoke(cli, ["center", "add", "--center-dir", str(c.dir), "--prefecture", "24"])
    assert r.exit_code == 0, r.output
    before = (d / "jukinet.toml").read_bytes()
    r = CliRunner().invoke(cli, ["center", "adopt", "--center-dir", str(c.dir), "--data-dir", str(d),
                                 "--prefecture", "三重県"])
    assert r.exit_code == 2 and "CENTER_TENANT_EXISTS" in r.output
    assert (d / "jukinet.toml").read_bytes() == before and len(Center.load(c.dir).tenants) == 1
