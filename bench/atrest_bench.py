"""A7: the cost of 個人番号 at rest (ADR 0025) at Mie scale — migration, exact lookups, key rotation.

Usage:
    python bench/atrest_bench.py --data-dir COPY [--samples K] [--skip-rotation]
    python bench/atrest_bench.py [--db-url URL] --residents N [--samples K] [--skip-rotation]

``COPY`` is a *copy* of a seeded SQLite installation (``cp -a``; fix the absolute paths in its
``jukinet.toml``). It is modified: if its juki database is still at ``juki_0006`` (plaintext
個人番号) it is migrated in place first, and timed. Without ``--data-dir``, N residents are seeded into
a fresh installation — SQLite files, or with ``--db-url`` a throwaway PostgreSQL database (dropped at
the end; bench/engines.py) — already at the head, so step 1 is skipped; steps 2 and 3 run with their
baselines on the same engine (the bare driver: ``sqlite3`` / ``psycopg``).

1. **Migration** ``juki_0007`` (only when the copy was at ``juki_0006``): seal every 個人番号 of
   ``juki_current`` and ``juki_history``, drop the plaintext column and index. Baseline: the bare
   engine's own table rewrite, ``ALTER TABLE … DROP COLUMN kojin_bango`` on both tables of a second
   copy of the plaintext file (``--plaintext-copy``), i.e. the same rewrite without the crypto.
2. **Exact lookups by 個人番号**, K random persons, warm: ours is
   :meth:`JukiRepository.by_kojin_bango` (HMAC blind index → index probe → AES-GCM open → record).
   Same run, same database: a plaintext-indexed table ``bench_plain_kojin_bango`` (住民票コード,
   個人番号) built by the bench from the opened numbers, queried (a) through the same SQLAlchemy
   layer (join to ``juki_current``, record built the same way) and (b) by bare ``sqlite3``. p50/p95
   in µs and ratios. The bench table is dropped afterwards.
3. **Rotation** of the data key (``jukinet keys rotate-kojin-bango``): every row re-encrypted.
   Baseline: a bare ``sqlite3`` ``UPDATE`` rewriting the same column of every row (no crypto).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

import tempfile

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.security import atrest_rotation  # noqa: E402
from jukinet.store import migrate, provision  # noqa: E402
from jukinet.store.repository import JukiRepository, row_to_juki  # noqa: E402
from jukinet.store.tables import juki_current  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def us(x):
    return f"{x * 1e6:,.0f}"


def juki_path(config: Config) -> Path:
    return Path(config.database.juki_url.removeprefix("sqlite:///"))


def revision(path: Path) -> str:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def bare_drop_column(path: Path) -> float:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    t = time.perf_counter()
    c.execute("BEGIN")
    for table in ("juki_current", "juki_history"):
        c.execute(f"DROP INDEX ix_{table}_kojin_bango")
        c.execute(f"ALTER TABLE {table} DROP COLUMN kojin_bango")
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    took = time.perf_counter() - t
    c.close()
    return took


def build_plain_table(registers) -> dict[str, str]:
    """The bench's plaintext-indexed copy of the numbers (code → 個人番号), in the same database."""
    cipher = registers.kojin_bango_cipher
    t = juki_current
    numbers: dict[str, str] = {}
    with registers.juki_engine.connect() as conn:
        for r in conn.execute(select(t.c.juminhyo_code, t.c.kojin_bango_ct, t.c.kojin_bango_key)
                              .where(t.c.kojin_bango_ct.is_not(None))):
            numbers[r.juminhyo_code] = cipher.open_value(r._mapping)
    c = Bare.of(registers, "juki")
    c.execute("DROP TABLE IF EXISTS bench_plain_kojin_bango")
    c.execute("CREATE TABLE bench_plain_kojin_bango (juminhyo_code VARCHAR(11) PRIMARY KEY, kojin_bango VARCHAR(12))")
    c.execute("BEGIN")
    c.executemany("INSERT INTO bench_plain_kojin_bango VALUES (?, ?)", list(numbers.items()))
    c.execute("COMMIT")
    c.execute("CREATE INDEX ix_bench_plain_kojin_bango ON bench_plain_kojin_bango (kojin_bango)")
    c.analyze()
    c.close()
    return numbers


def drop_plain_table(registers) -> None:
    c = Bare.of(registers, "juki")
    c.execute("DROP TABLE IF EXISTS bench_plain_kojin_bango")
    c.close()


def lookups(registers, numbers: dict[str, str], k: int) -> dict:
    rng = random.Random(7)
    sample = rng.sample(sorted(numbers.items()), min(k, len(numbers)))
    from sqlalchemy import column, table

    plain = table("bench_plain_kojin_bango", column("juminhyo_code"), column("kojin_bango"))
    times = {"ours": [], "plain_sa": [], "bare": []}
    bare = Bare.of(registers, "juki")
    bare_sql = ("SELECT c.*, p.kojin_bango FROM bench_plain_kojin_bango p JOIN juki_current c "
                "ON c.juminhyo_code = p.juminhyo_code WHERE p.kojin_bango = ?")
    plain_q = (select(juki_current, plain.c.kojin_bango)
               .join(plain, plain.c.juminhyo_code == juki_current.c.juminhyo_code))
    with registers.juki_engine.connect() as conn:
        repo = JukiRepository(conn)
        for rnd in range(2):                     # the first round warms the caches; the second is measured
            order = list(sample)
            rng.shuffle(order)
            for code, number in order:
                t0 = time.perf_counter()
                [rec] = repo.by_kojin_bango(number)
                t1 = time.perf_counter()
                rows = conn.execute(plain_q.where(plain.c.kojin_bango == number)).all()
                recs = [row_to_juki({**{k: v for k, v in r._mapping.items() if not k.startswith("kojin_bango_")},
                                     "kojin_bango": r.kojin_bango}) for r in rows]
                t2 = time.perf_counter()
                brows = bare.execute(bare_sql, (number,)).fetchall()
                t3 = time.perf_counter()
                assert rec.juminhyo_code == code and recs[0].juminhyo_code == code and len(brows) == 1
                if rnd:
                    times["ours"].append(t1 - t0)
                    times["plain_sa"].append(t2 - t1)
                    times["bare"].append(t3 - t2)
        conn.rollback()
    bare.close()
    # the crypto alone, per lookup: one HMAC and one AES-GCM open
    cipher = registers.kojin_bango_cipher
    sealed = [(c, *cipher.seal(c, n)) for c, n in sample[:1000]]
    t = time.perf_counter()
    for c, ct, kid, _bi in sealed:
        cipher.blind_index(numbers[c])
        cipher.open(c, ct, kid)
    crypto = (time.perf_counter() - t) / len(sealed)
    return {name: (pct(v, 50), pct(v, 95)) for name, v in times.items()} | {"crypto": crypto}


def bare_rotation_baseline(registers) -> float:
    c = Bare.of(registers, "juki")
    empty = "''::bytea" if c.postgres else "x''"
    t = time.perf_counter()
    for table in ("juki_current", "juki_history"):
        c.execute("BEGIN")
        c.execute(f"UPDATE {table} SET kojin_bango_ct = kojin_bango_ct || {empty} WHERE kojin_bango_ct IS NOT NULL")
        c.execute("COMMIT")
    took = time.perf_counter() - t
    c.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=20_000, help="without --data-dir: seed N into a fresh installation")
    ap.add_argument("--plaintext-copy", type=Path, help="a second copy of the plaintext juki.sqlite3 (baseline 1)")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--skip-rotation", action="store_true")
    add_argument(ap)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jukinet-atrest-bench-") as tmp, Server(args.db_url) as server:
        data_dir = args.data_dir or server.installation(Path(tmp) / "data", args.residents)
        print(f"{server.version() if not args.data_dir else 'installation ' + str(data_dir)}", flush=True)
        measure(args, Config.load(data_dir))


def measure(args, config: Config) -> None:
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if config.database.juki_url.startswith("sqlite") and revision(juki_path(config)) == "juki_0006":
        t = time.perf_counter()
        provision.migrate_all(config.database, config.data_dir)
        took = time.perf_counter() - t
        print(f"\n## migration juki_0007: {took:.1f} s", flush=True)
        if args.plaintext_copy:
            base = bare_drop_column(args.plaintext_copy)
            print(f"bare DROP COLUMN rewrite of both tables: {base:.1f} s; ratio {took / base:.2f}x", flush=True)
    inst = bootstrap(config)
    registers = inst.registers
    with registers.juki_engine.connect() as c:
        assert migrate.current_revision(registers.juki_engine) == migrate.head_revision("juki", registers.juki_engine)
        n_cur = c.exec_driver_sql("SELECT count(*) FROM juki_current WHERE kojin_bango_ct IS NOT NULL").scalar()
        n_hist = c.exec_driver_sql("SELECT count(*) FROM juki_history WHERE kojin_bango_ct IS NOT NULL").scalar()
    print(f"sealed rows: current {n_cur:,}, history {n_hist:,}", flush=True)
    t = time.perf_counter()
    numbers = build_plain_table(registers)
    print(f"bench plaintext table built: {len(numbers):,} rows in {time.perf_counter() - t:.1f} s", flush=True)
    try:
        r = lookups(registers, numbers, args.samples)
    finally:
        drop_plain_table(registers)
    print(f"\n## exact lookup by 個人番号, {args.samples} persons, warm (µs)\n")
    print("| path | p50 | p95 | ratio p50 |\n|---|---:|---:|---:|")
    for name, label in (("ours", "blind index + AES-GCM open, through the repository"),
                        ("plain_sa", "plaintext-indexed table, same SQLAlchemy layer"),
                        ("bare", "plaintext-indexed table, bare driver")):
        p50, p95 = r[name]
        print(f"| {label} | {us(p50)} | {us(p95)} | {r['ours'][0] / p50:.2f}x |")
    print(f"\nHMAC + AES-GCM open alone: {r['crypto'] * 1e6:.1f} µs per lookup", flush=True)
    if not args.skip_rotation:
        t = time.perf_counter()
        rep = atrest_rotation.rotate(registers)
        took = time.perf_counter() - t
        base = bare_rotation_baseline(registers)
        print(f"\n## rotation: {rep.rows:,} rows re-encrypted in {took:.1f} s ({rep.passes} pass(es)); "
              f"bare UPDATE of the same column {base:.1f} s; ratio {took / base:.2f}x", flush=True)
    inst.close()
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
