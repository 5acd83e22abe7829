"""fuhyo register: intake, outbox and communication log (事務1).

Revision ID: fuhyo_0002
Revises: fuhyo_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "fuhyo_0002"
down_revision = "fuhyo_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_notifications",
        sa.Column("sender_code", sa.String(6), primary_key=True),
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("update_seq", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("update_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("message_id", sa.String(80), nullable=False, unique=True),
        sa.Column("juminhyo_code", sa.String(11), nullable=False),
        sa.Column("prior_code", sa.String(11)),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_outbox_state_seq", "outbox", ["state", "update_seq"])
    op.create_table(
        "comm_log",
        sa.Column("log_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("peer", sa.String(40), nullable=False),
        sa.Column("peer_cert_sha256", sa.String(64)),
        sa.Column("message_id", sa.String(80)),
        sa.Column("digest", sa.String(64)),
        sa.Column("envelope_digest", sa.String(64)),
        sa.Column("size", sa.Integer),
        sa.Column("result", sa.String(12), nullable=False),
        sa.Column("code", sa.String(40)),
    )
    op.create_index("ix_comm_log_at", "comm_log", ["at"])
    op.create_index("ix_comm_log_message", "comm_log", ["peer", "message_id"])
    # the 更新順番号 counter row exists from here on: intake locks it (SELECT … FOR UPDATE on
    # PostgreSQL) to serialise writers, and a refused notification must not be the one creating it
    op.execute("INSERT INTO counters (name, value) SELECT 'update_seq', 0 "
               "WHERE NOT EXISTS (SELECT 1 FROM counters WHERE name = 'update_seq')")


def downgrade() -> None:
    op.drop_index("ix_comm_log_message", "comm_log")
    op.drop_index("ix_comm_log_at", "comm_log")
    op.drop_table("comm_log")
    op.drop_index("ix_outbox_state_seq", "outbox")
    op.drop_table("outbox")
    op.drop_table("intake_notifications")
