"""事務5 search at Mie scale: jukinet's search service vs a full scan doing the same match, same run.

Usage: python bench/search_bench.py [--db-url URL] [--data-dir DIR] [--residents N] [--samples K]
                                    [--scan-samples S] [--json OUT]

With --data-dir pointing at a seeded installation (either engine), it measures there; otherwise it
seeds N residents (default 1,740,000 current; the seeder adds removed persons, history and the 附票)
into a fresh installation with ``jukinet.seed.populate`` — SQLite files, or with ``--db-url`` a
throwaway PostgreSQL database (dropped at the end; bench/engines.py).

For K persons drawn at random from D1 it times, server-side and interleaved with the baselines
below (the order turned each sample), :func:`jukinet.search.service.search`
(validation, the indexed query, the operation-log entry and the commit) for three query kinds:

* kana prefix + birth date — the first 3 characters of the 清音化 key and the exact 生年月日;
* kanji exact — the 漢字氏名 as stored;
* address prefix — the address without its last 4 characters (often more than the cap: the
  search then stops after cap+1 rows and lists nothing, as in production).

The baseline is the bare driver running the same predicates as a full table scan (SQLite ``NOT
INDEXED``; PostgreSQL with index and bitmap scans switched off for the statement), on S of the same
keys; and, for scale, the same SQL with its index and no log entry ("bare indexed SQL": the
difference is the operation-log append and the durable commit). The floor of a search that logs
before it answers is the third baseline, "bare SQL + durable commit": in one write transaction of the
bare driver the same indexed SELECT and a one-row INSERT into a scratch table of the same database
(created for the run and dropped after it), committed as the server commits (PostgreSQL's default
``synchronous_commit = on``; SQLite WAL with ``synchronous = FULL``) — what the disk's flush costs,
without jukinet. Prefixes are written as each engine
answers them from its index (ADR 0011): a byte range on SQLite, ``LIKE 'p%'`` on PostgreSQL. Prints
p50/p95 in milliseconds and the ratio as a markdown table; ``--json`` also writes them to a file
(``bench/growth_bench.py`` collects them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument, pct  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.search.queries import escape_like  # noqa: E402
from jukinet.search.service import SearchCommand, search  # noqa: E402
from jukinet.security.oplog import Actor  # noqa: E402

TOP = "\U0010ffff"


def kinds(postgres: bool) -> dict:
    """Per query kind: the search command's keywords, the bare SQL ({noidx} marks where SQLite's
    ``NOT INDEXED`` goes) and its parameters, from one sampled row (name, name_seion, birth, address)."""
    if postgres:
        pre = "{col} LIKE ? ESCAPE '\\'"
        pfx = lambda p: (escape_like(p) + "%",)  # noqa: E731
    else:
        pre = "{col} >= ? AND {col} < ?"
        pfx = lambda p: (p, p + TOP)  # noqa: E731
    return {
        "kana prefix + birth date": (
            lambda r: dict(name=r[1][:3], name_match="prefix", birth_from=r[2], birth_to=r[2]),
            "SELECT juminhyo_code FROM juki_current{noidx} WHERE " + pre.format(col="name_seion")
            + " AND birth_date = ? AND NOT deleted LIMIT 201",
            lambda r: (*pfx(r[1][:3]), r[2])),
        "kanji exact": (
            lambda r: dict(name=r[0]),
            "SELECT juminhyo_code FROM juki_current{noidx} WHERE name = ? AND NOT deleted LIMIT 201",
            lambda r: (r[0],)),
        "address prefix": (
            lambda r: dict(address=r[3][:-4]),
            "SELECT juminhyo_code FROM juki_current{noidx} WHERE " + pre.format(col="address")
            + " AND NOT deleted LIMIT 201",
            lambda r: pfx(r[3][:-4])),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=1_740_000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--scan-samples", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    add_argument(ap)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="jukinet-search-bench-") as tmp, Server(a.db_url) as server:
        data_dir = a.data_dir or server.installation(Path(tmp) / "data", a.residents, a.seed)
        with bootstrap(data_dir) as inst:
            registers = inst.registers
            raw = Bare.of(registers, "juki")
            raw.analyze()
            total, removed = raw.execute("SELECT count(*), sum(CASE WHEN deleted THEN 1 ELSE 0 END) "
                                         "FROM juki_current").fetchone()
            rows = [(name, seion, b if isinstance(b, date) else date.fromisoformat(b), addr)
                    for name, seion, b, addr in raw.execute(
                        "SELECT name, name_seion, birth_date, address FROM juki_current WHERE NOT deleted "
                        "ORDER BY random() LIMIT ?", (a.samples,)).fetchall()]
            actor = Actor("BENCH", "T0001")
            if not raw.postgres:
                raw.execute("PRAGMA synchronous=FULL")
            raw.execute("CREATE TABLE bench_commit_probe (n INTEGER NOT NULL, at VARCHAR(40) NOT NULL)")
            out, figures = [], {}
            for label, (mk, scan_sql, scan_args) in kinds(raw.postgres).items():
                times, counts, bare, floor = [], [], [], []

                def ours(k, r):
                    cmd = SearchCommand(purpose_code="audit", registers=("juki",), **mk(r))
                    t = time.perf_counter()
                    res = search(cmd, registers, inst.oplog, actor, cap=200, page_size=20)
                    times.append((time.perf_counter() - t) * 1000)
                    counts.append(res.total)

                def indexed(k, r):
                    t = time.perf_counter()
                    raw.execute(scan_sql.format(noidx=""), scan_args(r)).fetchall()
                    bare.append((time.perf_counter() - t) * 1000)

                def durable(k, r):
                    t = time.perf_counter()
                    raw.begin_write()
                    raw.execute(scan_sql.format(noidx=""), scan_args(r)).fetchall()
                    raw.execute("INSERT INTO bench_commit_probe VALUES (?, ?)", (k, time.time()))
                    raw.commit()
                    floor.append((time.perf_counter() - t) * 1000)

                # interleaved, the order turned by one each sample: whichever runs first meets the
                # sample's pages cold, each of the three in a third of the samples
                order = (ours, indexed, durable)
                for k, r in enumerate(rows):
                    for step in order[k % 3:] + order[:k % 3]:
                        step(k, r)
                scans = []
                for r in rows[: a.scan_samples]:
                    t = time.perf_counter()
                    raw.full_scan(scan_sql, scan_args(r))
                    scans.append((time.perf_counter() - t) * 1000)
                figures[label] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "bare_p50_ms": pct(bare, 50),
                                  "bare_p95_ms": pct(bare, 95), "floor_p50_ms": pct(floor, 50),
                                  "floor_p95_ms": pct(floor, 95), "scan_p50_ms": pct(scans, 50),
                                  "scan_p95_ms": pct(scans, 95), "hits_median": statistics.median(counts)}
                out.append(f"| {label} | {pct(times, 50):.2f} | {pct(times, 95):.2f} | {pct(bare, 50):.2f} "
                           f"| {pct(floor, 50):.2f} | {pct(floor, 95):.2f} "
                           f"| {pct(scans, 50):.1f} | {pct(scans, 95):.1f} "
                           f"| {pct(scans, 50) / pct(times, 50):.1f}× | {statistics.median(counts):.0f} |")
            raw.execute("DROP TABLE bench_commit_probe")
            raw.close()
            version = server.version() if not a.data_dir else registers.juki_engine.dialect.name

    print(f"\n{version}; D1 rows: {total:,} ({total - removed:,} current, {removed:,} removed); samples: {len(rows)} "
          f"(full scan: {a.scan_samples})\n")
    print("| query | jukinet search p50 ms | p95 ms | bare indexed SQL p50 ms "
          "| bare SQL + durable commit p50 ms | p95 ms | full scan p50 ms | p95 ms "
          "| full scan / jukinet (p50) | hits (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(out))
    if a.json:
        a.json.write_text(json.dumps({"rows": total, "removed": removed, "samples": len(rows),
                                      "scan_samples": a.scan_samples, "queries": figures},
                                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
