"""利用停止請求 (O4; ADR 0039): 受付 with the legal deadline and the fee, 調査中, 決定 (with who and
when), the one extension, the 受付票 and the 決定通知書, and the 通報 to the municipality when the
investigation finds the record wrong (O5)."""

from __future__ import annotations

import re
from datetime import date, timedelta, timezone
from typing import Optional

from sqlalchemy import insert, select, update

from jukinet import geo
from jukinet import text as textrule
from jukinet.disclosure import forms, reports
from jukinet.disclosure.base import (CORRECTION_KINDS, JST, Issued, _jst_date, _municipality, now_utc,
                                     today_jst)
from jukinet.disclosure.disclosures import Disclosures
from jukinet.disclosure.reporting import Reporting
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS
from jukinet.store.tables_disclosure import (MUNICIPAL_REPORTS, SUSPENSION_REQUESTS, SUSPENSION_STEPS,
                                             form_register)

# ---- O4: 利用停止請求 (個人情報保護法第98条〜第103条, 番号法第30条による読替え; PIA V.1) ----
SUSPENSION_KINDS = {"stop_use": "利用の停止", "erase": "消去", "stop_provision": "提供の停止"}
SUSPENSION_GROUNDS = {
    "outside_purpose": "利用目的以外の目的での利用・保有 (第98条第1項第1号)",
    "unlawful_acquisition": "偽りその他不正の手段による取得 (第98条第1項第1号)",
    "unlawful_provision": "法令の規定に違反した提供 (第98条第1項第2号)"}
#: which grounds support which kind (第1号: 利用の停止・消去, 第2号: 提供の停止)
KIND_GROUNDS = {"stop_use": {"outside_purpose", "unlawful_acquisition"},
                "erase": {"outside_purpose", "unlawful_acquisition"}, "stop_provision": {"unlawful_provision"}}
SSTATUS = {"received": "請求受付", "investigating": "調査中", "decided": "決定済み", "closed": "完了"}
STRANSITIONS = {"received": {"investigating"}, "investigating": set(), "decided": {"closed"}, "closed": set()}
SDECISIONS = {"suspend": "利用停止をする (全部)", "partial": "利用停止をする (一部)", "not_suspend": "利用停止をしない"}
SDECISION_REASONS = {"violation_found": "法令に違反する取扱いを確認した",
                     "no_violation": "法令に違反する取扱いは認められない",
                     "affairs_hindrance": "事務の適正な遂行に著しい支障 (第100条ただし書)"}
EXTENSION_REASONS = {"volume": "請求に係る記録が大量で事務処理上困難", "inquiry": "関係機関への照会に日数を要する",
                     "other_just": "その他正当な理由"}
SUSPENSION_DUE_DAYS = 30     # 利用停止決定等の期限: 請求があった日から30日以内 (第102条第1項)
EXTENSION_DAYS = 30          # 延長は30日以内 (第102条第2項), 1回
REQUEST_WINDOW_DAYS = 90     # 開示を受けた日から90日以内 (第98条第3項)
FEE_YEN = 0                  # 手数料は無料 (PIA V.1③)
COPY_FEE_YEN = 10            # 複写費用 A3 まで1枚10円
COPY_SIZES = ("A4", "B5", "B4", "A3")    # A3 までの用紙
MAX_COPY_SHEETS = 500


class Suspensions(Disclosures, Reporting):
    def _disclosed_on(self, register: str, request_no: str) -> Optional[date]:
        """The JST day the latest disclosure form of the request was issued (開示を受けた日)."""
        with self.registers.admin_tx(write=False) as conn:
            at = conn.execute(select(form_register.c.printed_at).where(
                form_register.c.register == register, form_register.c.request_no == request_no,
                form_register.c.form_type.in_(("disclosure", "provisions")), form_register.c.status == "issued")
                .order_by(form_register.c.printed_at.desc()).limit(1)).scalar()
        if at is None:
            return None
        return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(JST).date()

    @staticmethod
    def fee(copy_sheets: int) -> int:
        """手数料 (無料) + 複写費用 (A3 まで1枚10円)."""
        return FEE_YEN + COPY_FEE_YEN * int(copy_sheets)

    def open_suspension(self, register: str, request_no: str, kind: str, grounds: str, statement: str, op,
                        terminal_id, *, copy_sheets=0, copy_size: Optional[str] = None,
                        today: Optional[date] = None) -> str:
        """利用停止請求の受付: checks, the legal deadline, the fee; returns the 請求 id."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_open")

        def work():
            if kind not in SUSPENSION_KINDS:
                raise JukinetError("SUSPENSION_KIND_UNKNOWN", "請求の種類 (利用の停止・消去・提供の停止) を選択してください。",
                                   field="kind")
            if grounds not in SUSPENSION_GROUNDS:
                raise JukinetError("SUSPENSION_GROUNDS_UNKNOWN", "請求の理由を選択してください。", field="grounds")
            if grounds not in KIND_GROUNDS[kind]:
                raise JukinetError("SUSPENSION_GROUNDS_MISMATCH",
                                   "提供の停止は違法な提供を、利用の停止・消去は目的外の利用・保有または不正な取得を理由とします。",
                                   field="grounds")
            try:
                sheets = int(str(copy_sheets).strip() or 0)
            except ValueError:
                sheets = -1
            if not 0 <= sheets <= MAX_COPY_SHEETS:
                raise JukinetError("COPY_SHEETS_RANGE", f"写しの枚数は0〜{MAX_COPY_SHEETS}枚です。", field="copy_sheets")
            size = (copy_size or "").strip().upper() or None
            if sheets and size is None:
                size = "A4"
            if size is not None and size not in COPY_SIZES:
                raise JukinetError("COPY_SIZE_OVER_A3", "写しの用紙は A3 までです (A4・B5・B4・A3)。", field="copy_size")
            if not sheets:
                size = None
            if not (statement or "").strip():
                raise JukinetError("FIELD_REQUIRED", "請求の内容を入力してください。", field="statement")
            textrule.check(statement, "請求の内容", field="statement")     # e.g. NUL, a lone surrogate (Q2)
            day = today or today_jst()
            st, sp = SUSPENSION_REQUESTS[register], SUSPENSION_STEPS[register]
            with self.registers.uow(register) as uow:
                r = self._request(uow.conn, register, request_no)
            disclosed = self._disclosed_on(register, request_no)
            if disclosed is None:
                raise JukinetError("DISCLOSURE_NOT_EXECUTED",
                                   "利用停止請求は開示を受けた保有個人情報について行います。先に開示書を交付してください。",
                                   field="request_no")
            if (day - disclosed).days > REQUEST_WINDOW_DAYS:
                raise JukinetError("SUSPENSION_PERIOD_EXPIRED",
                                   f"開示を受けた日から{REQUEST_WINDOW_DAYS}日を過ぎた利用停止請求は受け付けられません。",
                                   field="request_no")
            at = now_utc()
            sid = f"{register[0].upper()}S{at.astimezone(JST):%Y%m%d%H%M%S}{int(at.microsecond / 1000):03d}"
            fee = self.fee(sheets)
            with self.registers.uow(register) as uow:
                if uow.conn.execute(select(st.c.suspension_id).where(st.c.suspension_id == sid)).first():
                    raise JukinetError("SUSPENSION_BUSY", "同時に受け付けた請求があります。もう一度お試しください。")
                seq = self.oplog.append(uow.conn, register, actor=actor, action="suspension_open",
                                        purpose_code="suspension", case_ref=request_no,
                                        detail={"suspension_id": sid, "kind": kind, "grounds": grounds,
                                                "copy_sheets": sheets, "fee_yen": fee})
                uow.conn.execute(insert(st).values(
                    suspension_id=sid, request_no=request_no, juminhyo_code=r.juminhyo_code, kind=kind,
                    grounds=grounds, statement=statement.strip()[:2000], copy_sheets=sheets, copy_size=size,
                    fee_yen=fee, status="received", received_at=at,
                    due_date=day + timedelta(days=SUSPENSION_DUE_DAYS), extended=0, assignee=actor.operator_id,
                    updated_at=at))
                uow.conn.execute(insert(sp).values(suspension_id=sid, at=at, operator_id=actor.operator_id,
                                                   terminal_id=actor.terminal_id, from_status=None,
                                                   to_status="received", oplog_seq=seq))
            return sid

        return self._guard(actor, "suspension_open", register, work)

    def _suspension(self, conn, register: str, suspension_id: str):
        st = SUSPENSION_REQUESTS[register]
        s = conn.execute(select(st).where(st.c.suspension_id == (suspension_id or ""))).first()
        if s is None:
            raise JukinetError("SUSPENSION_NOT_FOUND", "この利用停止請求はありません。", field="suspension_id")
        return s

    def _suspension_step(self, conn, register, actor, s, to_status, values, *, note=None, detail=None,
                         action: str = "suspension_step") -> None:
        st, sp = SUSPENSION_REQUESTS[register], SUSPENSION_STEPS[register]
        seq = self.oplog.append(conn, register, actor=actor, action=action, purpose_code="suspension",
                                case_ref=s.request_no, detail={"suspension_id": s.suspension_id, "from": s.status,
                                                               "to": to_status, **(detail or {})})
        conn.execute(update(st).where(st.c.suspension_id == s.suspension_id).values(
            status=to_status, updated_at=now_utc(), **values))
        conn.execute(insert(sp).values(suspension_id=s.suspension_id, at=now_utc(), operator_id=actor.operator_id,
                                       terminal_id=actor.terminal_id, from_status=s.status, to_status=to_status,
                                       note_code=note, oplog_seq=seq))

    def step_suspension(self, register: str, suspension_id: str, to_status: str, op, terminal_id, *,
                        assignee: Optional[str] = None) -> None:
        """請求受付 → 調査中 (担当者), 決定済み → 完了."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_step")

        def work():
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if to_status not in STRANSITIONS.get(s.status, set()):
                    raise JukinetError("STEP_NOT_ALLOWED", "この状態からは進められません。", field="to_status")
                values = {"assignee": assignee[:32]} if assignee else {}
                self._suspension_step(uow.conn, register, actor, s, to_status, values)

        self._guard(actor, "suspension_step", register, work)

    def decide_suspension(self, register: str, suspension_id: str, decision: str, reason: str, op,
                          terminal_id) -> None:
        """利用停止決定等 (調査中 → 決定済み), with who and when."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_decide")

        def work():
            if decision not in SDECISIONS or reason not in SDECISION_REASONS:
                raise JukinetError("DECISION_UNKNOWN", "決定と理由を選択してください。", field="decision")
            if (decision == "not_suspend") != (reason != "violation_found"):
                raise JukinetError("DECISION_REASON_MISMATCH", "決定と理由が合っていません。", field="reason")
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status != "investigating":
                    raise JukinetError("STEP_NOT_ALLOWED", "調査中の請求についてのみ決定できます。", field="to_status")
                self._suspension_step(uow.conn, register, actor, s, "decided",
                                      {"decision": decision, "decision_reason": reason,
                                       "decided_by": actor.operator_id, "decided_at": now_utc()},
                                      note=decision, detail={"decision": decision, "reason": reason},
                                      action="suspension_decide")

        self._guard(actor, "suspension_decide", register, work)

    def extend_suspension(self, register: str, suspension_id: str, reason: str, op, terminal_id, *,
                          today: Optional[date] = None) -> date:
        """期限の延長 (第102条第2項): once, by 30 days, before the deadline has passed; the new due date."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_extend")

        def work():
            if reason not in EXTENSION_REASONS:
                raise JukinetError("EXTENSION_REASON_UNKNOWN", "延長の理由を選択してください。", field="reason")
            st = SUSPENSION_REQUESTS[register]
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status not in ("received", "investigating"):
                    raise JukinetError("EXTENSION_NOT_ALLOWED", "決定前の請求についてのみ期限を延長できます。", field="suspension_id")
                if s.extended:
                    raise JukinetError("EXTENSION_ALREADY_MADE", "期限の延長は1回 (30日以内) までです。", field="suspension_id")
                if (today or today_jst()) > s.due_date:
                    raise JukinetError("EXTENSION_TOO_LATE", "期限を過ぎてからは延長できません。", field="suspension_id")
                due = s.due_date + timedelta(days=EXTENSION_DAYS)
                self.oplog.append(uow.conn, register, actor=actor, action="suspension_extend",
                                  purpose_code="suspension", case_ref=s.request_no,
                                  detail={"suspension_id": s.suspension_id, "reason": reason, "due": due.isoformat()})
                uow.conn.execute(update(st).where(st.c.suspension_id == s.suspension_id).values(
                    due_date=due, extended=1, extension_reason=reason, updated_at=now_utc()))
                uow.conn.execute(insert(SUSPENSION_STEPS[register]).values(
                    suspension_id=s.suspension_id, at=now_utc(), operator_id=actor.operator_id,
                    terminal_id=actor.terminal_id, from_status=s.status, to_status=s.status,
                    note_code=f"extend:{reason}"[:24]))
            return due

        return self._guard(actor, "suspension_extend", register, work)

    def suspensions(self, register: str, op, terminal_id, limit: int = 200) -> list:
        register = self._register(register)
        self._require(op, terminal_id, "handle", register, "suspensions")
        st = SUSPENSION_REQUESTS[register]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(st.c.suspension_id, st.c.request_no, st.c.kind, st.c.grounds,
                                           st.c.copy_sheets, st.c.copy_size, st.c.fee_yen, st.c.status,
                                           st.c.received_at, st.c.due_date, st.c.extended, st.c.extension_reason,
                                           st.c.decision, st.c.decision_reason, st.c.decided_by, st.c.decided_at,
                                           st.c.assignee)
                                    .order_by(st.c.received_at.desc()).limit(limit)).all()

    def suspension_steps(self, register: str, suspension_id: str) -> list:
        sp = SUSPENSION_STEPS[self._register(register)]
        with self.registers.uow(register, write=False) as uow:
            return uow.conn.execute(select(sp).where(sp.c.suspension_id == suspension_id).order_by(sp.c.step_id)).all()

    def suspension_receipt(self, register: str, suspension_id: str, op, terminal_id, *, copies: int = 1) -> Issued:
        """利用停止請求受付票: the request, the deadline and the fees (手数料 無料, 複写費用)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_receipt")

        def work():
            with self.registers.uow(register, write=False) as uow:
                s = self._suspension(uow.conn, register, suspension_id)

            def render(serial):
                person = self._person_for_form(register, s.juminhyo_code, actor, "suspension_receipt", purpose_code="suspension",
                                               case_ref=s.request_no, detail={"suspension_id": suspension_id, "serial": serial})
                return forms.suspension_receipt(
                    person.name, suspension_id=suspension_id, kind=SUSPENSION_KINDS[s.kind],
                    grounds=SUSPENSION_GROUNDS[s.grounds], received=_jst_date(s.received_at), due=s.due_date,
                    copy_sheets=s.copy_sheets, copy_size=s.copy_size, unit_yen=COPY_FEE_YEN, fee_yen=s.fee_yen,
                    serial=serial, prefecture=self.config.prefecture_name, request_no=s.request_no,
                    issued=today_jst(), font=self.font,
                    register_label="本人確認情報" if register == "juki" else "附票本人確認情報")

            return self._issue("suspension_receipt", register, s.request_no, "suspension", copies, actor, render)

        return self._guard(actor, "suspension_receipt", register, work)

    def suspension_letter(self, register: str, suspension_id: str, op, terminal_id, *, copies: int = 1) -> Issued:
        """利用停止決定通知書 / 利用停止をしない旨の決定通知書 (after the decision)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "suspension_letter")

        def work():
            with self.registers.uow(register, write=False) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status not in ("decided", "closed"):
                    raise JukinetError("SUSPENSION_NOT_DECIDED", "決定した請求にのみ決定通知書を作成できます。",
                                       field="suspension_id")
                rep = uow.conn.execute(select(MUNICIPAL_REPORTS[register].c.municipality_code).where(
                    MUNICIPAL_REPORTS[register].c.source == "suspension",
                    MUNICIPAL_REPORTS[register].c.case_id == suspension_id)).scalars().all()

            def render(serial):
                person = self._person_for_form(register, s.juminhyo_code, actor, "suspension_letter", purpose_code="suspension",
                                               case_ref=s.request_no, detail={"suspension_id": suspension_id, "serial": serial})
                return forms.suspension_letter(
                    person.name, suspension_id=suspension_id, kind=SUSPENSION_KINDS[s.kind],
                    decision=s.decision, decision_label=SDECISIONS[s.decision],
                    reason=SDECISION_REASONS[s.decision_reason], received=_jst_date(s.received_at),
                    reported_to=[_municipality(c) for c in rep], serial=serial,
                    prefecture=self.config.prefecture_name, request_no=s.request_no, issued=today_jst(),
                    font=self.font)

            return self._issue("suspension_result", register, s.request_no, "suspension", copies, actor, render)

        return self._guard(actor, "suspension_letter", register, work)

    # ---- O5: 通報 to the municipality ------------------------------------------------------------

    def report_suspension_finding(self, register: str, suspension_id: str, municipality_code: str, kind: str,
                                  items: list[str], op, terminal_id) -> str:
        """The investigation of a 利用停止請求 found the record wrong: 通報 to the municipality (O5)."""
        register = self._register(register)
        actor = self._require(op, terminal_id, "handle", register, "municipal_report")

        def work():
            if not re.fullmatch(r"\d{6}", municipality_code or "") or geo.find(municipality_code) is None:
                raise JukinetError("MUNICIPALITY_REQUIRED", "通報先の市町村コード (6桁) を入力してください。",
                                   field="municipality_code")
            if kind not in CORRECTION_KINDS:
                raise JukinetError("KIND_UNKNOWN", "誤りの種類 (訂正・追加・削除) を選択してください。", field="kind")
            its = [i for i in items if i in ITEMS[register]]
            if not its or len(its) != len(items):
                raise JukinetError("ITEMS_REQUIRED", "誤りのある項目を選択してください。", field="items")
            with self.registers.uow(register) as uow:
                s = self._suspension(uow.conn, register, suspension_id)
                if s.status != "investigating":
                    raise JukinetError("STEP_NOT_ALLOWED", "調査中の請求についてのみ通報できます。", field="suspension_id")
                rid = reports.create(uow.conn, register, source="suspension", case_id=suspension_id,
                                     request_no=s.request_no, juminhyo_code=s.juminhyo_code,
                                     municipality_code=municipality_code, kind=kind, items=its,
                                     created_by=actor.operator_id)
                self.oplog.append(uow.conn, register, actor=actor, action="municipal_report",
                                  purpose_code="suspension", case_ref=s.request_no,
                                  detail={"report_id": rid, "municipality_code": municipality_code, "items": its})
            return rid

        rid = self._guard(actor, "municipal_report", register, work)
        self._report_document_quietly(register, rid, actor)
        return rid
