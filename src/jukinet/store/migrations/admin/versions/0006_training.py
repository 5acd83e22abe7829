"""admin database: security training records (研修) and the actions taken on flagged improper
operations (G1; PIA IV.2; ADR 0034). No 本人確認情報 (ADR 0004).

Revision ID: admin_0006
Revises: admin_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0006"
down_revision = "admin_0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operator_trainings",
        sa.Column("training_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("operator_id", sa.String(32), sa.ForeignKey("operators.operator_id"), nullable=False),
        sa.Column("course", sa.Text, nullable=False),
        sa.Column("taken_on", sa.Date, nullable=False),
        sa.Column("fiscal_year", sa.Integer, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
    )
    op.create_index("ix_operator_trainings_operator", "operator_trainings", ["operator_id", "fiscal_year"])
    op.create_table(
        "improper_actions",
        sa.Column("action_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("report_id", sa.BigInteger, nullable=False),
        sa.Column("flag_no", sa.Integer, nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("taken_on", sa.Date, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
    )
    op.create_index("ix_improper_actions_month", "improper_actions", ["month", "flag_no"])
    op.create_index("ix_improper_actions_operator", "improper_actions", ["operator_id"])


def downgrade() -> None:
    op.drop_index("ix_improper_actions_operator", table_name="improper_actions")
    op.drop_index("ix_improper_actions_month", table_name="improper_actions")
    op.drop_table("improper_actions")
    op.drop_index("ix_operator_trainings_operator", table_name="operator_trainings")
    op.drop_table("operator_trainings")
