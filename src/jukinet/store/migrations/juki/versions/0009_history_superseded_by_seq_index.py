"""juki register: an index on ``juki_history.superseded_by_seq`` (Q1, issue 16).

The provision history of a person (P5/O3, :func:`jukinet.provision.records.person_codes`) follows
住民票コード変更 backwards: ``juki_history WHERE superseded_by_reason = '住民票コード変更' AND
superseded_by_seq IN (…)``. Without an index that is a sequential scan of the whole history table
(millions of rows at Tokyo scale) on every lookup; the query-plan test
``tests/store/test_q1_query_plans.py`` caught it on PostgreSQL. Both engines get the same index.

Revision ID: juki_0009
Revises: juki_0008
"""

from alembic import op

revision = "juki_0009"
down_revision = "juki_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_juki_history_superseded_by_seq", "juki_history", ["superseded_by_seq"])


def downgrade() -> None:
    op.drop_index("ix_juki_history_superseded_by_seq", table_name="juki_history")
