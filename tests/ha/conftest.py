"""The local cluster of the ``ha`` tests: etcd + three PostgreSQL 15 under Patroni + pgBackRest (Q3).

One cluster per test session (``scope="session"``; every ``ha`` test is in the ``xdist`` group
``ha``, so with ``-n 2 --dist loadgroup`` one worker runs them all, one after the other). It runs
from a directory under /tmp given to the ``postgres`` user, on a free port range from 25400 up.
``.ci/run`` installs the Debian packages and sets ``JUKINET_HA_REQUIRED=1``: there a missing
package fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import psycopg
import pytest

from intake.helpers import ensure_pki, use_free_ports
from jukinet.cluster.local import LocalCluster, missing_programs, port_free
from jukinet.config import Config
from jukinet.security.checkpoints import genesis as genesis_checkpoints
from jukinet.store import provision

START_TIMEOUT = float(os.environ.get("JUKINET_HA_START_TIMEOUT", "300"))


def free_base() -> int:
    for base in range(25400, 26400, 30):
        if all(port_free(p) for p in LocalCluster("/nonexistent", base_port=base).ports()):
            return base
    raise RuntimeError("no free port range for the cluster")


@pytest.fixture(scope="session")
def cluster():
    missing = missing_programs()
    if missing:
        msg = "Debian packages missing: " + ", ".join(missing)
        if os.environ.get("JUKINET_HA_REQUIRED"):
            pytest.fail(msg)
        pytest.skip(msg)
    if os.geteuid() != 0:
        pytest.skip("the ha tests start PostgreSQL as the postgres user: run them as root (CI does)")
    directory = tempfile.mkdtemp(prefix="jukinet-ha-", dir="/tmp")
    c = LocalCluster(directory, base_port=free_base())
    try:
        c.up(START_TIMEOUT)
    except BaseException:
        logs = os.path.join(directory, "log")
        for f in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            with open(os.path.join(logs, f), errors="replace") as fh:
                print(f"--- {f}\n" + "".join(fh.readlines()[-30:]))
        shutil.rmtree(directory, ignore_errors=True)
        raise
    yield c
    c.down(remove=True)
    assert not any(c.running().values()), "cluster processes left running"


@pytest.fixture(scope="session")
def cluster_database(cluster) -> str:
    """A database for jukinet on the cluster; returns its administrator URL (all three nodes)."""
    with psycopg.connect(cluster.admin_url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE jukinet_ha")
    return cluster.admin_url("jukinet_ha")


@pytest.fixture(scope="session")
def jukinet_on_cluster(cluster, cluster_database, tmp_path_factory):
    """An installation whose three registers live on the cluster (multi-host URLs, as `init` makes
    them from `--db-url postgresql://…@h1:p1,h2:p2,h3:p3/db?target_session_attrs=read-write`), and
    whose operations view reads the cluster's Patroni REST API and pgBackRest repository."""
    data_dir = tmp_path_factory.mktemp("ha") / "data"
    db = provision.database_config(data_dir, cluster_database)
    provision.migrate_all(db, data_dir)
    config = Config(data_dir=data_dir, database=db)
    config.cluster.patroni_urls = cluster.patroni_urls()
    config.cluster.pgbackrest_config = str(cluster.pgbackrest_conf)
    config.save()
    genesis_checkpoints(data_dir)
    use_free_ports(config)
    ensure_pki(config)
    return config
