"""Tables of 事務6 (consistency checks with 市町村CS, C1), of retention runs (A8), and the indexes
that the consistency check, retention and statistics (A9) read through.

Defined on the registers' metadata; created by migration ``*_0004``. Each register database has
its own copy (the same table names serve both, as for the registers' own tables — ADR 0002):

* ``reconcile_runs`` — one row per consistency check received from a CS, completed or refused:
  counts only (how many persons matched, were only in the CS's snapshot, only in our file, or
  differ), never a value.
* ``reconcile_differences`` — the persons of a completed check that did not match: the
  住民票コード, the kind of difference, and *which items* differ, by name (ADR 0012). The detail is
  erased by the retention rule ``reconcile_details`` after its window; the run's counts stay.
* ``retention_runs`` — one row per rule per run of the retention job (ADR 0013): when, which
  rule, its cutoff, how many rows were (or, in a dry run, would be) erased, per year. Counts only.

Indexes on the registers' own tables, added by the same migration:

* ``ix_juki_current_municipality`` (市町村コード, 削除フラグ, 住民票コード) and
  ``ix_fuhyo_current_municipality`` (附票管理市町村コード, 状態区分, 住民票コード): one
  municipality's current persons *in 住民票コード order* — the server side of the sort-merge.
* ``ix_*_current_stats`` / ``ix_*_history_stats`` (通知を受けた年月日, 市町村コード, 異動事由):
  covering indexes for "updates per month, municipality and reason" over a period (A9); the same
  date also finds removed persons past their retention (A8).
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, MetaData,
                        String, Table, Text)

from jukinet.store.tables import (fuhyo_current, fuhyo_history, fuhyo_metadata, juki_current, juki_history,
                                  juki_metadata)

#: kinds of difference a consistency check reports (reconcile_differences.kind)
DIFFERENCE_KINDS = ("only_in_snapshot", "only_on_server", "differs", "pending")


def _reconcile_tables(metadata: MetaData, prefix: str) -> tuple[Table, Table]:
    runs = Table(
        "reconcile_runs", metadata,
        Column("run_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("municipality_code", String(6), nullable=False),
        Column("register", String(5), nullable=False),
        Column("trigger", String(12), nullable=False),          # cs | cli | scheduled
        Column("snapshot_id", String(64)),                      # the CS's own id for the snapshot
        Column("as_of", DateTime(timezone=True)),               # when the CS took the snapshot
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=False),
        Column("status", String(10), nullable=False),           # completed | refused
        Column("error_code", String(40)),
        Column("error_message", Text),                          # Japanese; never a value
        Column("error_line", BigInteger),                       # line of the snapshot at fault
        Column("snapshot_count", BigInteger, nullable=False),   # records read (refused: up to the fault)
        Column("server_count", BigInteger, nullable=False),
        Column("matched_count", BigInteger, nullable=False),
        Column("only_in_snapshot_count", BigInteger, nullable=False),
        Column("only_on_server_count", BigInteger, nullable=False),
        Column("differs_count", BigInteger, nullable=False),
        Column("pending_count", BigInteger, nullable=False),
        Column("item_counts", Text, nullable=False),            # JSON {item: persons differing in it}
        Column("snapshot_sha256", String(64)),
        Column("details_erased_at", DateTime(timezone=True)),   # set by the retention rule
        Index(f"ix_{prefix}_reconcile_runs_municipality", "municipality_code", "started_at"),
        Index(f"ix_{prefix}_reconcile_runs_started", "started_at"),
    )
    differences = Table(
        "reconcile_differences", metadata,
        Column("run_id", BigInteger().with_variant(Integer, "sqlite"),
               ForeignKey("reconcile_runs.run_id", ondelete="CASCADE"), primary_key=True),
        Column("juminhyo_code", String(11), primary_key=True),
        Column("kind", String(20), nullable=False),
        Column("items", String(400)),                           # comma-separated item names (differs)
    )
    return runs, differences


def _retention_runs(metadata: MetaData, prefix: str) -> Table:
    return Table(
        "retention_runs", metadata,
        Column("run_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("batch_id", String(32), nullable=False),         # one job run = one batch_id, many rules
        Column("rule", String(60), nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=False),
        Column("today", Date, nullable=False),                  # the date the cutoff was computed from
        Column("cutoff", String(40), nullable=False),           # ISO date or instant; rows up to it go
        Column("dry_run", Boolean, nullable=False),
        Column("status", String(10), nullable=False),           # completed | failed | skipped
        Column("eligible_count", BigInteger, nullable=False),   # rows past retention at the start
        Column("erased_count", BigInteger, nullable=False),     # rows erased (0 in a dry run)
        Column("by_year", Text, nullable=False),                # JSON {year: rows}, year of the retention date
        Column("error_code", String(40)),
        Index(f"ix_{prefix}_retention_runs_started", "started_at"),
    )


juki_reconcile_runs, juki_reconcile_differences = _reconcile_tables(juki_metadata, "juki")
fuhyo_reconcile_runs, fuhyo_reconcile_differences = _reconcile_tables(fuhyo_metadata, "fuhyo")
juki_retention_runs = _retention_runs(juki_metadata, "juki")
fuhyo_retention_runs = _retention_runs(fuhyo_metadata, "fuhyo")

RECONCILE = {"juki": (juki_reconcile_runs, juki_reconcile_differences),
             "fuhyo": (fuhyo_reconcile_runs, fuhyo_reconcile_differences)}
RETENTION_RUNS = {"juki": juki_retention_runs, "fuhyo": fuhyo_retention_runs}

# --- indexes on the registers' own tables (migration *_0004) ---
ix_juki_current_municipality = Index("ix_juki_current_municipality", juki_current.c.municipality_code,
                                     juki_current.c.deleted, juki_current.c.juminhyo_code)
ix_fuhyo_current_municipality = Index("ix_fuhyo_current_municipality", fuhyo_current.c.fuhyo_municipality_code,
                                      fuhyo_current.c.status, fuhyo_current.c.juminhyo_code)
ix_juki_current_stats = Index("ix_juki_current_stats", juki_current.c.notified_date,
                              juki_current.c.municipality_code, juki_current.c.reason)
ix_juki_history_stats = Index("ix_juki_history_stats", juki_history.c.notified_date,
                              juki_history.c.municipality_code, juki_history.c.reason)
ix_fuhyo_current_stats = Index("ix_fuhyo_current_stats", fuhyo_current.c.notified_date,
                               fuhyo_current.c.fuhyo_municipality_code, fuhyo_current.c.reason)
ix_fuhyo_history_stats = Index("ix_fuhyo_history_stats", fuhyo_history.c.notified_date,
                               fuhyo_history.c.fuhyo_municipality_code, fuhyo_history.c.reason)
