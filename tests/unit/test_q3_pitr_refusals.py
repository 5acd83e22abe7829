"""Q3 (ADR 0049): the point-in-time recovery of an installation refuses, before any cluster is made,
what it cannot do — an installation on SQLite, a half-given pair of directories. No cluster needed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from jukinet_testing import make_installation
from typer.testing import CliRunner

from jukinet.backup.pitr import cluster_url, restore_installation
from jukinet.cli import app
from jukinet.cluster.local import LocalCluster
from jukinet.errors import JukinetError

runner = CliRunner()


def test_q3_pitr_of_a_sqlite_installation_is_refused_and_nothing_is_created(tmp_path):
    config = make_installation(tmp_path / "data", "sqlite")
    with pytest.raises(JukinetError) as e:
        restore_installation(LocalCluster(tmp_path / "src"), LocalCluster(tmp_path / "new"),
                             datetime.now(timezone.utc), data_dir=config.data_dir, restored_dir=tmp_path / "restored")
    assert e.value.code == "PITR_NOT_POSTGRES"
    assert not (tmp_path / "new").exists() and not (tmp_path / "restored").exists()


def test_q3_pitr_cli_needs_both_directories(tmp_path):
    r = runner.invoke(app, ["cluster", "restore", "--from", str(tmp_path / "src"), "--dir", str(tmp_path / "new"),
                            "--to-time", "2026-12-07T21:30:00+09:00", "--data-dir", str(tmp_path / "data")])
    assert r.exit_code != 0 and "PITR_DATA_DIR_PAIR" in r.output
    assert not (tmp_path / "new").exists()


def test_q3_restored_register_url_lists_the_new_nodes_and_asks_for_the_primary():
    url = cluster_url("postgresql+psycopg://jukinet_juki:pw@/jukinet?host=127.0.0.1:25410&host=127.0.0.1:25411"
                      "&connect_timeout=3", ["127.0.0.1:25510", "127.0.0.1:25511"])
    assert url == ("postgresql+psycopg://jukinet_juki:pw@/jukinet?connect_timeout=3&host=127.0.0.1%3A25510"
                   "&host=127.0.0.1%3A25511&target_session_attrs=read-write")
