"""The 事務2/事務4 screens and terminal API: the same services behind a terminal, a session and CSRF."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from jukinet.provision.media import decrypt_file
from jukinet.security.oplog import Actor
from jukinet.store.tables_provision import PROVISION_RECORDS, provision_catalogue_changes, provision_media
from jukinet.store.tables_security import operators

from . import people as P
from jukinet_testing import finish_job

_spec = importlib.util.spec_from_file_location("jukinet_web_fixtures", Path(__file__).parent.parent / "web" / "conftest.py")
W = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("jukinet_web_fixtures", W)
_spec.loader.exec_module(W)

EXTRA = {"prov": (["operator"], ["juki", "fuhyo"], ["provision", "national"]),
         "prov2": (["operator"], ["juki", "fuhyo"], ["provision"]),
         "mgr": (["manager"], ["juki", "fuhyo"], [])}


@pytest.fixture
def site(world):
    s = W.make_site(world.config, world.registers)
    for persona, (roles, regs, affairs) in EXTRA.items():
        op, _ = s.sec.register_operator(Actor("bootstrap", None), display_name=f"{persona} 担当", roles=roles,
                                        registers=regs, affairs=affairs, operator_id=persona.upper())
        with world.registers.admin_tx() as conn:
            conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
        s.op_ids[persona] = op.operator_id
        s.tokens[persona] = s.new_session(persona)
    s.world = world
    return s


def records(world, register="juki"):
    t = PROVISION_RECORDS[register]
    with world.registers.engine(register).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.record_id))]


def test_p2_terminal_screen_single_provision_with_match(site):
    c = site.client("prov")
    page = c.get("/provision")
    assert page.status_code == 200 and 'id="provision-form"' in page.text and "SOMU|SOMU-KENZEI" in page.text
    assert page.headers["cache-control"] == "no-store"
    r = c.post("/provision", data={"csrf_token": site.csrf("prov"), "grant": "SOMU|SOMU-KENZEI",
                                   "juminhyo_code": P.TARO, "name": "山田太郎", "birth_date": "S55.4.1", "sex": "2"})
    assert r.status_code == 200, r.text
    assert 'data-outcome="provided"' in r.text and "山田　太郎" in r.text and P.TARO_NO in r.text
    assert "昭和55年4月1日" in r.text and "不一致" in r.text and "移転" in r.text
    assert P.TARO not in str(r.url)
    rec = records(site.world)[-1]
    assert rec["channel"] == "terminal" and rec["terminal_id"] == site.terminal_id and rec["operator_id"] == "PROV"
    bad = c.post("/provision", data={"csrf_token": site.csrf("prov"), "grant": "KOAN|SOMU-KENZEI",
                                     "juminhyo_code": P.TARO})
    assert bad.status_code == 400 and 'data-code="AFFAIR_NOT_GRANTED"' in bad.text and "山田" not in bad.text
    nocsrf = c.post("/provision", data={"grant": "SOMU|SOMU-KENZEI", "juminhyo_code": P.TARO})
    assert nocsrf.status_code == 403
    searcher = site.client("operator_juki").get("/provision")
    assert searcher.status_code == 403 and "FORBIDDEN" in searcher.text


def test_p2_api_single_provision_and_refusals(site):
    api = site.api("prov")
    r = api.post("/api/v1/provision", json={"requester_code": "KOAN", "affair_code": "KOAN-UNTEN",
                                            "name": "ヤマダ タロウ", "birth_date": "1980-04-01", "sex": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "provided" and body["kind"] == "provision" and "道路交通法" in body["legal_basis"]
    assert set(body["items"]) == {"name", "name_kana", "former_surname", "birth_date", "sex", "address", "reason",
                                  "change_date"}
    assert body["match"] == {"name": "一致", "birth_date": "一致", "sex": "一致"}
    r = api.post("/api/v1/provision", json={"requester_code": "KOAN", "affair_code": "KOAN-UNTEN",
                                            "juminhyo_code": P.TARO, "items": ["kojin_bango"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ITEM_NOT_ALLOWED"
    r = site.api("operator_juki").post("/api/v1/provision", json={"requester_code": "KOAN", "affair_code": "KOAN-UNTEN",
                                                                  "juminhyo_code": P.TARO})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert [x["reason_code"] for x in records(site.world)[-2:]] == ["ITEM_NOT_ALLOWED", "FORBIDDEN"]
    cat = api.get("/api/v1/provision/catalogue").json()
    assert len(cat["affairs"]) >= 20 and {"code", "basis", "items", "kojin_bango"} <= set(cat["affairs"][0])


def test_p4_api_batch_upload_download_by_its_operator_only(site):
    api = site.api("prov")
    data = f"依頼番号,住民票コード\nW-1,{P.TARO}\nW-2,{P.HANAKO}\n".encode("cp932")
    r = api.post("/api/v1/provision/batch", data={"requester_code": "SOMU", "affair_code": "SOMU-KENZEI",
                                                  "encoding": "cp932"},
                 files={"file": ("conditions.csv", data, "text/csv")})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["provided"] == 2 and b["password"] and b["media_id"].startswith("M")
    other = site.api("prov2").post(f"/api/v1/provision/media/{b['media_id']}/download")
    assert other.status_code == 403
    d = api.post(f"/api/v1/provision/media/{b['media_id']}/download")
    assert d.status_code == 200 and d.content.startswith(b"JKNMEDIA") and P.TARO.encode() not in d.content
    out = io.BytesIO()
    decrypt_file(io.BytesIO(d.content), out, b["password"])
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert [x["住民票コード"] for x in rows] == [P.TARO, P.HANAKO]
    with site.world.registers.admin_tx(write=False) as conn:
        m = conn.execute(select(provision_media).where(provision_media.c.media_id == b["media_id"])).one()
    assert m.downloads == 1 and m.channel == "api" and m.sha256 == b["sha256"]
    chk = api.post("/api/v1/provision/batch", data={"requester_code": "SOMU", "affair_code": "SOMU-KENZEI",
                                                    "check_only": "true"},
                   files={"file": ("c.csv", "依頼番号,住民票コード\nA,1\n".encode(), "text/csv")})
    assert chk.status_code == 200 and chk.json()["errors"] == 1


def test_p4_batch_screen_upload(site):
    c = site.client("prov")
    assert c.get("/provision/batch").status_code == 200
    r = c.post("/provision/batch", data={"csrf_token": site.csrf("prov"), "requester_code": "SOMU",
                                         "affair_code": "SOMU-KENZEI", "encoding": "auto"},
               files={"file": ("x.csv", f"依頼番号,住民票コード\nZ-1,{P.TARO}\n".encode(), "text/csv")})
    r = finish_job(c, r)
    assert r.status_code == 200 and 'id="media-password"' in r.text and 'id="media-id"' in r.text
    media_id = r.text.split('id="media-id">')[1].split("<")[0]
    d = c.post(f"/provision/media/{media_id}/download", data={"csrf_token": site.csrf("prov")})
    assert d.status_code == 200 and d.content.startswith(b"JKNMEDIA")
    m = c.get("/provision/media")
    assert m.status_code == 200 and media_id in m.text


def test_a5_approval_requested_by_an_operator_and_decided_by_a_manager_on_screen(site):
    c = site.client("prov")
    r = c.post("/provision/approvals", data={"csrf_token": site.csrf("prov"), "requester_code": "SOMU",
                                             "affair_code": "SOMU-KENZEI", "max_rows": "5000", "purpose": "一斉照合"})
    assert r.status_code == 200 and "承認を申請しました" in r.text
    ap = r.text.split("承認を申請しました: ")[1].split("<")[0].strip()
    refused = c.post(f"/provision/approvals/{ap}/decide", data={"csrf_token": site.csrf("prov"), "decision": "approve"})
    assert refused.status_code == 403
    m = site.client("mgr")
    page = m.get("/provision/approvals")
    assert ap in page.text and "承認</button>" in page.text
    ok = m.post(f"/provision/approvals/{ap}/decide", data={"csrf_token": site.csrf("mgr"), "decision": "approve"})
    assert ok.status_code == 200 and "承認済み" in ok.text


def test_p1_catalogue_admin_screen_edits_are_logged(site):
    admin = site.client("admin")
    page = admin.get("/provision/catalogue")
    assert page.status_code == 200 and "KOAN-KEIBI" in page.text
    r = admin.post("/provision/catalogue/affairs", data={
        "csrf_token": site.csrf("admin"), "code": "KOAN-KEIBI", "name": "警備業法による認定に関する事務",
        "source": "別表第六", "basis": "住民基本台帳法 第30条の15第2項第1号・別表第六 (警備業法)", "register": "juki",
        "items": ["name", "birth_date", "sex", "address", "reason"], "requesters": ["KOAN", "KEISATSU"]})
    assert r.status_code == 200 and "保存しました" in r.text, r.text
    with site.world.registers.admin_tx(write=False) as conn:
        ch = conn.execute(select(provision_catalogue_changes).where(provision_catalogue_changes.c.via == "screen")).all()
    assert {(x.entity, x.code, x.action) for x in ch} == {("affair", "KOAN-KEIBI", "change"),
                                                          ("grant", "KEISATSU/KOAN-KEIBI", "grant")}
    assert all(x.operator_id == "ADMIN" and x.terminal_id == site.terminal_id for x in ch)
    bad = admin.post("/provision/catalogue/affairs", data={
        "csrf_token": site.csrf("admin"), "code": "KOAN-KEIBI", "name": "x", "source": "別表第六", "basis": "住民基本台帳法",
        "register": "juki", "items": ["kojin_bango"], "requesters": ["KOAN"]})
    assert bad.status_code == 400 and "CATALOGUE_INVALID" in bad.text
    assert admin.get("/provision/catalogue.toml").text.startswith('format = "jukinet.provision-catalogue/1"')
    assert site.client("prov").get("/provision/catalogue").status_code == 403


def test_n1_national_screen_needs_the_affair_and_a_purpose(site):
    c = site.client("prov")
    assert c.get("/query/national").status_code == 200
    r = c.post("/query/national", data={"csrf_token": site.csrf("prov"), "register": "juki", "purpose_code": "",
                                        "juminhyo_code": P.TARO})
    assert r.status_code == 400 and "PURPOSE_REQUIRED" in r.text
    assert site.client("prov2").get("/query/national").status_code == 403
    api = site.api("prov")
    r = api.post("/api/v1/national/query", json={"register": "fuhyo", "purpose_code": "inquiry", "kojin_bango": P.TARO_NO})
    assert r.status_code == 400 and r.json()["error"]["code"] == "KEY_NOT_ALLOWED"
    assert records(site.world, "fuhyo")[-1]["kind"] == "national_query"
    schema = site.app.openapi()["components"]["schemas"]
    assert schema["ProvideOut"]["properties"]["register"]["type"] == "string"
    assert "register" in schema["ProvideOut"]["required"] and "register_" not in schema["BatchOut"]["properties"]
    recs = site.client("mgr").get("/provision/records")
    assert recs.status_code == 200 and "PURPOSE_REQUIRED" in recs.text and P.TARO not in recs.text
