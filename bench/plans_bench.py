"""Query plans of the hot queries on a seeded PostgreSQL installation at scale (issue 16, Q1).

    .venv/bin/python bench/plans_bench.py --data-dir DIR [--samples 20]

``tests/store/test_q1_query_plans.py`` pins the plans on ≈75,000 rows in every ``make test``; this
bench asks the same questions of a real installation — e.g. 東京都 seeded with 14.0 million residents
(``jukinet seed --prefecture 13 --residents 14000000``) — where the statistics are those of the
national-scale tables. For each hot query it runs the **real code path** (the repository, the search
service, the provision history, the monthly analysis, the statement ``run_check`` executes for the
largest municipality), records the SELECTs it sends and asks PostgreSQL ``EXPLAIN (ANALYZE,
BUFFERS, FORMAT JSON)`` for each on ``--samples`` random persons: which index the plan uses, whether
any big table is read sequentially, and the server-side execution time (p50 / max).

Baseline in the same run: the same statement with index and bitmap scans switched off for it
(``SET LOCAL enable_indexscan/enable_bitmapscan/enable_indexonlyscan = off``), i.e. what the query
would cost without its index — timed on 1 sample (a full scan of a 14M-row table takes seconds).
Prints a markdown table for bench/RESULTS.md. PostgreSQL only (SQLite's plans are pinned by the tests
with ``EXPLAIN QUERY PLAN``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from jukinet.audit.service import Month
from jukinet.bootstrap import bootstrap
from jukinet.provision.records import provisions_for_person
from jukinet.reconcile.service import _server_query
from jukinet.search.service import SearchCommand, search
from jukinet.security.oplog import Actor
from jukinet.store.plans import captured
from jukinet.store.plans import explain as explain_plan

BIG = ("juki_current", "juki_history", "provision_records", "oplog", "fuhyo_current", "fuhyo_history")


def explain(engine, statement: str, parameters, *, indexes: bool = True) -> tuple[list[dict], float]:
    """The executed plan's nodes and its execution time in ms (server side)."""
    return explain_plan(engine, statement, parameters, analyze=True, indexes=indexes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=20)
    a = ap.parse_args()

    with bootstrap(a.data_dir) as inst:
        regs = inst.registers
        engine = regs.juki_engine
        if engine.dialect.name != "postgresql":
            sys.exit("plans_bench: PostgreSQL only")
        with engine.connect() as c:
            sizes = dict(c.execute(text(
                "SELECT relname, reltuples::bigint FROM pg_class WHERE relnamespace = 'juki'::regnamespace "
                "AND relname IN ('juki_current', 'juki_history', 'provision_records', 'oplog')")).all())
            version = c.execute(text("SHOW server_version")).scalar_one().split()[0]
            t = time.perf_counter()
            share = min(100.0, 100.0 * a.samples * 20 / max(sizes.get("juki_current", 1), 1))
            codes = [r[0] for r in c.execute(text(
                f"SELECT juminhyo_code FROM juki_current TABLESAMPLE BERNOULLI ({share:.6f}) "
                "WHERE kojin_bango_bi IS NOT NULL AND NOT deleted ORDER BY random() LIMIT :n"), {"n": a.samples})]
            largest, largest_n = c.execute(text(
                "SELECT municipality_code, count(*) FROM juki_current WHERE NOT deleted "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 1")).one()
            print(f"samples drawn, largest municipality {largest} ({largest_n:,}) in "
                  f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
            months = c.execute(text("SELECT min(at), max(at) FROM oplog")).one()
        with regs.juki_uow(write=False) as uow:
            persons = [uow.repo.get(code) for code in codes]

        actor = Actor("PLANS", "T0001")
        kinds = {
            "lookup by 住民票コード": lambda p: regs_uow(regs, lambda u: u.repo.get(p.juminhyo_code)),
            "lookup by 個人番号 (blind index)": lambda p: regs_uow(regs, lambda u: u.repo.by_kojin_bango(p.kojin_bango)),
            "4情報: kana prefix + 生年月日": lambda p: search(SearchCommand(
                purpose_code="audit", registers=("juki",), birth_from=p.birth_date, birth_to=p.birth_date,
                name=p.name_kana.replace("\u3000", "")[:3], name_match="prefix"), regs, inst.oplog, actor),
            "4情報: 漢字氏名 + 生年月日": lambda p: search(SearchCommand(
                purpose_code="audit", registers=("juki",), birth_from=p.birth_date, birth_to=p.birth_date,
                name=p.name), regs, inst.oplog, actor),
            "provision history of a person (P5/O3)": lambda p: regs_uow(
                regs, lambda u: provisions_for_person(u, p.juminhyo_code, keyring=inst.keyring)),
        }
        rows = []
        for label, run in kinds.items():
            per_table: dict[str, list] = {}
            baseline = None
            for i, person in enumerate(persons):
                with captured(engine) as got:
                    run(person)
                for s, params in got:
                    table = next((t for t in BIG if re.search(rf"FROM {t}\b", s)), None)
                    if table is None:
                        continue
                    nodes, ms = explain(engine, s, params)
                    rec = per_table.setdefault(table, [set(), [], False])
                    rec[0] |= {n["Index Name"] for n in nodes if n.get("Index Name")}
                    rec[1].append(ms)
                    rec[2] |= any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") in BIG for n in nodes)
                    if i == 0 and baseline is None and table in ("juki_current", "provision_records"):
                        baseline = explain(engine, s, params, indexes=False)[1]
            for table, (idx, times, seq) in per_table.items():
                rows.append((label, table, ", ".join(sorted(idx)) or "—", "yes" if seq else "no",
                             statistics.median(times), max(times), len(times), baseline))
                baseline = None

        # the statement run_check executes for the largest municipality (one run: it reads them all)
        compiled = _server_query("juki", largest, datetime.now(timezone.utc)).compile(
            dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
        nodes, ms = explain(engine, str(compiled), compiled.params)
        rows.append((f"consistency check: all current persons of {largest} ({largest_n:,})", "juki_current",
                     ", ".join(sorted({n["Index Name"] for n in nodes if n.get("Index Name")})) or "—",
                     "yes" if any(n["Node Type"] == "Seq Scan" for n in nodes) else "no", ms, ms, 1, None))
        if months[0] is not None:
            last = months[1]
            with captured(engine) as got:
                inst.audit.entries(Month(last.year, last.month))
            for s, params in got:
                if re.search(r"FROM oplog\b", s):
                    nodes, ms = explain(engine, s, params)
                    rows.append(("monthly analysis: one month of the operation log", "oplog",
                                 ", ".join(sorted({n["Index Name"] for n in nodes if n.get("Index Name")})) or "—",
                                 "yes" if any(n["Node Type"] == "Seq Scan" for n in nodes) else "no", ms, ms, 1,
                                 None))

    print(f"\nPostgreSQL {version}; planner's rows: "
          + ", ".join(f"{t} {n:,}" for t, n in sorted(sizes.items())) + f"; {len(persons)} random persons\n")
    print("| query (real code path) | table | index(es) in the executed plan | seq scan of a big table "
          "| execution p50 ms | max ms | statements | same statement without indexes ms |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for label, table, idx, seq, p50, mx, n, base in rows:
        print(f"| {label} | {table} | {idx} | {seq} | {p50:.2f} | {mx:.2f} | {n} | "
              + (f"{base:,.0f}" if base is not None else "") + " |")


def regs_uow(regs, fn):
    with regs.juki_uow(write=False) as uow:
        return fn(uow)


if __name__ == "__main__":
    main()
