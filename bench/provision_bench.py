"""事務2 at Mie scale: single provision, batch provision to an encrypted file, provision-record lookup —
each next to the bare engine doing the same work, in the same run. Prints markdown tables.

Usage:
    python bench/provision_bench.py [--db-url URL] [--data-dir DIR] [--residents N] [--samples K]
                                    [--batch-rows R] [--records M[,M…]] [--records-dir DIR]
                                    [--skip-single] [--skip-batch] [--skip-records]

``--data-dir``: a seeded installation (either engine; ``jukinet init`` + ``jukinet seed``); without it, N
residents (default 1,741,266) are seeded into a fresh installation first — SQLite files, or with
``--db-url`` a throwaway PostgreSQL database (every database the bench makes there is dropped at the
end; bench/engines.py). "Bare" is the bare driver on the same engine (``sqlite3`` / ``psycopg``).

1. **Single provision** (P2/P5): K random persons of D1, half by 住民票コード, half by 4情報 (kanji name
   + 生年月日 + 性別). Ours: :meth:`ProvisionService.provide` end to end — catalogue and grant check,
   key validation, the indexed lookup, 突合, the provision record and the operation-log entry, commit
   (synchronous=FULL on SQLite). Bare: the driver doing the same lookup, inserting one provision row and
   committing with the same pragmas. p50/p95 in ms.
2. **Batch** (P4): a conditions file of R rows (70 % 住民票コード, 25 % 4情報, 5 % bad check digits)
   → :class:`BatchService` → encrypted ``jukinet.media/1`` file. Bare: the driver + ``csv`` +
   AES-256-GCM doing the same lookups (the sealed 個人番号 copied as stored, not opened), provision rows and encrypted CSV in chunks of 1,000. Each runs
   in its own child process, so peak RSS is that run's own (``VmHWM``).
3. **Provision-record lookup** (P5/O3): a bench-only database (SQLite file, or a throwaway PostgreSQL
   database) with M rows of ``provision_records`` (same DDL and indexes, generated in SQL by the bare
   engine; persons drawn from a pool of 2,000,000 digests, ~M/2M rows each) plus 50 target persons
   with 25 rows each. Ours: :func:`provisions_for_person`; bare: the same indexed SELECT. Cold (first
   query after opening) and warm p50/p95; SQLite also the depth of the person index (``dbstat``) and
   the page-cache-cold figures (the file's pages evicted; not possible for a shared PostgreSQL server).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from engines import Bare, Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.config import Config  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(x):
    return f"{x * 1000:.2f}"


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over fork+exec from the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ setup

def open_installation(server: Server, data_dir: Path | None, residents: int, tmp: Path):
    data_dir = data_dir or server.installation(tmp / "data", residents)
    inst = bootstrap(data_dir)
    inst.ensure_default_catalogue()
    return data_dir, inst


def bench_operator():
    from jukinet.security.model import Operator

    return Operator("BENCH-OP", "ベンチ 担当", "", ("operator",), ("juki", "fuhyo"), ("provision", "national"),
                    "active", False)


def sample_people(bare: Bare, k: int) -> list[tuple]:
    """K random current persons: (住民票コード, 氏名, 生年月日 ISO, 性別, 住所)."""
    rows = bare.execute("SELECT juminhyo_code, name, birth_date, sex, address FROM juki_current WHERE NOT deleted "
                        "ORDER BY random() LIMIT ?", (k,)).fetchall()
    out = [(c, n, b if isinstance(b, str) else b.isoformat(), s, a) for c, n, b, s, a in rows]
    while out and len(out) < k:   # fewer persons than samples: repeat
        out += out[:k - len(out)]
    return out


# ------------------------------------------------------------------ 1. single provision

def bench_single(config, registers, samples: int) -> list[str]:
    from jukinet.provision.service import ProvideCommand, ProvisionService

    config.provision.national_fallback = False
    svc = ProvisionService(config, registers)
    op = bench_operator()
    bare = Bare.of(registers, "juki")
    people = sample_people(bare, samples)
    if not bare.postgres:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            bare.execute(f"PRAGMA {pragma}")
    bare.execute("CREATE TABLE IF NOT EXISTS bench_provision AS SELECT * FROM provision_records WHERE 1 = 0")
    ours = {"code": [], "four": []}
    base = {"code": [], "four": []}
    outcomes = {}
    for i, (code, name, birth, sex, address) in enumerate(people):
        kind = "code" if i % 2 == 0 else "four"
        cmd = (ProvideCommand("SOMU", "SOMU-KENZEI", juminhyo_code=code) if kind == "code" else
               ProvideCommand("SOMU", "SOMU-KENZEI", name=name, birth_date=birth, sex=sex))
        t0 = time.perf_counter()
        r = svc.provide(cmd, op, "BENCH")
        ours[kind].append(time.perf_counter() - t0)
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        t0 = time.perf_counter()
        bare.begin_write()
        if kind == "code":
            row = bare.execute("SELECT * FROM juki_current WHERE juminhyo_code = ?", (code,)).fetchall()
        else:
            row = bare.execute("SELECT * FROM juki_current WHERE name = ? AND birth_date = ?", (name, birth)).fetchall()
        bare.execute("INSERT INTO bench_provision (at, channel, kind, requester_code, affair_code, key_kind, keys_digest,"
                     " person_digest, outcome, items, number_included) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     (datetime.now(timezone.utc).isoformat(), "terminal", "transfer", "SOMU", "SOMU-KENZEI", kind,
                      "{}", secrets.token_hex(16), "provided" if row else "not_found", "name", False))
        bare.commit()
        base[kind].append(time.perf_counter() - t0)
    bare.execute("DROP TABLE bench_provision")
    bare.close()
    svc.close()
    n = registers.juki_engine.connect().exec_driver_sql("SELECT count(*) FROM juki_current").scalar()
    lines = [f"### Single provision ({samples:,} samples, D1 {n:,} rows incl. 消除者; outcomes {outcomes})", "",
             "| key | jukinet p50 ms | p95 ms | bare driver p50 ms | p95 ms | ratio p95 |", "|---|---|---|---|---|---|"]
    for kind, label in (("code", "住民票コード"), ("four", "4情報 (氏名+生年月日+性別)")):
        lines.append(f"| {label} | {ms(pct(ours[kind], 50))} | {ms(pct(ours[kind], 95))} | {ms(pct(base[kind], 50))} | "
                     f"{ms(pct(base[kind], 95))} | {pct(ours[kind], 95) / pct(base[kind], 95):.1f}× |")
    allo, allb = ours["code"] + ours["four"], base["code"] + base["four"]
    lines.append(f"| all | {ms(pct(allo, 50))} | **{ms(pct(allo, 95))}** | {ms(pct(allb, 50))} | {ms(pct(allb, 95))} | "
                 f"{pct(allo, 95) / pct(allb, 95):.1f}× |")
    return lines


# ------------------------------------------------------------------ 2. batch

def make_conditions(bare: Bare, rows: int, path: Path) -> None:
    from jukinet import codes

    people = sample_people(bare, rows)
    rng = random.Random(3)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["依頼番号", "住民票コード", "氏名", "生年月日", "性別"])
        for i, (code, name, birth, sex, _addr) in enumerate(people):
            x = rng.random()
            if x < 0.70:
                w.writerow([f"R{i:07d}", code, "", "", ""])
            elif x < 0.95:
                w.writerow([f"R{i:07d}", "", name, birth, sex])
            else:
                bad = code[:-1] + str((int(code[-1]) + 1) % 10)
                if codes.is_valid_juminhyo_code(bad):
                    bad = code[:-1] + str((int(code[-1]) + 2) % 10)
                w.writerow([f"R{i:07d}", bad, "", "", ""])


def child_ours(data_dir: Path, src: Path, out: Path) -> dict:
    from jukinet.provision.batch import BatchCommand, BatchService
    from jukinet.provision.service import ProvisionService

    config = Config.load(data_dir)
    config.provision.national_fallback = False
    config.provision.batch_approval_threshold = 10 ** 9
    registers = bootstrap(config).registers
    svc = ProvisionService(config, registers)
    t0 = time.perf_counter()
    r = BatchService(svc).run(BatchCommand("SOMU", "SOMU-KENZEI", src, out, encoding="utf-8"), bench_operator(), "BENCH",
                              channel="console")
    dt = time.perf_counter() - t0
    return {"seconds": dt, "rss_mb": peak_rss_mb(),
            "rows": r.rows, "provided": r.provided, "errors": r.errors, "not_found": r.not_found,
            "ambiguous": r.ambiguous, "size": r.size}


def child_bare(data_dir: Path, src: Path, out: Path) -> dict:
    """The same work with the bare engine: lookups, one provision row per condition, an encrypted CSV."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from jukinet import codes

    db = Bare.of_url(Config.load(data_dir).database.juki_url)
    if not db.postgres:
        for pragma in ("journal_mode=WAL", "synchronous=FULL"):
            db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE IF NOT EXISTS bench_provision AS SELECT * FROM provision_records WHERE 1 = 0")
    aead, prefix = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(7)
    t0 = time.perf_counter()
    now = datetime.now(timezone.utc).isoformat()
    buf, counter = bytearray(), 0
    cols = "juminhyo_code, name, name_kana, birth_date, sex, address, kojin_bango_ct, reason, change_date"
    with open(src, "r", encoding="utf-8", newline="") as f, open(out, "wb") as o:
        r = csv.reader(f)
        next(r)

        def flush(final=False):
            nonlocal counter, buf
            while len(buf) > 65536 or (final and buf is not None):
                chunk, buf = bytes(buf[:65536]), buf[65536:]
                last = final and not buf
                o.write(aead.encrypt(prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00"), chunk, b""))
                counter += 1
                if last:
                    break

        def process(chunk):
            nonlocal buf
            db.begin_write()
            code_rows = [c for c in chunk if c[1]]
            found = {}
            valid = [c[1] for c in code_rows if codes.is_valid_juminhyo_code(c[1])]
            for i in range(0, len(valid), 500):
                part = valid[i:i + 500]
                for row in db.execute(f"SELECT {cols} FROM juki_current WHERE juminhyo_code IN "
                                      f"({','.join('?' * len(part))})", part):
                    found[row[0]] = row
            s = io.StringIO()
            w = csv.writer(s, lineterminator="\r\n")
            recs = []
            for c in chunk:
                if c[1]:
                    row = found.get(c[1])
                else:
                    rows = db.execute(f"SELECT {cols} FROM juki_current WHERE name = ? AND birth_date = ? AND sex = ?",
                                      (c[2], c[3], c[4])).fetchall()
                    row = rows[0] if len(rows) == 1 else None
                w.writerow([c[0], "提供" if row else "該当なし", *(row or ())])
                recs.append((now, "console", "transfer", "SOMU", "SOMU-KENZEI", "code", "{}", secrets.token_hex(16),
                             "provided" if row else "not_found", cols, False))
            db.executemany("INSERT INTO bench_provision (at, channel, kind, requester_code, affair_code, key_kind, "
                           "keys_digest, person_digest, outcome, items, number_included) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           recs)
            db.commit()
            buf += s.getvalue().encode()
            flush()

        chunk = []
        for c in r:
            chunk.append(c)
            if len(chunk) == 1000:
                process(chunk)
                chunk = []
        if chunk:
            process(chunk)
        flush(final=True)
    dt = time.perf_counter() - t0
    db.execute("DROP TABLE bench_provision")
    db.close()
    return {"seconds": dt, "rss_mb": peak_rss_mb(), "size": out.stat().st_size}


def run_child(mode: str, data_dir: Path, src: Path, out: Path) -> dict:
    p = subprocess.run([sys.executable, str(HERE), f"--_child={mode}", "--data-dir", str(data_dir), "--_src", str(src),
                        "--_out", str(out)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_batch(data_dir: Path, registers, rows: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="jukinet-provision-batch-"))
    src = work / "conditions.csv"
    bare = Bare.of(registers, "juki")
    make_conditions(bare, rows, src)
    bare.close()
    bare = run_child("bare", data_dir, src, work / "bare.bin")
    ours = run_child("ours", data_dir, src, work / "result.jkm")
    lines = [f"### Batch provision: {rows:,} conditions → encrypted result (D1 as above; own process each)", "",
             "| | seconds | rows/s | peak RSS MB | output bytes |", "|---|---|---|---|---|",
             f"| jukinet `BatchService.run` (records, log, 突合, jukinet.media/1) | **{ours['seconds']:.1f}** | "
             f"{rows / ours['seconds']:,.0f} | **{ours['rss_mb']:.0f}** | {ours['size']:,} |",
             f"| bare driver + csv + AES-GCM, same lookups and rows | {bare['seconds']:.1f} | "
             f"{rows / bare['seconds']:,.0f} | {bare['rss_mb']:.0f} | {bare['size']:,} |",
             f"| ratio | {ours['seconds'] / bare['seconds']:.1f}× | | {ours['rss_mb'] / bare['rss_mb']:.1f}× | |", "",
             f"outcomes (ours): provided {ours['provided']:,}, not found {ours['not_found']:,}, "
             f"ambiguous {ours['ambiguous']:,}, row errors {ours['errors']:,}"]
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    return lines


# ------------------------------------------------------------------ 3. provision-record lookup

def build_records_db(path: Path, m: int, keyring, targets: list[str]) -> float:
    """M rows of provision_records in a bench-only SQLite file, generated by the bare engine."""
    from sqlalchemy import create_engine
    from sqlalchemy.schema import CreateIndex, CreateTable

    from jukinet.provision.records import Digests
    from jukinet.store.tables_provision import juki_provision_records as t

    eng = create_engine("sqlite://")
    ddl = str(CreateTable(t).compile(eng))
    idx = [str(CreateIndex(i).compile(eng)) for i in t.indexes]
    t0 = time.perf_counter()
    db = sqlite3.connect(str(path), isolation_level=None)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000", "temp_store=FILE"):
        db.execute(f"PRAGMA {pragma}")
    db.execute(ddl)
    db.execute("CREATE TEMP TABLE pool (id INTEGER PRIMARY KEY, d TEXT)")
    db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
               "INSERT INTO pool SELECT x, lower(hex(randomblob(16))) FROM c")
    step = 5_000_000
    start = datetime(2019, 1, 1, tzinfo=timezone.utc).timestamp()
    span = 7 * 365 * 86400
    for lo in range(0, m, step):
        n = min(step, m - lo)
        db.execute("BEGIN")
        db.execute(
            f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
            "INSERT INTO provision_records (at, operator_id, terminal_id, channel, kind, requester_code, affair_code, "
            "purpose_code, key_kind, keys_digest, person_digest, source, outcome, items, number_included, "
            "match_result, oplog_seq) "
            f"SELECT strftime('%Y-%m-%d %H:%M:%f', {start} + abs(random()) % {span}, 'unixepoch'), 'OP0001', 'T0001', "
            "'terminal', 'transfer', 'SOMU', 'SOMU-KENZEI', 'provision', 'juminhyo_code', "
            "'{\"juminhyo_code\":\"' || lower(hex(randomblob(16))) || '\"}', "
            "(SELECT d FROM pool WHERE id = 1 + (abs(random()) + x * 0) % 2000000), 'local', 'provided', "
            "'juminhyo_code,name,name_kana,birth_date,sex,address,kojin_bango,reason,change_date', 1, "
            "'{\"birth_date\":\"一致\",\"name\":\"一致\"}', x FROM c")
        db.execute("COMMIT")
        print(f"  … {lo + n:,} rows", file=sys.stderr)
    d = Digests(keyring)
    rows = []
    for code in targets:
        for j in range(25):
            rows.append((datetime.fromtimestamp(start + random.randrange(span), timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
                         "OP0001", "T0001", "terminal", "transfer", "SOMU", "SOMU-KENZEI", "provision", "juminhyo_code",
                         "{}", d.person(code), "local", "provided", "name", 0))
    db.execute("BEGIN")
    db.executemany("INSERT INTO provision_records (at, operator_id, terminal_id, channel, kind, requester_code, "
                   "affair_code, purpose_code, key_kind, keys_digest, person_digest, source, outcome, items, "
                   "number_included) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("COMMIT")
    for s in idx:
        db.execute(s)
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - t0


def build_records_pg(url: str, m: int, keyring, targets: list[str]) -> float:
    """The same on PostgreSQL: a throwaway database, ``generate_series``, indexes built after the load."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from jukinet.provision.records import Digests
    from jukinet.store.tables_provision import juki_provision_records as t

    dialect = postgresql.dialect()
    t0 = time.perf_counter()
    db = Bare.of_url(url)
    db.execute(str(CreateTable(t).compile(dialect=dialect)))
    start = datetime(2019, 1, 1, tzinfo=timezone.utc).timestamp()
    span = 7 * 365 * 86400
    step = 5_000_000
    for lo in range(0, m, step):
        n = min(step, m - lo)
        db.execute(
            "INSERT INTO provision_records (at, operator_id, terminal_id, channel, kind, requester_code, affair_code, "
            "purpose_code, key_kind, keys_digest, person_digest, source, outcome, items, number_included, "
            "match_result, oplog_seq) "
            f"SELECT to_timestamp({start} + floor(random() * {span})), 'OP0001', 'T0001', "
            "'terminal', 'transfer', 'SOMU', 'SOMU-KENZEI', 'provision', 'juminhyo_code', "
            "'{\"juminhyo_code\":\"' || md5(random()::text) || '\"}', "
            "md5((floor(random() * 2000000))::int::text), 'local', 'provided', "
            "'juminhyo_code,name,name_kana,birth_date,sex,address,kojin_bango,reason,change_date', true, "
            f"'{{\"birth_date\":\"一致\",\"name\":\"一致\"}}', x FROM generate_series(1, {n}) AS x")
        print(f"  … {lo + n:,} rows", file=sys.stderr)
    d = Digests(keyring)
    rows = [(datetime.fromtimestamp(start + random.randrange(span), timezone.utc), "OP0001", "T0001", "terminal",
             "transfer", "SOMU", "SOMU-KENZEI", "provision", "juminhyo_code", "{}", d.person(code), "local", "provided",
             "name", False) for code in targets for _ in range(25)]
    db.copy("provision_records", ["at", "operator_id", "terminal_id", "channel", "kind", "requester_code",
                                  "affair_code", "purpose_code", "key_kind", "keys_digest", "person_digest", "source",
                                  "outcome", "items", "number_included"], rows)
    for i in t.indexes:
        db.execute(str(CreateIndex(i).compile(dialect=dialect)))
    db.execute("ANALYZE provision_records")
    db.close()
    return time.perf_counter() - t0


def index_depth(path: Path, name: str) -> tuple[int, int]:
    db = sqlite3.connect(str(path))
    depth, pages = db.execute("SELECT max(length(path) - length(replace(path, '/', ''))), count(*) FROM dbstat "
                              "WHERE name = ?", (name,)).fetchone()
    db.close()
    return depth, pages


def evict(path: Path) -> None:
    """Drop one file's pages from the OS page cache (``POSIX_FADV_DONTNEED``; other files untouched)."""
    for f in (path, path.with_name(path.name + "-wal")):
        if f.exists():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def bench_records(counts: list[int], records_dir: Path, samples: int = 200, cold_samples: int = 20,
                  server: Server | None = None) -> list[str]:
    from sqlalchemy import create_engine

    from jukinet.provision.records import provisions_for_person
    from jukinet.keyring import KeyRing
    from jukinet.store.registers import UnitOfWork
    from jukinet.store.repository import JukiRepository
    from jukinet import codes

    class RecordsOnly(JukiRepository):
        """The D1 repository of a database that holds only ``provision_records`` (no register rows, so no
        個人番号 cipher to bind): :func:`provisions_for_person` needs the register's kind and the connection."""

        def __init__(self, conn):
            self.conn = conn

    keyring = KeyRing(records_dir)
    targets = []
    for i in range(50):
        first = f"{8000000000 + i:010d}"
        targets.append(first + codes.juminhyo_code_check_digit(first))
    pg = server is not None and server.postgres
    lines = [f"### Provision-record lookup for one person (bench-only {server.version() if pg else 'SQLite'} database, "
             "bare-engine generated)", "",
             "| records | build s | file GB | person-index depth | index pages | jukinet first ms | jukinet p50 ms | "
             "p95 ms | bare p50 ms | bare p95 ms | ratio p95 | jukinet page-cache-cold p50 / p95 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in counts:
        if pg:
            url = server.database(f"records_{m}")
            print(f"building {m:,} provision records in a throwaway database …", file=sys.stderr)
            build = build_records_pg(url, m, keyring, targets)
            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            bare = Bare.of_url(url)
            depth = "—"
            pages, size = bare.execute("SELECT pg_relation_size('ix_juki_provision_records_person') / 8192, "
                                       "pg_database_size(current_database())").fetchone()
        else:
            path = records_dir / f"records-{m}.sqlite3"
            if path.exists():
                build = float("nan")
            else:
                print(f"building {m:,} provision records in {path} …", file=sys.stderr)
                build = build_records_db(path, m, keyring, targets)
            depth, pages = index_depth(path, "ix_juki_provision_records_person")
            engine = create_engine(f"sqlite:///{path}")
            bare = Bare(sqlite3.connect(str(path)), False)
        rng = random.Random(5)
        ours, bare_t, cold = [], [], None
        for k in range(samples):
            code = rng.choice(targets)
            with engine.connect() as conn:
                t0 = time.perf_counter()
                got = provisions_for_person(UnitOfWork(conn, RecordsOnly(conn)), code, keyring=keyring,
                                            former_codes=False)
                dt = time.perf_counter() - t0
            assert len(got) == 25, len(got)
            if cold is None:
                cold = dt
            else:
                ours.append(dt)
            from jukinet.provision.records import Digests
            dg = Digests(keyring).person(code)
            t0 = time.perf_counter()
            rows = bare.execute("SELECT * FROM provision_records WHERE person_digest = ? ORDER BY at, record_id",
                                (dg,)).fetchall()
            bare_t.append(time.perf_counter() - t0)
            assert len(rows) == 25
        bare.close()
        engine.dispose()
        if pg:      # a shared server's cache cannot be emptied for one database: no cold figures
            lines.append(f"| {m:,} | {build:.0f} | {size / 1e9:.2f} | {depth} | {pages:,} | {ms(cold)} | "
                         f"{ms(pct(ours, 50))} | **{ms(pct(ours, 95))}** | {ms(pct(bare_t, 50))} | "
                         f"{ms(pct(bare_t, 95))} | {pct(ours, 95) / pct(bare_t, 95):.1f}× | n/a |")
            continue
        cold_t = []
        for k in range(cold_samples):     # the file's pages evicted from the page cache before each query
            code = targets[k % len(targets)]
            evict(path)
            engine = create_engine(f"sqlite:///{path}")
            with engine.connect() as conn:
                t0 = time.perf_counter()
                got = provisions_for_person(UnitOfWork(conn, RecordsOnly(conn)), code, keyring=keyring,
                                            former_codes=False)
                cold_t.append(time.perf_counter() - t0)
            engine.dispose()
            assert len(got) == 25
        gb = path.stat().st_size / 1e9
        lines.append(f"| {m:,} | {build:.0f} | {gb:.1f} | {depth} | {pages:,} | {ms(cold)} | {ms(pct(ours, 50))} | "
                     f"**{ms(pct(ours, 95))}** | {ms(pct(bare_t, 50))} | {ms(pct(bare_t, 95))} | "
                     f"{pct(ours, 95) / pct(bare_t, 95):.1f}× | {ms(pct(cold_t, 50))} / {ms(pct(cold_t, 95))} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=1_741_266)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--batch-rows", type=int, default=100_000)
    ap.add_argument("--records", default="5000000,10000000")
    ap.add_argument("--records-dir", type=Path)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-records", action="store_true")
    ap.add_argument("--_child")
    ap.add_argument("--_src", type=Path)
    ap.add_argument("--_out", type=Path)
    add_argument(ap)
    a = ap.parse_args()
    if a._child:
        fn = child_ours if a._child == "ours" else child_bare
        print(json.dumps(fn(a.data_dir, a._src, a._out)))
        return
    with tempfile.TemporaryDirectory(prefix="jukinet-provision-bench-") as tmp, Server(a.db_url) as server:
        out = [f"## Provision benchmarks ({datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} CPUs, "
               f"{server.version()}{'' if server.postgres else ', synchronous=FULL'})", ""]
        if not (a.skip_single and a.skip_batch):
            data_dir, inst = open_installation(server, a.data_dir, a.residents, Path(tmp))
            if not a.skip_single:
                out += bench_single(inst.config, inst.registers, a.samples) + [""]
            if not a.skip_batch:
                out += bench_batch(data_dir, inst.registers, a.batch_rows) + [""]
            inst.close()
        if not a.skip_records:
            rdir = a.records_dir or Path(tmp) / "records"
            rdir.mkdir(parents=True, exist_ok=True)
            out += bench_records([int(x) for x in a.records.split(",") if x], rdir, server=server)
    print("\n".join(out))


if __name__ == "__main__":
    main()
