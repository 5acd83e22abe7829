"""fuhyo register: provision record (提供・移転の記録) and national queries (事務2, 事務4).

One row per attempt — provided, not found, refused (with the reason) — and per national query;
keys and the person only as keyed digests (ADR 0015). See store/tables_provision.py.

Revision ID: fuhyo_0005
Revises: fuhyo_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "fuhyo_0005"
down_revision = "fuhyo_0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "provision_records",
        sa.Column("record_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator_id", sa.String(32)),
        sa.Column("terminal_id", sa.String(32)),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("requester_code", sa.String(20)),
        sa.Column("affair_code", sa.String(40)),
        sa.Column("purpose_code", sa.String(20)),
        sa.Column("case_ref", sa.String(40)),
        sa.Column("key_kind", sa.String(14), nullable=False),
        sa.Column("keys_digest", sa.Text, nullable=False),
        sa.Column("person_digest", sa.String(32)),
        sa.Column("source", sa.String(10)),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("reason_code", sa.String(40)),
        sa.Column("items", sa.String(400), nullable=False),
        sa.Column("number_included", sa.Boolean, nullable=False),
        sa.Column("match_result", sa.String(200)),
        sa.Column("media_id", sa.String(32)),
        sa.Column("row_no", sa.Integer),
        sa.Column("oplog_seq", sa.BigInteger),
    )
    op.create_index("ix_fuhyo_provision_records_person", "provision_records", ["person_digest", "at"])
    op.create_index("ix_fuhyo_provision_records_at", "provision_records", ["at"])
    op.create_index("ix_fuhyo_provision_records_media", "provision_records", ["media_id", "row_no"])


def downgrade() -> None:
    op.drop_index("ix_fuhyo_provision_records_media", table_name="provision_records")
    op.drop_index("ix_fuhyo_provision_records_at", table_name="provision_records")
    op.drop_index("ix_fuhyo_provision_records_person", table_name="provision_records")
    op.drop_table("provision_records")
