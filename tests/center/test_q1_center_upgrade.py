"""Q1 (issue 14; ADR 0053): the upgrade path from the **previous release** — a data directory made by the
release before the center, built here from git history (the commit in ``previous_release.toml``), its
own ``jukinet init`` / ``jukinet seed`` / intake run with its own code — taken over with today's
documented procedure (README "Adopting an existing installation", docs/operations.md: ``jukinet migrate
--check`` says behind, ``jukinet migrate``, ``jukinet center init``, ``jukinet center adopt``) loses
nothing: the rows of every table, every person's records (current and history), the 個人番号 opened by
the kept keys (and still stored encrypted only), every operation-log chain verifying with its old head
kept (only the attach entry after it). SQLite and PostgreSQL (the previous release's ``init --db-url``).

The previous release runs in a subprocess with the same interpreter and ``PYTHONPATH`` at its extracted
``src``. A missing commit (a shallow clone) fails with the command to fix it, it is not skipped."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from jukinet_testing import BACKENDS
from test_q1_center import TSU, free_port, jcode, kbango, notification
from test_q1_center_adopt import init_args
from typer.testing import CliRunner

from jukinet.center.registry import Center
from jukinet.cli import app as cli
from jukinet.intake.service import today_jst

HERE = Path(__file__).parent
REPO = HERE.parents[1]
PREVIOUS = tomllib.loads((HERE / "previous_release.toml").read_text(encoding="utf-8"))
DUMP = HERE / "upgrade_dump.py"
RESIDENTS = 300


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def previous_src(tmp_path_factory) -> Path:
    """The previous release's ``src/``, extracted from the history of the repository the test runs in."""
    commit = PREVIOUS["commit"]
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        pytest.fail(f"the previous release's commit {commit} is not in {REPO} (a shallow clone?): "
                    "fetch the full history (`git fetch --unshallow`, or actions/checkout with fetch-depth: 0)")
    archive = _git("archive", "--format=tar", commit, "src")
    assert archive.returncode == 0, archive.stderr.decode()
    root = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    assert (root / "src" / "jukinet" / "cli" / "__init__.py").exists()
    assert not (root / "src" / "jukinet" / "center").exists()      # really the release before the center
    return root / "src"


def run_release(src: Path, *args: str, cwd: Path) -> str:
    """``args`` with the interpreter of this venv and ``src`` as the package (previous or today's)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{args[:3]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def jukinet_of(src: Path, *args: str, cwd: Path) -> str:
    return run_release(src, "-c", "from jukinet.cli import app; app()", *args, cwd=cwd)


def dump(src: Path, data_dir: Path, out: Path, notifications: Path | None = None) -> dict:
    run_release(src, str(DUMP), str(data_dir), str(out), *([str(notifications)] if notifications else []),
                cwd=out.parent)
    return json.loads(out.read_text(encoding="utf-8"))


def the_notifications() -> list[dict]:
    """What 津市's CS sent while the previous release ran: two 転入 (with 個人番号), one 転居 of the first."""
    first = notification("prev-1", TSU, jcode(9_800_000_001), "旧版\u3000一郎", "キュウハン\u3000イチロウ")
    first["change_date"] = (today_jst() - timedelta(days=3)).isoformat()
    second = notification("prev-2", TSU, jcode(9_800_000_002), "旧版\u3000花子", "キュウハン\u3000ハナコ")
    moved = json.loads(json.dumps(first))
    moved.update(notification_id="prev-3", reason="転居", change_date=(today_jst() - timedelta(days=1)).isoformat())
    moved["record"]["address"] = moved["record"]["address"].replace("1番地", "2番地")
    return [first, second, moved]


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_migrate_and_adopt_a_directory_of_the_previous_release_loses_nothing(backend, previous_src, tmp_path,
                                                                                request):
    today_src = REPO / "src"
    d = tmp_path / "jukinet-data"
    # ---- the previous release, with its own code ---------------------------------------------------
    jukinet_of(previous_src, *init_args(d, backend, request), cwd=tmp_path)
    jukinet_of(previous_src, "seed", "--data-dir", str(d), "--residents", str(RESIDENTS), "--seed", "7", cwd=tmp_path)
    sent = tmp_path / "notifications.json"
    sent.write_text(json.dumps(the_notifications(), ensure_ascii=False), encoding="utf-8")
    before = dump(previous_src, d, tmp_path / "before.json", sent)
    keys_before = {p.relative_to(d): p.read_bytes() for p in sorted((d / "keys").rglob("*")) if p.is_file()}
    assert len(before["persons"]["juki"]) >= RESIDENTS and before["persons"]["fuhyo"]
    assert all(v["ok"] for v in before["verified"].values()) and all(before["chains"].values())
    mine = before["persons"]["juki"][jcode(9_800_000_001)]
    assert mine["current"]["reason"] == "転居" and [h["reason"] for h in mine["history"]] == ["国内転入"]
    assert mine["current"]["kojin_bango"] == kbango(9_800_000_001)
    assert before["kojin_bango_in_clear"] == 0 and before["kojin_bango_encrypted"] >= RESIDENTS

    # ---- the documented upgrade, with today's code -------------------------------------------------
    run = CliRunner().invoke
    r = run(cli, ["migrate", "--data-dir", str(d), "--check"])
    assert r.exit_code == 1, r.output                      # behind: the previous release's schema
    r = run(cli, ["migrate", "--data-dir", str(d)])
    assert r.exit_code == 0, r.output
    assert run(cli, ["migrate", "--data-dir", str(d), "--check"]).exit_code == 0
    center_dir = tmp_path / "center"
    r = run(cli, ["center", "init", "--center-dir", str(center_dir), "--port", str(free_port())])
    assert r.exit_code == 0, r.output
    r = run(cli, ["center", "adopt", "--center-dir", str(center_dir), "--data-dir", str(d), "--prefecture", "24"])
    assert r.exit_code == 0, r.output
    [tenant] = Center.load(center_dir).tenants
    assert (tenant.prefecture, Center.load(center_dir).tenant_dir(tenant)) == (24, d.absolute())
    r = run(cli, ["audit", "verify", "--data-dir", str(d)])           # chains and the old checkpoints
    assert r.exit_code == 0, r.output

    # ---- nothing lost (read by today's code in its own process) ------------------------------------
    after = dump(today_src, d, tmp_path / "after.json")
    assert {p.relative_to(d): p.read_bytes() for p in sorted((d / "keys").rglob("*")) if p.is_file()} == keys_before
    for table, n in before["rows"].items():
        if table == "admin.oplog":
            assert after["rows"][table] > n, table
        else:
            assert after["rows"].get(table) == n, (table, n, after["rows"].get(table))
    for register in ("juki", "fuhyo"):
        assert set(after["persons"][register]) == set(before["persons"][register])
        for code, old in before["persons"][register].items():
            new = after["persons"][register][code]
            # every field the previous release had is equal (today's release may have more)
            if old["current"] is None:
                assert new["current"] is None, code
            else:
                assert {k: new["current"].get(k) for k in old["current"]} == old["current"], code
            assert [{k: h.get(k) for k in o} for h, o in zip(new["history"], old["history"])] == old["history"], code
            assert len(new["history"]) == len(old["history"]), code
    assert after["kojin_bango_in_clear"] == 0 and after["kojin_bango_encrypted"] == before["kojin_bango_encrypted"]
    for chain, entries in before["chains"].items():
        assert after["verified"][chain]["ok"], after["verified"][chain]["problems"]
        assert after["chains"][chain][:len(entries)] == entries, chain      # the old head and all before it kept
        added = [action for _seq, _hash, action in after["chains"][chain][len(entries):]]
        assert added == (["center_attach"] if chain == "admin" else []), (chain, added)
