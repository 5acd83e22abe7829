"""Operators, terminals and sessions as the services see them, and the refusals they raise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from jukinet.errors import JukinetError
from jukinet.security import roles as R


def utc(v) -> Optional[datetime]:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)


class Refused(JukinetError):
    """An access refused: ``status`` is the HTTP status the web layer answers with."""

    status = 403

    def __init__(self, code: str, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(code, message, field=field)
        if status is not None:
            self.status = status


# codes and messages of the refusals (no personal data, no hint which part of a login was wrong)
AUTH_REQUIRED = ("AUTH_REQUIRED", "ログインしてください。", 401)
SESSION_INVALID = ("SESSION_INVALID", "セッションが無効です。ログインしてください。", 401)
SESSION_EXPIRED = ("SESSION_EXPIRED", "セッションの有効期限が切れました。ログインしてください。", 401)
SESSION_IDLE = ("SESSION_IDLE", "一定時間操作がなかったため画面をロックしました。再認証してください。", 401)
SESSION_TERMINAL = ("SESSION_TERMINAL_MISMATCH", "このセッションは別の操作端末のものです。", 401)
TERMINAL_UNREGISTERED = ("TERMINAL_UNREGISTERED", "この端末は操作端末として登録されていません。", 403)
OPERATOR_INACTIVE = ("OPERATOR_INACTIVE", "この操作者は利用できません。システム管理者に連絡してください。", 403)
FORBIDDEN = ("FORBIDDEN", "この操作を行う権限がありません。", 403)
LOGIN_FAILED = ("LOGIN_FAILED", "認証できませんでした。", 401)
LOGIN_LOCKED = ("LOGIN_LOCKED", "認証の失敗が続いたため、一定時間ログインできません。", 423)
CSRF = ("CSRF_INVALID", "画面の有効期限が切れました。画面を開き直してください。", 403)
# witnessed maintenance (G5, PIA II.4 委託事項2④; ADR 0041)
MAINTENANCE_WITNESS_REQUIRED = ("MAINTENANCE_WITNESS_REQUIRED",
                                "保守作業者は、職員の立会い (職員による同時認証) のもとでのみ操作できます。"
                                "「保守作業 (職員立会い)」の画面からログインしてください。", 403)
MAINTENANCE_ROLE_REQUIRED = ("MAINTENANCE_ROLE_REQUIRED",
                             "立会いによるログインは保守作業者のためのものです。通常のログイン画面を使ってください。", 403)
MAINTENANCE_WITNESS_SAME = ("MAINTENANCE_WITNESS_SAME", "立会者は保守作業者本人以外の職員でなければなりません。", 403)
MAINTENANCE_WITNESS_NOT_STAFF = ("MAINTENANCE_WITNESS_NOT_STAFF",
                                 "立会者は有効な職員の操作者でなければなりません (委託先の操作者は立会いできません)。", 403)
MAINTENANCE_NOT_ON_ROSTER = ("MAINTENANCE_NOT_ON_ROSTER",
                             "この保守作業者は委託先の作業従事者名簿 (現在有効) に登録されていません。", 403)
MAINTENANCE_WITNESS_ENDED = ("MAINTENANCE_WITNESS_ENDED",
                             "立会いが終了したため、保守作業のセッションを終了しました。", 401)


def refused(spec, **kw) -> Refused:
    code, message, status = spec
    return Refused(code, message, status=status, **kw)


@dataclass(frozen=True)
class Operator:
    operator_id: str
    display_name: str
    department: str
    roles: tuple[str, ...]
    registers: tuple[str, ...]
    affairs: tuple[str, ...]
    status: str
    password_allowed: bool
    failed_logins: int = 0
    locked_until: Optional[datetime] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    has_password: bool = False
    credential_count: int = 0

    @classmethod
    def from_row(cls, row, credential_count: int = 0) -> "Operator":
        m = row._mapping
        return cls(operator_id=m["operator_id"], display_name=m["display_name"], department=m["department"],
                   roles=tuple(R.split(m["roles"])), registers=tuple(R.split(m["registers"])),
                   affairs=tuple(R.split(m["affairs"])), status=m["status"],
                   password_allowed=bool(m["password_allowed"]), failed_logins=m["failed_logins"],
                   locked_until=utc(m["locked_until"]), created_at=utc(m["created_at"]),
                   updated_at=utc(m["updated_at"]), has_password=m["password_hash"] is not None,
                   credential_count=credential_count)

    def can(self, permission: str, register: str | None = None) -> bool:
        return self.status == "active" and R.allowed(permission, roles=self.roles, registers=self.registers,
                                                     affairs=self.affairs, register=register)

    def search_registers(self) -> list[str]:
        return [r for r in R.REGISTERS if self.can("search", r)]


@dataclass(frozen=True)
class Session:
    session_hash: str
    operator_id: str
    terminal_id: str
    method: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: Optional[datetime] = None
    end_reason: Optional[str] = None
    witness_id: Optional[str] = None     # witnessed maintenance (G5; ADR 0041)

    @classmethod
    def from_row(cls, row) -> "Session":
        m = dict(row._mapping)
        for k in ("created_at", "last_seen_at", "expires_at", "ended_at"):
            m[k] = utc(m[k])
        return cls(**m)


@dataclass(frozen=True)
class Terminal:
    terminal_id: str
    name: str
    status: str
    created_at: Optional[datetime] = None
    activated_at: Optional[datetime] = None

    @classmethod
    def from_row(cls, row) -> "Terminal":
        m = row._mapping
        return cls(m["terminal_id"], m["name"], m["status"], utc(m["created_at"]), utc(m["activated_at"]))
