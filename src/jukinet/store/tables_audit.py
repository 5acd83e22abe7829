"""Tables of the audit room (A2, A4) in the **admin database** — no 本人確認情報 (ADR 0004).

* ``audit_reports`` — each generated monthly access-log analysis (A4; ADR 0022): the month, the
  SHA-256 of its PDF and CSV and a summary (counts only). A new row whenever the digest changes,
  so the version a manager signed is fixed.
* ``audit_signoffs`` — the manager's sign-off (管理責任者の確認) of one report version: who, when,
  the decision and a disposition per flag.
* ``audit_watch`` — an address prefix the administrator records for an operator (their own
  区域), used by flag (d) "lookups of persons living where the operator lives".
* ``roster_inventories`` — the annual inventory (棚卸し, A2; ADR 0023): who confirmed it, when,
  the findings and the disposition of each.

Created by migration ``admin_0004``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

from jukinet.store.tables import admin_metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

audit_reports = Table(
    "audit_reports", admin_metadata,
    Column("report_id", _ID, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),               # YYYY-MM (JST)
    Column("pdf_sha256", String(64), nullable=False),
    Column("csv_sha256", String(64), nullable=False),
    Column("flag_count", Integer, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("summary", Text, nullable=False),                  # JSON: counts only
    Column("generated_at", DateTime(timezone=True), nullable=False),
    Column("generated_by", String(32)),
    Index("ix_audit_reports_month", "month", "report_id"),
)

audit_signoffs = Table(
    "audit_signoffs", admin_metadata,
    Column("signoff_id", _ID, primary_key=True, autoincrement=True),
    Column("report_id", BigInteger, nullable=False),
    Column("month", String(7), nullable=False),
    Column("pdf_sha256", String(64), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("signed_by", String(32), nullable=False),
    Column("decision", String(20), nullable=False),           # no_issue | follow_up
    Column("comment", Text, nullable=False),
    Column("flag_notes", Text, nullable=False),               # JSON {flag_no: disposition}
    Index("ix_audit_signoffs_month", "month", "signoff_id"),
)

audit_watch = Table(
    "audit_watch", admin_metadata,
    Column("operator_id", String(32), primary_key=True),
    Column("address_prefix", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Column("set_by", String(32)),
)

roster_inventories = Table(
    "roster_inventories", admin_metadata,
    Column("inventory_id", _ID, primary_key=True, autoincrement=True),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_by", String(32), nullable=False),
    Column("period_from", DateTime(timezone=True), nullable=False),
    Column("period_to", DateTime(timezone=True), nullable=False),
    Column("operator_count", Integer, nullable=False),
    Column("finding_count", Integer, nullable=False),
    Column("findings_sha256", String(64), nullable=False),
    Column("findings", Text, nullable=False),                 # JSON: findings with their disposition
    Index("ix_roster_inventories_confirmed", "confirmed_at"),
)
