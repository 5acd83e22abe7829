"""Consistency check (C1) of the whole prefecture: jukinet vs ``sort | join`` on the same data, same run.

Usage: python bench/reconcile_bench.py [--db-url URL] [--data-dir DIR] [--residents N]
                                       [--register juki|fuhyo] [--inject PER_MILLE] [--work DIR]
                                       [--municipality CODE ...]

With --data-dir pointing at a seeded installation (either engine) it measures there; otherwise it
seeds N residents (default 1,741,266) with ``jukinet.seed.populate`` into a fresh installation —
SQLite files, or with ``--db-url`` a throwaway PostgreSQL database (dropped at the end;
bench/engines.py). The baseline (``sort | join`` on text exports) is the same for either engine.

1. **Prepare** (not timed): for each municipality of the installation's prefecture (or only those named by
   ``--municipality``, e.g. 131121 世田谷区 of 東京都), the CS's snapshot
   (``jukinet.snapshot/1``, built from the register with ``--inject`` differences per mille: altered
   住所, missing persons, invented persons), and for the baseline the same two data sets as
   tab-separated text — ``住民票コード<TAB>the compared items`` — one file from the snapshot, one
   exported from the register.
2. **jukinet**: the checks one after another (``jukinet.reconcile.run_check``: parse and validate
   every line, read the register through its index, merge, store the run and the differences), in a
   child process so that its peak RSS is the check's alone.
3. **Baseline**: per municipality, ``sort`` both text files, ``join -a1 -a2 -v``-style full outer
   join, and ``awk`` to classify matched / only left / only right / differing — the physical minimum
   of a sort-merge over the same bytes, with GNU coreutils (``LC_ALL=C``), also in child processes
   (peak RSS from ``/usr/bin/time``).

Prints a markdown table with time, peak RSS and the ratio, and checks that both found the same
number of differences.

``--before DIR`` (ADR 0058) also measures the jukinet source tree in ``DIR/src`` (e.g. an export of
an earlier commit: ``git archive COMMIT | tar -x -C DIR``) on the same snapshots in the same run,
its child process importing that tree instead of this one; ``--repeat N`` runs every measurement N
times, alternating, and keeps the fastest; a per-municipality table then gives both and the
baseline side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402

SEP = "\x1f"  # unit separator inside the compared-items field


def _registers(data_dir: Path):
    return bootstrap(data_dir).registers   # the caller disposes them


def _tsv(values) -> str:
    return SEP.join("" if v is None else (f"{v[0]}/{v[1]}" if isinstance(v, tuple) else str(v)) for v in values)


def prepare(data_dir: Path, work: Path, register: str, per_mille: float,
            only: list[str] | None = None) -> list[dict]:
    """Snapshots and the baseline's text files, per municipality of the installation's prefecture
    (``only``: just these 団体コード, e.g. the largest municipality of a big prefecture)."""
    from jukinet.config import Config
    from jukinet.geo.places import municipalities
    from jukinet.reconcile.service import _opened, _server_query, _server_values
    from jukinet.store.atrest import cipher_of
    from jukinet.reconcile.simulate import build_snapshot
    from jukinet.reconcile.snapshot import SnapshotReader

    registers = _registers(data_dir)
    out = []
    prefecture = Config.load(data_dir).prefecture_code
    for m in municipalities(prefecture):
        if only and m.code not in only:
            continue
        snap = work / f"{m.code}.{register}.jsonl"
        with registers.engine(register).connect() as c:
            from sqlalchemy import func, select
            n = c.execute(select(func.count()).select_from(
                _server_query(register, m.code, sealed=True).order_by(None).subquery())).scalar_one()
        inject = int(n * per_mille / 1000)
        with open(snap, "wb") as f:
            injected = build_snapshot(registers, register, m.code, f, inject=inject, seed=1)
        # the same two data sets as plain text for sort | join
        left = work / f"{m.code}.{register}.cs.tsv"
        with open(snap, "rb") as f, open(left, "w", encoding="utf-8") as o:
            r = SnapshotReader(f, register=register, municipality_code=m.code)
            for rec in r:
                o.write(f"{rec.juminhyo_code}\t{_tsv(rec.values)}\n")
        right = work / f"{m.code}.{register}.server.tsv"
        with registers.engine(register).connect() as c, open(right, "w", encoding="utf-8") as o:
            cipher = cipher_of(c) if register == "juki" else None   # 個人番号 sealed at rest (ADR 0025)
            for row in c.execution_options(stream_results=True, yield_per=5000).execute(
                    _server_query(register, m.code, sealed=True)):
                o.write(f"{row[0]}\t{_tsv(_server_values(register, _opened(register, row, cipher)))}\n")
        out.append({"code": m.code, "name": m.name, "persons": n, "snapshot": str(snap), "left": str(left),
                    "right": str(right), "injected": injected, "bytes": snap.stat().st_size})
        print(f"  {m.code} {m.name}: {n:,} persons, {inject} injected", file=sys.stderr)
    registers.dispose()
    return out


def run_ours(data_dir: Path, register: str, plan: list[dict]) -> dict:
    """(child process) the checks of the plan; prints JSON with seconds, differences and peak RSS."""
    from jukinet.reconcile import run_check

    import threading

    anon = [0]
    done = threading.Event()

    def sample():  # private (anonymous) memory, apart from the register's mapped file pages
        while not done.wait(0.05):
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    anon[0] = max(anon[0], int(line.split()[1]))

    threading.Thread(target=sample, daemon=True).start()
    registers = _registers(data_dir)
    per = []
    t0 = time.perf_counter()
    for p in plan:
        t = time.perf_counter()
        with open(p["snapshot"], "rb") as f:
            res = run_check(registers, register, p["code"], f, trigger="cli")
        per.append({"code": p["code"], "seconds": time.perf_counter() - t, "differences": res.differences,
                    "matched": res.matched})
    total = time.perf_counter() - t0
    done.set()
    registers.dispose()
    return {"seconds": total, "per": per, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "anon_kib": anon[0]}


AWK = ("BEGIN{FS=\"\\t\"} NF==3 && $2==$3 {m++; next} NF==3 {d++; next} "
       "{o++} END{print m+0, d+0, o+0}")


def run_baseline(plan: list[dict], work: Path) -> dict:
    env = {**os.environ, "LC_ALL": "C"}
    t0 = time.perf_counter()
    maxrss = 0
    diffs = 0
    per = []
    for p in plan:
        t = time.perf_counter()
        ls, rs = work / "l.sorted", work / "r.sorted"
        for src, dst in ((p["left"], ls), (p["right"], rs)):
            r = subprocess.run(["/usr/bin/time", "-f", "%M", "sort", "-t", "\t", "-k1,1", "-o", str(dst), src],
                               env=env, capture_output=True, text=True, check=True)
            maxrss = max(maxrss, int(r.stderr.strip().splitlines()[-1]))
        # full outer join on the code: matched lines have 3 fields; left/right-only lines have 2
        cmd = (f"/usr/bin/time -f %M -o {work}/join.rss join -t \"$(printf '\\t')\" -a1 -a2 {ls} {rs} "
               f"| awk '{AWK}'")
        r = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, check=True)
        m, d, o = (int(x) for x in r.stdout.split())
        diffs += d + o
        maxrss = max(maxrss, int((work / "join.rss").read_text().strip().splitlines()[-1]))
        per.append({"code": p["code"], "seconds": time.perf_counter() - t, "differences": d + o})
    return {"seconds": time.perf_counter() - t0, "differences": diffs, "maxrss_kib": maxrss, "per": per}


def run_child(data_dir: Path, register: str, work: Path, src: Path | None = None) -> dict:
    """The checks of the plan in a child process; ``src``: measure that jukinet source tree instead."""
    env = dict(os.environ)
    if src is not None:  # this tree reaches the child through the venv's .pth, after PYTHONPATH
        env["PYTHONPATH"] = str(src / "src")
    r = subprocess.run([sys.executable, __file__, "--data-dir", str(data_dir), "--register", register,
                        "--child", str(work / "plan.json")], capture_output=True, text=True, check=True, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])


def fastest(runs: list[dict]) -> dict:
    """Per municipality the fastest of the runs; the totals of the fastest run overall."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["per"] = [min((r["per"][i] for r in runs), key=lambda p: p["seconds"]) for i in range(len(runs[0]["per"]))]
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--residents", type=int, default=1_741_266)
    ap.add_argument("--register", default="juki", choices=["juki", "fuhyo"])
    ap.add_argument("--inject", type=float, default=1.0, help="differences per mille of each municipality")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--municipality", action="append", default=None,
                    help="only this 団体コード (repeatable), e.g. 131121 世田谷区; default: every municipality")
    ap.add_argument("--before", type=Path, default=None,
                    help="also measure the jukinet source tree in DIR/src (an earlier commit), same data, same run")
    ap.add_argument("--repeat", type=int, default=1, help="run each measurement N times (alternating), keep the fastest")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    add_argument(ap)
    a = ap.parse_args()

    if a.child is not None:  # the measured child: run the checks of the plan
        plan = json.loads(a.child.read_text())
        print(json.dumps(run_ours(a.data_dir, a.register, plan)))
        return

    with tempfile.TemporaryDirectory(prefix="jukinet-reconcile-bench-") as tmp, Server(a.db_url) as server:
        data_dir = a.data_dir or server.installation(Path(tmp) / "data", a.residents)
        measure(a, data_dir, a.work or Path(tmp) / "work", server.version() if not a.data_dir else "")


def measure(a, data_dir: Path, work: Path, version: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    print(f"preparing snapshots and text exports in {work} …", file=sys.stderr)
    plan = prepare(data_dir, work, a.register, a.inject, a.municipality)
    (work / "plan.json").write_text(json.dumps(plan))
    persons = sum(p["persons"] for p in plan)
    size = sum(p["bytes"] for p in plan)

    runs: dict[str, list] = {"before": [], "ours": [], "base": []}
    for i in range(a.repeat):
        if a.before is not None:
            print(f"jukinet before ({a.before}): {len(plan)} checks …", file=sys.stderr)
            runs["before"].append(run_child(data_dir, a.register, work, a.before))
        print(f"jukinet: {len(plan)} checks …", file=sys.stderr)
        runs["ours"].append(run_child(data_dir, a.register, work))
        print("baseline: sort | join | awk …", file=sys.stderr)
        runs["base"].append(run_baseline(plan, work))
    ours, base = fastest(runs["ours"]), fastest(runs["base"])
    before = fastest(runs["before"]) if runs["before"] else None

    ours_diff = sum(p["differences"] for p in ours["per"])
    injected = sum(p["injected"]["differs"] + p["injected"]["only_on_server"] + p["injected"]["only_in_snapshot"]
                   for p in plan)
    largest = max(ours["per"], key=lambda p: next(q["persons"] for q in plan if q["code"] == p["code"]))
    lp = next(q for q in plan if q["code"] == largest["code"])
    print()
    print(f"Consistency check ({a.register}, {version}): {persons:,} current persons in {len(plan)} "
          f"municipalities, snapshots {size / 1e6:,.0f} MB, {injected:,} injected differences; "
          f"{os.cpu_count()} cores.")
    print()
    print(f"| | jukinet (`run_check` × {len(plan)}) | `sort \\| join \\| awk` (same data, text) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| time, {'whole prefecture' if not a.municipality else 'these municipalities'} | {ours['seconds']:.1f} s | {base['seconds']:.1f} s | "
          f"{ours['seconds'] / base['seconds']:.1f}× |")
    print(f"| persons per second | {persons / ours['seconds']:,.0f} | {persons / base['seconds']:,.0f} | |")
    print(f"| peak RSS | {ours['maxrss_kib'] / 1024:.0f} MB | {base['maxrss_kib'] / 1024:.0f} MB | "
          f"{ours['maxrss_kib'] / base['maxrss_kib']:.1f}× |")
    print(f"| of which private (not the register's mapped file pages) | {ours['anon_kib'] / 1024:.0f} MB | | |")
    print(f"| largest municipality ({lp['name']}, {lp['persons']:,}) | {largest['seconds']:.1f} s | | |")
    print(f"| differences found | {ours_diff:,} | {base['differences']:,} | |")
    ok = ours_diff == injected == base["differences"]
    print()
    print(f"Differences: injected {injected:,}, jukinet {ours_diff:,}, baseline {base['differences']:,} — "
          + ("agree." if ok else "DISAGREE."))
    print()
    head = "| municipality | persons |" + (" jukinet before | ratio |" if before else "") + \
        " jukinet | ratio | `sort \\| join \\| awk` | µs/person (jukinet) |"
    print(head)
    print("|---|---:|" + ("---:|---:|" if before else "") + "---:|---:|---:|---:|")
    for i, p in enumerate(plan):
        o, b = ours["per"][i], base["per"][i]
        cells = [f"{p['code']} {p['name']}", f"{p['persons']:,}"]
        if before:
            w = before["per"][i]
            cells += [f"{w['seconds']:.2f} s", f"{w['seconds'] / b['seconds']:.1f}×"]
            ok = ok and w["differences"] == o["differences"]
        cells += [f"{o['seconds']:.2f} s", f"{o['seconds'] / b['seconds']:.1f}×", f"{b['seconds']:.2f} s",
                  f"{o['seconds'] / p['persons'] * 1e6:.1f}"]
        print("| " + " | ".join(cells) + " |")
    if before:
        print()
        print(f"Before: {before['seconds']:.1f} s in all, peak RSS {before['maxrss_kib'] / 1024:.0f} MB; "
              f"differences {sum(p['differences'] for p in before['per']):,}"
              + ("" if ok else " — DISAGREE with this tree") + f". Best of {a.repeat}.")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
