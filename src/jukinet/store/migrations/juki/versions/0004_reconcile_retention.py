"""juki register: consistency-check results (整合性確認) and retention runs.

Revision ID: juki_0004
Revises: juki_0003
"""

revision = "juki_0004"
down_revision = "juki_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
