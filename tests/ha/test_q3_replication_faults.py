"""Q3 on the real local cluster (issue 15, ADR 0044): what the operations view shows, and what happens,
when a standby is lost, when both are, when the WAL archive fails; and the point-in-time recovery.

(a) ``/ops``'s replication state and the metrics read the cluster's Patroni REST API: the leader,
    the synchronous standby, three members streaming, lag 0, one timeline; WAL archived; the
    pgBackRest full backup.
(b) Standby loss: the synchronous standby is killed (kill -9 Patroni and postmaster) while a client
    commits in a loop. Patroni makes the asynchronous standby synchronous; commits go on after a
    pause; the view shows the lost member; it rejoins; every acknowledged commit is on every node.
(c) Both standbys lost: a commit waits (``synchronous_mode_strict``) — it is not acknowledged on one
    disk — until a standby is back; the view says there is no synchronous standby.
(d) The archive command failing (repository not writable: the "archive full" fault) is shown on
    ``/ops`` and in the metrics, and clears when archiving works again.
(e) PITR: write A, note T, write B; ``restore_from(…, T)`` makes a fresh cluster with A and without
    B; a time in the future, before the first backup or without a zone is refused with a code.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from jukinet.bootstrap import bootstrap
from jukinet.cluster.local import LocalCluster
from jukinet.errors import JukinetError
from jukinet.ops import state_metrics
from jukinet.ops import status as S

from ha.conftest import free_base

pytestmark = [pytest.mark.ha, pytest.mark.xdist_group("ha")]


def _healthy(cluster) -> None:
    """Every node back and streaming (a standby left ahead of a new timeline by an earlier drill is
    re-cloned, as an operator would: ADR 0044)."""
    cluster.heal()


def _view(config) -> S.ClusterStatus:
    return S.cluster(config, datetime.now(timezone.utc))


def _metrics(registers, config) -> dict:
    out = {}
    for fam in state_metrics.StateCollector(registers, config).collect():
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _table(cluster, name: str) -> str:
    url = cluster.admin_url("jukinet_ha")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (id bigint PRIMARY KEY, note text, "
                     "at timestamptz NOT NULL DEFAULT clock_timestamp())")
    return url


class _Writer:
    """Commits one row after another (autocommit); remembers each acknowledged id and its latency."""

    def __init__(self, url: str, table: str, start: int):
        self.url, self.table, self.next = url, table, start
        self.acked: list[tuple[int, float, float]] = []      # (id, monotonic at ack, seconds the commit took)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.url, autocommit=True)
                t0 = time.monotonic()
                conn.execute(f"INSERT INTO {self.table} (id) VALUES (%s)", (self.next,))
                self.acked.append((self.next, time.monotonic(), time.monotonic() - t0))
                self.next += 1
                time.sleep(0.02)
            except psycopg.Error as e:
                self.errors.append(type(e).__name__)
                conn = None
                time.sleep(0.2)
        if conn is not None:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(120)


def _ids_on(cluster, node: str, table: str) -> set[int]:
    """The ids on one node (empty while the node restarts, or while a standby that came back has not yet
    replayed the table's creation — it accepts reads once consistent, before it has caught up: the caller
    waits)."""
    try:
        with psycopg.connect(cluster.node_url(node, "jukinet_ha"), autocommit=True) as conn:
            return {r[0] for r in conn.execute(f"SELECT id FROM {table}")}
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return set()


def test_q3_ops_and_metrics_show_the_real_cluster(cluster, jukinet_on_cluster):
    _healthy(cluster)
    s = cluster.status()
    with psycopg.connect(_table(cluster, "q3_view"), autocommit=True) as conn:
        conn.execute("INSERT INTO q3_view (id) VALUES (1) ON CONFLICT DO NOTHING")
    with bootstrap(jukinet_on_cluster) as inst:
        def caught_up():
            st = S.collect(inst.registers, jukinet_on_cluster, counts=False)
            rep = st.cluster.replication         # one snapshot that shows both lags at 0 (WAL keeps moving)
            return st if rep.healthy and all(m.lag_seconds == 0 for m in rep.members) and all(
                m.lag_bytes == 0 for m in rep.members if m.name != rep.leader) else None
        st = cluster.wait(caught_up, 30, "view: healthy, standbys caught up")
        rep = st.cluster.replication
        assert (rep.leader, rep.sync_standby) == (s.leader, s.sync_standby)
        assert sorted(m.role for m in rep.members) == ["leader", "replica", "sync_standby"]
        assert all(m.up and m.timeline == rep.timeline for m in rep.members)
        assert all(m.lag_bytes == 0 for m in rep.members if m.name != rep.leader)
        assert st.archive.mode == "on" and st.archive.archived_count >= 1 and st.archive.ok
        assert st.cluster.repo.present and st.cluster.repo.status_code == 0 and st.cluster.repo.last_full_at
        assert st.ok
        m = _metrics(inst.registers, jukinet_on_cluster)
    assert m[("jukinet_cluster_healthy", ())] == 1 and m[("jukinet_cluster_members", ())] == 3
    assert m[("jukinet_cluster_member_up", (("member", s.leader), ("role", "leader")))] == 1
    assert m[("jukinet_cluster_member_lag_seconds", (("member", s.sync_standby),))] == 0
    assert m[("jukinet_wal_archive_failing", ())] == 0 and m[("jukinet_pgbackrest_ok", ())] == 1


def test_q3_standby_loss_writes_continue_and_nothing_acknowledged_is_lost(cluster, jukinet_on_cluster):
    _healthy(cluster)
    before = cluster.status()
    sync, spare = before.sync_standby, next(m.name for m in before.members if m.role == "replica")
    url = _table(cluster, "q3_standby_loss")
    seen: list[str] = []
    with _Writer(url, "q3_standby_loss", 1) as w:
        time.sleep(1.0)
        t_kill = cluster.kill_node(sync)                         # the synchronous standby's host is lost
        view = cluster.wait(lambda: (v := _view(jukinet_on_cluster)) and not v.ok and any(
            p.member == sync for p in v.replication.problems) and v, 30, "view shows the lost standby")
        seen = [p.code for p in view.replication.problems]
        # Patroni makes the asynchronous standby synchronous; commits resume
        cluster.wait(lambda: (s := cluster.try_status()) and s.sync_standby == spare, 60, "spare made synchronous")
        n_at = len(w.acked)
        cluster.wait(lambda: len(w.acked) >= n_at + 20, 30, "commits after the standby loss")
        during = [x for x in w.acked if x[1] > t_kill]
        cluster.start_node(sync)                                 # it rejoins
        cluster.wait(cluster.healthy, 120, "lost standby rejoined")
        cluster.wait(lambda: _view(jukinet_on_cluster).ok, 30, "view healthy again")
        time.sleep(0.5)
    acked = {i for i, _, _ in w.acked}
    worst = max(lat for _, _, lat in w.acked)
    print(f"\nQ3 standby loss: killed {sync}, {spare} became synchronous; view: {seen}; "
          f"{len(during)} commits acknowledged while it was down, longest commit {worst:.2f} s, errors {w.errors}")
    assert not w.errors                                          # the primary never went away
    assert len(during) >= 20
    assert "CLUSTER_MEMBER_DOWN" in seen or "CLUSTER_MEMBER_MISSING" in seen
    for node in (before.leader, sync, spare):                    # every acknowledged commit on every node
        cluster.wait(lambda: acked <= _ids_on(cluster, node, "q3_standby_loss"), 30, f"{node} has every commit")


def test_q3_both_standbys_lost_commits_wait_until_one_is_back(cluster, jukinet_on_cluster):
    _healthy(cluster)
    s = cluster.status()
    standbys = [m.name for m in s.members if m.name != s.leader]
    url = _table(cluster, "q3_no_standby")
    done = threading.Event()
    errors: list[str] = []

    def commit():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("INSERT INTO q3_no_standby (id, note) VALUES (1, 'waits') ON CONFLICT DO NOTHING")
            done.set()
        except psycopg.Error as e:
            errors.append(type(e).__name__)
    try:
        for n in standbys:
            cluster.kill_node(n)
        t = threading.Thread(target=commit, daemon=True)
        t.start()
        assert not done.wait(8.0), "a commit was acknowledged with no standby (on one disk)"
        view = cluster.wait(lambda: (v := _view(jukinet_on_cluster)) and any(
            p.code == "CLUSTER_NO_SYNC_STANDBY" for p in v.replication.problems) and v, 45,
            "view: no synchronous standby")
        assert not view.ok and not done.is_set()
        t_back = time.monotonic()
        cluster.start_node(standbys[0])                          # one standby back: the commit returns
        assert done.wait(90), errors
        print(f"\nQ3 both standbys lost: the commit waited, returned {time.monotonic() - t_back:.1f} s after "
              f"{standbys[0]} was restarted; view: {[p.code for p in view.replication.problems]}")
        assert _ids_on(cluster, standbys[0], "q3_no_standby") == {1}
    finally:
        _healthy(cluster)


def test_q3_archive_command_failing_shows_on_ops(cluster, jukinet_on_cluster):
    _healthy(cluster)
    archive_dir = cluster.dir / "pgbackrest" / "repo" / "archive"
    mode = archive_dir.stat().st_mode & 0o7777
    url = _table(cluster, "q3_archive")
    with bootstrap(jukinet_on_cluster) as inst, psycopg.connect(url, autocommit=True) as conn:
        before = S.archive(inst.registers).failed_count
        try:
            archive_dir.chmod(0)                                 # the repository refuses the segment
            conn.execute("INSERT INTO q3_archive (id) VALUES (1) ON CONFLICT DO NOTHING")
            conn.execute("SELECT pg_switch_wal()")
            a = cluster.wait(lambda: (x := S.archive(inst.registers)).failing and x.failed_count > before and x,
                             60, "archive failure seen")
            st = S.collect(inst.registers, jukinet_on_cluster, counts=False)
            assert not st.ok and st.archive.failing and st.archive.last_failed_wal
            assert _metrics(inst.registers, jukinet_on_cluster)[("jukinet_wal_archive_failing", ())] == 1
        finally:
            archive_dir.chmod(mode)
        cluster.wait(lambda: not S.archive(inst.registers).failing, 90, "archiving again")
        assert S.collect(inst.registers, jukinet_on_cluster, counts=False).archive.ok
    print(f"\nQ3 archive failing: {a.last_failed_wal} failed {a.failed_count - before} times, then archived")


def test_q3_pitr_restores_exactly_what_was_committed_before_the_time(cluster, cluster_database, tmp_path):
    with pytest.raises(JukinetError) as e:               # pytest's tmp_path is root's alone (0700)
        LocalCluster(tmp_path / "x", base_port=free_base(), nodes=1).restore_from(cluster, datetime.now(timezone.utc))
    assert e.value.code == "CLUSTER_DIR_UNREACHABLE"
    _healthy(cluster)
    url = _table(cluster, "q3_pitr")
    stamp = time.time_ns()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO q3_pitr (id, note) VALUES (%s, 'A')", (stamp,))
        a_at = conn.execute("SELECT at FROM q3_pitr WHERE id = %s", (stamp,)).fetchone()[0]
        time.sleep(1.0)
        target = datetime.now(timezone.utc)
        time.sleep(1.0)
        conn.execute("INSERT INTO q3_pitr (id, note) VALUES (%s, 'B')", (stamp + 1,))
    assert a_at < target

    fresh = Path(tempfile.mkdtemp(prefix="jukinet-pitr-", dir="/tmp"))      # given to postgres by the restore
    first_stop = min(int(b["timestamp"]["stop"]) for b in cluster.backup_info()["backup"])
    for when, code in ((datetime.now(timezone.utc) + timedelta(minutes=5), "PITR_TIME_IN_FUTURE"),
                       (datetime.fromtimestamp(first_stop - 3600, timezone.utc), "PITR_BEFORE_FIRST_BACKUP"),
                       (target.replace(tzinfo=None), "PITR_TIME_NO_ZONE")):
        with pytest.raises(JukinetError) as e:
            LocalCluster(fresh, base_port=free_base(), nodes=1).restore_from(cluster, when)
        assert e.value.code == code
        assert not (fresh / "cluster.json").exists()             # refused: nothing created

    restored = LocalCluster(fresh, base_port=free_base(), nodes=1)
    try:
        record = restored.restore_from(cluster, target, backup=False)
        with psycopg.connect(restored.node_url("pg1", "jukinet_ha"), autocommit=True) as conn:
            notes = {r[0] for r in conn.execute("SELECT note FROM q3_pitr WHERE id IN (%s, %s)", (stamp, stamp + 1))}
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        print(f"\nQ3 PITR: {record}")
        assert notes == {"A"}                                    # A committed before T, B after
        assert record["timeline"] > max(m.timeline for m in cluster.status().members)
    finally:
        restored.down()
        shutil.rmtree(fresh, ignore_errors=True)
    assert not any(restored.running().values())
