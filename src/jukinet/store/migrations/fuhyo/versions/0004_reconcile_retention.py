"""fuhyo register: consistency-check results (整合性確認, C1), retention runs (A8), and the indexes
the consistency check, retention and statistics (A9) read through (see store/tables_reconcile.py).

Revision ID: fuhyo_0004
Revises: fuhyo_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "fuhyo_0004"
down_revision = "fuhyo_0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "reconcile_runs",
        sa.Column("run_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("register", sa.String(5), nullable=False),
        sa.Column("trigger", sa.String(12), nullable=False),
        sa.Column("snapshot_id", sa.String(64)),
        sa.Column("as_of", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error_code", sa.String(40)),
        sa.Column("error_message", sa.Text),
        sa.Column("error_line", sa.BigInteger),
        sa.Column("snapshot_count", sa.BigInteger, nullable=False),
        sa.Column("server_count", sa.BigInteger, nullable=False),
        sa.Column("matched_count", sa.BigInteger, nullable=False),
        sa.Column("only_in_snapshot_count", sa.BigInteger, nullable=False),
        sa.Column("only_on_server_count", sa.BigInteger, nullable=False),
        sa.Column("differs_count", sa.BigInteger, nullable=False),
        sa.Column("pending_count", sa.BigInteger, nullable=False),
        sa.Column("item_counts", sa.Text, nullable=False),
        sa.Column("snapshot_sha256", sa.String(64)),
        sa.Column("details_erased_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_fuhyo_reconcile_runs_municipality", "reconcile_runs", ["municipality_code", "started_at"])
    op.create_index("ix_fuhyo_reconcile_runs_started", "reconcile_runs", ["started_at"])
    op.create_table(
        "reconcile_differences",
        sa.Column("run_id", _ID, sa.ForeignKey("reconcile_runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("juminhyo_code", sa.String(11), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("items", sa.String(400)),
    )
    op.create_table(
        "retention_runs",
        sa.Column("run_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("today", sa.Date, nullable=False),
        sa.Column("cutoff", sa.String(40), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("eligible_count", sa.BigInteger, nullable=False),
        sa.Column("erased_count", sa.BigInteger, nullable=False),
        sa.Column("by_year", sa.Text, nullable=False),
        sa.Column("error_code", sa.String(40)),
    )
    op.create_index("ix_fuhyo_retention_runs_started", "retention_runs", ["started_at"])
    op.create_index("ix_fuhyo_current_municipality", "fuhyo_current", ["fuhyo_municipality_code", "status", "juminhyo_code"])
    op.create_index("ix_fuhyo_current_stats", "fuhyo_current", ["notified_date", "fuhyo_municipality_code", "reason"])
    op.create_index("ix_fuhyo_history_stats", "fuhyo_history", ["notified_date", "fuhyo_municipality_code", "reason"])


def downgrade() -> None:
    op.drop_index("ix_fuhyo_history_stats", table_name="fuhyo_history")
    op.drop_index("ix_fuhyo_current_stats", table_name="fuhyo_current")
    op.drop_index("ix_fuhyo_current_municipality", table_name="fuhyo_current")
    op.drop_index("ix_fuhyo_retention_runs_started", table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_table("reconcile_differences")
    op.drop_index("ix_fuhyo_reconcile_runs_started", table_name="reconcile_runs")
    op.drop_index("ix_fuhyo_reconcile_runs_municipality", table_name="reconcile_runs")
    op.drop_table("reconcile_runs")

