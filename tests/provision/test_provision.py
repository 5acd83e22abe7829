"""事務2 single provision/transfer and the provision record (P1, P2, P3, P5, Q2), on every backend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from jukinet.errors import JukinetError
from jukinet.provision import catalogue as C
from jukinet.provision.records import provisions_for_person
from jukinet.provision.service import ProvideCommand
from jukinet.security.oplog import Actor, OperationLog, OplogUnavailable
from jukinet.store.tables_provision import PROVISION_RECORDS, provision_catalogue_changes
from jukinet.store.tables_security import OPLOG

from . import people as P
from .conftest import OUTSIDER


def records(world, register="juki"):
    t = PROVISION_RECORDS[register]
    with world.registers.engine(register).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.record_id))]


def oplog(world, chain):
    log, _ = OPLOG[chain]
    with world.registers.engine(chain).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(log).order_by(log.c.seq))]


def provide(world, op=P.OPERATOR, **kw):
    return world.svc.provide(ProvideCommand(**kw), op, "T0001")


# ------------------------------------------------------------------ P1: requesters and affairs as data

def test_p1_shipped_catalogue_is_realistic_and_loaded(world):
    spec = world.svc.catalogue()
    active = [a for a in spec.affairs.values() if a.status == "active"]
    assert len(active) >= 20
    assert {a.source for a in active} == {"別表第五", "別表第六", "条例"}
    assert {a.register for a in active} == {"juki", "fuhyo"}
    assert any(a.kojin_bango_allowed for a in active) and any(not a.kojin_bango_allowed for a in active)
    for a in active:
        assert a.basis.startswith("住民基本台帳法") and a.items and spec.requesters_of(a.code)
        assert ("kojin_bango" in a.items) <= a.kojin_bango_allowed
        if a.kojin_bango_allowed:
            assert "番号法" in a.kojin_bango_basis
    kinds = {r.kind for r in spec.requesters.values()}
    assert kinds == {"body", "department"}
    names = {r.name for r in spec.requesters.values()}
    assert {"三重県教育委員会", "三重県公安委員会", "三重県警察本部", "三重県選挙管理委員会", "三重県人事委員会",
            "三重県監査委員", "三重県労働委員会"} <= names
    # loading the same catalogue again changes nothing
    assert C.ensure_default(world.registers, world.svc.oplog) == []
    assert C.load_file(world.registers, world.svc.oplog, C.DEFAULT_PATH.read_bytes(),
                       actor=Actor("ADM-1", None)) == []


def test_p1_catalogue_file_changes_are_logged_and_missing_entries_retired(world):
    from jukinet.security.oplog import Actor

    data = C.DEFAULT_PATH.read_text(encoding="utf-8")
    data = data.replace('name = "古物営業法による許可に関する事務"', 'name = "古物営業法による許可及び届出に関する事務"')
    start = data.index('code = "KOAN-KEIBI"')
    block_start = data.rindex("[[affairs]]", 0, start)
    block_end = data.index("[[affairs]]", start)
    data = data[:block_start] + data[block_end:]
    changes = C.load_file(world.registers, world.svc.oplog, data.encode(), actor=Actor("ADM-1", "T0001"))
    got = {(c.entity, c.code, c.action) for c in changes}
    assert got == {("affair", "KOAN-KOBUTSU", "change"), ("affair", "KOAN-KEIBI", "retire"),
                   ("grant", "KOAN/KOAN-KEIBI", "revoke")}
    with world.registers.admin_tx(write=False) as conn:
        rows = conn.execute(select(provision_catalogue_changes)).all()
    keibi = [r for r in rows if r.code == "KOAN-KEIBI" and r.action == "retire"][0]
    assert json.loads(keibi.before)["status"] == "active" and json.loads(keibi.after)["status"] == "retired"
    assert keibi.operator_id == "ADM-1" and keibi.via == "file" and len(keibi.source_sha256) == 64
    entries = [e for e in oplog(world, "admin") if e["action"] == "catalogue_change" and e["operator_id"] == "ADM-1"]
    assert len(entries) == 3
    assert {json.loads(e["detail"])["code"] for e in entries} == {"KOAN-KOBUTSU", "KOAN-KEIBI", "KOAN/KOAN-KEIBI"}
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="KOAN", affair_code="KOAN-KEIBI", juminhyo_code=P.TARO)
    assert e.value.code == "AFFAIR_RETIRED"
    assert records(world)[-1]["reason_code"] == "AFFAIR_RETIRED"


@pytest.mark.parametrize("mutation, where", [
    (('items = ["name", "birth_date", "sex", "address"]\nkojin_bango = false\nrequesters = ["KOAN"]\n\n[[affairs]]\ncode = "KOAN-KEIBI"',
      'items = ["name", "birth_date", "sex", "address", "kojin_bango"]\nkojin_bango = false\nrequesters = ["KOAN"]\n\n[[affairs]]\ncode = "KOAN-KEIBI"'),
     "kojin_bango"),
    (('requesters = ["SOMU"]\n\n[[affairs]]\ncode = "KODOMO-JIFU"', 'requesters = ["SOMU", "KOAN"]\n\n[[affairs]]\ncode = "KODOMO-JIFU"'),
     "別表第五"),
])
def test_p1_invalid_catalogue_is_refused_and_changes_nothing(world, mutation, where):
    from jukinet.security.oplog import Actor

    data = C.DEFAULT_PATH.read_text(encoding="utf-8")
    assert mutation[0] in data
    before = world.svc.catalogue()
    with pytest.raises(JukinetError) as e:
        C.load_file(world.registers, world.svc.oplog, data.replace(mutation[0], mutation[1]).encode(),
                    actor=Actor("ADM-1", None))
    assert e.value.code == "CATALOGUE_INVALID" and where in e.value.message
    after = world.svc.catalogue()
    assert after.affairs == before.affairs and after.grants == before.grants


def test_p1_affair_not_granted_to_requester_is_refused_and_recorded(world):
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="KOAN", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO)
    assert e.value.code == "AFFAIR_NOT_GRANTED" and "認められていません" in e.value.message
    rec = records(world)[-1]
    assert rec["outcome"] == "refused" and rec["reason_code"] == "AFFAIR_NOT_GRANTED"
    assert rec["requester_code"] == "KOAN" and rec["affair_code"] == "SOMU-KENZEI"
    assert rec["items"] == "" and rec["person_digest"] is None


@pytest.mark.parametrize("requester, affair, code", [
    ("NOBODY", "SOMU-KENZEI", "REQUESTER_UNKNOWN"), ("SOMU", "NO-SUCH", "AFFAIR_UNKNOWN"),
])
def test_q2_unknown_requester_or_affair_is_a_clear_error(world, requester, affair, code):
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code=requester, affair_code=affair, juminhyo_code=P.TARO)
    assert e.value.code == code
    rec = records(world)[-1]
    assert rec["outcome"] == "refused" and rec["reason_code"] == code
    assert rec["requester_code"] in (None, "SOMU") and rec["affair_code"] in (None, "SOMU-KENZEI")


# ------------------------------------------------------------------ P2: keys, items, 突合

def test_p2_provides_only_the_affairs_items(world):
    r = provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", juminhyo_code=P.TARO)
    assert r.provided and r.kind == "provision" and r.source == "local"
    assert set(r.values) == {"name", "name_kana", "former_surname", "birth_date", "sex", "address", "reason",
                             "change_date"}
    assert "kojin_bango" not in r.values and "juminhyo_code" not in r.values
    assert r.values["name"] == "山田\u3000太郎" and r.values["birth_date"] == "1980-04-01"
    t = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO,
                items=["name", "kojin_bango"])
    assert t.kind == "transfer" and set(t.values) == {"name", "kojin_bango"} and t.values["kojin_bango"] == P.TARO_NO
    assert records(world)[-1]["items"] == "name,kojin_bango" and records(world)[-1]["number_included"]


def test_p2_an_item_the_affair_may_not_receive_is_refused(world):
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", juminhyo_code=P.TARO, items=["kojin_bango"])
    assert e.value.code == "ITEM_NOT_ALLOWED"
    assert records(world)[-1]["reason_code"] == "ITEM_NOT_ALLOWED"


def test_p2_four_info_is_matched_item_by_item(world):
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO, name="山田太郎",
                birth_date="昭和55年4月1日", sex="2", address="津市広明町１３番地")
    assert r.match == {"name": "一致", "birth_date": "一致", "sex": "不一致", "address": "一致"}
    assert r.provided       # the requester learns the record differs from their data (e.g. a move)
    assert json.loads(records(world)[-1]["match_result"]) == r.match
    k = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", name="ﾔﾏﾀﾞ ﾀﾛｳ", birth_date="1980-04-01",
                address="三重県津市栄町1丁目1番")
    assert k.provided and k.values["juminhyo_code"] == P.TARO
    assert k.match == {"name": "一致", "birth_date": "一致", "address": "不一致"}


def test_p2_four_info_several_candidates_are_not_provided_until_narrowed(world):
    r = provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", name="佐藤　一郎", birth_date="1970-01-01")
    assert r.outcome == "ambiguous" and not r.values and r.candidates == 2
    assert records(world)[-1]["outcome"] == "ambiguous" and records(world)[-1]["person_digest"] is None
    r = provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", name="佐藤一郎", birth_date="1970-01-01",
                address="四日市市諏訪町1番5号")
    assert r.provided and r.values["address"] == "三重県四日市市諏訪町1番5号"


def test_p2_kojin_bango_key_only_for_an_affair_bango_law_allows(world):
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", kojin_bango=P.TARO_NO)
    assert r.provided and r.values["juminhyo_code"] == P.TARO
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", kojin_bango=P.TARO_NO)
    assert e.value.code == "KEY_NOT_ALLOWED"
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI-F", kojin_bango=P.TARO_NO)
    assert e.value.code == "KEY_NOT_ALLOWED" and "附票" in e.value.message


@pytest.mark.parametrize("kw, code", [
    (dict(juminhyo_code="30000000010"), "JUMINHYO_CODE_CHECKSUM"),
    (dict(kojin_bango="400000000011"), "KOJIN_BANGO_CHECKSUM"),
    (dict(name="山田太郎"), "KEY_REQUIRED"),
    (dict(), "KEY_REQUIRED"),
    (dict(name="山田太郎", birth_date="1980-13-01"), "DATE_FORMAT"),
    (dict(name="山田太郎", birth_date="1980-04-01", sex="3"), "SEX_FORMAT"),
    (dict(juminhyo_code=P.TARO, kojin_bango=P.TARO_NO), "KEYS_CONFLICT"),
])
def test_q2_bad_keys_are_refused_with_a_stable_code_and_recorded(world, kw, code):
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", **kw)
    assert e.value.code == code and e.value.message
    for v in kw.values():
        assert v not in e.value.message
    rec = records(world)[-1]
    assert rec["outcome"] == "refused" and rec["reason_code"] == code and rec["items"] == ""


def test_p2_removed_person_is_provided_and_marked(world):
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.HAJIME)
    assert r.provided and r.removed and r.values["reason"] == "死亡"


def test_p2_operator_without_the_affair_in_scope_is_refused(world):
    with pytest.raises(JukinetError) as e:
        provide(world, op=P.SEARCHER, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO)
    assert e.value.code == "FORBIDDEN"
    with pytest.raises(JukinetError) as e:
        provide(world, op=P.JUKI_ONLY, requester_code="SOMU", affair_code="SOMU-KENZEI-F", juminhyo_code=P.TARO)
    assert e.value.code == "FORBIDDEN"
    assert records(world, "fuhyo")[-1]["reason_code"] == "FORBIDDEN"
    assert records(world, "juki")[-1]["reason_code"] == "FORBIDDEN"


# ------------------------------------------------------------------ P3: persons outside the prefecture

def test_p3_person_outside_the_prefecture_is_asked_of_the_national_server_and_marked(world):
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", name="東京 花子", birth_date="1990-02-02",
                sex="2")
    assert r.provided and r.source == "national" and r.prefecture == "東京都"
    assert r.values["juminhyo_code"] == OUTSIDER["juminhyo_code"] and r.values["reason"] is None
    assert world.national.calls[-1] == ("juki", {"name": "東京 花子", "birth_date": "1990-02-02", "sex": "2"})
    rec = records(world)[-1]
    assert rec["source"] == "national" and rec["outcome"] == "provided" and "reason" not in rec["items"]
    world.national.calls.clear()
    provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO)
    assert world.national.calls == []          # found in the prefecture: no national query


def test_p3_national_server_unreachable_is_failed_and_recorded(world):
    world.national.down = True
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.jcode(999))
    assert r.outcome == "failed" and r.reason_code == "NATIONAL_UNAVAILABLE" and not r.values
    assert records(world)[-1]["outcome"] == "failed"


def test_p3_not_found_anywhere(world):
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.jcode(998))
    assert r.outcome == "not_found" and not r.values
    assert records(world)[-1]["outcome"] == "not_found"


# ------------------------------------------------------------------ P5: the provision record

def test_p5_refusal_is_recorded(world):
    with pytest.raises(JukinetError):
        provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", juminhyo_code=P.TARO, items=["kojin_bango"],
                case_ref="KEN-2026-17")
    rec = records(world)[-1]
    assert rec["outcome"] == "refused" and rec["reason_code"] == "ITEM_NOT_ALLOWED"
    assert rec["operator_id"] == "OP-PROV" and rec["terminal_id"] == "T0001" and rec["channel"] == "terminal"
    assert rec["requester_code"] == "KOAN" and rec["affair_code"] == "KOAN-UNTEN" and rec["case_ref"] == "KEN-2026-17"
    keys = json.loads(rec["keys_digest"])
    assert set(keys) == {"juminhyo_code"} and P.TARO not in rec["keys_digest"]
    assert keys["juminhyo_code"] == OperationLog(world.svc.keyring).digest("juminhyo_code", P.TARO)
    entry = oplog(world, "juki")[-1]
    assert entry["action"] == "provision" and entry["outcome"] == "refused"
    assert rec["oplog_seq"] == entry["seq"] and json.loads(entry["detail"])["code"] == "ITEM_NOT_ALLOWED"


def test_p5_every_provision_is_recorded_with_who_where_whom_why_and_what(world):
    before = datetime.now(timezone.utc)
    r = provide(world, requester_code="KYOIKU", affair_code="KYO-SHUGAKU", juminhyo_code=P.HANAKO)
    rec = records(world)[-1]
    assert rec["record_id"] == r.record_id and rec["kind"] == "provision" and rec["outcome"] == "provided"
    at = rec["at"] if rec["at"].tzinfo else rec["at"].replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= at <= datetime.now(timezone.utc)
    assert rec["items"].split(",") == [i for i in ("name", "name_kana", "birth_date", "sex", "address", "kojin_bango",
                                                  "reason", "change_date")]
    assert rec["person_digest"] == world.svc.digests.person(P.HANAKO)
    entry = oplog(world, "juki")[-1]
    assert entry["seq"] == rec["oplog_seq"] and entry["operator_id"] == "OP-PROV" and entry["terminal_id"] == "T0001"
    assert json.loads(entry["detail"])["affair"] == "KYO-SHUGAKU"


def test_p5_no_personal_data_in_the_provision_record(world):
    provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO, name="山田太郎",
            birth_date="1980-04-01", address="三重県津市広明町13番地")
    provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", name="東京花子", birth_date="1990-02-02")
    text_of_table = json.dumps(records(world), default=str, ensure_ascii=False)
    for value in (P.TARO, P.TARO_NO, "山田", "太郎", "ヤマダ", "広明町", "1980-04-01", OUTSIDER["juminhyo_code"], "東京"):
        assert value not in text_of_table


def test_p5_record_and_log_fail_closed(world, monkeypatch):
    def broken(*a, **kw):
        raise OplogUnavailable()

    monkeypatch.setattr(world.svc.oplog, "append", broken)
    with pytest.raises(OplogUnavailable):
        provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO)
    assert records(world) == []


def test_p5_provisions_for_person_lists_everything_about_one_person_incl_former_codes(world):
    from jukinet.domain.records import derive_juki

    provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.TARO)
    provide(world, requester_code="KOAN", affair_code="KOAN-UNTEN", name="ヤマダ タロウ", birth_date="1980-04-01")
    provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI", juminhyo_code=P.HANAKO)
    new_code = P.jcode(50)
    with world.registers.juki_uow() as uow:       # 住民票コード変更
        cur = uow.repo.get(P.TARO)
        uow.repo.apply(derive_juki(cur.replace(juminhyo_code=new_code, reason="住民票コード変更")), previous=cur)
    provide(world, requester_code="KODOMO", affair_code="KODOMO-JIFU", juminhyo_code=new_code)
    with world.registers.juki_uow(write=False) as uow:
        got = provisions_for_person(uow, new_code)
        only_new = provisions_for_person(uow, new_code, former_codes=False)
        hanako = provisions_for_person(uow, P.HANAKO, keyring=world.svc.keyring)
    assert [(e.requester_code, e.affair_code, e.outcome) for e in got] == [
        ("SOMU", "SOMU-KENZEI", "provided"), ("KOAN", "KOAN-UNTEN", "provided"), ("KODOMO", "KODOMO-JIFU", "provided")]
    assert [e.affair_code for e in only_new] == ["KODOMO-JIFU"]
    assert [e.affair_code for e in hanako] == ["SOMU-KENZEI"]
    assert got[1].match_result == {"birth_date": "一致", "name": "一致"} and got[0].items[0] == "juminhyo_code"


def test_p5_provision_record_is_kept_seven_years_then_erased(world):
    from jukinet import retention
    from jukinet.provision.records import Entry, write

    now = datetime.now(timezone.utc)
    old = Entry(at=now - timedelta(days=7 * 366 + 2), operator_id="OP", terminal_id="T", channel="terminal",
                kind="provision", requester_code="SOMU", affair_code="SOMU-KENZEI", purpose_code="provision",
                case_ref=None, key_kind="juminhyo_code", keys_digest="{}", person_digest=None, source="local",
                outcome="provided", reason_code=None, items=("name",), number_included=False, match_result=None)
    recent = Entry(**{**old.__dict__, "at": now - timedelta(days=7 * 365 - 30)})
    with world.registers.juki_uow() as uow:
        write(uow.conn, "juki", old)
        write(uow.conn, "juki", recent)
    reports = retention.run(world.registers, only=["provision_records", "provision_records_fuhyo"], pause_seconds=0)
    by = {r.rule: r for r in reports}
    assert by["provision_records"].status == "completed" and by["provision_records"].erased == 1
    assert by["provision_records"].period == "7年"
    assert len(records(world)) == 1
