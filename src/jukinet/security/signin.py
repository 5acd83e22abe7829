"""Sign-in (A1): WebAuthn enrollment and sign-in, the password + TOTP fallback, failures counted towards
the lockout, and the start of a session (only for a trained operator; a 保守作業者 never alone).
The witnessed sign-in of a 保守作業者 builds on these checks (:mod:`jukinet.security.maintenance`)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Optional

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.observability import metrics
from jukinet.security import training as TR
from jukinet.security import webauthn as W
from jukinet.security.base import _ID, LoginResult, _hasher, now_utc, sha256
from jukinet.security.model import (LOGIN_FAILED, LOGIN_LOCKED, MAINTENANCE_WITNESS_REQUIRED, Operator, Refused,
                                    Session, refused, utc)
from jukinet.security.oplog import Actor
from jukinet.security.training_records import TrainingRecords
from jukinet.store.tables_security import auth_challenges, operators, sessions, webauthn_credentials


class SignIn(TrainingRecords):
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
        try:
            with self.registers.admin_tx() as conn:
                op = self._verify_webauthn(conn, terminal_id, ch, credential, now)
                return self._start_session(conn, op, terminal_id, "webauthn", now)
        except Refused as e:
            raise self._login_failed(ch.operator_id, terminal_id, e, "login", now)

    def _verify_webauthn(self, conn: Connection, terminal_id: str, ch, credential: dict, now: datetime) -> Operator:
        """Check a WebAuthn assertion against the challenge ``ch`` (already taken) on ``conn``; the
        credential's signature counter moves on."""
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
