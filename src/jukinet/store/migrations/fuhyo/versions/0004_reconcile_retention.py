"""fuhyo register: consistency-check results (整合性確認) and retention runs.

Revision ID: fuhyo_0004
Revises: fuhyo_0003
"""

revision = "fuhyo_0004"
down_revision = "fuhyo_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
