"""juki register: 漢字氏名 prefix search through an index on PostgreSQL (S1; ADR 0011).

``ix_juki_current_name_birth`` is rebuilt with ``text_pattern_ops`` on ``name`` so that
``name LIKE '山田%'`` is an index range whatever the database collation (equality, used by the exact
search and by 本人確認情報の提供, is served by the same operator class). SQLite: nothing to do — the
prefix predicate there is a byte-wise range, already answered by the BINARY index.

Revision ID: juki_0008
Revises: juki_0007
"""

from alembic import op

from jukinet.store.migrate import rebuild_name_birth_index

revision = "juki_0008"
down_revision = "juki_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    rebuild_name_birth_index(op, "juki_current", pattern_ops=True)


def downgrade() -> None:
    rebuild_name_birth_index(op, "juki_current", pattern_ops=False)
