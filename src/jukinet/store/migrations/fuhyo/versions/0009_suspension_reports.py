"""fuhyo register: 利用停止請求 and 通報 to the municipality (事務3, O4, O5).

See store/tables_disclosure.py and ADR 0039.

Revision ID: fuhyo_0009
Revises: fuhyo_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "fuhyo_0009"
down_revision = "fuhyo_0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "suspension_requests",
        sa.Column("suspension_id", sa.String(24), primary_key=True),
        sa.Column("request_no", sa.String(32), nullable=False),
        sa.Column("juminhyo_code", sa.String(11), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grounds", sa.String(24), nullable=False),
        sa.Column("statement", sa.Text),
        sa.Column("copy_sheets", sa.Integer, nullable=False),
        sa.Column("copy_size", sa.String(2)),
        sa.Column("fee_yen", sa.Integer, nullable=False),
        sa.Column("status", sa.String(14), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("extended", sa.Integer, nullable=False),
        sa.Column("extension_reason", sa.String(20)),
        sa.Column("decision", sa.String(14)),
        sa.Column("decision_reason", sa.String(24)),
        sa.Column("decided_by", sa.String(32)),
        sa.Column("decided_at", _TS),
        sa.Column("assignee", sa.String(32)),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_fuhyo_suspension_requests_status", "suspension_requests", ["status", "due_date"])
    op.create_table(
        "suspension_steps",
        sa.Column("step_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("suspension_id", sa.String(24), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("from_status", sa.String(14)),
        sa.Column("to_status", sa.String(14), nullable=False),
        sa.Column("note_code", sa.String(24)),
        sa.Column("oplog_seq", sa.BigInteger),
    )
    op.create_index("ix_fuhyo_suspension_steps_suspension", "suspension_steps", ["suspension_id", "at"])
    op.create_table(
        "municipal_reports",
        sa.Column("report_id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("case_id", sa.String(24), nullable=False),
        sa.Column("request_no", sa.String(32), nullable=False),
        sa.Column("juminhyo_code", sa.String(11), nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("items", sa.String(200), nullable=False),
        sa.Column("state", sa.String(14), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("last_sent_at", _TS),
        sa.Column("acknowledged_at", _TS),
        sa.Column("form_serial", sa.String(24)),
    )
    op.create_index("ix_fuhyo_municipal_reports_state", "municipal_reports",
                    ["municipality_code", "state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_fuhyo_municipal_reports_state", table_name="municipal_reports")
    op.drop_table("municipal_reports")
    op.drop_index("ix_fuhyo_suspension_steps_suspension", table_name="suspension_steps")
    op.drop_table("suspension_steps")
    op.drop_index("ix_fuhyo_suspension_requests_status", table_name="suspension_requests")
    op.drop_table("suspension_requests")
