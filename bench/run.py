"""Run the benchmarks one after another (``make bench``); each prints its markdown table.

    .venv/bin/python bench/run.py [--quick] [--data-dir DIR] [--db-url URL]

``--data-dir`` names a seeded installation to measure lookups, search, provision and consistency
on (Mie scale: ``jukinet init --data-dir DIR && jukinet seed --data-dir DIR --residents 1800000``,
about 5 minutes on 2 cores). Without it, each benchmark seeds what it needs; ``--quick`` uses
small sizes to check that every benchmark still runs. Figures for the record go to bench/RESULTS.md.
The growth table (0.2M / 1.8M / 14M residents) is ``bench/growth_bench.py``, one size per run: only its
toy size runs here (``--quick``).

``--db-url URL`` (``make bench DB=postgresql://postgres@127.0.0.1:5432/postgres``) runs every benchmark
on PostgreSQL: URL names a server where each benchmark creates its own throwaway databases and roles
(unique names) and drops them at the end (bench/engines.py); its baselines run on the same engine.
Without it, everything runs on SQLite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes: checks that every benchmark runs")
    ap.add_argument("--data-dir", type=Path, help="a seeded installation to measure on")
    ap.add_argument("--db-url", help="PostgreSQL server URL: run every benchmark on PostgreSQL (default SQLite)")
    a = ap.parse_args()
    dd = ["--data-dir", str(a.data_dir)] if a.data_dir else []
    db = ["--db-url", a.db_url] if a.db_url else []
    q = a.quick
    runs = [
        ["seed_bench.py", "5000" if q else "100000"],
        ["seed_growth.py", "--sizes", "1000,3000" if q else "20000,100000",   # quick: not into bench/ (kept results)
         *(["--json", str(Path(tempfile.gettempdir()) / f"jukinet-seed-growth-{os.getpid()}.json"),
             "--chart", str(Path(tempfile.gettempdir()) / f"jukinet-seed-growth-{os.getpid()}.png")] if q else [])],
        ["lookup_bench.py", *(dd or ["--residents", "5000" if q else "100000"]), "--samples", "300" if q else "3000"],
        ["search_bench.py", *(dd or ["--residents", "5000" if q else "200000"])],
        ["intake_bench.py", *(["--residents", "2000", "--single", "200", "--batched", "2000"] if q else [])],
        ["retention_bench.py", *(["--residents", "2000", "--expired", "20000"] if q else [])],
        ["disclosure_bench.py", "--records", "20000" if q else "5000000", *dd],
        ["ops_bench.py", *(dd or ["--residents", "5000" if q else "200000"]), "--samples", "50" if q else "200"],
        ["audit_bench.py", *(["--residents", "2000", "--entries", "5000", "--operators", "20"] if q else [])],
        ["backup_bench.py", "--residents", "2000" if q else "20000",
         "--work", str(Path(tempfile.gettempdir()) / f"jukinet-backup-bench-{os.getpid()}")],
        ["crl_bench.py", "1000" if q else "10000"],
        *([["soak_bench.py", "--minutes", "1", "--residents", "2000", "--sample-every", "15"]] if q else []),
    ]
    if q or dd:     # at full size these want a Mie-scale installation (several minutes each)
        runs += [
            ["provision_bench.py", *(dd or ["--residents", "5000"]), *(["--samples", "200", "--batch-rows", "2000",
                                                                        "--records", "50000"] if q else [])],
            ["reconcile_bench.py", *(dd or ["--residents", "5000"]), *(["--inject", "5"] if q else [])],
        ]
    if q:           # the growth table's one size, at a toy size, into temporary files (not the kept JSON)
        tmp = Path(tempfile.gettempdir())
        runs += [["growth_bench.py", "--residents", "3000", "--json", str(tmp / f"jukinet-growth-{os.getpid()}.json"),
                  "--chart", str(tmp / f"jukinet-growth-{os.getpid()}.png"), "--lookup-samples", "200",
                  "--search-samples", "20", "--scan-samples", "1", "--single", "100", "--batched", "1000"]]
    if q:           # atrest_bench modifies the installation it is given (rotation): only on its own seed here
        runs += [["atrest_bench.py", "--residents", "5000", "--samples", "500"]]
    failed = 0
    for script, *args in runs:
        print(f"\n## {script} {' '.join(args)}{' (PostgreSQL)' if db else ''}\n", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / script), *args, *db])
        if rc:
            print(f"(exit {rc})", flush=True)
            failed += 1
    if not (q or dd):
        print("\nprovision_bench.py and reconcile_bench.py take a Mie-scale --data-dir and several minutes each, "
              "atrest_bench.py a copy of one, soak_bench.py 30 minutes; run them with --data-dir or on their own "
              "(see bench/RESULTS.md).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
