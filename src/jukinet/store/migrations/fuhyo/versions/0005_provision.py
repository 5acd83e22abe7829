"""fuhyo register: provision record (提供・移転の記録) and national queries (事務2, 事務4).

Revision ID: fuhyo_0005
Revises: fuhyo_0004
"""

revision = "fuhyo_0005"
down_revision = "fuhyo_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
