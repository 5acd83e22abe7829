"""訂正等の申出 (O2): a request to correct, add or delete an item, through investigation to
訂正不要 or a 通報 to the municipality (recorded with the step, O5), and the 調査結果通知書."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Optional

from sqlalchemy import insert, select, update

from jukinet import geo
from jukinet.disclosure import forms, reports
from jukinet.disclosure.base import CORRECTION_KINDS, JST, Issued, _municipality, now_utc, today_jst
from jukinet.disclosure.disclosures import Disclosures
from jukinet.disclosure.reporting import Reporting
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS
from jukinet.store.tables_disclosure import CORRECTION_REQUESTS, CORRECTION_STEPS

CSTATUS = {"received": "申出", "investigating": "調査中", "no_correction": "訂正不要", "reported": "市町村へ通報",
           "closed": "完了"}
TRANSITIONS = {"received": {"investigating"}, "investigating": {"no_correction", "reported"},
               "no_correction": {"closed"}, "reported": {"closed"}, "closed": set()}
DUE_DAYS = 30   # 住基法・条例の回答期限の目安 (30日以内)


class Corrections(Disclosures, Reporting):
    def open_correction(self, register: str, request_no: str, kind: str, items: list[str], statement: str,
                        op, terminal_id, *, due_days: int = DUE_DAYS) -> str:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_open")

        def work():
            if kind not in CORRECTION_KINDS:
                raise JukinetError("KIND_UNKNOWN", "申出の種類を選択してください。", field="kind")
            its = [i for i in items if i in ITEMS[register]]
            if not its or len(its) != len(items):
                raise JukinetError("ITEMS_REQUIRED", "申出の項目を選択してください。", field="items")
            at = now_utc()
            cr, st = CORRECTION_REQUESTS[register], CORRECTION_STEPS[register]
            with self.registers.uow(register) as uow:
                r = self._request(uow.conn, register, request_no)
                cid = f"{register[0].upper()}C{at.astimezone(JST):%Y%m%d%H%M%S}{int(at.microsecond / 1000):03d}"
                seq = self.oplog.append(uow.conn, register, actor=actor, action="correction_open",
                                        purpose_code="correction", case_ref=request_no,
                                        detail={"correction_id": cid, "kind": kind, "items": its})
                uow.conn.execute(insert(cr).values(
                    correction_id=cid, request_no=request_no, juminhyo_code=r.juminhyo_code, kind=kind,
                    items=",".join(its), statement=(statement or "")[:2000], status="received", received_at=at,
                    due_date=today_jst() + timedelta(days=due_days), assignee=actor.operator_id, updated_at=at))
                uow.conn.execute(insert(st).values(correction_id=cid, at=at, operator_id=actor.operator_id,
                                                   terminal_id=actor.terminal_id, from_status=None,
                                                   to_status="received", oplog_seq=seq))
            return cid

        return self._guard(actor, "correction_open", register, work)

    def step(self, register: str, correction_id: str, to_status: str, op, terminal_id, *,
             assignee: Optional[str] = None, municipality_code: Optional[str] = None,
             note_code: Optional[str] = None) -> Optional[str]:
        """One transition; to ``reported`` it also records the 通報 to the municipality (O5) in the same
        transaction and prints the 通報書; returns the 通報 id then."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_step")

        made: list[str] = []

        def work():
            cr, st = CORRECTION_REQUESTS[register], CORRECTION_STEPS[register]
            with self.registers.uow(register) as uow:
                c = uow.conn.execute(select(cr).where(cr.c.correction_id == correction_id)).first()
                if c is None:
                    raise JukinetError("CORRECTION_NOT_FOUND", "この申出はありません。", field="correction_id")
                if to_status not in TRANSITIONS.get(c.status, set()):
                    raise JukinetError("STEP_NOT_ALLOWED", "この状態からは進められません。", field="to_status")
                values = {"status": to_status, "updated_at": now_utc()}
                if assignee:
                    values["assignee"] = assignee[:32]
                if to_status == "reported":
                    if not re.fullmatch(r"\d{6}", municipality_code or "") or geo.find(municipality_code) is None:
                        raise JukinetError("MUNICIPALITY_REQUIRED", "通報先の市町村コード (6桁) を入力してください。",
                                           field="municipality_code")
                    values["municipality_code"] = municipality_code
                    rid = reports.create(uow.conn, register, source="correction", case_id=correction_id,
                                         request_no=c.request_no, juminhyo_code=c.juminhyo_code,
                                         municipality_code=municipality_code, kind=c.kind,
                                         items=c._mapping["items"].split(","), created_by=actor.operator_id)
                    made.append(rid)
                if to_status == "no_correction":
                    values["result"] = "no_correction"
                if to_status == "closed" and c.status == "reported":
                    values["result"] = "corrected"
                seq = self.oplog.append(uow.conn, register, actor=actor, action="correction_step",
                                        purpose_code="correction", case_ref=c.request_no,
                                        detail={"correction_id": correction_id, "from": c.status, "to": to_status})
                uow.conn.execute(update(cr).where(cr.c.correction_id == correction_id).values(**values))
                uow.conn.execute(insert(st).values(correction_id=correction_id, at=now_utc(),
                                                   operator_id=actor.operator_id, terminal_id=actor.terminal_id,
                                                   from_status=c.status, to_status=to_status,
                                                   note_code=(note_code or None) and note_code[:20], oplog_seq=seq))

        self._guard(actor, "correction_step", register, work)
        for rid in made:     # O5: the 通報書 (the 通報 itself is committed with the step)
            self._report_document_quietly(register, rid, actor)
        return made[0] if made else None

    def corrections(self, register: str, op, terminal_id) -> list:
        register = self._register(register)
        self._require(op, terminal_id, "handle", register, "corrections")
        cr = CORRECTION_REQUESTS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(cr.c.correction_id, cr.c.request_no, cr.c.kind, cr.c["items"], cr.c.status,
                                           cr.c.received_at, cr.c.due_date, cr.c.assignee, cr.c.municipality_code,
                                           cr.c.result).order_by(cr.c.received_at.desc()).limit(200)).all()

    def steps(self, register: str, correction_id: str) -> list:
        st = CORRECTION_STEPS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(st).where(st.c.correction_id == correction_id).order_by(st.c.step_id)).all()

    def correction_letter(self, register: str, correction_id: str, op, terminal_id, *, copies: int = 1) -> Issued:
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "correction_letter")
        cr = CORRECTION_REQUESTS[register]

        def work():
            with self.registers.uow(register, write=False) as uow:
                c = uow.conn.execute(select(cr).where(cr.c.correction_id == correction_id)).first()
                if c is None or c.status != "closed":
                    raise JukinetError("CORRECTION_NOT_CLOSED", "完了した申出にのみ結果通知書を作成できます。",
                                       field="correction_id")

            def render(serial):
                person = self._person_for_form(register, c.juminhyo_code, actor, "correction_letter",
                                               purpose_code="correction", case_ref=c.request_no,
                                               detail={"correction_id": correction_id, "serial": serial})
                labels = ITEMS[register]
                return forms.correction_letter(
                    person.name, kind=CORRECTION_KINDS[c.kind], items="、".join(labels[i] for i in c._mapping["items"].split(",")),
                    result=c.result, municipality=_municipality(c.municipality_code),
                    received=c.received_at.astimezone(JST).date() if c.received_at.tzinfo else c.received_at.date(),
                    serial=serial, prefecture=self.config.prefecture_name, request_no=c.request_no,
                    issued=today_jst(), font=self.font)

            return self._issue("correction_result", register, c.request_no, "correction", copies, actor, render)

        return self._guard(actor, "correction_letter", register, work)
