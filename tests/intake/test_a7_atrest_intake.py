"""A7: a 転入 with 個人番号 arriving from 市町村CS is stored sealed in D1, and the outbox still
forwards the right number to the national server (ADR 0025). Both backends."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from jukinet.outbox.worker import OutboxWorker
from jukinet.store.tables import juki_current, juki_history

from .helpers import TSU, change, jcode, kbango, tennyu


def test_a7_intake_stores_kojin_bango_sealed_and_the_outbox_forwards_it(cs, registers, national, installation):
    code, number = jcode(70), kbango(70)
    first = tennyu(code, kojin_bango=number)
    assert cs[TSU].send(first)["status"] == "accepted"
    assert cs[TSU].send(change(first, "転居", address="三重県津市栄町1丁目1番", oaza_code="0100"))["status"] \
        == "accepted"
    with registers.juki_uow(write=False) as uow:
        assert uow.repo.get(code).kojin_bango == number                     # plaintext in memory only
        assert [r.juminhyo_code for r in uow.repo.by_kojin_bango(number)] == [code]
        assert [h.kojin_bango for h in uow.repo.history_of(code)] == [number]
        raw = [dict(r._mapping) for t in (juki_current, juki_history) for r in uow.conn.execute(select(t))]
    assert len(raw) == 2 and all(r["kojin_bango_ct"] is not None and "kojin_bango" not in r for r in raw)
    assert not any(number in repr(r) for r in raw)
    if registers.juki_engine.dialect.name == "sqlite":
        db = Path(registers.juki_engine.url.database)
        assert not any(number.encode() in f.read_bytes() for f in (db, db.with_name(db.name + "-wal")) if f.exists())
    worker = OutboxWorker(registers, installation)
    worker.drain()
    worker.stop()
    sent = [m for m in national["juki"].dump() if m["juminhyo_code"] == code]
    assert [m["kojin_bango"] for m in sent] == [number, number]
