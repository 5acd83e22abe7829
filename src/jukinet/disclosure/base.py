"""What every part of the 事務3 services shares (the base of
:class:`~jukinet.disclosure.service.DisclosureService`): the installation's config, registers, key ring
and operation log; the access check (:mod:`jukinet.disclosure.access`) and the logging of a refusal
in a transaction of its own; dates in JST and 和暦; the :class:`Issued` form; the kinds of error
(訂正・追加・削除) that corrections and 通報 share. See :mod:`jukinet.disclosure.service` for how the
parts are put together."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Optional

from jukinet import geo, wareki
from jukinet.disclosure import access
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.provision.records import bind_keyring
from jukinet.security.model import FORBIDDEN, refused
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for

JST = timezone(timedelta(hours=9))
#: the kinds of error in a record: what a 訂正等の申出 asks (O2) and what a 通報 tells the municipality (O5)
CORRECTION_KINDS = {"correct": "訂正", "add": "追加", "delete": "削除"}
_SPACES = re.compile(r"[\s\u3000]+")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def today_jst() -> date:
    return now_utc().astimezone(JST).date()


def parse_date(text, field: str = "birth_date") -> date:
    if isinstance(text, date):
        return text
    s = (text or "").strip()
    try:
        return date.fromisoformat(s)
    except ValueError:
        pass
    try:
        return wareki.parse_wareki(s)
    except JukinetError:
        raise JukinetError("DATE_FORMAT", "日付は西暦 (YYYY-MM-DD) または和暦で入力してください。", field=field) from None


def _nospace(s: Optional[str]) -> str:
    return _SPACES.sub("", s or "")


@dataclass
class Issued:
    serial: str
    pages: int
    pdf: bytes
    sha256: str


class DisclosureBase:
    def __init__(self, config, registers, *, keyring: Optional[KeyRing] = None):
        self.config = config
        self.registers = registers
        self.keyring = keyring or KeyRing(config.data_dir)
        self.oplog = OperationLog(self.keyring, config.data_dir)
        bind_keyring([registers.engine(r) for r in ("juki", "fuhyo")], self.keyring)
        self.font = getattr(getattr(config, "security", None), "font_path", None)

    def _require(self, op, terminal_id, what: str, register: Optional[str], action: str) -> Actor:
        actor = Actor(op.operator_id if op else None, terminal_id)
        if not access.can(op, what, register):
            err = refused(FORBIDDEN)
            self._log_refusal(actor, action, err, register)
            raise err
        return actor

    def _log_refusal(self, actor: Actor, action: str, err: JukinetError, register: Optional[str],
                     detail: Optional[dict] = None) -> None:
        try:
            if register in ("juki", "fuhyo"):
                with self.registers.uow(register) as uow:
                    self.oplog.append(uow.conn, register, actor=actor, action=action, outcome=outcome_for(err),
                                      detail={"code": err.code, **(detail or {})})
            else:
                with self.registers.admin_tx() as conn:
                    self.oplog.append(conn, "admin", actor=actor, action=action, outcome=outcome_for(err),
                                      detail={"code": err.code, **(detail or {})})
        except Exception:  # noqa: BLE001 - refused anyway
            pass

    def _guard(self, actor: Actor, action: str, register: Optional[str], fn, *, detail: Optional[dict] = None):
        """Run ``fn``; a JukinetError is logged as a refusal (own transaction) and raised."""
        try:
            return fn()
        except JukinetError as e:
            self._log_refusal(actor, action, e, register, detail)
            raise

    @staticmethod
    def _register(register: str) -> str:
        if register not in ("juki", "fuhyo"):
            raise JukinetError("REGISTER_UNKNOWN", "ファイルの指定が正しくありません。", field="register")
        return register


def _jst_date(v: datetime) -> date:
    return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(JST).date()


def _municipality(code: Optional[str]) -> Optional[str]:
    m = geo.find(code)
    return m.name if m else code


def _jst(v) -> str:
    """An instant in the registers people read (CSV): 和暦 date and JST time (ADR 0042)."""
    return wareki.to_wareki_time(v)
