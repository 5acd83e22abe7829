"""admin database: operators (roster), WebAuthn credentials, terminals, sessions, challenges and the
admin chain of the operation log (ADR 0004, 0008–0010). No 本人確認情報.

Revision ID: admin_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oplog",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator_id", sa.String(32)),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("purpose_code", sa.String(20)),
        sa.Column("case_ref", sa.String(40)),
        sa.Column("keys", sa.Text, nullable=False),
        sa.Column("result_count", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_admin_oplog_at", "oplog", ["at"])
    op.create_index("ix_admin_oplog_operator", "oplog", ["operator_id", "at"])
    op.create_table(
        "oplog_head",
        sa.Column("chain", sa.String(16), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    op.create_table(
        "operators",
        sa.Column("operator_id", sa.String(32), primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("department", sa.Text, nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("registers", sa.String(40), nullable=False),
        sa.Column("affairs", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("password_allowed", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("totp_last_step", sa.BigInteger),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("enrollment_hash", sa.String(64)),
        sa.Column("enrollment_expires", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(32)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_operators_enrollment", "operators", ["enrollment_hash"])
    op.create_table(
        "webauthn_credentials",
        sa.Column("credential_id", sa.String(200), primary_key=True),
        sa.Column("operator_id", sa.String(32), sa.ForeignKey("operators.operator_id"), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("aaguid", sa.String(40)),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_webauthn_credentials_operator", "webauthn_credentials", ["operator_id"])
    op.create_table(
        "terminals",
        sa.Column("terminal_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("secret_hash", sa.String(64)),
        sa.Column("activation_hash", sa.String(64)),
        sa.Column("activation_expires", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(32)),
        sa.Column("activated_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_terminals_activation", "terminals", ["activation_hash"])
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("operator_id", sa.String(32), sa.ForeignKey("operators.operator_id"), nullable=False),
        sa.Column("terminal_id", sa.String(32), sa.ForeignKey("terminals.terminal_id"), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(20)),
    )
    op.create_index("ix_sessions_operator", "sessions", ["operator_id"])
    op.create_table(
        "auth_challenges",
        sa.Column("challenge_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(32), nullable=False),
        sa.Column("challenge", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_challenges")
    op.drop_table("sessions")
    op.drop_table("terminals")
    op.drop_table("webauthn_credentials")
    op.drop_table("operators")
    op.drop_table("oplog_head")
    op.drop_table("oplog")
