"""The monthly access-log analysis as use cases (A4; ADR 0022).

* :func:`parse_month` — ``YYYY-MM`` → :class:`Month` (a JST month, as a UTC range).
* :meth:`AuditService.analyse` — read the three chains (``juki``, ``fuhyo``, ``admin``) for the
  month, compute the digests of persons related to each operator (flag d), run the pure rules.
* :meth:`AuditService.generate` — render PDF + CSV, store their SHA-256 and a summary in the admin
  database (a new ``audit_reports`` row only when the digest changed), log ``audit_report``, and
  record a MAC'd checkpoint of every chain (ADR 0031).
* :meth:`AuditService.sign_off` — the 管理責任者's sign-off of the version they saw: refused when
  the report, generated again now, no longer has that digest (``AUDIT_REPORT_CHANGED``).

The PDF and CSV depend only on the month's log, the roster names and the rules, so generating them
again gives the same bytes (the stored SHA-256 fixes the signed version).

Memory (issue 17; ADR 0046): :meth:`AuditService.render` — reading the month, the analysis, the PDF
and the CSV — runs on **one** thread of its own, whichever thread asks (a request of the manager's
screen, the scheduler, the CLI). Its transient allocations (the month's entries, the PDF) then
always reuse the same malloc arena; made on the server's worker threads, each report left its
high-water mark in the arena of the thread it landed on, and ``jukinet serve`` grew a step at each
monthly analysis until every arena had had one. Reports are made one at a time (they are monthly;
a second request waits for the first).
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import string
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Optional

from sqlalchemy import func, insert, or_, select

from jukinet.audit import analysis as an
from jukinet.audit.governance import GovernanceService
from jukinet.audit.incidents import IncidentService
from jukinet.audit import media_checks as MC
from jukinet.config import AuditConfig, Config
from jukinet import heap
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security import checkpoints
from jukinet.security.oplog import CHAINS, Actor, OperationLog
from jukinet.store.tables import fuhyo_current, juki_current
from jukinet.store.tables_audit import audit_reports, audit_signoffs, audit_watch
from jukinet.store.tables_media import media_checks, media_movements, media_scans
from jukinet.store.tables_security import OPLOG, improper_actions, operators
from jukinet.audit import report
from jukinet.audit.casework import casework
from jukinet.audit.monthlog import MonthLog

JST = an.JST
_report_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jukinet-audit-report")
_on_report_thread = threading.local()


def on_report_thread(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` run on the one report thread (directly when already on it)."""
    if getattr(_on_report_thread, "yes", False):
        return fn(*args, **kwargs)
    return _report_thread.submit(_run_marked, fn, args, kwargs).result()


def _run_marked(fn, args, kwargs):
    _on_report_thread.yes = True
    try:
        return fn(*args, **kwargs)
    finally:
        # the month's entries and the PDF are garbage now: collect the cycles the PDF's object graph leaves
        # (≈ 1.2 MiB a report that only a full collection frees) and give the pages back
        gc.collect()
        heap.trim()


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: the action taken on a flagged improper operation (G1; PIA IV.2; ADR 0034)
ACTIONS = {"guidance": "指導・再教育", "suspend": "利用停止", "remove_duty": "担当解除"}
DECISIONS = {"no_issue": "問題なし", "follow_up": "要対応 (個別に確認する)"}
FLAG_DISPOSITIONS = {"": "", "explained": "業務上の理由を確認", "instructed": "指導した", "investigate": "調査中",
                     "false_positive": "誤検知"}


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> date:
        return date(self.year + (self.month == 12), self.month % 12 + 1, 1)

    @property
    def last_day(self) -> date:
        return self.next_first_day - timedelta(days=1)

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.first_day, datetime.min.time(), JST).astimezone(timezone.utc)

    @property
    def end_utc(self) -> datetime:
        return datetime.combine(self.next_first_day, datetime.min.time(), JST).astimezone(timezone.utc)


def parse_month(text: str | None, *, today: date | None = None) -> Month:
    """``YYYY-MM`` → Month; a malformed month or one not yet begun is refused (``AUDIT_MONTH_INVALID``).

    >>> parse_month("2026-10").start_utc.isoformat()
    '2026-09-30T15:00:00+00:00'
    >>> parse_month("2026-13")
    Traceback (most recent call last):
    ...
    jukinet.errors.JukinetError: AUDIT_MONTH_INVALID: 対象月は YYYY-MM (例: 2026-10) で指定してください。
    """
    m = _MONTH.match((text or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2999:
        raise JukinetError("AUDIT_MONTH_INVALID", "対象月は YYYY-MM (例: 2026-10) で指定してください。", field="month")
    month = Month(int(m.group(1)), int(m.group(2)))
    today = today or datetime.now(JST).date()
    if month.first_day > today:
        raise JukinetError("AUDIT_MONTH_FUTURE", "まだ始まっていない月は分析できません。", field="month")
    return month


def previous_month(today: date | None = None) -> Month:
    today = today or datetime.now(JST).date()
    first = today.replace(day=1) - timedelta(days=1)
    return Month(first.year, first.month)


def surname(display_name: str) -> Optional[str]:
    """The 氏 of a roster display name: the part before the first (full- or half-width) space.

    >>> surname("山田　花子"), surname("山田 花子"), surname("admin")
    ('山田', '山田', None)
    """
    parts = re.split(r"[\s\u3000]+", (display_name or "").strip(), maxsplit=1)
    return parts[0] if len(parts) == 2 and parts[0] else None


@dataclass
class Generated:
    month: Month
    analysis: an.Analysis
    pdf: bytes
    csv: bytes
    pdf_sha256: str
    csv_sha256: str
    report_id: int
    names: dict


class AuditService:
    def __init__(self, config: Config, registers):
        self.config = config
        self.cfg: AuditConfig = getattr(config, "audit", None) or AuditConfig()
        self.registers = registers
        self.oplog = OperationLog(KeyRing(config.data_dir), config.data_dir)

    @property
    def rules(self) -> an.Rules:
        return an.Rules.from_config(self.cfg)

    # ---- reading -------------------------------------------------------------------------------

    def month_log(self, month: Month) -> MonthLog:
        return MonthLog.of({c: self.registers.engine(c) for c in CHAINS}, month.start_utc, month.end_utc)

    def entries(self, month: Month) -> list[an.Entry]:
        """Every entry of the month as an object (what the analysis read before ADR 0059; the
        reference the counted analysis is tested against)."""
        out = []
        for chain in CHAINS:
            log, _ = OPLOG[chain]
            with self.registers.engine(chain).connect() as conn:
                q = (select(log).where(log.c.at >= month.start_utc, log.c.at < month.end_utc).order_by(log.c.seq))
                for row in conn.execution_options(yield_per=5000).execute(q):
                    out.append(an.Entry.from_row(chain, row))
        return out

    def roster_names(self) -> dict[str, str]:
        with self.registers.admin_tx(write=False) as conn:
            return dict(conn.execute(select(operators.c.operator_id, operators.c.display_name)).all())

    def related(self, names: dict[str, str], operator_ids) -> dict[str, an.Related]:
        """Digests of persons related to each operator who appears in the log (flag d).

        Surname: current persons of both registers whose 氏名 begins with the operator's 氏 and a
        space. Address: persons whose 住所 begins with the prefix the administrator recorded for the
        operator (:meth:`set_watch`). Only the keyed digests leave this function.
        """
        with self.registers.admin_tx(write=False) as conn:
            watch = dict(conn.execute(select(audit_watch.c.operator_id, audit_watch.c.address_prefix)).all())
        d = self.oplog.digest
        wanted = {}                                    # op -> (surname, address prefix)
        for op in sorted(o for o in operator_ids if o):
            sn, prefix = surname(names.get(op, "")), watch.get(op)
            if sn or prefix:
                wanted[op] = (sn, prefix)
        prefixes = {"name": sorted({sn + "\u3000" for sn, _ in wanted.values() if sn}),
                    "address": sorted({p for _, p in wanted.values() if p})}
        persons = self._persons_under(prefixes)
        out = {}
        for op, (sn, prefix) in wanted.items():
            found, name_keys, addr_keys = set(), set(), set()
            if sn:
                found |= persons[("name", sn + "\u3000")]
                name_keys |= {d("name", sn), d("name", sn + "\u3000")}
            if prefix:
                found |= persons[("address", prefix)]
                addr_keys.add(d("address", prefix))
            out[op] = an.Related(frozenset(found), frozenset(name_keys), frozenset(addr_keys))
        return out

    def _persons_under(self, prefixes: dict[str, list[str]]) -> dict:
        """{(column, prefix): digests of the 住民票コード of current persons (both registers) whose
        column starts with prefix}: one scan per register and column, each code digested once."""
        out = {(column, p): set() for column, ps in prefixes.items() for p in ps}
        digests: dict = {}
        digest = self.oplog.digester("juminhyo_code")
        for column, ps in prefixes.items():
            if not ps:
                continue
            for reg, table in (("juki", juki_current), ("fuhyo", fuhyo_current)):
                q = (select(table.c.juminhyo_code, table.c[column])
                     .where(or_(*(table.c[column].startswith(p, autoescape=True) for p in ps))))
                engine = self.registers.engine(reg)
                # the rows LIKE found, told apart by prefix as LIKE compares (ASCII case ignored on SQLite)
                fold = _ascii_lower if engine.dialect.name == "sqlite" else str
                folded = [(p, fold(p)) for p in ps]
                with engine.connect() as conn:
                    for code, value in conn.execute(q):
                        value = fold(value or "")
                        for p, fp in folded:
                            if value.startswith(fp):
                                if code not in digests:
                                    digests[code] = digest(code)
                                out[(column, p)].add(digests[code])
        return out

    def analyse(self, month: Month) -> tuple[an.Analysis, dict]:
        """The month's analysis: counted by the database, only the entries a flag may list read as
        objects (:mod:`jukinet.audit.monthlog`; ADR 0059)."""
        log = self.month_log(month)
        groups = log.groups()
        names = self.roster_names()
        related = self.related(names, {g.operator_id for g in groups})
        rules = self.rules
        return an.analyse_grouped(groups, log.found(groups, rules, related), rules, related), names

    # ---- report --------------------------------------------------------------------------------

    #: the stages of :meth:`generate`, as a progress display names them (issue 19, ADR 0048)
    STAGES = ("操作ログの読み込み・分析", "事務の処理状況・媒体・体制の集計", "報告書 (PDF) の作成", "報告書 (CSV) の作成",
              "報告書の記録")

    def render(self, month: Month, now: datetime | None = None, *,
               progress: Callable[[int, int, str], None] | None = None) -> tuple[an.Analysis, dict, bytes, bytes]:
        """The month's analysis, PDF and CSV, made on the one report thread (:func:`on_report_thread`);
        ``progress(done, total, stage)`` is told each stage as it starts."""
        return on_report_thread(self._render, month, now, progress)

    def _render(self, month: Month, now: datetime | None,
                progress: Callable[[int, int, str], None] | None = None) -> tuple[an.Analysis, dict, bytes, bytes]:
        step = progress or (lambda done, total, stage: None)
        total = len(self.STAGES)
        step(0, total, self.STAGES[0])
        a, names = self.analyse(month)
        now = now or datetime.now(timezone.utc)
        step(1, total, self.STAGES[1])
        cw = casework(self.registers, month.start_utc, month.end_utc, month.last_day,
                      now=now if now < month.end_utc else None)
        meta = report.Meta(self.config.prefecture_name, month.key, month.first_day, month.last_day, self.rules,
                           partial=now < month.end_utc, casework=cw, media=self.media_section(month, now))
        gov = self.governance_month(month)
        step(2, total, self.STAGES[2])
        pdf = report.pdf(a, names, meta, self.cfg.pdf_entries_per_flag, self.cfg.pdf_flags_max, gov=gov)
        step(3, total, self.STAGES[3])
        return a, names, pdf, report.csv_bytes(a, names, meta, gov=gov)

    def governance_month(self, month: Month) -> report.GovernanceMonth:
        """G4, G5 in the monthly report (ADR 0041): the month's incidents, the contractor's security
        report and its review, the witnessed maintenance sessions."""
        inc = IncidentService(self.config, self.registers).month(month.start_utc, month.end_utc)
        gv = GovernanceService(self.config, self.registers).month(month.key, month.start_utc, month.end_utc)
        return report.GovernanceMonth(incidents=inc, contractor_reports=gv["reports"], maintenance=gv["maintenance"])

    def media_section(self, month: Month, now: datetime | None = None) -> report.MediaSection:
        """G2/G3 (ADR 0040): the month's weekly checks of the media register (a week without one is
        raised as 未実施), retirements and destructions with their approvals, the virus checks."""
        now = now or datetime.now(timezone.utc)
        weeks = MC.weeks_of_month(month.year, month.month)
        lo = datetime.combine(weeks[0].monday, datetime.min.time(), JST).astimezone(timezone.utc)
        hi = datetime.combine(weeks[-1].sunday + timedelta(days=1), datetime.min.time(), JST).astimezone(timezone.utc)

        def jst(v) -> str:
            v = v if v.tzinfo else v.replace(tzinfo=timezone.utc)
            return v.astimezone(JST).strftime("%Y-%m-%d %H:%M")

        c, mv, sc = media_checks, media_movements, media_scans
        with self.registers.admin_tx(write=False) as conn:
            checks = conn.execute(select(c).where(c.c.checked_at >= lo, c.c.checked_at < hi)
                                  .order_by(c.c.checked_at, c.c.check_id)).all()
            disposals = conn.execute(select(mv).where(mv.c.at >= month.start_utc, mv.c.at < month.end_utc,
                                                      mv.c.kind.in_(["retire", "destroy"]))
                                     .order_by(mv.c.at, mv.c.movement_id)).all()
            counts = dict(conn.execute(select(sc.c.outcome, func.count()).where(
                sc.c.at >= month.start_utc, sc.c.at < month.end_utc).group_by(sc.c.outcome)).all())
            infected = conn.execute(select(sc).where(sc.c.at >= month.start_utc, sc.c.at < month.end_utc,
                                                     sc.c.outcome == "infected").order_by(sc.c.at, sc.c.scan_id)).all()
        states = MC.week_states(weeks, [r.checked_at for r in checks], today=now.astimezone(JST).date())
        return report.MediaSection(
            weeks=tuple((st.week.key, st.week.monday, st.week.sunday, st.state, st.checks) for st in states),
            checks=tuple((jst(r.checked_at), r.checked_by, r.expected, r.found, r.discrepancy_count) for r in checks),
            disposals=tuple((jst(r.at), r.media_id, "使用停止" if r.kind == "retire" else "廃棄", r.approval_id or "",
                             r.operator_id) for r in disposals),
            scans={k: int(v) for k, v in counts.items()},
            infected=tuple((jst(r.at), "持込" if r.direction == "in" else "持出", r.purpose, r.signature or "")
                           for r in infected))

    def generate(self, actor: Actor, month: Month, *, now: datetime | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> Generated:
        """Render the month's report and fix its digest in the admin database (logged)."""
        now = now or datetime.now(timezone.utc)
        a, names, pdf, csv = self.render(month, now, progress=progress)
        if progress:
            progress(4, len(self.STAGES), self.STAGES[4])
        ps, cs = hashlib.sha256(pdf).hexdigest(), hashlib.sha256(csv).hexdigest()
        summary = {"entries": a.entries, "flags": a.flag_counts(), "operators": len(a.counts)}
        with self.registers.admin_tx() as conn:
            last = self._latest(conn, month.key)
            if last is not None and last.pdf_sha256 == ps:
                rid = last.report_id
            else:
                rid = conn.execute(insert(audit_reports).values(
                    month=month.key, pdf_sha256=ps, csv_sha256=cs, flag_count=len(a.flags), entry_count=a.entries,
                    summary=json.dumps(summary, ensure_ascii=False, sort_keys=True), generated_at=now,
                    generated_by=actor.operator_id)).inserted_primary_key[0]
            self.oplog.append(conn, "admin", actor=actor, action="audit_report", now=now, result_count=len(a.flags),
                              detail={"month": month.key, "sha256": ps, "report_id": rid})
        checkpoints.take(self.oplog.keys, self.config.data_dir, {c: self.registers.engine(c) for c in CHAINS},
                         source="report")
        if progress:
            progress(len(self.STAGES), len(self.STAGES), "完了")
        return Generated(month, a, pdf, csv, ps, cs, rid, names)

    @staticmethod
    def _latest(conn, month_key: str):
        return conn.execute(select(audit_reports).where(audit_reports.c.month == month_key)
                            .order_by(audit_reports.c.report_id.desc()).limit(1)).first()

    # ---- sign-off ------------------------------------------------------------------------------

    def sign_off(self, actor: Actor, month: Month, pdf_sha256: str, *, decision: str, comment: str = "",
                 flag_notes: dict | None = None, now: datetime | None = None) -> int:
        """Record the manager's sign-off of the version with ``pdf_sha256``; refused if it changed."""
        now = now or datetime.now(timezone.utc)
        if now < month.end_utc:
            raise JukinetError("AUDIT_MONTH_OPEN", "月が終わるまでは確認を記録できません (作成・閲覧はできます)。", field="month")
        if decision not in DECISIONS:
            raise JukinetError("AUDIT_DECISION_INVALID", "確認結果を選択してください。", field="decision")
        comment = (comment or "").strip()
        if len(comment) > 1000:
            raise JukinetError("AUDIT_COMMENT_TOO_LONG", "所見は1000文字以内で入力してください。", field="comment")
        notes = {str(k): v for k, v in (flag_notes or {}).items() if v}
        if any(v not in FLAG_DISPOSITIONS for v in notes.values()):
            raise JukinetError("AUDIT_DISPOSITION_INVALID", "フラグごとの対応の指定が正しくありません。", field="flag_notes")
        _, _, pdf, _ = self.render(month, now)
        current = hashlib.sha256(pdf).hexdigest()
        with self.registers.admin_tx() as conn:
            last = self._latest(conn, month.key)
            if last is None or last.pdf_sha256 != (pdf_sha256 or "") or current != last.pdf_sha256:
                raise JukinetError("AUDIT_REPORT_CHANGED", "報告書が作成後に変わっています。もう一度作成し、内容を確認してから確認を記録してください。")
            sid = conn.execute(insert(audit_signoffs).values(
                report_id=last.report_id, month=month.key, pdf_sha256=last.pdf_sha256, signed_at=now,
                signed_by=actor.operator_id, decision=decision, comment=comment,
                flag_notes=json.dumps(notes, ensure_ascii=False, sort_keys=True))
            ).inserted_primary_key[0]
            self.oplog.append(conn, "admin", actor=actor, action="audit_signoff", now=now,
                              detail={"month": month.key, "sha256": last.pdf_sha256, "decision": decision,
                                      "report_id": last.report_id, "signoff_id": sid})
        return sid

    # ---- listing -------------------------------------------------------------------------------

    def months(self, *, count: int = 12, today: date | None = None) -> list[dict]:
        """The last ``count`` months with their latest report and sign-off (for the screen)."""
        today = today or datetime.now(JST).date()
        keys, y, m = [], today.year, today.month
        for _ in range(count):
            keys.append(f"{y:04d}-{m:02d}")
            y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        with self.registers.admin_tx(write=False) as conn:
            reps = conn.execute(select(audit_reports).where(audit_reports.c.month.in_(keys))
                                .order_by(audit_reports.c.report_id)).all()
            sigs = conn.execute(select(audit_signoffs).where(audit_signoffs.c.month.in_(keys))
                                .order_by(audit_signoffs.c.signoff_id)).all()
        latest = {r.month: r for r in reps}
        signed = {}
        for s in sigs:
            signed[s.month] = s
        out = []
        for k in keys:
            r, s = latest.get(k), signed.get(k)
            out.append({"month": k, "report": r, "summary": json.loads(r.summary) if r else None, "signoff": s,
                        "signed_current": bool(r and s and s.report_id == r.report_id)})
        return out

    def signoffs(self, month_key: str) -> list:
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(audit_signoffs).where(audit_signoffs.c.month == month_key)
                                .order_by(audit_signoffs.c.signoff_id)).all()

    def report_row(self, month_key: str):
        with self.registers.admin_tx(write=False) as conn:
            return self._latest(conn, month_key)

    # ---- operator address prefix (flag d) ------------------------------------------------------

    def set_watch(self, actor: Actor, operator_id: str, address_prefix: str, *, now: datetime | None = None) -> None:
        """Record (or clear, with "") the address prefix of an operator's own 区域 (admin only; logged)."""
        now = now or datetime.now(timezone.utc)
        prefix = (address_prefix or "").strip()
        if len(prefix) > 120:
            raise JukinetError("AUDIT_PREFIX_TOO_LONG", "住所の区域は120文字以内で入力してください。", field="address_prefix")
        if prefix and len(prefix) < 4:
            raise JukinetError("AUDIT_PREFIX_TOO_SHORT", "住所の区域は市区町村名以下まで (4文字以上) 入力してください。",
                               field="address_prefix")
        with self.registers.admin_tx() as conn:
            if conn.execute(select(func.count()).select_from(operators)
                            .where(operators.c.operator_id == operator_id)).scalar_one() == 0:
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。")
            conn.execute(audit_watch.delete().where(audit_watch.c.operator_id == operator_id))
            if prefix:
                conn.execute(insert(audit_watch).values(operator_id=operator_id, address_prefix=prefix, set_at=now,
                                                        set_by=actor.operator_id))
            self.oplog.append(conn, "admin", actor=actor, action="audit_watch_set", now=now,
                              detail={"target": operator_id, "set": bool(prefix)})


    # ---- the action taken on a flagged improper operation (G1; ADR 0034) ------------------------

    def record_action(self, actor: Actor, month_key: str, flag_no: int, operator_id: str, kind: str, *,
                      taken_on, note: str = "", now: datetime | None = None) -> int:
        """Link flag ``flag_no`` of the month's latest report to the action taken (管理責任者; logged).

        Suspension and removal from duty themselves are roster changes of the システム管理者 (their
        own log entries); this record is the link the auditor follows from the flag to them."""
        now = now or datetime.now(timezone.utc)
        try:
            if kind not in ACTIONS:
                raise JukinetError("ACTION_KIND_INVALID", "対応の区分を選択してください。", field="kind")
            try:
                day = taken_on if isinstance(taken_on, date) else date.fromisoformat(str(taken_on or "").strip())
            except ValueError:
                raise JukinetError("ACTION_DATE_INVALID", "対応日は YYYY-MM-DD の形式で入力してください。",
                                   field="taken_on") from None
            if day > now.astimezone(JST).date():
                raise JukinetError("ACTION_DATE_FUTURE", "対応日に未来の日付は指定できません。", field="taken_on")
            note = (note or "").strip()
            if len(note) > 500:
                raise JukinetError("ACTION_NOTE_TOO_LONG", "内容は500文字以内で入力してください。", field="note")
            month = parse_month(month_key)
            with self.registers.admin_tx() as conn:
                rep = self._latest(conn, month.key)
                if rep is None:
                    raise JukinetError("AUDIT_REPORT_MISSING", "その月の分析報告書がありません。先に作成してください。",
                                       field="month")
                if not (isinstance(flag_no, int) and 1 <= flag_no <= rep.flag_count):
                    raise JukinetError("AUDIT_FLAG_UNKNOWN", "報告書にそのフラグ番号はありません。", field="flag_no")
                if conn.execute(select(func.count()).select_from(operators)
                                .where(operators.c.operator_id == operator_id)).scalar_one() == 0:
                    raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。", field="operator_id")
                aid = conn.execute(insert(improper_actions).values(
                    month=month.key, report_id=rep.report_id, flag_no=flag_no, operator_id=operator_id, kind=kind,
                    taken_on=day, note=note, recorded_at=now, recorded_by=actor.operator_id or "cli")
                ).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="improper_action", now=now,
                                  detail={"action_id": aid, "month": month.key, "report_id": rep.report_id,
                                          "flag_no": flag_no, "target": operator_id, "kind": kind})
                return aid
        except JukinetError as e:
            try:
                with self.registers.admin_tx() as conn:
                    self.oplog.append(conn, "admin", actor=actor, action="improper_action", outcome="refused",
                                      now=now, detail={"code": e.code})
            except Exception:  # noqa: BLE001 - refused anyway
                pass
            raise

    def actions(self, *, month_key: str | None = None, operator_id: str | None = None) -> list:
        t = improper_actions
        q = select(t).order_by(t.c.month.desc(), t.c.flag_no, t.c.action_id)
        if month_key:
            q = q.where(t.c.month == month_key)
        if operator_id:
            q = q.where(t.c.operator_id == operator_id)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()
