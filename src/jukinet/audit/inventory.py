"""The annual inventory of the roster (名簿の棚卸し, A2; ADR 0023).

The システム管理者 compares the roster with what each operator actually did in the last
``inventory_months`` months (the operation log of all three chains) and confirms the result,
finding by finding (現状維持 with a reason, 是正済, 是正予定). Confirmation is stored in the admin
database (``roster_inventories``) and the admin chain of the operation log.

Findings (:func:`findings`, pure):

==================  ===================================================================================
kind                what
==================  ===================================================================================
unused              active account with no login for ``unused_days`` days (or never)
never_enrolled      registered, but no biometric credential or password after ``unused_days`` days
leaver_credentials  suspended/removed account still holding a credential, password, open session or
                    a valid enrollment link
unused_register     a register (担当ファイル) in scope that the operator did not use in the period
unused_affair       an affair (担当事務) in scope that the operator did not use in the period
unused_role         a role whose actions the operator did not take in the period
combination         a combination of rights that should not exist (separation of duties, scopes
                    without the 業務担当者 role, 業務担当者 without any register or affair)
untrained           a pending or active operator without a security training record of the current 年度
                    (G1, PIA IV.2; the bootstrap administrator's grace included; ADR 0034)
media_custodian     a suspended/removed operator still recorded as the custodian (管理者) of media in the
                    媒体管理簿 (G2; ADR 0040): hand the media over to a current custodian
==================  ===================================================================================

>>> from datetime import datetime, timezone
>>> now = datetime(2026, 11, 26, tzinfo=timezone.utc)
>>> op = Account("OP1", "山田　花子", ("operator",), ("juki", "fuhyo"), ("search",), "active",
...              created_at=datetime(2025, 1, 1, tzinfo=timezone.utc), last_login=now, credentials=1)
>>> [(f.kind, f.subject) for f in findings([op], {"OP1": {("juki", "search"): 5}}, now=now)]
[('unused_register', 'fuhyo')]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import func, insert, select

from jukinet.config import AuditConfig
from jukinet.errors import JukinetError
from jukinet.security import roles as R
from jukinet.security.oplog import CHAINS, Actor
from jukinet.store.tables_audit import roster_inventories
from jukinet.security import training as TR
from jukinet.store.tables_media import media_items
from jukinet.store.tables_security import OPLOG, operator_trainings, operators, sessions, webauthn_credentials
import csv
import io

KINDS = {
    "unused": "長期未使用のアカウント",
    "never_enrolled": "認証手段の未登録",
    "leaver_credentials": "停止・削除者の認証手段・セッションの残存",
    "unused_register": "使われていない担当ファイル",
    "unused_affair": "使われていない担当事務",
    "unused_role": "使われていない役割",
    "combination": "あってはならない権限の組合せ",
    "untrained": "今年度のセキュリティ研修の未受講",
    "media_custodian": "離任者が管理者のままの媒体",
}
DISPOSITIONS = {"keep": "現状維持 (理由を確認)", "fixed": "是正済", "will_fix": "是正予定"}

#: actions that show an affair in use (事務 → operation-log actions)
AFFAIR_ACTIONS = {
    "search": {"search", "detail"},
    "provision": {"provision", "provision_batch", "provision_batch_check", "media_start", "media_download"},
    "disclosure": {"disclosure_intake", "disclosure_decide", "disclosure_form", "disclosure_provisions",
                   "correction_open", "correction_step", "correction_letter", "form_issue", "form_dispose",
                   "suspension_open", "suspension_step", "suspension_decide", "suspension_extend",
                   "suspension_receipt", "suspension_letter", "municipal_report", "municipal_report_document"},
    "national": {"national_query"},
    "consistency": {"reconcile", "consistency"},
}
#: actions that show a role in use
ROLE_ACTIONS = {
    "admin": {"operator_register", "operator_update", "operator_suspended", "operator_removed", "operator_active",
              "enrollment_issue", "password_grant", "terminal_register", "terminal_revoke", "terminal_activation_issue",
              "roster_export", "roster_inventory", "audit_watch_set"},
    "manager": {"oplog_view", "audit_report", "audit_signoff", "approval_approve", "stats_view", "stats_export"},
    "auditor": {"oplog_view", "audit_verify", "audit_report", "stats_view", "stats_export"},
    "operations": {"stats_view", "stats_export"},
}


@dataclass(frozen=True)
class Account:
    operator_id: str
    display_name: str
    roles: tuple
    registers: tuple
    affairs: tuple
    status: str
    created_at: Optional[datetime] = None
    last_login: Optional[datetime] = None
    credentials: int = 0
    has_password: bool = False
    open_sessions: int = 0
    enrollment_open: bool = False
    trained: Optional[bool] = None     # a training record of the current 年度 (None: not looked at)
    training_fy: str = ""              # that 年度, e.g. 令和8年度
    last_training: Optional[str] = None   # ISO date of the latest record, any year
    media_custodian: int = 0           # media (not destroyed) in the 媒体管理簿 with this operator as custodian (G2)


@dataclass(frozen=True)
class Finding:
    operator_id: str
    kind: str
    subject: str          # the register/affair/role concerned, or ""
    text: str             # Japanese, no personal data

    @property
    def key(self) -> str:
        return f"{self.operator_id}:{self.kind}:{self.subject}"

    @property
    def label(self) -> str:
        return KINDS[self.kind]


def _days(now: datetime, then: Optional[datetime]) -> Optional[int]:
    return None if then is None else (now - then).days


def findings(accounts: list[Account], usage: dict[str, dict[tuple[str, str], int]], *, now: datetime,
             unused_days: int = 90) -> list[Finding]:
    """The findings of one inventory. ``usage``: operator → {(chain, action): granted count in the period}."""
    out: list[Finding] = []
    for a in accounts:
        used = usage.get(a.operator_id, {})
        actions = {act for (_c, act) in used}
        chains = {c for (c, act) in used if act in AFFAIR_ACTIONS["search"] | AFFAIR_ACTIONS["provision"]
                  | AFFAIR_ACTIONS["disclosure"] | AFFAIR_ACTIONS["national"]}
        age = _days(now, a.created_at) or 0
        if a.status in ("suspended", "removed"):
            held = [t for t, n in (("生体認証", a.credentials), ("パスワード", int(a.has_password)),
                                   ("有効なセッション", a.open_sessions), ("登録用リンク", int(a.enrollment_open))) if n]
            if held:
                out.append(Finding(a.operator_id, "leaver_credentials", "",
                                   f"状態「{'停止' if a.status == 'suspended' else '削除'}」なのに {'・'.join(held)} が残っています。"))
            if a.media_custodian:
                out.append(Finding(a.operator_id, "media_custodian", "",
                                   f"状態「{'停止' if a.status == 'suspended' else '削除'}」なのに媒体管理簿の媒体 "
                                   f"{a.media_custodian} 件の管理者のままです。"))
            continue
        if a.credentials == 0 and not a.has_password and age >= unused_days:
            out.append(Finding(a.operator_id, "never_enrolled", "",
                               f"登録から {age} 日、生体認証・代替認証のいずれも登録されていません。"))
        elif a.status == "active":
            idle = _days(now, a.last_login)
            if idle is None and age >= unused_days:
                out.append(Finding(a.operator_id, "unused", "", "一度もログインしていません。"))
            elif idle is not None and idle >= unused_days:
                out.append(Finding(a.operator_id, "unused", "", f"最終ログインから {idle} 日経過しています。"))
        if a.trained is False:
            out.append(Finding(a.operator_id, "untrained", a.training_fy,
                               f"{a.training_fy}のセキュリティ研修の受講記録がありません"
                               f" (最終受講: {a.last_training or 'なし'})。"))
        roles = set(a.roles)
        if "admin" in roles and "operator" in roles:
            out.append(Finding(a.operator_id, "combination", "admin+operator",
                               "システム管理者と業務担当者を兼務しています (権限付与者が権限を使える)。"))
        if "operations" in roles and roles & {"operator", "manager", "auditor"}:
            out.append(Finding(a.operator_id, "combination", "operations+personal",
                               "運用担当者が個人情報を扱う役割を兼務しています。"))
        if "manager" in roles and "operator" in roles:
            out.append(Finding(a.operator_id, "combination", "manager+operator",
                               "管理責任者と業務担当者を兼務しています (自らの一括提供を承認できる)。"))
        if "operator" in roles and (not a.registers or not a.affairs):
            out.append(Finding(a.operator_id, "combination", "operator-without-scope",
                               "業務担当者ですが担当ファイルまたは担当事務がありません。"))
        if "operator" not in roles and a.affairs:
            out.append(Finding(a.operator_id, "combination", "affairs-without-operator",
                               "業務担当者でないのに担当事務が設定されています。"))
        if "operator" in roles and a.status == "active":
            for reg in a.registers:
                if reg not in chains:
                    out.append(Finding(a.operator_id, "unused_register", reg,
                                       f"担当ファイル「{R.REGISTERS.get(reg, reg)}」を期間内に使っていません。"))
            for aff in a.affairs:
                if aff in AFFAIR_ACTIONS and not actions & AFFAIR_ACTIONS[aff]:
                    out.append(Finding(a.operator_id, "unused_affair", aff,
                                       f"担当事務「{R.AFFAIRS.get(aff, aff)}」を期間内に使っていません。"))
        if a.status == "active":
            for role in a.roles:
                if role in ROLE_ACTIONS and not actions & ROLE_ACTIONS[role]:
                    out.append(Finding(a.operator_id, "unused_role", role,
                                       f"役割「{R.ROLES.get(role, role)}」の操作が期間内にありません。"))
    return out


def digest(fs: list[Finding]) -> str:
    text = json.dumps([asdict(f) for f in fs], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Inventory:
    period_from: datetime
    period_to: datetime
    accounts: list[Account]
    findings: list[Finding]
    sha256: str
    last: Optional[object] = None          # the last confirmed roster_inventories row
    overdue: bool = True
    usage: dict = field(default_factory=dict)


class InventoryService:
    def __init__(self, config, registers, oplog):
        self.config = config
        self.cfg: AuditConfig = getattr(config, "audit", None) or AuditConfig()
        self.registers = registers
        self.oplog = oplog

    @property
    def _gate(self) -> bool:
        """The training gate is on (G1): only then is the 研修 looked at (off in the test suite only)."""
        sec = getattr(self.config, "security", None)
        return bool(getattr(sec, "training_required", True))

    def _accounts(self, now: datetime) -> list[Account]:
        with self.registers.admin_tx(write=False) as conn:
            creds = dict(conn.execute(select(webauthn_credentials.c.operator_id, func.count())
                                      .group_by(webauthn_credentials.c.operator_id)).all())
            open_s = dict(conn.execute(select(sessions.c.operator_id, func.count()).where(
                sessions.c.ended_at.is_(None), sessions.c.expires_at > now).group_by(sessions.c.operator_id)).all())
            log, _ = OPLOG["admin"]
            logins = dict(conn.execute(select(log.c.operator_id, func.max(log.c.at)).where(
                log.c.action.in_(["login", "login_password"]), log.c.outcome == "granted")
                .group_by(log.c.operator_id)).all())
            rows = conn.execute(select(operators).order_by(operators.c.operator_id)).all()
            fy = TR.fiscal_year(TR.today_jst(now))
            t = operator_trainings
            current = set(conn.execute(select(t.c.operator_id).where(t.c.fiscal_year == fy)).scalars())
            last_tr = dict(conn.execute(select(t.c.operator_id, func.max(t.c.taken_on)).group_by(t.c.operator_id)).all())
            custody = dict(conn.execute(select(media_items.c.custodian, func.count()).where(
                media_items.c.status != "destroyed").group_by(media_items.c.custodian)).all())

        def utc(v):
            if v is None:
                return None
            if isinstance(v, str):
                v = datetime.fromisoformat(v)
            return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
        out = []
        for r in rows:
            exp = utc(r.enrollment_expires)
            out.append(Account(r.operator_id, r.display_name, tuple(R.split(r.roles)), tuple(R.split(r.registers)),
                               tuple(R.split(r.affairs)), r.status, utc(r.created_at), utc(logins.get(r.operator_id)),
                               creds.get(r.operator_id, 0), r.password_hash is not None, open_s.get(r.operator_id, 0),
                               bool(r.enrollment_hash and exp and exp > now),
                               (r.operator_id in current) if self._gate else None,
                               TR.fiscal_year_label(fy),
                               str(last_tr[r.operator_id])[:10] if last_tr.get(r.operator_id) else None,
                               int(custody.get(r.operator_id, 0))))
        return out

    def _usage(self, since: datetime) -> dict:
        usage: dict = {}
        for chain in CHAINS:
            log, _ = OPLOG[chain]
            with self.registers.engine(chain).connect() as conn:
                for op, act, n in conn.execute(select(log.c.operator_id, log.c.action, func.count()).where(
                        log.c.at >= since, log.c.outcome == "granted", log.c.operator_id.is_not(None))
                        .group_by(log.c.operator_id, log.c.action)):
                    usage.setdefault(op, {})[(chain, act)] = n
        return usage

    def last_confirmed(self):
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(roster_inventories).order_by(roster_inventories.c.inventory_id.desc())
                                .limit(1)).first()

    def take(self, *, now: datetime | None = None) -> Inventory:
        now = now or datetime.now(timezone.utc)
        since = now - timedelta(days=round(30.44 * self.cfg.inventory_months))
        accounts = self._accounts(now)
        usage = self._usage(since)
        fs = findings(accounts, usage, now=now, unused_days=self.cfg.unused_days)
        last = self.last_confirmed()
        overdue = True
        if last is not None:
            at = last.confirmed_at
            at = datetime.fromisoformat(at) if isinstance(at, str) else at
            at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at
            overdue = (now - at).days > self.cfg.inventory_max_age_days
        return Inventory(since, now, accounts, fs, digest(fs), last, overdue, usage)

    def confirm(self, actor: Actor, dispositions: dict[str, str], *, findings_sha256: str | None = None,
                notes: dict[str, str] | None = None, now: datetime | None = None) -> int:
        """Record the inventory: each finding with its disposition (default 是正予定 when none given)."""
        now = now or datetime.now(timezone.utc)
        inv = self.take(now=now)
        if findings_sha256 and findings_sha256 != inv.sha256:
            raise JukinetError("INVENTORY_CHANGED", "棚卸しの結果が画面を開いた後に変わりました。画面を開き直して確認してください。")
        bad = [k for k, v in dispositions.items() if v and v not in DISPOSITIONS]
        if bad:
            raise JukinetError("INVENTORY_DISPOSITION_INVALID", "対応の指定が正しくありません。", field="disposition")
        notes = notes or {}
        if any(len(v or "") > 200 for v in notes.values()):
            raise JukinetError("INVENTORY_NOTE_TOO_LONG", "備考は200文字以内で入力してください。", field="note")
        recorded = [{**asdict(f), "key": f.key, "disposition": dispositions.get(f.key) or "will_fix",
                     "note": (notes.get(f.key) or "").strip()} for f in inv.findings]
        with self.registers.admin_tx() as conn:
            iid = conn.execute(insert(roster_inventories).values(
                confirmed_at=now, confirmed_by=actor.operator_id, period_from=inv.period_from, period_to=inv.period_to,
                operator_count=len(inv.accounts), finding_count=len(inv.findings), findings_sha256=inv.sha256,
                findings=json.dumps(recorded, ensure_ascii=False, sort_keys=True))).inserted_primary_key[0]
            by_status: dict = {}
            for a in inv.accounts:
                by_status[a.status] = by_status.get(a.status, 0) + 1
            by_disp: dict = {}
            for r in recorded:
                by_disp[r["disposition"]] = by_disp.get(r["disposition"], 0) + 1
            self.oplog.append(conn, "admin", actor=actor, action="roster_inventory", now=now,
                              result_count=len(inv.accounts),
                              detail={"kind": "annual", "inventory_id": iid, "by_status": by_status,
                                      "findings": len(recorded), "dispositions": by_disp, "sha256": inv.sha256})
        return iid

    def history(self, limit: int = 10) -> list:
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(select(roster_inventories).order_by(roster_inventories.c.inventory_id.desc())
                                .limit(limit)).all()


def csv_text(inv: Inventory) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["操作者ID", "区分", "対象", "内容"])
    for f in inv.findings:
        w.writerow([f.operator_id, f.label, f.subject, f.text])
    return "\ufeff" + out.getvalue()
