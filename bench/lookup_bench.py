"""Lookup by 住民票コード and by 個人番号: jukinet's repository vs the bare engine, same run.

Usage: python bench/lookup_bench.py [--data-dir DIR] [--residents N] [--samples K]

With --data-dir pointing at a seeded installation, it measures there; otherwise it seeds N
residents into a temporary directory first. For each key kind it draws K random existing keys and
times, interleaved, (a) ``JukiRepository.get`` / ``by_kojin_bango`` through SQLAlchemy, a unit of
work and the row→record mapping, and (b) the bare ``sqlite3`` module running the same primary-key /
index SELECT on the same file. Prints p50/p99 in microseconds and the ratio as a markdown table.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=5_000)
    a = ap.parse_args()

    from jukinet.config import Config
    from jukinet.store import provision
    from jukinet.store.registers import Registers

    if a.data_dir is None:
        from jukinet.seed import populate
        tmp = Path(tempfile.mkdtemp(prefix="jukinet-bench-"))
        db = provision.database_config(tmp, None)
        provision.migrate_all(db)
        config = Config(data_dir=tmp, database=db)
        config.save()
        registers = Registers(config)
        print(f"seeding {a.residents:,} residents into {tmp} …", file=sys.stderr)
        populate(registers, a.residents, 0)
    else:
        config = Config.load(a.data_dir)
        registers = Registers(config)

    path = registers.juki_engine.url.database
    bare = sqlite3.connect(path)
    n = bare.execute("SELECT count(*) FROM juki_current").fetchone()[0]
    max_rowid = bare.execute("SELECT max(rowid) FROM juki_current").fetchone()[0]
    rng = random.Random(1)
    keys = []
    while len(keys) < a.samples:  # random persons that have a 個人番号 (removed before 2015 have none)
        row = bare.execute("SELECT juminhyo_code, kojin_bango FROM juki_current WHERE rowid = ?",
                           (rng.randint(1, max_rowid),)).fetchone()
        if row and row[1]:
            keys.append(row)

    results = []
    for label, col, ours in (
        ("住民票コード", "juminhyo_code", lambda repo, k: repo.get(k)),
        ("個人番号", "kojin_bango", lambda repo, k: repo.by_kojin_bango(k)),
    ):
        idx = 0 if col == "juminhyo_code" else 1
        t_ours, t_bare = [], []
        with registers.juki_uow(write=False) as uow:
            for k in keys:
                key = k[idx]
                t0 = time.perf_counter()
                got = ours(uow.repo, key)
                t1 = time.perf_counter()
                row = bare.execute(f"SELECT * FROM juki_current WHERE {col} = ?", (key,)).fetchall()
                t2 = time.perf_counter()
                assert got and row
                t_ours.append((t1 - t0) * 1e6)
                t_bare.append((t2 - t1) * 1e6)
        results.append((label, t_ours, t_bare))

    print(f"\nlookups on {n:,} current rows (SQLite, {a.samples:,} random keys each, interleaved)\n")
    print("| lookup | jukinet p50 µs | jukinet p99 µs | bare sqlite3 p50 µs | bare p99 µs | ratio p50 | ratio p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, o, b in results:
        print(f"| {label} | {pct(o, 50):.0f} | {pct(o, 99):.0f} | {pct(b, 50):.0f} | {pct(b, 99):.0f} "
              f"| {pct(o, 50) / pct(b, 50):.1f}× | {pct(o, 99) / pct(b, 99):.1f}× |")
    registers.dispose()


if __name__ == "__main__":
    main()
