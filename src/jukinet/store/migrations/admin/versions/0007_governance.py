"""admin database: the governance records an auditor asks for (G4, G5; PIA III.4, III.7 R1⑧, IV.1;
ADR 0041) — the incident register, the yearly self-inspection and internal audit, the contractor's
worker roster and monthly security report, the manager's reviews — and the witness of a witnessed
maintenance session (``sessions.witness_id``). No 本人確認情報 (ADR 0004).

Revision ID: admin_0007
Revises: admin_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "admin_0007"
down_revision = "admin_0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("sessions", sa.Column("witness_id", sa.String(32)))
    op.create_table(
        "incidents",
        sa.Column("incident_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("incident_no", sa.String(20), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("discovered_at", _TS, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("opened_by", sa.String(32), nullable=False),
        sa.Column("closed_at", _TS),
        sa.Column("closed_by", sa.String(32)),
        sa.Column("cause", sa.Text),
        sa.Column("prevention", sa.Text),
    )
    op.create_index("ix_incidents_opened", "incidents", ["opened_at"])
    op.create_table(
        "incident_events",
        sa.Column("event_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.incident_id"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("party", sa.String(20)),
        sa.Column("party_name", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "event_id"])
    op.create_table(
        "incident_links",
        sa.Column("link_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.BigInteger, sa.ForeignKey("incidents.incident_id"), nullable=False),
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
        sa.UniqueConstraint("incident_id", "chain", "seq", name="uq_incident_links_entry"),
    )
    op.create_index("ix_incident_links_entry", "incident_links", ["chain", "seq"])
    op.create_table(
        "self_inspections",
        sa.Column("inspection_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("fiscal_year", sa.Integer, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("conducted_on", sa.Date, nullable=False),
        sa.Column("inspector", sa.Text, nullable=False),
        sa.Column("answers", sa.Text, nullable=False),
        sa.Column("items_ng", sa.Integer, nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
        sa.UniqueConstraint("kind", "fiscal_year", "unit", name="uq_self_inspections_unit_year"),
    )
    op.create_table(
        "contractor_workers",
        sa.Column("worker_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("company", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("duty", sa.Text, nullable=False),
        sa.Column("operator_id", sa.String(32)),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("to_date", sa.Date),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
    )
    op.create_index("ix_contractor_workers_operator", "contractor_workers", ["operator_id"])
    op.create_table(
        "contractor_reports",
        sa.Column("report_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("company", sa.Text, nullable=False),
        sa.Column("received_on", sa.Date, nullable=False),
        sa.Column("checks_total", sa.Integer, nullable=False),
        sa.Column("checks_ng", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(32), nullable=False),
        sa.UniqueConstraint("month", "company", name="uq_contractor_reports_month"),
    )
    op.create_table(
        "governance_reviews",
        sa.Column("review_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("target_id", sa.BigInteger, nullable=False),
        sa.Column("decision", sa.String(12), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("reviewed_at", _TS, nullable=False),
        sa.Column("reviewed_by", sa.String(32), nullable=False),
    )
    op.create_index("ix_governance_reviews_target", "governance_reviews", ["target", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_governance_reviews_target", table_name="governance_reviews")
    op.drop_table("governance_reviews")
    op.drop_table("contractor_reports")
    op.drop_index("ix_contractor_workers_operator", table_name="contractor_workers")
    op.drop_table("contractor_workers")
    op.drop_table("self_inspections")
    op.drop_index("ix_incident_links_entry", table_name="incident_links")
    op.drop_table("incident_links")
    op.drop_index("ix_incident_events_incident", table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_index("ix_incidents_opened", table_name="incidents")
    op.drop_table("incidents")
    with op.batch_alter_table("sessions") as b:
        b.drop_column("witness_id")
