"""A4/A2: the monthly access-log analysis and the roster inventory on a busy month; same run, baseline.

Usage: python bench/audit_bench.py [--entries N] [--operators K] [--residents R] [--db-url URL] [--check]

1. A fresh installation (SQLite, or with ``--db-url`` a throwaway PostgreSQL database and its register
   roles, dropped at the end; bench/engines.py) with R residents and K operators, and
   N operation-log entries (default 100,000) spread over last month in the ``juki`` chain, inserted
   directly (search / detail / provision by operators in working hours, plus a few irregularities).
   The analysis reads entries by time and never checks the chain, so direct rows measure the same
   work as appended ones.
2. **jukinet**: ``AuditService.analyse`` (count the month of the three chains in the database,
   compute the surname/address digests of flag d, read the entries a flag may list, run the rules), then ``render`` (PDF + CSV); and
   ``InventoryService.take`` (12 months of log grouped per operator).
3. **Baseline**: the bare engine doing the month's ``SELECT operator_id, action, outcome, count(*)
   … GROUP BY`` — the counts table alone, the least any monthly report must do — and, for the PDF,
   nothing (reported alone). The baseline and the analysis are each timed 3 times, alternately, and
   the best is reported (since ADR 0059; before, one run each); then the analysis' steps once.
4. ``--check``: the rules also run on every entry of the month read as objects (the analysis before
   ADR 0059), timed, and the counts and flags must be the same.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--operators", type=int, default=60)
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--check", action="store_true",
                    help="also run the rules on every entry read as objects (the analysis before ADR 0059), "
                         "timed, and check that it gives the same counts and flags")
    add_argument(ap)
    a = ap.parse_args()

    from sqlalchemy import func, insert, select

    from jukinet.audit import analysis as an
    from jukinet.audit.analysis import JST, closed_day
    from jukinet.audit.inventory import InventoryService
    from jukinet.audit.service import previous_month
    from jukinet.bootstrap import bootstrap
    from jukinet.security.oplog import Actor
    from jukinet.store.tables import juki_current
    from jukinet.store.tables_security import OPLOG

    rnd = random.Random(4)
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp, Server(a.db_url) as server:
        data = server.installation(Path(tmp) / "data", a.residents, 2)
        inst = bootstrap(data)
        config, registers = inst.config, inst.registers
        sec = inst.security
        surnames = ["伊藤", "田中", "佐藤", "鈴木", "高橋", "中村", "小林", "加藤"]
        ops = []
        for i in range(a.operators):
            op, _ = sec.register_operator(Actor("bootstrap", None), display_name=f"{surnames[i % 8]}　職員{i}",
                                          roles=["operator"], registers=["juki"], affairs=["search", "provision"],
                                          operator_id=f"OP{i:04d}")
            ops.append(op.operator_id)
        with registers.juki_uow(write=False) as uow:
            codes = list(uow.conn.execute(select(juki_current.c.juminhyo_code)).scalars())
        month = previous_month()
        days = []
        d = month.first_day
        while d <= month.last_day:
            if closed_day(d) is None:
                days.append(d)
            d += timedelta(days=1)
        log, _ = OPLOG["juki"]
        dig = sec.oplog.digest
        digests = {c: dig("juminhyo_code", c) for c in rnd.sample(codes, min(len(codes), 5000))}
        pool = list(digests.values())
        rows, seq = [], 0
        t0 = time.perf_counter()
        while seq < a.entries:
            seq += 1
            day = rnd.choice(days)
            hh = rnd.choice(range(9, 17)) if rnd.random() > 0.0005 else 22
            at = datetime.combine(day, dtime(hh, rnd.randrange(60), rnd.randrange(60)), JST).astimezone(timezone.utc)
            act = rnd.choices(["search", "detail", "provision"], [4, 3, 2])[0]
            keys = {"juminhyo_code": rnd.choice(pool)} if act != "search" else {"name": dig("name", str(seq))}
            rows.append(dict(seq=seq, at=at, operator_id=rnd.choice(ops), terminal_id="T0001", action=act,
                             outcome="granted" if rnd.random() > 0.001 else "refused", purpose_code="inquiry",
                             case_ref=None, keys=json.dumps(keys), result_count=rnd.randint(0, 5),
                             detail="{}", prev_hash="0" * 64, entry_hash="0" * 64))
            if len(rows) == 20_000:
                with registers.juki_uow() as uow:
                    uow.conn.execute(insert(log), rows)
                rows = []
        if rows:
            with registers.juki_uow() as uow:
                uow.conn.execute(insert(log), rows)
        fill = time.perf_counter() - t0
        svc = inst.audit

        def bare():
            with registers.engine("juki").connect() as conn:
                return conn.execute(select(log.c.operator_id, log.c.action, log.c.outcome, func.count())
                                    .where(log.c.at >= month.start_utc, log.c.at < month.end_utc)
                                    .group_by(log.c.operator_id, log.c.action, log.c.outcome)).all()

        # best of 3, alternately (both see the same cache and load)
        t_base = t_analyse = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            base = bare()
            t_base = min(t_base, time.perf_counter() - t0)
            t0 = time.perf_counter()
            analysis, _names = svc.analyse(month)
            t_analyse = min(t_analyse, time.perf_counter() - t0)
        # where the time of the counted analysis goes (the same steps as AuditService.analyse)
        steps, t0 = {}, time.perf_counter()
        mlog = svc.month_log(month)
        groups = mlog.groups()
        steps["GROUP BY per chain, JST day"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        names = svc.roster_names()
        related = svc.related(names, {g.operator_id for g in groups})
        steps["flag-d digests (persons sharing each 氏)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        found = mlog.found(groups, svc.rules, related)
        steps["entries a flag may list, read as objects"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        an.analyse_grouped(groups, found, svc.rules, related)
        steps["rules on them"] = time.perf_counter() - t0
        n_read = len({(e.chain, e.seq) for es in (found.refused, found.off_hours, found.days, found.repeats,
                                                   found.related) for e in es})
        t_old = None
        if a.check:
            t0 = time.perf_counter()
            entries = svc.entries(month)
            old = an.analyse(entries, svc.rules, svc.related(names, {e.operator_id for e in entries}))
            t_old = time.perf_counter() - t0
            del entries
            flags = lambda x: [(f.no, f.kind, f.operator_id, f.day, f.reason, [(e.chain, e.seq) for e in f.entries])
                               for f in x.flags]
            assert flags(old) == flags(analysis) and old.counts == analysis.counts and old.entries == analysis.entries
            del old
        t0 = time.perf_counter()
        _a, _n, pdf, csv = svc.render(month)
        t_render = time.perf_counter() - t0
        inv = InventoryService(config, registers, sec.oplog)
        t0 = time.perf_counter()
        taken = inv.take()
        t_inv = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        inst.close()
        version = server.version()
    assert sum(r[3] for r in base) == a.entries
    print(f"{version}, {a.entries:,} entries, {a.operators} operators, "
          f"{a.residents:,} residents; fill {fill:.1f} s; load {os.getloadavg()[0]:.2f}; peak RSS {rss:.0f} MB")
    print(f"flags {analysis.flag_counts()}; PDF {len(pdf) / 1024:.0f} KiB, CSV {len(csv) / 1024:.0f} KiB; "
          f"inventory findings {len(taken.findings)}")
    print(f"entries read as objects: {n_read:,} of {a.entries:,}; flagged entries "
          f"{len({(e.chain, e.seq) for f in analysis.flags for e in f.entries}):,}")
    print("| step | jukinet | bare GROUP BY | ratio |\n|---|---:|---:|---:|")
    print(f"| analyse the month (count 3 chains, flag-d digests, read the flagged entries, rules) | {t_analyse:.2f} s | "
          f"{t_base:.2f} s | {t_analyse / t_base:.1f}× |")
    for step, t in steps.items():
        print(f"| — {step} | {t:.2f} s | | |")
    if t_old is not None:
        print(f"| the same analysis from every entry as objects (before ADR 0059; checked equal) | {t_old:.2f} s | "
              f"{t_base:.2f} s | {t_old / t_base:.1f}× |")
    print(f"| analyse + PDF + CSV (`jukinet audit report`) | {t_render:.2f} s | {t_base:.2f} s | {t_render / t_base:.1f}× |")
    print(f"| roster inventory (12 months, {a.operators} operators) | {t_inv:.2f} s | {t_base:.2f} s | "
          f"{t_inv / t_base:.1f}× |")


if __name__ == "__main__":
    main()
