"""Q1 (issue 14; ADR 0045): the center process killed with ``kill -9`` in the middle of intake into
three prefectures at once, restarted: in every tenant 0 acknowledged notifications lost, 0 duplicates
at its national simulator, per-person order kept, and no record in a wrong tenant. A bounded stream
(``JUKINET_CENTER_KILL_N`` per tenant, default 240 on SQLite and 120 on PostgreSQL, killed
``JUKINET_CENTER_KILL_TIMES`` = 2 times at random moments). SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import httpx
import pytest
from jukinet_testing import BACKENDS
from kill9 import KillLoop, assert_exactly_once, send_until_answered, wait_drained
from sqlalchemy import text
from test_q1_center import free_port, make_center

from jukinet import geo
from jukinet.bootstrap import bootstrap
from jukinet.config import Config
from jukinet.sim.cs import CsClient, EventGenerator
from jukinet.sim.national import start_national

pytestmark = pytest.mark.xdist_group("center_kill")
MUNIS = {24: "242012", 23: "231061", 21: geo.municipalities(21)[0].code}


def _spawn(center_dir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jukinet.cli", "center", "serve", "--center-dir", str(center_dir)],
                            stdout=subprocess.DEVNULL, stderr=open(center_dir / "serve.err", "ab"),
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _wait_up(port: int, timeout=120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("center did not come up")


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_center_kill_9_during_intake_into_three_tenants_loses_nothing(backend, tmp_path, request):
    per_tenant = int(os.environ.get("JUKINET_CENTER_KILL_N", "240" if backend == "sqlite" else "120"))
    n_kills = int(os.environ.get("JUKINET_CENTER_KILL_TIMES", "2"))
    c = make_center(tmp_path, backend, request, prefectures=tuple(MUNIS))
    configs: dict[int, Config] = {}
    running = {}
    for t in c.tenants:                          # each tenant's own national simulators, on free ports
        cfg = Config.load(c.tenant_dir(t))
        cfg.national.port, cfg.national.fuhyo_port = free_port(), free_port()
        cfg.save()
        configs[t.prefecture] = cfg
        running[t.prefecture] = start_national(cfg, synthetic=0)
    rng = random.Random(20261207)
    gens = {n: EventGenerator(m, seed=n, run_id="center-kill") for n, m in MUNIS.items()}
    loop = KillLoop(lambda: _spawn(c.dir), lambda: _wait_up(c.port), rng=rng, max_pause=0.2, term_timeout=15)
    answers: dict[int, dict[str, str]] = {n: {} for n in MUNIS}
    total = per_tenant * len(MUNIS)
    thresholds = sorted(rng.randrange(total // 8, total * 7 // 8) for _ in range(n_kills))

    def connect(n):
        return CsClient(configs[n], MUNIS[n], server_ca=c.ca_cert, timeout=20)

    clients = {n: connect(n) for n in MUNIS}
    sent = {n: 0 for n in MUNIS}
    loop.start(thresholds, lambda: sum(len(a) for a in answers.values()))
    try:
        while any(sent[n] < per_tenant for n in MUNIS):
            n = rng.choice([k for k in MUNIS if sent[k] < per_tenant])
            size = 1 if rng.random() < 0.3 else rng.randint(2, 30)
            chunk = gens[n].take(min(size, per_tenant - sent[n]))
            sent[n] += len(chunk)
            for a in send_until_answered(loop, clients, n, chunk, connect):   # the CS resends until answered
                answers[n][a["notification_id"]] = a["status"]
        loop.stop()
        loop.restart_if_dead()
        assert loop.kills >= min(1, n_kills), "the stream was too short to kill the center"
        for n in MUNIS:
            assert len(answers[n]) == per_tenant
            assert set(answers[n].values()) <= {"accepted", "duplicate"}, set(answers[n].values())
        for n, cfg in configs.items():
            with bootstrap(cfg) as inst:
                regs = inst.registers
                wait_drained(regs)                        # the restarted center's worker drains the outbox
                for reg, (_t, store) in zip(("juki", "fuhyo"), running[n]):
                    assert_exactly_once(regs, reg, store, (n, reg))   # each reached its national sim once, in order
                with regs.engine("juki").connect() as conn:
                    munis = {r[0] for r in conn.execute(text("SELECT DISTINCT municipality_code FROM juki_current"))}
                    live = {r[0] for r in conn.execute(text("SELECT juminhyo_code FROM juki_current WHERE "
                                                            "municipality_code = :m AND deleted = :f"),
                                                       {"m": MUNIS[n], "f": False})}
                    accepted = conn.execute(text("SELECT count(*) FROM intake_notifications")).scalar()
                assert munis == {MUNIS[n]}, (n, munis)            # no record of another tenant's CS
                assert live == set(gens[n].juki)                  # the register is what the CS think it is
                with regs.engine("fuhyo").connect() as conn:
                    accepted += conn.execute(text("SELECT count(*) FROM intake_notifications")).scalar()
                assert accepted == per_tenant
    finally:
        loop.stop()
        for cl in clients.values():
            cl.close()
        loop.shutdown()
        for r in running.values():
            for t, store in r:
                t.stop()
                store.close()
