"""Witnessed maintenance (G5, PIA II.4 委託事項2④; ADR 0041): a 保守作業者 signs in only with a staff
member co-authenticating in the same request, and only while on the contractor's worker roster; the
witness leaving ends the session. Built on the sign-in checks of :mod:`jukinet.security.signin`."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from jukinet.security import roles as R
from jukinet.security import training as TR
from jukinet.security.base import _ID, LoginResult, now_utc, sha256
from jukinet.security.model import (LOGIN_FAILED, MAINTENANCE_NOT_ON_ROSTER, MAINTENANCE_ROLE_REQUIRED,
                                    MAINTENANCE_WITNESS_NOT_STAFF, MAINTENANCE_WITNESS_SAME, Operator, Refused,
                                    Session, refused)
from jukinet.security.oplog import Actor
from jukinet.security.signin import SignIn
from jukinet.store.tables_governance import contractor_workers
from jukinet.store.tables_security import sessions


class Maintenance(SignIn):
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

