"""Retention (A8): purging 1,000,000 expired history rows, and search latency while it runs; same run.

Usage: python bench/retention_bench.py [--residents N] [--expired M] [--batch B] [--lookups-per-s R]

1. A fresh installation (SQLite) with N residents from ``jukinet.seed.populate`` (default 100,000:
   the base population only shapes the indexes; the purge is about the M rows), plus M history rows
   (default 1,000,000) superseded in 1850–1875 — past 150 years — inserted directly. The database
   file is then copied, so that both contenders start from the same bytes.
2. **jukinet**: ``jukinet.retention.run(only=["juki_history"])`` — batches of B rows
   (default: the config's 5,000), each its own short write transaction. Meanwhile a reader thread
   does indexed look-ups (``JukiRepository.get`` by a random existing 住民票コード) at about R per
   second and records each latency, and a writer thread does a tiny write transaction 20 times a
   second (what intake needs: the write lock); both are also timed before the purge (idle).
3. **Baseline**: the bare ``sqlite3`` module running one ``DELETE FROM juki_history WHERE
   superseded_at < ?`` on the copy — the physical minimum, one transaction — with the same reader.

Prints a markdown table: purge time, rows per second, look-up p50/p99/max idle and during each purge,
and the ratios.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def install(residents: int) -> Path:
    from jukinet.config import Config
    from jukinet.seed import populate
    from jukinet.store import provision
    from jukinet.store.registers import Registers

    tmp = Path(tempfile.mkdtemp(prefix="jukinet-retention-bench-"))
    db = provision.database_config(tmp, None)
    provision.migrate_all(db)
    Config(data_dir=tmp, database=db).save()
    registers = Registers(Config.load(tmp))
    print(f"seeding {residents:,} residents into {tmp} …", file=sys.stderr)
    populate(registers, residents, 0)
    registers.dispose()
    return tmp


def add_expired(path: Path, n: int) -> None:
    """M history rows (copies of 1,000 current persons' rows), superseded between 1850 and 1875 —
    generated inside SQLite with a recursive CTE (setup only; not measured)."""
    con = sqlite3.connect(path)
    cols = [r[1] for r in con.execute("PRAGMA table_info(juki_history)")]
    ccols = [r[1] for r in con.execute("PRAGMA table_info(juki_current)")]
    base_seq = con.execute("SELECT value FROM counters WHERE name='update_seq'").fetchone()[0]
    con.execute("PRAGMA synchronous=OFF")
    t = time.perf_counter()
    day = "date('1850-01-01', '+' || ((n.i * 7919) % 9125) || ' days')"
    computed = {
        "history_id": "NULL",
        "superseded_at": f"{day} || ' 03:00:00.000000'",
        "superseded_by_seq": f"{base_seq + n + 1} + n.i",
        "superseded_by_reason": "'転居'",
        "update_seq": f"{base_seq + 1} + n.i",
        "notified_date": f"date({day}, '-30 days')",
    }
    select_list = ", ".join(computed.get(c, f"s.{c}") for c in cols)
    assert set(cols) - set(computed) <= set(ccols)
    con.execute(f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n - 1}),
             s AS (SELECT *, row_number() OVER () - 1 AS k FROM (SELECT * FROM juki_current LIMIT 1000))
        INSERT INTO juki_history ({", ".join(cols)})
        SELECT {select_list} FROM n JOIN s ON s.k = n.i % (SELECT count(*) FROM s)""")
    con.execute("UPDATE counters SET value = ? WHERE name = 'update_seq'", (base_seq + 2 * n + 1,))
    con.execute("INSERT INTO counters (name, value) VALUES ('bench_probe', 0)")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    print(f"  {n:,} expired history rows in {time.perf_counter() - t:.0f} s", file=sys.stderr)


class Reader(threading.Thread):
    """Indexed look-ups by 住民票コード at a steady rate, through jukinet's repository."""

    def __init__(self, registers, codes: list[str], rate: float):
        super().__init__(daemon=True)
        self.registers, self.codes, self.interval = registers, codes, 1.0 / rate
        self.lat: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(2)
        nxt = time.perf_counter()
        while not self.stop.is_set():
            code = rng.choice(self.codes)
            t0 = time.perf_counter()
            with self.registers.juki_uow(write=False) as uow:
                assert uow.repo.get(code) is not None
            self.lat.append((time.perf_counter() - t0) * 1000)
            nxt += self.interval
            d = nxt - time.perf_counter()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.perf_counter()


class Writer(Reader):
    """A tiny write transaction (what intake needs: the write lock) at a steady rate."""

    failed = 0

    def run(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        nxt = time.perf_counter()
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                with self.registers.juki_uow() as uow:
                    uow.conn.execute(text("UPDATE counters SET value = value + 1 WHERE name = 'bench_probe'"))
            except OperationalError:      # "database is locked" after the 30 s busy timeout: intake would fail
                self.failed += 1
            self.lat.append((time.perf_counter() - t0) * 1000)
            nxt += self.interval
            d = nxt - time.perf_counter()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.perf_counter()


def measure(registers, codes, rate, fn) -> tuple[float, list[float], "Writer"]:
    r = Reader(registers, codes, rate)
    w = Writer(registers, codes, 20.0)
    r.start()
    w.start()
    time.sleep(0.5)
    r.lat.clear()
    w.lat.clear()
    t0 = time.perf_counter()
    fn()
    secs = time.perf_counter() - t0
    for t in (r, w):
        t.stop.set()
        t.join()
    return secs, r.lat, w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=100_000)
    ap.add_argument("--expired", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lookups-per-s", type=float, default=200.0)
    a = ap.parse_args()

    from jukinet.config import Config
    from jukinet import retention
    from jukinet.store import provision
    from jukinet.store.registers import Registers

    src = install(a.residents)
    juki_db = src / "juki.sqlite3"
    add_expired(juki_db, a.expired)
    copy = Path(tempfile.mkdtemp(prefix="jukinet-retention-copy-"))
    for name in ("juki.sqlite3", "fuhyo.sqlite3", "admin.sqlite3", "jukinet.toml"):
        shutil.copy2(src / name, copy / name)
    cfg = Config.load(copy)
    cfg.database = provision.sqlite_urls(copy)
    cfg.save()

    codes = [c for (c,) in sqlite3.connect(juki_db).execute(
        "SELECT juminhyo_code FROM juki_current ORDER BY random() LIMIT 20000")]
    registers = Registers(Config.load(src))
    today = date(2026, 11, 26)

    _, idle, widle_w = measure(registers, codes, a.lookups_per_s, lambda: time.sleep(5))
    reports = []
    secs, during, wduring_w = measure(registers, codes, a.lookups_per_s, lambda: reports.extend(
        retention.run(registers, today=today, only=["juki_history"], batch_size=a.batch)))
    erased = reports[0].erased
    registers.dispose()

    reg2 = Registers(Config.load(copy))
    cutoff = retention.jst_midnight_after(retention.cutoff_date(today, 150))
    cutoff_s = cutoff.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")

    def bare_delete():
        con = sqlite3.connect(copy / "juki.sqlite3", timeout=300, isolation_level=None)
        con.execute("PRAGMA synchronous=FULL")
        con.execute("BEGIN IMMEDIATE")
        n = con.execute("DELETE FROM juki_history WHERE superseded_at < ?", (cutoff_s,)).rowcount
        con.execute("COMMIT")
        con.close()
        bare_rows.append(n)

    bare_rows: list[int] = []
    bsecs, bduring, bwduring_w = measure(reg2, codes, a.lookups_per_s, bare_delete)
    reg2.dispose()

    print()
    print(f"Purge of {a.expired:,} expired history rows (SQLite, {a.residents:,} residents besides; "
          f"look-ups by 住民票コード at ~{a.lookups_per_s:.0f}/s meanwhile).")
    print()
    print("| | jukinet `retention run` (batches) | bare `DELETE` (one statement) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| rows erased | {erased:,} | {bare_rows[0]:,} | |")
    print(f"| time | {secs:.1f} s | {bsecs:.1f} s | {secs / bsecs:.2f}× |")
    print(f"| rows per second | {erased / secs:,.0f} | {bare_rows[0] / bsecs:,.0f} | |")
    print(f"| look-up p50 idle → during | {pct(idle, 50):.2f} → {pct(during, 50):.2f} ms | "
          f"{pct(idle, 50):.2f} → {pct(bduring, 50):.2f} ms | |")
    print(f"| look-up p99 during | {pct(during, 99):.2f} ms | {pct(bduring, 99):.2f} ms | "
          f"{pct(during, 99) / pct(bduring, 99):.2f}× |")
    print(f"| look-up max during | {max(during):.1f} ms | {max(bduring):.1f} ms | "
          f"{max(during) / max(bduring):.2f}× |")
    print(f"| look-ups done during the purge | {len(during):,} | {len(bduring):,} | |")
    widle, wduring, bwduring = widle_w.lat, wduring_w.lat, bwduring_w.lat
    print(f"| write transaction (intake's lock) p50 idle → during | {pct(widle, 50):.1f} → {pct(wduring, 50):.1f} ms"
          f" | {pct(widle, 50):.1f} → {pct(bwduring, 50):.1f} ms | |")
    print(f"| write transaction p99 / max during | {pct(wduring, 99):,.0f} / {max(wduring):,.0f} ms | "
          f"{pct(bwduring, 99):,.0f} / {max(bwduring):,.0f} ms | |")
    print(f"| write transactions refused (locked > 30 s busy timeout) | {wduring_w.failed} of {len(wduring)} | "
          f"{bwduring_w.failed} of {len(bwduring)} | |")
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()
