"""The consolidated center (issue 14, Q1; ADR 0045): routing overhead and the cost of tenants.

    .venv/bin/python bench/center_bench.py [--requests 200] [--rounds 6] [--tenants 1,3,10] [--db-url URL]

1. **Routing overhead.** A single-prefecture server (``jukinet serve``, 三重県) and a center with three
   tenants (``jukinet center serve``: 三重県, 愛知県, 岐阜県), each its own process on this machine, both
   without their outbox worker (only intake is compared). The same requests — single notifications from
   four 三重県 CS at once, the same generated sequence for both — go to each, alternately for ``--rounds``
   rounds (A B B A …: the machine is shared; the summary is the median over the pairs of neighbouring rounds).
   The router's own work (certificate → prefecture → tenant) is also timed in-process. Throughput and per-request latency (p50/p95) as
   the CS see them; the center routes by the certificate, then runs the same tenant application.
2. **Tenants.** One center grown to 1, 3, 10 (``--tenants``; 47 with ``--tenants 1,3,10,47``) tenants
   (``--residents`` synthetic residents each, default 100: a small population; each tenant with its own
   national simulators), each step:
   ``center serve`` started, time until ``/health`` answers 200 (every tenant opened, its databases
   checked), resident memory (VmRSS, VmHWM) idle and after a load round (``--load-per-tenant``
   notifications into every tenant, all tenants at once), and the database connections (PostgreSQL:
   ``pg_stat_activity`` rows of the tenants' databases, sampled every 50 ms during the start and the
   load, and counted when idle before and after; SQLite: open database files). On PostgreSQL each step
   runs with ADR 0055's settings (budget 40, idle connections closed after 10 s, outbox poll 30 s) and,
   up to ``--baseline-max`` tenants, the same work without them (SQLAlchemy's pools as before).

SQLite by default; ``--db-url`` a PostgreSQL server where the bench creates (and drops) a database per
installation and tenant (bench/engines.py). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Server, add_argument, engine_name, pct  # noqa: E402

from jukinet import geo  # noqa: E402
from jukinet.center.registry import init_center  # noqa: E402
from jukinet.center.tenants import add_tenant, prefecture_of  # noqa: E402
from jukinet.center_server import certificate_identity, named_prefectures  # noqa: E402
from jukinet.intake import wire  # noqa: E402
from jukinet.intake.api import decode as intake_decode  # noqa: E402
from jukinet.pki.certs import cs_paths  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.sim.cs import CsClient, EventGenerator  # noqa: E402
from jukinet.sim.national import start_national  # noqa: E402
from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.seed import populate  # noqa: E402

MIE_MUNIS = ["242012", "242021", "242047", "242071"]
#: the order tenants are added in (Mie first: the routing comparison uses it)
ORDER = [24, 23, 21, 13, 27, 14, 40, 26, 22, 17] + [n for n in range(1, 48) if n not in
                                                    (24, 23, 21, 13, 27, 14, 40, 26, 22, 17)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(*args, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jukinet.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=open(log, "ab"), env=dict(os.environ, PYTHONUNBUFFERED="1"))


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 600.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not come up")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def open_db_files(pid: int) -> int:
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).endswith(".sqlite3"):
                n += 1
        except OSError:
            pass
    return n


def pg_connections(server: Server, databases: list[str]) -> int:
    names = ",".join(f"'{d}'" for d in databases)
    return server.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname IN ({names})")[0][0] if names else 0


def send_round(config: Config, notifications: dict[str, list[dict]], server_ca=None) -> tuple[float, list[float], int]:
    """Every CS sends its list, one request per notification, all CS at once; (seconds, latencies, refused)."""
    lat: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def worker(muni: str, items: list[dict]) -> None:
        c = CsClient(config, muni, server_ca=server_ca, timeout=120)
        mine = []
        bad = 0
        try:
            for n in items:
                t0 = time.perf_counter()
                a = c.send(n)
                mine.append(time.perf_counter() - t0)
                bad += a["status"] == "rejected"
        finally:
            c.close()
        with lock:
            lat.extend(mine)
            refused[0] += bad

    secs = run_all([threading.Thread(target=worker, args=(m, items)) for m, items in notifications.items()])
    return secs, lat, refused[0]


def run_all(threads: list[threading.Thread]) -> float:
    """Start the threads together, wait for all; the seconds it took."""
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def routing(args, server: Server, work: Path) -> None:
    # the single-prefecture server
    single = server.installation(work / "single")
    cfg = Config.load(single)
    cfg.server.port = free_port()
    cfg.intake.outbox_worker = False
    cfg.security.training_required = False
    cfg.save()
    # the center with three tenants
    c = init_center(work / "center", port=free_port())
    for n in ORDER[:3]:
        add_tenant(c, n, db_url=server.database(f"r{n}") if server.postgres else None, training_required=False)
    tenant_cfgs = {}
    for t in c.tenants:
        tc = Config.load(c.tenant_dir(t))
        tc.intake.outbox_worker = False
        if args.tenant_pool and server.postgres:      # e.g. "5,10": the single server's pools, for comparison
            tc.database.pool_size, tc.database.max_overflow = (int(x) for x in args.tenant_pool.split(","))
        tc.save()
        tenant_cfgs[t.prefecture] = tc
    mie = tenant_cfgs[24]
    procs = {"single": spawn("serve", "--data-dir", str(single), log=work / "single.err")}
    try:                                    # started one after the other: each start time alone
        starts = {"single": wait_health(cfg.server.port, procs["single"])}
        procs["center"] = spawn("center", "serve", "--center-dir", str(c.dir), log=work / "center.err")
        starts["center"] = wait_health(c.port, procs["center"])
        per_client = args.requests // len(MIE_MUNIS)
        results = {"single": [], "center": []}
        for rnd in range(args.rounds):
            for kind in (("single", "center") if rnd % 2 == 0 else ("center", "single")):
                gens = {m: EventGenerator(m, seed=rnd * 10 + i, run_id=f"r{rnd}") for i, m in enumerate(MIE_MUNIS)}
                batches = {m: g.take(per_client) for m, g in gens.items()}
                if kind == "single":
                    dt, lat, bad = send_round(cfg, batches)
                else:
                    dt, lat, bad = send_round(mie, batches, server_ca=c.ca_cert)
                results[kind].append((dt, lat, bad))
                print(f"  round {rnd + 1} {kind}: {len(lat) / dt:,.0f} req/s, p95 {pct(lat, 95) * 1000:.1f} ms, "
                      f"refused {bad}", file=sys.stderr)
    finally:
        for p in procs.values():
            stop(p)
    pools = f"; tenant pools {args.tenant_pool}" if args.tenant_pool and server.postgres else ""
    print(f"\n### Routing overhead ({engine_name(args.db_url)}; {server.version()}{pools}): {args.requests} single "
          f"notifications a round from {len(MIE_MUNIS)} 三重県 CS at once, {args.rounds} rounds alternated\n")
    print("| server | notifications | throughput (req/s) | p50 (ms) | p95 (ms) | refused |")
    print("|---|---:|---:|---:|---:|---:|")
    summary = {}
    for kind, label in (("single", "single prefecture (`jukinet serve`)"),
                        ("center", "center, 3 tenants (`jukinet center serve`)")):
        n = sum(len(r[1]) for r in results[kind])
        secs = sum(r[0] for r in results[kind])
        lat = [x for r in results[kind] for x in r[1]]
        summary[kind] = (n / secs, pct(lat, 95))
        print(f"| {label} | {n:,} | {n / secs:,.0f} | {pct(lat, 50) * 1000:.1f} | {pct(lat, 95) * 1000:.1f} | "
              f"{sum(r[2] for r in results[kind])} |")
    # the machine is shared: compare each center round with the single round next to it, take the median
    ratios_tp, ratios_p95 = [], []
    for (sd, sl, _), (cd, cl, _) in zip(results["single"], results["center"]):
        ratios_tp.append((len(cl) / cd) / (len(sl) / sd))
        ratios_p95.append(pct(cl, 95) / pct(sl, 95))
    med = lambda xs: sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2  # noqa: E731
    tp_all = (summary["center"][0] / summary["single"][0] - 1) * 100
    p95_all = (summary["center"][1] / summary["single"][1] - 1) * 100
    print(f"\nCenter vs single, all rounds pooled: throughput {tp_all:+.1f} %, p95 {p95_all:+.1f} %; median of the "
          f"{len(ratios_tp)} paired rounds: throughput {(med(ratios_tp) - 1) * 100:+.1f} %, p95 {(med(ratios_p95) - 1) * 100:+.1f} % "
          f"(per pair: {', '.join(f'{(r - 1) * 100:+.0f}' for r in ratios_tp)} % throughput). Goal: overhead ≤ 5 %. "
          f"Start to /health 200, each alone: single {starts['single']:.1f} s, center (3 tenants) {starts['center']:.1f} s.")
    # the router's own work per request, measured alone: the CS certificate's SAN → prefecture → tenant
    der = x509.load_pem_x509_certificate(cs_paths(mie.resolve(mie.tls.cs_dir), MIE_MUNIS[0])[0].read_bytes()) \
        .public_bytes(serialization.Encoding.DER)
    table = {n: object() for n in ORDER[:3]}
    reps = 20_000
    parse = certificate_identity.__wrapped__          # uncached: the cost of a new certificate
    t0 = time.perf_counter()
    for _ in range(reps):
        table.get(prefecture_of(parse(der).code))
    parse_us = (time.perf_counter() - t0) / reps * 1e6
    t0 = time.perf_counter()
    for _ in range(reps):
        table.get(prefecture_of(certificate_identity(bytes(der)).code))   # a fresh bytes object, as per request
    route_us = (time.perf_counter() - t0) / reps * 1e6
    p50_single = pct([x for r in results["single"] for x in r[1]], 50) * 1e6
    print(f"The router's own work per CS request (certificate → prefecture → tenant, {reps:,} times in-process): "
          f"{route_us:.1f} µs with the certificate cache = {route_us / p50_single * 100:.3f} % of the single server's "
          f"p50 ({parse_us:.1f} µs when the certificate is new).")
    # ADR 0053: the router reads a notification's body for the prefectures it names; beside it, the
    # tenant's own strict decoding of the same body (work it does anyway)
    single = json.dumps(wire.EXAMPLE, ensure_ascii=False).encode()
    batch = json.dumps({"notifications": [dict(wire.EXAMPLE, notification_id=f"242012-{i:09d}")
                                          for i in range(1000)]}, ensure_ascii=False).encode()
    timed = {}
    for name, body, n in (("single", single, reps), ("batch of 1,000", batch, 50)):
        for what, fn in (("router", named_prefectures), ("tenant decode", intake_decode)):
            t0 = time.perf_counter()
            for _ in range(n):
                fn(body)
            timed[(name, what)] = (time.perf_counter() - t0) / n * 1e6
    print(f"The router's look at the body (ADR 0053, in-process): single notification {timed[('single', 'router')]:.1f} µs "
          f"= {timed[('single', 'router')] / p50_single * 100:.3f} % of the single server's p50 (the tenant's own decoding "
          f"of it {timed[('single', 'tenant decode')]:.1f} µs); a batch of 1,000 ({len(batch) / 1024:,.0f} KiB) "
          f"{timed[('batch of 1,000', 'router')] / 1000:.2f} ms (tenant decoding "
          f"{timed[('batch of 1,000', 'tenant decode')] / 1000:.2f} ms).")


class ConnSampler:
    """The connections of the tenants' databases (``pg_stat_activity``), sampled every 50 ms while on."""

    def __init__(self, server: Server, databases: list[str]):
        self.server, self.databases = server, databases
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, pg_connections(self.server, self.databases))

    def __enter__(self) -> "ConnSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


#: the center's connection settings compared (ADR 0055): (label, pg_connections, pg_idle_seconds, outbox poll)
GOVERNED = ("ADR 0055: budget 40, idle 10 s, outbox poll 30 s", 40, 10.0, 30.0)
UNGOVERNED = ("before: no budget, idle kept, outbox poll 0.5 s", 0, 0.0, 0.5)


def load_round(c, per_tenant: int, k: int) -> tuple[float, list[float], int]:
    """``per_tenant`` notifications into every tenant, all tenants at once (one CS each)."""
    lat: list[float] = []
    bad = [0]
    lock = threading.Lock()

    def one(t) -> None:
        tc = Config.load(c.tenant_dir(t))
        muni = sorted(m.code for m in geo.municipalities(t.prefecture))[0]
        _dt, got, refused = send_round(tc, {muni: EventGenerator(muni, seed=time.time_ns() % 2**31, run_id=f"g{k}-{time.time_ns()}")
                                             .take(per_tenant)}, server_ca=c.ca_cert)
        with lock:
            lat.extend(got)
            bad[0] += refused

    secs = run_all([threading.Thread(target=one, args=(t,)) for t in c.tenants])
    return secs, lat, bad[0]


def measure(args, server: Server, c, databases: list[str], k: int, setting, work: Path) -> dict:
    label, budget, idle, poll = setting
    c.pg_connections, c.pg_idle_seconds, c.outbox_poll_seconds = budget, idle, poll
    c.save()
    proc = spawn("center", "serve", "--center-dir", str(c.dir), log=work / f"grow-{k}.err")
    out = {"setting": label}
    try:
        with ConnSampler(server, databases) if server.postgres else _Null() as sampler:
            out["start"] = wait_health(c.port, proc)
            out["conns_start_peak"] = sampler.peak if server.postgres else None
            time.sleep(settle(idle))            # idle: the connections closed after idle_seconds (+ the reaper's round)
            out["rss0"] = rss(proc.pid)[0]
            out["conns_idle"] = pg_connections(server, databases) if server.postgres else open_db_files(proc.pid)
            sampler.peak = 0
            dt, lat, bad = load_round(c, args.load_per_tenant, k)
            out["conns_load_peak"] = sampler.peak if server.postgres else open_db_files(proc.pid)
            out["load"] = (len(lat) / dt, pct(lat, 50), pct(lat, 95), bad)
            out["rss1"], out["hwm"] = rss(proc.pid)
            time.sleep(settle(idle))
            out["conns_after"] = pg_connections(server, databases) if server.postgres else open_db_files(proc.pid)
    finally:
        stop(proc)
    return out


def settle(idle: float) -> float:
    """Seconds until idle connections are surely closed: idle_seconds, a reaper round (idle/4), margin."""
    return idle * 1.25 + 4.0


class _Null:
    peak = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def tenants(args, server: Server, work: Path) -> None:
    steps = [int(x) for x in args.tenants.split(",") if x.strip()]
    c = init_center(work / "grow", port=free_port())
    databases: list[str] = []
    rows = []
    nationals = []
    for k in steps:
        t_add = time.perf_counter()
        added = 0
        while len(c.tenants) < k:
            n = ORDER[len(c.tenants)]
            url = server.database(f"g{n}") if server.postgres else None
            if url:
                databases.append(url.rsplit("/", 1)[1])
            add_tenant(c, n, db_url=url, training_required=False)
            tc = Config.load(c.tenant_dir(c.tenant(n)))
            if args.residents:                       # a small population of its own prefecture
                with bootstrap(tc) as inst:
                    populate(inst.registers, args.residents, seed=n)
            tc.national.port, tc.national.fuhyo_port = free_port(), free_port()   # its own national simulators
            tc.save()
            nationals.append(start_national(tc, synthetic=0))
            added += 1
        add_s = (time.perf_counter() - t_add) / added if added else float("nan")
        settings = [GOVERNED] if server.postgres else [("SQLite (no connections)", 0, 0.0, 30.0)]
        if server.postgres and k <= args.baseline_max:
            settings.append(UNGOVERNED)
        for setting in settings:
            m = measure(args, server, c, databases, k, setting, work)
            rows.append((k, add_s, m))
            print(f"  {k} tenants, {m['setting']}: start {m['start']:.1f} s, RSS {m['rss0']:.0f} → {m['rss1']:.0f} "
                  f"(peak {m['hwm']:.0f}) MiB, connections idle {m['conns_idle']}, under load ≤ {m['conns_load_peak']}, "
                  f"after {m['conns_after']}; load {m['load'][0]:.0f} req/s p95 {m['load'][2] * 1000:.0f} ms; "
                  f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    for running in nationals:
        for t, store in running:
            t.stop()
            store.close()
    what = "PostgreSQL connections (pg_stat_activity)" if server.postgres else "open SQLite database files"
    print(f"\n### Tenants ({engine_name(args.db_url)}; {args.residents} synthetic residents each; "
          f"load = {args.load_per_tenant} notifications into every tenant, all tenants at once)\n")
    print(f"| tenants | setting | `center add` (s/tenant) | start to /health 200 (s) | RSS idle (MiB) | RSS after load (MiB) | "
          f"peak RSS (MiB) | {what}: peak during start | idle | peak under load | idle after load | "
          f"load req/s | p50 (ms) | p95 (ms) | refused |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, add_s, m in rows:
        tp, p50, p95, bad = m["load"]
        print(f"| {k} | {m['setting']} | {add_s:.1f} | {m['start']:.1f} | {m['rss0']:.0f} | {m['rss1']:.0f} | {m['hwm']:.0f} | "
              f"{m['conns_start_peak'] if m['conns_start_peak'] is not None else '—'} | {m['conns_idle']} | "
              f"{m['conns_load_peak']} | {m['conns_after']} | {tp:.0f} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | {bad} |")
    print(f"\nLoad average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200, help="notifications per round and server")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--tenants", default="1,3,10", help="tenant counts to measure (e.g. 1,3,10,47)")
    ap.add_argument("--tenant-pool", default=None,
                    help="PostgreSQL pool_size,max_overflow of the center's tenants in the routing comparison "
                         "(default: the center's 1,2 of ADR 0036; 5,10 = the single server's)")
    ap.add_argument("--residents", type=int, default=100, help="tenants mode: synthetic residents seeded into each tenant")
    ap.add_argument("--load-per-tenant", type=int, default=5,
                    help="tenants mode: notifications into every tenant at once, to count connections under load")
    ap.add_argument("--baseline-max", type=int, default=10,
                    help="tenants mode, PostgreSQL: also run the center without ADR 0055's budget and idle release up "
                         "to this many tenants (above it the ungoverned center would need more than max_connections)")
    ap.add_argument("--skip-routing", action="store_true")
    ap.add_argument("--skip-tenants", action="store_true")
    ap.add_argument("--keep", action="store_true")
    add_argument(ap)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jukinet-center-bench-"))
    try:
        with Server(args.db_url) as server:
            if not args.skip_routing:
                routing(args, server, work)
            if not args.skip_tenants:
                tenants(args, server, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
