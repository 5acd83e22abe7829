"""事務3 end to end on the services: intake and 突合 (O1), disclosure form (O1, D4), provision history
(O3), corrections (O2), the form register (A5), the inquiry log (A10). PDFs are read back."""

from __future__ import annotations

import datetime as _dt

import csv
import io
import shutil
import subprocess

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from jukinet.store.tables_media import media_approvals
from jukinet.errors import JukinetError
from jukinet.security.oplog import verify_all
from jukinet.security.model import Refused
from jukinet.store.tables_disclosure import CORRECTION_STEPS, DISCLOSURE_REQUESTS, form_register
from jukinet.store.tables_security import OPLOG

from .conftest import KATSU_IVS, KATSURAGI, KATSURAGI_NAME, MANAGER, OP, SEARCHER, P

from jukinet.disclosure.service import IntakeCommand


def text_of(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def intake(w, no="R-0001", register="juki", **kw):
    f = dict(name="葛城𠮷子", birth_date="昭和36年2月3日", sex="2", address="名張市丸之内79番地")
    f.update(kw)
    f["name"] = f["name"].replace("葛", KATSU_IVS) if f.pop("ivs", True) else f["name"]
    return w.svc.intake(IntakeCommand(register=register, request_no=no, **f), OP, "T0001")


def log_actions(w, register):
    log = OPLOG[register][0]
    with w.registers.engine(register).connect() as conn:
        return [(r.action, r.outcome) for r in conn.execute(select(log).order_by(log.c.seq))]


def test_o1_intake_matches_and_form_carries_gaiji_serial_and_wareki(world):
    r = intake(world)
    assert r.outcome == "matched" and set(r.match.values()) == {"一致"}
    issued = world.svc.disclosure_form("juki", "R-0001", OP, "T0001", with_history=True)
    text = text_of(issued.pdf)
    assert KATSURAGI_NAME in text and "𠮷" in text and KATSU_IVS in text
    assert issued.serial in text and issued.serial.startswith("D") and "R-0001" in text
    assert "昭和36年2月3日" in text and "令和5年6月1日" in text and "三重県" in text
    assert "頁 1 / 1" in text and "名張市鴻之台1番地" in text        # history within retention
    assert ("disclosure_intake", "granted") in log_actions(world, "juki")
    assert ("disclosure_form", "granted") in log_actions(world, "juki")
    with world.registers.admin_tx(write=False) as conn:
        fr = conn.execute(select(form_register)).one()
    assert fr.serial == issued.serial and fr.status == "issued" and fr.operator_id == "DISC-1" and fr.pages == 1
    assert KATSURAGI not in str(fr._mapping.values())


def test_o1_partial_match_needs_a_recorded_decision(world):
    r = intake(world, "R-0002", ivs=False, name="葛城吉子")   # 吉 for 𠮷, no IVS: name differs
    assert r.outcome == "partial" and r.match["name"] == "不一致" and r.match["birth_date"] == "一致"
    with pytest.raises(JukinetError) as e:
        world.svc.disclosure_form("juki", "R-0002", OP, "T0001")
    assert e.value.code == "REQUEST_NOT_MATCHED"
    world.svc.decide("juki", "R-0002", "accepted", "gaiji_variant", OP, "T0001")
    with world.registers.engine("juki").connect() as conn:
        req = conn.execute(select(DISCLOSURE_REQUESTS["juki"])).one()
    assert req.decision == "accepted" and req.decided_by == "DISC-1" and req.decided_at is not None
    assert "葛" not in req.match_result and world.svc.disclosure_form("juki", "R-0002", OP, "T0001").pages == 1
    with pytest.raises(JukinetError) as e:
        world.svc.decide("juki", "R-0002", "rejected", "not_confirmed", OP, "T0001")
    assert e.value.code == "DECISION_NOT_PENDING"
    assert intake(world, "R-0003", birth_date="1961-02-04").outcome == "unmatched"
    with pytest.raises(JukinetError) as e:
        intake(world, "R-0003")
    assert e.value.code == "REQUEST_NO_DUPLICATE"
    assert ("disclosure_intake", "refused") in log_actions(world, "juki")


def test_o1_refused_without_disclosure_scope_and_logged(world):
    for who in (SEARCHER, MANAGER):
        with pytest.raises(Refused):
            world.svc.intake(IntakeCommand("juki", "R-9", "x", "1961-02-03", "2", "y"), who, "T0001")
    assert log_actions(world, "juki").count(("disclosure_intake", "refused")) == 2


def test_o1_fuhyo_register_form(world):
    assert intake(world, "F-1", register="fuhyo").outcome == "matched"
    text = text_of(world.svc.disclosure_form("fuhyo", "F-1", OP, "T0001").pdf)
    assert "附票本人確認情報開示書" in text and KATSURAGI_NAME in text


def test_o3_provision_history_lists_every_provision(world):
    world.provide(KATSURAGI)
    world.provide(KATSURAGI, requester="SOMU", affair="SOMU-KENZEI-F")
    world.provide(P.TARO)                                              # someone else: not listed
    intake(world, "R-0010")
    issued = world.svc.provisions_form("juki", "R-0010", OP, "T0001")
    text = text_of(issued.pdf)
    assert issued.serial.startswith("P") and issued.serial in text
    assert "三重県公安委員会" in text and "道路交通法" in text and "提供状況開示書" in text
    assert text.count("令和") >= 3 and KATSURAGI_NAME in text
    rows = world.svc.provision_rows(KATSURAGI, __import__("jukinet.security.oplog", fromlist=["Actor"]).Actor("X", None),
                                    "R-0010", None)
    assert len(rows) == 2
    assert ("disclosure_provisions", "granted") in log_actions(world, "fuhyo")


def test_o2_correction_through_investigation_to_result_letter(world):
    intake(world, "R-0020")
    cid = world.svc.open_correction("juki", "R-0020", "correct", ["address"], "住所の番地が違う", OP, "T0001")
    with pytest.raises(JukinetError) as e:
        world.svc.step("juki", cid, "closed", OP, "T0001")
    assert e.value.code == "STEP_NOT_ALLOWED"
    with pytest.raises(JukinetError):
        world.svc.correction_letter("juki", cid, OP, "T0001")
    world.svc.step("juki", cid, "investigating", OP, "T0001", assignee="DISC-2")
    with pytest.raises(JukinetError) as e:
        world.svc.step("juki", cid, "reported", OP, "T0001")
    assert e.value.code == "MUNICIPALITY_REQUIRED"
    world.svc.step("juki", cid, "reported", OP, "T0001", municipality_code="242080")
    world.svc.step("juki", cid, "closed", OP, "T0001")
    [c] = world.svc.corrections("juki", OP, "T0001")
    assert c.status == "closed" and c.result == "corrected" and c.assignee == "DISC-2" and c.due_date
    steps = [(s.from_status, s.to_status) for s in world.svc.steps("juki", cid)]
    assert steps == [(None, "received"), ("received", "investigating"), ("investigating", "reported"),
                     ("reported", "closed")]
    with world.registers.engine("juki").connect() as conn:
        assert all(s.oplog_seq for s in conn.execute(select(CORRECTION_STEPS["juki"])))
    letter = world.svc.correction_letter("juki", cid, OP, "T0001")
    text = text_of(letter.pdf)
    assert "調査結果通知書" in text and "名張市" in text and "住所" in text and letter.serial.startswith("C")
    assert KATSURAGI_NAME in text
    acts = log_actions(world, "juki")
    assert acts.count(("correction_step", "granted")) == 3 and ("correction_letter", "granted") in acts


def approve_form(registers, serial: str) -> str:
    """The 管理責任者's prior approval of destroying a form (G3; given on /media or `jukinet media approve --form`)."""
    aid = f"MA-{serial}"[:24]
    with registers.admin_tx() as conn:
        conn.execute(media_approvals.insert().values(approval_id=aid, target_kind="form", target_id=serial,
                                                     action="destroy", reason="保存期間満了", approved_by="MGR",
                                                     approved_at=_dt.datetime.now(_dt.timezone.utc),
                                                     status="approved"))
    return aid


def test_a5_g3_form_register_serials_disposal_with_prior_approval_and_csv(world):
    intake(world, "R-0030")
    a = world.svc.disclosure_form("juki", "R-0030", OP, "T0001", copies=2)
    b = world.svc.disclosure_form("juki", "R-0030", OP, "T0001", purpose="reissue")
    assert a.serial != b.serial
    with pytest.raises(JukinetError) as e:          # G3: not without the manager's prior approval
        world.svc.dispose(a.serial, "shredded", OP, "T0001")
    assert e.value.code == "FORM_APPROVAL_REQUIRED"
    aid = approve_form(world.registers, a.serial)
    world.svc.dispose(a.serial, "shredded", OP, "T0001", approval_id=aid)
    with pytest.raises(JukinetError):
        world.svc.dispose(a.serial, "shredded", OP, "T0001", approval_id=aid)
    rows = {r.serial: r for r in world.svc.forms(MANAGER, "T0001")}
    assert rows[a.serial].status == "disposed" and rows[a.serial].copies == 2 and rows[b.serial].purpose == "reissue"
    data = world.svc.forms_csv(MANAGER, "T0001")
    assert data.startswith("\ufeff".encode())
    got = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [g["帳票番号"] for g in got] == [a.serial, b.serial] and got[0]["廃棄方法"] == "裁断"
    assert got[0]["状態"] == "廃棄済み" and got[0]["交付日時"].startswith("令和")      # people read it (ADR 0042)
    assert "葛" not in data.decode() and KATSURAGI not in data.decode()
    with pytest.raises(Refused):
        world.svc.forms(SEARCHER, "T0001")
    for rep in verify_all(world.svc.oplog, {r: world.registers.engine(r) for r in ("juki", "fuhyo")}
                          | {"admin": world.registers.admin_engine}):
        assert rep.ok, rep


def test_a10_inquiries_recorded_with_handling(world):
    iid = world.svc.add_inquiry("phone", "provision", "提供先を知りたいとの問合せ", OP, "T0001")
    world.svc.handle_inquiry(iid, "提供状況の開示請求の手続を案内した", OP, "T0001")
    [r] = world.svc.inquiries(MANAGER, "T0001")
    assert r.status == "closed" and r.handled_by == "DISC-1"
    got = list(csv.DictReader(io.StringIO(world.svc.inquiries_csv(MANAGER, "T0001").decode("utf-8-sig"))))
    assert got[0]["分類"] == "提供状況" and got[0]["状態"] == "完了" and "案内" in got[0]["対応"]
    assert got[0]["受付日時"].startswith("令和") and got[0]["完了日時"].startswith("令和")   # 和暦, JST
    with pytest.raises(Refused):
        world.svc.add_inquiry("phone", "other", "x", MANAGER, "T0001")


@pytest.mark.skipif(shutil.which("pdffonts") is None, reason="poppler-utils (pdffonts) not installed")
def test_d4_pdf_embeds_ipamj_and_keeps_ivs(world, tmp_path):
    intake(world, "R-0040")
    pdf = world.svc.disclosure_form("juki", "R-0040", OP, "T0001").pdf
    path = tmp_path / "form.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    fonts = out.splitlines()[2:]
    assert fonts and all("IPAmj" in line for line in fonts)
    assert all(line.split()[-5:-3] == ["yes", "yes"] for line in fonts), out      # emb, sub
    text = text_of(pdf)
    assert KATSU_IVS in text                       # the variation sequence is kept
    assert "葛城" not in text.replace(KATSU_IVS, "")  # no plain 葛 left where the IVS was written


def test_d4_ivs_selects_its_own_glyph_in_the_embedded_font(world):
    """葛 and 葛+U+E0102 on one form: HarfBuzz picks two different glyphs of IPAmj (cmap format 14), and the
    embedded subset maps each back to its own text (one glyph cannot map to two strings)."""
    import uharfbuzz as hb

    from jukinet.disclosure import forms

    face = hb.Face(hb.Blob.from_file_path(str(forms.font_path())))
    gids = []
    for s in ("葛", KATSU_IVS):
        buf = hb.Buffer()
        buf.add_str(s)
        buf.guess_segment_properties()
        hb.shape(hb.Font(face), buf)
        gids.append([g.codepoint for g in buf.glyph_infos])
    assert gids[1][0] != gids[0][0]          # the selector picks another glyph (it is then hidden)
    with world.registers.juki_uow(write=False) as uow:
        cur = uow.repo.get(KATSURAGI)
        old = uow.repo.history_of(KATSURAGI)[0].replace(name="葛城　吉子")
    pdf = forms.disclosure_form("juki", cur, [old], serial="D0-1", prefecture="三重県", request_no="X",
                                issued=__import__("datetime").date(2026, 11, 26)).data
    text = text_of(pdf)
    assert f"{KATSU_IVS}城　𠮷子" in text and "葛城　吉子" in text
