"""Q3: the replicated cluster against a single PostgreSQL — the same work, side by side — and failover drills.

    sudo .venv/bin/python bench/cluster_bench.py [--single-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--single 400] [--batched 3000] [--lookups 2000] [--drills 5]

Starts a local cluster (``jukinet.cluster.local``: etcd, three PostgreSQL 15 under Patroni with a
synchronous standby, pgBackRest archiving) in a temporary directory, as root (the processes run as
``postgres``). Then, for the **single** PostgreSQL (``--single-url``: a server where the bench may
create and drop databases, bench/engines.py) and for the **cluster** (through its primary; every
commit waits for the synchronous standby), one after the other, each on a fresh installation:

* *single*: ``--single`` CS notifications, one per request, from 4 CS at once (mutual TLS, the whole
  intake pipeline: checks, history, outbox, communication log);
* *batched*: ``--batched`` notifications in requests of 1,000;
* *lookup*: ``--lookups`` ``JukiRepository.get`` of the persons just written (p50 / p99).

Then ``--drills`` failover drills on the cluster: a client commits in a loop, the primary's Patroni
and postmaster are killed with ``kill -9``; measured: the promotion of the synchronous standby and
the first commit acknowledged by the new primary after the kill (p50 / max), and the client's failed
attempts (connection refused / lost, each retried after 0.1 s). Each
drill waits for the killed node to rejoin before the next. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server  # noqa: E402

from jukinet import pki  # noqa: E402
from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.cluster.local import LocalCluster, missing_programs, port_free  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.server import PrefectureServer  # noqa: E402
from jukinet.sim.cs import CsClient, EventGenerator  # noqa: E402

MUNIS = ["242012", "242021", "242047", "242071"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def workload(server_url: str, work: Path, a) -> dict:
    """The same intake and lookup work on a fresh installation whose databases are on ``server_url``."""
    out: dict = {}
    with Server(server_url) as server:
        data_dir = server.installation(work / "data")
        config = Config.load(data_dir)
        config.server.port, config.national.port, config.national.fuhyo_port = free_port(), free_port(), free_port()
        config.save()
        pki.ensure_dev_pki(config.tls, config.data_dir, config.prefecture_code, municipalities=MUNIS)
        srv = PrefectureServer(config, outbox=False).start()
        codes: list[str] = []
        lock = threading.Lock()
        try:
            def cs(muni: str, n: int, batch: int, lat: list[float]):
                c = CsClient(config, muni, timeout=300)
                gen = EventGenerator(muni, seed=hash((muni, batch, time.time_ns())), run_id=f"b{time.time_ns()}")
                try:
                    left = n
                    while left > 0:
                        chunk = gen.take(min(batch, left))
                        t0 = time.perf_counter()
                        got = [c.send(chunk[0])] if batch == 1 else c.send_batch(chunk)
                        lat.append(time.perf_counter() - t0)
                        assert all(g["status"] in ("accepted", "duplicate") for g in got), got[:1]
                        with lock:
                            codes.extend(x["juminhyo_code"] for x in chunk
                                         if x["register"] == "juki" and x.get("juminhyo_code"))
                        left -= len(chunk)
                finally:
                    c.close()

            for case, total, batch, clients in (("single", a.single, 1, 4), ("batched", a.batched, 1000, 1)):
                lat: list[float] = []
                threads = [threading.Thread(target=cs, args=(m, total // clients, batch, lat)) for m in MUNIS[:clients]]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                secs = time.perf_counter() - t0
                out[case] = {"rate": (total // clients) * clients / secs, "p50": pct(lat, 50), "p99": pct(lat, 99)}
        finally:
            srv.stop()
        with bootstrap(data_dir) as inst:
            sample = random.Random(1).sample(codes, min(a.lookups, len(codes)))
            lat = []
            for code in sample:
                t0 = time.perf_counter()
                with inst.registers.juki_uow(write=False) as uow:
                    uow.repo.get(code)
                lat.append(time.perf_counter() - t0)
            out["lookup"] = {"rate": len(lat) / sum(lat), "p50": pct(lat, 50), "p99": pct(lat, 99)}
    return out


def drills(cluster: LocalCluster, n: int) -> list[dict]:
    with psycopg.connect(cluster.admin_url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_drill (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
    results = []
    for k in range(n):
        recloned = cluster.heal()
        if recloned:
            print(f"re-cloned before drill {k + 1}: {recloned}", file=sys.stderr)
            results[-1]["recloned_after"] = recloned
        acks: list[tuple[float, int]] = []          # (monotonic at ack, port of the server that committed)
        failures = [0]
        stop = threading.Event()

        def writer():
            conn = None
            while not stop.is_set():
                try:
                    if conn is None:
                        conn = psycopg.connect(cluster.admin_url(), autocommit=True)
                    port = conn.execute("INSERT INTO bench_drill DEFAULT VALUES RETURNING inet_server_port()").fetchone()[0]
                    acks.append((time.monotonic(), port))
                    time.sleep(0.02)
                except psycopg.Error:
                    failures[0] += 1
                    conn = None
                    time.sleep(0.1)
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        time.sleep(1.0)
        old, t = cluster.kill_leader()
        new = cluster.wait_new_leader(old, 120)
        promoted = time.monotonic() - t
        # a backend of the killed postmaster may still finish a commit in flight (SIGKILL reaches the
        # postmaster only; that commit did reach the synchronous standby): count commits on the new primary
        new_port = cluster.pg_port(new)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(x > t and p == new_port for x, p in acks):
            time.sleep(0.05)
        stop.set()
        w.join(30)
        first = min((x for x, p in acks if x > t and p == new_port), default=float("nan")) - t
        results.append({"drill": k + 1, "killed": old, "new_leader": new, "promoted_s": promoted,
                        "first_commit_s": first, "failed_attempts": failures[0]})
        print(f"drill {k + 1}: {results[-1]}", file=sys.stderr)
    recloned = cluster.heal()
    if recloned and results:
        results[-1]["recloned_after"] = recloned
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--single-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--single", type=int, default=400)
    ap.add_argument("--batched", type=int, default=3000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--drills", type=int, default=5)
    a = ap.parse_args()
    if missing_programs() or os.geteuid() != 0:
        print(f"needs root and the Debian packages (missing: {missing_programs()})", file=sys.stderr)
        return 2
    base = next(b for b in range(25600, 26600, 30) if all(port_free(p) for p in LocalCluster("/nonexistent", base_port=b).ports()))
    cdir = tempfile.mkdtemp(prefix="jukinet-cluster-bench-", dir="/tmp")
    work = Path(tempfile.mkdtemp(prefix="jukinet-cluster-bench-work-"))
    cluster = LocalCluster(cdir, base_port=base)
    try:
        t0 = time.monotonic()
        cluster.up(300, backup=False)
        print(f"cluster up in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        load = os.getloadavg()[0]
        single = workload(a.single_url, work / "single", a)
        leader = cluster.status().leader
        clustered = workload(cluster.node_url(leader), work / "cluster", a)
        load = max(load, os.getloadavg()[0])
        print(f"\n### Cluster (synchronous standby) vs single PostgreSQL — load average up to {load:.1f}\n")
        print("| work | single PostgreSQL | cluster | ratio (cluster / single) | single p50 / p99 | cluster p50 / p99 |")
        print("|---|---:|---:|---:|---:|---:|")
        for case, unit in (("single", "notifications/s"), ("batched", "notifications/s"), ("lookup", "lookups/s")):
            s, c = single[case], clustered[case]
            print(f"| {case} | {s['rate']:,.0f} {unit} | {c['rate']:,.0f} {unit} | {c['rate'] / s['rate']:.2f} | "
                  f"{s['p50'] * 1000:.1f} / {s['p99'] * 1000:.1f} ms | {c['p50'] * 1000:.1f} / {c['p99'] * 1000:.1f} ms |")
        if a.drills:
            res = drills(cluster, a.drills)
            prom = [r["promoted_s"] for r in res]
            first = [r["first_commit_s"] for r in res]
            print(f"\n### Failover drills (kill -9 of the primary's Patroni + postmaster), {len(res)} drills\n")
            print("| drill | killed | new leader | promoted after | first commit on the new primary after | "
                  "client's failed attempts | standby re-cloned afterwards |")
            print("|---:|---|---|---:|---:|---:|---|")
            for r in res:
                print(f"| {r['drill']} | {r['killed']} | {r['new_leader']} | {r['promoted_s']:.1f} s | "
                      f"{r['first_commit_s']:.1f} s | {r['failed_attempts']} | {', '.join(r.get('recloned_after', [])) or '—'} |")
            print(f"\npromotion p50 {statistics.median(prom):.1f} s, max {max(prom):.1f} s; first commit p50 "
                  f"{statistics.median(first):.1f} s, max {max(first):.1f} s (goal < 30 s)")
    finally:
        cluster.down(remove=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
