"""操作端末 (ADR 0008): register a terminal, its one-time activation code, the terminal secret its cookie
carries, revocation (which ends the sessions open on it)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import func, insert, select, update

from jukinet.errors import JukinetError
from jukinet.security.base import _ID, SecurityBase, now_utc, sha256
from jukinet.security.model import Refused, Terminal, utc
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import sessions, terminals


class Terminals(SecurityBase):
    def add_terminal(self, actor: Actor, name: str, *, terminal_id: str | None = None,
                     now: datetime | None = None) -> tuple[Terminal, str]:
        """Register an 操作端末; return it with a one-time activation code (valid 24 h)."""
        now = now or now_utc()
        name = (name or "").strip()
        if not name or len(name) > 60:
            raise JukinetError("NAME_REQUIRED", "端末名を60文字以内で入力してください。", field="name")
        if terminal_id is not None and not _ID.match(terminal_id):
            raise JukinetError("TERMINAL_ID_FORMAT", "端末IDは英数字・-・_ の3〜32文字で指定してください。")
        code = secrets.token_urlsafe(24)
        with self.registers.admin_tx() as conn:
            if terminal_id is None:
                n = conn.execute(select(func.count()).select_from(terminals)).scalar_one()
                terminal_id = f"T{n + 1:04d}"
                while conn.execute(select(terminals.c.terminal_id).where(terminals.c.terminal_id == terminal_id)).first():
                    n += 1
                    terminal_id = f"T{n + 1:04d}"
            elif conn.execute(select(terminals.c.terminal_id).where(terminals.c.terminal_id == terminal_id)).first():
                raise JukinetError("TERMINAL_EXISTS", "その端末IDは既に使われています。")
            conn.execute(insert(terminals).values(terminal_id=terminal_id, name=name, status="pending",
                                                  activation_hash=sha256(code),
                                                  activation_expires=now + timedelta(hours=24),
                                                  created_at=now, created_by=actor.operator_id))
            self.oplog.append(conn, "admin", actor=actor, action="terminal_register", now=now,
                              detail={"target": terminal_id})
            t = Terminal.from_row(conn.execute(select(terminals).where(terminals.c.terminal_id == terminal_id)).one())
        return t, code

    def reissue_activation(self, actor: Actor, terminal_id: str, *, now: datetime | None = None) -> str:
        now = now or now_utc()
        code = secrets.token_urlsafe(24)
        with self.registers.admin_tx() as conn:
            n = conn.execute(update(terminals).where(terminals.c.terminal_id == terminal_id).values(
                activation_hash=sha256(code), activation_expires=now + timedelta(hours=24))).rowcount
            if not n:
                raise JukinetError("TERMINAL_NOT_FOUND", "端末が見つかりません。")
            self.oplog.append(conn, "admin", actor=actor, action="terminal_activation_issue", now=now,
                              detail={"target": terminal_id})
        return code

    def activate_terminal(self, code: str, *, now: datetime | None = None) -> tuple[str, str]:
        """Redeem an activation code: return (terminal_id, terminal secret) for the terminal cookie."""
        now = now or now_utc()
        with self.registers.admin_tx() as conn:
            row = conn.execute(select(terminals).where(terminals.c.activation_hash == sha256(code or ""))).first()
            if row is None or row.status == "revoked" or utc(row.activation_expires) < now:
                err = Refused("ACTIVATION_INVALID", "端末登録コードが無効です。システム管理者に確認してください。",
                              status=403)
            else:
                secret = secrets.token_urlsafe(32)
                conn.execute(update(terminals).where(terminals.c.terminal_id == row.terminal_id).values(
                    status="active", secret_hash=sha256(secret), activation_hash=None, activation_expires=None,
                    activated_at=now))
                self.oplog.append(conn, "admin", actor=Actor(None, row.terminal_id), action="terminal_activate", now=now)
                return row.terminal_id, secret
        raise self.refuse(Actor(), "terminal_activate", err)

    def revoke_terminal(self, actor: Actor, terminal_id: str, *, now: datetime | None = None) -> None:
        now = now or now_utc()
        with self.registers.admin_tx() as conn:
            n = conn.execute(update(terminals).where(terminals.c.terminal_id == terminal_id)
                             .values(status="revoked", secret_hash=None, activation_hash=None)).rowcount
            if not n:
                raise JukinetError("TERMINAL_NOT_FOUND", "端末が見つかりません。")
            conn.execute(update(sessions).where(sessions.c.terminal_id == terminal_id, sessions.c.ended_at.is_(None))
                         .values(ended_at=now, end_reason="terminal_revoked"))
            self.oplog.append(conn, "admin", actor=actor, action="terminal_revoke", now=now,
                              detail={"target": terminal_id})

    def list_terminals(self) -> list[Terminal]:
        with self.registers.admin_tx(write=False) as conn:
            return [Terminal.from_row(r) for r in conn.execute(select(terminals).order_by(terminals.c.terminal_id))]

    def terminal_from_secret(self, value: str | None) -> Optional[str]:
        """The terminal cookie/header is ``<terminal_id>.<secret>``; return the id if it is valid."""
        if not value or "." not in value:
            return None
        tid, secret = value.split(".", 1)
        with self.registers.admin_tx(write=False) as conn:
            row = conn.execute(select(terminals.c.secret_hash, terminals.c.status)
                               .where(terminals.c.terminal_id == tid)).first()
        if row is None or row.status != "active" or row.secret_hash is None:
            return None
        return tid if secrets.compare_digest(row.secret_hash, sha256(secret)) else None

