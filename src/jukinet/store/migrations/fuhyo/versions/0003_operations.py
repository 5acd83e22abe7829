"""fuhyo register: operation log (操作ログ) of the operator side — hash chain and its anchor (A4).

Revision ID: fuhyo_0003
Revises: fuhyo_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "fuhyo_0003"
down_revision = "fuhyo_0002"
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
    op.create_index("ix_fuhyo_oplog_at", "oplog", ["at"])
    op.create_index("ix_fuhyo_oplog_operator", "oplog", ["operator_id", "at"])
    op.create_table(
        "oplog_head",
        sa.Column("chain", sa.String(16), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("oplog_head")
    op.drop_index("ix_fuhyo_oplog_operator", table_name="oplog")
    op.drop_index("ix_fuhyo_oplog_at", table_name="oplog")
    op.drop_table("oplog")
