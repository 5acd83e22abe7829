"""附票 register: current and history tables of 都道府県知事保存附票本人確認情報ファイル (D2).

There is no 個人番号 column, by law (PIA II(2).2④).

Revision ID: fuhyo_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "fuhyo_0001"
down_revision = None
branch_labels = None
depends_on = None


def _items(current: bool) -> list:
    return [
        sa.Column("juminhyo_code", sa.String(11), nullable=False, primary_key=current),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_gaiji_count", sa.Integer, nullable=False),
        sa.Column("name_kana", sa.Text, nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("address_municipality_code", sa.String(6)),
        sa.Column("address", sa.Text),
        sa.Column("address_gaiji_count", sa.Integer, nullable=False),
        sa.Column("last_address", sa.Text),
        sa.Column("last_address_gaiji_count", sa.Integer, nullable=False),
        sa.Column("change_date", sa.Date, nullable=False),
        sa.Column("old_juminhyo_code", sa.String(11)),
        sa.Column("fuhyo_municipality_code", sa.String(6), nullable=False),
        sa.Column("status", sa.String(4), nullable=False),
        sa.Column("gaiji_flag", sa.Boolean, nullable=False),
        sa.Column("gaiji_pattern", sa.String(8), nullable=False),
        sa.Column("notification_kind", sa.String(4), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("name_seion", sa.Text, nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_date", sa.Date, nullable=False),
        sa.Column("update_seq", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table("fuhyo_current", *_items(True))
    op.create_index("ix_fuhyo_current_seion_birth", "fuhyo_current", ["name_seion", "birth_date"],
                    postgresql_ops={"name_seion": "text_pattern_ops"})
    op.create_index("ix_fuhyo_current_name_birth", "fuhyo_current", ["name", "birth_date"])
    op.create_index("ix_fuhyo_current_birth", "fuhyo_current", ["birth_date"])
    op.create_index("ix_fuhyo_current_address", "fuhyo_current", ["address"],
                    postgresql_ops={"address": "text_pattern_ops"})
    op.create_index("ix_fuhyo_current_update_seq", "fuhyo_current", ["update_seq"], unique=True)
    op.create_table(
        "fuhyo_history",
        sa.Column("history_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by_seq", sa.BigInteger, nullable=False),
        sa.Column("superseded_by_reason", sa.String(20), nullable=False),
        *_items(False),
    )
    op.create_index("ix_fuhyo_history_code", "fuhyo_history", ["juminhyo_code", "update_seq"])
    op.create_index("ix_fuhyo_history_superseded_at", "fuhyo_history", ["superseded_at"])
    op.create_table("counters", sa.Column("name", sa.String(40), primary_key=True),
                    sa.Column("value", sa.BigInteger, nullable=False))


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_table("fuhyo_history")
    op.drop_table("fuhyo_current")
