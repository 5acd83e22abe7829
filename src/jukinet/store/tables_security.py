"""Tables of the operator side (A1–A4, A6).

* In **each register database** (``juki``, ``fuhyo``): the operation log (操作ログ) of accesses to
  that register — ``oplog`` (one hash-chained entry per access or refusal, written in the same
  transaction as the access) and ``oplog_head`` (the chain's anchor: last seq and hash, MACed, so
  that a truncated tail is detected). Created by migration ``*_0003``.
* In the **admin database**: operators (roster), their WebAuthn credentials, the registered
  terminals (操作端末), sessions, pending WebAuthn challenges, and the admin chain of the operation
  log (logins, roster changes, refusals not tied to a register). Created by ``admin_0001``.

No table here holds 本人確認情報: search keys are logged as keyed digests (HMAC), never as values
(ADR 0009).
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, LargeBinary,
                        MetaData, SmallInteger, String, Table, Text)

from jukinet.store.tables import admin_metadata, fuhyo_metadata, juki_metadata


def _oplog_tables(metadata: MetaData) -> tuple[Table, Table]:
    log = Table(
        "oplog", metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("operator_id", String(32)),
        Column("terminal_id", String(32)),
        Column("action", String(40), nullable=False),
        Column("outcome", String(10), nullable=False),
        Column("purpose_code", String(20)),
        Column("case_ref", String(40)),
        Column("keys", Text, nullable=False),
        Column("result_count", Integer),
        Column("detail", Text, nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("entry_hash", String(64), nullable=False),
        Index(f"ix_{_name(metadata)}_oplog_at", "at"),
        Index(f"ix_{_name(metadata)}_oplog_operator", "operator_id", "at"),
    )
    head = Table(
        "oplog_head", metadata,
        Column("chain", String(16), primary_key=True),
        Column("seq", BigInteger, nullable=False),
        Column("entry_hash", String(64), nullable=False),
        Column("mac", String(64), nullable=False),
    )
    return log, head


def _name(metadata: MetaData) -> str:
    return {id(juki_metadata): "juki", id(fuhyo_metadata): "fuhyo", id(admin_metadata): "admin"}[id(metadata)]


juki_oplog, juki_oplog_head = _oplog_tables(juki_metadata)
fuhyo_oplog, fuhyo_oplog_head = _oplog_tables(fuhyo_metadata)
admin_oplog, admin_oplog_head = _oplog_tables(admin_metadata)

OPLOG = {"juki": (juki_oplog, juki_oplog_head), "fuhyo": (fuhyo_oplog, fuhyo_oplog_head),
         "admin": (admin_oplog, admin_oplog_head)}

#: 操作者 (operators): the roster (A2). roles/registers/affairs are comma-separated codes from
#: jukinet.security.roles; credentials are in their own tables.
operators = Table(
    "operators", admin_metadata,
    Column("operator_id", String(32), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("roles", String(200), nullable=False),
    Column("registers", String(40), nullable=False),
    Column("affairs", String(200), nullable=False),
    Column("status", String(12), nullable=False),            # pending | active | suspended | removed
    Column("password_allowed", Boolean, nullable=False),
    Column("password_hash", Text),                           # argon2id
    Column("totp_secret_ct", LargeBinary),                  # sealed (AES-256-GCM, AAD operator_id; ADR 0029)
    Column("totp_secret_key", SmallInteger),                 # its key id in DIR/keys/totp.json
    Column("totp_last_step", BigInteger),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("enrollment_hash", String(64)),
    Column("enrollment_expires", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(32)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True)),
    Index("ix_operators_enrollment", "enrollment_hash"),
)

#: WebAuthn public-key credentials (the terminal's fingerprint reader as platform authenticator).
webauthn_credentials = Table(
    "webauthn_credentials", admin_metadata,
    Column("credential_id", String(200), primary_key=True),     # base64url
    Column("operator_id", String(32), ForeignKey("operators.operator_id"), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("aaguid", String(40)),
    Column("terminal_id", String(32)),                          # where it was enrolled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Index("ix_webauthn_credentials_operator", "operator_id"),
)

#: 操作端末: terminals registered by the system administrator; a browser becomes the terminal by
#: redeeming a one-time activation code, which sets a terminal cookie (ADR 0008).
terminals = Table(
    "terminals", admin_metadata,
    Column("terminal_id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", String(12), nullable=False),              # pending | active | revoked
    Column("secret_hash", String(64)),
    Column("activation_hash", String(64)),
    Column("activation_expires", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(32)),
    Column("activated_at", DateTime(timezone=True)),
    Index("ix_terminals_activation", "activation_hash"),
)

#: sessions: bound to one operator and one terminal; idle and absolute limits (A6).
sessions = Table(
    "sessions", admin_metadata,
    Column("session_hash", String(64), primary_key=True),       # sha256 of the token
    Column("operator_id", String(32), ForeignKey("operators.operator_id"), nullable=False),
    Column("terminal_id", String(32), ForeignKey("terminals.terminal_id"), nullable=False),
    Column("method", String(20), nullable=False),               # webauthn | password_totp
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(20)),
    #: witnessed maintenance (G5, PIA II.4 委託事項2④; ADR 0041): the staff member who co-authenticated
    #: the 保守作業者's session; every entry of the session names them too (admin_0007)
    Column("witness_id", String(32)),
    Index("ix_sessions_operator", "operator_id"),
)

#: WebAuthn challenges in flight (one use, short-lived).
auth_challenges = Table(
    "auth_challenges", admin_metadata,
    Column("challenge_id", String(64), primary_key=True),
    Column("kind", String(12), nullable=False),                 # register | login
    Column("operator_id", String(32), nullable=False),
    Column("terminal_id", String(32), nullable=False),
    Column("challenge", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

#: 研修 (security training, G1; PIA IV.2 「受講しないと端末の操作者となれない」; ADR 0034): one row per
#: course an operator attended. ``fiscal_year`` is the Japanese fiscal year (年度, April–March) of
#: ``taken_on``; the gate asks for a row of the current 年度. Created by ``admin_0006``.
operator_trainings = Table(
    "operator_trainings", admin_metadata,
    Column("training_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("operator_id", String(32), ForeignKey("operators.operator_id"), nullable=False),
    Column("course", Text, nullable=False),
    Column("taken_on", Date, nullable=False),
    Column("fiscal_year", Integer, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    Index("ix_operator_trainings_operator", "operator_id", "fiscal_year"),
)

#: the action taken on a flagged improper operation of the monthly analysis (G1, A4): 指導・再教育,
#: 利用停止, 担当解除 — linked to the report month and the flag number the auditor sees.
improper_actions = Table(
    "improper_actions", admin_metadata,
    Column("action_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),
    Column("report_id", BigInteger, nullable=False),
    Column("flag_no", Integer, nullable=False),
    Column("operator_id", String(32), nullable=False),
    Column("kind", String(20), nullable=False),               # guidance | suspend | remove_duty
    Column("taken_on", Date, nullable=False),
    Column("note", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    Index("ix_improper_actions_month", "month", "flag_no"),
    Index("ix_improper_actions_operator", "operator_id"),
)
