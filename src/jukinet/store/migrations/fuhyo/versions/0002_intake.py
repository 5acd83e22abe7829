"""fuhyo register: intake, outbox and communication log (事務1).

Revision ID: fuhyo_0002
Revises: fuhyo_0001
"""

revision = "fuhyo_0002"
down_revision = "fuhyo_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
