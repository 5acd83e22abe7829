"""Q1 (issue 14; ADR 0049): a tenant moved to another database cluster with ``jukinet center move``.

From SQLite to PostgreSQL and from one PostgreSQL database to another: every row and every
operation-log chain arrives (the tenant's ``audit verify`` passes, heads unchanged), the tenant's
configuration is switched and the center serves it from the new place, the source stays untouched
until ``--confirm`` (``--abort`` goes back, and is refused once the copy has been written to), and
each refusal has its code and changes nothing. Needs PostgreSQL (JUKINET_TEST_POSTGRES_URL): the
target is always PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from pathlib import Path
from datetime import date, datetime, timezone

import pytest
from jukinet_testing import PG_URL, PostgresDatabase
from sqlalchemy import MetaData, Table, inspect, select
from test_q1_center import MIE_NAME, TSU, cs_client, jcode, juki_codes, make_center, notification
from typer.testing import CliRunner

from jukinet.bootstrap import bootstrap
from jukinet.center.move import PENDING
from jukinet.center.registry import Center
from jukinet.center_server import CenterServer
from jukinet.cli import app
from jukinet.config import Config
from jukinet.security.oplog import Actor, recent
from jukinet.seed import populate
from jukinet.store import provision

runner = CliRunner()
pytestmark = pytest.mark.skipif(not PG_URL, reason="JUKINET_TEST_POSTGRES_URL is not set")


def _norm(v):
    """One value as both engines give it back: an instant in UTC, a date, bytes, a number."""
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, bool):
        return int(v)
    return v


def digests(config: Config) -> dict:
    out = {}
    with bootstrap(config) as inst:
        for store in ("juki", "fuhyo", "admin"):
            with inst.registers.engine(store).connect() as conn:
                for name in sorted(inspect(conn).get_table_names()):
                    if name == "alembic_version":
                        continue
                    t = Table(name, MetaData(), autoload_with=conn)
                    rows = conn.execute(select(t).order_by(*(list(t.primary_key.columns) or list(t.columns)))).all()
                    norm = [tuple(_norm(v) for v in r) for r in rows]
                    out[(store, name)] = (len(rows), hashlib.sha256(repr(norm).encode()).hexdigest())
    return out


def _activity(c: Center, prefecture: int) -> Config:
    config = Config.load(c.tenant_dir(c.tenant(prefecture)))
    with bootstrap(config) as inst:
        populate(inst.registers, 25, seed=prefecture)
        for chain in ("juki", "fuhyo", "admin"):
            with inst.registers.uow(chain) as uow:
                inst.oplog.append(uow.conn, chain, actor=Actor("bootstrap", None), action="search",
                                  keys={"name": "三重"}, result_count=1)
    return config


def move(c: Center, *args: str):
    return runner.invoke(app, ["center", "move", "--center-dir", str(c.dir), *args])


def last_admin_entry(config: Config):
    with bootstrap(config) as inst, inst.registers.engine("admin").connect() as conn:
        e = list(recent(conn, "admin", limit=1))[0]
    return e.action, json.loads(e.detail) if isinstance(e.detail, str) else e.detail


def test_q1_move_a_tenant_from_sqlite_to_postgresql_serve_it_then_confirm(tmp_path, request):
    c = make_center(tmp_path, "sqlite", request, prefectures=(24,))
    config = _activity(c, 24)
    before = digests(config)
    sqlite_files = [config.database.url(s).split("///", 1)[1] for s in ("juki", "fuhyo", "admin")]
    target = PostgresDatabase(PG_URL)
    request.addfinalizer(target.drop)

    r = move(c, "--prefecture", "24", "--db-url", target.url)
    assert r.exit_code == 0, r.output
    moved = Config.load(config.data_dir)
    assert moved.database.juki_url.startswith("postgresql") and target.name in moved.database.juki_url
    after = digests(moved)
    assert after.keys() == before.keys()
    diff = [k for k, v in after.items() if v != before[k]]
    assert diff == [("admin", "oplog"), ("admin", "oplog_head")]     # + the center_move entry
    assert runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)]).exit_code == 0
    action, detail = last_admin_entry(moved)
    assert action == "center_move" and detail["from"] == "sqlite" and detail["stage"] == "switched"
    assert target.name in detail["to"] and "password" not in json.dumps(detail) and "@" not in detail["to"]
    assert all(Path(f).exists() for f in sqlite_files)                       # the source kept
    assert (config.data_dir / PENDING).exists()
    assert [e["event"] for e in c.read_log()][-1] == "tenant_move"

    # the center serves the tenant from PostgreSQL: a CS notification lands there
    srv = CenterServer(Center.load(c.dir), outbox=False).start()
    try:
        code = jcode(24_700_001)
        with cs_client(c, srv, 24, TSU) as cs:
            resp = cs.post("/cs/v1/notifications", json=notification("mv-1", TSU, code, MIE_NAME, "ミエ\u3000イチロウ"))
            assert resp.status_code == 200, resp.text
        assert code in juki_codes(srv.tenants[24].installation)
    finally:
        srv.stop()
    # written to since the move: going back would lose that, refused
    r = move(c, "--prefecture", "24", "--abort")
    assert r.exit_code != 0 and "CENTER_MOVE_DIVERGED" in r.output, r.output
    r = move(c, "--prefecture", "24", "--confirm")
    assert r.exit_code == 0, r.output
    assert not (config.data_dir / PENDING).exists()
    detached = list((c.dir / "detached").iterdir())
    assert len(detached) == 1 and {p.name for p in detached[0].iterdir()} >= {Path(f).name for f in sqlite_files}
    assert not any(Path(f).exists() for f in sqlite_files)
    assert runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)]).exit_code == 0
    assert last_admin_entry(Config.load(config.data_dir))[1]["stage"] == "confirmed"
    assert [e["event"] for e in c.read_log()][-1] == "tenant_move_confirm"
    r = move(c, "--prefecture", "24", "--confirm")
    assert r.exit_code != 0 and "CENTER_MOVE_NOT_PENDING" in r.output


def test_q1_move_between_postgresql_databases_refusals_abort_and_move_again(tmp_path, request):
    c = make_center(tmp_path, "postgres", request, prefectures=(24, 23))
    config = _activity(c, 23)
    source_url = config.database.juki_url
    before = digests(config)
    mie_db = Config.load(c.tenant_dir(c.tenant(24))).database.juki_url
    used = PostgresDatabase(PG_URL)                       # a database that already holds registers
    request.addfinalizer(used.drop)
    provision.migrate_all(provision.postgres_roles(used.url))
    target = PostgresDatabase(PG_URL)
    request.addfinalizer(target.drop)

    def refused(code: str, *args: str) -> None:
        r = move(c, *args)
        assert r.exit_code != 0 and code in r.output, (code, r.output)
        assert Config.load(config.data_dir).database.juki_url == source_url and not (config.data_dir / PENDING).exists()

    refused("CENTER_MOVE_TARGET_NOT_POSTGRES", "--prefecture", "23", "--db-url", f"sqlite:///{tmp_path}/x.sqlite3")
    refused("CENTER_MOVE_SAME_DB", "--prefecture", "23", "--db-url",
            PG_URL.rsplit("/", 1)[0] + "/" + source_url.split("?")[0].rsplit("/", 1)[1])
    refused("CENTER_DB_SHARED", "--prefecture", "23", "--db-url",
            PG_URL.rsplit("/", 1)[0] + "/" + mie_db.split("?")[0].rsplit("/", 1)[1])
    refused("CENTER_MOVE_TARGET_IN_USE", "--prefecture", "23", "--db-url", used.url)
    refused("TENANT_UNKNOWN", "--prefecture", "21", "--db-url", target.url)
    refused("CENTER_MOVE_NOT_PENDING", "--prefecture", "23", "--confirm")
    refused("CENTER_MOVE_USAGE", "--prefecture", "23")
    with socket.socket() as s:      # something answers on the center's port, but is no center to pause the tenant
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((c.host, c.port))
        s.listen()

        s.settimeout(0.1)
        done = threading.Event()

        def hang_up():
            while not done.is_set():
                try:
                    conn, _ = s.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                conn.close()

        th = threading.Thread(target=hang_up, daemon=True)
        th.start()
        try:
            refused("CENTER_PAUSE_FAILED", "--prefecture", "23", "--db-url", target.url)
        finally:
            done.set()
            th.join(5)
    refusals = [e for e in c.read_log() if e["event"] == "tenant_move_refused"]
    assert {e["code"] for e in refusals} >= {"CENTER_MOVE_SAME_DB", "CENTER_DB_SHARED", "CENTER_MOVE_TARGET_IN_USE",
                                              "CENTER_PAUSE_FAILED"}
    assert digests(config) == before

    r = move(c, "--prefecture", "23", "--db-url", target.url)
    assert r.exit_code == 0, r.output
    moved = Config.load(config.data_dir)
    assert target.name in moved.database.juki_url
    after = digests(moved)
    assert {k: v for k, v in after.items() if k[0] != "admin"} == {k: v for k, v in before.items() if k[0] != "admin"}
    assert all(after[k][0] == before[k][0] for k in before if k[0] == "admin" and "oplog" not in k[1])
    assert runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)]).exit_code == 0
    refused_again = move(c, "--prefecture", "23", "--db-url", used.url)
    assert "CENTER_MOVE_PENDING" in refused_again.output

    r = move(c, "--prefecture", "23", "--abort")          # nothing written to the copy: back to the source
    assert r.exit_code == 0, r.output
    assert Config.load(config.data_dir).database.juki_url == source_url
    assert runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)]).exit_code == 0
    assert last_admin_entry(Config.load(config.data_dir))[1]["stage"] == "aborted"
