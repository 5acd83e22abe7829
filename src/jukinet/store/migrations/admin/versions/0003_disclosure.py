"""admin database: the form register (帳票管理簿, A5) and the inquiry log (A10).

No 本人確認情報 (ADR 0004). See store/tables_disclosure.py and ADR 0019.

Revision ID: admin_0003
Revises: admin_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0003"
down_revision = "admin_0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "form_register",
        sa.Column("form_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(24), nullable=False, unique=True),
        sa.Column("form_type", sa.String(20), nullable=False),
        sa.Column("register", sa.String(5), nullable=False),
        sa.Column("request_no", sa.String(32)),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("printed_at", _TS, nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("copies", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer),
        sa.Column("sha256", sa.String(64)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("disposed_at", _TS),
        sa.Column("disposed_by", sa.String(32)),
        sa.Column("disposal_method", sa.String(20)),
    )
    op.create_index("ix_form_register_printed", "form_register", ["printed_at"])
    op.create_table(
        "inquiries",
        sa.Column("inquiry_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("handling", sa.Text),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("handled_by", sa.String(32)),
        sa.Column("closed_at", _TS),
    )
    op.create_index("ix_inquiries_received", "inquiries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inquiries_received", table_name="inquiries")
    op.drop_table("inquiries")
    op.drop_index("ix_form_register_printed", table_name="form_register")
    op.drop_table("form_register")
