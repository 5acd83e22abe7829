"""Q3/A7 — the encrypted backup and point-in-time recovery of an installation on the real cluster
(issue 15, ADR 0049; marker ``ha``).

(a) ``jukinet backup`` with a multi-host URL that lists the standbys first and asks nothing of the
session: the snapshot and every ``pg_dump`` run on the primary, and the backup restores to the same
rows. (b) The PITR drill of the issue: CS notifications streaming through the prefectural server, a
time T noted, more notifications, then the installation restored to T into a fresh cluster: every
notification acknowledged before T is there, none first sent after T, every operation-log chain
verifies (``jukinet audit verify``), and the restore itself is the last entry of the restored
installation's admin chain (who, when, the target time, the source).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import MetaData, Table, inspect, select
from typer.testing import CliRunner

from ha.conftest import free_base
from ha.test_q3_cluster import _Stream, national  # noqa: F401 - the fixture
from jukinet.backup import snapshot
from jukinet.backup.keys import PASSPHRASE_ENV, PRIVATE_NAME, PUBLIC_NAME, generate_key_pair
from jukinet.backup.pitr import restore_installation
from jukinet.bootstrap import bootstrap
from jukinet.cli import app
from jukinet.cluster.local import LocalCluster
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.outbox.worker import outbox_counts
from jukinet.security.oplog import Actor, recent
from jukinet.server import PrefectureServer
from jukinet.store.tables_intake import INTAKE_TABLES

pytestmark = [pytest.mark.ha, pytest.mark.xdist_group("ha")]
runner = CliRunner()
PASSPHRASE = "県の管理責任者のパスフレーズ"


def _digests(config: Config) -> dict:
    out = {}
    with bootstrap(config) as inst:
        for store in ("juki", "fuhyo", "admin"):
            with inst.registers.engine(store).connect() as conn:
                for name in sorted(inspect(conn).get_table_names()):
                    t = Table(name, MetaData(), autoload_with=conn)
                    rows = conn.execute(select(t).order_by(*(list(t.primary_key.columns) or list(t.columns)))).all()
                    out[(store, name)] = (len(rows), hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest())
    return out


def _some_intake(config, answered: int = 20) -> None:
    """Notifications through the server (so that the registers hold something), outbox drained."""
    server = PrefectureServer(config, outbox=True).start()
    stream = _Stream(config)
    try:
        stream.start()
        deadline = time.monotonic() + 60
        while stream.answered() < answered and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stream.finish()
        with bootstrap(config) as inst:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(outbox_counts(inst.registers, r).get("pending")
                                                      for r in ("juki", "fuhyo")):
                time.sleep(0.2)
        server.stop()
    assert not stream.errors and stream.answered() >= answered


def test_q3_a7_backup_with_the_standbys_listed_first_dumps_the_primary(cluster, jukinet_on_cluster, national,  # noqa: F811
                                                                       tmp_path, monkeypatch):
    cluster.heal()
    _some_intake(jukinet_on_cluster)
    s = cluster.status()
    order = [m.name for m in s.members if m.name != s.leader] + [s.leader]      # the primary last
    data = tmp_path / "data"
    shutil.copytree(jukinet_on_cluster.data_dir, data)
    config = Config.load(data)
    hosts = tuple(f"127.0.0.1:{cluster.pg_port(n)}" for n in order)
    for store in ("juki", "fuhyo", "admin"):
        u = snapshot.postgres_url(config.database.url(store))
        q = {k: v for k, v in u.query.items() if k != "target_session_attrs"}
        setattr(config.database, f"{store}_url", u.set(query={**q, "host": hosts}).render_as_string(hide_password=False))
    keys = tmp_path / "keys"
    generate_key_pair(keys, passphrase=PASSPHRASE)
    (data / "keys").mkdir(exist_ok=True)
    shutil.copy(keys / PUBLIC_NAME, data / "keys" / "backup-public.pem")
    config.save()
    with snapshot.pg_exported_snapshot(config.database.juki_url) as snap:
        assert snap.host == ("127.0.0.1", str(cluster.pg_port(s.leader)))
    source = _digests(config)
    out = tmp_path / "b.jkb"
    r = runner.invoke(app, ["backup", "--data-dir", str(data), "--out", str(out)])
    assert r.exit_code == 0, r.output
    with psycopg.connect(cluster.admin_url(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS jukinet_ha_bk WITH (FORCE)")
        conn.execute("CREATE DATABASE jukinet_ha_bk")
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    r = runner.invoke(app, ["restore", str(out), "--key", str(keys / PRIVATE_NAME), "--data-dir",
                            str(tmp_path / "restored"), "--db-url", cluster.admin_url("jukinet_ha_bk")])
    assert r.exit_code == 0, r.output
    copy = _digests(Config.load(tmp_path / "restored"))
    assert source.keys() == copy.keys()
    assert [k for k in source if source[k] != copy[k]] == []
    assert source[("juki", "juki_current")][0] > 0
    print(f"\nQ3 backup via {','.join(order)} (primary {s.leader}): {out.stat().st_size} bytes, "
          f"{sum(n for n, _ in source.values())} rows restored identical")


def _processed(config: Config) -> set[str]:
    with bootstrap(config) as inst:
        ids = set()
        for reg in ("juki", "fuhyo"):
            processed = INTAKE_TABLES[reg][0]
            with inst.registers.engine(reg).connect() as c:
                ids |= {r[0] for r in c.execute(select(processed.c.notification_id))}
        return ids


class _Operators:
    """Operator activity beside the intake: an operation-log entry in each chain every ~0.1 s (what a
    search or a lookup writes), remembering when each was committed."""

    def __init__(self, config):
        self.config, self.stop, self.done = config, threading.Event(), []     # (chain, seq, committed)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with bootstrap(self.config) as inst:
            while not self.stop.is_set():
                for chain in ("juki", "fuhyo", "admin"):
                    with inst.registers.uow(chain) as uow:
                        seq = inst.oplog.append(uow.conn, chain, actor=Actor("pitr-drill", None), action="search",
                                              keys={"name": "三重"}, result_count=1)
                    self.done.append((chain, seq, time.monotonic()))          # after the commit
                time.sleep(0.1)


def test_q3_pitr_drill_during_intake_restores_the_installation_and_logs_the_restore(
        cluster, jukinet_on_cluster, national, tmp_path):  # noqa: F811
    cluster.heal()
    config = jukinet_on_cluster
    with pytest.raises(JukinetError) as e:                  # not empty: refused before any cluster is made
        (tmp_path / "busy").mkdir()
        (tmp_path / "busy" / "x").write_text("x")
        restore_installation(cluster, LocalCluster(tmp_path / "never", base_port=free_base(), nodes=1),
                             datetime.now(timezone.utc), data_dir=config.data_dir, restored_dir=tmp_path / "busy")
    assert e.value.code == "PITR_TARGET_IN_USE" and not (tmp_path / "never").exists()

    server = PrefectureServer(config, outbox=True).start()
    stream, ops = _Stream(config), _Operators(config)
    try:
        stream.start()
        ops.thread.start()
        deadline = time.monotonic() + 60
        while stream.answered() < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        t_mono, target = time.monotonic(), datetime.now(timezone.utc)       # T, while notifications arrive
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (time.monotonic() > t_mono + 4 and stream.answered_after(t_mono + 1)):
            time.sleep(0.1)
    finally:
        ops.stop.set()
        ops.thread.join(30)
        stream.finish()
        server.stop()
    assert not stream.errors, stream.errors
    # the source's heads checkpointed after T (as the daily checkpoint would): the restore must set them aside
    r = runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)])
    assert r.exit_code == 0, r.output
    ops_before = {c: max((q for ch, q, t in ops.done if ch == c and t < t_mono), default=0) for c in ("juki", "fuhyo", "admin")}
    ops_after = {c: min(q for ch, q, t in ops.done if ch == c and t > t_mono + 0.5) for c in ("juki", "fuhyo", "admin")}
    with stream.lock:
        before = {a["notification_id"] for start, done, got in stream.sent if done < t_mono for a in got}
        after = {a["notification_id"] for start, done, got in stream.sent if start > t_mono for a in got}
    assert before and after
    assert before | after <= _processed(config)            # the source has everything

    fresh = Path(tempfile.mkdtemp(prefix="jukinet-pitr-", dir="/tmp"))
    restored_cluster = LocalCluster(fresh, base_port=free_base(), nodes=1)
    try:
        t0 = time.monotonic()
        record = restore_installation(cluster, restored_cluster, target, data_dir=config.data_dir,
                                      restored_dir=tmp_path / "restored", operator_id="admin01", backup=False)
        seconds = time.monotonic() - t0
        restored = Config.load(tmp_path / "restored")
        hosts = snapshot.postgres_url(restored.database.juki_url).query["host"]
        assert hosts in (f"127.0.0.1:{restored_cluster.pg_port('pg1')}", (f"127.0.0.1:{restored_cluster.pg_port('pg1')}",))
        have = _processed(restored)
        assert before <= have, f"{len(before - have)} notifications acknowledged before T missing"
        assert not (after & have), f"{len(after & have)} notifications sent after T present"
        r = runner.invoke(app, ["audit", "verify", "--data-dir", str(restored.data_dir)])
        assert r.exit_code == 0, r.output
        with bootstrap(restored) as inst, inst.registers.engine("admin").connect() as c:
            last = list(recent(c, "admin", limit=1))[0]
        detail = json.loads(last.detail) if isinstance(last.detail, str) else last.detail
        assert last.action == "pitr_restore" and last.operator_id == "admin01"
        assert detail["to_time"] == target.isoformat() and detail["source_cluster"] == str(cluster.dir)
        assert detail["source_data_dir"] == str(config.data_dir) and detail["cluster_dir"] == str(fresh)
        assert record["heads"]["admin"] == last.seq
        for chain in ("juki", "fuhyo"):                 # operator entries: those before T kept, none after
            assert ops_before[chain] <= record["heads"][chain] < ops_after[chain], (chain, record["heads"])
        assert ops_before["admin"] <= record["heads"]["admin"] - 1 < ops_after["admin"]
        assert record["checkpoints_set_aside"] and all(v > 0 for v in record["checkpoints_set_aside"].values())
        assert list((restored.data_dir / "audit").glob("checkpoints.before-pitr-*.jsonl"))
        r = runner.invoke(app, ["audit", "verify", "--data-dir", str(config.data_dir)])
        assert r.exit_code == 0, r.output                  # the source is untouched
        print(f"\nQ3 PITR drill: {len(before)} acknowledged before T all restored, {len(after)} after T absent, "
              f"{len(have - before)} in flight at T restored; restore {seconds:.1f} s; "
              f"checkpoints set aside {record['checkpoints_set_aside']}; heads {record['heads']}")
    finally:
        restored_cluster.down()
        shutil.rmtree(fresh, ignore_errors=True)
