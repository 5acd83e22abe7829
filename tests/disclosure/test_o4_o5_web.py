"""O4/O5 on the Japanese operator screens: 利用停止請求 from the counter to the letter, the fees on the
screen and the receipt, a coded refusal shown where the eye is, the 通報 list with its delivery state."""

from __future__ import annotations

import io

from pypdf import PdfReader

from .conftest import KATSU_IVS
from .test_web import site  # noqa: F401  (the fixture)


def _text(resp) -> str:
    return "".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.content)).pages).replace("\n", "")


def _disclosed(site, c, tok, no):  # noqa: F811
    c.post("/disclosure/intake", data={"csrf_token": tok, "register": "juki", "request_no": no,
                                       "name": "葛城𠮷子".replace("葛", KATSU_IVS), "birth_date": "1961-02-03",
                                       "sex": "2", "address": "名張市丸之内79番地", "scope": "identity"})
    r = c.post("/disclosure/form", data={"csrf_token": tok, "register": "juki", "request_no": no, "kind": "identity",
                                         "purpose": "disclosure_request", "copies": "1"})
    assert r.status_code == 200


def test_o4_screen_request_receipt_report_decision_letter(site):  # noqa: F811
    c = site.client("disc")
    tok = site.csrf("disc")
    page = c.get("/disclosure/suspensions")
    assert page.status_code == 200 and 'id="suspension-form"' in page.text and "A3 まで1枚10円" in page.text
    _disclosed(site, c, tok, "W-40")
    bad = c.post("/disclosure/suspensions", data={"csrf_token": tok, "register": "juki", "request_no": "W-40",
                                                  "kind": "stop_use", "grounds": "outside_purpose",
                                                  "statement": "目的外利用", "copy_sheets": "2", "copy_size": "A1"})
    assert bad.status_code == 400 and 'data-code="COPY_SIZE_OVER_A3"' in bad.text and "A3 までです" in bad.text
    assert "利用停止請求はありません" in bad.text
    r = c.post("/disclosure/suspensions", data={"csrf_token": tok, "register": "juki", "request_no": "W-40",
                                                "kind": "stop_use", "grounds": "outside_purpose",
                                                "statement": "目的外利用", "copy_sheets": "2", "copy_size": "A4"})
    assert r.status_code == 200 and 'data-status="received"' in r.text and "複写 2枚 (A4) 20円" in r.text
    sid = r.text.split('data-suspension="')[1].split('"')[0]
    receipt = c.post("/disclosure/suspensions/receipt", data={"csrf_token": tok, "register": "juki",
                                                              "suspension_id": sid})
    assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/pdf"
    assert "2枚（A4）× 10円 = 20円" in _text(receipt) and "無料" in _text(receipt)
    r = c.post("/disclosure/suspensions/step", data={"csrf_token": tok, "register": "juki", "suspension_id": sid,
                                                     "to_status": "investigating", "assignee": "DISC"})
    assert 'data-status="investigating"' in r.text
    r = c.post("/disclosure/suspensions/report", data={"csrf_token": tok, "register": "juki", "suspension_id": sid,
                                                       "municipality_code": "242080", "kind": "correct",
                                                       "items": ["address"]})
    assert r.status_code == 200 and "通報 juki-" in r.text and "送信待ち" in r.text
    r = c.post("/disclosure/suspensions/decide", data={"csrf_token": tok, "register": "juki", "suspension_id": sid,
                                                       "decision": "partial", "reason": "violation_found"})
    assert 'data-status="decided"' in r.text and "利用停止をする (一部)" in r.text
    letter = c.post("/disclosure/suspensions/letter", data={"csrf_token": tok, "register": "juki",
                                                            "suspension_id": sid})
    assert letter.status_code == 200 and "利用停止決定通知書" in _text(letter) and "名張市長に通報しました" in _text(letter)

    reports = c.get("/disclosure/reports")
    assert reports.status_code == 200 and f'data-report="juki-{sid}-242080"' in reports.text
    assert 'data-state="pending"' in reports.text and "利用停止請求" in reports.text
    rid = f"juki-{sid}-242080"
    doc = c.post("/disclosure/reports/document", data={"csrf_token": tok, "register": "juki", "report_id": rid})
    assert doc.status_code == 200 and "通報書" in _text(doc) and "名張市長" in _text(doc)
    assert site.client("mgr").get("/disclosure/reports").status_code == 200       # the manager looks, read only
    assert site.client("mgr").get("/disclosure/suspensions").status_code == 403
    assert c.post("/disclosure/suspensions", data={"csrf_token": "x", "register": "juki"}).status_code == 403
