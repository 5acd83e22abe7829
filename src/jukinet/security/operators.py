"""The operator roster (A2): register, change, suspend or remove an operator, enrollment links, the
password + TOTP fallback, the recovery of a システム管理者 and the roster export. Activation waits for
the operator's security training (:mod:`jukinet.security.training_records`)."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime, timedelta
from typing import Optional

import pyotp
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.security import roles as R
from jukinet.security import training as TR
from jukinet.security.base import _ID, PasswordGrant, _hasher, now_utc, sha256
from jukinet.security.model import Operator, refused
from jukinet.security.oplog import Actor
from jukinet.security.training_records import TrainingRecords
from jukinet.store.tables_security import operators, webauthn_credentials


class Operators(TrainingRecords):
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

