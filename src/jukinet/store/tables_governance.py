"""Tables of the governance records an auditor asks for (G4, G5; PIA III.4, III.7 R1⑧, IV.1; ADR 0041).

All in the **admin database**, none holding 本人確認情報 (ADR 0004): texts are the staff's own
descriptions of what happened and what was done (the screens say not to write residents' data).

* ``incidents`` / ``incident_events`` / ``incident_links`` — the incident register (事故発生時手順,
  G4): an incident is opened, each step and each notification (to whom, which body) is an event,
  the closing is recorded by a 管理責任者; ``incident_links`` ties an incident to the operation-log
  entries involved (chain + seq), so the log screen leads to the incident and back.
* ``self_inspections`` — the yearly self-inspection (自己点検) per unit (所属) with the checklist
  answers, and the internal audit (内部監査) (G5, IV.1); reviewed by a 管理責任者.
* ``contractor_workers`` / ``contractor_reports`` — the contractor's worker roster (作業従事者名簿) and its
  monthly security report (セキュリティ確認結果報告) (G5, III.4); reviewed by a 管理責任者.
* ``governance_reviews`` — every review (確認) by a 管理責任者 of one of these records.

Created by ``admin_0007``.
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Column, Date, DateTime, ForeignKey, Index, Integer, String, Table, Text,
                        UniqueConstraint)

from jukinet.store.tables import admin_metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

incidents = Table(
    "incidents", admin_metadata,
    Column("incident_id", _ID, primary_key=True, autoincrement=True),
    Column("incident_no", String(20), nullable=False, unique=True),     # INC-2026-0001
    Column("title", Text, nullable=False),
    Column("category", String(20), nullable=False),                     # leak | loss | intrusion | misuse | outage | other
    Column("severity", String(10), nullable=False),                     # minor | serious
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("discovered_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
    Column("status", String(10), nullable=False),                       # open | closed
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", String(32), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", String(32)),
    Column("cause", Text),
    Column("prevention", Text),
    Index("ix_incidents_opened", "opened_at"),
)

incident_events = Table(
    "incident_events", admin_metadata,
    Column("event_id", _ID, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.incident_id"), nullable=False),
    Column("kind", String(10), nullable=False),                         # open | step | notify | close
    Column("at", DateTime(timezone=True), nullable=False),              # when it was done
    Column("party", String(20)),                                        # notify: the body notified (code)
    Column("party_name", Text),                                         # notify: person or office notified
    Column("text", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    Index("ix_incident_events_incident", "incident_id", "event_id"),
)

incident_links = Table(
    "incident_links", admin_metadata,
    Column("link_id", _ID, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, ForeignKey("incidents.incident_id"), nullable=False),
    Column("chain", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    UniqueConstraint("incident_id", "chain", "seq", name="uq_incident_links_entry"),
    Index("ix_incident_links_entry", "chain", "seq"),
)

self_inspections = Table(
    "self_inspections", admin_metadata,
    Column("inspection_id", _ID, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),                         # self | internal_audit
    Column("fiscal_year", Integer, nullable=False),
    Column("unit", Text, nullable=False),                               # 所属
    Column("conducted_on", Date, nullable=False),
    Column("inspector", Text, nullable=False),                          # セキュリティ責任者 / 監査担当
    Column("answers", Text, nullable=False),                            # JSON {item code: ok|ng|na}
    Column("items_ng", Integer, nullable=False),
    Column("findings", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    UniqueConstraint("kind", "fiscal_year", "unit", name="uq_self_inspections_unit_year"),
)

contractor_workers = Table(
    "contractor_workers", admin_metadata,
    Column("worker_id", _ID, primary_key=True, autoincrement=True),
    Column("company", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("duty", Text, nullable=False),
    Column("operator_id", String(32)),                                  # the 保守作業者 account, if any
    Column("from_date", Date, nullable=False),
    Column("to_date", Date),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    Index("ix_contractor_workers_operator", "operator_id"),
)

contractor_reports = Table(
    "contractor_reports", admin_metadata,
    Column("report_id", _ID, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),                         # YYYY-MM reported on
    Column("company", Text, nullable=False),
    Column("received_on", Date, nullable=False),
    Column("checks_total", Integer, nullable=False),
    Column("checks_ng", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(32), nullable=False),
    UniqueConstraint("month", "company", name="uq_contractor_reports_month"),
)

governance_reviews = Table(
    "governance_reviews", admin_metadata,
    Column("review_id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(20), nullable=False),                       # inspection | contractor_report | worker_roster
    Column("target_id", BigInteger, nullable=False),                    # roster: the number of workers seen
    Column("decision", String(12), nullable=False),                     # accepted | follow_up
    Column("note", Text, nullable=False),
    Column("reviewed_at", DateTime(timezone=True), nullable=False),
    Column("reviewed_by", String(32), nullable=False),
    Index("ix_governance_reviews_target", "target", "target_id"),
)
