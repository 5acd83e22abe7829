"""Q3 (ADR 0044): the DCS losing members — a cluster of its own with **three etcd members** and two
PostgreSQL nodes (a leader and its synchronous standby; the smallest cluster that commits).

* One etcd member of three killed: the majority keeps serving; the leader keeps its key, commits go
  on, the operations view stays healthy (etcd's own health is etcd's monitoring's business).
* A second member killed: no majority; the leader cannot renew its key and **demotes itself** (no
  split brain): no node accepts writes, the view shows no leader (or no answer). Both members back:
  a leader again, commits again, nothing acknowledged lost.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime, timezone

import psycopg
import pytest

from jukinet.cluster import replication as R
from jukinet.cluster.local import LocalCluster

from ha.conftest import START_TIMEOUT, free_base

pytestmark = [pytest.mark.ha, pytest.mark.xdist_group("ha")]


@pytest.fixture(scope="module")
def etcd3(cluster):          # after the session cluster: it holds its port range, ours is the next free one
    directory = tempfile.mkdtemp(prefix="jukinet-etcd3-", dir="/tmp")
    base = free_base()
    c = LocalCluster(directory, base_port=base, nodes=2, etcd_members=3)
    try:
        c.up(START_TIMEOUT, backup=False)
        yield c
    finally:
        c.down()
        shutil.rmtree(directory, ignore_errors=True)
    assert not any(c.running().values())


def _view(c: LocalCluster) -> R.Replication:
    return R.read(c.patroni_urls(), expected_members=2, now=datetime.now(timezone.utc))


def _commit(c: LocalCluster, table: str, i: int) -> None:
    with psycopg.connect(c.admin_url(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY)")
        conn.execute(f"INSERT INTO {table} (id) VALUES (%s)", (i,))


def _writable(c: LocalCluster) -> bool:
    try:
        with psycopg.connect(c.admin_url().replace("connect_timeout=3", "connect_timeout=2")) as conn:
            return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0]
    except psycopg.Error:
        return False


def test_q3_etcd_losing_one_member_of_three_changes_nothing_losing_two_demotes_the_leader(etcd3):
    c = etcd3
    c.wait(c.healthy, 60, "healthy")
    leader = c.status().leader
    _commit(c, "q3_etcd", 1)

    c.kill_etcd_member(2)                                   # one of three
    time.sleep(3 * 2 + 1)                                   # a few Patroni loops (loop_wait 2 s)
    _commit(c, "q3_etcd", 2)
    s = c.status()
    assert s.leader == leader and c.healthy(s)
    assert _view(c).healthy

    t = time.monotonic()
    c.kill_etcd_member(1)                                   # two of three: no majority
    c.wait(lambda: not _writable(c), 60, "leader demoted")
    demoted = time.monotonic() - t
    # Patroni's /cluster may still show its last picture of the DCS; the members' own /patroni tell
    # the truth: the leader is no longer primary, and nobody reaches etcd
    view = c.wait(lambda: (v := _view(c)) and not v.healthy and v, 45, "view shows the lost DCS")
    codes = {p.code for p in view.problems}
    assert codes & {"CLUSTER_NO_LEADER", "CLUSTER_UNREACHABLE", "CLUSTER_LEADER_DOWN", "CLUSTER_LEADER_DEMOTED",
                    "CLUSTER_DCS_UNREACHABLE"}, codes

    t = time.monotonic()
    c.start_etcd_member(1)
    c.start_etcd_member(2)
    c.wait(lambda: _writable(c), 120, "a leader again")
    c.wait(c.healthy, 120, "healthy again")
    back = time.monotonic() - t
    _commit(c, "q3_etcd", 3)
    for node in c.names():
        with psycopg.connect(c.node_url(node), autocommit=True) as conn:
            c.wait(lambda: {r[0] for r in conn.execute("SELECT id FROM q3_etcd")} == {1, 2, 3}, 30, f"{node} has all")
    print(f"\nQ3 etcd: 1 of 3 lost → leader {leader} kept; 2 of 3 lost → demoted after {demoted:.1f} s "
          f"(view: {sorted(codes)}); members back → writable and healthy after {back:.1f} s")
