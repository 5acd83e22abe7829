"""admin database: monthly access-log analysis and its sign-off (A4), operator address prefixes
for flag (d), and the annual roster inventory (A2).

No 本人確認情報 (ADR 0004). See store/tables_audit.py and ADR 0022, 0023.

Revision ID: admin_0004
Revises: admin_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0004"
down_revision = "admin_0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_reports",
        sa.Column("report_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("csv_sha256", sa.String(64), nullable=False),
        sa.Column("flag_count", sa.Integer, nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("generated_at", _TS, nullable=False),
        sa.Column("generated_by", sa.String(32)),
    )
    op.create_index("ix_audit_reports_month", "audit_reports", ["month", "report_id"])
    op.create_table(
        "audit_signoffs",
        sa.Column("signoff_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.BigInteger, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("signed_at", _TS, nullable=False),
        sa.Column("signed_by", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("flag_notes", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_signoffs_month", "audit_signoffs", ["month", "signoff_id"])
    op.create_table(
        "audit_watch",
        sa.Column("operator_id", sa.String(32), primary_key=True),
        sa.Column("address_prefix", sa.Text, nullable=False),
        sa.Column("set_at", _TS, nullable=False),
        sa.Column("set_by", sa.String(32)),
    )
    op.create_table(
        "roster_inventories",
        sa.Column("inventory_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("confirmed_at", _TS, nullable=False),
        sa.Column("confirmed_by", sa.String(32), nullable=False),
        sa.Column("period_from", _TS, nullable=False),
        sa.Column("period_to", _TS, nullable=False),
        sa.Column("operator_count", sa.Integer, nullable=False),
        sa.Column("finding_count", sa.Integer, nullable=False),
        sa.Column("findings_sha256", sa.String(64), nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
    )
    op.create_index("ix_roster_inventories_confirmed", "roster_inventories", ["confirmed_at"])


def downgrade() -> None:
    op.drop_index("ix_roster_inventories_confirmed", table_name="roster_inventories")
    op.drop_table("roster_inventories")
    op.drop_table("audit_watch")
    op.drop_index("ix_audit_signoffs_month", table_name="audit_signoffs")
    op.drop_table("audit_signoffs")
    op.drop_index("ix_audit_reports_month", table_name="audit_reports")
    op.drop_table("audit_reports")
