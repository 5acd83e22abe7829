"""juki register: provision record (提供・移転の記録) and national queries (事務2, 事務4).

Revision ID: juki_0005
Revises: juki_0004
"""

revision = "juki_0005"
down_revision = "juki_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
