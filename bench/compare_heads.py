"""Run one benchmark on an earlier commit and on this tree, alternately, in the same session.

    .venv/bin/python bench/compare_heads.py --base 0acf18c --rounds 2 intake_bench.py --single 1000

A refactoring that must not change behaviour or speed (issue 13) is checked this way: the earlier
commit is checked out once into a temporary git worktree and each side runs *its own* copy of the
benchmark against *its own* package (``PYTHONPATH``), base then head, ``--rounds`` times, so both
see the same machine load. Each run prints its usual markdown table; read the rows side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _worktree(ref: str) -> Path:
    sha = subprocess.check_output(["git", "rev-parse", "--short", ref], cwd=ROOT, text=True).strip()
    path = Path(tempfile.gettempdir()) / f"jukinet-base-{sha}"
    if not (path / "bench").is_dir():
        subprocess.run(["git", "worktree", "add", "--force", "--detach", str(path), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def _run(tree: Path, bench: str, args: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.call([sys.executable, str(tree / "bench" / bench), *args], cwd=tree, env=env)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the earlier commit (e.g. the head before a refactoring)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("bench", help="a benchmark file of bench/, e.g. intake_bench.py")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    base = _worktree(a.base)
    failed = 0
    for r in range(1, a.rounds + 1):
        for label, tree in ((f"base {a.base}", base), ("head", ROOT)):
            print(f"\n### {a.bench} — {label} (round {r})\n", flush=True)
            failed += _run(tree, a.bench, a.args) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
