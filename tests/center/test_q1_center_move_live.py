"""Q1 (issue 14; ADR 0055): a tenant moved to another PostgreSQL database while the center serves.

A CS of 三重県 sends notifications throughout (resending on a 503, as a CS does); `center move`
pauses 三重県 in the running center, copies, verifies, switches and resumes it; later `--confirm`.
Meanwhile a CS of 愛知県 keeps sending. Checked: 三重県's CS saw the coded 503 ``TENANT_MOVING``
during the switch and nothing else went wrong; after the move the center serves 三重県 from the new
database without a restart; every acknowledged notification is in the new database exactly once
(idempotency rows = outbox rows = versions, gap-free 更新順番号), reached 三重県's national simulator
exactly once, in per-person order; 愛知県 was served throughout without one refusal or 503. From
PostgreSQL to PostgreSQL and from SQLite to PostgreSQL. Needs JUKINET_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from jukinet_testing import PG_URL, PostgresDatabase
from sqlalchemy import func, select, text
from test_q1_center import NAKA, TSU, cs_client, free_port, make_center
from kill9 import assert_per_person_order as _per_person_order

from jukinet.center.move import PENDING, confirm_move, move_tenant
from jukinet.center.registry import Center
from jukinet.center_server import CenterServer
from jukinet.config import Config
from jukinet.outbox.worker import outbox_counts
from jukinet.sim.cs import EventGenerator
from jukinet.sim.national import start_national
from jukinet.store.tables_intake import INTAKE_TABLES

pytestmark = pytest.mark.skipif(not PG_URL, reason="JUKINET_TEST_POSTGRES_URL is not set")
MUNIS = {24: TSU, 23: NAKA}


class Cs(threading.Thread):
    """One CS sending its generated stream one notification at a time until stopped; a 503 or a lost
    connection is resent (the same body) after a short wait, as a CS does."""

    def __init__(self, c: Center, srv: CenterServer, n: int):
        super().__init__(daemon=True)
        self.http = cs_client(c, srv, n, MUNIS[n])
        self.gen = EventGenerator(MUNIS[n], seed=n, run_id="live-move")
        self.acks: dict[str, str] = {}
        self.moving = 0                     # 503 TENANT_MOVING answers
        self.other: list = []               # anything else that was not a 200 (must stay empty)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                note = self.gen.take(1)[0]
                while True:
                    try:
                        r = self.http.post("/cs/v1/notifications", json=note)
                    except httpx.TransportError as e:
                        self.other.append(type(e).__name__)
                        time.sleep(0.1)
                        continue
                    if r.status_code == 503:
                        code = (r.json().get("error") or {}).get("code")
                        if code == "TENANT_MOVING":
                            self.moving += 1
                            assert r.headers.get("retry-after")
                        else:
                            self.other.append(code)
                        time.sleep(0.05)
                        continue
                    break
                if r.status_code != 200:
                    self.other.append(r.status_code)
                    return
                self.acks[note["notification_id"]] = r.json()["status"]
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.other.append(repr(e))
        finally:
            self.http.close()

    def wait_acks(self, n: int, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while len(self.acks) < n and time.time() < deadline and self.is_alive():
            time.sleep(0.05)
        assert len(self.acks) >= n, (len(self.acks), self.other)


def _check_tenant(inst, cs: Cs, store_by_reg: dict) -> None:
    """Every acknowledged notification exactly once in the tenant's registers and at its national simulator."""
    regs = inst.registers
    deadline = time.time() + 120
    while time.time() < deadline and any(outbox_counts(regs, r).get("pending") for r in ("juki", "fuhyo")):
        time.sleep(0.2)
    accepted = 0
    for reg in ("juki", "fuhyo"):
        processed, outbox, _ = INTAKE_TABLES[reg]
        with regs.engine(reg).connect() as conn:
            ids = [r[0] for r in conn.execute(select(processed.c.notification_id))]
            n_proc = conn.execute(select(func.count()).select_from(processed)).scalar()
            seqs = [r[0] for r in conn.execute(select(outbox.c.update_seq).order_by(outbox.c.update_seq))]
            counter = conn.execute(text("SELECT value FROM counters WHERE name = 'update_seq'")).scalar()
            versions = conn.execute(text(f"SELECT (SELECT count(*) FROM {reg}_current) + "
                                         f"(SELECT count(*) FROM {reg}_history)")).scalar()
        assert n_proc == len(seqs) == versions == len(set(ids)), reg          # exactly once
        assert seqs == list(range(1, (counter or 0) + 1)), reg                 # gap-free, in order
        assert outbox_counts(regs, reg) == ({"delivered": len(seqs)} if seqs else {}), reg
        rows = store_by_reg[reg].dump()
        assert sorted(m["update_seq"] for m in rows) == seqs, reg               # each at the national sim once
        _per_person_order(rows)
        accepted += n_proc
        assert set(ids) <= set(cs.acks), reg                                    # nothing the CS did not send
    assert accepted == len(cs.acks)                                             # nothing acknowledged is lost
    assert set(cs.acks.values()) == {"accepted"}


@pytest.mark.parametrize("source", ["postgres", "sqlite"])
def test_q1_move_a_tenant_while_the_center_serves(source, tmp_path, request):
    c = make_center(tmp_path, source, request, prefectures=(24, 23))
    nationals = {}
    for t in c.tenants:
        cfg = Config.load(c.tenant_dir(t))
        cfg.national.port, cfg.national.fuhyo_port = free_port(), free_port()
        cfg.save()
        nationals[t.prefecture] = start_national(cfg, synthetic=0)
    target = PostgresDatabase(PG_URL)
    request.addfinalizer(target.drop)
    srv = CenterServer(c, outbox=True).start()
    senders = {n: Cs(c, srv, n) for n in MUNIS}
    try:
        old_runtime = srv.tenants[24]
        for s in senders.values():
            s.start()
        senders[24].wait_acks(15)
        aichi_before = len(senders[23].acks)
        t0 = time.monotonic()
        record = move_tenant(Center.load(c.dir), 24, target.url)         # the center keeps running
        move_s = time.monotonic() - t0
        aichi_during = len(senders[23].acks) - aichi_before
        assert target.name in record["to"] and (c.tenant_dir(c.tenant(24)) / PENDING).exists()
        assert senders[24].moving >= 1, "the CS never saw the tenant paused"
        assert aichi_during > 0, f"愛知県 was not served during the {move_s:.1f} s move"

        # served from the new database, by a new runtime, without a restart
        assert srv.tenants[24] is not old_runtime and not srv.tenants[24].paused
        assert target.name in srv.tenants[24].installation.config.database.juki_url
        n = len(senders[24].acks)
        senders[24].wait_acks(n + 15)
        confirm_move(Center.load(c.dir), 24)
        n = len(senders[24].acks)
        senders[24].wait_acks(n + 5)
        for s in senders.values():
            s.stop.set()
        for s in senders.values():
            s.join(60)
        assert senders[24].other == [] and senders[23].other == [], (senders[24].other, senders[23].other)
        assert senders[23].moving == 0                                     # 愛知県 was never paused
        events = [e["event"] for e in c.read_log() if e.get("prefecture") == 24]
        assert {"tenant_paused", "tenant_move", "tenant_resumed", "tenant_move_confirm"} <= set(events)
        assert not any(e.get("prefecture") == 23 and e["event"].startswith("tenant_pa") for e in c.read_log())

        for n_, (juki, fuhyo) in nationals.items():
            _check_tenant(srv.tenants[n_].installation, senders[n_], {"juki": juki[1], "fuhyo": fuhyo[1]})
    finally:
        for s in senders.values():
            s.stop.set()
        srv.stop()
        for running in nationals.values():
            for t, store in running:
                t.stop()
                store.close()
