"""admin database: requesters and affairs catalogue, batch-provision media register (事務2).

Revision ID: admin_0002
Revises: admin_0001
"""

revision = "admin_0002"
down_revision = "admin_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
