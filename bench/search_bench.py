"""事務5 search at Mie scale: jukinet's search service vs a full scan doing the same match, same run.

Usage: python bench/search_bench.py [--data-dir DIR] [--residents N] [--samples K] [--scan-samples S]

With --data-dir pointing at a seeded installation (SQLite), it measures there; otherwise it seeds
N residents (default 1,740,000 current; the seeder adds removed persons, history and the 附票) into a
temporary directory with ``jukinet.seed.populate``.

For K persons drawn at random from D1 it times, server-side, :func:`jukinet.search.service.search`
(validation, the indexed query, the operation-log entry and the commit) for three query kinds:

* kana prefix + birth date — the first 3 characters of the 清音化 key and the exact 生年月日;
* kanji exact — the 漢字氏名 as stored;
* address prefix — the address without its last 4 characters (often more than the cap: the
  search then stops after cap+1 rows and lists nothing, as in production).

The baseline is the bare ``sqlite3`` module running the same predicates with ``NOT INDEXED`` (a full
table scan), on S of the same keys; and, for scale, the same SQL with its index and no log entry
("bare indexed SQL": the difference is the operation-log append and the durable commit). Prints
p50/p95 in milliseconds and the ratio as a markdown table.
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
    ap.add_argument("--residents", type=int, default=1_740_000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--scan-samples", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from jukinet.config import Config
    from jukinet.search.service import SearchCommand, search
    from jukinet.keyring import KeyRing
    from jukinet.security.oplog import Actor, OperationLog
    from jukinet.store import provision
    from jukinet.store.registers import Registers

    if a.data_dir is None:
        from jukinet.seed import populate

        data_dir = Path(tempfile.mkdtemp(prefix="jukinet-search-bench-"))
        db = provision.database_config(data_dir, None)
        provision.migrate_all(db)
        config = Config(data_dir=data_dir, database=db)
        config.save()
        registers = Registers(config)
        t0 = time.perf_counter()
        last = [0.0]

        def progress(done, total):
            if time.perf_counter() - last[0] > 10:
                last[0] = time.perf_counter()
                print(f"  seeding {done:,}/{total:,} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

        report = populate(registers, a.residents, a.seed, progress=progress)
        print(f"seeded in {time.perf_counter() - t0:.0f} s: {report}", file=sys.stderr)
    else:
        config = Config.load(a.data_dir)
        registers = Registers(config)

    path = registers.juki_engine.url.database
    raw = sqlite3.connect(path)
    raw.execute("ANALYZE")
    total, removed = raw.execute("SELECT count(*), sum(deleted) FROM juki_current").fetchone()
    rng = random.Random(a.seed)
    n = total
    picks = sorted(rng.sample(range(n), min(a.samples, n)))
    rows = []
    for off in picks:
        rows.append(raw.execute("SELECT name, name_seion, birth_date, address FROM juki_current "
                                "WHERE deleted = 0 LIMIT 1 OFFSET ?", (off % max(1, n - removed),)).fetchone())
    oplog = OperationLog(KeyRing(config.data_dir), config.data_dir)
    actor = Actor("BENCH", "T0001")
    top = "\U0010ffff"

    kinds = {
        "kana prefix + birth date": (
            lambda r: dict(name=r[1][:3], name_match="prefix", birth_from=r[2], birth_to=r[2]),
            "SELECT juminhyo_code FROM juki_current NOT INDEXED WHERE name_seion >= ? AND name_seion < ? "
            "AND birth_date = ? AND deleted = 0 LIMIT 201",
            lambda r: (r[1][:3], r[1][:3] + top, r[2])),
        "kanji exact": (
            lambda r: dict(name=r[0]),
            "SELECT juminhyo_code FROM juki_current NOT INDEXED WHERE name = ? AND deleted = 0 LIMIT 201",
            lambda r: (r[0],)),
        "address prefix": (
            lambda r: dict(address=r[3][:-4]),
            "SELECT juminhyo_code FROM juki_current NOT INDEXED WHERE address >= ? AND address < ? "
            "AND deleted = 0 LIMIT 201",
            lambda r: (r[3][:-4], r[3][:-4] + top)),
    }
    from datetime import date

    print(f"\nD1 rows: {total:,} ({total - removed:,} current, {removed:,} removed); samples: {len(rows)} "
          f"(full scan: {a.scan_samples})\n")
    print("| query | jukinet search p50 ms | p95 ms | bare indexed SQL p50 ms | full scan p50 ms | p95 ms "
          "| full scan / jukinet (p50) | hits (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, (mk, scan_sql, scan_args) in kinds.items():
        times, counts = [], []
        for r in rows:
            kw = mk(r)
            for k in ("birth_from", "birth_to"):
                if k in kw:
                    kw[k] = date.fromisoformat(kw[k])
            cmd = SearchCommand(purpose_code="audit", registers=("juki",), **kw)
            t = time.perf_counter()
            res = search(cmd, registers, oplog, actor, cap=200, page_size=20)
            times.append((time.perf_counter() - t) * 1000)
            counts.append(res.total)
        bare = []
        for r in rows:
            t = time.perf_counter()
            raw.execute(scan_sql.replace(" NOT INDEXED", ""), scan_args(r)).fetchall()
            bare.append((time.perf_counter() - t) * 1000)
        scans = []
        for r in rows[: a.scan_samples]:
            t = time.perf_counter()
            raw.execute(scan_sql, scan_args(r)).fetchall()
            scans.append((time.perf_counter() - t) * 1000)
        print(f"| {label} | {pct(times, 50):.2f} | {pct(times, 95):.2f} | {pct(bare, 50):.2f} "
              f"| {pct(scans, 50):.0f} | {pct(scans, 95):.0f} "
              f"| {pct(scans, 50) / pct(times, 50):.0f}× | {statistics.median(counts):.0f} |")
    raw.close()
    registers.dispose()


if __name__ == "__main__":
    main()
