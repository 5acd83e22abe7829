"""A manager's prior approval of a large batch provision (A5; PIA III.3 R4, その他; ADR 0018).

A batch of more rows than ``provision.batch_approval_threshold`` is run only under an approval that
a 管理責任者 gave **before** the run, bound to exactly one requester, one affair (hence one register),
a maximum number of rows, a stated purpose, and an expiry (at most ``approval_max_days``). An
業務担当者 asks (:func:`request`); a manager in charge of the register approves or rejects
(:func:`decide`) — never their own request; the batch consumes it once (:func:`consume`, atomic: a
second run with the same approval is refused). Every step is in the admin operation log.

The purpose is free text meant for the manager (what the requester needs the data for); it must
not contain personal data, and the screen says so.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import insert, select, update

from jukinet import wareki
from jukinet.errors import JukinetError
from jukinet.provision import access
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.tables_provision import provision_approvals
from jukinet.provision.catalogue import read

STATUS = {"requested": "承認待ち", "approved": "承認済み", "rejected": "却下", "used": "使用済み"}


def _utc(v):
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v is not None and v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v


@dataclass(frozen=True)
class Approval:
    approval_id: str
    requester_code: str
    affair_code: str
    register: str
    max_rows: int
    purpose: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: Optional[str]
    decided_at: Optional[datetime]
    expires_at: datetime
    used_at: Optional[datetime]
    media_id: Optional[str]

    @classmethod
    def from_row(cls, r) -> "Approval":
        m = dict(r._mapping)
        for k in ("requested_at", "decided_at", "expires_at", "used_at"):
            m[k] = _utc(m[k])
        return cls(**m)

    def effective_status(self, now: datetime) -> str:
        if self.status in ("requested", "approved") and self.expires_at <= now:
            return "expired"
        return self.status

    def status_label(self, now: datetime) -> str:
        s = self.effective_status(now)
        return "期限切れ" if s == "expired" else STATUS.get(s, s)


def _get(conn, approval_id: str) -> Optional[Approval]:
    r = conn.execute(select(provision_approvals).where(provision_approvals.c.approval_id == approval_id)).first()
    return Approval.from_row(r) if r else None


def get(registers, approval_id: str) -> Optional[Approval]:
    with registers.admin_tx(write=False) as conn:
        return _get(conn, approval_id)


def listing(registers, *, limit: int = 100) -> list[Approval]:
    t = provision_approvals
    with registers.admin_tx(write=False) as conn:
        return [Approval.from_row(r) for r in conn.execute(select(t).order_by(t.c.requested_at.desc()).limit(limit))]


def request(registers, oplog: OperationLog, config, op, terminal_id: Optional[str], *, requester_code: str,
            affair_code: str, max_rows: int, purpose: str, days: Optional[int] = None,
            now: Optional[datetime] = None) -> Approval:
    now = now or datetime.now(timezone.utc)
    purpose = " ".join((purpose or "").split())
    if not purpose or len(purpose) > 200:
        raise JukinetError("PURPOSE_REQUIRED", "利用目的を200文字以内で入力してください (個人情報は書かないでください)。",
                           field="purpose")
    if not isinstance(max_rows, int) or max_rows < 1 or max_rows > config.provision.batch_max_rows:
        raise JukinetError("ROWS_INVALID", "件数の上限が正しくありません。", field="max_rows")
    days = days or config.provision.approval_max_days
    if days < 1 or days > config.provision.approval_max_days:
        raise JukinetError("EXPIRY_INVALID", "有効期間が正しくありません。", field="days")
    with registers.admin_tx() as conn:
        spec = read(conn)
        a = spec.affairs.get(affair_code or "")
        r = spec.requesters.get(requester_code or "")
        if r is None or r.status != "active":
            raise JukinetError("REQUESTER_UNKNOWN", "提供先・移転先の指定が正しくありません。", field="requester_code")
        if a is None or a.status != "active":
            raise JukinetError("AFFAIR_UNKNOWN", "事務の指定が正しくありません。", field="affair_code")
        if (r.code, a.code) not in spec.grants:
            raise JukinetError("AFFAIR_NOT_GRANTED", "この提供先・移転先には、指定された事務での提供が認められていません。",
                               field="affair_code")
        access.require(op, "provide", a.register)
        aid = f"AP{wareki.japan_stamp(now)}-{secrets.token_hex(3).upper()}"   # the day in Japan (ADR 0042)
        conn.execute(insert(provision_approvals).values(
            approval_id=aid, requester_code=r.code, affair_code=a.code, register=a.register, max_rows=max_rows,
            purpose=purpose, status="requested", requested_by=op.operator_id, requested_at=now,
            expires_at=now + timedelta(days=days)))
        oplog.append(conn, "admin", actor=Actor(op.operator_id, terminal_id), action="approval_request", now=now,
                     detail={"approval": aid, "requester": r.code, "affair": a.code, "max_rows": max_rows})
        return _get(conn, aid)


def decide(registers, oplog: OperationLog, op, terminal_id: Optional[str], approval_id: str, *, approve: bool,
           now: Optional[datetime] = None) -> Approval:
    now = now or datetime.now(timezone.utc)
    with registers.admin_tx() as conn:
        a = _get(conn, approval_id or "")
        if a is None:
            raise JukinetError("APPROVAL_UNKNOWN", "承認番号が見つかりません。", field="approval_id")
        access.require(op, "approve", a.register)
        if a.requested_by == op.operator_id:
            raise JukinetError("APPROVAL_SELF", "自分が申請した一括提供を自分で承認することはできません。")
        if a.effective_status(now) != "requested":
            raise JukinetError("APPROVAL_STATE", "この申請は承認・却下できる状態ではありません。")
        status = "approved" if approve else "rejected"
        conn.execute(update(provision_approvals).where(provision_approvals.c.approval_id == a.approval_id)
                     .values(status=status, decided_by=op.operator_id, decided_at=now))
        oplog.append(conn, "admin", actor=Actor(op.operator_id, terminal_id), action="approval_approve" if approve else "approval_reject",
                     now=now, detail={"approval": a.approval_id, "requester": a.requester_code,
                                      "affair": a.affair_code, "max_rows": a.max_rows})
        return _get(conn, a.approval_id)


def check(a: Optional[Approval], *, requester_code: str, affair_code: str, rows: int, now: datetime) -> None:
    if a is None:
        raise JukinetError("APPROVAL_UNKNOWN", "承認番号が見つかりません。", field="approval_id")
    st = a.effective_status(now)
    if st == "expired":
        raise JukinetError("APPROVAL_EXPIRED", "承認の有効期限が切れています。", field="approval_id")
    if st == "used":
        raise JukinetError("APPROVAL_USED", "この承認は既に使用されています。", field="approval_id")
    if st != "approved":
        raise JukinetError("APPROVAL_NOT_GRANTED", "管理責任者の承認が得られていません。", field="approval_id")
    if a.requester_code != requester_code or a.affair_code != affair_code:
        raise JukinetError("APPROVAL_MISMATCH", "承認の内容 (提供先・事務) と一括提供の内容が一致しません。",
                           field="approval_id")
    if rows > a.max_rows:
        raise JukinetError("APPROVAL_ROWS_EXCEEDED", "件数が承認された上限を超えています。", field="approval_id")


def consume(conn, approval_id: str, media_id: str, now: datetime) -> None:
    """Mark the approval used by this media (atomic: only one run can take it)."""
    t = provision_approvals
    n = conn.execute(update(t).where(t.c.approval_id == approval_id, t.c.status == "approved")
                     .values(status="used", used_at=now, media_id=media_id)).rowcount
    if n != 1:
        raise JukinetError("APPROVAL_USED", "この承認は既に使用されています。", field="approval_id")
