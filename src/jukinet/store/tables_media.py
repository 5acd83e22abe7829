"""Tables of the media register (媒体管理簿, G2) and the virus checks of media (G3), in the admin
database (no 本人確認情報, ADR 0004). Created by migration ``admin_0008``; ADR 0040 explains them.

* ``media_items`` — one row per medium the office keeps or hands out: backup media (a backup file
  registered on a tape/disk, with its ``backup_id`` and SHA-256), result media of a batch provision
  (the ``provision_media`` id), media brought in (a requester's conditions file) and forms (帳票)
  whose destruction needs approval. Medium, label, location (保管場所), custodian (管理者), status.
* ``media_movements`` — every movement of a medium: registration, move between locations,
  check-out and check-in, handover to the requesting body (受渡し), return (返却), retirement for
  damage or wear (破損・耐用超過: stays in the vault, PIA III.4) and destruction (廃棄).
* ``media_checks`` — the weekly check of the register against the vault (週次点検, PIA III.4): who,
  when, the media expected and found, each discrepancy.
* ``media_approvals`` — the 管理責任者's prior approval of retiring or destroying a medium or a form
  (III.7 R3 「事前に管理者の承認を得てから」): reason, approver, time; used once.
* ``media_scans`` — every virus check (ClamAV) of a file brought in or handed out: direction,
  purpose, SHA-256 and size of the file (never its name or content), engine, result, signature.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

from jukinet.store.tables import admin_metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

media_items = Table(
    "media_items", admin_metadata,
    Column("media_id", String(32), primary_key=True),
    Column("kind", String(12), nullable=False),                 # backup | result | incoming | form
    Column("medium", String(12), nullable=False),               # lto | dvd | bd | usb | hdd | paper | other
    Column("label", String(100), nullable=False),
    Column("location", String(100), nullable=False),            # 保管場所 (or the body it was handed to)
    Column("custodian", String(32), nullable=False),            # 管理者 (operator id)
    Column("status", String(12), nullable=False),               # in_vault | out | handed_over | retired | destroyed
    Column("backup_id", String(40)),
    Column("requester_code", String(20)),
    Column("sha256", String(64)),
    Column("size_bytes", BigInteger),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("registered_by", String(32), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("note", Text),
    Index("ix_media_items_status", "status", "kind"),
    Index("ix_media_items_backup", "backup_id"),
)

media_movements = Table(
    "media_movements", admin_metadata,
    Column("movement_id", _ID, primary_key=True, autoincrement=True),
    Column("media_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("operator_id", String(32), nullable=False),
    Column("kind", String(12), nullable=False),                 # register | move | checkout | checkin | handover | return | retire | destroy
    Column("from_location", String(100)),
    Column("to_location", String(100)),
    Column("counterpart", String(100)),                         # requester code / 受領者 for handover and return
    Column("approval_id", String(24)),
    Column("method", String(20)),                               # destruction method
    Column("reason", Text),
    Index("ix_media_movements_media", "media_id", "at"),
    Index("ix_media_movements_at", "at"),
)

media_checks = Table(
    "media_checks", admin_metadata,
    Column("check_id", _ID, primary_key=True, autoincrement=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("checked_by", String(32), nullable=False),
    Column("week", String(8), nullable=False),                  # ISO week of the check (JST), e.g. 2026-W49
    Column("expected", Integer, nullable=False),
    Column("found", Integer, nullable=False),
    Column("discrepancy_count", Integer, nullable=False),
    Column("discrepancies", Text, nullable=False),              # JSON [{media_id, kind, detail}]
    Column("note", Text),
    Index("ix_media_checks_at", "checked_at"),
)

media_approvals = Table(
    "media_approvals", admin_metadata,
    Column("approval_id", String(24), primary_key=True),
    Column("target_kind", String(8), nullable=False),           # media | form
    Column("target_id", String(32), nullable=False),            # media_id | form serial
    Column("action", String(8), nullable=False),                # retire | destroy
    Column("reason", Text, nullable=False),
    Column("approved_by", String(32), nullable=False),          # a 管理責任者
    Column("approved_at", DateTime(timezone=True), nullable=False),
    Column("status", String(8), nullable=False),                # approved | used
    Column("used_at", DateTime(timezone=True)),
    Index("ix_media_approvals_target", "target_kind", "target_id"),
)

media_scans = Table(
    "media_scans", admin_metadata,
    Column("scan_id", _ID, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("operator_id", String(32)),
    Column("direction", String(4), nullable=False),             # in (持込) | out (持出)
    Column("purpose", String(20), nullable=False),              # batch_conditions | result | incoming | backup
    Column("media_id", String(32)),
    Column("sha256", String(64)),
    Column("size_bytes", BigInteger),
    Column("engine", String(12), nullable=False),               # clamscan | clamd
    Column("outcome", String(10), nullable=False),              # clean | infected | failed
    Column("signature", String(120)),
    Column("code", String(40)),
    Index("ix_media_scans_at", "at"),
)
