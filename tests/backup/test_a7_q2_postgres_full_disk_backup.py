"""A backup during a full PostgreSQL disk (A7, Q2; issue 17, ADR 0051).

Made real: the installation's database lives in a tablespace on a small tmpfs
(:mod:`jukinet_small_disk`) and ``[backup].dir`` is on the same file system — one disk for the
database and its backups, as on a single-disk server — filled to the last page by a filler file.

* ``jukinet backup`` ends with the code ``BACKUP_WRITE_FAILED`` and its Japanese message (exit 2),
  leaves no file behind (neither the backup nor its ``.part``), changes nothing in the registers, and
  the status file the metrics read says ``last_failure_code = BACKUP_WRITE_FAILED``.
* A backup whose target has room is still taken while the database's disk is full (pg_dump only
  reads): the operator can secure the data before freeing space.
* Space returns (the filler removed): the next ``jukinet backup`` succeeds, without a restart.
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from jukinet.backup.keys import PUBLIC_NAME, generate_key_pair
from jukinet.cli import app
from jukinet.store.registers import Registers
from jukinet.seed import populate
from jukinet_testing import table_digests
import jukinet_small_disk as disk
from jukinet_small_disk import admin_url_of, write_refusal

backend, config, small_disk, drill_server = disk.backend, disk.config, disk.small_disk, disk.drill_server    # fixtures: PostgreSQL on the small disk

pytestmark = pytest.mark.xdist_group("postgres_full_disk")
runner = CliRunner()


def register_digests(config) -> dict:
    """Every row of both registers (the admin database may gain the failed run's log line)."""
    return table_digests(config, ("juki", "fuhyo"))


@pytest.fixture
def installation(config, small_disk, tmp_path):
    """Residents on file, the prefecture's public key in place, backups on the small disk."""
    keys = tmp_path / "prefecture-keys"
    generate_key_pair(keys, passphrase="県の管理責任者のパスフレーズ")
    (config.data_dir / "keys").mkdir(exist_ok=True)
    shutil.copy(keys / PUBLIC_NAME, config.data_dir / "keys" / "backup-public.pem")
    (small_disk.root / "backups").mkdir()
    config.backup.dir = str(small_disk.root / "backups")
    config.save()
    registers = Registers(config)
    populate(registers, 40, seed=3)
    registers.dispose()
    return config


def test_a7_q2_postgres_full_disk_backup_fails_with_a_code_leaves_nothing_and_resumes(small_disk, installation,
                                                                                     tmp_path):
    backups = small_disk.root / "backups"
    before = register_digests(installation)
    small_disk.fill()
    state, message = write_refusal(admin_url_of(installation.database.juki_url))
    assert state == "53100" and "could not extend file" in message, (state, message)

    r = runner.invoke(app, ["backup", "--data-dir", str(installation.data_dir)])
    assert r.exit_code == 2, r.output
    assert "BACKUP_WRITE_FAILED" in r.output and "容量" in r.output
    assert list(backups.iterdir()) == []                        # no backup, no .part
    assert register_digests(installation) == before
    status = json.loads((installation.data_dir / "ops" / "backup-status.json").read_text())
    assert status["last_failure_code"] == "BACKUP_WRITE_FAILED" and status["last_success_at"] is None

    # a target with room: the backup is taken while the database's disk is still full
    elsewhere = tmp_path / "elsewhere.jkb"
    r = runner.invoke(app, ["backup", "--data-dir", str(installation.data_dir), "--out", str(elsewhere)])
    assert r.exit_code == 0, r.output
    assert elsewhere.stat().st_size > 0

    small_disk.free()                                           # space returns
    r = runner.invoke(app, ["backup", "--data-dir", str(installation.data_dir)])
    assert r.exit_code == 0, r.output
    made = list(backups.iterdir())
    assert len(made) == 1 and made[0].suffix == ".jkb", made
    assert register_digests(installation) == before
