"""fuhyo register: operation log (操作ログ) of the operator side.

Revision ID: fuhyo_0003
Revises: fuhyo_0002
"""

revision = "fuhyo_0003"
down_revision = "fuhyo_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
