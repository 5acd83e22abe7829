"""The intake's write path after ADR 0063: the writes of a transaction sent together (a psycopg
pipeline on PostgreSQL), and the writers of one process queued before SQLite's lock."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from jukinet.intake.service import IntakeService, _pipeline, _statements, comm_row, lock_register, make_item
from jukinet.pki.certs import PeerIdentity
from jukinet.store.tables import juki_counters
from jukinet.store.tables_intake import INTAKE_TABLES

from .helpers import TSU, change, jcode, tennyu

PROCESSED, OUTBOX, COMM = INTAKE_TABLES["juki"]
NOW = datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc)


def _count(registers, table) -> int:
    with registers.juki_engine.connect() as c:
        return c.execute(select(func.count()).select_from(table)).scalar()


def _processed(nid: str) -> dict:
    return dict(sender_code="242012", notification_id=nid, digest="d" * 64, update_seq=1, received_at=NOW)


def test_u2_a_write_refused_by_the_database_rolls_back_the_whole_transaction(registers):
    """A key violation among the writes sent together is raised as SQLAlchemy raises it (not as a
    driver error the intake does not know), and nothing of the transaction stays — also the writes
    sent before it in the same pipeline."""
    comm_before = _count(registers, COMM)
    with pytest.raises(IntegrityError):
        with registers.uow("juki", write=True) as uow, _pipeline(uow.conn):
            uow.conn.execute(_statements(COMM).insert, [comm_row(at=NOW, channel="cs", direction="in",
                                                                 peer="lg:242012", result="accepted")])
            uow.conn.execute(_statements(PROCESSED).insert, [_processed("N1"), _processed("N1")])
    assert _count(registers, PROCESSED) == 0
    assert _count(registers, COMM) == comm_before
    # the connection is usable again: the next transaction commits
    with registers.uow("juki", write=True) as uow, _pipeline(uow.conn):
        uow.conn.execute(_statements(PROCESSED).insert, [_processed("N2")])
    assert _count(registers, PROCESSED) == 1


def test_u2_writers_of_one_process_wait_for_each_other_and_both_commit(registers):
    """Two writers of one register at once: the second waits for the first's commit (on SQLite
    in this process's queue, on PostgreSQL on the counter row) and neither is refused."""
    holding, errors = threading.Event(), []

    def first():
        try:
            with registers.uow("juki", write=True) as uow:
                lock_register(uow.conn, juki_counters)
                uow.conn.execute(_statements(PROCESSED).insert, [_processed("A")])
                holding.set()
                time.sleep(0.3)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=first)
    t.start()
    assert holding.wait(10)
    with registers.uow("juki", write=True) as uow:
        lock_register(uow.conn, juki_counters)
        # the first writer has committed by the time this one holds the lock
        assert uow.conn.execute(select(func.count()).select_from(PROCESSED)).scalar() == 1
        uow.conn.execute(_statements(PROCESSED).insert, [_processed("B")])
    t.join(10)
    assert errors == []
    assert _count(registers, PROCESSED) == 2


def test_u2_intake_recreates_a_removed_update_counter_and_goes_on(installation, registers):
    """The 更新順番号 counter row is made by a migration; if someone removed it, the next intake makes
    it again (the path beside the pipelined reads on PostgreSQL) and the notification is accepted
    with 更新順番号 1, then 2."""
    with registers.uow("juki", write=True) as uow:
        uow.conn.execute(delete(juki_counters))
    svc = IntakeService(registers, installation)
    first = tennyu(jcode(1))
    assert svc.submit(PeerIdentity("cs", TSU), [make_item(first)])[0]["status"] == "accepted"
    second = change(first, "転居", address="三重県津市西丸之内23番1号")
    assert svc.submit(PeerIdentity("cs", TSU), [make_item(second)])[0]["status"] == "accepted"
    with registers.juki_engine.connect() as c:
        assert c.execute(select(juki_counters.c.value)).scalars().all() == [2]
        assert sorted(c.execute(select(OUTBOX.c.update_seq)).scalars()) == [1, 2]
