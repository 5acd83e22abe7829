"""Q1 (issue 16, "Bad input"): a database that runs out of disk during the seed — made real, not mocked.

* SQLite: the data directory is on a tmpfs (``mount -t tmpfs``) filled to 2 MiB of room, so the register files and
  their WAL hit ENOSPC (``SQLITE_FULL``) part way through the load.
* PostgreSQL: the installation's databases live in a tablespace on a tmpfs (filled to 5 MiB of room)
  of the full-disk drill's own server (:mod:`jukinet_small_disk`, ADR 0051/0056): SQLSTATE 53100 part way through.

Checked: ``jukinet seed`` ends with exit code 2, the code ``SEED_STORAGE_UNAVAILABLE`` and a Japanese
message saying how to resume — no traceback, no row of data in the output; the batches committed so far
stay, nothing is marked complete (``serve`` refuses the installation with ``SEED_IN_PROGRESS``); once
the space is given back (the filler removed), the same command resumes and gives row for row the population of a seed
that never stopped (no duplicate, nothing missing, indexes built).

Needs root (mount); skipped where that is missing, except in CI (``JUKINET_HA_REQUIRED``): there it fails.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import jukinet_small_disk as disk
from jukinet_testing import make_installation
from jukinet.cli import app as cli
from jukinet.errors import JukinetError
from jukinet.seed import populate
from jukinet.server import PrefectureServer
from jukinet.store.registers import Registers

from test_q1_seed_fast_path import _assert_same, _dump, _progress

drill_server, small_disk = disk.drill_server, disk.small_disk    # fixtures: the drill's own PostgreSQL

pytestmark = pytest.mark.xdist_group("postgres_full_disk")
N, SEED, BATCH = 4000, 7, 250
runner = CliRunner()


#: room left on the file system when the seed starts: a few batches fit, the whole population does not
#: (PostgreSQL needs more for its first batch: each table and index file of a fresh database grows by
#: whole pages, and its free-space and visibility maps come with it)
ROOM = 2 << 20
ROOM_POSTGRES = 5 << 20


def leave_room(root: Path, room: int = ROOM) -> None:
    """Write ``root/filler`` until only ``room`` bytes of the file system are free (a disk nearly full)."""
    st = os.statvfs(root)
    with open(root / "filler", "ab") as f:
        f.write(b"\xa5" * max(0, st.f_bavail * st.f_frsize - room))


class Tmpfs:
    """A tmpfs of ``size_mb`` MiB mounted at ``path``; removing the filler gives the space back."""

    def __init__(self, path: Path, size_mb: int):
        path.mkdir(parents=True)
        self.path = path
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)], check=True)

    def free(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def sqlite_small_disk(tmp_path):
    disk.require_drill()
    fs = Tmpfs(tmp_path / "disk", 64)
    yield fs
    fs.close()


def _seed_cli(data_dir: Path):
    return runner.invoke(cli, ["seed", "--data-dir", str(data_dir), "--residents", str(N), "--seed", str(SEED),
                               "--batch-size", str(BATCH), "--workers", "0"])


def _assert_stopped_resumable(config, result) -> None:
    """The seed stopped with its code; what it committed is kept and not taken for a finished seed."""
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "SEED_STORAGE_UNAVAILABLE" in out and "容量" in out and "続きから投入" in out, out
    assert "Traceback" not in out and "INSERT" not in out and "COPY" not in out
    regs = Registers(config)
    try:
        juki, fuhyo = _progress(regs)
    finally:
        regs.dispose()
    assert juki is not None and juki.batches_done >= 1, "the disk filled before the first batch: make it bigger"
    assert not juki.complete and not (fuhyo is not None and fuhyo.complete)
    with pytest.raises(JukinetError) as e:             # nothing half-written looks complete
        PrefectureServer(config)
    assert e.value.code == "SEED_IN_PROGRESS"


def _assert_resumes_to_the_whole_population(config, backend: str, tmp_path, request, grow) -> None:
    grow()
    r = _seed_cli(config.data_dir)                     # the same command, once there is room
    assert r.exit_code == 0, r.output
    resumed = Registers(config)
    request.addfinalizer(resumed.dispose)
    whole = Registers(make_installation(tmp_path / "whole", backend, request))
    request.addfinalizer(whole.dispose)
    populate(whole, N, seed=SEED, batch_size=BATCH, workers=0)
    _assert_same(_dump(resumed), _dump(whole))


def test_q1_seed_into_a_full_sqlite_disk_stops_with_a_code_and_resumes(sqlite_small_disk, tmp_path, request):
    config = make_installation(sqlite_small_disk.path / "data", "sqlite", request)
    leave_room(sqlite_small_disk.path)
    r = _seed_cli(config.data_dir)
    _assert_stopped_resumable(config, r)
    _assert_resumes_to_the_whole_population(config, "sqlite", tmp_path, request, sqlite_small_disk.free)


def test_q1_seed_into_a_full_postgresql_disk_stops_with_a_code_and_resumes(small_disk, tmp_path, request):
    config = make_installation(tmp_path / "data", "postgres", request, tablespace=small_disk.tablespace,
                               admin_url=small_disk.admin_url)
    leave_room(small_disk.root, ROOM_POSTGRES)
    r = _seed_cli(config.data_dir)
    _assert_stopped_resumable(config, r)
    _assert_resumes_to_the_whole_population(config, "postgres", tmp_path, request, small_disk.free)
