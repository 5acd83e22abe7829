"""The form register (帳票管理簿, A5): every form printed gets a serial before it is rendered and its
pages and SHA-256 after (void when rendering fails); the register on screen and as CSV; 廃棄 only
with the 管理責任者's prior approval (G3; ADR 0040)."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Optional

from sqlalchemy import insert, select, update

from jukinet import labels
from jukinet.disclosure.forms import Rendered
from jukinet.disclosure.base import JST, DisclosureBase, Issued, _jst, now_utc
from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor
from jukinet.store.tables_disclosure import form_register
from jukinet.store.tables_media import media_approvals

FORM_TYPES = {"disclosure": "本人確認情報開示書", "provisions": "提供状況開示書", "correction_result": "調査結果通知書",
              "suspension_receipt": "利用停止請求受付票", "suspension_result": "利用停止決定等通知書",
              "municipal_report": "通報書 (市町村長あて)"}
FORM_PREFIX = {"disclosure": "D", "provisions": "P", "correction_result": "C", "suspension_receipt": "U",
               "suspension_result": "S", "municipal_report": "T"}
FORM_PURPOSES = {"disclosure_request": "開示請求に対する交付", "reissue": "再交付 (汚損・紛失)", "correction": "訂正等の申出への回答",
                 "suspension": "利用停止請求の受付・回答", "municipal_report": "市町村長への通報"}
DISPOSAL = {"shredded": "裁断", "returned": "返却", "dissolved": "溶解処理"}


class FormRegister(DisclosureBase):
    def _open_form(self, form_type: str, register: str, request_no: Optional[str], purpose: str, copies: int,
                   actor: Actor) -> tuple[int, str]:
        if purpose not in FORM_PURPOSES:
            raise JukinetError("PURPOSE_UNKNOWN", "交付の目的を選択してください。", field="purpose")
        if not 1 <= int(copies) <= 5:
            raise JukinetError("COPIES_RANGE", "部数は1〜5部です。", field="copies")
        at = now_utc()
        with self.registers.admin_tx() as conn:
            tmp = f"tmp-{hashlib.sha256(f'{at.isoformat()}{actor.operator_id}{request_no}'.encode()).hexdigest()[:16]}"
            fid = conn.execute(insert(form_register).values(
                serial=tmp, form_type=form_type, register=register, request_no=request_no,
                operator_id=actor.operator_id, terminal_id=actor.terminal_id, printed_at=at, purpose=purpose,
                copies=int(copies), status="issuing")).inserted_primary_key[0]
            serial = f"{FORM_PREFIX[form_type]}{at.astimezone(JST).year}-{fid:07d}"
            conn.execute(update(form_register).where(form_register.c.form_id == fid).values(serial=serial))
            self.oplog.append(conn, "admin", actor=actor, action="form_issue", case_ref=request_no,
                              detail={"serial": serial, "form_type": form_type, "copies": int(copies)})
        return fid, serial

    def _close_form(self, fid: int, rendered: Optional[Rendered]) -> Optional[str]:
        with self.registers.admin_tx() as conn:
            if rendered is None:
                conn.execute(update(form_register).where(form_register.c.form_id == fid).values(status="void"))
                return None
            sha = hashlib.sha256(rendered.data).hexdigest()
            conn.execute(update(form_register).where(form_register.c.form_id == fid).values(
                status="issued", pages=rendered.pages, sha256=sha))
            return sha

    def _issue(self, form_type, register, request_no, purpose, copies, actor, render) -> Issued:
        fid, serial = self._open_form(form_type, register, request_no, purpose, copies, actor)
        rendered = None
        try:
            rendered = render(serial)
        finally:
            sha = self._close_form(fid, rendered)
        return Issued(serial, rendered.pages, rendered.data, sha)

    def _person_for_form(self, register: str, juminhyo_code: str, actor: Actor, action: str, *, purpose_code: str,
                         case_ref: str, detail: dict):
        """The person a form is about, read in one transaction on the register that logs the reading."""
        with self.registers.uow(register) as uow:
            person = uow.repo.get(juminhyo_code)
            self.oplog.append(uow.conn, register, actor=actor, action=action, purpose_code=purpose_code,
                              case_ref=case_ref, detail=detail)
        return person

    def forms(self, op, terminal_id, limit: int = 200) -> list:
        self._require(op, terminal_id, "registers", None, "form_register")
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(form_register).order_by(form_register.c.form_id.desc()).limit(limit)).all()

    def forms_csv(self, op, terminal_id) -> bytes:
        rows = self.forms(op, terminal_id, limit=100000)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["帳票番号", "種別", "ファイル", "請求番号", "操作者", "端末", "交付日時", "目的", "部数", "頁数",
                    "SHA-256", "状態", "廃棄日時", "廃棄者", "廃棄方法"])
        for r in reversed(rows):
            w.writerow([r.serial, FORM_TYPES.get(r.form_type, r.form_type), r.register, r.request_no or "",
                        r.operator_id, r.terminal_id or "", _jst(r.printed_at), FORM_PURPOSES.get(r.purpose, r.purpose),
                        r.copies, r.pages or "", r.sha256 or "", labels.status(r.status), _jst(r.disposed_at),
                        labels.actor(r.disposed_by) if r.disposed_by else "",
                        DISPOSAL.get(r.disposal_method, r.disposal_method or "")])
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def dispose(self, serial: str, method: str, op, terminal_id, approval_id: str | None = None) -> None:
        """廃棄 of an issued form — only with the 管理責任者's prior approval for that form (G3, PIA III.7 R3;
        ADR 0040): ``approval_id`` from ``media_approvals``, used once in the same transaction."""
        actor = self._require(op, terminal_id, "handle", None, "form_dispose")

        def work():
            if method not in DISPOSAL:
                raise JukinetError("DISPOSAL_UNKNOWN", "廃棄の方法を選択してください。", field="method")
            now = now_utc()
            with self.registers.admin_tx() as conn:
                r = conn.execute(select(form_register).where(form_register.c.serial == serial)).first()
                if r is None or r.status != "issued":
                    raise JukinetError("FORM_NOT_DISPOSABLE", "廃棄できる帳票ではありません。", field="serial")
                a = media_approvals
                taken = conn.execute(update(a).where(
                    a.c.approval_id == (approval_id or "").strip(), a.c.target_kind == "form", a.c.target_id == serial,
                    a.c.action == "destroy", a.c.status == "approved", a.c.approved_at <= now)
                    .values(status="used", used_at=now)).rowcount
                if taken != 1:
                    raise JukinetError("FORM_APPROVAL_REQUIRED", "帳票の廃棄には、その帳票についての管理責任者の事前承認"
                                                                 "(未使用の承認番号) が必要です。", field="approval_id")
                conn.execute(update(form_register).where(form_register.c.serial == serial).values(
                    status="disposed", disposed_at=now, disposed_by=actor.operator_id, disposal_method=method))
                self.oplog.append(conn, "admin", actor=actor, action="form_dispose",
                                  detail={"serial": serial, "method": method, "approval": approval_id})

        self._guard(actor, "form_dispose", None, work)
