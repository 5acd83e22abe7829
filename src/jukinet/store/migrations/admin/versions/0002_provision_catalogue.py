"""admin database: requesters and affairs catalogue, batch-provision media register (事務2).

Requesters (提供先・移転先), affairs (事務, with legal basis, register, items, 個人番号 allowed),
grants, the change history of the catalogue, managers' prior approvals of large batches (A5) and
the media register (媒体管理簿). No 本人確認情報 (ADR 0004). See store/tables_provision.py.

Revision ID: admin_0002
Revises: admin_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0002"
down_revision = "admin_0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provision_requesters",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(32)),
    )
    op.create_table(
        "provision_affairs",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("register", sa.String(5), nullable=False),
        sa.Column("items", sa.String(400), nullable=False),
        sa.Column("kojin_bango_allowed", sa.Boolean, nullable=False),
        sa.Column("kojin_bango_basis", sa.Text),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(32)),
    )
    op.create_table(
        "provision_grants",
        sa.Column("requester_code", sa.String(20), sa.ForeignKey("provision_requesters.code"), primary_key=True),
        sa.Column("affair_code", sa.String(40), sa.ForeignKey("provision_affairs.code"), primary_key=True),
        sa.Column("granted_at", _TS, nullable=False),
        sa.Column("granted_by", sa.String(32)),
    )
    op.create_index("ix_provision_grants_affair", "provision_grants", ["affair_code"])
    op.create_table(
        "provision_catalogue_changes",
        sa.Column("change_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("operator_id", sa.String(32)),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column("source_sha256", sa.String(64)),
        sa.Column("entity", sa.String(10), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("action", sa.String(12), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )
    op.create_index("ix_provision_catalogue_changes_at", "provision_catalogue_changes", ["at"])
    op.create_table(
        "provision_approvals",
        sa.Column("approval_id", sa.String(24), primary_key=True),
        sa.Column("requester_code", sa.String(20), nullable=False),
        sa.Column("affair_code", sa.String(40), nullable=False),
        sa.Column("register", sa.String(5), nullable=False),
        sa.Column("max_rows", sa.Integer, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("decided_by", sa.String(32)),
        sa.Column("decided_at", _TS),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS),
        sa.Column("media_id", sa.String(32)),
    )
    op.create_index("ix_provision_approvals_status", "provision_approvals", ["status", "requested_at"])
    op.create_table(
        "provision_media",
        sa.Column("media_id", sa.String(32), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
        sa.Column("operator_id", sa.String(32)),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("requester_code", sa.String(20), nullable=False),
        sa.Column("affair_code", sa.String(40), nullable=False),
        sa.Column("register", sa.String(5), nullable=False),
        sa.Column("approval_id", sa.String(24)),
        sa.Column("purpose", sa.Text),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error_code", sa.String(40)),
        sa.Column("input_encoding", sa.String(10)),
        sa.Column("input_sha256", sa.String(64)),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("rows_provided", sa.Integer, nullable=False),
        sa.Column("rows_not_found", sa.Integer, nullable=False),
        sa.Column("rows_ambiguous", sa.Integer, nullable=False),
        sa.Column("rows_error", sa.Integer, nullable=False),
        sa.Column("rows_national", sa.Integer, nullable=False),
        sa.Column("container", sa.String(24), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("downloads", sa.Integer, nullable=False),
        sa.Column("last_download_at", _TS),
        sa.Column("erased_at", _TS),
    )
    op.create_index("ix_provision_media_created", "provision_media", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_provision_media_created", table_name="provision_media")
    op.drop_table("provision_media")
    op.drop_index("ix_provision_approvals_status", table_name="provision_approvals")
    op.drop_table("provision_approvals")
    op.drop_index("ix_provision_catalogue_changes_at", table_name="provision_catalogue_changes")
    op.drop_table("provision_catalogue_changes")
    op.drop_index("ix_provision_grants_affair", table_name="provision_grants")
    op.drop_table("provision_grants")
    op.drop_table("provision_affairs")
    op.drop_table("provision_requesters")
