"""What every part of the operator-side services shares (the base of :class:`~jukinet.security.service.Security`).

:class:`SecurityBase` holds the installation's config, registers and operation log, and the helpers
every use case needs: the operator row, the actor of a request, the permission check and the logging
of a refusal in a transaction of its own. The use cases themselves are in one module per concern
(``operators``, ``training_records``, ``terminals``, ``signin``, ``maintenance``, ``sessions``),
each a class deriving from this one (or from the part it builds on), and ``service.Security``
composes them — see :mod:`jukinet.security.service` for why mixins.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from argon2 import PasswordHasher
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from jukinet.config import Config, SecurityConfig
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security import roles as R
from jukinet.security import totp_secret
from jukinet.security.model import FORBIDDEN, Operator, Refused, Session, refused
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for
from jukinet.security.totp_secret import TotpSecretCipher
from jukinet.store.tables_security import operators, sessions, webauthn_credentials

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$")
_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoginResult:
    token: str
    session: Session
    operator: Operator


@dataclass(frozen=True)
class Resolved:
    operator: Operator
    session: Session
    terminal_id: str


@dataclass(frozen=True)
class PasswordGrant:
    """Shown once to the administrator when password fallback is enabled for an operator."""

    password: str
    totp_secret: str
    totp_uri: str


class SecurityBase:
    def __init__(self, config: Config, registers):
        self.config = config
        self.cfg: SecurityConfig = getattr(config, "security", None) or SecurityConfig()
        self.registers = registers
        self.oplog = OperationLog(KeyRing(config.data_dir), config.data_dir)
        self._totp: Optional[TotpSecretCipher] = None

    # ---- helpers -------------------------------------------------------------------------------

    def _totp_cipher(self, conn: Connection) -> TotpSecretCipher:
        """The cipher of the operators' TOTP secrets (``DIR/keys/totp.json``, ADR 0029)."""
        if self._totp is None:
            self._totp = totp_secret.cipher_for(self.config.data_dir, conn)
        return self._totp

    @property
    def origins(self) -> list[str]:
        return list(self.cfg.origins) or [f"http://localhost:{self.config.server.port}"]

    def log_refusal(self, actor: Actor, action: str, err: JukinetError, *, chain: str = "admin",
                    detail: dict | None = None, purpose_code: str | None = None, keys: dict | None = None) -> None:
        """Record a refusal — or an input error (:func:`~jukinet.security.outcomes.outcome_for`) — in its own
        transaction. Never raises: the request is refused anyway."""
        d = {"code": err.code, **(detail or {})}
        try:
            engine_tx = self.registers.admin_tx() if chain == "admin" else self.registers.uow(chain)
            with engine_tx as tx:
                conn = tx if chain == "admin" else tx.conn
                self.oplog.append(conn, chain, actor=actor, action=action, outcome=outcome_for(err), detail=d,
                                  purpose_code=purpose_code, keys=keys)
        except Exception:  # noqa: BLE001
            pass

    def refuse(self, actor: Actor, action: str, spec, *, chain: str = "admin", detail: dict | None = None) -> Refused:
        err = refused(spec) if isinstance(spec, tuple) else spec
        self.log_refusal(actor, action, err, chain=chain, detail=detail)
        return err

    def _operator(self, conn: Connection, operator_id: str) -> Optional[Operator]:
        row = conn.execute(select(operators).where(operators.c.operator_id == operator_id)).first()
        if row is None:
            return None
        n = conn.execute(select(func.count()).select_from(webauthn_credentials)
                         .where(webauthn_credentials.c.operator_id == operator_id)).scalar_one()
        return Operator.from_row(row, n)

    def actor_of(self, op: Operator, terminal_id: str | None) -> Actor:
        """The actor of ``op`` at ``terminal_id``; a 保守作業者 (maintenance) is named with the witness of
        their open session on that terminal (G5; ADR 0041), so that a refusal is logged under both."""
        witness = None
        if "maintenance" in op.roles and terminal_id:
            with self.registers.admin_tx(write=False) as conn:
                witness = conn.execute(select(sessions.c.witness_id).where(
                    sessions.c.operator_id == op.operator_id, sessions.c.terminal_id == terminal_id,
                    sessions.c.ended_at.is_(None)).order_by(sessions.c.created_at.desc()).limit(1)).scalar()
        return Actor(op.operator_id, terminal_id, witness)

    def get_operator(self, operator_id: str) -> Optional[Operator]:
        with self.registers.admin_tx(write=False) as conn:
            return self._operator(conn, operator_id)

    def require(self, actor_op: Operator, terminal_id: str, permission: str, action: str,
                register: str | None = None) -> None:
        """Raise (and log) FORBIDDEN unless the operator holds ``permission`` (for ``register``)."""
        if not actor_op.can(permission, register):
            raise self.refuse(self.actor_of(actor_op, terminal_id), action, FORBIDDEN,
                              chain=register if register in R.REGISTERS else "admin",
                              detail={"permission": permission, **({"register": register} if register else {})})

    def _end_sessions(self, conn: Connection, operator_id: str, now: datetime, reason: str) -> None:
        conn.execute(update(sessions).where(sessions.c.operator_id == operator_id, sessions.c.ended_at.is_(None))
                     .values(ended_at=now, end_reason=reason))


def as_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
