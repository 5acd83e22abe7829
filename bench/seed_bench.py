"""Seeding speed: ``jukinet.seed.populate`` against a bare ``executemany`` / ``COPY`` of the same rows.

    .venv/bin/python bench/seed_bench.py 100000 [--seed 0] [--batch-size 5000] [--slow]
    .venv/bin/python bench/seed_bench.py 100000 --db-url postgresql://postgres@127.0.0.1:5432/postgres

1. ``populate`` seeds N residents (plus removed persons, history and the 附票) into a fresh data
   directory (SQLite) or fresh database (``--db-url``: an administrator URL; the bench creates its
   databases and roles and drops them): generation + the engine fast path (issue 16), end to end.
   ``--slow`` also times the slow path (SQLAlchemy Core ``insert``, indexes in place) into another one.
2. The same rows are generated again, into memory (timed separately: "generate"), converted to
   what the engine stores, and inserted — SQLite: the ``sqlite3`` module's ``executemany``, with the
   same pragmas as seeding (WAL, synchronous=OFF, 256 MiB cache); PostgreSQL: psycopg's
   ``COPY … FROM STDIN`` (``write_row``) — into tables created from the same SQLAlchemy metadata
   (same columns and indexes), in the same batches (one transaction per batch and register).
   The bare load neither seals the 個人番号 nor records progress.

Prints the figures and one markdown table row (for bench/RESULTS.md). Peak RSS is the process's
(``resource.getrusage``): after step 1, and after step 2, which holds all rows in memory — so keep
N moderate (100,000 needs about 1 GiB for step 2).
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jukinet.config import Config
from jukinet.seed import generate, populate
from jukinet.store import provision
from jukinet.store.registers import Registers
from jukinet.store.repository import fuhyo_to_row, juki_to_row
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, fuhyo_metadata, juki_counters,
                                  juki_current, juki_history, juki_metadata)


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


def _tuples(rows, columns, convert=True):
    if not convert:
        return [tuple(r.get(c) for c in columns) for r in rows]
    return [tuple(_sqlite_value(r.get(c)) for c in columns) for r in rows]


class PgDatabases:
    """Throwaway PostgreSQL databases (and the register roles ``init`` makes in them), dropped at the end."""

    def __init__(self, admin_url: str):
        self.admin = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def create(self, label: str) -> str:
        name = f"jukinet_seedbench_{os.getpid()}_{label}"
        with self.engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        return self.admin.set(database=name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.engine.connect() as c:
            for name in self.names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                for register in ("juki", "fuhyo", "admin"):
                    c.execute(text(f'DROP ROLE IF EXISTS "{name}_{register}"'))
        self.engine.dispose()


def seed_with_populate(n: int, seed: int, batch_size: int, workdir: Path, db_url=None, fast=True):
    data = workdir / ("populate" if fast else "populate-slow")
    db = provision.database_config(data, db_url)
    provision.migrate_all(db)
    registers = Registers(Config(data_dir=data, database=db))
    try:
        t = time.perf_counter()
        report = populate(registers, n, seed, batch_size=batch_size, fast=fast)
        return time.perf_counter() - t, report
    finally:
        registers.dispose()


def pregenerate(n: int, seed: int, batch_size: int, raw_values: bool = True):
    """All batches as ready-to-insert tuples per table (SQLite's stored values, or Python's for COPY)."""
    jc = [c.name for c in juki_current.columns]
    jh = [c.name for c in juki_history.columns if c.name != "history_id"]
    fc = [c.name for c in fuhyo_current.columns]
    fh = [c.name for c in fuhyo_history.columns if c.name != "history_id"]
    batches = []
    max_seq = {"juki": 0, "fuhyo": 0}
    for b in generate(n, seed, batch_size=batch_size):
        batches.append((
            _tuples([juki_to_row(r) for r in b.juki], jc, raw_values), _tuples(b.juki_history, jh, raw_values),
            _tuples([fuhyo_to_row(r) for r in b.fuhyo], fc, raw_values), _tuples(b.fuhyo_history, fh, raw_values),
        ))
        for key, recs in (("juki", b.juki), ("fuhyo", b.fuhyo)):
            if recs:
                max_seq[key] = max(max_seq[key], max(r.update_seq for r in recs))
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


def insert_raw_pg(batches, columns, max_seq, url: str) -> float:
    """The same rows with psycopg's COPY into tables made from the same metadata (indexes included)."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as c:
        c.execute(text("CREATE SCHEMA juki; CREATE SCHEMA fuhyo"))
    for schema, metadata, tables in (("juki", juki_metadata, [juki_current, juki_history, juki_counters]),
                                     ("fuhyo", fuhyo_metadata, [fuhyo_current, fuhyo_history, fuhyo_counters])):
        with engine.begin() as c:
            c.execute(text(f"SET LOCAL search_path = {schema}"))
            metadata.create_all(c, tables=tables)
    engine.dispose()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    jconn = psycopg.connect(conninfo, options="-c search_path=juki")
    fconn = psycopg.connect(conninfo, options="-c search_path=fuhyo")
    jc, jh, fc, fh = columns
    sql = [f'COPY {t} ({", ".join(chr(34) + c + chr(34) for c in cols)}) FROM STDIN'
           for t, cols in (("juki_current", jc), ("juki_history", jh), ("fuhyo_current", fc), ("fuhyo_history", fh))]
    t = time.perf_counter()
    for jrows, jhist, frows, fhist in batches:
        for conn, pairs in ((jconn, ((sql[0], jrows), (sql[1], jhist))), (fconn, ((sql[2], frows), (sql[3], fhist)))):
            if any(rows for _, rows in pairs):
                with conn.cursor() as cur:
                    for q, rows in pairs:
                        if rows:
                            with cur.copy(q) as cp:
                                for r in rows:
                                    cp.write_row(r)
                conn.commit()
    for conn, key in ((jconn, "juki"), (fconn, "fuhyo")):
        conn.execute("INSERT INTO counters (name, value) VALUES ('update_seq', %s)", (max_seq[key],))
        conn.commit()
    elapsed = time.perf_counter() - t
    jconn.close()
    fconn.close()
    return elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("residents", type=int, nargs="?", default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--db-url", default=None, help="PostgreSQL administrator URL (default: SQLite files)")
    ap.add_argument("--slow", action="store_true", help="also time the slow path (populate(fast=False))")
    args = ap.parse_args(argv)
    pg = PgDatabases(args.db_url) if args.db_url else None
    engine_name = "PostgreSQL" if pg else "SQLite"
    list(generate(10, args.seed))   # warm-up: the 町域 tables load once, outside the timings
    try:
        with tempfile.TemporaryDirectory(prefix="jukinet-seed-bench-") as tmp:
            work = Path(tmp)
            populate_s, report = seed_with_populate(args.residents, args.seed, args.batch_size, work,
                                                    pg.create("fast") if pg else None)
            rss_populate = peak_rss_mib()
            rows = report.juki_rows + report.fuhyo_rows
            print(f"{engine_name} populate (fast path): {populate_s:.2f} s for {args.residents:,} residents, {rows:,} "
                  f"rows (D1 {report.juki_rows:,}, D2 {report.fuhyo_rows:,}); peak RSS {rss_populate:.0f} MiB",
                  file=sys.stderr)
            slow_s = None
            if args.slow:
                slow_s, _ = seed_with_populate(args.residents, args.seed, args.batch_size, work,
                                               pg.create("slow") if pg else None, fast=False)
                print(f"{engine_name} populate (slow path): {slow_s:.2f} s", file=sys.stderr)
            t = time.perf_counter()
            batches, columns, max_seq = pregenerate(args.residents, args.seed, args.batch_size, raw_values=not pg)
            generate_s = time.perf_counter() - t
            raw_rows = sum(len(x) for b in batches for x in b)
            assert raw_rows == rows, (raw_rows, rows)
            raw_s = insert_raw_pg(batches, columns, max_seq, pg.create("bare")) if pg else \
                insert_raw(batches, columns, max_seq, work)
            rss_all = peak_rss_mib()
            bare = "COPY" if pg else "sqlite3 executemany"
            print(f"generate (in memory): {generate_s:.2f} s; bare {bare}: {raw_s:.2f} s; "
                  f"peak RSS {rss_all:.0f} MiB", file=sys.stderr)
            ratio = populate_s / raw_s if raw_s else float("inf")
            print(f"| engine | residents | rows | populate s | slow path s | generate s | bare {bare} s | "
                  "populate / bare | populate / (generate + bare) | peak RSS populate MiB |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            slow = f"{slow_s:.1f}" if slow_s is not None else "—"
            print(f"| {engine_name} | {args.residents:,} | {rows:,} | {populate_s:.1f} | {slow} | {generate_s:.1f} | "
                  f"{raw_s:.1f} | {ratio:.2f} | {populate_s / (generate_s + raw_s):.2f} | {rss_populate:.0f} |")
    finally:
        if pg:
            pg.drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
