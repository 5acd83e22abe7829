"""admin database: the media register (媒体管理簿) with movements, weekly checks and the manager's
approvals (G2), and the virus checks of media (G3; PIA III.4, III.5, III.7; ADR 0040). No
本人確認情報 (ADR 0004).

Revision ID: admin_0008
Revises: admin_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0008"
down_revision = "admin_0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "media_items",
        sa.Column("media_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("medium", sa.String(12), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("custodian", sa.String(32), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("backup_id", sa.String(40)),
        sa.Column("requester_code", sa.String(20)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("registered_by", sa.String(32), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_media_items_status", "media_items", ["status", "kind"])
    op.create_index("ix_media_items_backup", "media_items", ["backup_id"])
    op.create_table(
        "media_movements",
        sa.Column("movement_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("media_id", sa.String(32), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("from_location", sa.String(100)),
        sa.Column("to_location", sa.String(100)),
        sa.Column("counterpart", sa.String(100)),
        sa.Column("approval_id", sa.String(24)),
        sa.Column("method", sa.String(20)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_media_movements_media", "media_movements", ["media_id", "at"])
    op.create_index("ix_media_movements_at", "media_movements", ["at"])
    op.create_table(
        "media_checks",
        sa.Column("check_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("checked_at", _TS, nullable=False),
        sa.Column("checked_by", sa.String(32), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("expected", sa.Integer, nullable=False),
        sa.Column("found", sa.Integer, nullable=False),
        sa.Column("discrepancy_count", sa.Integer, nullable=False),
        sa.Column("discrepancies", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_media_checks_at", "media_checks", ["checked_at"])
    op.create_table(
        "media_approvals",
        sa.Column("approval_id", sa.String(24), primary_key=True),
        sa.Column("target_kind", sa.String(8), nullable=False),
        sa.Column("target_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approved_by", sa.String(32), nullable=False),
        sa.Column("approved_at", _TS, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("used_at", _TS),
    )
    op.create_index("ix_media_approvals_target", "media_approvals", ["target_kind", "target_id"])
    op.create_table(
        "media_scans",
        sa.Column("scan_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(32)),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("media_id", sa.String(32)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("engine", sa.String(12), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("signature", sa.String(120)),
        sa.Column("code", sa.String(40)),
    )
    op.create_index("ix_media_scans_at", "media_scans", ["at"])


def downgrade() -> None:
    op.drop_index("ix_media_scans_at", table_name="media_scans")
    op.drop_table("media_scans")
    op.drop_index("ix_media_approvals_target", table_name="media_approvals")
    op.drop_table("media_approvals")
    op.drop_index("ix_media_checks_at", table_name="media_checks")
    op.drop_table("media_checks")
    op.drop_index("ix_media_movements_at", table_name="media_movements")
    op.drop_index("ix_media_movements_media", table_name="media_movements")
    op.drop_table("media_movements")
    op.drop_index("ix_media_items_backup", table_name="media_items")
    op.drop_index("ix_media_items_status", table_name="media_items")
    op.drop_table("media_items")
