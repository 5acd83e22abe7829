"""Q1 (issue 14; ADR 0055): a center of 12 tenants on PostgreSQL stays within its connection budget
and holds no connection while idle.

Without ADR 0055 every tenant that was once used keeps one connection per register (3 a tenant,
36 here; 141 for 47 tenants — past ``max_connections = 100``), and its outbox worker looks at the
outbox every 0.5 s. Here the center's budget is 8 connections to the cluster and idle connections
are closed after 1 s: the count of ``pg_stat_activity`` rows of the tenants' databases, sampled every
20 ms through start, a notification into every tenant at once (each delivered to its own national
simulator) and idleness, never exceeds 8, and drops to 0 once the tenants are idle — with the outbox
workers, CRL watchers and schedulers running. Needs PostgreSQL (JUKINET_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import threading
import time

import pytest
from jukinet_testing import PG_URL
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_q1_center import cs_client, free_port, make_center

from jukinet import geo
from jukinet.center_server import CenterServer
from jukinet.config import Config
from jukinet.outbox.worker import outbox_counts
from jukinet.sim.cs import EventGenerator
from jukinet.sim.national import start_national

pytestmark = pytest.mark.skipif(not PG_URL, reason="JUKINET_TEST_POSTGRES_URL is not set")
TENANTS = (24, 23, 21, 18, 19, 25, 26, 29, 30, 31, 32, 37)      # small prefectures: few CS certificates to make
BUDGET = 8


class Sampler:
    """The number of server processes connected to the tenants' databases, every 20 ms, from outside."""

    def __init__(self, databases: list[str]):
        self.engine = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT",
                                    pool_size=1, max_overflow=0)
        self.sql = text("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(:d)")
        self.databases = databases
        self.peak = 0
        self.last = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(self.sql, {"d": self.databases}).scalar()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.last = self.count()
            self.peak = max(self.peak, self.last)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.engine.dispose()


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_q1_center_of_12_postgresql_tenants_keeps_its_budget_and_releases_idle_connections(tmp_path, request):
    c = make_center(tmp_path, "postgres", request, prefectures=TENANTS)
    c.pg_connections, c.pg_idle_seconds = BUDGET, 1.0
    c.save()
    databases, nationals = [], []
    for t in c.tenants:
        cfg = Config.load(c.tenant_dir(t))
        databases.append(make_url(cfg.database.admin_url).database)
        cfg.national.port, cfg.national.fuhyo_port = free_port(), free_port()
        cfg.save()
        nationals.append(start_national(cfg, synthetic=0))
    assert len(set(databases)) == len(TENANTS)
    with Sampler(databases) as sampler:
        srv = CenterServer(c, outbox=True, schedulers=True, monthly_delay=3600).start()
        try:
            assert sampler.count() <= BUDGET
            # idle after the start: every connection closed (workers, CRL watchers, schedulers running)
            assert _wait_for(lambda: sampler.count() == 0, 20), sampler.count()
            assert all(rt.worker is not None and rt.scheduler is not None for rt in srv.tenants.values())

            # a notification into every tenant at once, each from one of its own CS
            answers: dict[int, int] = {}

            def send(n: int) -> None:
                muni = sorted(m.code for m in geo.municipalities(n))[0]
                note = EventGenerator(muni, seed=n, run_id="conn").take(1)[0]
                with cs_client(c, srv, n, muni) as cs:
                    answers[n] = cs.post("/cs/v1/notifications", json=note).status_code

            threads = [threading.Thread(target=send, args=(n,)) for n in TENANTS]
            for th in threads:
                th.start()
            for th in threads:
                th.join(120)
            assert answers == {n: 200 for n in TENANTS}, answers
            for n, rt in srv.tenants.items():         # each tenant forwarded it to its own national simulator
                assert _wait_for(lambda: not any(outbox_counts(rt.installation.registers, r).get("pending")
                                                 for r in ("juki", "fuhyo")), 60), n
            assert sum(len(store.dump()) for running in nationals for _t, store in running) == len(TENANTS)
            assert srv.connections.peak and max(srv.connections.peak.values()) <= BUDGET
            assert srv.connections.evictions > 0         # 12 tenants × 3 registers did not fit: the budget worked

            # idle again: released within the idle time and the reaper's round
            assert _wait_for(lambda: sampler.count() == 0, 10), sampler.count()
            time.sleep(2.5)                                 # and it stays released (no polling keeps one open)
            assert sampler.count() == 0
        finally:
            srv.stop()
            for running in nationals:
                for t, store in running:
                    t.stop()
                    store.close()
    # The server's own count may lag the governor's: a closed connection's backend leaves
    # pg_stat_activity asynchronously (1–10 ms quiet, > 0.25 s seen at load average 10 on 2 cores), so
    # the server can briefly show one backend still exiting beside a new one. The governor's count
    # (srv.connections.peak, asserted above) holds the budget exactly; the server's may exceed it by
    # that one exiting backend, never more — the headroom ADR 0055 keeps under max_connections.
    assert 0 < sampler.peak <= BUDGET + 1, sampler.peak


def test_q1_connection_governor_releases_idle_connections_and_evicts_at_its_budget():
    from jukinet.store.connpool import ConnectionBudgetExhausted, ConnectionGovernor
    from jukinet.store.engine import make_engine

    g = ConnectionGovernor(idle_seconds=0.3, limit=2, wait_seconds=1.0)
    engines = [g.govern(make_engine(PG_URL, pool_size=1, max_overflow=2)) for _ in range(3)]
    try:
        for e in engines:                         # three engines, one connection each, budget 2
            with e.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert g.open_connections() == 2 and g.evictions == 1
        time.sleep(0.4)
        assert g.reap() == 2
        time.sleep(0.3)                           # the closed keep their slots for the grace (server-side exit)
        assert g.open_connections() == 0
        with engines[0].connect() as a, engines[1].connect() as b:   # both slots in use, none idle to evict
            a.execute(text("SELECT 1"))
            b.execute(text("SELECT 1"))
            with pytest.raises(ConnectionBudgetExhausted):
                with engines[2].connect() as c:
                    c.execute(text("SELECT 1"))
        with engines[2].connect() as c:           # released: it gets one now (evicting an idle one)
            assert c.execute(text("SELECT 1")).scalar() == 1
        assert max(g.peak.values()) == 2
    finally:
        for e in engines:
            e.dispose()
