"""通報 to the municipality on the operator side (O5; ADR 0039): the 通報書 printed into the form register
right after a finding is committed (or later from the screen) and the list of 通報. The 通報 itself,
its outbox and the CS channel that hands it over are :mod:`jukinet.disclosure.reports`."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from jukinet import wareki
from jukinet.disclosure import forms, reports
from jukinet.disclosure.base import CORRECTION_KINDS, Issued, _municipality, today_jst
from jukinet.disclosure.form_register import FormRegister
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS
from jukinet.security.oplog import Actor
from jukinet.store.tables_disclosure import CORRECTION_REQUESTS, MUNICIPAL_REPORTS, SUSPENSION_REQUESTS


class Reporting(FormRegister):
    def _report_document_quietly(self, register: str, rid: str, actor: Actor) -> None:
        """Print the 通報書 right after the 通報 is committed; a failure (e.g. no font) leaves the 通報
        queued for the CS and the document to be printed from the screen."""
        try:
            self._report_document(register, rid, actor, purpose="municipal_report")
        except Exception as e:  # noqa: BLE001 - the 通報 itself is committed; the code only is logged
            self._log_refusal(actor, "municipal_report_document",
                              e if isinstance(e, JukinetError) else JukinetError("FORM_FAILED", "帳票を作成できません。"),
                              register, {"report_id": rid})

    def _report_document(self, register: str, rid: str, actor: Actor, *, purpose: str) -> Issued:
        t = MUNICIPAL_REPORTS[register]
        with self.registers.uow(register, write=False) as uow:
            r = uow.conn.execute(select(t).where(t.c.report_id == (rid or ""))).first()
        if r is None:
            raise JukinetError("REPORT_NOT_FOUND", "この通報はありません。", field="report_id")
        statement = None
        if r.source == "correction":
            cr = CORRECTION_REQUESTS[register]
            q = select(cr.c.statement).where(cr.c.correction_id == r.case_id)
        else:
            sr = SUSPENSION_REQUESTS[register]
            q = select(sr.c.statement).where(sr.c.suspension_id == r.case_id)

        def render(serial):
            nonlocal statement
            with self.registers.uow(register) as uow:
                statement = uow.conn.execute(q).scalar()
                person = uow.repo.get(r.juminhyo_code)
                self.oplog.append(uow.conn, register, actor=actor, action="municipal_report_document",
                                  purpose_code=r.source, case_ref=r.request_no,
                                  detail={"report_id": rid, "serial": serial})
                uow.conn.execute(update(t).where(t.c.report_id == rid, t.c.form_serial.is_(None))
                                 .values(form_serial=serial))     # a reprint keeps the original's serial
            labels = ITEMS[register]
            its = r._mapping["items"].split(",")
            held = [(labels.get(i, i), _item_value(person, i)) for i in its]
            return forms.municipal_report(
                person.name, report_id=rid, juminhyo_code=r.juminhyo_code,
                municipality=_municipality(r.municipality_code), source=reports.SOURCES[r.source],
                case_id=r.case_id, kind=CORRECTION_KINDS.get(r.kind, r.kind), held=held, statement=statement or "",
                register_label="本人確認情報" if register == "juki" else "附票本人確認情報", serial=serial,
                prefecture=self.config.prefecture_name, request_no=r.request_no, issued=today_jst(), font=self.font)

        return self._issue("municipal_report", register, r.request_no, purpose, 1, actor, render)

    def report_document(self, register: str, rid: str, op, terminal_id) -> Issued:
        """The 通報書 (re)printed from the screen."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "municipal_report_document")
        with self.registers.uow(register, write=False) as uow:
            t = MUNICIPAL_REPORTS[register]
            serial = uow.conn.execute(select(t.c.form_serial).where(t.c.report_id == (rid or ""))).scalar()
        return self._guard(actor, "municipal_report_document", register,
                           lambda: self._report_document(register, rid, actor,
                                                         purpose="reissue" if serial else "municipal_report"))

    def municipal_reports(self, register: str, op, terminal_id, limit: int = 200) -> list:
        register = self._register(register)
        self._require(op, terminal_id, "registers", register, "municipal_reports")
        return reports.listing(self.registers, register, limit)


def _item_value(person, item: str) -> str:
    """The value the prefecture holds for one item (printed on the 通報書 only)."""
    if person is None:
        return ""
    v = getattr(person, item, None)
    if item == "kojin_bango":
        return "（記録あり）" if v else "（記録なし）"
    if isinstance(v, date):
        return wareki.to_wareki(v)
    if item == "sex":
        return {"1": "男", "2": "女"}.get(v, v or "")
    return "" if v is None else str(v)
