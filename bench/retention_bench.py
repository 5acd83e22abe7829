"""Retention (A8): purging 1,000,000 expired history rows, and search latency while it runs; same run.

Usage: python bench/retention_bench.py [--db-url URL] [--residents N] [--expired M] [--batch B]
                                       [--lookups-per-s R]

1. A fresh installation (SQLite, or with ``--db-url`` a throwaway PostgreSQL database, dropped at the
   end; bench/engines.py) with N residents from ``jukinet.seed.populate`` (default 100,000:
   the base population only shapes the indexes; the purge is about the M rows), plus M history rows
   (default 1,000,000) superseded in 1850–1875 — past 150 years — inserted directly. SQLite: the database
   file is then copied, so that both contenders start from the same bytes. PostgreSQL: the baseline
   runs on the same database after jukinet's purge, the M rows inserted again and ``VACUUM ANALYZE``
   run before each contender.
2. **jukinet**: ``jukinet.retention.run(only=["juki_history"])`` — batches of B rows
   (default: the config's 5,000), each its own short write transaction. Meanwhile a reader thread
   does indexed look-ups (``JukiRepository.get`` by a random existing 住民票コード) at about R per
   second and records each latency, and a writer thread does a tiny write transaction 20 times a
   second (what intake needs: the write lock); both are also timed before the purge (idle).
3. **Baseline**: the bare driver (``sqlite3`` / ``psycopg``) running one ``DELETE FROM juki_history
   WHERE superseded_at < ?`` — the physical minimum, one transaction — with the same reader.

Prints a markdown table: purge time, rows per second, look-up p50/p99/max idle and during each purge,
and the ratios.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument, pct  # noqa: E402

from jukinet import retention  # noqa: E402
from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.store import provision  # noqa: E402


def add_expired(bare: Bare, n: int) -> None:
    """M history rows (copies of 1,000 current persons' rows), superseded between 1850 and 1875 —
    generated inside the database (setup only; not measured)."""
    if bare.postgres:
        cols = [r[0] for r in bare.execute("SELECT column_name FROM information_schema.columns WHERE "
                                           "table_name = 'juki_history' AND table_schema = current_schema() "
                                           "ORDER BY ordinal_position")]
        ccols = [r[0] for r in bare.execute("SELECT column_name FROM information_schema.columns WHERE "
                                            "table_name = 'juki_current' AND table_schema = current_schema()")]
    else:
        cols = [r[1] for r in bare.execute("PRAGMA table_info(juki_history)")]
        ccols = [r[1] for r in bare.execute("PRAGMA table_info(juki_current)")]
        bare.execute("PRAGMA synchronous=OFF")
    base_seq = bare.execute("SELECT value FROM counters WHERE name='update_seq'").fetchone()[0]
    t = time.perf_counter()
    if bare.postgres:
        day = "(date '1850-01-01' + (n.i * 7919) % 9125)"
        computed = {"superseded_at": f"{day} + time '03:00'",
                    "notified_date": f"{day} - 30"}
        gen = f"generate_series(0, {n - 1}) AS n(i)"
    else:
        day = "date('1850-01-01', '+' || ((n.i * 7919) % 9125) || ' days')"
        computed = {"history_id": "NULL", "superseded_at": f"{day} || ' 03:00:00.000000'",
                    "notified_date": f"date({day}, '-30 days')"}
        gen = "n"
    computed |= {"superseded_by_seq": f"{base_seq + n + 1} + n.i", "superseded_by_reason": "'転居'",
                 "update_seq": f"{base_seq + 1} + n.i"}
    if bare.postgres:
        cols = [c for c in cols if c != "history_id"]
    select_list = ", ".join(computed.get(c, f"s.{c}") for c in cols)
    assert set(cols) - set(computed) - {"history_id"} <= set(ccols)
    bare.begin_write()
    bare.execute(f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n - 1}),
             s AS (SELECT *, row_number() OVER () - 1 AS k FROM (SELECT * FROM juki_current LIMIT 1000) c)
        INSERT INTO juki_history ({", ".join(cols)})
        SELECT {select_list} FROM {gen} JOIN s ON s.k = n.i % (SELECT count(*) FROM s)""")
    bare.execute("UPDATE counters SET value = ? WHERE name = 'update_seq'", (base_seq + 2 * n + 1,))
    if not bare.execute("SELECT 1 FROM counters WHERE name = 'bench_probe'").fetchone():
        bare.execute("INSERT INTO counters (name, value) VALUES ('bench_probe', 0)")
    bare.commit()
    if bare.postgres:
        bare.execute("VACUUM ANALYZE juki_history")
    else:
        bare.execute("PRAGMA wal_checkpoint(TRUNCATE)")
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
    add_argument(ap)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jukinet-retention-bench-") as tmp, Server(a.db_url) as server:
        src = server.installation(Path(tmp) / "src", a.residents)
        run(a, server, src, Path(tmp))


def run(a, server: Server, src: Path, tmp: Path) -> None:
    today = date(2026, 11, 26)
    cutoff = retention.jst_midnight_after(retention.cutoff_date(today, 150))
    with bootstrap(src) as inst:
        bare = Bare.of(inst.registers, "juki")
        add_expired(bare, a.expired)
        codes = [c for (c,) in bare.execute("SELECT juminhyo_code FROM juki_current ORDER BY random() LIMIT 20000")]
        if not bare.postgres:     # the baseline gets a copy of the same bytes
            bare.close()
            copy = tmp / "copy"
            copy.mkdir()
            for name in ("juki.sqlite3", "fuhyo.sqlite3", "admin.sqlite3", "jukinet.toml"):
                shutil.copy2(src / name, copy / name)
            for tree in ("keys", "audit"):
                if (src / tree).is_dir():
                    shutil.copytree(src / tree, copy / tree)
            cfg = Config.load(copy)
            cfg.database = provision.sqlite_urls(copy)
            cfg.save()
        registers = inst.registers
        _, idle, widle_w = measure(registers, codes, a.lookups_per_s, lambda: time.sleep(5))
        reports = []
        secs, during, wduring_w = measure(registers, codes, a.lookups_per_s, lambda: reports.extend(
            retention.run(registers, today=today, only=["juki_history"], batch_size=a.batch)))
        erased = reports[0].erased
        if bare.postgres:         # the same database again: the same M rows back, vacuumed
            bare.execute("VACUUM juki_history")
            add_expired(bare, a.expired)
            bare.close()
    base_dir = src if server.postgres else copy
    bare_rows: list[int] = []

    def bare_delete():
        b = Bare.of(reg2, "juki")
        if not b.postgres:
            b.execute("PRAGMA synchronous=FULL")
        b.begin_write()
        param = cutoff if b.postgres else cutoff.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        n = b.execute("DELETE FROM juki_history WHERE superseded_at < ?", (param,)).rowcount
        b.commit()
        b.close()
        bare_rows.append(n)

    with bootstrap(base_dir) as inst2:
        reg2 = inst2.registers
        bsecs, bduring, bwduring_w = measure(reg2, codes, a.lookups_per_s, bare_delete)
    version = server.version()

    print()
    print(f"Purge of {a.expired:,} expired history rows ({version}, {a.residents:,} residents besides; "
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


if __name__ == "__main__":
    main()
