"""A7 operations: the cost of /metrics, of the operations status and of the request middleware,
each beside a baseline doing the same work in the same run.

Usage: python bench/ops_bench.py [--db-url URL] [--data-dir DIR] [--residents N] [--samples K]

With --data-dir pointing at a seeded installation (either engine) it measures there; otherwise it
seeds N residents (default 200,000; the seeder adds removed persons, history and the 附票) into a
fresh installation — SQLite files, or with ``--db-url`` a throwaway PostgreSQL database (dropped at
the end; bench/engines.py). In-process (Starlette TestClient from 127.0.0.1), p50/p95 in ms:

* ``GET /metrics`` (event counters + the state collector: 3 databases probed, outbox, retention,
  backup file) vs the bare driver (``sqlite3`` / ``psycopg``) running the same probe queries;
* ``GET /api/v1/ops/status`` (every table counted) vs the bare driver's ``COUNT(*)`` of every table;
* the observability middleware: ``GET /stats/stats.css`` (no database) through the application
  with and without it.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, pct  # noqa: E402
from inprocess import main, signed_in, terminal, timed  # noqa: E402

from jukinet.web.app import create_app  # noqa: E402
from jukinet.web.ops import Observe  # noqa: E402


def run(inst, k: int, version: str) -> None:
    registers = inst.registers
    app = create_app(inst)
    sec = app.state.security
    tid, secret = terminal(sec)
    token = signed_in(sec, registers, tid, "BENCH-OPS", roles=["operations"]).token
    local = TestClient(app, client=("127.0.0.1", 40000))
    api = TestClient(app, client=("127.0.0.1", 40000),
                     headers={"X-Jukinet-Terminal": f"{tid}.{secret}", "Authorization": f"Bearer {token}"})
    raw = {s: Bare.of(registers, s) for s in ("juki", "fuhyo", "admin")}
    tables = {s: c.tables() for s, c in raw.items()}
    rows = sum(raw["juki"].execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables["juki"])

    def bare_probe():
        for s, c in raw.items():
            c.execute("SELECT 1").fetchone()
            c.execute("SELECT version_num FROM alembic_version").fetchone()
        for s in ("juki", "fuhyo"):
            c = raw[s]
            c.execute("SELECT state, COUNT(*) FROM outbox WHERE state IN ('pending','failed') GROUP BY state").fetchall()
            c.execute("SELECT MIN(created_at) FROM outbox WHERE state IN ('pending','failed')").fetchone()
            c.execute("SELECT batch_id, finished_at FROM retention_runs WHERE NOT dry_run "
                      "ORDER BY run_id DESC LIMIT 1").fetchone()

    def bare_counts():
        for s, c in raw.items():
            for t in tables[s]:
                c.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()

    results = []
    assert local.get("/metrics").status_code == 200
    m = timed(lambda: local.get("/metrics"), k)
    b = timed(bare_probe, k)
    results.append(("GET /metrics (scrape)", m, b, "bare driver: the same probe queries"))
    assert api.get("/api/v1/ops/status").status_code == 200
    ks = max(5, k // 10)
    s_ = timed(lambda: api.get("/api/v1/ops/status"), ks)
    bc = timed(bare_counts, ks)
    results.append(("GET /api/v1/ops/status (every table counted)", s_, bc, "bare driver: COUNT(*) of every table"))
    with_mw = timed(lambda: local.get("/stats/stats.css"), k)
    app.user_middleware = [mw for mw in app.user_middleware if mw.cls is not Observe]
    app.middleware_stack = None
    without = timed(lambda: local.get("/stats/stats.css"), k)
    results.append(("GET /stats/stats.css with the request log + metrics middleware", with_mw, without,
                    "the same app without it"))

    for c in raw.values():
        c.close()
    print(f"\n{version}; D1 rows (all juki tables): {rows:,}; load average {os.getloadavg()[0]:.2f}\n")
    print("| | jukinet p50 / p95 | baseline p50 / p95 | ratio (p50) | baseline |")
    print("|---|---:|---:|---:|---|")
    for name, x, y, what in results:
        print(f"| {name} | {pct(x, 50):.1f} / {pct(x, 95):.1f} ms | {pct(y, 50):.2f} / {pct(y, 95):.2f} ms "
              f"| {statistics.median(x) / max(statistics.median(y), 1e-6):.1f}× | {what} |")


if __name__ == "__main__":
    main(run, prefix="jukinet-ops-bench-", residents=200_000, samples=200)
