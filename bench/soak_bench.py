"""Soak (issue 17): a bounded mixed load against ONE real server process; resident memory and latency over time.

    python bench/soak_bench.py [--minutes 30] [--db-url ADMIN_URL] [--residents N] [--sample-every 60]
                               [--csv FILE] [--keep]

Sets up a fresh data directory (``jukinet init`` — SQLite by default; with ``--db-url`` a PostgreSQL
database of its own, created here and dropped at the end — and ``jukinet seed --residents N``),
registers two operators on two activated terminals through the security service (a 業務担当者 with
search + provision, a 管理責任者), each allowed the password + TOTP fallback, then starts
``jukinet serve`` (the measured process) and ``jukinet sim national`` (the peer the outbox forwards
to) as subprocesses on 127.0.0.1. For ``--minutes`` it runs, from three client threads, a steady
modest load (a few requests per second in total; the machine has 2 cores):

* **CS thread** — 事務1 intake over mutual TLS (:class:`jukinet.sim.cs.CsClient`, four municipalities
  in turn, generated realistic changes): single notifications (``/cs/v1/notifications``) and, every
  ``--batch-every``-th request, a small batch of ``--batch-size`` (``/cs/v1/notifications:batch``);
* **operator thread** — signed in with ``POST /api/v1/auth/password`` (password + TOTP): 4情報 search
  (``POST /api/v1/search``: kana surname prefix + 生年月日), the detail of a person
  (``POST /api/v1/persons/detail``) and a single provision (``POST /api/v1/provision``, by
  住民票コード or by 4情報);
* **manager thread** — signed in the same way; 事務3 has no terminal API, so its disclosure-side read
  is the operator screen of the form register (``GET /disclosure/forms``, session cookie) every
  ``--disclosure-every`` s; and every ``--report-every`` s the monthly access-log analysis of the
  current month through the server (``POST /audit/reports/generate``: analysis, PDF + CSV, digest,
  checkpoint).

Every ``--sample-every`` s the server's resident memory (VmRSS of its PID from ``/proc``, psutil is not
needed), its threads and open file descriptors are sampled. At the end: a markdown table — RSS at the
baseline (5 min; half the run when it is shorter than 10 min) and at the end with their ratio (goal:
within 10 %), p50/p95 per request kind in the first and last third of the run (goal: p95 stable),
counts and errors per kind with their codes. ``--csv`` writes the samples (with the requests, errors
and p95 per kind since the previous sample). Only counts, codes and times are printed, never personal
data. The server is stopped in a ``finally`` whatever happens.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pyotp
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.security.oplog import Actor  # noqa: E402
from jukinet.sim.cs import CsClient, EventGenerator  # noqa: E402
from jukinet.store.tables import juki_current  # noqa: E402
from jukinet.web import auth as A  # noqa: E402

MUNIS = ["242012", "242021", "242047", "242071"]        # 津, 四日市, 伊勢, 鈴鹿
BENCH = Actor("soak-bench", None)
JST = timezone(timedelta(hours=9))
#: every client connection of the load: closed before the server is stopped (it waits for open ones)
OPEN: list[httpx.Client] = []
KINDS = ["intake_single", "intake_batch", "search", "detail", "provision", "disclosure_forms", "audit_report",
         "login"]
LABEL = {
    "intake_single": "CS intake, 1 notification (mTLS)",
    "intake_batch": "CS intake, small batch (mTLS)",
    "search": "4情報 search (terminal API)",
    "detail": "detail (terminal API)",
    "provision": "single provision (terminal API)",
    "disclosure_forms": "事務3 form register (UI page; no API)",
    "audit_report": "monthly analysis (UI, in the server)",
    "login": "login, password + TOTP (API)",
}


# ------------------------------------------------------------------ processes

def jukinet(*args) -> None:
    r = subprocess.run([sys.executable, "-m", "jukinet.cli", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"jukinet {args[0]} failed (exit {r.returncode}): {r.stderr[-2000:]}")


def spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jukinet.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(p: subprocess.Popen | None) -> None:
    """SIGINT (as Ctrl-C), then SIGKILL after 20 s."""
    if p is None or p.poll() is not None:
        return
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        p.wait(20)
        how = "stopped"
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
        how = "killed"
    print(f"{p.args[3]} {how} in {time.monotonic() - t:.1f} s", file=sys.stderr)


def free_port_base() -> int:
    """Three consecutive free ports on 127.0.0.1 (server, national sim, 附票 national sim)."""
    rng = random.Random(os.getpid())
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        try:
            for k in range(3):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
    raise SystemExit("no free ports")


def wait_up(url: str, ctx, timeout=90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, verify=ctx, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def proc_sample(pid: int) -> dict:
    """VmRSS / VmHWM (KiB), threads and open descriptors of a process, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(val.split()[0])
        elif key == "Threads":
            out[key] = int(val)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class PostgresDb:
    """A database of the bench's own on the given server (and the register roles ``init`` makes in it)."""

    def __init__(self, admin_url: str):
        self.admin = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.name = f"jukinet_soak_{os.getpid()}_{secrets.token_hex(3)}"
        self.engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with self.engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = self.admin.set(drivername="postgresql", database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            for register in ("juki", "fuhyo", "admin"):
                c.execute(text(f'DROP ROLE IF EXISTS "{self.name}_{register}"'))
        self.engine.dispose()


# ------------------------------------------------------------------ setup through the services

class Login:
    """An operator allowed the password + TOTP fallback, on an activated terminal."""

    def __init__(self, operator_id: str, password: str, totp_secret: str, terminal: str):
        self.operator_id, self.password, self.terminal = operator_id, password, terminal
        self.totp = pyotp.TOTP(totp_secret)
        self.last_step = None

    def code(self) -> str:
        """A TOTP code of a step not used before (a code is accepted once: wait for the next step)."""
        while True:
            step = self.totp.timecode(datetime.now(timezone.utc))
            if step != self.last_step:
                self.last_step = step
                return self.totp.now()
            time.sleep(0.5)


def prepare(data_dir: Path, sample: int) -> tuple[Login, Login, list[tuple], dict]:
    """Operators and terminals (security service), the persons the load draws on, the CS generators."""
    with bootstrap(data_dir) as inst:
        sec = inst.security
        logins = []
        for oid, roles, regs, affairs in (("SOAK-OP", ["operator"], ["juki", "fuhyo"], ["search", "provision"]),
                                          ("SOAK-MGR", ["manager"], ["juki"], [])):
            sec.register_operator(BENCH, display_name=f"ソーク {oid}", roles=roles, registers=regs, affairs=affairs,
                                  operator_id=oid, password_allowed=True)
            # G1 (ADR 0034): no operator is activated without this year's security training
            sec.record_training(BENCH, oid, course="住基ネット情報セキュリティ研修",
                                taken_on=datetime.now(timezone(timedelta(hours=9))).date().isoformat())
            grant = sec.grant_password(BENCH, oid)              # pending → active, password + TOTP secret
            _t, code = sec.add_terminal(BENCH, f"ソーク端末 {oid}")
            tid, secret = sec.activate_terminal(code)
            logins.append(Login(oid, grant.password, grant.totp_secret, f"{tid}.{secret}"))
        t = juki_current
        with inst.registers.engine("juki").connect() as conn:
            rows = conn.execute(select(t.c.juminhyo_code, t.c.name, t.c.name_kana, t.c.birth_date, t.c.sex)
                                .where(t.c.deleted.is_(False)).order_by(func.random()).limit(sample)).all()
        people = [(r.juminhyo_code, r.name, r.name_kana, r.birth_date.isoformat(), r.sex) for r in rows]
        gens = {m: EventGenerator.from_registers(inst.registers, m, seed=i, run_id=f"soak{os.getpid()}")
                for i, m in enumerate(MUNIS)}
    return logins[0], logins[1], people, gens


# ------------------------------------------------------------------ the load

class Recorder:
    def __init__(self, t0: float):
        self.t0 = t0
        self.lock = threading.Lock()
        self.rows: list[tuple[float, str, float, str | None]] = []     # (start s, kind, seconds, error code)
        self.extra: Counter = Counter()

    def add(self, kind: str, start: float, seconds: float, error: str | None) -> None:
        with self.lock:
            self.rows.append((start - self.t0, kind, seconds, error))

    def note(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.extra[key] += n

    def snapshot(self) -> list:
        with self.lock:
            return list(self.rows)


def error_code(r: httpx.Response) -> str | None:
    if r.status_code < 400:
        return None
    try:
        return f"{r.status_code} {r.json()['error']['code']}"
    except Exception:  # noqa: BLE001
        return f"HTTP {r.status_code}"


class Paced:
    """Calls at a steady rate: the next one at start + k × interval, never a burst to catch up."""

    def __init__(self, interval: float, stop_at: float, stopping: threading.Event):
        self.interval, self.stop_at, self.stopping = interval, stop_at, stopping
        self.next = time.monotonic()

    def __iter__(self):
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= self.stop_at:
                return
            if self.next > now:
                if self.stopping.wait(self.next - now):
                    return
            self.next = max(self.next + self.interval, time.monotonic())
            yield


def timed(rec: Recorder, kind: str, fn, judge=None):
    """Run one request; record its latency and error code (an exception is an error too). ``judge``:
    the error of an answer that is not an HTTP error (refused notifications in an intake answer)."""
    t = time.monotonic()
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - a failure is a figure of the soak, not a crash of the bench
        rec.add(kind, t, time.monotonic() - t, f"EXC {type(e).__name__}")
        return None
    dt = time.monotonic() - t
    rec.add(kind, t, dt, judge(r) if judge else error_code(r))
    return r


def cs_thread(config: Config, gens: dict, a, rec: Recorder, stop_at: float, stopping: threading.Event) -> None:
    clients = {m: CsClient(config, m, timeout=120) for m in MUNIS}
    OPEN.extend(c.http for c in clients.values())
    try:
        k = 0
        for _ in Paced(1.0 / a.cs_rate, stop_at, stopping):
            m = MUNIS[k % len(MUNIS)]
            k += 1
            if k % a.batch_every == 0:
                notes = gens[m].take(a.batch_size)
                timed(rec, "intake_batch", lambda: clients[m].send_batch(notes),
                      judge=lambda answers: _intake_error(answers, rec))
            else:
                note = gens[m].next()
                timed(rec, "intake_single", lambda: clients[m].send(note),
                      judge=lambda answer: _intake_error([answer], rec))
    finally:
        for c in clients.values():
            c.close()


def _intake_error(answers: list[dict], rec: Recorder) -> str | None:
    bad = [a for a in answers if a["status"] not in ("accepted", "duplicate")]
    rec.note("notifications", len(answers))
    for a in answers:
        rec.note(f"intake:{a['status']}")
    if not bad:
        return None
    return "rejected " + ",".join(sorted({(a.get("error") or {}).get("code", "?") for a in bad}))


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Terminal:
    """An HTTPS client of an operator terminal: the API with a bearer token, the UI with cookies."""

    def __init__(self, base: str, ctx, login: Login, rec: Recorder):
        self.login_data, self.rec = login, rec
        self.http = httpx.Client(base_url=base, verify=ctx, timeout=120)
        OPEN.append(self.http)
        self.token = None
        self.csrf = None

    def login(self) -> None:
        lg = self.login_data
        totp = lg.code()
        r = timed(self.rec, "login", lambda: self.http.post(
            "/api/v1/auth/password", headers={A.TERMINAL_HEADER: lg.terminal},
            json={"operator_id": lg.operator_id, "password": lg.password, "totp": totp}))
        if r is None or r.status_code != 200:
            raise RuntimeError(f"login of {lg.operator_id} refused: {None if r is None else error_code(r)}")
        self.token, self.csrf = r.json()["token"], None

    def api(self, path: str, body: dict) -> httpx.Response:
        return self.call(lambda: self.http.post(path, json=body, headers={
            A.TERMINAL_HEADER: self.login_data.terminal, "Authorization": f"Bearer {self.token}"}))

    def _cookies(self) -> dict:
        # the Cookie header by hand: the client's jar does not replace an explicit one
        return {"Cookie": f"{A.TERMINAL_COOKIE}={self.login_data.terminal}; {A.SESSION_COOKIE}={self.token}"}

    def ui(self, method: str, path: str, data: dict | None = None) -> httpx.Response:
        def go():
            headers = self._cookies()
            if data is not None:
                if self.csrf is None:   # the session's CSRF token, from a page that carries it (a logged view)
                    m = CSRF_RE.search(self.http.get("/audit/reports", headers=self._cookies()).text)
                    self.csrf = m.group(1) if m else ""
                headers["X-CSRF-Token"] = self.csrf
            return self.http.request(method, path, data=data, headers=headers)
        return self.call(go)

    def call(self, go) -> httpx.Response:
        """A request; when the session was ended (idle, expired) sign in again once and repeat it."""
        r = go()
        if r.status_code == 401:
            self.rec.note(f"relogin after {error_code(r)}")
            self.login()
            r = go()
        return r

    def close(self) -> None:
        self.http.close()


def op_thread(term: Terminal, people: list[tuple], a, rec: Recorder, stop_at: float, stopping: threading.Event):
    rng = random.Random(7)
    purpose = {"purpose_code": "inquiry"}
    k = 0
    for _ in Paced(1.0 / a.op_rate, stop_at, stopping):
        code, name, kana, birth, sex = people[rng.randrange(len(people))]
        step = k % 3
        k += 1
        if step == 0:
            body = {**purpose, "registers": ["juki"], "name": kana.split("\u3000")[0], "name_match": "prefix",
                    "birth_date": birth}
            r = timed(rec, "search", lambda: term.api("/api/v1/search", body))
            if r is not None and r.status_code == 200:
                rec.note("search hits", r.json()["total"])
        elif step == 1:
            body = {**purpose, "register": "juki", "juminhyo_code": code}
            timed(rec, "detail", lambda: term.api("/api/v1/persons/detail", body))
        else:
            body = ({"requester_code": "SOMU", "affair_code": "SOMU-KENZEI", "juminhyo_code": code}
                    if rng.random() < 0.7 else
                    {"requester_code": "SOMU", "affair_code": "SOMU-KENZEI", "name": name, "birth_date": birth,
                     "sex": sex})
            r = timed(rec, "provision", lambda: term.api("/api/v1/provision", body))
            if r is not None and r.status_code == 200:
                rec.note(f"provision:{r.json()['outcome']}")


def page(marker: str):
    """A screen answered 200 must be that screen (not a login page or a message)."""
    def judge(r: httpx.Response) -> str | None:
        return error_code(r) or (None if marker in r.text else f"{r.status_code} UNEXPECTED_PAGE")
    return judge


def mgr_thread(term: Terminal, a, rec: Recorder, stop_at: float, stopping: threading.Event):
    last_report = time.monotonic() - a.report_every + a.first_report
    for _ in Paced(a.disclosure_every, stop_at, stopping):
        timed(rec, "disclosure_forms", lambda: term.ui("GET", "/disclosure/forms"), judge=page("<h1>帳票管理簿</h1>"))
        if time.monotonic() - last_report >= a.report_every:
            last_report = time.monotonic()
            month = datetime.now(JST).strftime("%Y-%m")
            timed(rec, "audit_report", lambda: generate_report(term, month), judge=report_page)


def generate_report(term: Terminal, month: str) -> httpx.Response:
    """The monthly analysis as the 管理責任者 sees it: POST starts it in the background (303 to its
    progress page, ADR 0048), the progress page is polled as the browser does (every second) until it
    shows the result; the time is the whole wait."""
    r = term.ui("POST", "/audit/reports/generate", {"month": month})
    if r.status_code != 303:
        return r
    where = r.headers["location"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        r = term.ui("GET", where)
        if r.status_code != 200 or "処理の状況</h1>" not in r.text:
            return r
        time.sleep(1.0)
    return r


def report_page(r: httpx.Response) -> str | None:
    """The result page of the analysis (not its progress page, not a refusal)."""
    if "処理の状況</h1>" in r.text:
        return "TIMEOUT still running after 15 min"
    return page("<h1>操作ログ月次分析")(r)


# ------------------------------------------------------------------ report

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def ms(x) -> str:
    return "—" if math.isnan(x) else f"{x * 1000:.1f}"


def report(a, engine: str, rows, samples, rec: Recorder, duration: float, baseline_s: float) -> str:
    out = []
    load = os.getloadavg()
    out.append(f"\n### Soak — {engine}, {a.residents:,} residents seeded, {duration / 60:.1f} min, "
               f"{os.cpu_count()} cores, load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n")
    base = min(samples, key=lambda s: abs(s["t"] - baseline_s))
    end = samples[-1]
    out.append("| server RSS | at | MiB | threads | open fds |")
    out.append("|---|---:|---:|---:|---:|")
    out.append(f"| start (after start-up, before the load) | {samples[0]['t'] / 60:.1f} min | "
               f"{samples[0]['VmRSS'] / 1024:.1f} | {samples[0]['Threads']} | {samples[0]['fds']} |")
    out.append(f"| baseline ({'5 min' if baseline_s == 300 else 'half the run: shorter than 10 min'}) | "
               f"{base['t'] / 60:.1f} min | {base['VmRSS'] / 1024:.1f} | {base['Threads']} | {base['fds']} |")
    out.append(f"| end | {end['t'] / 60:.1f} min | {end['VmRSS'] / 1024:.1f} | {end['Threads']} | {end['fds']} |")
    ratio = end["VmRSS"] / base["VmRSS"]
    out.append(f"\nRSS end ÷ baseline: **{ratio:.3f}** ({(ratio - 1) * 100:+.1f} %; goal within ±10 %: "
               f"{'met' if abs(ratio - 1) <= 0.10 else 'NOT met'}); peak (VmHWM) {end['VmHWM'] / 1024:.1f} MiB.\n")
    third = duration / 3
    out.append("| request kind | count | errors | first third p50 / p95 ms | last third p50 / p95 ms | "
               "p95 last ÷ first |")
    out.append("|---|---:|---:|---:|---:|---:|")
    errors: dict[str, Counter] = {}
    for kind in KINDS:
        mine = [r for r in rows if r[1] == kind]
        if not mine:
            continue
        errs = Counter(r[3] for r in mine if r[3])
        if errs:
            errors[kind] = errs
        first = [r[2] for r in mine if r[0] < third and not r[3]]
        last = [r[2] for r in mine if r[0] >= 2 * third and not r[3]]
        ratio_txt = f"{pct(last, 95) / pct(first, 95):.2f}" if first and last else "—"
        out.append(f"| {LABEL[kind]} | {len(mine):,} | {sum(errs.values())} | "
                   f"{ms(pct(first, 50))} / {ms(pct(first, 95))} ({len(first)}) | "
                   f"{ms(pct(last, 50))} / {ms(pct(last, 95))} ({len(last)}) | {ratio_txt} |")
    total = len(rows)
    out.append(f"\n{total:,} requests in {duration:.0f} s = {total / duration:.2f}/s; "
               f"{rec.extra['notifications']:,} notifications "
               + ", ".join(f"{k.split(':')[1]} {v:,}" for k, v in sorted(rec.extra.items()) if k.startswith("intake:"))
               + "; provision outcomes "
               + ", ".join(f"{k.split(':')[1]} {v:,}" for k, v in sorted(rec.extra.items())
                           if k.startswith("provision:"))
               + f"; search hits {rec.extra['search hits']:,} in total.")
    relog = {k: v for k, v in rec.extra.items() if k.startswith("relogin")}
    if relog:
        out.append(f"Sessions renewed: {relog}.")
    if errors:
        out.append("\nErrors by code: " + "; ".join(f"{LABEL[k]}: " + ", ".join(f"{c} ×{n}" for c, n in v.items())
                                                   for k, v in errors.items()))
    else:
        out.append("\nNo errors.")
    return "\n".join(out)


def write_csv(path: Path, samples, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["elapsed_s", "rss_kib", "hwm_kib", "threads", "fds", "requests_total", "errors_total"]
                   + [f"{k}_{x}" for k in KINDS for x in ("n", "err", "p95_ms")])
        prev = -1.0
        for s in samples:
            window = [r for r in rows if prev < r[0] <= s["t"]]
            upto = [r for r in rows if r[0] <= s["t"]]
            cells = []
            for k in KINDS:
                mine = [r for r in window if r[1] == k]
                ok = [r[2] for r in mine if not r[3]]
                cells += [len(mine), sum(1 for r in mine if r[3]), f"{pct(ok, 95) * 1000:.1f}" if ok else ""]
            w.writerow([f"{s['t']:.1f}", s["VmRSS"], s["VmHWM"], s["Threads"], s["fds"], len(upto),
                        sum(1 for r in upto if r[3])] + cells)
            prev = s["t"]


# ------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--db-url", help="PostgreSQL administrator URL (a database of the bench's own is created "
                                     "there and dropped at the end); SQLite without it")
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--sample-every", type=float, default=60.0, help="seconds between RSS samples")
    ap.add_argument("--csv", type=Path, help="write the samples to this CSV file")
    ap.add_argument("--cs-rate", type=float, default=1.0, help="CS requests per second")
    ap.add_argument("--batch-every", type=int, default=5, help="every Nth CS request is a batch")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--op-rate", type=float, default=1.5, help="operator API requests per second")
    ap.add_argument("--disclosure-every", type=float, default=10.0, help="seconds between form-register reads")
    ap.add_argument("--report-every", type=float, default=180.0, help="seconds between monthly analyses")
    ap.add_argument("--first-report", type=float, default=30.0, help="seconds until the first monthly analysis")
    ap.add_argument("--people", type=int, default=500, help="persons the operator load draws on")
    ap.add_argument("--keep", action="store_true", help="keep the data directory (SQLite)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a kill runs the finally below too

    work = Path(tempfile.mkdtemp(prefix="jukinet-soak-"))
    data = work / "data"
    pg = PostgresDb(a.db_url) if a.db_url else None
    srv = nat = None
    stopping = threading.Event()      # set on the way out (Ctrl-C, a failure): the client threads end
    try:
        port = free_port_base()
        t = time.perf_counter()
        jukinet("init", "--data-dir", str(data), "--port-base", str(port), *(["--db-url", pg.url] if pg else []))
        jukinet("seed", "--data-dir", str(data), "--residents", str(a.residents))
        print(f"installation ready in {time.perf_counter() - t:.0f} s ({'PostgreSQL' if pg else 'SQLite'})",
              file=sys.stderr)
        op_login, mgr_login, people, gens = prepare(data, a.people)
        config = Config.load(data)
        ctx = ssl.create_default_context(cafile=str(config.resolve(config.tls.ca_cert)))
        base = f"https://127.0.0.1:{config.server.port}"
        assert config.server.host in ("127.0.0.1", "localhost"), "the bench sends traffic to 127.0.0.1 only"

        nat = spawn("sim", "national", "--data-dir", str(data), "--synthetic", "0")
        srv = spawn("serve", "--data-dir", str(data))
        wait_up(f"{base}/health", ctx)
        time.sleep(1.0)

        t0 = time.monotonic()
        rec = Recorder(t0)
        samples = [{"t": 0.0, **proc_sample(srv.pid)}]
        op_term, mgr_term = Terminal(base, ctx, op_login, rec), Terminal(base, ctx, mgr_login, rec)
        op_term.login()
        mgr_term.login()
        duration = a.minutes * 60
        stop_at = t0 + duration
        failures = []

        def guard(fn, *args):
            def run():
                try:
                    fn(*args)
                except BaseException as e:  # noqa: BLE001
                    failures.append(f"{fn.__name__}: {type(e).__name__}: {e}")
                    stopping.set()
            return threading.Thread(target=run, name=fn.__name__, daemon=True)

        threads = [guard(cs_thread, config, gens, a, rec, stop_at, stopping),
                   guard(op_thread, op_term, people, a, rec, stop_at, stopping),
                   guard(mgr_thread, mgr_term, a, rec, stop_at, stopping)]
        for th in threads:
            th.start()
        next_sample = t0 + a.sample_every
        while any(th.is_alive() for th in threads):
            now = time.monotonic()
            if now >= next_sample and now < stop_at:
                if srv.poll() is not None:
                    failures.append(f"server exited with {srv.returncode}")
                    stopping.set()
                    break
                samples.append({"t": now - t0, **proc_sample(srv.pid)})
                n = len(rec.rows)
                print(f"  {samples[-1]['t'] / 60:5.1f} min  RSS {samples[-1]['VmRSS'] / 1024:7.1f} MiB  "
                      f"{n:,} requests", file=sys.stderr)
                next_sample += a.sample_every
            time.sleep(0.2)
        for th in threads:
            th.join()
        elapsed = min(time.monotonic() - t0, duration) if not failures else time.monotonic() - t0
        if srv.poll() is None:
            samples.append({"t": time.monotonic() - t0, **proc_sample(srv.pid)})
        op_term.close()
        mgr_term.close()
        if failures:
            print("the load stopped early: " + "; ".join(failures), file=sys.stderr)
        rows = rec.snapshot()
        baseline_s = 300.0 if duration >= 600 else duration / 2
        print(report(a, "PostgreSQL 15" if pg else "SQLite", rows, samples, rec, elapsed, baseline_s))
        if a.csv:
            write_csv(a.csv, samples, rows)
            print(f"\nsamples written to {a.csv}", file=sys.stderr)
        if failures:
            sys.exit(1)
    finally:
        stopping.set()
        for c in OPEN:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - a request in flight in a client thread; the server is stopped next
                pass
        stop(srv)
        stop(nat)
        if pg is not None:
            pg.drop()
        if a.keep:
            print(f"data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
