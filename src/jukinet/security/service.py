"""Services of the operator side: roster (A2), terminals, login (A1), sessions and the idle lock (A6).

Each public method is one use case: it takes plain arguments (the command) and runs in its own
transaction on the ``admin`` database (the unit of work), writing its operation-log entry to the
admin chain in that same transaction. A refusal is logged in a transaction of its own (the work's
transaction is rolled back) and then raised as :class:`~jukinet.security.model.Refused`.

Secrets (enrollment links, terminal activation codes, session tokens, terminal secrets) are
random; only their SHA-256 is stored. The TOTP secrets of the password fallback must be read back,
so they are sealed instead (AES-256-GCM bound to the operator, :mod:`jukinet.security.totp_secret`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from jukinet.config import Config, SecurityConfig
from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.observability import metrics
from jukinet.security import roles as R
from jukinet.security import totp_secret
from jukinet.security import training as TR
from jukinet.security import webauthn as W
from jukinet.security.model import (AUTH_REQUIRED, FORBIDDEN, LOGIN_FAILED, LOGIN_LOCKED,
                                    MAINTENANCE_NOT_ON_ROSTER, MAINTENANCE_ROLE_REQUIRED,
                                    MAINTENANCE_WITNESS_ENDED, MAINTENANCE_WITNESS_NOT_STAFF,
                                    MAINTENANCE_WITNESS_REQUIRED, MAINTENANCE_WITNESS_SAME, OPERATOR_INACTIVE,
                                    SESSION_EXPIRED, SESSION_IDLE, SESSION_INVALID, SESSION_TERMINAL,
                                    TERMINAL_UNREGISTERED, Operator, Refused, Session, Terminal, refused, utc)
from jukinet.security.oplog import Actor, OperationLog
from jukinet.security.outcomes import outcome_for
from jukinet.security.totp_secret import TotpSecretCipher
from jukinet.store.tables_governance import contractor_workers
from jukinet.store.tables_security import (auth_challenges, operator_trainings, operators, sessions, terminals,
                                           webauthn_credentials)

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


#: the idle clock of a session (``last_seen_at``) is written at most this often (ADR 0052)
TOUCH_SECONDS = 20


@dataclass(frozen=True)
class _Verdict:
    session: Optional[Session]
    spec: Optional[tuple]
    reason: str = ""
    operator: Optional[Operator] = None


@dataclass(frozen=True)
class PasswordGrant:
    """Shown once to the administrator when password fallback is enabled for an operator."""

    password: str
    totp_secret: str
    totp_uri: str


class Security:
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

    # ---- roster (A2) ---------------------------------------------------------------------------

    def _new_operator_id(self, conn: Connection) -> str:
        n = conn.execute(select(func.count()).select_from(operators)).scalar_one()
        while True:
            n += 1
            oid = f"OP{n:04d}"
            if conn.execute(select(operators.c.operator_id).where(operators.c.operator_id == oid)).first() is None:
                return oid

    def _enrollment(self, now: datetime) -> tuple[str, str, datetime]:
        token = secrets.token_urlsafe(32)
        return token, sha256(token), now + timedelta(hours=self.cfg.enrollment_hours)

    def register_operator(self, actor: Actor, *, display_name: str, department: str = "", roles: list[str],
                          registers: list[str] = (), affairs: list[str] = (), operator_id: str | None = None,
                          password_allowed: bool = False, now: datetime | None = None) -> tuple[Operator, str]:
        """Register an operator (status pending) and return it with a one-time enrollment token."""
        now = now or now_utc()
        display_name = (display_name or "").strip()
        if not display_name or len(display_name) > 60:
            raise JukinetError("NAME_REQUIRED", "操作者の氏名を60文字以内で入力してください。", field="display_name")
        roles = R.check_roles(list(roles))
        registers, affairs = R.check_scopes(list(registers), list(affairs))
        if operator_id is not None and not _ID.match(operator_id):
            raise JukinetError("OPERATOR_ID_FORMAT", "操作者IDは英数字・-・_ の3〜32文字で指定してください。",
                               field="operator_id")
        token, token_hash, expires = self._enrollment(now)
        with self.registers.admin_tx() as conn:
            oid = operator_id or self._new_operator_id(conn)
            if self._operator(conn, oid) is not None:
                raise JukinetError("OPERATOR_EXISTS", "その操作者IDは既に使われています。", field="operator_id")
            conn.execute(insert(operators).values(
                operator_id=oid, display_name=display_name, department=(department or "").strip()[:60],
                roles=R.join(roles), registers=R.join(registers), affairs=R.join(affairs), status="pending",
                password_allowed=bool(password_allowed), failed_logins=0, enrollment_hash=token_hash,
                enrollment_expires=expires, created_at=now, created_by=actor.operator_id, updated_at=now))
            self.oplog.append(conn, "admin", actor=actor, action="operator_register", now=now,
                              detail={"target": oid, "roles": R.join(roles), "registers": R.join(registers),
                                      "affairs": R.join(affairs), "password_allowed": bool(password_allowed)})
            return self._operator(conn, oid), token

    def bootstrap_admin(self, *, display_name: str, department: str = "情報システム担当",
                        operator_id: str | None = None, training_course: str | None = None,
                        training_date=None, now: datetime | None = None) -> tuple[Operator, str]:
        """The first system administrator (``jukinet operator bootstrap``); refused once one exists.

        With ``training_date`` their security training is recorded at once (G1); without it they
        work under the bootstrap grace (``bootstrap_training_grace_days``; ADR 0034)."""
        now = now or now_utc()
        with self.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(operators.c.roles, operators.c.status)).all()
        if any("admin" in R.split(r.roles) and r.status in ("active", "pending") for r in rows):
            raise JukinetError("BOOTSTRAP_DONE", "システム管理者は既に登録されています。追加は管理画面から行ってください。")
        if training_date is not None:     # checked before anything is written
            TR.check_course(training_course or "")
            TR.parse_taken_on(training_date, today=TR.today_jst(now))
        op, token = self.register_operator(Actor("bootstrap", None), display_name=display_name, department=department,
                                           roles=["admin"], operator_id=operator_id, now=now)
        if training_date is not None:
            self.record_training(Actor("bootstrap", None), op.operator_id, course=training_course or "",
                                 taken_on=training_date, now=now)
        return op, token

    def update_operator(self, actor: Actor, operator_id: str, *, roles: list[str], registers: list[str],
                        affairs: list[str], password_allowed: bool | None = None,
                        now: datetime | None = None) -> Operator:
        now = now or now_utc()
        roles = R.check_roles(list(roles))
        registers, affairs = R.check_scopes(list(registers), list(affairs))
        if operator_id == actor.operator_id and "admin" not in roles:
            raise JukinetError("SELF_DEMOTE", "自分自身のシステム管理者権限は外せません。", field="roles")
        with self.registers.admin_tx() as conn:
            op = self._operator(conn, operator_id)
            if op is None or op.status == "removed":
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。")
            values = dict(roles=R.join(roles), registers=R.join(registers), affairs=R.join(affairs), updated_at=now)
            if password_allowed is not None:
                values["password_allowed"] = bool(password_allowed)
                if not password_allowed:
                    values.update(password_hash=None, totp_secret_ct=None, totp_secret_key=None, totp_last_step=None)
            conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(**values))
            self.oplog.append(conn, "admin", actor=actor, action="operator_update", now=now,
                              detail={"target": operator_id, "roles": values["roles"], "registers": values["registers"],
                                      "affairs": values["affairs"], "password_allowed": password_allowed,
                                      "before": {"roles": R.join(op.roles), "registers": R.join(op.registers),
                                                 "affairs": R.join(op.affairs)}})
            return self._operator(conn, operator_id)

    def set_status(self, actor: Actor, operator_id: str, status: str, *, now: datetime | None = None) -> Operator:
        """suspend (利用停止) / reactivate (再開) / remove (削除: 退職・異動者は直ちに). Ends their sessions."""
        now = now or now_utc()
        if status not in ("suspended", "active", "removed"):
            raise JukinetError("STATUS_UNKNOWN", "状態の指定が正しくありません。")
        if operator_id == actor.operator_id:
            raise JukinetError("SELF_STATUS", "自分自身の状態は変更できません。")
        with self.registers.admin_tx() as conn:
            op = self._operator(conn, operator_id)
            if op is None or op.status == "removed":
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。")
            if status == "active" and op.credential_count == 0 and not op.has_password:
                status = "pending"
            if status == "active" and not self._trained(conn, operator_id, now):
                err = refused(TR.TRAINING_REQUIRED)
            else:
                err = None
        if err is not None:
            raise self.refuse(actor, "operator_active", err, detail={"target": operator_id})
        with self.registers.admin_tx() as conn:
            op = self._operator(conn, operator_id)
            if op is None or op.status == "removed":
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。")
            values = dict(status=status, updated_at=now)
            if status == "active":
                values.update(failed_logins=0, locked_until=None)
            if status == "removed":
                values.update(removed_at=now, enrollment_hash=None, password_hash=None, totp_secret_ct=None,
                              totp_secret_key=None)
                conn.execute(delete(webauthn_credentials).where(webauthn_credentials.c.operator_id == operator_id))
            conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(**values))
            if status != "active":
                self._end_sessions(conn, operator_id, now, reason=status)
            self.oplog.append(conn, "admin", actor=actor, action=f"operator_{status}", now=now,
                              detail={"target": operator_id, "before": op.status})
            return self._operator(conn, operator_id)

    def reissue_enrollment(self, actor: Actor, operator_id: str, *, now: datetime | None = None) -> str:
        """A new one-time enrollment link (another terminal, a replaced reader)."""
        now = now or now_utc()
        token, token_hash, expires = self._enrollment(now)
        with self.registers.admin_tx() as conn:
            op = self._operator(conn, operator_id)
            if op is None or op.status in ("removed", "suspended"):
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。")
            conn.execute(update(operators).where(operators.c.operator_id == operator_id)
                         .values(enrollment_hash=token_hash, enrollment_expires=expires, updated_at=now))
            self.oplog.append(conn, "admin", actor=actor, action="enrollment_issue", now=now,
                              detail={"target": operator_id})
        return token

    def grant_password(self, actor: Actor, operator_id: str, *, now: datetime | None = None) -> PasswordGrant:
        """Set a fallback password + TOTP secret (only where allowed); shown once to the administrator."""
        now = now or now_utc()
        password = secrets.token_urlsafe(12)
        totp_secret = pyotp.random_base32()
        with self.registers.admin_tx() as conn:
            op = self._operator(conn, operator_id)
            if op is None or op.status == "removed":
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。")
            if not op.password_allowed:
                raise JukinetError("PASSWORD_NOT_ALLOWED", "この操作者にはパスワード認証が許可されていません。")
            activate = op.status == "pending"
            if activate and not self._trained(conn, operator_id, now):
                err = refused(TR.TRAINING_REQUIRED)
            else:
                err = None
        if err is not None:
            raise self.refuse(actor, "password_grant", err, detail={"target": operator_id})
        with self.registers.admin_tx() as conn:
            values = dict(password_hash=_hasher.hash(password), totp_last_step=None, updated_at=now,
                          **self._totp_cipher(conn).seal(operator_id, totp_secret))
            if activate:
                values["status"] = "active"
            conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(**values))
            self.oplog.append(conn, "admin", actor=actor, action="password_grant", now=now,
                              detail={"target": operator_id})
        uri = pyotp.TOTP(totp_secret).provisioning_uri(name=operator_id, issuer_name="jukinet")
        return PasswordGrant(password, totp_secret, uri)

    def recover_admin(self, operator_id: str, *, with_password: bool = False, local_user: str = "",
                      now: datetime | None = None) -> tuple[Operator, str, Optional[PasswordGrant]]:
        """Recovery of a システム管理者 who lost their credential (``jukinet operator recover-admin``, ADR 0042).

        Only from the server: the caller has the data directory (its key ring opens the operation log and
        the TOTP cipher), so nobody can do this over the network. The lost authenticators are removed (a
        found device must not sign in again), the administrator's sessions end, a lockout is lifted, and a
        new one-time enrollment link is issued; ``with_password`` also allows the password + TOTP fallback
        and grants a new pair (shown once). One ``admin_recover`` entry (actor ``recover``) records it with
        the local user who ran it. Refused for an operator who is not an active or pending administrator."""
        now = now or now_utc()
        actor = Actor("recover", None)
        token, token_hash, expires = self._enrollment(now)
        try:
            self._recover_admin(actor, operator_id, token_hash, expires, with_password, local_user, now)
        except JukinetError as e:
            self.log_refusal(actor, "admin_recover", e, detail={"target": (operator_id or "")[:32],
                                                                "local_user": (local_user or "")[:40]})
            raise
        grant = self.grant_password(actor, operator_id, now=now) if with_password else None
        return self.get_operator(operator_id), token, grant

    def _recover_admin(self, actor: Actor, operator_id: str, token_hash: str, expires: datetime, with_password: bool,
                       local_user: str, now: datetime) -> None:
        with self.registers.admin_tx() as conn:
            op = self._operator(conn, operator_id)
            if op is None or op.status == "removed":
                raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。", field="operator")
            if "admin" not in op.roles:
                raise JukinetError("RECOVER_NOT_ADMIN", "復旧できるのはシステム管理者だけです。業務担当者などの認証手段は"
                                   "システム管理者が操作者名簿で再発行します。", field="operator")
            if op.status == "suspended":
                raise JukinetError("RECOVER_SUSPENDED", "利用停止中のシステム管理者は復旧できません。", field="operator")
            removed = conn.execute(delete(webauthn_credentials).where(
                webauthn_credentials.c.operator_id == operator_id)).rowcount
            values = dict(enrollment_hash=token_hash, enrollment_expires=expires, failed_logins=0, locked_until=None,
                          password_hash=None, totp_secret_ct=None, totp_secret_key=None, totp_last_step=None,
                          updated_at=now)
            if with_password:
                values["password_allowed"] = True
            conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(**values))
            self._end_sessions(conn, operator_id, now, reason="recover")
            self.oplog.append(conn, "admin", actor=actor, action="admin_recover", now=now,
                              detail={"target": operator_id, "credentials_removed": removed,
                                      "password": bool(with_password), "local_user": (local_user or "")[:40]})

    def list_operators(self, *, include_removed: bool = True) -> list[Operator]:
        with self.registers.admin_tx(write=False) as conn:
            counts = dict(conn.execute(select(webauthn_credentials.c.operator_id, func.count())
                                       .group_by(webauthn_credentials.c.operator_id)).all())
            rows = conn.execute(select(operators).order_by(operators.c.operator_id)).all()
        ops = [Operator.from_row(r, counts.get(r.operator_id, 0)) for r in rows]
        return [o for o in ops if include_removed or o.status != "removed"]

    def roster_csv(self, actor: Actor) -> str:
        """名簿 (roster) as CSV, UTF-8 with BOM for spreadsheet software; the export is logged."""
        ops = self.list_operators()
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(["操作者ID", "氏名", "所属", "役割", "担当ファイル", "担当事務", "状態", "パスワード認証",
                    "生体認証登録数", "登録日時", "更新日時"])
        status_ja = {"pending": "登録待ち", "active": "有効", "suspended": "停止", "removed": "削除"}
        for o in ops:
            w.writerow([o.operator_id, o.display_name, o.department, "・".join(R.ROLES[r] for r in o.roles),
                        "・".join(o.registers), "・".join(o.affairs), status_ja.get(o.status, o.status),
                        "許可" if o.password_allowed else "不可", o.credential_count,
                        o.created_at.isoformat() if o.created_at else "", o.updated_at.isoformat() if o.updated_at else ""])
        with self.registers.admin_tx() as conn:
            self.oplog.append(conn, "admin", actor=actor, action="roster_export", result_count=len(ops))
        return "\ufeff" + out.getvalue()

    # ---- security training (G1; ADR 0034) ---------------------------------------------------------

    def _grace_until(self, row) -> Optional[datetime]:
        """End of the bootstrap administrator's grace, for the account registered by ``bootstrap``."""
        if row is None or row.created_by != "bootstrap" or "admin" not in R.split(row.roles):
            return None
        return utc(row.created_at) + timedelta(days=self.cfg.bootstrap_training_grace_days)

    def _trained(self, conn: Connection, operator_id: str, now: datetime) -> bool:
        """May this operator be activated / sign in now: a record of the current 年度 (or the grace)."""
        if not self.cfg.training_required:
            return True
        fy = TR.fiscal_year(TR.today_jst(now))
        if conn.execute(select(operator_trainings.c.training_id).where(
                operator_trainings.c.operator_id == operator_id, operator_trainings.c.fiscal_year == fy)
                .limit(1)).first() is not None:
            return True
        row = conn.execute(select(operators.c.created_by, operators.c.created_at, operators.c.roles)
                           .where(operators.c.operator_id == operator_id)).first()
        until = self._grace_until(row)
        return until is not None and now < until

    def _require_trained(self, operator_id: str, terminal_id: str | None, action: str, now: datetime) -> None:
        with self.registers.admin_tx(write=False) as conn:
            ok = self._trained(conn, operator_id, now)
        if not ok:
            raise self.refuse(Actor(operator_id, terminal_id), action, TR.TRAINING_REQUIRED)

    def record_training(self, actor: Actor, operator_id: str, *, course: str, taken_on, by: Operator | None = None,
                        now: datetime | None = None) -> int:
        """Record that ``operator_id`` attended ``course`` on ``taken_on`` (G1). ``by``: the recording
        operator (web: always; CLI: when ``--by`` is given), who must hold the ``training`` permission.
        Every refusal is coded, changes nothing and is logged."""
        now = now or now_utc()
        target = operator_id if _ID.match(operator_id or "") else None
        try:
            if by is not None and not by.can("training"):
                raise refused(FORBIDDEN)
            course = TR.check_course(course)
            day = TR.parse_taken_on(taken_on, today=TR.today_jst(now))
            with self.registers.admin_tx() as conn:
                op = self._operator(conn, target) if target else None
                if op is None or op.status == "removed":
                    raise JukinetError("OPERATOR_NOT_FOUND", "操作者が見つかりません。", field="operator_id")
                fy = TR.fiscal_year(day)
                tid = conn.execute(insert(operator_trainings).values(
                    operator_id=op.operator_id, course=course, taken_on=day, fiscal_year=fy, recorded_at=now,
                    recorded_by=actor.operator_id or "cli")).inserted_primary_key[0]
                self.oplog.append(conn, "admin", actor=actor, action="training_record", now=now,
                                  detail={"target": op.operator_id, "training_id": tid, "fiscal_year": fy,
                                          "taken_on": day.isoformat(), "course": course})
                return tid
        except JukinetError as e:
            self.log_refusal(actor, "training_record", e, detail={"target": target})
            raise

    def trainings(self, operator_id: str | None = None) -> list:
        """Training records, newest first (all operators, or one)."""
        t = operator_trainings
        q = select(t).order_by(t.c.taken_on.desc(), t.c.training_id.desc())
        if operator_id:
            q = q.where(t.c.operator_id == operator_id)
        with self.registers.admin_tx(write=False) as conn:
            return conn.execute(q).all()

    def training_status(self, now: datetime | None = None) -> dict[str, dict]:
        """Per operator: the current 年度, whether trained in it, the latest record, the grace if any."""
        now = now or now_utc()
        fy = TR.fiscal_year(TR.today_jst(now))
        t = operator_trainings
        with self.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(operators.c.operator_id, operators.c.created_by, operators.c.created_at,
                                       operators.c.roles)).all()
            recs = conn.execute(select(t).order_by(t.c.taken_on, t.c.training_id)).all()
        latest: dict = {}
        current: set = set()
        for r in recs:
            latest[r.operator_id] = r
            if r.fiscal_year == fy:
                current.add(r.operator_id)
        out = {}
        for r in rows:
            until = self._grace_until(r)
            grace = until if (r.operator_id not in current and until is not None and now < until) else None
            out[r.operator_id] = {"fiscal_year": fy, "fy_label": TR.fiscal_year_label(fy),
                                  "trained": r.operator_id in current, "latest": latest.get(r.operator_id),
                                  "grace_until": grace}
        return out

    # ---- terminals (ADR 0008) ------------------------------------------------------------------

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

    # ---- login (A1) ----------------------------------------------------------------------------

    def _check_can_login(self, conn: Connection, operator_id: str, now: datetime) -> Operator:
        op = self._operator(conn, operator_id) if operator_id else None
        if op is None or op.status != "active":
            raise refused(LOGIN_FAILED)
        if op.locked_until and op.locked_until > now:
            raise refused(LOGIN_LOCKED)
        return op

    def _login_failed(self, operator_id: str | None, terminal_id: str, err: Refused, action: str,
                      now: datetime) -> Refused:
        """Count a failure (lockout after ``max_failed_logins``) and log the refusal."""
        metrics.login_failed(err.code)   # A7 (ADR 0027)
        try:
            with self.registers.admin_tx() as conn:
                if operator_id and err.code == "LOGIN_FAILED":
                    row = conn.execute(select(operators.c.failed_logins).where(
                        operators.c.operator_id == operator_id)).first()
                    if row is not None:
                        n = row.failed_logins + 1
                        values = {"failed_logins": n}
                        if n >= self.cfg.max_failed_logins:
                            values.update(failed_logins=0,
                                          locked_until=now + timedelta(minutes=self.cfg.lockout_minutes))
                        conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(**values))
                        if "locked_until" in values:
                            self.oplog.append(conn, "admin", actor=Actor(operator_id, terminal_id),
                                              action="login_lockout", outcome="refused", now=now)
                self.oplog.append(conn, "admin", actor=Actor(operator_id or None, terminal_id), action=action,
                                  outcome="refused", now=now, detail={"code": err.code})
        except Exception:  # noqa: BLE001
            pass
        return err

    def _start_session(self, conn: Connection, op: Operator, terminal_id: str, method: str,
                       now: datetime, witness: Operator | None = None) -> LoginResult:
        if not self._trained(conn, op.operator_id, now):   # after authentication: nothing told to a guesser
            raise refused(TR.TRAINING_REQUIRED)
        if "maintenance" in op.roles and witness is None:   # G5: never alone (PIA II.4 委託事項2④)
            raise refused(MAINTENANCE_WITNESS_REQUIRED)
        token = secrets.token_urlsafe(32)
        row = dict(session_hash=sha256(token), operator_id=op.operator_id, terminal_id=terminal_id, method=method,
                   csrf_token=secrets.token_urlsafe(24), created_at=now, last_seen_at=now,
                   expires_at=now + timedelta(minutes=self.cfg.session_max_minutes),
                   witness_id=witness.operator_id if witness else None)
        conn.execute(insert(sessions).values(**row))
        conn.execute(update(operators).where(operators.c.operator_id == op.operator_id)
                     .values(failed_logins=0, locked_until=None))
        if witness is not None:
            conn.execute(update(operators).where(operators.c.operator_id == witness.operator_id)
                         .values(failed_logins=0, locked_until=None))
        self.oplog.append(conn, "admin", actor=Actor(op.operator_id, terminal_id, row["witness_id"]),
                          action="login", now=now, detail={"method": method})
        return LoginResult(token, Session(**row), op)

    def _new_challenge(self, conn: Connection, kind: str, operator_id: str, terminal_id: str, challenge: bytes,
                       now: datetime) -> str:
        cid = secrets.token_urlsafe(24)
        conn.execute(delete(auth_challenges).where(auth_challenges.c.expires_at < now))
        conn.execute(insert(auth_challenges).values(challenge_id=cid, kind=kind, operator_id=operator_id,
                                                    terminal_id=terminal_id, challenge=W.b64(challenge),
                                                    expires_at=now + timedelta(minutes=5)))
        return cid

    def _take_challenge(self, conn: Connection, cid: str, kind: str, terminal_id: str, now: datetime):
        row = conn.execute(select(auth_challenges).where(auth_challenges.c.challenge_id == (cid or ""))).first()
        if row is None:
            return None
        conn.execute(delete(auth_challenges).where(auth_challenges.c.challenge_id == cid))
        if row.kind != kind or row.terminal_id != terminal_id or utc(row.expires_at) < now:
            return None
        return row

    def enrollment_operator(self, token: str, *, now: datetime | None = None) -> Optional[Operator]:
        now = now or now_utc()
        with self.registers.admin_tx(write=False) as conn:
            row = conn.execute(select(operators).where(operators.c.enrollment_hash == sha256(token or ""))).first()
        if row is None or row.status in ("removed", "suspended") or utc(row.enrollment_expires) < now:
            return None
        return Operator.from_row(row)

    def registration_options(self, token: str, terminal_id: str, *, now: datetime | None = None) -> dict:
        """WebAuthn registration (enrollment) options for the operator of a valid enrollment link."""
        now = now or now_utc()
        op = self.enrollment_operator(token, now=now)
        if op is None:
            raise self.refuse(Actor(None, terminal_id), "enroll", Refused(
                "ENROLLMENT_INVALID", "登録用リンクが無効か期限切れです。システム管理者に再発行を依頼してください。"))
        self._require_trained(op.operator_id, terminal_id, "enroll", now)
        with self.registers.admin_tx() as conn:
            existing = [r.credential_id for r in conn.execute(select(webauthn_credentials.c.credential_id).where(
                webauthn_credentials.c.operator_id == op.operator_id))]
            options, challenge = W.registration_options(self.cfg, op.operator_id, op.display_name, existing)
            cid = self._new_challenge(conn, "register", op.operator_id, terminal_id, challenge, now)
        return {"challenge_id": cid, "publicKey": options}

    def registration_verify(self, token: str, terminal_id: str, challenge_id: str, credential: dict, *,
                            now: datetime | None = None) -> Operator:
        now = now or now_utc()
        op = self.enrollment_operator(token, now=now)
        actor = Actor(op.operator_id if op else None, terminal_id)
        with self.registers.admin_tx() as conn:
            ch = self._take_challenge(conn, challenge_id, "register", terminal_id, now)
        if op is None or ch is None or ch.operator_id != op.operator_id:
            raise self.refuse(actor, "enroll", Refused("ENROLLMENT_INVALID", "登録用リンクが無効か期限切れです。"))
        self._require_trained(op.operator_id, terminal_id, "enroll", now)
        try:
            v = W.verify_registration(self.cfg, self.origins, credential, ch.challenge)
        except W.CeremonyFailed:
            raise self.refuse(actor, "enroll", Refused("ENROLLMENT_FAILED", "生体認証の登録に失敗しました。", status=400))
        with self.registers.admin_tx() as conn:
            conn.execute(insert(webauthn_credentials).values(
                credential_id=W.b64(v.credential_id), operator_id=op.operator_id, public_key=v.credential_public_key,
                sign_count=v.sign_count, aaguid=str(v.aaguid), terminal_id=terminal_id, created_at=now))
            conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(
                enrollment_hash=None, enrollment_expires=None, updated_at=now,
                status="active" if op.status == "pending" else op.status))
            self.oplog.append(conn, "admin", actor=actor, action="enroll", now=now,
                              detail={"user_verified": bool(v.user_verified)})
            return self._operator(conn, op.operator_id)

    def login_options(self, operator_id: str, terminal_id: str, *, now: datetime | None = None) -> dict:
        now = now or now_utc()
        operator_id = (operator_id or "").strip()
        try:
            with self.registers.admin_tx() as conn:
                op = self._check_can_login(conn, operator_id, now)
                creds = [r.credential_id for r in conn.execute(select(webauthn_credentials.c.credential_id).where(
                    webauthn_credentials.c.operator_id == op.operator_id))]
                if not creds:
                    raise refused(LOGIN_FAILED)
                options, challenge = W.authentication_options(self.cfg, creds)
                cid = self._new_challenge(conn, "login", op.operator_id, terminal_id, challenge, now)
        except Refused as e:
            raise self._login_failed(operator_id if _ID.match(operator_id) else None, terminal_id, e,
                                     "login", now)
        return {"challenge_id": cid, "publicKey": options}

    def login_verify(self, terminal_id: str, challenge_id: str, credential: dict, *,
                     now: datetime | None = None) -> LoginResult:
        now = now or now_utc()
        with self.registers.admin_tx() as conn:
            ch = self._take_challenge(conn, challenge_id, "login", terminal_id, now)
        if ch is None:
            raise self._login_failed(None, terminal_id, refused(LOGIN_FAILED), "login", now)
        operator_id = ch.operator_id
        cred_id = str((credential or {}).get("id") or (credential or {}).get("rawId") or "")
        try:
            with self.registers.admin_tx() as conn:
                op = self._check_can_login(conn, operator_id, now)
                row = conn.execute(select(webauthn_credentials).where(
                    webauthn_credentials.c.credential_id == cred_id,
                    webauthn_credentials.c.operator_id == operator_id)).first()
                if row is None:
                    raise refused(LOGIN_FAILED)
                try:
                    v = W.verify_authentication(self.cfg, self.origins, credential, ch.challenge, row.public_key,
                                                row.sign_count)
                except W.CeremonyFailed:
                    raise refused(LOGIN_FAILED)
                conn.execute(update(webauthn_credentials).where(webauthn_credentials.c.credential_id == cred_id)
                             .values(sign_count=v.new_sign_count, last_used_at=now))
                return self._start_session(conn, op, terminal_id, "webauthn", now)
        except Refused as e:
            raise self._login_failed(operator_id, terminal_id, e, "login", now)

    def _verify_password(self, conn: Connection, operator_id: str, password: str, totp_code: str,
                         now: datetime) -> Operator:
        """Check an operator's password (argon2id) and TOTP on ``conn``; the TOTP step is used up."""
        op = self._check_can_login(conn, operator_id, now)
        row = conn.execute(select(operators.c.password_hash, operators.c.totp_secret_ct,
                                  operators.c.totp_secret_key, operators.c.totp_last_step).where(
            operators.c.operator_id == operator_id)).one()
        if not op.password_allowed or not row.password_hash or row.totp_secret_ct is None:
            raise refused(LOGIN_FAILED)
        try:
            _hasher.verify(row.password_hash, password or "")
        except (VerificationError, InvalidHashError):
            raise refused(LOGIN_FAILED)
        cipher = self._totp_cipher(conn)     # a missing key file stops here (ATREST_KEY_MISSING)
        try:
            secret = cipher.open(operator_id, row.totp_secret_ct, row.totp_secret_key)
        except JukinetError:     # moved from another operator's row, tampered, or a foreign key file
            raise refused(LOGIN_FAILED)
        totp = pyotp.TOTP(secret)
        step = None
        for offset in (0, -1, 1):
            t = now + timedelta(seconds=30 * offset)
            if secrets.compare_digest(totp.at(t), (totp_code or "").strip()):
                step = totp.timecode(t)
                break
        if step is None or (row.totp_last_step is not None and step <= row.totp_last_step):
            raise refused(LOGIN_FAILED)  # wrong code, or a code replayed
        conn.execute(update(operators).where(operators.c.operator_id == operator_id)
                     .values(totp_last_step=step))
        return op

    def password_login(self, operator_id: str, password: str, totp_code: str, terminal_id: str, *,
                       now: datetime | None = None) -> LoginResult:
        """Fallback (A1): password (argon2id) + TOTP, only for operators allowed it by the administrator."""
        now = now or now_utc()
        operator_id = (operator_id or "").strip()
        try:
            with self.registers.admin_tx() as conn:
                op = self._verify_password(conn, operator_id, password, totp_code, now)
                return self._start_session(conn, op, terminal_id, "password_totp", now)
        except Refused as e:
            raise self._login_failed(operator_id if _ID.match(operator_id) else None, terminal_id, e,
                                     "login_password", now)

    # ---- witnessed maintenance (G5, PIA II.4 委託事項2④; ADR 0041) ---------------------------------

    def _verify_webauthn(self, conn: Connection, terminal_id: str, ch, credential: dict, now: datetime) -> Operator:
        op = self._check_can_login(conn, ch.operator_id, now)
        cred_id = str((credential or {}).get("id") or (credential or {}).get("rawId") or "")
        row = conn.execute(select(webauthn_credentials).where(
            webauthn_credentials.c.credential_id == cred_id,
            webauthn_credentials.c.operator_id == ch.operator_id)).first()
        if row is None:
            raise refused(LOGIN_FAILED)
        try:
            v = W.verify_authentication(self.cfg, self.origins, credential, ch.challenge, row.public_key,
                                        row.sign_count)
        except W.CeremonyFailed:
            raise refused(LOGIN_FAILED)
        conn.execute(update(webauthn_credentials).where(webauthn_credentials.c.credential_id == cred_id)
                     .values(sign_count=v.new_sign_count, last_used_at=now))
        return op

    def _maintenance_party(self, conn: Connection, terminal_id: str, proof: dict, ch,
                           now: datetime) -> tuple[Operator, str]:
        """Authenticate one party of the witnessed sign-in: ``{"operator_id", "password", "totp"}`` (the
        password + one-time-password fallback) or ``{"challenge_id", "credential"}`` (WebAuthn, the
        challenge from :meth:`login_options`, already taken as ``ch``). Returns the operator and the method."""
        proof = proof if isinstance(proof, dict) else {}
        if proof.get("challenge_id"):
            if ch is None:
                raise refused(LOGIN_FAILED)
            return self._verify_webauthn(conn, terminal_id, ch, proof.get("credential") or {}, now), "webauthn"
        oid = str(proof.get("operator_id") or "").strip()
        return self._verify_password(conn, oid, str(proof.get("password") or ""), str(proof.get("totp") or ""),
                                     now), "password_totp"

    def _on_roster(self, conn: Connection, operator_id: str, now: datetime) -> bool:
        today = TR.today_jst(now)
        w = contractor_workers
        return conn.execute(select(w.c.worker_id).where(
            w.c.operator_id == operator_id, w.c.from_date <= today,
            (w.c.to_date.is_(None)) | (w.c.to_date >= today)).limit(1)).first() is not None

    @staticmethod
    def _claimed(proof) -> Optional[str]:
        oid = str((proof or {}).get("operator_id") or "").strip() if isinstance(proof, dict) else ""
        return oid if _ID.match(oid) else None

    def maintenance_login(self, terminal_id: str, contractor: dict, witness: dict, *,
                          now: datetime | None = None) -> LoginResult:
        """Open a 保守作業者's session at ``terminal_id`` only with a staff member co-authenticating in the
        same request (G5, PIA II.4 委託事項2④ 「職員が立ち会いの上」; ADR 0041).

        Both authenticate (WebAuthn or password + TOTP, each as in an ordinary sign-in, failures
        counted towards each one's lockout). Refused, coded and logged: the contractor is not a
        保守作業者 (``MAINTENANCE_ROLE_REQUIRED``) or not on the contractor's current worker roster
        (``MAINTENANCE_NOT_ON_ROSTER``); the witness is the same person (``MAINTENANCE_WITNESS_SAME``),
        not an active staff operator (``MAINTENANCE_WITNESS_NOT_STAFF``) or untrained (G1). The
        session carries the witness: every entry it writes names both (``detail.witness_id``), and
        the start is also written under the witness's own ID (``maintenance_witness``).
        """
        now = now or now_utc()
        chs = {}
        with self.registers.admin_tx() as conn:   # WebAuthn challenges are used up whatever follows
            for name, proof in (("contractor", contractor), ("witness", witness)):
                if isinstance(proof, dict) and proof.get("challenge_id"):
                    chs[name] = self._take_challenge(conn, str(proof["challenge_id"]), "login", terminal_id, now)
        claimed = {n: (chs[n].operator_id if chs.get(n) is not None else self._claimed(p))
                   for n, p in (("contractor", contractor), ("witness", witness))}
        who = claimed["contractor"]
        phase = "contractor"
        try:
            with self.registers.admin_tx() as conn:
                op, m1 = self._maintenance_party(conn, terminal_id, contractor, chs.get("contractor"), now)
                who = op.operator_id
                if "maintenance" not in op.roles:
                    raise refused(MAINTENANCE_ROLE_REQUIRED)
                if claimed["witness"] == op.operator_id:    # before the witness's proof is looked at
                    phase, who = "checks", op.operator_id
                    raise refused(MAINTENANCE_WITNESS_SAME)
                phase = "witness"
                who = claimed["witness"]
                wop, m2 = self._maintenance_party(conn, terminal_id, witness, chs.get("witness"), now)
                who = wop.operator_id
                phase = "checks"
                if wop.operator_id == op.operator_id:
                    raise refused(MAINTENANCE_WITNESS_SAME)
                if wop.status != "active" or set(wop.roles) & R.CONTRACTOR_ROLES:
                    raise refused(MAINTENANCE_WITNESS_NOT_STAFF)
                if not self._trained(conn, wop.operator_id, now):
                    raise refused(TR.TRAINING_REQUIRED)
                if not self._on_roster(conn, op.operator_id, now):
                    raise refused(MAINTENANCE_NOT_ON_ROSTER)
                short = {"password_totp": "pw", "webauthn": "wa"}    # sessions.method is String(20)
                res = self._start_session(conn, op, terminal_id, f"mnt:{short[m1]}+{short[m2]}", now, witness=wop)
                self.oplog.append(conn, "admin", actor=Actor(wop.operator_id, terminal_id), action="maintenance_witness",
                                  now=now, detail={"contractor_id": op.operator_id, "method": m2})
                return res
        except Refused as e:
            if phase == "checks":   # both authenticated: a refusal of the pairing, logged under both
                self.log_refusal(Actor(claimed["contractor"], terminal_id, who), "maintenance_login", e)
                raise e
            raise self._login_failed(who, terminal_id, e, "maintenance_login", now)

    def end_witness(self, token: str | None, terminal_id: str | None, *, now: datetime | None = None) -> None:
        """The witness leaves: the maintenance session ends at once (logged under both)."""
        now = now or now_utc()
        if not token:
            return
        with self.registers.admin_tx() as conn:
            row = conn.execute(select(sessions).where(sessions.c.session_hash == sha256(token))).first()
            if row is None or row.ended_at is not None or row.terminal_id != terminal_id or not row.witness_id:
                return
            conn.execute(update(sessions).where(sessions.c.session_hash == row.session_hash)
                         .values(ended_at=now, end_reason="witness_ended"))
            self.oplog.append(conn, "admin", actor=Actor(row.operator_id, terminal_id, row.witness_id),
                              action="maintenance_end", now=now)
            self.oplog.append(conn, "admin", actor=Actor(row.witness_id, terminal_id), action="maintenance_witness_end",
                              now=now, detail={"contractor_id": row.operator_id})

    def maintenance_sessions(self, *, since: datetime | None = None) -> list:
        """Witnessed maintenance sessions (newest first) for the screens and the monthly report."""
        q = select(sessions).where(sessions.c.witness_id.is_not(None)).order_by(sessions.c.created_at.desc())
        if since is not None:
            q = q.where(sessions.c.created_at >= since)
        with self.registers.admin_tx(write=False) as conn:
            return [Session.from_row(r) for r in conn.execute(q.limit(500))]

    # ---- sessions (A6) -------------------------------------------------------------------------

    def _end_sessions(self, conn: Connection, operator_id: str, now: datetime, reason: str) -> None:
        conn.execute(update(sessions).where(sessions.c.operator_id == operator_id, sessions.c.ended_at.is_(None))
                     .values(ended_at=now, end_reason=reason))

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


def as_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
