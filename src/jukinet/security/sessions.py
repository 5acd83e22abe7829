"""Sessions (A6): the operator behind a request (resolve), the idle lock, the screen lock and sign-out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from jukinet.security.base import Resolved, SecurityBase, now_utc, sha256
from jukinet.security.model import (AUTH_REQUIRED, MAINTENANCE_WITNESS_ENDED, OPERATOR_INACTIVE, SESSION_EXPIRED,
                                    SESSION_IDLE, SESSION_INVALID, SESSION_TERMINAL, TERMINAL_UNREGISTERED, Operator,
                                    Session)
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import sessions


#: the idle clock of a session (``last_seen_at``) is written at most this often (ADR 0052)
TOUCH_SECONDS = 20


@dataclass(frozen=True)
class _Verdict:
    session: Optional[Session]
    spec: Optional[tuple]
    reason: str = ""
    operator: Optional[Operator] = None


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

        The idle clock is written at most every :attr:`touch_every` (20 s; issue 19, ADR 0052): a
        request within that time of the last recorded one is checked in a read-only transaction and
        writes nothing (one write transaction per screen fewer: on SQLite a write takes the lock and an
        fsync). The clock can so lag by up to that much: an idle session is ended at most 20 s
        *earlier* than ``idle_minutes`` after its last request, never later.
        """
        now = now or now_utc()
        if terminal_id is None:
            raise self.refuse(Actor(), action, TERMINAL_UNREGISTERED)
        if not token:
            raise self.refuse(Actor(None, terminal_id), action, AUTH_REQUIRED)
        for write in (False, True):
            with self.registers.admin_tx(write=write) as conn:
                v = self._session_verdict(conn, sha256(token), terminal_id, now)
                if v.spec is None and now - v.session.last_seen_at < self.touch_every:
                    return Resolved(v.operator, v.session, terminal_id)      # fresh: nothing to write
                if not write and (v.spec is None or v.session is not None and v.session.ended_at is None):
                    continue        # the idle clock to restart or the session to end: again, under the write lock
                if v.spec is None:
                    conn.execute(update(sessions).where(sessions.c.session_hash == v.session.session_hash)
                                 .values(last_seen_at=now))
                    return Resolved(v.operator, dataclasses.replace(v.session, last_seen_at=now), terminal_id)
                if v.session is not None and v.session.ended_at is None:
                    conn.execute(update(sessions).where(sessions.c.session_hash == v.session.session_hash)
                                 .values(ended_at=now, end_reason=v.reason))
                break
        s = v.session
        raise self.refuse(Actor(s.operator_id if s else None, terminal_id, s.witness_id if s else None), action, v.spec)

    @property
    def touch_every(self) -> timedelta:
        """How stale the recorded idle clock may be: :data:`TOUCH_SECONDS`, or a tenth of the idle time
        when that is shorter (a session with a short idle time is still kept alive by its requests)."""
        return timedelta(seconds=min(TOUCH_SECONDS, self.cfg.idle_minutes * 6))

    def _session_verdict(self, conn: Connection, session_hash: str, terminal_id: str, now: datetime) -> "_Verdict":
        """What :meth:`resolve` decides about a session (read only): refusal ``spec`` (and the end
        ``reason`` to record), or the operator."""
        row = conn.execute(select(sessions).where(sessions.c.session_hash == session_hash)).first()
        if row is None:
            return _Verdict(None, SESSION_INVALID)
        s = Session.from_row(row)
        if s.ended_at is not None:
            return _Verdict(s, SESSION_IDLE if s.end_reason in ("idle", "locked") else SESSION_INVALID)
        if s.terminal_id != terminal_id:
            return _Verdict(s, SESSION_TERMINAL, "terminal_mismatch")
        if now >= s.expires_at:
            return _Verdict(s, SESSION_EXPIRED, "expired")
        if now - s.last_seen_at > timedelta(minutes=self.cfg.idle_minutes):
            return _Verdict(s, SESSION_IDLE, "idle")
        op = self._operator(conn, s.operator_id)
        wop = self._operator(conn, s.witness_id) if s.witness_id else None
        if op is None or op.status != "active":
            return _Verdict(s, OPERATOR_INACTIVE, "inactive")
        if "maintenance" in op.roles and (wop is None or wop.status != "active"):
            return _Verdict(s, MAINTENANCE_WITNESS_ENDED, "witness_inactive")   # G5: no witness, no session
        return _Verdict(s, None, operator=op)

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


