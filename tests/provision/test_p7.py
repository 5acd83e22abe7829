"""P7 — a 個人番号 is added to a 附票 provision only for a 国外転出者, and only for an affair 番号法 allows.

PIA III(2).3 R1: 「国外転出者に係る事務処理に関し、番号法で認められた場合に限り…個人番号を入手することを、
システムにより担保する」. A person is a 国外転出者 when his 附票本人確認情報 (D2) shows it: 現存, no 住所 in
Japan and a 最終住所 (what a 国外転出 notification leaves; see ``domain/reasons.check_fuhyo``). Anybody else
— living in Mie (県内) or in another prefecture (県外), or whose 附票 is 消除 — is refused the number on
his row with ``KOJIN_BANGO_NOT_ABROAD``, and the refusal is an entry of both registers' operation logs.
The other items of the affair are still provided (住基法 第30条の44の6 does not depend on 番号法).

Each test seeds its own persons (on top of the ``world`` fixture's reset installation).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.domain.records import FuhyoRecord, derive_fuhyo
from jukinet.errors import JukinetError
from jukinet.provision import kojin_bango_link as link
from jukinet.provision.batch import BatchCommand, BatchService
from jukinet.provision.kojin_bango_link import temp_store
from jukinet.provision.media import decrypt_file
from jukinet.provision.service import ProvideCommand
from jukinet.security.oplog import Actor
from jukinet.store.tables_provision import PROVISION_RECORDS
from jukinet.store.tables_security import OPLOG

from . import people as P
from .test_cli import add_operator
from .test_web import site  # noqa: F401 - the screens' fixture
from jukinet_testing import finish_job

CODE = "KOJIN_BANGO_NOT_ABROAD"

# invented persons, each with a 個人番号 in D1 and a 附票 in D2
ABROAD, KENNAI, KENGAI, REMOVED, RETURNED = (P.jcode(i) for i in range(711, 716))
NUMBER = {c: P.kbango(i) for c, i in zip((ABROAD, KENNAI, KENGAI, REMOVED, RETURNED), range(711, 716))}
MIE = "三重県津市栄町1丁目891番地"
TOKYO = "東京都千代田区霞が関2丁目1番2号"


def _fuhyo(code, name, kana, birth, *, address, muni, last=None, reason="記載", status="現存") -> FuhyoRecord:
    return derive_fuhyo(FuhyoRecord(juminhyo_code=code, name=name, name_kana=kana, birth_date=birth, sex="2",
                                    address_municipality_code=muni, address=address, last_address=last,
                                    change_date=date(2024, 6, 1), fuhyo_municipality_code="242012", status=status,
                                    reason=reason, notification_kind="消除" if status == "消除" else "修正"))


def seed_persons(world) -> None:
    """A 国外転出者 and four persons who are not (県内, 県外, 附票消除, returned from abroad)."""
    juki = [
        P.juki(ABROAD, "伊藤　春子", "イトウ　ハルコ", date(1985, 1, 10), sex="2", kojin=NUMBER[ABROAD], deleted=True,
               retention_flag=True, reason="国外転出"),
        P.juki(KENNAI, "伊藤　夏子", "イトウ　ナツコ", date(1986, 2, 11), sex="2", address=MIE, kojin=NUMBER[KENNAI]),
        P.juki(KENGAI, "伊藤　秋子", "イトウ　アキコ", date(1987, 3, 12), sex="2", kojin=NUMBER[KENGAI], deleted=True,
               retention_flag=True, reason="国内転出"),
        P.juki(REMOVED, "伊藤　冬子", "イトウ　フユコ", date(1988, 4, 13), sex="2", kojin=NUMBER[REMOVED], deleted=True,
               retention_flag=True, reason="死亡"),
        P.juki(RETURNED, "伊藤　桜子", "イトウ　サクラコ", date(1989, 5, 14), sex="2", address=MIE,
               kojin=NUMBER[RETURNED], reason="国外転入"),
    ]
    fuhyo = [
        _fuhyo(ABROAD, "伊藤　春子", "イトウ　ハルコ", date(1985, 1, 10), address=None, muni=None, last=MIE,
               reason="国外転出"),
        _fuhyo(KENNAI, "伊藤　夏子", "イトウ　ナツコ", date(1986, 2, 11), address=MIE, muni="242012"),
        _fuhyo(KENGAI, "伊藤　秋子", "イトウ　アキコ", date(1987, 3, 12), address=TOKYO, muni="131016",
               reason="住所変更"),
        _fuhyo(REMOVED, "伊藤　冬子", "イトウ　フユコ", date(1988, 4, 13), address=None, muni=None, last=MIE,
               reason="消除", status="消除"),
        _fuhyo(RETURNED, "伊藤　桜子", "イトウ　サクラコ", date(1989, 5, 14), address=MIE, muni="242012",
               reason="住所変更"),
    ]
    with world.registers.juki_uow() as uow:
        for p in juki:
            uow.repo.apply(p)
    with world.registers.fuhyo_uow() as uow:
        for p in fuhyo:
            uow.repo.apply(p)


@pytest.fixture
def w(world):
    seed_persons(world)
    return world


def provide(world, affair="SOMU-KENZEI-F", requester="SOMU", **kw):
    return world.svc.provide(ProvideCommand(requester_code=requester, affair_code=affair, **kw), P.OPERATOR, "T0001")


def oplog(world, chain, action="kojin_bango_link"):
    log, _ = OPLOG[chain]
    with world.registers.engine(chain).connect() as conn:
        rows = conn.execute(select(log).where(log.c.action == action).order_by(log.c.seq))
        return [dict(r._mapping, detail=json.loads(r.detail or "{}")) for r in rows]


def records(world, register="fuhyo"):
    t = PROVISION_RECORDS[register]
    with world.registers.engine(register).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.record_id))]


def run_batch(world, tmp_path, lines, affair="SOMU-KENZEI-F", requester="SOMU"):
    path = tmp_path / "conditions.csv"
    path.write_text("依頼番号,住民票コード\n" + "".join(f"{n},{c}\n" for n, c in lines), encoding="cp932")
    res = BatchService(world.svc).run(BatchCommand(requester, affair, path), P.OPERATOR, "T0001")
    return res, decrypt_rows(res.output_path, res.password)


def decrypt_rows(path, password):
    out = io.BytesIO()
    with open(path, "rb") as f:
        decrypt_file(f, out, password)
    return list(csv.DictReader(io.StringIO(out.getvalue().decode())))


def no_number_anywhere(world, numbers):
    """No refused person's 個人番号 in either log, the provision records or the temporary area."""
    text = json.dumps([oplog(world, c, None) for c in ("juki", "fuhyo")] + [records(world)], default=str)
    assert not any(n in text for n in numbers)
    store = temp_store(world.config, world.svc.keyring)
    held = {}
    for ref in {e["detail"]["ref"] for e in oplog(world, "juki")}:
        held.update(store.get(ref) or {})
    assert not set(held.values()) & set(numbers)


# ------------------------------------------------------------------ single provision

@pytest.mark.parametrize("affair, requester", [("SOMU-KENZEI-F", "SOMU"), ("KODOMO-JIFU-F", "KODOMO")])
def test_p7_abroad_person_gets_the_number_for_an_allowed_affair(w, affair, requester):
    r = provide(w, affair, requester, name="イトウ ハルコ", birth_date="1985-01-10")
    assert r.provided and r.values["kojin_bango"] == NUMBER[ABROAD] and r.number_included
    assert r.values["last_address"] == MIE and r.values["address"] is None
    assert r.number_code is None and r.number_note is None
    (j,), (f,) = oplog(w, "juki"), oplog(w, "fuhyo")
    assert j["outcome"] == f["outcome"] == "granted" and j["detail"]["found"] == 1 and f["detail"]["provided"] == 1
    assert j["detail"]["ref"] == f["detail"]["ref"] and j["detail"]["affair"] == affair
    rec = records(w)[-1]
    assert rec["number_included"] and rec["reason_code"] is None and rec["outcome"] == "provided"


@pytest.mark.parametrize("who", ["県内", "県外", "附票消除", "国外から転入"])
def test_p7_domestic_person_is_refused_the_number_with_a_code(w, who):
    code = {"県内": KENNAI, "県外": KENGAI, "附票消除": REMOVED, "国外から転入": RETURNED}[who]
    r = provide(w, juminhyo_code=code)
    # the 附票 items are provided; the number is refused, with a stable code and a Japanese message
    assert r.provided and r.values["name"].startswith("伊藤")
    assert r.values["kojin_bango"] is None and not r.number_included
    assert r.number_code == CODE and "国外転出" in r.number_note
    # both registers' operation logs hold the refusal (the same reference), with no personal data
    (j,), (f,) = oplog(w, "juki"), oplog(w, "fuhyo")
    assert j["outcome"] == f["outcome"] == "refused"
    assert j["detail"]["code"] == f["detail"]["code"] == CODE
    assert j["detail"]["ref"] == f["detail"]["ref"] and j["detail"]["refused"] == f["detail"]["refused"] == 1
    assert j["operator_id"] == f["operator_id"] == "OP-PROV" and j["terminal_id"] == f["terminal_id"] == "T0001"
    assert j["result_count"] == f["result_count"] == 0
    assert code not in j["keys"] and code not in json.dumps(j["detail"])
    # the provision record says what was refused
    rec = records(w)[-1]
    assert rec["outcome"] == "provided" and not rec["number_included"] and rec["reason_code"] == CODE
    assert "kojin_bango" not in rec["items"].split(",")
    prov = oplog(w, "fuhyo", "provision")[-1]
    assert prov["detail"]["code"] == CODE and "number_included" not in prov["detail"]
    no_number_anywhere(w, [NUMBER[code]])
    assert temp_store(w.config, w.svc.keyring).count() == 0


def test_p7_the_link_itself_checks_the_fuhyo_file_and_refuses(w):
    """The guarantee is in the one path (kojin_bango_link), not in its callers."""
    affair = w.svc.catalogue().affairs["SOMU-KENZEI-F"]
    store = temp_store(w.config, w.svc.keyring)
    with w.registers.fuhyo_uow() as uow:
        fetched = link.fetch(w.registers, w.svc.oplog, store, fuhyo_conn=uow.conn, codes=[ABROAD, KENNAI, KENGAI],
                             affair=affair, requester_code="SOMU", actor=Actor("OP-PROV", "T0001"), ref="P7-direct",
                             window_days=14)
        link.record_receipt(uow.conn, w.svc.oplog, fetched, affair=affair, requester_code="SOMU",
                            actor=Actor("OP-PROV", "T0001"), provided=len(fetched.numbers))
    assert fetched.numbers == {ABROAD: NUMBER[ABROAD]}
    assert fetched.refused == {KENNAI: CODE, KENGAI: CODE}
    assert store.get("P7-direct") == {ABROAD: NUMBER[ABROAD]}
    assert [(e["outcome"], e["detail"].get("code")) for e in oplog(w, "juki")] == [("granted", None), ("refused", CODE)]
    assert [(e["outcome"], e["detail"].get("code")) for e in oplog(w, "fuhyo")] == [("granted", None),
                                                                                   ("refused", CODE)]


# ------------------------------------------------------------------ batch provision

def test_p7_batch_mixing_abroad_and_domestic_gives_the_number_to_abroad_rows_only(w, tmp_path):
    res, rows = run_batch(w, tmp_path, [("B-1", ABROAD), ("B-2", KENNAI), ("B-3", P.TARO), ("B-4", KENGAI),
                                        ("B-5", RETURNED)])
    by = {r["依頼番号"]: r for r in rows}
    assert by["B-1"]["個人番号"] == NUMBER[ABROAD] and by["B-3"]["個人番号"] == P.TARO_NO
    assert by["B-1"]["結果コード"] == by["B-3"]["結果コード"] == ""
    for n in ("B-2", "B-4", "B-5"):
        assert by[n]["結果"] == "提供" and by[n]["個人番号"] == "" and by[n]["氏名"].startswith("伊藤")
        assert by[n]["結果コード"] == CODE and "国外転出" in by[n]["メッセージ"]
    assert res.provided == 5 and res.number_refused == 3
    j, f = oplog(w, "juki"), oplog(w, "fuhyo")
    for log in (j, f):
        assert [e["outcome"] for e in log] == ["granted", "refused"]
        assert log[1]["detail"]["code"] == CODE and log[1]["detail"]["refused"] == 3
        assert log[0]["detail"]["ref"] == log[1]["detail"]["ref"] == f"{res.media_id}-1"
    assert j[0]["detail"]["requested"] == 2 and j[0]["detail"]["found"] == 2 and f[0]["detail"]["provided"] == 2
    recs = {r["row_no"]: r for r in records(w) if r["media_id"] == res.media_id}
    assert [(recs[i]["number_included"], recs[i]["reason_code"]) for i in range(2, 7)] == [
        (True, None), (False, CODE), (True, None), (False, CODE), (False, CODE)]
    no_number_anywhere(w, [NUMBER[KENNAI], NUMBER[KENGAI], NUMBER[RETURNED]])


def test_p7_batch_of_domestic_persons_only_reads_no_number(w, tmp_path):
    res, rows = run_batch(w, tmp_path, [("D-1", KENNAI), ("D-2", KENGAI)])
    assert [r["結果コード"] for r in rows] == [CODE, CODE] and [r["個人番号"] for r in rows] == ["", ""]
    assert [e["outcome"] for e in oplog(w, "juki")] == ["refused"]
    assert [e["outcome"] for e in oplog(w, "fuhyo")] == ["refused"]
    assert temp_store(w.config, w.svc.keyring).count() == 0


def test_p7_cli_batch_refuses_the_number_for_domestic_rows(w, tmp_path):
    add_operator(w, "OP-P7", ["operator"])
    src = tmp_path / "in.csv"
    src.write_text(f"依頼番号,住民票コード\nC-1,{ABROAD}\nC-2,{KENNAI}\n", encoding="utf-8")
    out = tmp_path / "out.jkm"
    r = CliRunner().invoke(app, ["provision", "batch", "--operator", "OP-P7", "--requester", "SOMU", "--affair",
                                 "SOMU-KENZEI-F", "--in", str(src), "--out", str(out), "--purpose", "県税",
                                 "--data-dir", str(w.config.data_dir)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "KOJIN_BANGO_NOT_ABROAD): 1" in r.stdout
    password = r.stdout.split("パスワード")[1].split(": ")[1].split()[0]
    rows = decrypt_rows(out, password)
    assert [(x["個人番号"], x["結果コード"]) for x in rows] == [(NUMBER[ABROAD], ""), ("", CODE)]
    assert [e["outcome"] for e in oplog(w, "juki")] == ["granted", "refused"]
    assert [e["outcome"] for e in oplog(w, "fuhyo")] == ["granted", "refused"]


# ------------------------------------------------------------------ affairs without a 番号法 basis

def test_p7_affair_without_number_never_gets_it_even_for_an_abroad_person(w, tmp_path):
    r = provide(w, "KANKYO-RYOKEN-F", "KANKYO", juminhyo_code=ABROAD)
    assert r.provided and "kojin_bango" not in r.values and not r.number_included and r.number_code is None
    with pytest.raises(JukinetError) as e:
        provide(w, "KANKYO-RYOKEN-F", "KANKYO", juminhyo_code=ABROAD, items=["kojin_bango"])
    assert e.value.code == "ITEM_NOT_ALLOWED"
    res, rows = run_batch(w, tmp_path, [("K-1", ABROAD), ("K-2", KENNAI)], "KANKYO-RYOKEN-F", "KANKYO")
    assert "個人番号" not in rows[0] and [x["結果"] for x in rows] == ["提供", "提供"]
    assert oplog(w, "juki") == [] and oplog(w, "fuhyo") == []          # D1 was not asked at all
    affair = w.svc.catalogue().affairs["KANKYO-RYOKEN-F"]
    with w.registers.fuhyo_uow() as uow, pytest.raises(JukinetError) as e:
        link.fetch(w.registers, w.svc.oplog, temp_store(w.config, w.svc.keyring), fuhyo_conn=uow.conn,
                   codes=[ABROAD], affair=affair, requester_code="KANKYO", actor=Actor("OP-PROV", "T0001"),
                   ref="P7-x", window_days=14)
    assert e.value.code == "KOJIN_BANGO_NOT_ALLOWED"
    assert temp_store(w.config, w.svc.keyring).count() == 0


# ------------------------------------------------------------------ screen and API

def test_p7_screen_and_api_show_the_refusal(site):  # noqa: F811
    seed_persons(site.world)
    api = site.api("prov")
    r = api.post("/api/v1/provision", json={"requester_code": "SOMU", "affair_code": "SOMU-KENZEI-F",
                                            "juminhyo_code": KENNAI})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["outcome"] == "provided" and b["items"]["kojin_bango"] is None and not b["number_included"]
    assert b["number_code"] == CODE and "国外転出" in b["number_note"]
    ok = api.post("/api/v1/provision", json={"requester_code": "SOMU", "affair_code": "SOMU-KENZEI-F",
                                             "juminhyo_code": ABROAD}).json()
    assert ok["items"]["kojin_bango"] == NUMBER[ABROAD] and ok["number_code"] is None
    c = site.client("prov")
    page = c.post("/provision", data={"csrf_token": site.csrf("prov"), "grant": "SOMU|SOMU-KENZEI-F",
                                      "juminhyo_code": KENGAI})
    assert page.status_code == 200, page.text
    assert 'data-code="KOJIN_BANGO_NOT_ABROAD"' in page.text and NUMBER[KENGAI] not in page.text
    assert [e["outcome"] for e in oplog(site.world, "juki")] == ["refused", "granted", "refused"]
    assert [e["outcome"] for e in oplog(site.world, "fuhyo")] == ["refused", "granted", "refused"]
    up = c.post("/provision/batch", data={"csrf_token": site.csrf("prov"), "requester_code": "SOMU",
                                          "affair_code": "SOMU-KENZEI-F", "encoding": "auto"},
                files={"file": ("x.csv", f"依頼番号,住民票コード\nS-1,{ABROAD}\nS-2,{KENNAI}\n".encode(), "text/csv")})
    up = finish_job(c, up)
    assert up.status_code == 200 and 'id="number-refused"' in up.text and "国外転出者でない者) 1" in up.text
    b = api.post("/api/v1/provision/batch", data={"requester_code": "SOMU", "affair_code": "SOMU-KENZEI-F"},
                 files={"file": ("y.csv", f"依頼番号,住民票コード\nA-1,{KENGAI}\n".encode(), "text/csv")})
    assert b.status_code == 200 and b.json()["number_refused"] == 1 and b.json()["provided"] == 1
