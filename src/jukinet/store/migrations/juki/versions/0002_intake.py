"""juki register: intake, outbox and communication log (事務1).

Revision ID: juki_0002
Revises: juki_0001
"""

revision = "juki_0002"
down_revision = "juki_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
