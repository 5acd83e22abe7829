"""Input rules shared by the governance registers (G4, G5; ADR 0041): dates not in the future,
texts of bounded length that a database can store, the 管理責任者 for approvals, and the logging of
a refusal. Every refusal is a coded :class:`~jukinet.errors.JukinetError` with a Japanese message,
raised before anything is written.

>>> from datetime import date
>>> parse_day("2026-04-01", code="X", label="実施日", today=date(2026, 12, 1))
datetime.date(2026, 4, 1)
>>> parse_day("2026-12-02", code="INSPECTION", label="実施日", today=date(2026, 12, 1))
Traceback (most recent call last):
...
jukinet.errors.JukinetError: INSPECTION_DATE_FUTURE: 実施日に未来の日付は指定できません。
>>> parse_moment("2026-11-30T09:15", code="INCIDENT", label="発生日時",
...              now=datetime(2026, 12, 1, tzinfo=timezone.utc)).isoformat()
'2026-11-30T00:15:00+00:00'
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional

from jukinet import text
from jukinet.errors import JukinetError
from jukinet.security.model import Operator
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for

JST = timezone(timedelta(hours=9))

#: the refusal of an approval (closing an incident, a review) by someone who is not a 管理責任者
NOT_MANAGER = ("APPROVAL_NOT_MANAGER", "この確認・承認は管理責任者のみが行えます。")


def today_jst(now: Optional[datetime] = None) -> date:
    return (now or datetime.now(timezone.utc)).astimezone(JST).date()


def parse_day(value, *, code: str, label: str, today: Optional[date] = None, field: str = "date") -> date:
    """An ISO date (YYYY-MM-DD), not after ``today`` (JST)."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(str(value or "").strip())
        except ValueError:
            raise JukinetError(f"{code}_DATE_INVALID", f"{label}は YYYY-MM-DD の形式で、実在する日付を入力してください。",
                               field=field) from None
    if value > (today or today_jst()):
        raise JukinetError(f"{code}_DATE_FUTURE", f"{label}に未来の日付は指定できません。", field=field)
    return value


def parse_moment(value, *, code: str, label: str, now: Optional[datetime] = None, field: str = "at") -> datetime:
    """A local (JST) date and time ``YYYY-MM-DDTHH:MM`` (the browser's datetime-local; a bare date is
    midnight), not in the future; returned in UTC."""
    now = now or datetime.now(timezone.utc)
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=JST)
    else:
        raw = str(value or "").strip().replace(" ", "T")
        try:
            at = datetime.fromisoformat(raw) if "T" in raw else datetime.combine(date.fromisoformat(raw),
                                                                                   datetime.min.time())
        except ValueError:
            raise JukinetError(f"{code}_DATE_INVALID", f"{label}は YYYY-MM-DD HH:MM の形式で入力してください。",
                               field=field) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=JST)
    at = at.astimezone(timezone.utc)
    if at > now + timedelta(minutes=1):
        raise JukinetError(f"{code}_DATE_FUTURE", f"{label}に未来の日時は指定できません。", field=field)
    return at


def check_text(value, *, code: str, label: str, field: str, max_len: int = 2000, required: bool = True) -> str:
    value = (value or "").strip() if isinstance(value, str) else ""
    if required and not value:
        raise JukinetError(f"{code}_REQUIRED", f"{label}を入力してください。", field=field)
    if len(value) > max_len:
        raise JukinetError(f"{code}_TOO_LONG", f"{label}は{max_len}文字以内で入力してください。", field=field)
    if value:
        text.check(value, label, field=field)
    return value


def check_choice(value, choices: dict, *, code: str, label: str, field: str) -> str:
    if value not in choices:
        raise JukinetError(f"{code}_INVALID", f"{label}を選択してください。", field=field)
    return value


def require_manager(by: Optional[Operator]) -> None:
    """An approval needs an active 管理責任者 (G4 closing, G5 reviews)."""
    if by is None or by.status != "active" or "manager" not in by.roles:
        raise JukinetError(*NOT_MANAGER, field="by")


def require_permission(by: Optional[Operator], permission: str) -> None:
    if by is not None and not by.can(permission):
        raise JukinetError("FORBIDDEN", "この操作を行う権限がありません。")


def log_refusal(registers, oplog: OperationLog, actor: Actor, action: str, err: JukinetError,
                detail: dict | None = None) -> None:
    """A refusal in the admin chain, in a transaction of its own; never raises."""
    try:
        with registers.admin_tx() as conn:
            oplog.append(conn, "admin", actor=actor, action=action, outcome=outcome_for(err),
                         detail={"code": err.code, **(detail or {})})
    except Exception:  # noqa: BLE001 - refused anyway
        pass
