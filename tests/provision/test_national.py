"""事務4 — queries to the national servers over mutual TLS (N1), and P3 against the real simulators."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from jukinet.errors import JukinetError
from jukinet.provision.national import NationalClient
from jukinet.provision.service import NationalQueryCommand, ProvideCommand, ProvisionService
from jukinet.sim.national import start_national
from jukinet.store.tables_provision import PROVISION_RECORDS
from jukinet.store.tables_security import OPLOG

from intake.helpers import ensure_pki, use_free_ports   # tests/intake/helpers.py

from . import people as P

pytestmark = pytest.mark.xdist_group("national-sim")


@pytest.fixture
def sims(world):
    use_free_ports(world.config)
    ensure_pki(world.config)
    running = start_national(world.config, synthetic=30)
    stores = {reg: store for reg, (_, store) in zip(("juki", "fuhyo"), running)}
    svc = ProvisionService(world.config, world.registers)      # the real mTLS client
    yield svc, stores
    svc.close()
    for t, store in running:
        t.stop()
        store.close()


def someone(store) -> dict:
    cur = store.db.execute("SELECT * FROM persons WHERE prefecture != '240001' ORDER BY juminhyo_code LIMIT 1")
    return dict(zip([c[0] for c in cur.description], cur.fetchone()))


def records(world, register):
    t = PROVISION_RECORDS[register]
    with world.registers.engine(register).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.record_id))]


def query(svc, op=P.OPERATOR, **kw):
    kw.setdefault("purpose_code", "inquiry")
    return svc.national_query(NationalQueryCommand(**kw), op, "T0001")


def test_n1_query_national_servers_by_code_number_and_four_info_in_both_registers(world, sims):
    svc, stores = sims
    j, f = someone(stores["juki"]), someone(stores["fuhyo"])
    by_code = query(svc, register="juki", juminhyo_code=j["juminhyo_code"])
    assert by_code.outcome == "provided" and len(by_code.results) == 1
    rec = by_code.results[0]
    assert rec["name"] == j["name"] and rec["prefecture"] == j["prefecture"]
    assert rec["kojin_bango"] == "●●●●●●●●" + j["kojin_bango"][-4:]      # masked by default (A3, ADR 0042)
    by_no = query(svc, register="juki", kojin_bango=j["kojin_bango"])
    assert [r["juminhyo_code"] for r in by_no.results] == [j["juminhyo_code"]]
    by_four = query(svc, register="juki", name=j["name_kana"], birth_date=j["birth_date"])
    assert j["juminhyo_code"] in [r["juminhyo_code"] for r in by_four.results]
    fu = query(svc, register="fuhyo", juminhyo_code=f["juminhyo_code"])
    assert fu.outcome == "provided" and "kojin_bango" not in fu.results[0]
    fu4 = query(svc, register="fuhyo", name=f["name"], birth_date=f["birth_date"], sex=f["sex"])
    assert f["juminhyo_code"] in [r["juminhyo_code"] for r in fu4.results]
    with pytest.raises(JukinetError) as e:
        query(svc, register="fuhyo", kojin_bango=j["kojin_bango"])
    assert e.value.code == "KEY_NOT_ALLOWED"
    none = query(svc, register="juki", juminhyo_code=P.jcode(4242))
    assert none.outcome == "not_found" and none.results == []


def test_a3_n1_national_query_shows_the_full_kojin_bango_only_when_asked_for_a_purpose_that_needs_it(world, sims):
    svc, stores = sims
    j = someone(stores["juki"])
    masked = query(svc, register="juki", juminhyo_code=j["juminhyo_code"], purpose_code="correction")
    assert masked.results[0]["kojin_bango"] == "●●●●●●●●" + j["kojin_bango"][-4:]
    full = query(svc, register="juki", juminhyo_code=j["juminhyo_code"], purpose_code="correction",
                 reveal_kojin_bango=True)
    assert full.results[0]["kojin_bango"] == j["kojin_bango"]
    log, _ = OPLOG["juki"]
    with world.registers.engine("juki").connect() as conn:
        entry = conn.execute(select(log).order_by(log.c.seq.desc())).first()
    assert entry.action == "national_query" and json.loads(entry.detail).get("number_included") is True
    assert j["kojin_bango"] not in entry.detail + entry.keys
    with pytest.raises(JukinetError) as e:          # 「住民・本人からの問合せへの対応」 does not need the number
        query(svc, register="juki", juminhyo_code=j["juminhyo_code"], reveal_kojin_bango=True)
    assert e.value.code == "KOJIN_BANGO_NOT_NEEDED"
    assert records(world, "juki")[-1]["reason_code"] == "KOJIN_BANGO_NOT_NEEDED"


def test_n1_national_queries_are_recorded_like_provisions(world, sims):
    svc, stores = sims
    j = someone(stores["juki"])
    res = query(svc, register="juki", juminhyo_code=j["juminhyo_code"], case_ref="N-7")
    rec = records(world, "juki")[-1]
    assert rec["record_id"] == res.record_id and rec["kind"] == "national_query" and rec["outcome"] == "provided"
    assert rec["purpose_code"] == "inquiry" and rec["case_ref"] == "N-7" and rec["source"] == "national"
    assert rec["person_digest"] == svc.digests.person(j["juminhyo_code"])
    assert j["juminhyo_code"] not in json.dumps(rec, default=str) and j["name"] not in json.dumps(rec, default=str)
    log, _ = OPLOG["juki"]
    with world.registers.engine("juki").connect() as conn:
        entry = conn.execute(select(log).order_by(log.c.seq.desc())).first()
    assert entry.action == "national_query" and entry.seq == rec["oplog_seq"] and entry.result_count == 1
    with pytest.raises(JukinetError) as e:
        query(svc, register="juki", juminhyo_code=j["juminhyo_code"], purpose_code="")
    assert e.value.code == "PURPOSE_REQUIRED"
    with pytest.raises(JukinetError) as e:
        query(svc, op=P.operator("OP-NONAT", affairs=("provision",)), register="juki",
              juminhyo_code=j["juminhyo_code"])
    assert e.value.code == "FORBIDDEN"
    assert [r["reason_code"] for r in records(world, "juki")[-2:]] == ["PURPOSE_REQUIRED", "FORBIDDEN"]


def test_p3_provision_asks_the_real_national_server_for_a_person_outside_the_prefecture(world, sims):
    svc, stores = sims
    j = someone(stores["juki"])
    r = svc.provide(ProvideCommand("SOMU", "SOMU-KENZEI", name=j["name"], birth_date=j["birth_date"], sex=j["sex"]),
                    P.OPERATOR, "T0001")
    assert r.provided and r.source == "national" and r.prefecture == j["prefecture"]
    assert r.values["juminhyo_code"] == j["juminhyo_code"] and r.values["kojin_bango"] == j["kojin_bango"]
    assert records(world, "juki")[-1]["source"] == "national"


def test_n1_national_server_down_is_recorded_as_failed(world):
    from intake.helpers import free_port

    ensure_pki(world.config)
    world.config.national.port = free_port()          # nothing listens there
    svc = ProvisionService(world.config, world.registers, national=NationalClient(world.config, timeout=2))
    try:
        res = query(svc, register="juki", juminhyo_code=P.jcode(5))
    finally:
        svc.close()
    assert res.outcome == "failed" and "全国サーバ" in res.message
    assert records(world, "juki")[-1]["reason_code"] == "NATIONAL_UNAVAILABLE"
