"""How the seed grows with the population: ``jukinet seed`` at several sizes next to the bare engine.

    .venv/bin/python bench/seed_growth.py --sizes 20000,100000 [--db-url URL] [--chart bench/seed_growth.png]

For each size N (current residents; plus 25% removed persons, history and the 附票 — about 3.1 rows
per resident), in a fresh child process each, so that its peak RSS is its own:

* **populate** — ``populate`` into a fresh installation (``jukinet init`` in-process; SQLite files or,
  with ``--db-url``, a throwaway PostgreSQL database with its register roles, bench/engines.py):
  generation + the engine's fast path (COPY on PostgreSQL, executemany on SQLite, secondary indexes
  after the load; issue 16), exactly what ``jukinet seed`` does.
* **bare** — the same rows, generated batch by batch as the seed does, loaded by the bare driver
  (``COPY … FROM STDIN`` on PostgreSQL, ``sqlite3`` ``executemany`` with the seed's pragmas on
  SQLite) into tables created from the same SQLAlchemy metadata (same columns and indexes, indexes
  in place), one transaction per batch and register. Its time is split into generation (the same
  generator) and loading, so "bare" is the floor a seed can reach with this generator.

Recorded per size: seconds, rows/s, database size on disk (the juki and fuhyo register databases:
file sizes after the final checkpoint on SQLite, ``pg_database_size`` on PostgreSQL) and peak RSS of
the child. Prints a markdown table, a linear fit (seconds = a + b·rows) with the extrapolation to
三重県 1.8M and 東京都 14.0M residents, and writes a PNG chart (matplotlib, the project's chart
font). Results of earlier runs are kept in ``--json`` (default bench/seed_growth.json, one entry per
engine and size) so that one chart shows both engines.

A full-size run of the CLI (``/usr/bin/time -v jukinet seed --residents 14000000 --prefecture 13``,
too long to repeat here) is added to the chart as a measured point with

    .venv/bin/python bench/seed_growth.py --record-run DATA_DIR --seconds S --rss-mib M [--load L]

which reads the residents, rows and size on disk from that installation (its engine, from its
config) and keeps them under ``"_runs"`` in the JSON; the chart marks them with a star.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument, engine_name  # noqa: E402
from seed_bench import _create, _insert_sql, _tuples  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.charts import PALETTE, _rc  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.seed import generate, populate  # noqa: E402
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, fuhyo_metadata, juki_counters,  # noqa: E402
                                  juki_current, juki_history, juki_metadata)

HERE = Path(__file__).resolve().parent
MIE, TOKYO = 1_800_000, 14_000_000
BATCH = 5000


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _pg_size(server: Server, url: str) -> int:
    name = make_url(url).database
    return int(server.sql(f"SELECT pg_database_size('{name}')")[0][0])


def _sqlite_size(*paths: Path) -> int:
    total = 0
    for p in paths:
        for suffix in ("", "-wal", "-shm"):
            f = Path(str(p) + suffix)
            if f.exists():
                total += f.stat().st_size
    return total


def record_run(data_dir: Path, seconds: float, rss_mib: float, load: str) -> dict:
    """A finished ``jukinet seed`` run at full size: residents, rows and bytes read from the installation."""
    from sqlalchemy import text

    with bootstrap(data_dir) as inst:
        regs = inst.registers
        counts, size = {}, 0
        for store, tables in (("juki", ("juki_current", "juki_history")), ("fuhyo", ("fuhyo_current", "fuhyo_history"))):
            engine = regs.engine(store)
            with engine.connect() as c:
                for t in tables:
                    counts[t] = c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                if store == "juki":
                    residents = c.execute(text("SELECT residents FROM seed_progress WHERE name = 'seed'")).scalar_one()
                if engine.dialect.name != "postgresql":
                    size += _sqlite_size(Path(engine.url.database))
                elif store == "juki":   # one database holds both registers' schemas (ADR 0002)
                    size += c.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        name = "PostgreSQL" if regs.juki_engine.dialect.name == "postgresql" else "SQLite"
        prefecture = inst.config.prefecture_name
    rows = sum(counts.values())
    return {"engine": name, "prefecture": prefecture, "residents": residents, "rows": rows,
            "seconds": seconds, "bytes": size, "rss_mib": rss_mib, "load": load}


def run_populate(server: Server, n: int, work: Path) -> dict:
    data = server.installation(work / "populate")
    with bootstrap(data) as inst:
        t = time.perf_counter()
        report = populate(inst.registers, n, 0, batch_size=BATCH)
        seconds = time.perf_counter() - t
    config = Config.load(data)
    if server.postgres:
        size = _pg_size(server, config.database.juki_url) + _pg_size(server, config.database.fuhyo_url)
    else:
        size = _sqlite_size(*(Path(make_url(config.database.url(s)).database) for s in ("juki", "fuhyo")))
    return {"seconds": seconds, "rows": report.juki_rows + report.fuhyo_rows, "bytes": size,
            "rss_mib": peak_rss_mib()}


def run_bare(server: Server, n: int, work: Path) -> dict:
    """Generate batch by batch (timed apart) and load each with the bare driver at once."""
    pg = server.postgres
    jc = [c.name for c in juki_current.columns]
    jh = [c.name for c in juki_history.columns if c.name != "history_id"]
    fc = [c.name for c in fuhyo_current.columns]
    fh = [c.name for c in fuhyo_history.columns if c.name != "history_id"]
    targets = []
    for key, metadata, tables, cols in (("juki", juki_metadata, [juki_current, juki_history, juki_counters], (jc, jh)),
                                        ("fuhyo", fuhyo_metadata, [fuhyo_current, fuhyo_history, fuhyo_counters],
                                         (fc, fh))):
        if pg:
            url = server.database(f"raw_{key}")
            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            metadata.create_all(engine, tables=tables)
            engine.dispose()
            targets.append((Bare.of_url(url), url, key, cols))
        else:
            (work / "raw").mkdir(exist_ok=True)
            path = work / "raw" / f"{key}.sqlite3"
            targets.append((Bare(_create(path, metadata, tables), False), path, key, cols))
    gen_s = load_s = 0.0
    rows = 0
    max_seq = {"juki": 0, "fuhyo": 0}
    batches = generate(n, 0, batch_size=BATCH)
    while True:
        t = time.perf_counter()
        b = next(batches, None)
        if b is None:
            gen_s += time.perf_counter() - t
            break
        parts = {"juki": (_tuples(b.juki, jc, pg), _tuples(b.juki_history, jh, pg)),
                 "fuhyo": (_tuples(b.fuhyo, fc, pg), _tuples(b.fuhyo_history, fh, pg))}
        for key, recs in (("juki", b.juki), ("fuhyo", b.fuhyo)):
            if recs:
                max_seq[key] = max(max_seq[key], max(r["update_seq"] for r in recs))
        t1 = time.perf_counter()
        gen_s += t1 - t
        for bare, _, key, (cur_c, hist_c) in targets:
            cur, hist = parts[key]
            if not (cur or hist):
                continue
            rows += len(cur) + len(hist)
            bare.begin_write()
            for table, cols, rs in ((f"{key}_current", cur_c, cur), (f"{key}_history", hist_c, hist)):
                if rs:
                    if pg:
                        bare.copy(table, cols, rs)
                    else:
                        bare.conn.executemany(_insert_sql(table, cols), rs)
            bare.commit()
        load_s += time.perf_counter() - t1
    for bare, _, key, _ in targets:
        bare.execute("INSERT INTO counters (name, value) VALUES ('update_seq', ?)", (max_seq[key],))
        if not pg:
            bare.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        bare.close()
    size = (sum(_pg_size(server, url) for _, url, _, _ in targets) if pg
            else _sqlite_size(*(path for _, path, _, _ in targets)))
    return {"seconds": gen_s + load_s, "generate_s": gen_s, "load_s": load_s, "rows": rows, "bytes": size,
            "rss_mib": peak_rss_mib()}


def child(kind: str, n: int, db_url) -> None:
    with tempfile.TemporaryDirectory(prefix="jukinet-seed-growth-") as tmp, Server(db_url) as server:
        out = (run_populate if kind == "populate" else run_bare)(server, n, Path(tmp))
        out["version"] = server.version()
    print(json.dumps(out))


def measure(kind: str, n: int, db_url) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--sizes", str(n)] + (["--db-url", db_url] if db_url else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{kind} {n}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b·x (two points: the line through them)."""
    n = len(points)
    if n == 1:
        x, y = points[0]
        return 0.0, y / x
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


def table(engine: str, rows: list[dict]) -> str:
    out = ["| engine | residents | rows | populate s | rows/s | bare s (generate + load) | bare rows/s | "
           "populate / bare | size on disk MiB (bare) | bytes/row | peak RSS MiB populate (bare) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p, b = r["populate"], r["bare"]
        out.append(f"| {engine} | {r['residents']:,} | {p['rows']:,} | {p['seconds']:.1f} | {p['rows'] / p['seconds']:,.0f} | "
                   f"{b['seconds']:.1f} ({b['generate_s']:.1f} + {b['load_s']:.1f}) | {b['rows'] / b['seconds']:,.0f} | "
                   f"{p['seconds'] / b['seconds']:.2f} | {p['bytes'] / 2**20:,.0f} ({b['bytes'] / 2**20:,.0f}) | "
                   f"{p['bytes'] / p['rows']:.0f} | {p['rss_mib']:.0f} ({b['rss_mib']:.0f}) |")
    return "\n".join(out)


def extrapolation(engine: str, rows: list[dict]) -> str:
    per_res = rows[-1]["populate"]["rows"] / rows[-1]["residents"]
    lines = ["| engine | residents | rows (est.) | populate min (linear fit) | bare min | size GiB | fit: s = a + b·rows |",
             "|---|---:|---:|---:|---:|---:|---|"]
    a, b = fit([(r["populate"]["rows"], r["populate"]["seconds"]) for r in rows])
    ba, bb = fit([(r["bare"]["rows"], r["bare"]["seconds"]) for r in rows])
    sa, sb = fit([(r["populate"]["rows"], r["populate"]["bytes"]) for r in rows])
    for name, n in (("三重県", MIE), ("東京都", TOKYO)):
        rws = n * per_res
        lines.append(f"| {engine} | {name} {n:,} | {rws:,.0f} | {(a + b * rws) / 60:.1f} | {(ba + bb * rws) / 60:.1f} | "
                     f"{(sa + sb * rws) / 2**30:.1f} | a={a:.1f} s, b={b * 1e6:.1f} µs/row |")
    return "\n".join(lines)


def chart(results: dict, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import matplotlib

    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(10, 4.2))
        ax_t, ax_s = fig.subplots(1, 2)
        colours = iter(PALETTE)
        engines = [e for e in sorted(results) if not e.startswith("_")]
        star = {}
        for engine in engines:
            rows = sorted(results[engine].values(), key=lambda r: r["residents"])
            xs = [r["residents"] for r in rows]
            c1, c2 = next(colours), next(colours)
            per_res = rows[-1]["populate"]["rows"] / rows[-1]["residents"]
            for kind, colour, label in (("populate", c1, f"{engine} jukinet seed"), ("bare", c2, f"{engine} bare")):
                ys = [r[kind]["seconds"] / 60 for r in rows]
                ax_t.plot(xs, ys, "o-", color=colour, label=label)
                a, b = fit([(r[kind]["rows"], r[kind]["seconds"]) for r in rows])
                ex = [xs[-1], MIE, TOKYO]
                ax_t.plot(ex, [(a + b * x * per_res) / 60 for x in ex], "--", color=colour, alpha=0.6)
            star[engine] = c1
            ax_s.plot(xs, [r["populate"]["bytes"] / 2**30 for r in rows], "o-", color=c1, label=f"{engine} jukinet seed")
            sa, sb = fit([(r["populate"]["rows"], r["populate"]["bytes"]) for r in rows])
            ex = [xs[-1], MIE, TOKYO]
            ax_s.plot(ex, [(sa + sb * x * per_res) / 2**30 for x in ex], "--", color=c1, alpha=0.6)
        for run in results.get("_runs", []):
            colour = star.get(run["engine"], "#000000")
            label = f"{run['engine']} {run['prefecture']} 実測"
            ax_t.plot([run["residents"]], [run["seconds"] / 60], "*", markersize=13, color=colour, label=label)
            ax_s.plot([run["residents"]], [run["bytes"] / 2**30], "*", markersize=13, color=colour, label=label)
        for ax, title, unit in ((ax_t, "投入時間 (破線は線形外挿・★は実測)", "分"), (ax_s, "ディスク上のサイズ (破線は線形外挿)", "GiB")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("住民数 (現存者)")
            ax.set_ylabel(unit)
            ax.set_title(title)
            for x, name in ((MIE, "三重県"), (TOKYO, "東京都")):
                ax.axvline(x, color="#999999", linewidth=0.8)
                ax.text(x, ax.get_ylim()[0], f" {name}", rotation=90, va="bottom", fontsize=8, color="#666666")
            ax.grid(True, which="major", color="#dddddd")
            ax.legend(fontsize=8)
        fig.tight_layout()
        FigureCanvasAgg(fig).print_png(str(path))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000", help="residents, comma-separated")
    ap.add_argument("--json", type=Path, default=HERE / "seed_growth.json", help="results kept across runs")
    ap.add_argument("--chart", type=Path, default=HERE / "seed_growth.png")
    ap.add_argument("--child", choices=("populate", "bare"), help=argparse.SUPPRESS)
    ap.add_argument("--record-run", type=Path, help="a seeded installation measured with /usr/bin/time")
    ap.add_argument("--seconds", type=float, help="with --record-run: the seed's wall time")
    ap.add_argument("--rss-mib", type=float, help="with --record-run: its peak RSS")
    ap.add_argument("--load", default="", help="with --record-run: load average during the run")
    add_argument(ap)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.child:
        child(args.child, sizes[0], args.db_url)
        return 0
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    if args.record_run:
        run = record_run(args.record_run, args.seconds, args.rss_mib, args.load)
        runs = [r for r in results.get("_runs", []) if (r["engine"], r["residents"]) != (run["engine"], run["residents"])]
        results["_runs"] = sorted(runs + [run], key=lambda r: (r["engine"], r["residents"]))
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        print("| engine | prefecture | residents | rows | seed min | rows/s | size GiB | bytes/row | peak RSS MiB | load |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in results["_runs"]:
            print(f"| {r['engine']} | {r['prefecture']} | {r['residents']:,} | {r['rows']:,} | {r['seconds'] / 60:.1f} | "
                  f"{r['rows'] / r['seconds']:,.0f} | {r['bytes'] / 2**30:.1f} | {r['bytes'] / r['rows']:.0f} | "
                  f"{r['rss_mib']:.0f} | {r['load']} |")
        chart(results, args.chart)
        return 0
    engine = engine_name(args.db_url)
    mine = results.setdefault(engine, {})
    for n in sizes:
        print(f"{engine} {n:,}: populate …", file=sys.stderr)
        p = measure("populate", n, args.db_url)
        print(f"{engine} {n:,}: bare …", file=sys.stderr)
        b = measure("bare", n, args.db_url)
        mine[str(n)] = {"residents": n, "populate": p, "bare": b, "version": p.pop("version")}
        b.pop("version", None)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    rows = sorted(mine.values(), key=lambda r: r["residents"])
    print(f"\n{rows[-1]['version']}\n")
    print(table(engine, rows))
    print()
    print(extrapolation(engine, rows))
    chart(results, args.chart)
    print(f"\nchart: {args.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
