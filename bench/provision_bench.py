"""事務2 at Mie scale: single provision, batch provision to an encrypted file, provision-record lookup —
each next to the bare engine doing the same work, in the same run. Prints markdown tables.

Usage:
    python bench/provision_bench.py [--data-dir DIR] [--residents N] [--samples K]
                                    [--batch-rows R] [--records M[,M…]] [--records-dir DIR]
                                    [--skip-single] [--skip-batch] [--skip-records]

``--data-dir``: a seeded installation (SQLite; ``jukinet init`` + ``jukinet seed``); without it, N
residents (default 1,741,266) are seeded into a temporary directory first.

1. **Single provision** (P2/P5): K random persons of D1, half by 住民票コード, half by 4情報 (kanji name
   + 生年月日 + 性別). Ours: :meth:`ProvisionService.provide` end to end — catalogue and grant check,
   key validation, the indexed lookup, 突合, the provision record and the operation-log entry, commit
   (synchronous=FULL). Bare: ``sqlite3`` doing the same lookup, inserting one provision row and
   committing with the same pragmas. p50/p95 in ms.
2. **Batch** (P4): a conditions file of R rows (70 % 住民票コード, 25 % 4情報, 5 % bad check digits)
   → :class:`BatchService` → encrypted ``jukinet.media/1`` file. Bare: ``sqlite3`` + ``csv`` +
   AES-256-GCM doing the same lookups, provision rows and encrypted CSV in chunks of 1,000. Each runs
   in its own child process, so peak RSS is that run's own (``VmHWM``).
3. **Provision-record lookup** (P5/O3): a bench-only SQLite database with M rows of
   ``provision_records`` (same DDL and indexes, generated in SQL by the bare engine; persons drawn
   from a pool of 2,000,000 digests, ~M/2M rows each) plus 50 target persons with 25 rows each.
   Ours: :func:`provisions_for_person`; bare: the same indexed SELECT. Cold (first query after
   opening) and warm p50/p95, and the depth of the person index (``dbstat``).
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

def open_installation(data_dir: Path | None, residents: int):
    from jukinet.config import Config
    from jukinet.provision import catalogue as C
    from jukinet.keyring import KeyRing
    from jukinet.security.oplog import OperationLog
    from jukinet.store import provision
    from jukinet.store.registers import Registers

    if data_dir is None:
        from jukinet.seed import populate

        data_dir = Path(tempfile.mkdtemp(prefix="jukinet-provision-bench-"))
        db = provision.database_config(data_dir, None)
        provision.migrate_all(db)
        Config(data_dir=data_dir, database=db).save()
        registers = Registers(Config.load(data_dir))
        print(f"seeding {residents:,} residents into {data_dir} …", file=sys.stderr)
        populate(registers, residents, 0)
        registers.dispose()
    config = Config.load(data_dir)
    registers = Registers(config)
    C.ensure_default(registers, OperationLog(KeyRing(data_dir), data_dir))
    return data_dir, config, registers


def bench_operator():
    from jukinet.security.model import Operator

    return Operator("BENCH-OP", "ベンチ 担当", "", ("operator",), ("juki", "fuhyo"), ("provision", "national"),
                    "active", False)


def sample_people(db_path: str, k: int, seed: int = 1) -> list[tuple]:
    bare = sqlite3.connect(db_path)
    n = bare.execute("SELECT max(rowid) FROM juki_current").fetchone()[0]
    rng = random.Random(seed)
    out = []
    while len(out) < k:
        r = bare.execute("SELECT juminhyo_code, name, birth_date, sex, address FROM juki_current WHERE rowid = ? "
                         "AND deleted = 0", (rng.randrange(1, n + 1),)).fetchone()
        if r:
            out.append(r)
    bare.close()
    return out


# ------------------------------------------------------------------ 1. single provision

def bench_single(config, registers, samples: int) -> list[str]:
    from jukinet.provision.service import ProvideCommand, ProvisionService

    config.provision.national_fallback = False
    svc = ProvisionService(config, registers)
    op = bench_operator()
    db = registers.juki_engine.url.database
    people = sample_people(db, samples)
    bare = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
        bare.execute(f"PRAGMA {pragma}")
    bare.execute("CREATE TABLE IF NOT EXISTS bench_provision AS SELECT * FROM provision_records WHERE 0")
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
        bare.execute("BEGIN IMMEDIATE")
        if kind == "code":
            row = bare.execute("SELECT * FROM juki_current WHERE juminhyo_code = ?", (code,)).fetchall()
        else:
            row = bare.execute("SELECT * FROM juki_current WHERE name = ? AND birth_date = ?", (name, birth)).fetchall()
        bare.execute("INSERT INTO bench_provision (at, channel, kind, requester_code, affair_code, key_kind, keys_digest,"
                     " person_digest, outcome, items, number_included) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     (datetime.now(timezone.utc).isoformat(), "terminal", "transfer", "SOMU", "SOMU-KENZEI", kind,
                      "{}", secrets.token_hex(16), "provided" if row else "not_found", "name", 0))
        bare.execute("COMMIT")
        base[kind].append(time.perf_counter() - t0)
    bare.execute("DROP TABLE bench_provision")
    bare.close()
    svc.close()
    n = registers.juki_engine.connect().exec_driver_sql("SELECT count(*) FROM juki_current").scalar()
    lines = [f"### Single provision ({samples:,} samples, D1 {n:,} rows incl. 消除者; outcomes {outcomes})", "",
             "| key | jukinet p50 ms | p95 ms | bare sqlite3 p50 ms | p95 ms | ratio p95 |", "|---|---|---|---|---|---|"]
    for kind, label in (("code", "住民票コード"), ("four", "4情報 (氏名+生年月日+性別)")):
        lines.append(f"| {label} | {ms(pct(ours[kind], 50))} | {ms(pct(ours[kind], 95))} | {ms(pct(base[kind], 50))} | "
                     f"{ms(pct(base[kind], 95))} | {pct(ours[kind], 95) / pct(base[kind], 95):.1f}× |")
    allo, allb = ours["code"] + ours["four"], base["code"] + base["four"]
    lines.append(f"| all | {ms(pct(allo, 50))} | **{ms(pct(allo, 95))}** | {ms(pct(allb, 50))} | {ms(pct(allb, 95))} | "
                 f"{pct(allo, 95) / pct(allb, 95):.1f}× |")
    return lines


# ------------------------------------------------------------------ 2. batch

def make_conditions(db_path: str, rows: int, path: Path) -> None:
    from jukinet import codes

    people = sample_people(db_path, rows, seed=2)
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
    from jukinet.config import Config
    from jukinet.provision.batch import BatchCommand, BatchService
    from jukinet.provision.service import ProvisionService
    from jukinet.store.registers import Registers

    config = Config.load(data_dir)
    config.provision.national_fallback = False
    config.provision.batch_approval_threshold = 10 ** 9
    registers = Registers(config)
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

    db = sqlite3.connect(str(data_dir / "juki.sqlite3"), isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL"):
        db.execute(f"PRAGMA {pragma}")
    db.execute("CREATE TABLE IF NOT EXISTS bench_provision AS SELECT * FROM provision_records WHERE 0")
    aead, prefix = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(7)
    t0 = time.perf_counter()
    now = datetime.now(timezone.utc).isoformat()
    buf, counter = bytearray(), 0
    cols = "juminhyo_code, name, name_kana, birth_date, sex, address, kojin_bango, reason, change_date"
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
            db.execute("BEGIN IMMEDIATE")
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
                             "provided" if row else "not_found", cols, 0))
            db.executemany("INSERT INTO bench_provision (at, channel, kind, requester_code, affair_code, key_kind, "
                           "keys_digest, person_digest, outcome, items, number_included) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           recs)
            db.execute("COMMIT")
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
    return {"seconds": dt, "rss_mb": peak_rss_mb(), "size": out.stat().st_size}


def run_child(mode: str, data_dir: Path, src: Path, out: Path) -> dict:
    p = subprocess.run([sys.executable, str(HERE), f"--_child={mode}", "--data-dir", str(data_dir), "--_src", str(src),
                        "--_out", str(out)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_batch(data_dir: Path, registers, rows: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="jukinet-provision-batch-"))
    src = work / "conditions.csv"
    make_conditions(registers.juki_engine.url.database, rows, src)
    bare = run_child("bare", data_dir, src, work / "bare.bin")
    ours = run_child("ours", data_dir, src, work / "result.jkm")
    lines = [f"### Batch provision: {rows:,} conditions → encrypted result (D1 as above; own process each)", "",
             "| | seconds | rows/s | peak RSS MB | output bytes |", "|---|---|---|---|---|",
             f"| jukinet `BatchService.run` (records, log, 突合, jukinet.media/1) | **{ours['seconds']:.1f}** | "
             f"{rows / ours['seconds']:,.0f} | **{ours['rss_mb']:.0f}** | {ours['size']:,} |",
             f"| bare sqlite3 + csv + AES-GCM, same lookups and rows | {bare['seconds']:.1f} | "
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


def bench_records(counts: list[int], records_dir: Path, samples: int = 200, cold_samples: int = 20) -> list[str]:
    from sqlalchemy import create_engine

    from jukinet.provision.records import provisions_for_person
    from jukinet.keyring import KeyRing
    from jukinet.store.registers import UnitOfWork
    from jukinet.store.repository import JukiRepository
    from jukinet import codes

    keyring = KeyRing(records_dir)
    targets = []
    for i in range(50):
        first = f"{8000000000 + i:010d}"
        targets.append(first + codes.juminhyo_code_check_digit(first))
    lines = ["### Provision-record lookup for one person (bench-only SQLite database, bare-engine generated)", "",
             "| records | build s | file GB | person-index depth | index pages | jukinet first ms | jukinet p50 ms | "
             "p95 ms | bare p50 ms | bare p95 ms | ratio p95 | jukinet page-cache-cold p50 / p95 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in counts:
        path = records_dir / f"records-{m}.sqlite3"
        if path.exists():
            build = float("nan")
        else:
            print(f"building {m:,} provision records in {path} …", file=sys.stderr)
            build = build_records_db(path, m, keyring, targets)
        depth, pages = index_depth(path, "ix_juki_provision_records_person")
        engine = create_engine(f"sqlite:///{path}")
        rng = random.Random(5)
        ours, bare_t, cold = [], [], None
        bare = sqlite3.connect(str(path))
        for k in range(samples):
            code = rng.choice(targets)
            with engine.connect() as conn:
                t0 = time.perf_counter()
                got = provisions_for_person(UnitOfWork(conn, JukiRepository(conn)), code, keyring=keyring,
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
        cold_t = []
        for k in range(cold_samples):     # the file's pages evicted from the page cache before each query
            code = targets[k % len(targets)]
            evict(path)
            engine = create_engine(f"sqlite:///{path}")
            with engine.connect() as conn:
                t0 = time.perf_counter()
                got = provisions_for_person(UnitOfWork(conn, JukiRepository(conn)), code, keyring=keyring,
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
    a = ap.parse_args()
    if a._child:
        fn = child_ours if a._child == "ours" else child_bare
        print(json.dumps(fn(a.data_dir, a._src, a._out)))
        return
    out = [f"## Provision benchmarks ({datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} CPUs, SQLite "
           f"{sqlite3.sqlite_version}, synchronous=FULL)", ""]
    if not (a.skip_single and a.skip_batch):
        data_dir, config, registers = open_installation(a.data_dir, a.residents)
        if not a.skip_single:
            out += bench_single(config, registers, a.samples) + [""]
        if not a.skip_batch:
            out += bench_batch(data_dir, registers, a.batch_rows) + [""]
        registers.dispose()
    if not a.skip_records:
        rdir = a.records_dir or Path(tempfile.mkdtemp(prefix="jukinet-provision-records-"))
        rdir.mkdir(parents=True, exist_ok=True)
        out += bench_records([int(x) for x in a.records.split(",") if x], rdir)
    print("\n".join(out))


if __name__ == "__main__":
    main()
