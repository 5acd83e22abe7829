"""A7: provision by 個人番号 on a register that holds it only sealed (blind index; ADR 0025)."""

from __future__ import annotations

from sqlalchemy import select

from jukinet.provision.service import ProvideCommand
from jukinet.store.tables import juki_current

from . import people as P


def test_a7_provision_by_kojin_bango_finds_the_person_through_the_blind_index(world):
    r = world.svc.provide(ProvideCommand(requester_code="SOMU", affair_code="SOMU-KENZEI", kojin_bango=P.TARO_NO),
                          P.OPERATOR, "T0001")
    assert r.provided and r.values["juminhyo_code"] == P.TARO
    with world.registers.juki_engine.connect() as c:
        rows = [dict(x._mapping) for x in c.execute(select(juki_current))]
    assert rows and not any(P.TARO_NO in repr(row) for row in rows)
    assert all("kojin_bango" not in row for row in rows)
