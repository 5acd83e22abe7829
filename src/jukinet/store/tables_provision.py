"""Tables of 事務2/事務4: the provision record (in each register database) and the requester/affair
catalogue, approvals and media register (in the admin database). Created by migrations ``*_0005``
and ``admin_0002``; ``docs/decisions/0015`` … ``0018`` explain them.

In **each register database** (``juki``, ``fuhyo``) — the same table name serves both (ADR 0002):

* ``provision_records`` — 提供・移転の記録 (P5, PIA III.5 R1): one row per attempt, provided or not
  (not found, several found, refused with its reason, failed), and per national query (N1). Who
  (操作者ID, 操作端末ID), through what (terminal, api, batch, console), for whom (requester code)
  and why (affair code — the legal basis), the keys as **keyed digests** (HMAC, key outside the
  database), the person as a keyed digest of their 住民票コード (ADR 0015), the outcome and the
  items provided (item *names*, never values), the 突合 result per item (一致/不一致, never the
  values). Never a value of personal data. Kept 7 years (retention rule ``provision_records``).

In the **admin database** (no 本人確認情報, ADR 0004):

* ``provision_requesters`` — 提供先・移転先: other executive bodies (提供, 別表第六) and the governor's
  departments (移転, 別表第五).
* ``provision_affairs`` — 事務: code, name, source (別表第五 | 別表第六 | 条例), legal basis, register,
  the items it may receive and whether 個人番号 may be provided (番号法).
* ``provision_grants`` — which requester may use which affair.
* ``provision_catalogue_changes`` — every change of the three tables above, before/after.
* ``provision_approvals`` — a manager's prior approval of a large batch (A5): bound to requester,
  affair, register, maximum rows, purpose and expiry; used once.
* ``provision_media`` — 媒体管理簿: every media output of a batch provision (media id, who, when,
  rows, SHA-256 of the encrypted file, key id).
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String,
                        Table, Text)

from jukinet.store.tables import admin_metadata, fuhyo_metadata, juki_metadata

_ID = BigInteger().with_variant(Integer, "sqlite")


def _provision_records(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "provision_records", metadata,
        Column("record_id", _ID, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("operator_id", String(32)),
        Column("terminal_id", String(32)),
        Column("channel", String(10), nullable=False),          # terminal | api | batch | console
        Column("kind", String(16), nullable=False),             # provision (提供) | transfer (移転) | national_query
        Column("requester_code", String(20)),
        Column("affair_code", String(40)),
        Column("purpose_code", String(20)),
        Column("case_ref", String(40)),
        Column("key_kind", String(14), nullable=False),         # juminhyo_code | kojin_bango | four | file | none
        Column("keys_digest", Text, nullable=False),            # JSON {key name: keyed digest}
        Column("person_digest", String(32)),                    # keyed digest of the 住民票コード found
        Column("source", String(10)),                           # local | national
        Column("outcome", String(12), nullable=False),          # provided | not_found | ambiguous | refused | failed
        Column("reason_code", String(40)),
        Column("items", String(400), nullable=False),           # item names provided, comma-separated
        Column("number_included", Boolean, nullable=False),     # 個人番号 among the items provided
        Column("match_result", String(200)),                    # JSON {item: "一致" | "不一致"}
        Column("media_id", String(32)),
        Column("row_no", Integer),
        Column("oplog_seq", BigInteger),
        Index(f"ix_{prefix}_provision_records_person", "person_digest", "at"),
        Index(f"ix_{prefix}_provision_records_at", "at"),
        Index(f"ix_{prefix}_provision_records_media", "media_id", "row_no"),
    )


juki_provision_records = _provision_records(juki_metadata, "juki")
fuhyo_provision_records = _provision_records(fuhyo_metadata, "fuhyo")
PROVISION_RECORDS = {"juki": juki_provision_records, "fuhyo": fuhyo_provision_records}

provision_requesters = Table(
    "provision_requesters", admin_metadata,
    Column("code", String(20), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(12), nullable=False),                 # body (他の執行機関) | department (他部署)
    Column("status", String(10), nullable=False),               # active | retired
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(32)),
)

provision_affairs = Table(
    "provision_affairs", admin_metadata,
    Column("code", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("source", String(8), nullable=False),                # 別表第五 | 別表第六 | 条例
    Column("basis", Text, nullable=False),
    Column("register", String(5), nullable=False),              # juki | fuhyo
    Column("items", String(400), nullable=False),               # comma-separated item names
    Column("kojin_bango_allowed", Boolean, nullable=False),
    Column("kojin_bango_basis", Text),                          # 番号法 provision, when allowed
    Column("status", String(10), nullable=False),               # active | retired
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(32)),
)

provision_grants = Table(
    "provision_grants", admin_metadata,
    Column("requester_code", String(20), ForeignKey("provision_requesters.code"), primary_key=True),
    Column("affair_code", String(40), ForeignKey("provision_affairs.code"), primary_key=True),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("granted_by", String(32)),
    Index("ix_provision_grants_affair", "affair_code"),
)

provision_catalogue_changes = Table(
    "provision_catalogue_changes", admin_metadata,
    Column("change_id", _ID, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("operator_id", String(32)),
    Column("terminal_id", String(32)),
    Column("via", String(10), nullable=False),                  # file | screen | api | init
    Column("source_sha256", String(64)),                        # of the catalogue file loaded
    Column("entity", String(10), nullable=False),               # requester | affair | grant
    Column("code", String(64), nullable=False),
    Column("action", String(12), nullable=False),               # add | change | retire | grant | revoke
    Column("before", Text),                                     # JSON
    Column("after", Text),                                      # JSON
    Index("ix_provision_catalogue_changes_at", "at"),
)

provision_approvals = Table(
    "provision_approvals", admin_metadata,
    Column("approval_id", String(24), primary_key=True),
    Column("requester_code", String(20), nullable=False),
    Column("affair_code", String(40), nullable=False),
    Column("register", String(5), nullable=False),
    Column("max_rows", Integer, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("status", String(10), nullable=False),               # requested | approved | rejected | used
    Column("requested_by", String(32), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(32)),
    Column("decided_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("media_id", String(32)),
    Index("ix_provision_approvals_status", "status", "requested_at"),
)

provision_media = Table(
    "provision_media", admin_metadata,
    Column("media_id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("operator_id", String(32)),
    Column("terminal_id", String(32)),
    Column("channel", String(10), nullable=False),
    Column("requester_code", String(20), nullable=False),
    Column("affair_code", String(40), nullable=False),
    Column("register", String(5), nullable=False),
    Column("approval_id", String(24)),
    Column("purpose", Text),
    Column("status", String(10), nullable=False),               # writing | written | failed
    Column("error_code", String(40)),
    Column("input_encoding", String(10)),
    Column("input_sha256", String(64)),
    Column("rows_total", Integer, nullable=False),
    Column("rows_provided", Integer, nullable=False),
    Column("rows_not_found", Integer, nullable=False),
    Column("rows_ambiguous", Integer, nullable=False),
    Column("rows_error", Integer, nullable=False),
    Column("rows_national", Integer, nullable=False),
    Column("container", String(24), nullable=False),            # jukinet.media/1
    Column("key_id", String(32)),
    Column("size_bytes", BigInteger),
    Column("sha256", String(64)),                               # of the encrypted file as written
    Column("downloads", Integer, nullable=False),
    Column("last_download_at", DateTime(timezone=True)),
    Column("erased_at", DateTime(timezone=True)),               # the server copy removed (retention)
    Index("ix_provision_media_created", "created_at"),
)
