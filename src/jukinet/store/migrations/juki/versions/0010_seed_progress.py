"""juki register: ``seed_progress``, how far ``jukinet seed`` got (issue 16).

One row per seed, updated in the transaction of every batch it writes, so that a seed killed half way
resumes after the last committed batch; ``complete`` is set only by the seed's last step.

Revision ID: juki_0010
Revises: juki_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "juki_0010"
down_revision = "juki_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seed_progress",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("prefecture_code", sa.String(6), nullable=False),
        sa.Column("residents", sa.BigInteger, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("batches_done", sa.BigInteger, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seed_progress")
