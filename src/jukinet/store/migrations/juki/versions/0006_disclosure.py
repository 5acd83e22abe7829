"""juki register: disclosure requests and correction requests (事務3, O1, O2).

See store/tables_disclosure.py and ADR 0019.

Revision ID: juki_0006
Revises: juki_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "juki_0006"
down_revision = "juki_0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "disclosure_requests",
        sa.Column("request_no", sa.String(32), primary_key=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("match_result", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("juminhyo_code", sa.String(11)),
        sa.Column("decision", sa.String(10)),
        sa.Column("decision_reason", sa.String(20)),
        sa.Column("decided_by", sa.String(32)),
        sa.Column("decided_at", _TS),
        sa.Column("oplog_seq", sa.BigInteger),
    )
    op.create_index("ix_juki_disclosure_requests_received", "disclosure_requests", ["received_at"])
    op.create_table(
        "correction_requests",
        sa.Column("correction_id", sa.String(24), primary_key=True),
        sa.Column("request_no", sa.String(32), nullable=False),
        sa.Column("juminhyo_code", sa.String(11), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("items", sa.String(200), nullable=False),
        sa.Column("statement", sa.Text),
        sa.Column("status", sa.String(14), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("assignee", sa.String(32)),
        sa.Column("municipality_code", sa.String(6)),
        sa.Column("result", sa.String(14)),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_juki_correction_requests_status", "correction_requests", ["status", "due_date"])
    op.create_table(
        "correction_steps",
        sa.Column("step_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("correction_id", sa.String(24), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("from_status", sa.String(14)),
        sa.Column("to_status", sa.String(14), nullable=False),
        sa.Column("note_code", sa.String(20)),
        sa.Column("oplog_seq", sa.BigInteger),
    )
    op.create_index("ix_juki_correction_steps_correction", "correction_steps", ["correction_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_juki_correction_steps_correction", table_name="correction_steps")
    op.drop_table("correction_steps")
    op.drop_index("ix_juki_correction_requests_status", table_name="correction_requests")
    op.drop_table("correction_requests")
    op.drop_index("ix_juki_disclosure_requests_received", table_name="disclosure_requests")
    op.drop_table("disclosure_requests")
