"""The yearly self-inspection and internal audit (自己点検・内部監査, PIA IV.1), the contractor's worker
roster and monthly security report (作業従事者名簿・セキュリティ確認結果報告, PIA III.4), and the
管理責任者's review of each (G5; ADR 0041).

* **Self-inspection** (自己点検): once a 年度, every unit (所属) that uses 住基ネット answers the
  checklist :data:`CHECKLIST` (適・否・該当なし) through its セキュリティ責任者; an answer 否 needs
  findings. The **internal audit** (内部監査) is recorded the same way, once a 年度 per unit audited.
  The units expected are the departments of the roster's staff operators; the annual inventory
  shows which have not inspected this 年度.
* **Contractor's worker roster** (作業従事者名簿): the people of the maintenance contractor, their
  duty, from/to dates and the 保守作業者 account each uses — a 保守作業者 not on the current
  roster cannot open a witnessed maintenance session (:meth:`Security.maintenance_login`).
* **Monthly security report** (セキュリティ確認結果報告): received each month from the contractor
  (the checks made, how many not satisfied, a summary); the monthly report shows the month's
  report and its review, or that it is missing.
* **Review** (確認): a 管理責任者 reviews an inspection, a monthly report or the roster as it stands
  (``accepted`` / ``follow_up``), recorded with the date and the note.

Refusals, coded and logged, nothing changed: dates in the future (``*_DATE_FUTURE``), a month not
yet ended or begun (``CONTRACTOR_MONTH_FUTURE``), review by someone who is not a 管理責任者
(``APPROVAL_NOT_MANAGER``), unknown ids (``INSPECTION_NOT_FOUND``, ``CONTRACTOR_REPORT_NOT_FOUND``,
``CONTRACTOR_WORKER_NOT_FOUND``, ``OPERATOR_NOT_FOUND``), an incomplete checklist, a duplicate.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from typing import Optional

from sqlalchemy import func, insert, select, update

from jukinet.audit import records as RC
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security import roles as R
from jukinet.security import training as TR
from jukinet.security.model import Operator, utc
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.tables_governance import (contractor_reports, contractor_workers, governance_reviews,
                                             self_inspections)
from jukinet.store.tables_security import operators, sessions

#: 自己点検チェックリスト — the items of the セキュリティ対策規程 each unit answers once a 年度
CHECKLIST = {
    "c01": "操作者名簿が最新であり、異動・退職者の利用権限が削除されている",
    "c02": "操作者全員が今年度のセキュリティ研修を受講している",
    "c03": "生体認証・パスワードを他人と共用せず、他人に知らせていない",
    "c04": "離席時の画面ロック・ログアウトが徹底されている",
    "c05": "本人確認情報の検索・提供は業務上必要な範囲に限り、目的を記録している",
    "c06": "帳票・電子記録媒体を施錠保管し、持出し・廃棄は承認を得て記録している",
    "c07": "バックアップ媒体の管理簿と保管庫の照合を週次で行っている",
    "c08": "操作ログの月次分析を管理責任者が確認し、フラグへの対応を記録している",
    "c09": "事故発生時の手順を職員に周知し、事故を事故記録簿に記録している",
    "c10": "委託先の作業は職員が立ち会い、作業従事者名簿・月次報告を確認している",
}
ANSWERS = {"ok": "適", "ng": "否", "na": "該当なし"}
KINDS = {"self": "自己点検", "internal_audit": "内部監査"}
TARGETS = {"inspection": "自己点検・内部監査", "contractor_report": "委託先の月次セキュリティ報告",
           "worker_roster": "委託先の作業従事者名簿"}
DECISIONS = {"accepted": "確認済 (問題なし)", "follow_up": "要対応"}
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class GovernanceService:
    def __init__(self, config: Config, registers):
        self.config = config
        self.registers = registers
        self.oplog = OperationLog(KeyRing(config.data_dir), config.data_dir)

    def _run(self, actor: Actor, action: str, by: Optional[Operator], permission: str, work, detail=None):
        try:
            RC.require_permission(by, permission)
            return work()
        except JukinetError as e:
            RC.log_refusal(self.registers, self.oplog, actor, action, e, detail)
            raise

    # ---- self-inspection and internal audit (IV.1) -------------------------------------------------

    def record_inspection(self, actor: Actor, *, kind: str, unit: str, conducted_on, inspector: str,
                          answers: dict, findings: str = "", by: Optional[Operator] = None,
                          now: datetime | None = None) -> int:
        now = now or datetime.now(timezone.utc)

        def work():
            k = RC.check_choice(kind, KINDS, code="INSPECTION_KIND", label="点検の区分", field="kind")
            u = RC.check_text(unit, code="INSPECTION_UNIT", label="所属", field="unit", max_len=60)
            day = RC.parse_day(conducted_on, code="INSPECTION", label="実施日", today=RC.today_jst(now),
                               field="conducted_on")
            who = RC.check_text(inspector, code="INSPECTION_INSPECTOR", label="点検者", field="inspector", max_len=60)
            got = {c: (answers or {}).get(c) for c in CHECKLIST}
            missing = [c for c, v in got.items() if v not in ANSWERS]
            if missing:
                raise JukinetError("INSPECTION_ANSWERS_INCOMPLETE",
                                   f"チェックリストの全項目に回答してください (未回答: {', '.join(missing)})。",
                                   field="answers")
            ng = sum(1 for v in got.values() if v == "ng")
            f = RC.check_text(findings, code="INSPECTION_FINDINGS", label="所見", field="findings", required=ng > 0)
            fy = TR.fiscal_year(day)
            with self.registers.admin_tx() as conn:
                t = self_inspections
                if conn.execute(select(t.c.inspection_id).where(t.c.kind == k, t.c.fiscal_year == fy,
                                                                t.c.unit == u)).first() is not None:
                    raise JukinetError("INSPECTION_DUPLICATE",
                                       f"{u} の{TR.fiscal_year_label(fy)}の{KINDS[k]}は既に記録されています。", field="unit")
                iid = conn.execute(insert(t).values(
                    kind=k, fiscal_year=fy, unit=u, conducted_on=day, inspector=who,
                    answers=json.dumps(got, sort_keys=True), items_ng=ng, findings=f, recorded_at=now,
                    recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="inspection_record", now=now,
                                  detail={"inspection_id": iid, "kind": k, "fiscal_year": fy, "items_ng": ng})
                return iid
        return self._run(actor, "inspection_record", by, "governance", work)

    def inspections(self, *, fiscal_year: int | None = None) -> list:
        t = self_inspections
        q = select(t).order_by(t.c.fiscal_year.desc(), t.c.kind, t.c.unit)
        if fiscal_year is not None:
            q = q.where(t.c.fiscal_year == fiscal_year)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def units(self) -> list[str]:
        """The units (所属) expected to inspect: departments of the staff operators in service."""
        with self.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(operators.c.department, operators.c.roles)
                                .where(operators.c.status.in_(["active", "pending", "suspended"]))).all()
        return sorted({r.department for r in rows
                       if r.department and not set(R.split(r.roles)) & R.CONTRACTOR_ROLES})

    # ---- the contractor's worker roster and monthly report (III.4) ---------------------------------

    def add_worker(self, actor: Actor, *, company: str, name: str, duty: str, from_date, operator_id: str = "",
                   by: Optional[Operator] = None, now: datetime | None = None) -> int:
        now = now or datetime.now(timezone.utc)

        def work():
            c = RC.check_text(company, code="CONTRACTOR_COMPANY", label="委託先", field="company", max_len=100)
            n = RC.check_text(name, code="CONTRACTOR_NAME", label="作業従事者の氏名", field="name", max_len=60)
            d = RC.check_text(duty, code="CONTRACTOR_DUTY", label="担当業務", field="duty", max_len=100)
            day = RC.parse_day(from_date, code="CONTRACTOR", label="従事開始日", today=RC.today_jst(now),
                               field="from_date")
            oid = (operator_id or "").strip() or None
            with self.registers.admin_tx() as conn:
                if oid is not None:
                    row = conn.execute(select(operators.c.roles, operators.c.status)
                                       .where(operators.c.operator_id == oid)).first()
                    if row is None or row.status == "removed":
                        raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。", field="operator_id")
                    if "maintenance" not in R.split(row.roles):
                        raise JukinetError("CONTRACTOR_OPERATOR_NOT_MAINTENANCE",
                                           "作業従事者に結び付ける操作者は保守作業者の役割でなければなりません。",
                                           field="operator_id")
                wid = conn.execute(insert(contractor_workers).values(
                    company=c, name=n, duty=d, operator_id=oid, from_date=day, recorded_at=now,
                    recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="contractor_worker_add", now=now,
                                  detail={"worker_id": wid, "target": oid})
                return wid
        return self._run(actor, "contractor_worker_add", by, "governance", work)

    def end_worker(self, actor: Actor, worker_id, *, to_date, by: Optional[Operator] = None,
                   now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)

        def work():
            day = RC.parse_day(to_date, code="CONTRACTOR", label="従事終了日", today=RC.today_jst(now), field="to_date")
            with self.registers.admin_tx() as conn:
                row = self._worker(conn, worker_id)
                if row.to_date is not None:
                    raise JukinetError("CONTRACTOR_WORKER_ENDED", "この作業従事者は既に従事を終了しています。")
                if day < row.from_date:
                    raise JukinetError("CONTRACTOR_DATE_ORDER", "従事終了日は従事開始日以後にしてください。", field="to_date")
                conn.execute(update(contractor_workers).where(contractor_workers.c.worker_id == row.worker_id)
                             .values(to_date=day))
                self.oplog.append(conn, "admin", actor=actor, action="contractor_worker_end", now=now,
                                  detail={"worker_id": row.worker_id, "target": row.operator_id})
        return self._run(actor, "contractor_worker_end", by, "governance", work, {"worker_id": str(worker_id)[:20]})

    @staticmethod
    def _worker(conn, worker_id):
        try:
            wid = int(str(worker_id).strip())
        except ValueError:
            wid = -1
        row = conn.execute(select(contractor_workers).where(contractor_workers.c.worker_id == wid)).first()
        if row is None:
            raise JukinetError("CONTRACTOR_WORKER_NOT_FOUND", "その作業従事者は名簿にありません。", field="worker_id")
        return row

    def workers(self, *, current_only: bool = False, today: date | None = None) -> list:
        w = contractor_workers
        q = select(w).order_by(w.c.company, w.c.worker_id)
        if current_only:
            d = today or RC.today_jst()
            q = q.where(w.c.from_date <= d, (w.c.to_date.is_(None)) | (w.c.to_date >= d))
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def record_report(self, actor: Actor, *, month: str, company: str, received_on, checks_total, checks_ng,
                      summary: str = "", by: Optional[Operator] = None, now: datetime | None = None) -> int:
        """The contractor's monthly security report (セキュリティ確認結果報告) as received."""
        now = now or datetime.now(timezone.utc)

        def work():
            m = _MONTH.match(str(month or "").strip())
            if not m:
                raise JukinetError("CONTRACTOR_MONTH_INVALID", "対象月は YYYY-MM の形式で入力してください。", field="month")
            today = RC.today_jst(now)
            if (int(m.group(1)), int(m.group(2))) > (today.year, today.month):
                raise JukinetError("CONTRACTOR_MONTH_FUTURE", "対象月に未来の月は指定できません。", field="month")
            c = RC.check_text(company, code="CONTRACTOR_COMPANY", label="委託先", field="company", max_len=100)
            day = RC.parse_day(received_on, code="CONTRACTOR", label="受領日", today=today, field="received_on")
            try:
                total, ng = int(str(checks_total).strip()), int(str(checks_ng).strip())
            except ValueError:
                raise JukinetError("CONTRACTOR_CHECKS_INVALID", "確認項目数・不適合数は数字で入力してください。",
                                   field="checks_total") from None
            if total < 1 or ng < 0 or ng > total:
                raise JukinetError("CONTRACTOR_CHECKS_INVALID", "不適合数は0以上、確認項目数以下にしてください。",
                                   field="checks_ng")
            s = RC.check_text(summary, code="CONTRACTOR_SUMMARY", label="報告の概要", field="summary", required=ng > 0)
            key = f"{m.group(1)}-{m.group(2)}"
            with self.registers.admin_tx() as conn:
                t = contractor_reports
                if conn.execute(select(t.c.report_id).where(t.c.month == key, t.c.company == c)).first():
                    raise JukinetError("CONTRACTOR_REPORT_DUPLICATE", f"{c} の {key} の報告は既に記録されています。",
                                       field="month")
                rid = conn.execute(insert(t).values(
                    month=key, company=c, received_on=day, checks_total=total, checks_ng=ng, summary=s,
                    recorded_at=now, recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="contractor_report", now=now,
                                  detail={"report_id": rid, "month": key, "checks_ng": ng})
                return rid
        return self._run(actor, "contractor_report", by, "governance", work)

    def reports(self, *, month: str | None = None) -> list:
        t = contractor_reports
        q = select(t).order_by(t.c.month.desc(), t.c.report_id.desc())
        if month:
            q = q.where(t.c.month == month)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    # ---- the manager's review ------------------------------------------------------------------------

    def review(self, actor: Actor, target: str, target_id=None, *, decision: str, note: str = "",
               by: Optional[Operator], now: datetime | None = None) -> int:
        """A 管理責任者 reviews an inspection, a monthly report, or the worker roster as it stands now."""
        now = now or datetime.now(timezone.utc)

        def work():
            RC.require_manager(by)
            tg = RC.check_choice(target, TARGETS, code="REVIEW_TARGET", label="確認の対象", field="target")
            dec = RC.check_choice(decision, DECISIONS, code="REVIEW_DECISION", label="確認の結果", field="decision")
            n = RC.check_text(note, code="REVIEW_NOTE", label="所見", field="note", max_len=500,
                              required=dec == "follow_up")
            with self.registers.admin_tx() as conn:
                if tg == "worker_roster":
                    today = RC.today_jst(now)
                    w = contractor_workers
                    tid = conn.execute(select(func.count()).select_from(w).where(
                        w.c.from_date <= today, (w.c.to_date.is_(None)) | (w.c.to_date >= today))).scalar_one()
                else:
                    try:
                        tid = int(str(target_id).strip())
                    except ValueError:
                        tid = -1
                    table, key, code, msg = ((self_inspections, self_inspections.c.inspection_id, "INSPECTION_NOT_FOUND",
                                              "その点検の記録はありません。") if tg == "inspection" else
                                             (contractor_reports, contractor_reports.c.report_id,
                                              "CONTRACTOR_REPORT_NOT_FOUND", "その月次報告の記録はありません。"))
                    if conn.execute(select(key).where(key == tid)).first() is None:
                        raise JukinetError(code, msg, field="target_id")
                rid = conn.execute(insert(governance_reviews).values(
                    target=tg, target_id=tid, decision=dec, note=n, reviewed_at=now,
                    reviewed_by=by.operator_id)).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="governance_review", now=now,
                                  detail={"review_id": rid, "target": tg, "target_id": tid, "decision": dec})
                return rid
        return self._run(actor, "governance_review", by, "governance_view", work,
                         {"target": str(target)[:20]})

    def reviews(self, target: str | None = None) -> list:
        t = governance_reviews
        q = select(t).order_by(t.c.reviewed_at.desc(), t.c.review_id.desc())
        if target:
            q = q.where(t.c.target == target)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def reviewed(self, target: str) -> dict[int, list]:
        out: dict[int, list] = {}
        for r in self.reviews(target):
            out.setdefault(int(r.target_id), []).append(r)
        return out

    # ---- where an auditor looks: the year and the month ------------------------------------------------

    def year(self, fiscal_year: int) -> dict:
        """For the annual inventory: each expected unit's self-inspection of the 年度 (or its absence),
        the internal audits, the roster and its latest review."""
        done = self.inspections(fiscal_year=fiscal_year)
        reviews = self.reviewed("inspection")
        self_by_unit = {r.unit: r for r in done if r.kind == "self"}
        units = self.units()
        roster_reviews = [r for r in self.reviews("worker_roster")
                          if TR.fiscal_year(RC.today_jst(utc(r.reviewed_at))) == fiscal_year]
        return {"fiscal_year": fiscal_year, "label": TR.fiscal_year_label(fiscal_year),
                "units": [(u, self_by_unit.get(u)) for u in units],
                "missing": [u for u in units if u not in self_by_unit],
                "records": done, "reviews": reviews,
                "internal_audits": [r for r in done if r.kind == "internal_audit"],
                "workers": self.workers(current_only=True), "roster_reviews": roster_reviews}

    def month(self, month_key: str, start_utc: datetime, end_utc: datetime) -> dict:
        """For the monthly report: the contractor's report for the month and its review, and the
        witnessed maintenance sessions of the month (who, with which witness)."""
        reports = self.reports(month=month_key)
        reviews = self.reviewed("contractor_report")
        with self.registers.admin_tx(write=False) as conn:
            maint = conn.execute(select(sessions.c.operator_id, sessions.c.witness_id, sessions.c.terminal_id,
                                        sessions.c.created_at, sessions.c.ended_at, sessions.c.end_reason)
                                 .where(sessions.c.witness_id.is_not(None), sessions.c.created_at >= start_utc,
                                        sessions.c.created_at < end_utc)
                                 .order_by(sessions.c.created_at)).all()
        return {"reports": [(r, reviews.get(int(r.report_id), [])) for r in reports], "maintenance": maint}
