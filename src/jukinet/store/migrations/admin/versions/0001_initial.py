"""admin database: operators, roles, credentials, sessions (filled by the operator-terminal work).

Revision ID: admin_0001
Revises:
"""

revision = "admin_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
