"""住民票 register: current and history tables of 都道府県知事保存本人確認情報ファイル (D1).

Revision ID: juki_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "juki_0001"
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
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("address_gaiji_count", sa.Integer, nullable=False),
        sa.Column("kojin_bango", sa.String(12)),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("change_date", sa.Date, nullable=False),
        sa.Column("retention_flag", sa.Boolean, nullable=False),
        sa.Column("name_seion", sa.Text, nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("oaza_code", sa.String(12)),
        sa.Column("operator_id", sa.String(64)),
        sa.Column("terminal_id", sa.String(64)),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_date", sa.Date, nullable=False),
        sa.Column("gaiji_flag", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("update_seq", sa.BigInteger, nullable=False),
        sa.Column("name_gaiji_change_seq", sa.Integer, nullable=False),
        sa.Column("address_gaiji_change_seq", sa.Integer, nullable=False),
        sa.Column("former_surname", sa.Text),
        sa.Column("former_surname_gaiji_count", sa.Integer, nullable=False),
        sa.Column("former_surname_kana", sa.Text),
        sa.Column("former_surname_gaiji_change_seq", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table("juki_current", *_items(True))
    op.create_index("ix_juki_current_kojin_bango", "juki_current", ["kojin_bango"])
    op.create_index("ix_juki_current_seion_birth", "juki_current", ["name_seion", "birth_date"],
                    postgresql_ops={"name_seion": "text_pattern_ops"})
    op.create_index("ix_juki_current_name_birth", "juki_current", ["name", "birth_date"])
    op.create_index("ix_juki_current_birth", "juki_current", ["birth_date"])
    op.create_index("ix_juki_current_address", "juki_current", ["address"],
                    postgresql_ops={"address": "text_pattern_ops"})
    op.create_index("ix_juki_current_update_seq", "juki_current", ["update_seq"], unique=True)
    op.create_table(
        "juki_history",
        sa.Column("history_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by_seq", sa.BigInteger, nullable=False),
        sa.Column("superseded_by_reason", sa.String(20), nullable=False),
        *_items(False),
    )
    op.create_index("ix_juki_history_code", "juki_history", ["juminhyo_code", "update_seq"])
    op.create_index("ix_juki_history_kojin_bango", "juki_history", ["kojin_bango"])
    op.create_index("ix_juki_history_superseded_at", "juki_history", ["superseded_at"])
    op.create_table("counters", sa.Column("name", sa.String(40), primary_key=True),
                    sa.Column("value", sa.BigInteger, nullable=False))


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_table("juki_history")
    op.drop_table("juki_current")
