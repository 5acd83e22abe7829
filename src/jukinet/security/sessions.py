"""Sessions (A6): the operator behind a request (resolve), the idle lock, the screen lock and sign-out."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select, update

from jukinet.security.base import Resolved, SecurityBase, now_utc, sha256
from jukinet.security.model import (AUTH_REQUIRED, MAINTENANCE_WITNESS_ENDED, OPERATOR_INACTIVE, SESSION_EXPIRED,
                                    SESSION_IDLE, SESSION_INVALID, SESSION_TERMINAL, TERMINAL_UNREGISTERED, Session)
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import sessions


class Sessions(SecurityBase):
    def session_info(self, token: str | None) -> Optional[Session]:
        """The session of a token, ended or not (the lock screen shows whose screen it was)."""
        if not token:
            return None
        with self.registers.admin_tx(write=False) as conn:
            row = conn.execute(select(sessions).where(sessions.c.session_hash == sha256(token))).first()
        return Session.from_row(row) if row else None

    def resolve(self, token: str | None, terminal_id: str | None, *, action: str = "request",
                now: datetime | None = None) -> Resolved:
        """The operator behind a request, or a logged refusal.

        Refused when there is no terminal or session, the session was ended, belongs to another
        terminal, is past its absolute lifetime or has been idle longer than ``idle_minutes``
        (then it is ended: the screen is locked and a new authentication is needed), or the
        operator is no longer active. On success the idle clock restarts.
        """
        now = now or now_utc()
        if terminal_id is None:
            raise self.refuse(Actor(), action, TERMINAL_UNREGISTERED)
        if not token:
            raise self.refuse(Actor(None, terminal_id), action, AUTH_REQUIRED)
        spec = None
        with self.registers.admin_tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.session_hash == sha256(token))).first()
            if row is None:
                spec, who = SESSION_INVALID, None
            else:
                s = Session.from_row(row)
                who = s.operator_id
                if s.ended_at is not None:
                    spec = SESSION_IDLE if s.end_reason in ("idle", "locked") else SESSION_INVALID
                elif s.terminal_id != terminal_id:
                    spec, reason = SESSION_TERMINAL, "terminal_mismatch"
                elif now >= s.expires_at:
                    spec, reason = SESSION_EXPIRED, "expired"
                elif now - s.last_seen_at > timedelta(minutes=self.cfg.idle_minutes):
                    spec, reason = SESSION_IDLE, "idle"
                else:
                    op = self._operator(conn, s.operator_id)
                    wop = self._operator(conn, s.witness_id) if s.witness_id else None
                    if op is None or op.status != "active":
                        spec, reason = OPERATOR_INACTIVE, "inactive"
                    elif "maintenance" in op.roles and (wop is None or wop.status != "active"):
                        spec, reason = MAINTENANCE_WITNESS_ENDED, "witness_inactive"   # G5: no witness, no session
                    else:
                        conn.execute(update(sessions).where(sessions.c.session_hash == s.session_hash)
                                     .values(last_seen_at=now))
                        return Resolved(op, dataclasses.replace(s, last_seen_at=now), terminal_id)
                if spec is not None and s.ended_at is None:
                    conn.execute(update(sessions).where(sessions.c.session_hash == s.session_hash)
                                 .values(ended_at=now, end_reason=reason))
        raise self.refuse(Actor(who, terminal_id, s.witness_id if row is not None else None), action, spec)

    def lock(self, token: str | None, terminal_id: str | None, *, now: datetime | None = None) -> Optional[str]:
        """Lock the screen now (the browser's idle timer or the lock button): the session ends."""
        now = now or now_utc()
        if not token:
            return None
        with self.registers.admin_tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.session_hash == sha256(token))).first()
            if row is None or row.terminal_id != terminal_id:
                return None
            if row.ended_at is None:
                conn.execute(update(sessions).where(sessions.c.session_hash == row.session_hash)
                             .values(ended_at=now, end_reason="locked"))
                self.oplog.append(conn, "admin", actor=Actor(row.operator_id, terminal_id, row.witness_id),
                                  action="screen_lock", now=now)
            return row.operator_id

    def logout(self, token: str | None, terminal_id: str | None, *, now: datetime | None = None) -> None:
        now = now or now_utc()
        if not token:
            return
        with self.registers.admin_tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.session_hash == sha256(token))).first()
            if row is None or row.ended_at is not None:
                return
            conn.execute(update(sessions).where(sessions.c.session_hash == row.session_hash)
                         .values(ended_at=now, end_reason="logout"))
            self.oplog.append(conn, "admin", actor=Actor(row.operator_id, terminal_id, row.witness_id), action="logout",
                              now=now)


