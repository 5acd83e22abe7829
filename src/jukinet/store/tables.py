"""SQLAlchemy Core tables of both registers (the schema the Alembic migrations create).

Per register there is a *current* table (one row per 住民票コード: the latest version, removed
persons included with 削除フラグ) and a *history* table (every earlier version, with who/when/why
it was superseded). ``docs/data-model.md`` maps each 別添2 item to its column here.

Dates are ISO ``DATE``; timestamps are UTC.
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, Index, Integer, LargeBinary, MetaData,
                        SmallInteger, String, Table, Text)

juki_metadata = MetaData()
fuhyo_metadata = MetaData()
#: the admin database: operators, roles, catalogues — never 本人確認情報 (tables in tables_security etc.)
admin_metadata = MetaData()


def _juki_version_columns(current: bool) -> list[Column]:
    """The 28 items of 都道府県知事保存本人確認情報 (別添2 (1))."""
    return [
        Column("juminhyo_code", String(11), nullable=False, primary_key=current),  # 1
        Column("name", Text, nullable=False),                         # 2
        Column("name_gaiji_count", Integer, nullable=False),          # 3
        Column("name_kana", Text, nullable=False),                    # 4
        Column("birth_date", Date, nullable=False),                   # 5
        Column("sex", String(1), nullable=False),                     # 6
        Column("address", Text, nullable=False),                      # 7
        Column("address_gaiji_count", Integer, nullable=False),       # 8
        # 9 個人番号: sealed, never in the clear (jukinet.store.atrest, ADR 0025)
        Column("kojin_bango_ct", LargeBinary),      # AES-256-GCM nonce ‖ ciphertext ‖ tag, AAD = 住民票コード
        Column("kojin_bango_key", SmallInteger),     # data key id
        Column("kojin_bango_bi", String(32)),        # keyed blind index (exact lookups)
        Column("reason", String(20), nullable=False),                 # 10
        Column("change_date", Date, nullable=False),                  # 11
        Column("retention_flag", Boolean, nullable=False),            # 12
        Column("name_seion", Text, nullable=False),                   # 13
        Column("municipality_code", String(6), nullable=False),       # 14
        Column("oaza_code", String(12)),                              # 15
        Column("operator_id", String(64)),                            # 16
        Column("terminal_id", String(64)),                            # 17
        Column("timestamp", DateTime(timezone=True), nullable=False),  # 18
        Column("notified_date", Date, nullable=False),                # 19
        Column("gaiji_flag", Boolean, nullable=False),                # 20
        Column("deleted", Boolean, nullable=False),                   # 21
        Column("update_seq", BigInteger, nullable=False),             # 22
        Column("name_gaiji_change_seq", Integer, nullable=False),     # 23
        Column("address_gaiji_change_seq", Integer, nullable=False),  # 24
        Column("former_surname", Text),                               # 25
        Column("former_surname_gaiji_count", Integer, nullable=False),  # 26
        Column("former_surname_kana", Text),                          # 27
        Column("former_surname_gaiji_change_seq", Integer, nullable=False),  # 28
    ]


def _fuhyo_version_columns(current: bool) -> list[Column]:
    """The 18 items of 都道府県知事保存附票本人確認情報 (別添2 (2)ア). No 個人番号, by law."""
    return [
        Column("juminhyo_code", String(11), nullable=False, primary_key=current),  # 1
        Column("name", Text, nullable=False),                         # 2
        Column("name_gaiji_count", Integer, nullable=False),          # 3
        Column("name_kana", Text, nullable=False),                    # 4
        Column("birth_date", Date, nullable=False),                   # 5
        Column("sex", String(1), nullable=False),                     # 6
        Column("address_municipality_code", String(6)),               # 7
        Column("address", Text),                                      # 8
        Column("address_gaiji_count", Integer, nullable=False),       # 9
        Column("last_address", Text),                                 # 10
        Column("last_address_gaiji_count", Integer, nullable=False),  # 11
        Column("change_date", Date, nullable=False),                  # 12
        Column("old_juminhyo_code", String(11)),                      # 13
        Column("fuhyo_municipality_code", String(6), nullable=False),  # 14
        Column("status", String(4), nullable=False),                  # 15
        Column("gaiji_flag", Boolean, nullable=False),                # 16
        Column("gaiji_pattern", String(8), nullable=False),           # 17
        Column("notification_kind", String(4), nullable=False),       # 18
        # not 別添2 items: the reason received, the search key, server bookkeeping
        Column("reason", String(20), nullable=False),
        Column("name_seion", Text, nullable=False),
        Column("timestamp", DateTime(timezone=True), nullable=False),
        Column("notified_date", Date, nullable=False),
        Column("update_seq", BigInteger, nullable=False),
    ]


def _history_columns() -> list[Column]:
    """Who/when/why an earlier version was superseded."""
    return [
        Column("history_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("superseded_at", DateTime(timezone=True), nullable=False),
        Column("superseded_by_seq", BigInteger, nullable=False),
        Column("superseded_by_reason", String(20), nullable=False),
    ]


def _seed_progress_table(metadata: MetaData) -> Table:
    """How far ``jukinet seed`` got in this register (one row, ``name = 'seed'``), committed with each
    batch: a seed killed half way resumes after the last committed batch; ``complete`` is set only
    by the last step of a seed (issue 16)."""
    return Table("seed_progress", metadata,
                 Column("name", String(20), primary_key=True),
                 Column("prefecture_code", String(6), nullable=False),
                 Column("residents", BigInteger, nullable=False),
                 Column("seed", BigInteger, nullable=False),
                 Column("batch_size", Integer, nullable=False),
                 Column("batches_done", BigInteger, nullable=False),
                 Column("complete", Boolean, nullable=False))


def _counter_table(metadata: MetaData) -> Table:
    return Table("counters", metadata,
                 Column("name", String(40), primary_key=True),
                 Column("value", BigInteger, nullable=False))


juki_current = Table(
    "juki_current", juki_metadata, *_juki_version_columns(True),
    Index("ix_juki_current_kojin_bango_bi", "kojin_bango_bi"),
    Index("ix_juki_current_seion_birth", "name_seion", "birth_date", postgresql_ops={"name_seion": "text_pattern_ops"}),
    Index("ix_juki_current_name_birth", "name", "birth_date", postgresql_ops={"name": "text_pattern_ops"}),
    Index("ix_juki_current_birth", "birth_date"),
    Index("ix_juki_current_address", "address", postgresql_ops={"address": "text_pattern_ops"}),
    Index("ix_juki_current_update_seq", "update_seq", unique=True),
)

juki_history = Table(
    "juki_history", juki_metadata, *_history_columns(), *_juki_version_columns(False),
    Index("ix_juki_history_code", "juminhyo_code", "update_seq"),
    Index("ix_juki_history_kojin_bango_bi", "kojin_bango_bi"),
    Index("ix_juki_history_superseded_at", "superseded_at"),
    Index("ix_juki_history_superseded_by_seq", "superseded_by_seq"),   # 旧住民票コード chain (juki_0009)
)
juki_counters = _counter_table(juki_metadata)
juki_seed_progress = _seed_progress_table(juki_metadata)

fuhyo_current = Table(
    "fuhyo_current", fuhyo_metadata, *_fuhyo_version_columns(True),
    Index("ix_fuhyo_current_seion_birth", "name_seion", "birth_date", postgresql_ops={"name_seion": "text_pattern_ops"}),
    Index("ix_fuhyo_current_name_birth", "name", "birth_date", postgresql_ops={"name": "text_pattern_ops"}),
    Index("ix_fuhyo_current_birth", "birth_date"),
    Index("ix_fuhyo_current_address", "address", postgresql_ops={"address": "text_pattern_ops"}),
    Index("ix_fuhyo_current_update_seq", "update_seq", unique=True),
)

fuhyo_history = Table(
    "fuhyo_history", fuhyo_metadata, *_history_columns(), *_fuhyo_version_columns(False),
    Index("ix_fuhyo_history_code", "juminhyo_code", "update_seq"),
    Index("ix_fuhyo_history_superseded_at", "superseded_at"),
)
fuhyo_counters = _counter_table(fuhyo_metadata)
fuhyo_seed_progress = _seed_progress_table(fuhyo_metadata)

METADATA = {"juki": juki_metadata, "fuhyo": fuhyo_metadata, "admin": admin_metadata}
