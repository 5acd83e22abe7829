"""事務3: time per disclosure form (PDF, IPAmj明朝) and the provision-history disclosure (O3) of one person
among many provision-record rows — each next to the bare library / engine doing the same work.
Prints markdown tables.

Usage:
    python bench/disclosure_bench.py [--samples K] [--records M] [--data-dir DIR] [--db-url URL]

1. **Disclosure form** (O1): an installation (SQLite, or with ``--db-url`` a throwaway PostgreSQL
   database dropped at the end; bench/engines.py) with a 外字 person (IVS) and history. Ours:
   :meth:`DisclosureService.disclosure_form` end to end — access check, the form-register entry
   (serial, admin database and its log), the read of current record + history and the register's
   operation-log entry, typesetting with HarfBuzz shaping and the embedded IPAmj subset, the
   register entry closed with SHA-256 and pages. Also: the PDF alone (:mod:`jukinet.disclosure.forms`)
   and bare fpdf2 typesetting the same text the documented way (``add_font`` per document).
   Target < 300 ms.
2. **Provision history** (O3): M rows in the installation's ``provision_records`` (D1), generated in
   SQL by the bare engine (persons drawn from 2,000,000 random digests; a recursive CTE on SQLite,
   ``generate_series`` on PostgreSQL), indexes rebuilt, plus one target person with 25 rows. Ours:
   :meth:`DisclosureService.provisions_form` end to end (both registers' lookups and log entries,
   catalogue names, PDF, form register). Bare: the indexed SELECT of the person's rows with the bare
   driver (``sqlite3`` / ``psycopg``). Target < 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy.schema import CreateIndex

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent / "tests"))
from engines import Bare, Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.keyring import KeyRing  # noqa: E402
from jukinet.provision.records import Digests  # noqa: E402
from jukinet.store.tables_provision import juki_provision_records  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(x):
    return f"{x * 1000:.1f}"


def install(server: Server, data_dir: Path):
    server.installation(data_dir)
    inst = bootstrap(data_dir)
    inst.ensure_default_catalogue()
    inst.config.provision.national_fallback = False
    return inst


def bench_form(svc, samples: int) -> list[str]:
    from fpdf import FPDF

    from disclosure.conftest import KATSURAGI, OP
    from jukinet.disclosure import forms
    from jukinet.disclosure.service import IntakeCommand

    svc.intake(IntakeCommand("juki", "BENCH-1", "葛\U000E0102城𠮷子", "1961-02-03", "2", "名張市丸之内79番地"), OP, "T1")
    svc.disclosure_form("juki", "BENCH-1", OP, "T1", with_history=True)        # warm: font parsed once
    ours, alone, bare = [], [], []
    with svc.registers.juki_uow(write=False) as uow:
        cur, hist = uow.repo.get(KATSURAGI), uow.repo.history_of(KATSURAGI)
    for _ in range(samples):
        t = time.perf_counter()
        svc.disclosure_form("juki", "BENCH-1", OP, "T1", with_history=True)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        forms.disclosure_form("juki", cur, hist, serial="D2026-0000000", prefecture="三重県", request_no="BENCH-1",
                              issued=date.today())
        alone.append(time.perf_counter() - t)
    path = str(forms.font_path())
    for _ in range(max(3, samples // 4)):
        t = time.perf_counter()
        pdf = FPDF()
        pdf.add_font("ipamj", "", path)
        pdf.set_text_shaping(True)
        pdf.add_page()
        pdf.set_font("ipamj", size=10.5)
        for label, value in forms._juki_rows(cur):
            pdf.cell(42, 8, label, border=1)
            pdf.multi_cell(0, 8, value or "", border=1, new_x="LMARGIN", new_y="NEXT")
        bytes(pdf.output())
        bare.append(time.perf_counter() - t)
    lines = ["### Disclosure form (PDF, IPAmj明朝 embedded, HarfBuzz shaping) — target < 300 ms", "",
             "| what | samples | p50 ms | p95 ms | mean ms |", "|---|---:|---:|---:|---:|"]
    for name, xs in (("ours: disclosure_form end to end (register, logs, read, PDF)", ours),
                     ("ours: the PDF alone (forms.disclosure_form)", alone),
                     ("bare fpdf2: add_font per document + same items", bare)):
        lines.append(f"| {name} | {len(xs)} | {ms(pct(xs, 50))} | {ms(pct(xs, 95))} | {ms(statistics.mean(xs))} |")
    return lines


def fill_records(config, registers, m: int, target: str) -> float:
    t = juki_provision_records
    engine = registers.engine("juki")
    registers.dispose()
    t0 = time.perf_counter()
    db = Bare.of(registers, "juki")
    for i in t.indexes:
        db.execute(f"DROP INDEX IF EXISTS {i.name}")
    start = datetime(2019, 12, 1, tzinfo=timezone.utc).timestamp()
    span = 7 * 365 * 86400 - 86400 * 40
    step = 5_000_000
    columns = ("at, operator_id, terminal_id, channel, kind, requester_code, affair_code, purpose_code, key_kind, "
               "keys_digest, person_digest, source, outcome, items, number_included, oplog_seq")
    consts = ("'OP0001', 'T0001', 'terminal', 'provision', 'KOAN', 'KOAN-UNTEN', 'provision', 'juminhyo_code', '{}'")
    if not db.postgres:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000", "temp_store=FILE"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TEMP TABLE pool (id INTEGER PRIMARY KEY, d TEXT)")
        db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
                   "INSERT INTO pool SELECT x, lower(hex(randomblob(16))) FROM c")
    for lo in range(0, m, step):
        n = min(step, m - lo)
        db.execute("BEGIN")
        if db.postgres:     # person digests: md5 of one of 2,000,000 numbers (as random as the SQLite pool)
            db.execute(
                f"INSERT INTO provision_records ({columns}) "
                f"SELECT to_timestamp({start} + floor(random() * {span})), {consts}, "
                "md5((floor(random() * 2000000))::int::text), 'local', 'provided', "
                f"'name,name_kana,birth_date,sex,address', false, x FROM generate_series(1, {n}) AS x")
        else:
            db.execute(
                f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
                f"INSERT INTO provision_records ({columns}) "
                f"SELECT strftime('%Y-%m-%d %H:%M:%f', {start} + abs(random()) % {span}, 'unixepoch'), {consts}, "
                "(SELECT d FROM pool WHERE id = 1 + (abs(random()) + x * 0) % 2000000), 'local', 'provided', "
                "'name,name_kana,birth_date,sex,address', 0, x FROM c")
        db.commit()
        print(f"  … {lo + n:,} rows", file=sys.stderr)
    person = Digests(KeyRing(config.data_dir)).person(target)
    rows = [(datetime.fromtimestamp(start + j * 86400 * 90, timezone.utc), person) for j in range(25)]
    if not db.postgres:
        rows = [(at.strftime("%Y-%m-%d %H:%M:%S.%f"), p) for at, p in rows]
    db.begin_write()
    db.executemany("INSERT INTO provision_records (at, operator_id, terminal_id, channel, kind, requester_code, "
                   "affair_code, purpose_code, key_kind, keys_digest, person_digest, source, outcome, items, "
                   "number_included) VALUES (?, 'OP0001', 'T0001', 'terminal', 'provision', 'KOAN', 'KOAN-UNTEN', "
                   f"'provision', 'juminhyo_code', '{{}}', ?, 'local', 'provided', 'name,address', "
                   f"{'false' if db.postgres else '0'})", rows)
    db.commit()
    for i in t.indexes:
        db.execute(str(CreateIndex(i).compile(engine)))
    db.analyze()
    db.close()
    return time.perf_counter() - t0


def bench_history(config, registers, svc, m: int, samples: int) -> list[str]:
    from disclosure.conftest import KATSURAGI, OP
    from jukinet.disclosure.service import IntakeCommand

    build = fill_records(config, registers, m, KATSURAGI)
    svc.intake(IntakeCommand("juki", "BENCH-2", "葛\U000E0102城𠮷子", "1961-02-03", "2", "名張市丸之内79番地"), OP, "T1")
    ours, bare = [], []
    first = None
    for k in range(samples):
        t = time.perf_counter()
        issued = svc.provisions_form("juki", "BENCH-2", OP, "T1")
        ours.append(time.perf_counter() - t)
        first = first or ours[0]
    person = Digests(KeyRing(config.data_dir)).person(KATSURAGI)
    db = Bare.of(registers, "juki")
    for _ in range(samples):
        t = time.perf_counter()
        n = len(db.execute("SELECT * FROM provision_records WHERE person_digest = ? ORDER BY at, record_id",
                           (person,)).fetchall())
        bare.append(time.perf_counter() - t)
    total = db.execute("SELECT count(*) FROM provision_records").fetchone()[0]
    db.close()
    return ["", f"### Provision history (O3) of one person among {total:,} provision-record rows — target < 1 s", "",
            f"Rows generated by the bare engine in {build:.0f} s; the person has {n} rows; {issued.pages} page(s).", "",
            "| what | samples | first ms | p50 ms | p95 ms |", "|---|---:|---:|---:|---:|",
            f"| ours: provisions_form end to end (both registers, logs, names, PDF, form register) | {samples} | "
            f"{ms(first)} | {ms(pct(ours, 50))} | {ms(pct(ours, 95))} |",
            f"| bare driver: the indexed SELECT of the person's rows | {samples} | {ms(bare[0])} | "
            f"{ms(pct(bare, 50))} | {ms(pct(bare, 95))} |"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--data-dir", type=Path, help="where to create the installation (default: a temporary directory)")
    add_argument(ap)
    a = ap.parse_args()
    from disclosure.conftest import seed
    from jukinet.disclosure.service import DisclosureService

    with tempfile.TemporaryDirectory(prefix="disclosure-bench-") as tmp, Server(a.db_url) as server:
        data = a.data_dir or Path(tmp) / "data"
        inst = install(server, data)
        config, registers = inst.config, inst.registers
        seed(registers)
        svc = DisclosureService(config, registers)
        lines = bench_form(svc, a.samples)
        lines += bench_history(config, registers, svc, a.records, a.samples)
        inst.close()
        version = server.version()
    print(f"{version}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
