"""Tables of 事務3 (開示・訂正等, O1–O3, A5, A10). Created by migrations ``juki_0006``/``fuhyo_0006``
and ``admin_0003``; ADR 0019 explains them.

In **each register database** (the request concerns that register's file):

* ``disclosure_requests`` — 開示請求 (O1): the written request's number, who took it at the counter,
  the 突合 result per item (一致/不一致 — never the values typed), the outcome (matched | partial |
  unmatched), the operator's decision on a partial match (accepted | rejected, by whom, when, with a
  reason code) and the 住民票コード it was matched to (the register already holds it).
* ``correction_requests`` — 訂正等の申出 (O2): kind (訂正/追加/削除), items, the resident's statement
  (free text, personal data — it stays in the register database), status (received → investigating
  → no_correction | reported → closed), due date, assignee.
* ``correction_steps`` — every transition (who, when, from, to, note code).
* ``suspension_requests`` — 利用停止請求 (O4, ADR 0039): kind (利用の停止・消去・提供の停止), grounds,
  the resident's statement (personal data — it stays in the register database), copies asked for and
  the copying fee (手数料は無料、複写費用 A3 まで1枚10円), status (received → investigating → decided →
  closed), the legal deadline (30日, extended once by 30日 with a reason code), the decision.
* ``suspension_steps`` — every transition of a 利用停止請求 (who, when, from, to, note code).
* ``municipal_reports`` — 通報 to a municipality (住基法30条の35, O5): one per finding that the record is
  wrong, from a 訂正等の申出 or a 利用停止請求; the report outbox of the CS channel: pending until the
  municipality's CS has taken it (sent, attempts) and acknowledged it.

In the **admin database** (no 本人確認情報, ADR 0004):

* ``form_register`` — 帳票管理簿 (A5): every printed form: serial, type, register, request number,
  operator, terminal, time, purpose, copies, pages, SHA-256 of the PDF, disposal (when, by whom, how).
* ``inquiries`` — 問合せ記録 (A10): inquiries from the public about the files and their handling
  (category, channel, summary without personal data, handling, status).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, MetaData, String, Table, Text

from jukinet.store.tables import admin_metadata, fuhyo_metadata, juki_metadata

_ID = BigInteger().with_variant(Integer, "sqlite")


def _disclosure_requests(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "disclosure_requests", metadata,
        Column("request_no", String(32), primary_key=True),
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("operator_id", String(32), nullable=False),
        Column("terminal_id", String(32)),
        Column("scope", String(20), nullable=False),            # identity | history | provisions
        Column("match_result", String(200), nullable=False),    # JSON {item: 一致 | 不一致}
        Column("outcome", String(12), nullable=False),          # matched | partial | unmatched
        Column("juminhyo_code", String(11)),                    # the person matched (candidate on partial)
        Column("decision", String(10)),                         # accepted | rejected (partial only)
        Column("decision_reason", String(20)),
        Column("decided_by", String(32)),
        Column("decided_at", DateTime(timezone=True)),
        Column("oplog_seq", BigInteger),
        Index(f"ix_{prefix}_disclosure_requests_received", "received_at"),
    )


def _correction_requests(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "correction_requests", metadata,
        Column("correction_id", String(24), primary_key=True),
        Column("request_no", String(32), nullable=False),
        Column("juminhyo_code", String(11), nullable=False),
        Column("kind", String(10), nullable=False),             # correct | add | delete (訂正 | 追加 | 削除)
        Column("items", String(200), nullable=False),           # item names, comma-separated
        Column("statement", Text),                              # the resident's statement (personal data)
        Column("status", String(14), nullable=False),           # received | investigating | no_correction | reported | closed
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("due_date", Date, nullable=False),
        Column("assignee", String(32)),
        Column("municipality_code", String(6)),                 # reported to (住基法30条の35)
        Column("result", String(14)),                           # no_correction | corrected
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{prefix}_correction_requests_status", "status", "due_date"),
    )


def _correction_steps(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "correction_steps", metadata,
        Column("step_id", _ID, primary_key=True, autoincrement=True),
        Column("correction_id", String(24), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("operator_id", String(32), nullable=False),
        Column("terminal_id", String(32)),
        Column("from_status", String(14)),
        Column("to_status", String(14), nullable=False),
        Column("note_code", String(20)),
        Column("oplog_seq", BigInteger),
        Index(f"ix_{prefix}_correction_steps_correction", "correction_id", "at"),
    )


def _suspension_requests(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "suspension_requests", metadata,
        Column("suspension_id", String(24), primary_key=True),
        Column("request_no", String(32), nullable=False),       # the disclosure request (開示前置)
        Column("juminhyo_code", String(11), nullable=False),
        Column("kind", String(16), nullable=False),             # stop_use | erase | stop_provision
        Column("grounds", String(24), nullable=False),          # outside_purpose | unlawful_acquisition | unlawful_provision
        Column("statement", Text),                              # the resident's statement (personal data)
        Column("copy_sheets", Integer, nullable=False),         # copies asked for (sheets, 0: none)
        Column("copy_size", String(2)),                         # A4 | A3
        Column("fee_yen", Integer, nullable=False),             # 手数料 0 + 複写費用 sheets × 10
        Column("status", String(14), nullable=False),           # received | investigating | decided | closed
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("due_date", Date, nullable=False),
        Column("extended", Integer, nullable=False),            # 0 | 1 (延長は1回、30日以内)
        Column("extension_reason", String(20)),
        Column("decision", String(14)),                         # suspend | partial | not_suspend
        Column("decision_reason", String(24)),
        Column("decided_by", String(32)),
        Column("decided_at", DateTime(timezone=True)),
        Column("assignee", String(32)),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{prefix}_suspension_requests_status", "status", "due_date"),
    )


def _suspension_steps(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "suspension_steps", metadata,
        Column("step_id", _ID, primary_key=True, autoincrement=True),
        Column("suspension_id", String(24), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("operator_id", String(32), nullable=False),
        Column("terminal_id", String(32)),
        Column("from_status", String(14)),
        Column("to_status", String(14), nullable=False),
        Column("note_code", String(24)),
        Column("oplog_seq", BigInteger),
        Index(f"ix_{prefix}_suspension_steps_suspension", "suspension_id", "at"),
    )


def _municipal_reports(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "municipal_reports", metadata,
        Column("report_id", String(40), primary_key=True),      # the message id on the CS channel
        Column("source", String(12), nullable=False),           # correction | suspension
        Column("case_id", String(24), nullable=False),
        Column("request_no", String(32), nullable=False),
        Column("juminhyo_code", String(11), nullable=False),
        Column("municipality_code", String(6), nullable=False),
        Column("kind", String(10), nullable=False),             # correct | add | delete
        Column("items", String(200), nullable=False),           # item names, comma-separated (no values)
        Column("state", String(14), nullable=False),            # pending | sent | acknowledged
        Column("attempts", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("created_by", String(32), nullable=False),
        Column("last_sent_at", DateTime(timezone=True)),
        Column("acknowledged_at", DateTime(timezone=True)),
        Column("form_serial", String(24)),                      # the 通報書 in the form register
        Index(f"ix_{prefix}_municipal_reports_state", "municipality_code", "state", "created_at"),
    )


DISCLOSURE_REQUESTS = {"juki": _disclosure_requests(juki_metadata, "juki"),
                       "fuhyo": _disclosure_requests(fuhyo_metadata, "fuhyo")}
CORRECTION_REQUESTS = {"juki": _correction_requests(juki_metadata, "juki"),
                       "fuhyo": _correction_requests(fuhyo_metadata, "fuhyo")}
CORRECTION_STEPS = {"juki": _correction_steps(juki_metadata, "juki"),
                    "fuhyo": _correction_steps(fuhyo_metadata, "fuhyo")}

SUSPENSION_REQUESTS = {"juki": _suspension_requests(juki_metadata, "juki"),
                       "fuhyo": _suspension_requests(fuhyo_metadata, "fuhyo")}
SUSPENSION_STEPS = {"juki": _suspension_steps(juki_metadata, "juki"),
                    "fuhyo": _suspension_steps(fuhyo_metadata, "fuhyo")}
MUNICIPAL_REPORTS = {"juki": _municipal_reports(juki_metadata, "juki"),
                     "fuhyo": _municipal_reports(fuhyo_metadata, "fuhyo")}

form_register = Table(
    "form_register", admin_metadata,
    Column("form_id", _ID, primary_key=True, autoincrement=True),
    Column("serial", String(24), nullable=False, unique=True),
    Column("form_type", String(20), nullable=False),            # disclosure | provisions | correction_result | suspension_* | municipal_report
    Column("register", String(5), nullable=False),
    Column("request_no", String(32)),
    Column("operator_id", String(32), nullable=False),
    Column("terminal_id", String(32)),
    Column("printed_at", DateTime(timezone=True), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("copies", Integer, nullable=False),
    Column("pages", Integer),
    Column("sha256", String(64)),
    Column("status", String(10), nullable=False),               # issuing | issued | void | disposed
    Column("disposed_at", DateTime(timezone=True)),
    Column("disposed_by", String(32)),
    Column("disposal_method", String(20)),
    Index("ix_form_register_printed", "printed_at"),
)

inquiries = Table(
    "inquiries", admin_metadata,
    Column("inquiry_id", _ID, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("channel", String(10), nullable=False),              # counter | phone | letter | mail
    Column("category", String(20), nullable=False),
    Column("summary", Text, nullable=False),                    # no personal data (screen says so)
    Column("operator_id", String(32), nullable=False),
    Column("handling", Text),
    Column("status", String(10), nullable=False),               # open | closed
    Column("handled_by", String(32)),
    Column("closed_at", DateTime(timezone=True)),
    Index("ix_inquiries_received", "received_at"),
)
