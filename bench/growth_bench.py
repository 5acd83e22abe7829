"""How the costs grow with the population (issue 16): seed, size on disk, lookups, search, intake.

    .venv/bin/python bench/growth_bench.py --residents 200000 [--prefecture 24] [--db-url URL] [--keep DIR]
    .venv/bin/python bench/growth_bench.py --data-dir DIR --seed-seconds S --seed-rss-mib M [--load L]
    .venv/bin/python bench/growth_bench.py --table          # the table and the chart from the JSON only

One size per run (the machine has two cores: one heavy thing at a time), merged into ``--json``
(default ``bench/growth.json``, one entry per engine and size) so that the table and the chart
(``bench/growth.png``) show every size measured so far. For a size it

1. makes a fresh installation — ``jukinet init --prefecture P`` (SQLite files, or with ``--db-url`` a
   PostgreSQL database of its own, dropped at the end unless ``--keep``) — and runs ``jukinet seed
   --residents N`` under ``/usr/bin/time -v``: wall time and peak resident memory of the seed (the
   largest process of its tree); or, with ``--data-dir``, takes an installation seeded that way
   already, with the time and memory measured then;
2. reads the rows of the four register tables and the size on disk (the SQLite files after the
   seed's checkpoint; ``pg_database_size`` of the installation's database);
3. runs, one after the other, each against that installation and each with its baseline from the
   same run: ``bench/lookup_bench.py`` (repository vs the bare indexed SELECT), ``bench/search_bench.py``
   (the search service with its log entry and durable commit vs the bare indexed SQL and a full scan)
   and ``bench/intake_bench.py`` (single notifications and batches of 1,000 over mTLS vs the bare
   engine's executemany of the same rows, its prefecture's eight most populous municipalities).

The seed's own baseline (the bare ``COPY`` / ``executemany`` of the same generated rows) is
``bench/seed_growth.py``: it doubles the run, too long to repeat at 14M here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument, engine_name  # noqa: E402
from seed_growth import record_run  # noqa: E402

from jukinet.charts import PALETTE, _rc  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
JUKINET = str(Path(PY).with_name("jukinet"))
MIE, TOKYO = 1_800_000, 14_000_000


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def seed(data: Path, residents: int, prefecture: str, db_url: str | None, port: int) -> tuple[float, float, str]:
    """``jukinet init`` + ``/usr/bin/time -v jukinet seed``: (wall seconds, peak RSS MiB, load averages)."""
    subprocess.run([JUKINET, "init", "--data-dir", str(data), "--prefecture", prefecture, "--port-base", str(port),
                    *(["--db-url", db_url] if db_url else [])], check=True, stdout=subprocess.DEVNULL)
    timing = data.parent / f"{data.name}.time"
    before = load_average()
    t0 = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-v", "-o", str(timing), JUKINET, "seed", "--data-dir", str(data),
                    "--residents", str(residents)], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text()).group(1))
    return seconds, rss_kib / 1024, f"{before} → {load_average()}"


def bench(script: str, data: Path, *extra: str) -> dict:
    """One of the benches against the installation; its figures from its ``--json``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        print(f"  {script} …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([PY, str(HERE / script), "--data-dir", str(data), "--json", out.name, *extra],
                              cwd=ROOT, text=True, capture_output=True)
        if proc.returncode:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"{script} failed ({proc.returncode})")
        print(proc.stdout.strip(), file=sys.stderr)
        figures = json.loads(Path(out.name).read_text())
        figures["bench_seconds"] = time.perf_counter() - t0
        figures["load"] = load_average()
        return figures


def measure(data: Path, seconds: float, rss_mib: float, load: str, a, entry: dict | None = None) -> dict:
    """The figures of ``a.parts`` for the installation ``data``; with ``entry``, into that entry (the
    other parts kept as they were measured)."""
    if entry is None:
        entry = record_run(data, seconds, rss_mib, load)
        entry["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        entry["machine"] = f"{os.cpu_count()} cores, {platform.machine()}, {_mem_gib():.0f} GiB"
    parts = a.parts.split(",")
    if "lookup" in parts:
        entry["lookup"] = bench("lookup_bench.py", data, "--samples", str(a.lookup_samples))
    if "search" in parts:
        entry["search"] = bench("search_bench.py", data, "--samples", str(a.search_samples),
                                "--scan-samples", str(a.scan_samples))
    if "intake" in parts:
        entry["intake"] = bench("intake_bench.py", data, "--single", str(a.single), "--batched", str(a.batched))
    return entry


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def key(entry: dict) -> str:
    return f"{entry['engine']}:{entry['residents']}"


KANA = "kana prefix + birth date"
PARTS = "lookup,search,intake"


def table(results: dict) -> str:
    rows = sorted(results.values(), key=lambda e: (e["engine"] != "PostgreSQL", e["residents"]))
    out = ["| engine | prefecture | residents | rows | seed | peak RSS | on disk | lookup 住民票コード p50 / p99 µs "
           "(bare) | lookup 個人番号 p50 / p99 µs (bare) | search p95 ms: kana+生年月日 / 漢字 / 住所 (bare indexed p50 "
           "kana) | full scan p95 ÷ search p95 (kana / 住所) | intake single /s (bare) | intake 1,000s /s (bare) |",
           "|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|---|"]
    for e in rows:
        lk, q, i = e["lookup"]["lookups"], e["search"]["queries"], e["intake"]
        code, num = lk["住民票コード"], lk["個人番号"]
        kana, kanji, addr = q[KANA], q["kanji exact"], q["address prefix"]
        out.append(
            f"| {e['engine']} | {e['prefecture']} | {e['residents']:,} | {e['rows']:,} | {e['seconds'] / 60:.1f} min "
            f"| {e['rss_mib']:.0f} MiB | {e['bytes'] / 2**30:.2f} GiB "
            f"| {code['p50_us']:.0f} / {code['p99_us']:.0f} ({code['bare_p50_us']:.0f} / {code['bare_p99_us']:.0f}) "
            f"| {num['p50_us']:.0f} / {num['p99_us']:.0f} ({num['bare_p50_us']:.0f} / {num['bare_p99_us']:.0f}) "
            f"| {kana['p95_ms']:.1f} / {kanji['p95_ms']:.1f} / {addr['p95_ms']:.1f} ({kana['bare_p50_ms']:.2f}) "
            f"| {kana['scan_p95_ms'] / kana['p95_ms']:.0f}× / {addr['scan_p95_ms'] / addr['p95_ms']:.0f}× "
            f"| {i['single']['per_s']:.0f} ({i['single']['bare_per_s']:.0f}) "
            f"| {i['batched']['per_s']:,.0f} ({i['batched']['bare_per_s']:,.0f}) |")
    return "\n".join(out)


def chart(results: dict, path: Path) -> None:
    """Six panels against the population (log–log): seed time, size on disk, lookups, search,
    full-scan ratio, intake — jukinet solid, its same-run baseline dashed."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    engines = sorted({e["engine"] for e in results.values()})
    with matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(13, 7.6))
        axes = fig.subplots(2, 3).ravel()
        for engine, colour in zip(engines, PALETTE):
            rows = sorted((e for e in results.values() if e["engine"] == engine), key=lambda e: e["residents"])
            xs = [e["residents"] for e in rows]

            def line(ax, ys, label, style="o-", c=colour):
                ax.plot(xs, ys, style, color=c, label=f"{engine} {label}", alpha=1 if style == "o-" else 0.6)

            line(axes[0], [e["seconds"] / 60 for e in rows], "jukinet seed")
            line(axes[1], [e["bytes"] / 2**30 for e in rows], "")
            for k, (label, mark) in enumerate((("住民票コード", "o"), ("個人番号", "s"))):
                lk = [e["lookup"]["lookups"][label] for e in rows]
                line(axes[2], [v["p99_us"] / 1000 for v in lk], f"{label} p99", f"{mark}-")
                line(axes[2], [v["bare_p99_us"] / 1000 for v in lk], f"{label} p99 素のSQL", f"{mark}--")
            for label, name, mark in ((KANA, "カナ+生年月日", "o"), ("address prefix", "住所", "s")):
                q = [e["search"]["queries"][label] for e in rows]
                line(axes[3], [v["p95_ms"] for v in q], f"{name} p95", f"{mark}-")
                line(axes[3], [v["bare_p50_ms"] for v in q], f"{name} 素のSQL p50", f"{mark}--")
                line(axes[4], [v["scan_p95_ms"] / v["p95_ms"] for v in q], f"{name}", f"{mark}-")
            it = [e["intake"] for e in rows]
            line(axes[5], [v["single"]["per_s"] for v in it], "単件", "o-")
            line(axes[5], [v["single"]["bare_per_s"] for v in it], "単件 素のエンジン", "o--")
            line(axes[5], [v["batched"]["per_s"] for v in it], "1,000件", "s-")
            line(axes[5], [v["batched"]["bare_per_s"] for v in it], "1,000件 素のエンジン", "s--")
        targets = {0: 4, 2: 10, 3: 20, 4: 1000, 5: 300}
        titles = (("初期投入時間", "分"), ("ディスク上のサイズ", "GiB"), ("検索キーによる照会 p99 (実線) と素のSQL (破線)", "ms"),
                  ("4情報検索 p95 (操作ログの確定を含む)", "ms"), ("全件走査 p95 ÷ 検索 p95", "倍"),
                  ("受付 (mTLS) と素のエンジン", "件/秒"))
        for n, (ax, (title, unit)) in enumerate(zip(axes, titles)):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("住民数 (現存者)")
            ax.set_ylabel(unit)
            if n in targets:
                ax.axhline(targets[n], color="#b00020", linewidth=0.8, linestyle=":")
                ax.text(ax.get_xlim()[0], targets[n], " 目標", color="#b00020", fontsize=7, va="bottom")
            for x, name in ((MIE, "三重県"), (TOKYO, "東京都")):
                ax.axvline(x, color="#999999", linewidth=0.6)
            ax.grid(True, which="major", color="#dddddd")
            ax.legend(fontsize=6)
        fig.suptitle("人口に対するコストの伸び (bench/growth_bench.py)", fontsize=11)
        fig.tight_layout()
        FigureCanvasAgg(fig).print_png(str(path))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, help="seed a fresh installation of this many current residents")
    ap.add_argument("--prefecture", default="24", help="the installation's prefecture (jukinet init --prefecture)")
    ap.add_argument("--data-dir", type=Path, help="an installation seeded already (with --seed-seconds, --seed-rss-mib)")
    ap.add_argument("--seed-seconds", type=float)
    ap.add_argument("--seed-rss-mib", type=float)
    ap.add_argument("--load", default="", help="with --data-dir: the load average during its seed")
    ap.add_argument("--parts", default=PARTS, help="with --data-dir: measure only these again (e.g. search), "
                    "keeping the entry's other figures")
    ap.add_argument("--keep", type=Path, help="seed into this directory and keep it (and its database)")
    ap.add_argument("--table", action="store_true", help="print the table and draw the chart from the JSON only")
    ap.add_argument("--json", type=Path, default=HERE / "growth.json")
    ap.add_argument("--chart", type=Path, default=HERE / "growth.png")
    ap.add_argument("--lookup-samples", type=int, default=2000)
    ap.add_argument("--search-samples", type=int, default=200)
    ap.add_argument("--scan-samples", type=int, default=5)
    ap.add_argument("--single", type=int, default=1000)
    ap.add_argument("--batched", type=int, default=8000)
    add_argument(ap)
    a = ap.parse_args(argv)
    results = json.loads(a.json.read_text()) if a.json.exists() else {}
    if a.data_dir:
        if (a.seed_seconds is None or a.seed_rss_mib is None) and a.parts == PARTS:
            ap.error("--data-dir needs --seed-seconds and --seed-rss-mib (from the seed's /usr/bin/time -v)")
        # only some parts again: into the entry measured before (its key read from the installation)
        again = results.get(key(record_run(a.data_dir, 0, 0, ""))) if a.parts != PARTS else None
        if a.parts != PARTS and again is None:
            ap.error("--parts: this installation has no entry in the JSON yet; measure every part first")
        entry = measure(a.data_dir, a.seed_seconds, a.seed_rss_mib, a.load, a, again)
        results[key(entry)] = entry
    elif a.residents:
        with tempfile.TemporaryDirectory(prefix="jukinet-growth-", dir=a.keep.parent if a.keep else None) as tmp, \
                Server(a.db_url) as server:
            data = a.keep or Path(tmp) / "data"
            db_url = server.database("growth")
            server.keep = bool(a.keep)      # kept: the database and its roles stay
            print(f"{engine_name(a.db_url)} {a.residents:,}: seed …", file=sys.stderr, flush=True)
            seconds, rss, load = seed(data, a.residents, a.prefecture, db_url, 19000 + os.getpid() % 500 * 3)
            print(f"  {seconds:.1f} s, {rss:.0f} MiB, load {load}", file=sys.stderr, flush=True)
            entry = measure(data, seconds, rss, load, a)
            results[key(entry)] = entry
    elif not a.table:
        ap.error("--residents N, --data-dir DIR or --table")
    a.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(table(results))
    chart(results, a.chart)
    print(f"\nchart: {a.chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
