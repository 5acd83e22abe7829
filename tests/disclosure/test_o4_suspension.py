"""O4 — 利用停止請求 (PIA V.1) beside 訂正等の申出: intake after a disclosure (開示前置), the receipt with
the fees (手数料 無料, 複写費用 A3 まで1枚10円), investigation, decision, the legal deadline (30日, one
extension of 30日), the result letter (PDF, IPAmj明朝), the register entry, and coded refusals that
change nothing and are logged. Both engines."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from jukinet.disclosure import service as S
from jukinet.errors import JukinetError
from jukinet.security.model import Refused
from jukinet.security.oplog import verify_all
from jukinet.store.tables_disclosure import SUSPENSION_REQUESTS, SUSPENSION_STEPS, form_register
from jukinet.store.tables_security import OPLOG

from .conftest import KATSURAGI, KATSURAGI_NAME, OP, SEARCHER
from .test_disclosure import intake, log_actions


def text_of(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def disclosed(w, no="S-0001", register="juki"):
    """A matched request whose disclosure form was handed over (開示を受けた)."""
    intake(w, no, register=register)
    w.svc.disclosure_form(register, no, OP, "T0001")
    return no


def counts(w, register="juki"):
    st = SUSPENSION_REQUESTS[register]
    log = OPLOG[register][0]
    with w.registers.engine(register).connect() as conn:
        return (conn.execute(select(func.count()).select_from(st)).scalar(),
                conn.execute(select(func.count()).select_from(log)).scalar())


def test_o4_suspension_from_intake_to_result_letter_with_fees_and_deadline(world):
    no = disclosed(world)
    sid = world.svc.open_suspension("juki", no, "stop_provision", "unlawful_provision",
                                    "目的外の機関に提供されたと思われる", OP, "T0001", copy_sheets=3, copy_size="A3")
    [s] = world.svc.suspensions("juki", OP, "T0001")
    assert s.suspension_id == sid and s.status == "received" and s.fee_yen == 30 and s.copy_sheets == 3
    assert s.due_date == S.today_jst() + timedelta(days=30) and not s.extended

    receipt = world.svc.suspension_receipt("juki", sid, OP, "T0001")
    text = text_of(receipt.pdf)
    assert "利用停止請求受付票" in text and KATSURAGI_NAME in text and sid in text
    assert "無料" in text and "3枚（A3）× 10円 = 30円" in text and "お支払いいただく額" in text
    assert receipt.serial.startswith("U") and receipt.serial in text

    with pytest.raises(JukinetError) as e:           # no decision before the investigation
        world.svc.decide_suspension("juki", sid, "suspend", "violation_found", OP, "T0001")
    assert e.value.code == "STEP_NOT_ALLOWED"
    world.svc.step_suspension("juki", sid, "investigating", OP, "T0001", assignee="DISC-2")
    due = world.svc.extend_suspension("juki", sid, "inquiry", OP, "T0001")
    assert due == S.today_jst() + timedelta(days=60)
    with pytest.raises(JukinetError) as e:
        world.svc.extend_suspension("juki", sid, "inquiry", OP, "T0001")
    assert e.value.code == "EXTENSION_ALREADY_MADE"
    with pytest.raises(JukinetError) as e:
        world.svc.suspension_letter("juki", sid, OP, "T0001")
    assert e.value.code == "SUSPENSION_NOT_DECIDED"
    world.svc.decide_suspension("juki", sid, "suspend", "violation_found", OP, "T0001")
    letter = world.svc.suspension_letter("juki", sid, OP, "T0001")
    text = text_of(letter.pdf)
    assert "利用停止決定通知書" in text and "利用停止をする" in text and "提供の停止" in text and KATSURAGI_NAME in text
    assert letter.serial.startswith("S") and "審査請求" in text
    world.svc.step_suspension("juki", sid, "closed", OP, "T0001")

    [s] = world.svc.suspensions("juki", OP, "T0001")
    assert (s.status, s.decision, s.decided_by, s.assignee, s.extended, s.extension_reason) == \
        ("closed", "suspend", "DISC-1", "DISC-2", 1, "inquiry")
    steps = [(x.from_status, x.to_status) for x in world.svc.suspension_steps("juki", sid)]
    assert steps == [(None, "received"), ("received", "investigating"), ("investigating", "investigating"),
                     ("investigating", "decided"), ("decided", "closed")]
    acts = log_actions(world, "juki")
    for a in ("suspension_open", "suspension_receipt", "suspension_step", "suspension_extend", "suspension_decide",
              "suspension_letter"):
        assert (a, "granted") in acts
    with world.registers.admin_tx(write=False) as conn:
        types = [r.form_type for r in conn.execute(select(form_register).order_by(form_register.c.form_id))]
    assert types == ["disclosure", "suspension_receipt", "suspension_result"]
    engines = {r: world.registers.engine(r) for r in ("juki", "fuhyo", "admin")}
    assert all(rep.ok or all(p.code.endswith("MISSING") for p in rep.problems)
               for rep in verify_all(world.svc.oplog, engines))


def test_o4_no_copies_is_free_and_refusal_letter(world):
    no = disclosed(world, "S-0002", register="fuhyo")
    sid = world.svc.open_suspension("fuhyo", no, "stop_use", "outside_purpose", "目的外に利用されている", OP, "T0001")
    [s] = world.svc.suspensions("fuhyo", OP, "T0001")
    assert s.fee_yen == 0 and s.copy_sheets == 0 and s.copy_size is None
    text = text_of(world.svc.suspension_receipt("fuhyo", sid, OP, "T0001").pdf)
    assert "写しの交付の求めなし" in text and "0円" in text
    world.svc.step_suspension("fuhyo", sid, "investigating", OP, "T0001")
    with pytest.raises(JukinetError) as e:
        world.svc.decide_suspension("fuhyo", sid, "not_suspend", "violation_found", OP, "T0001")
    assert e.value.code == "DECISION_REASON_MISMATCH"
    world.svc.decide_suspension("fuhyo", sid, "not_suspend", "no_violation", OP, "T0001")
    text = text_of(world.svc.suspension_letter("fuhyo", sid, OP, "T0001").pdf)
    assert "利用停止をしない旨の決定通知書" in text and "法令に違反する取扱いは認められない" in text


@pytest.mark.parametrize("kw, code", [
    (dict(kind="stop_everything"), "SUSPENSION_KIND_UNKNOWN"),
    (dict(grounds="dislike"), "SUSPENSION_GROUNDS_UNKNOWN"),
    (dict(kind="stop_provision", grounds="outside_purpose"), "SUSPENSION_GROUNDS_MISMATCH"),
    (dict(copy_sheets="-1"), "COPY_SHEETS_RANGE"),
    (dict(copy_sheets="abc"), "COPY_SHEETS_RANGE"),
    (dict(copy_sheets=2, copy_size="A2"), "COPY_SIZE_OVER_A3"),
    (dict(statement="   "), "FIELD_REQUIRED"),
    (dict(statement="目的外\x00利用"), "TEXT_NOT_ENCODABLE"),
    (dict(statement="目的外\ud800利用"), "TEXT_NOT_ENCODABLE"),
    (dict(request_no="NOPE-1"), "REQUEST_NOT_FOUND"),
])
def test_o4_bad_input_is_refused_with_a_code_nothing_changed_and_logged(world, kw, code):
    no = disclosed(world, "S-0003")
    args = dict(request_no=no, kind="stop_use", grounds="outside_purpose", statement="目的外利用",
                copy_sheets=0, copy_size=None)
    args.update(kw)
    before, _ = counts(world)
    with pytest.raises(JukinetError) as e:
        world.svc.open_suspension("juki", args["request_no"], args["kind"], args["grounds"], args["statement"], OP,
                                  "T0001", copy_sheets=args["copy_sheets"], copy_size=args["copy_size"])
    assert e.value.code == code and e.value.message      # Japanese message
    assert counts(world)[0] == before == 0
    log = OPLOG["juki"][0]
    with world.registers.engine("juki").connect() as conn:
        last = conn.execute(select(log).order_by(log.c.seq.desc()).limit(1)).one()
    assert last.action == "suspension_open" and last.outcome != "granted" and code in (last.detail or "")
    assert KATSURAGI not in (last.detail or "")


def test_o4_disclosure_comes_first_and_within_90_days(world):
    intake(world, "S-0004")                      # matched, but no disclosure form handed over
    with pytest.raises(JukinetError) as e:
        world.svc.open_suspension("juki", "S-0004", "erase", "unlawful_acquisition", "不正取得", OP, "T0001")
    assert e.value.code == "DISCLOSURE_NOT_EXECUTED"
    world.svc.disclosure_form("juki", "S-0004", OP, "T0001")
    with pytest.raises(JukinetError) as e:
        world.svc.open_suspension("juki", "S-0004", "erase", "unlawful_acquisition", "不正取得", OP, "T0001",
                                  today=S.today_jst() + timedelta(days=91))
    assert e.value.code == "SUSPENSION_PERIOD_EXPIRED"
    assert world.svc.open_suspension("juki", "S-0004", "erase", "unlawful_acquisition", "不正取得", OP, "T0001",
                                     today=S.today_jst() + timedelta(days=90))


def test_o4_extension_only_before_the_deadline_and_overdue_is_visible(world):
    no = disclosed(world, "S-0005")
    sid = world.svc.open_suspension("juki", no, "stop_use", "outside_purpose", "目的外利用", OP, "T0001")
    with pytest.raises(JukinetError) as e:
        world.svc.extend_suspension("juki", sid, "volume", OP, "T0001", today=S.today_jst() + timedelta(days=31))
    assert e.value.code == "EXTENSION_TOO_LATE"
    with pytest.raises(JukinetError) as e:
        world.svc.extend_suspension("juki", sid, "because", OP, "T0001")
    assert e.value.code == "EXTENSION_REASON_UNKNOWN"
    st = SUSPENSION_REQUESTS["juki"]
    with world.registers.engine("juki").begin() as conn:    # 31 days later: past the deadline
        conn.execute(update(st).values(due_date=S.today_jst() - timedelta(days=1)))
    [s] = world.svc.suspensions("juki", OP, "T0001")
    assert s.status == "received" and s.due_date < S.today_jst()


def test_o4_only_the_disclosure_duty_may_handle_requests(world):
    no = disclosed(world, "S-0006")
    with pytest.raises(Refused):
        world.svc.open_suspension("juki", no, "stop_use", "outside_purpose", "x", SEARCHER, "T0001")
    assert counts(world)[0] == 0
    assert ("suspension_open", "denied") in log_actions(world, "juki") or any(
        a == "suspension_open" and o != "granted" for a, o in log_actions(world, "juki"))
    with world.registers.engine("juki").connect() as conn:
        assert conn.execute(select(func.count()).select_from(SUSPENSION_STEPS["juki"])).scalar() == 0
