"""The 事務3 screens: the same services behind a terminal, a session and CSRF; PDFs by POST only."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from jukinet.security.oplog import Actor
from jukinet.store.tables_security import operators

from .conftest import KATSU_IVS, KATSURAGI, KATSURAGI_NAME

_spec = importlib.util.spec_from_file_location("jukinet_web_fixtures", Path(__file__).parent.parent / "web" / "operator_site.py")
W = sys.modules.get("jukinet_web_fixtures") or importlib.util.module_from_spec(_spec)
if "jukinet_web_fixtures" not in sys.modules:
    sys.modules["jukinet_web_fixtures"] = W
    _spec.loader.exec_module(W)

EXTRA = {"disc": (["operator"], ["juki", "fuhyo"], ["disclosure"]), "mgr": (["manager"], ["juki"], [])}


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


def test_o1_screen_intake_partial_decision_and_pdf(site):
    c = site.client("disc")
    page = c.get("/disclosure")
    assert page.status_code == 200 and 'id="intake-form"' in page.text and page.headers["cache-control"] == "no-store"
    f = {"csrf_token": site.csrf("disc"), "register": "juki", "request_no": "W-1", "name": "葛城吉子",
         "birth_date": "S36.2.3", "sex": "2", "address": "三重県名張市丸之内79番地", "scope": "history"}
    r = c.post("/disclosure/intake", data=f)
    assert r.status_code == 200 and 'data-outcome="partial"' in r.text and "氏名 不一致" in r.text
    assert KATSURAGI not in r.text and KATSU_IVS not in r.text           # the candidate is not shown
    assert c.post("/disclosure/intake", data={**f, "csrf_token": "x"}).status_code == 403
    bad = c.post("/disclosure/form", data={"csrf_token": site.csrf("disc"), "register": "juki", "request_no": "W-1"})
    assert bad.status_code == 400 and 'data-code="REQUEST_NOT_MATCHED"' in bad.text
    d = c.post("/disclosure/decide", data={"csrf_token": site.csrf("disc"), "register": "juki", "request_no": "W-1",
                                           "decision": "accepted", "reason": "gaiji_variant"})
    assert d.status_code == 200 and "判断を記録しました" in d.text
    pdf = c.post("/disclosure/form", data={"csrf_token": site.csrf("disc"), "register": "juki", "request_no": "W-1",
                                           "kind": "history", "purpose": "disclosure_request", "copies": "1"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    serial = pdf.headers["x-form-serial"]
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert KATSURAGI_NAME in text and serial in text
    reg = c.get("/disclosure/forms")
    assert serial in reg.text and "交付済み" in reg.text
    searcher = site.client("operator_juki").get("/disclosure")
    assert searcher.status_code == 403


def test_a5_form_register_screen_csv_for_manager(site):
    c = site.client("disc")
    c.post("/disclosure/intake", data={"csrf_token": site.csrf("disc"), "register": "juki", "request_no": "W-2",
                                       "name": "葛城𠮷子".replace("葛", KATSU_IVS), "birth_date": "1961-02-03",
                                       "sex": "2", "address": "名張市丸之内79番地", "scope": "provisions"})
    pdf = c.post("/disclosure/form", data={"csrf_token": site.csrf("disc"), "register": "juki", "request_no": "W-2",
                                           "kind": "provisions", "copies": "1"})
    assert pdf.status_code == 200, pdf.text
    serial = pdf.headers["x-form-serial"]
    r = c.post("/disclosure/forms/dispose", data={"csrf_token": site.csrf("disc"), "serial": serial,
                                                  "method": "shredded"})
    assert r.status_code == 400 and "FORM_APPROVAL_REQUIRED" in r.text     # G3: the manager approves first
    from tests.disclosure.test_disclosure import approve_form
    aid = approve_form(site.registers, serial)
    r = c.post("/disclosure/forms/dispose", data={"csrf_token": site.csrf("disc"), "serial": serial,
                                                  "method": "shredded", "approval_id": aid})
    assert r.status_code == 200 and "廃棄済み" in r.text
    m = site.client("mgr")
    assert m.get("/disclosure/forms").status_code == 200
    rows = list(csv.DictReader(io.StringIO(m.get("/disclosure/forms.csv").content.decode("utf-8-sig"))))
    assert rows[-1]["帳票番号"] == serial and rows[-1]["状態"] == "廃棄済み"   # the status in Japanese (ADR 0042)
    assert m.get("/disclosure").status_code == 403


def test_a10_inquiry_screen_and_csv(site):
    c = site.client("disc")
    r = c.post("/disclosure/inquiries", data={"csrf_token": site.csrf("disc"), "channel": "counter",
                                              "category": "security", "summary": "漏えいの有無の問合せ"})
    assert r.status_code == 200 and "漏えいの有無" in r.text
    iid = r.text.split('data-inquiry="')[1].split('"')[0]
    r = c.post("/disclosure/inquiries/handle", data={"csrf_token": site.csrf("disc"), "inquiry_id": iid,
                                                     "handling": "操作ログの確認結果を説明"})
    assert "完了" in r.text
    rows = list(csv.DictReader(io.StringIO(c.get("/disclosure/inquiries.csv").content.decode("utf-8-sig"))))
    assert rows[0]["状態"] == "完了"


def test_o2_correction_screen_steps(site):
    c = site.client("disc")
    tok = site.csrf("disc")
    c.post("/disclosure/intake", data={"csrf_token": tok, "register": "juki", "request_no": "W-3",
                                       "name": "葛城𠮷子".replace("葛", KATSU_IVS), "birth_date": "1961-02-03",
                                       "sex": "2", "address": "名張市丸之内79番地", "scope": "identity"})
    r = c.post("/disclosure/corrections", data={"csrf_token": tok, "register": "juki", "request_no": "W-3",
                                                "kind": "correct", "items": ["name"], "statement": "字体が違う"})
    assert r.status_code == 200 and 'data-status="received"' in r.text
    cid = r.text.split('data-correction="')[1].split('"')[0]
    for to, extra in (("investigating", {}), ("no_correction", {}), ("closed", {})):
        r = c.post("/disclosure/corrections/step", data={"csrf_token": tok, "register": "juki", "correction_id": cid,
                                                         "to_status": to, **extra})
        assert r.status_code == 200 and f'data-status="{to}"' in r.text
    pdf = c.post("/disclosure/corrections/letter", data={"csrf_token": tok, "register": "juki", "correction_id": cid})
    assert pdf.status_code == 200 and "誤りは認められませんでした" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
