"""Seeding speed: ``jukinet.seed.populate`` against the bare engine loading the same rows.

    .venv/bin/python bench/seed_bench.py 100000 [--seed 0] [--batch-size 5000] [--slow] [--workers N] [--db-url URL]

1. ``populate`` seeds N residents (plus removed persons, history and the 附票) into a fresh
   installation (SQLite files, or with ``--db-url`` a throwaway PostgreSQL database with its register
   roles; bench/engines.py): generation + the engine's fast path (COPY on PostgreSQL, executemany on
   SQLite, secondary indexes built after the load; issue 16). ``--slow`` also times the slow path.
2. The same rows are generated again, into memory (timed separately: "generate"), and loaded by the
   bare driver into tables created from the same SQLAlchemy metadata (same columns and indexes), in
   the same batches (one transaction per batch and register):
   * SQLite: converted to what SQLite stores (ISO dates, timestamps as text, booleans as 0/1), the
     ``sqlite3`` module's ``executemany``, same pragmas as seeding (WAL, synchronous=OFF, 256 MiB cache);
   * PostgreSQL: ``COPY … FROM STDIN`` (psycopg's copy API) into two more throwaway databases — the
     engine's own fast path, so the ratio shows what a COPY-based seed could gain (issue 16).

Prints the figures and one markdown table row (for bench/RESULTS.md). Peak RSS is the process's
(``resource.getrusage``): after step 1, and after step 2, which holds all rows in memory — so keep
N moderate (100,000 needs about 1 GiB for step 2).
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.seed import generate, populate  # noqa: E402
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, fuhyo_metadata, juki_counters,
                                  juki_current, juki_history, juki_metadata)  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sqlite_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def _tuples(rows, columns, postgres=False):
    if postgres:    # psycopg adapts dates, timestamps, booleans and bytes itself
        return [tuple(r.get(c) for c in columns) for r in rows]
    return [tuple(_sqlite_value(r.get(c)) for c in columns) for r in rows]


def cpu_s() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its reaped children (the seed's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def seed_with_populate(server: Server, n: int, seed: int, batch_size: int, workdir: Path,
                       fast: bool = True, workers=None) -> tuple[float, object, tuple[float, float]]:
    """``populate`` end to end: the engine's fast path (COPY / executemany, indexes after the load;
    issue 16; ``workers`` generating processes, ADR 0057), or with ``fast=False`` the slow path
    (SQLAlchemy Core inserts, indexes in place). Also the CPU seconds it took (this process, workers)."""
    data = server.installation(workdir / ("populate" if fast else "populate-slow"))
    with bootstrap(data) as inst:
        c0, k0 = cpu_s()
        t = time.perf_counter()
        kw = {} if workers is None else {"workers": workers}
        report = populate(inst.registers, n, seed, batch_size=batch_size, fast=fast, **kw)
        elapsed = time.perf_counter() - t
        c1, k1 = cpu_s()
        return elapsed, report, (c1 - c0, k1 - k0)


def pregenerate(n: int, seed: int, batch_size: int, postgres: bool = False):
    """All batches as ready-to-insert tuples per table."""
    jc = [c.name for c in juki_current.columns]
    jh = [c.name for c in juki_history.columns if c.name != "history_id"]
    fc = [c.name for c in fuhyo_current.columns]
    fh = [c.name for c in fuhyo_history.columns if c.name != "history_id"]
    batches = []
    max_seq = {"juki": 0, "fuhyo": 0}
    for b in generate(n, seed, batch_size=batch_size):
        batches.append((
            _tuples(b.juki, jc, postgres), _tuples(b.juki_history, jh, postgres),
            _tuples(b.fuhyo, fc, postgres), _tuples(b.fuhyo_history, fh, postgres),
        ))
        for key, recs in (("juki", b.juki), ("fuhyo", b.fuhyo)):
            if recs:
                max_seq[key] = max(max_seq[key], max(r["update_seq"] for r in recs))
    return batches, (jc, jh, fc, fh), max_seq


def _create(path: Path, metadata, tables) -> sqlite3.Connection:
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine, tables=tables)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    return conn


def _insert_sql(table: str, columns) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def insert_raw(batches, columns, max_seq, workdir: Path) -> float:
    raw = workdir / "raw"
    raw.mkdir()
    jconn = _create(raw / "juki.sqlite3", juki_metadata, [juki_current, juki_history, juki_counters])
    fconn = _create(raw / "fuhyo.sqlite3", fuhyo_metadata, [fuhyo_current, fuhyo_history, fuhyo_counters])
    jc, jh, fc, fh = columns
    sql = (_insert_sql("juki_current", jc), _insert_sql("juki_history", jh),
           _insert_sql("fuhyo_current", fc), _insert_sql("fuhyo_history", fh))
    t = time.perf_counter()
    for jrows, jhist, frows, fhist in batches:
        for conn, (cur_sql, cur_rows), (hist_sql, hist_rows) in ((jconn, (sql[0], jrows), (sql[1], jhist)),
                                                                 (fconn, (sql[2], frows), (sql[3], fhist))):
            if cur_rows or hist_rows:
                conn.execute("BEGIN IMMEDIATE")
                if cur_rows:
                    conn.executemany(cur_sql, cur_rows)
                if hist_rows:
                    conn.executemany(hist_sql, hist_rows)
                conn.execute("COMMIT")
    for conn, key in ((jconn, "juki"), (fconn, "fuhyo")):
        conn.execute("INSERT INTO counters (name, value) VALUES ('update_seq', ?)", (max_seq[key],))
    elapsed = time.perf_counter() - t
    jconn.close()
    fconn.close()
    return elapsed


def copy_raw(server: Server, batches, columns, max_seq) -> float:
    """PostgreSQL: COPY of the same batches into tables built from the same metadata (two databases,
    as the registers are two)."""
    bares = []
    for key, metadata, tables in (("juki", juki_metadata, [juki_current, juki_history, juki_counters]),
                                  ("fuhyo", fuhyo_metadata, [fuhyo_current, fuhyo_history, fuhyo_counters])):
        url = server.database(f"raw_{key}")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        metadata.create_all(engine, tables=tables)
        engine.dispose()
        bares.append(Bare.of_url(url))
    jb, fb = bares
    jc, jh, fc, fh = columns
    t = time.perf_counter()
    for jrows, jhist, frows, fhist in batches:
        for b, (cur_t, cur_c, cur_rows), (hist_t, hist_c, hist_rows) in (
                (jb, ("juki_current", jc, jrows), ("juki_history", jh, jhist)),
                (fb, ("fuhyo_current", fc, frows), ("fuhyo_history", fh, fhist))):
            if cur_rows or hist_rows:
                b.begin_write()
                if cur_rows:
                    b.copy(cur_t, cur_c, cur_rows)
                if hist_rows:
                    b.copy(hist_t, hist_c, hist_rows)
                b.commit()
    for b, key in ((jb, "juki"), (fb, "fuhyo")):
        b.execute("INSERT INTO counters (name, value) VALUES ('update_seq', ?)", (max_seq[key],))
    elapsed = time.perf_counter() - t
    for b in bares:
        b.close()
    return elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("residents", type=int, nargs="?", default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--slow", action="store_true", help="also time the slow path (populate(fast=False))")
    ap.add_argument("--workers", type=int, default=None,
                    help="generating processes for populate (ADR 0057; default: populate's own choice)")
    add_argument(ap)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jukinet-seed-bench-") as tmp, Server(args.db_url) as server:
        work = Path(tmp)
        populate_s, report, (cpu_main, cpu_workers) = seed_with_populate(
            server, args.residents, args.seed, args.batch_size, work, workers=args.workers)
        rss_populate = peak_rss_mib()
        rss_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows = report.juki_rows + report.fuhyo_rows
        persons = report.residents + report.removed + round(args.residents * 0.15)   # + the 附票-only persons
        print(f"populate: {populate_s:.2f} s for {args.residents:,} residents ({persons:,} persons, "
              f"{persons / populate_s:,.0f} persons/s), {rows:,} rows "
              f"(D1 {report.juki_rows:,}, D2 {report.fuhyo_rows:,}); peak RSS {rss_populate:.0f} MiB "
              f"(largest worker {rss_workers:.0f} MiB); CPU {cpu_main:.1f} s seed process + {cpu_workers:.1f} s workers "
              f"= {(cpu_main + cpu_workers) / persons * 1e6:.0f} µs per person "
              f"({cpu_main / persons * 1e6:.0f} + {cpu_workers / persons * 1e6:.0f})", file=sys.stderr)
        t = time.perf_counter()
        batches, columns, max_seq = pregenerate(args.residents, args.seed, args.batch_size, server.postgres)
        generate_s = time.perf_counter() - t
        raw_rows = sum(len(x) for b in batches for x in b)
        assert raw_rows == rows, (raw_rows, rows)
        raw_s = (copy_raw(server, batches, columns, max_seq) if server.postgres
                 else insert_raw(batches, columns, max_seq, work))
        bare = "bare COPY" if server.postgres else "bare sqlite3 executemany"
        rss_all = peak_rss_mib()
        print(f"generate (in memory): {generate_s:.2f} s; {bare}: {raw_s:.2f} s; "
              f"peak RSS {rss_all:.0f} MiB", file=sys.stderr)
        ratio = populate_s / raw_s if raw_s else float("inf")
        print(f"\n{server.version()}\n")
        print(f"| residents | rows | populate s | generate s | {bare} s | populate / bare | "
              "peak RSS populate MiB | peak RSS with in-memory rows MiB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.residents:,} | {rows:,} | {populate_s:.1f} | {generate_s:.1f} | {raw_s:.1f} | {ratio:.2f} | "
              f"{rss_populate:.0f} | {rss_all:.0f} |")
        if args.slow:
            slow_s, _, _ = seed_with_populate(server, args.residents, args.seed, args.batch_size, work, fast=False)
            print(f"\nslow path (SQLAlchemy Core inserts, indexes in place): {slow_s:.1f} s — "
                  f"fast path {populate_s / slow_s:.2f}× of it; slow / bare {slow_s / raw_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
