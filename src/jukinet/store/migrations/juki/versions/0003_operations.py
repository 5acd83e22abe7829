"""juki register: operation log (操作ログ) of the operator side.

Revision ID: juki_0003
Revises: juki_0002
"""

revision = "juki_0003"
down_revision = "juki_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
