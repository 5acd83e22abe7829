"""事務1 throughput: the whole intake pipeline against the bare engine writing the same rows.

    .venv/bin/python bench/intake_bench.py [--residents 20000] [--single 3000] [--batched 20000] [--db-url URL]
                                           [--data-dir DIR] [--json OUT]

Starts, as separate processes, ``jukinet serve`` (HTTPS with mutual TLS, checks, history, outbox,
communication log, the outbox worker) and ``jukinet sim national``, on a fresh installation seeded
with ``--residents`` persons — SQLite, or with ``--db-url`` a throwaway PostgreSQL database (dropped at
the end; bench/engines.py). Then, from this process, municipal CS simulators (one thread
per municipality, each its own mTLS connection) send realistic generated changes:

- *single*: one notification per request (``POST /cs/v1/notifications``), ``--clients`` CS at once;
- *batched*: 1,000 notifications per request (``/cs/v1/notifications:batch``).

The baseline is the bare engine (``sqlite3``, WAL, synchronous=FULL, as the server, on a copy of the
seeded file; or ``psycopg`` on the same PostgreSQL database once the server has stopped, with its
default durable commit) writing the equivalent rows — the new current row, a history row, the outbox row, the idempotency row and the
communication-log row; the sealed 個人番号 as a ready-made blob — with ``executemany``: one
transaction per notification for the single case, one per 1,000 for the batched case. The
forwarding lag is ``delivered_at − created_at`` of the outbox entries (intake commit → confirmed
by the national sim). Prints a markdown table; ``--json`` also writes the figures to a file.

``--data-dir DIR``: an installation already seeded (either engine; ``bench/growth_bench.py`` measures
the intake at 0.2M / 1.8M / 14M residents this way) instead of a fresh one — its own prefecture's eight
most populous municipalities send, the bare engine writes on a copy of its SQLite file or on its
PostgreSQL database (and deletes its rows again there). The notifications the pipeline accepted stay in
the installation, as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Bare, Server, add_argument  # noqa: E402

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.sim.cs import CsClient, EventGenerator  # noqa: E402

MUNIS = ["242012", "242021", "242047", "242071", "242055", "242039", "242161", "242080"]


def jukinet(*args, **kw):
    return subprocess.run([sys.executable, "-m", "jukinet.cli", *args], check=True, capture_output=True, **kw)


def spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jukinet.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_up(url: str, ctx, timeout=60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            httpx.get(url, verify=ctx, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int | None = None) -> float:
    """user + system CPU seconds of a process so far (this one when ``pid`` is None)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(config, batches_by_muni: dict[str, list[list[dict]]]) -> tuple[float, int, int]:
    """Send every batch (len 1 → single endpoint); return (seconds, notifications, refused)."""
    counts = {"n": 0, "refused": 0}
    lock = threading.Lock()

    def worker(muni, batches):
        c = CsClient(config, muni, timeout=300)
        try:
            for b in batches:
                answers = [c.send(b[0])] if len(b) == 1 else c.send_batch(b)
                with lock:
                    counts["n"] += len(answers)
                    counts["refused"] += sum(a["status"] == "rejected" for a in answers)
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(m, bs)) for m, bs in batches_by_muni.items()]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, counts["n"], counts["refused"]


#: the columns of ``juki_current`` in the order of the rows below (migrations append columns, so the
#: table's own order differs)
CURRENT_COLUMNS = (
    "juminhyo_code, name, name_gaiji_count, name_kana, birth_date, sex, address, address_gaiji_count, "
    "kojin_bango_ct, kojin_bango_key, kojin_bango_bi, reason, change_date, retention_flag, name_seion, "
    "municipality_code, oaza_code, operator_id, terminal_id, timestamp, notified_date, gaiji_flag, deleted, "
    "update_seq, name_gaiji_change_seq, address_gaiji_change_seq, former_surname, former_surname_gaiji_count, "
    "former_surname_kana, former_surname_gaiji_change_seq")


def bare_engine(src: Path | str, work: Path, notifications: list[dict], per_tx: int) -> float:
    """The bare driver's executemany of the rows the pipeline writes for these notifications: on a copy
    of the seeded SQLite file, or on the PostgreSQL database (a URL) with codes and seqs of its own."""
    if isinstance(src, Path):
        db = work / f"bare-{per_tx}.sqlite3"
        shutil.copy(src, db)
        conn = Bare(sqlite3.connect(db, isolation_level=None), False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    else:
        conn = Bare.of_url(src)
    now = datetime.now(timezone.utc).isoformat()
    cur_rows, hist_rows, out_rows, proc_rows, log_rows = [], [], [], [], []
    # seqs after the installation's own (a seeded 東京都 is past 26 million), distinct per run (PostgreSQL:
    # the same database); codes with a letter, which no real 住民票コード has
    base = conn.execute("SELECT coalesce(max(update_seq), 0) FROM juki_current").fetchone()[0] + 1 + 10 * per_tx
    for i, n in enumerate(notifications):
        r = n["record"]
        seq = base + i
        code = f"B{seq:010d}"
        cur_rows.append((code, r["name"], 0, r["name_kana"], r["birth_date"], r["sex"], r.get("address") or "",
                         0, (r.get("kojin_bango") or "").encode() * 3, 1, "b" * 32,   # sealed 個人番号
                         n["reason"], n["change_date"], False, r["name_kana"],
                         n["municipality_code"], r.get("oaza_code"), None, None, now, now[:10], False, False, seq,
                         0, 0, None, 0, None, 0))
        hist_rows.append((now, seq, n["reason"], *cur_rows[-1]))
        out_rows.append((seq, f"240001-juki-{seq}", code, None, "pending", 0, None, now, None))
        proc_rows.append((n["municipality_code"], f"bare-{seq}", "0" * 64, seq, now))
        log_rows.append((now, "cs", "in", "lg:" + n["municipality_code"], "f" * 64, n["notification_id"],
                         "0" * 64, "0" * 64, 700, "accepted", None))
    ph = lambda k: ",".join("?" * k)  # noqa: E731
    t0 = time.perf_counter()
    for s in range(0, len(notifications), per_tx):
        e = s + per_tx
        conn.begin_write()
        conn.executemany(f"INSERT INTO juki_current ({CURRENT_COLUMNS}) VALUES ({ph(30)})", cur_rows[s:e])
        conn.executemany(f"INSERT INTO juki_history (superseded_at, superseded_by_seq, superseded_by_reason, "
                         f"{CURRENT_COLUMNS}) VALUES ({ph(33)})", hist_rows[s:e])
        conn.executemany(f"INSERT INTO outbox VALUES ({ph(9)})", out_rows[s:e])
        conn.executemany(f"INSERT INTO intake_notifications VALUES ({ph(5)})", proc_rows[s:e])
        conn.executemany("INSERT INTO comm_log (at, channel, direction, peer, peer_cert_sha256, message_id, digest, "
                         f"envelope_digest, size, result, code) VALUES ({ph(11)})", log_rows[s:e])
        conn.commit()
    dt = time.perf_counter() - t0
    if not isinstance(src, Path):    # the installation's own database: take the baseline's rows out again
        codes, seqs = [r[0] for r in cur_rows], [r[0] for r in out_rows]
        conn.begin_write()
        for sql, arg in (("DELETE FROM juki_current WHERE juminhyo_code = ANY(?)", codes),
                         ("DELETE FROM juki_history WHERE juminhyo_code = ANY(?)", codes),
                         ("DELETE FROM outbox WHERE update_seq = ANY(?)", seqs),
                         ("DELETE FROM intake_notifications WHERE notification_id LIKE 'bare-%'", None),
                         ("DELETE FROM comm_log WHERE peer_cert_sha256 = ?", "f" * 64)):
            conn.execute(sql, (arg,) if arg is not None else ())
        conn.commit()
    conn.close()
    return dt


def busiest(regs, k: int = 8) -> tuple[list[str], int]:
    """The installation's ``k`` most populous municipalities (the CS that send the most) and its
    number of current residents."""
    with regs.engine("juki").connect() as c:
        rows = c.exec_driver_sql("SELECT municipality_code, count(*) FROM juki_current WHERE NOT deleted "
                                 "GROUP BY municipality_code ORDER BY count(*) DESC").fetchall()
    return [m for m, _ in rows[:k]], sum(n for _, n in rows)


def lag_stats(config) -> tuple[float, float, float, int]:
    regs = bootstrap(config).registers
    try:
        lags = []
        for reg in ("juki", "fuhyo"):
            with regs.engine(reg).connect() as c:
                for created, delivered in c.exec_driver_sql(
                        "SELECT created_at, delivered_at FROM outbox WHERE delivered_at IS NOT NULL"):
                    a = datetime.fromisoformat(str(created))
                    b = datetime.fromisoformat(str(delivered))
                    lags.append((b - a).total_seconds())
        lags.sort()
        if not lags:
            return 0.0, 0.0, 0.0, 0
        return lags[len(lags) // 2], lags[int(len(lags) * 0.95)], lags[-1], len(lags)
    finally:
        regs.dispose()


def pending(config) -> int:
    regs = bootstrap(config).registers
    try:
        n = 0
        for reg in ("juki", "fuhyo"):
            with regs.engine(reg).connect() as c:
                n += c.exec_driver_sql("SELECT count(*) FROM outbox WHERE state = 'pending'").scalar()
        return n
    finally:
        regs.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--single", type=int, default=3_000)
    ap.add_argument("--batched", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--data-dir", type=Path, help="an installation already seeded, instead of a fresh one")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--forward-after", action="store_true",
                    help="run serve without its outbox worker; forward afterwards with `jukinet outbox --once` "
                         "(intake without concurrent forwarding, and the forwarding rate on its own)")
    add_argument(ap)
    args = ap.parse_args()
    with Server(args.db_url) as server:
        run(args, server)


def run(args, server: Server) -> None:
    work = Path(tempfile.mkdtemp(prefix="jukinet-intake-bench-"))
    if args.data_dir:
        data = args.data_dir
        config = Config.load(data)
        port = config.server.port
        db_url = config.database.juki_url if config.database.juki_url.startswith("postgresql") else None
    else:
        data = work / "data"
        port = 19700 + os.getpid() % 1000 * 3
        db_url = server.database("inst")
        jukinet("init", "--data-dir", str(data), "--port-base", str(port), *(["--db-url", db_url] if db_url else []))
        jukinet("seed", "--data-dir", str(data), "--residents", str(args.residents))
        config = Config.load(data)
    worker_was = config.intake.outbox_worker
    if args.forward_after:
        config.intake.outbox_worker = False
        config.save()
    if db_url:
        template = config.database.juki_url     # the bare engine writes to the same database afterwards
    else:
        template = work / "template-juki.sqlite3"
        shutil.copy(data / "juki.sqlite3", template)   # for the bare engine: same schema and rows
    ctx = ssl.create_default_context(cafile=str(config.resolve(config.tls.ca_cert)))

    regs = bootstrap(config).registers
    munis, residents = busiest(regs) if args.data_dir else (MUNIS, args.residents)
    gens = {m: EventGenerator.from_registers(regs, m, seed=i, run_id=f"bench{os.getpid()}")
            for i, m in enumerate(munis)}
    regs.dispose()
    singles = {m: [[n] for n in gens[m].take(args.single // args.clients)] for m in munis[:args.clients]}
    per_muni = args.batched // len(munis)
    batched = {m: [gens[m].take(min(1000, per_muni - k)) for k in range(0, per_muni, 1000)] for m in munis}

    nat = spawn("sim", "national", "--data-dir", str(data), "--synthetic", "0")
    srv = spawn("serve", "--data-dir", str(data))
    try:
        wait_up(f"https://127.0.0.1:{port}/health", ctx)
        time.sleep(1.0)
        cpu0 = [cpu_seconds(srv.pid), cpu_seconds(nat.pid), cpu_seconds()]
        t_single, n_single, ref_single = run_clients(config, singles)
        cpu1 = [cpu_seconds(srv.pid), cpu_seconds(nat.pid), cpu_seconds()]
        cpu_single = [(b - a) * 1000 / max(n_single, 1) for a, b in zip(cpu0, cpu1)]
        t_batch, n_batch, ref_batch = run_clients(config, batched)
        t_end = time.perf_counter()
        if args.forward_after:
            backlog = pending(config)
            jukinet("outbox", "--data-dir", str(data), "--once")
            drain_after = time.perf_counter() - t_end
            print(f"forwarding on its own: {backlog:,} updates in {drain_after:.1f} s = "
                  f"{backlog / drain_after:,.0f}/s (incl. process start)")
        while pending(config) and time.perf_counter() - t_end < 300:
            time.sleep(0.2)
        drain_after = time.perf_counter() - t_end
        p50, p95, lmax, delivered = lag_stats(config)
    finally:
        for p in (srv, nat):
            p.send_signal(signal.SIGINT)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    if args.forward_after and args.data_dir:      # a given installation keeps its own setting
        config.intake.outbox_worker = worker_was
        config.save()
    flat_single = [b[0] for bs in singles.values() for b in bs]
    flat_batch = [n for bs in batched.values() for b in bs for n in b]
    bare_single = bare_engine(template, work, flat_single, 1)
    bare_batch = bare_engine(template, work, flat_batch, 1000)

    r_single, r_batch = n_single / t_single, n_batch / t_batch
    b_single, b_batch = len(flat_single) / bare_single, len(flat_batch) / bare_batch if flat_batch else 0.0
    version = server.version() if not args.data_dir else ("PostgreSQL" if db_url else "SQLite")
    print(f"\n事務1 intake — {version}, {os.cpu_count()} cores, {residents:,} residents seeded, "
          f"{args.clients} CS at once (single), {len(munis)} CS (batched), forwarding "
          f"{'after the intake' if args.forward_after else 'concurrent (outbox worker in serve)'}\n")
    print("| case | notifications | refused | pipeline /s | bare engine /s | pipeline ÷ bare | target |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| single (1 per request, 1 tx each) | {n_single:,} | {ref_single} | {r_single:,.0f} | {b_single:,.0f} "
          f"| {r_single / b_single:.2f} | ≥ 300/s |")
    if n_batch:
        print(f"| batched (1,000 per request) | {n_batch:,} | {ref_batch} | {r_batch:,.0f} | {b_batch:,.0f} "
              f"| {r_batch / b_batch:.2f} | ≥ 5,000/s |")
    print(f"\nCPU per single notification (ms): server {cpu_single[0]:.2f} (intake, outbox worker), national sim "
          f"{cpu_single[1]:.2f}, CS simulators {cpu_single[2]:.2f}; machine {os.cpu_count()} cores — "
          f"{n_single / t_single * sum(cpu_single) / 1000 / os.cpu_count():.0%} busy with these three")
    print(f"\nForwarding lag (intake commit → confirmed by the national sim), {delivered:,} updates: "
          f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {lmax:.2f} s; outbox empty {drain_after:.1f} s after the last "
          f"acknowledgement.")
    if args.json:
        args.json.write_text(json.dumps({
            "residents": residents, "clients": args.clients, "municipalities": munis,
            "single": {"n": n_single, "refused": ref_single, "per_s": r_single, "bare_per_s": b_single,
                       "cpu_ms": {"server": cpu_single[0], "national_sim": cpu_single[1], "cs": cpu_single[2]}},
            "batched": {"n": n_batch, "refused": ref_batch, "per_s": r_batch, "bare_per_s": b_batch},
            "lag_s": {"p50": p50, "p95": p95, "max": lmax, "delivered": delivered}}, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"data kept in {work}")


if __name__ == "__main__":
    main()
