"""fuhyo register: 漢字氏名 prefix search through an index on PostgreSQL (S1; ADR 0011).

``ix_fuhyo_current_name_birth`` is rebuilt with ``text_pattern_ops`` on ``name`` so that
``name LIKE '山田%'`` is an index range whatever the database collation (equality, used by the exact
search and by 附票本人確認情報の提供, is served by the same operator class). SQLite: nothing to do — the
prefix predicate there is a byte-wise range, already answered by the BINARY index.

Revision ID: fuhyo_0007
Revises: fuhyo_0006
"""

from alembic import op

from jukinet.store.migrate import rebuild_name_birth_index

revision = "fuhyo_0007"
down_revision = "fuhyo_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    rebuild_name_birth_index(op, "fuhyo_current", pattern_ops=True)


def downgrade() -> None:
    rebuild_name_birth_index(op, "fuhyo_current", pattern_ops=False)
