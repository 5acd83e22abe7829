"""Lookup by 住民票コード and by 個人番号: jukinet's repository vs the bare engine, same run.

Usage: python bench/lookup_bench.py [--db-url URL] [--data-dir DIR] [--residents N] [--samples K] [--json OUT]

With --data-dir pointing at a seeded installation (either engine), it measures there; otherwise it
seeds N residents into a fresh installation — SQLite files in a temporary directory, or, with
``--db-url``, a throwaway PostgreSQL database (dropped at the end; bench/engines.py). For each key
kind it draws K random persons that have a 個人番号 and times, interleaved, (a)
``JukiRepository.get`` / ``by_kojin_bango`` through SQLAlchemy, a unit of work and the row→record
mapping (for 個人番号: the HMAC blind index, the index probe and the AES-GCM open, ADR 0025), and (b)
the bare driver (``sqlite3`` / ``psycopg``) running the same primary-key / blind-index SELECT on the
same database (the blind index precomputed). Prints p50/p99 in microseconds and the ratio; ``--json``
also writes them to a file (``bench/growth_bench.py`` collects them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument, pct  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=5_000)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    add_argument(ap)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="jukinet-lookup-bench-") as tmp, Server(a.db_url) as server:
        data_dir = a.data_dir or server.installation(Path(tmp) / "data", a.residents)
        with bootstrap(data_dir) as inst:
            registers = inst.registers
            bare = Bare.of(registers, "juki")
            n = bare.execute("SELECT count(*) FROM juki_current").fetchone()[0]
            codes = [r[0] for r in bare.execute(
                "SELECT juminhyo_code FROM juki_current WHERE kojin_bango_bi IS NOT NULL ORDER BY random() LIMIT ?",
                (a.samples,))]
            keys = []   # (住民票コード, 個人番号, its blind index) — removed before 2015 have no number
            with registers.juki_uow(write=False) as uow:
                for code in codes:
                    number = uow.repo.get(code).kojin_bango
                    keys.append((code, number, bare.execute(
                        "SELECT kojin_bango_bi FROM juki_current WHERE juminhyo_code = ?", (code,)).fetchone()[0]))

            results = []
            for label, col, idx, ours in (
                ("住民票コード", "juminhyo_code", 0, lambda repo, k: repo.get(k[0])),
                ("個人番号", "kojin_bango_bi", 2, lambda repo, k: repo.by_kojin_bango(k[1])),
            ):
                t_ours, t_bare = [], []
                with registers.juki_uow(write=False) as uow:
                    for k in keys:
                        t0 = time.perf_counter()
                        got = ours(uow.repo, k)
                        t1 = time.perf_counter()
                        row = bare.execute(f"SELECT * FROM juki_current WHERE {col} = ?", (k[idx],)).fetchall()
                        t2 = time.perf_counter()
                        assert got and row
                        t_ours.append((t1 - t0) * 1e6)
                        t_bare.append((t2 - t1) * 1e6)
                results.append((label, t_ours, t_bare))
            bare.close()
            version = server.version() if not a.data_dir else registers.juki_engine.dialect.name

    print(f"\nlookups on {n:,} current rows ({version}, {len(keys):,} random keys each, interleaved)\n")
    print("| lookup | jukinet p50 µs | jukinet p99 µs | bare driver p50 µs | bare p99 µs | ratio p50 | ratio p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, o, b in results:
        print(f"| {label} | {pct(o, 50):.0f} | {pct(o, 99):.0f} | {pct(b, 50):.0f} | {pct(b, 99):.0f} "
              f"| {pct(o, 50) / pct(b, 50):.1f}× | {pct(o, 99) / pct(b, 99):.1f}× |")
    if a.json:
        a.json.write_text(json.dumps({"rows": n, "samples": len(keys), "lookups": {
            label: {"p50_us": pct(o, 50), "p99_us": pct(o, 99), "bare_p50_us": pct(b, 50), "bare_p99_us": pct(b, 99)}
            for label, o, b in results}}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
