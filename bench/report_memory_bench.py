"""A4 / issue 17: resident memory of the monthly analysis made again and again in one process; baselines.

Usage: python bench/report_memory_bench.py [--entries N] [--reports K] [--residents R] [--db-url URL]

The soak (``bench/soak_bench.py``) saw ``jukinet serve`` grow a step at every monthly analysis. The
server makes a report on whichever of its worker threads takes the request, and each thread keeps
its own malloc arena (glibc) and its own matplotlib fonts; a thread that made a report kept that
report's high-water mark. This bench reproduces that in one process, without the rest of the load:

1. A fresh installation (SQLite, or with ``--db-url`` a throwaway PostgreSQL database, dropped at the
   end; bench/engines.py) with R residents, 10 operators and N operation-log entries of the current
   month in the ``juki`` chain (lookups and provisions; inserted directly, as ``audit_bench`` does —
   the analysis reads entries by time and never checks the chain).
2. Each measurement runs in a process of its own on that installation and makes the month's report
   (``AuditService.generate``: read the month, analyse, PDF with chart, CSV, digest, checkpoint) K
   times, sampling VmRSS after each:

   * **jukinet, a new thread each time** — every report requested from a different thread that stays
     alive, as the server's worker threads do;
   * **baseline: before the fix** — the same, with the report made on the requesting thread and the
     whole IPAゴシック font parsed by fpdf2 for every report (how ``jukinet serve`` made it before
     ADR 0046; the compact log entries stay);
   * **baseline: one thread** — jukinet with every report requested from the same thread (the floor:
     no thread effect at all).

Goal: with jukinet, over the second half of the reports (the first ones still warm caches up), the
resident memory grows by less than 0.5 MiB a report — as flat as the one-thread floor, whatever thread
asks. Only counts and sizes are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument, engine_name  # noqa: E402

from jukinet.audit import report  # noqa: E402
from jukinet.audit import service as audit_service  # noqa: E402
from jukinet.audit.service import JST, Month  # noqa: E402
from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.security.oplog import Actor  # noqa: E402

MODES = {
    "jukinet": "jukinet, a new thread each time",
    "before": "baseline: before the fix (whole font each report, on the requesting thread)",
    "one-thread": "baseline: one thread (the floor)",
}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def this_month() -> Month:
    now = datetime.now(JST)
    return Month(now.year, now.month)


def fill(data: Path, entries: int) -> None:
    """Operators and ``entries`` log entries of the current month (before now) in the juki chain."""
    from sqlalchemy import func, insert, select

    from jukinet.store.tables_security import OPLOG

    rnd = random.Random(17)
    with bootstrap(data) as inst:
        sec = inst.security
        ops = []
        for i in range(10):
            op, _ = sec.register_operator(Actor("bench", None), display_name=f"伊藤　職員{i}", roles=["operator"],
                                          registers=["juki"], affairs=["search", "provision"],
                                          operator_id=f"OP{i:04d}")
            ops.append(op.operator_id)
        month = this_month()
        now = datetime.now(timezone.utc)
        span = int((min(now, month.end_utc) - month.start_utc).total_seconds()) - 1
        log, _ = OPLOG["juki"]
        dig = sec.oplog.digest
        with inst.registers.engine("juki").connect() as conn:
            seq = conn.execute(select(func.max(log.c.seq))).scalar() or 0
        rows = []
        for _ in range(entries):
            seq += 1
            act = rnd.choices(["search", "detail", "provision"], [4, 3, 2])[0]
            keys = ({"juminhyo_code": dig("juminhyo_code", f"{rnd.randrange(4000):011d}")} if act != "search"
                    else {"name": dig("name", str(seq))})
            rows.append(dict(seq=seq, at=month.start_utc + timedelta(seconds=rnd.randrange(span)),
                             operator_id=rnd.choice(ops), terminal_id="T0001", action=act, outcome="granted",
                             purpose_code="inquiry", case_ref=None, keys=json.dumps(keys),
                             result_count=rnd.randint(0, 5), detail="{}", prev_hash="0" * 64, entry_hash="0" * 64))
            if len(rows) == 10_000:
                with inst.registers.juki_uow() as uow:
                    uow.conn.execute(insert(log), rows)
                rows = []
        if rows:
            with inst.registers.juki_uow() as uow:
                uow.conn.execute(insert(log), rows)


def child(data: Path, mode: str, reports: int) -> None:
    """Make the month's report ``reports`` times in this process; print one JSON line of samples."""
    if mode == "before":
        # how the report was made before ADR 0046: fpdf2 parses the whole font for every report, and the
        # report is made on the thread that asks for it
        report._subset_font = lambda doc, path, texts: report.TTFFont(doc, path, "gothic", "")
        audit_service.on_report_thread = lambda fn, *a, **kw: fn(*a, **kw)
    inst = bootstrap(data)
    svc, month, actor = inst.audit, this_month(), Actor("OP0000", None)
    keep: list[threading.Event] = []
    samples, seconds = [rss_mib()], []
    for _ in range(reports):
        t = time.perf_counter()
        if mode == "one-thread":
            svc.generate(actor, month)
        else:                              # a thread of its own that stays alive, as a server worker does
            done, release, failed = threading.Event(), threading.Event(), []

            def work():
                try:
                    svc.generate(actor, month)
                except BaseException as e:  # noqa: BLE001 - reported by the parent
                    failed.append(repr(e))
                done.set()
                release.wait()
            threading.Thread(target=work, daemon=True).start()
            done.wait()
            keep.append(release)
            if failed:
                raise SystemExit(failed[0])
        seconds.append(time.perf_counter() - t)
        samples.append(rss_mib())
    g = svc.generate(actor, month)
    print(json.dumps({"rss": samples, "seconds": seconds, "entries": g.analysis.entries,
                      "flags": len(g.analysis.flags), "pdf_kib": len(g.pdf) / 1024}))
    for r in keep:
        r.set()
    inst.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--reports", type=int, default=8)
    ap.add_argument("--residents", type=int, default=2_000)
    ap.add_argument("--child", nargs=2, metavar=("DATA_DIR", "MODE"), help=argparse.SUPPRESS)
    add_argument(ap)
    a = ap.parse_args()
    if a.child:
        child(Path(a.child[0]), a.child[1], a.reports)
        return

    with tempfile.TemporaryDirectory(prefix="report-memory-bench-") as tmp, Server(a.db_url) as server:
        data = server.installation(Path(tmp) / "data", a.residents, 2)
        t = time.perf_counter()
        fill(data, a.entries)
        print(f"{engine_name(a.db_url)}: {a.entries:,} entries of {this_month().key} in "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        results = {}
        for mode in MODES:
            r = subprocess.run([sys.executable, __file__, "--child", str(data), mode, "--reports", str(a.reports)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            if r.returncode != 0:
                raise SystemExit(f"{mode} failed: {r.stderr[-2000:]}")
            results[mode] = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"  {mode}: RSS " + " → ".join(f"{x:.0f}" for x in results[mode]["rss"]) + " MiB", file=sys.stderr)
        version = server.version()

    any_r = next(iter(results.values()))
    print(f"\n### Monthly analysis made {a.reports} times in one process — {version}, {any_r['entries']:,} entries, "
          f"{any_r['flags']:,} flags, PDF {any_r['pdf_kib']:.0f} KiB; load average {os.getloadavg()[0]:.1f}\n")
    half = a.reports // 2
    print(f"| run | RSS before / after 1st / after {half} / after {a.reports} (MiB) | growth, 1st → last | "
          f"per report, 2nd half | report p50 (s) |")
    print("|---|---:|---:|---:|---:|")

    def per_report(s: list[float]) -> float:
        return (s[-1] - s[half]) / max(1, a.reports - half)
    for mode, label in MODES.items():
        s = results[mode]["rss"]
        secs = sorted(results[mode]["seconds"])
        print(f"| {label} | {s[0]:.0f} / {s[1]:.0f} / {s[half]:.0f} / {s[-1]:.0f} | {s[-1] - s[1]:+.1f} MiB | "
              f"{per_report(s):+.2f} MiB | {secs[len(secs) // 2]:.2f} |")
    per = per_report(results["jukinet"]["rss"])
    print(f"\nGoal (jukinet: under 0.5 MiB a report over the second half, whatever thread asks): "
          f"{'met' if per < 0.5 else 'NOT met'} ({per:+.2f} MiB a report).")


if __name__ == "__main__":
    main()
