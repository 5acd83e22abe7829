"""The operations status (A7; ADR 0026): what the 運用担当者 (保守委託) may see — counts, sizes,
times and codes, never a value of a register.

:func:`collect` gathers, for the ``/ops`` screen and ``GET /api/v1/ops/status``:

* each database (juki, fuhyo, admin): reachable, migration revision and head, size in bytes,
  and the **row count** of each table (counts only): exact for a table under :data:`EXACT_BELOW`
  rows, the engine's own estimate above it (shown as 約; :func:`row_counts`, ADR 0052);
* the outbox of each register: entries waiting (pending + failed) and the age of the oldest;
* the last retention run (per register: time, rules completed / failed);
* the last backup, from ``DIR/ops/backup-status.json`` (written by the backup job; may be absent);
* the daily scheduler of ``jukinet serve`` (enabled, time, next run, last run);
* the last MAC'd checkpoint of each operation-log chain (seq, time, source; A4, ADR 0031) and the
  outcome of the last automatic one;
* on PostgreSQL, the WAL archiving of the primary the registers write to (``pg_stat_archiver``: last
  archived segment and time, failures) — an archive command that fails (archive full, repository
  unreachable) is a fault, because point-in-time recovery ends at the last archived segment;
* with ``[cluster] patroni_urls``, the replication state from Patroni's REST API (members, roles,
  lag in bytes and seconds, timeline; :mod:`jukinet.cluster.replication`) and, with
  ``[cluster] pgbackrest_config``, the last pgBackRest backup (ADR 0037, 0044).

:func:`light` is the subset the ``/metrics`` scrape needs (no row counts: cheap enough to run every
few seconds). Every probe catches its own failure and reports it as a code: a status page never
raises.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import func, inspect, select, text

from jukinet.config import Config
from jukinet.security import checkpoints as oplog_checkpoints
from jukinet.store import migrate
from jukinet.store.engine import is_sqlite
from jukinet.intake.service import INTAKE_TABLES
from jukinet.store.tables_reconcile import RETENTION_RUNS
from jukinet.backup.service import status_path
from jukinet.retention import next_run_after
from jukinet.audit import monthly
from jukinet.cluster import replication as R

BACKUP_FIELDS = ("last_success_at", "last_failure_at", "last_failure_code", "last_bytes", "last_seconds", "last_file")


def _utc(v) -> Optional[datetime]:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


@dataclass
class DatabaseStatus:
    name: str
    reachable: bool = False
    revision: Optional[str] = None
    head: Optional[str] = None
    up_to_date: bool = False
    size_bytes: Optional[int] = None
    rows: dict = field(default_factory=dict)
    #: the tables whose count in ``rows`` is an estimate (約), not a COUNT(*)
    estimated: list = field(default_factory=list)
    error_code: Optional[str] = None


@dataclass
class OutboxStatus:
    register: str
    depth: Optional[int] = None
    failed: Optional[int] = None
    oldest_at: Optional[datetime] = None
    oldest_age_seconds: Optional[float] = None
    error_code: Optional[str] = None


@dataclass
class RetentionStatus:
    register: str
    last_run_at: Optional[datetime] = None
    completed: int = 0
    failed: int = 0
    error_code: Optional[str] = None


@dataclass
class BackupStatus:
    present: bool = False
    last_success_at: Optional[datetime] = None
    last_failure_at: Optional[datetime] = None
    last_failure_code: Optional[str] = None
    last_bytes: Optional[int] = None
    last_seconds: Optional[float] = None
    last_file: Optional[str] = None
    error_code: Optional[str] = None


@dataclass
class SchedulerStatus:
    enabled: bool
    daily_at: str
    next_run_at: Optional[datetime] = None
    running: Optional[bool] = None       # None: not started by this process (e.g. the tests, an external cron)
    runs: int = 0
    last_run_at: Optional[datetime] = None
    last_outcome: Optional[str] = None


@dataclass
class ArchiveStatus:
    """``pg_stat_archiver`` of the primary (PostgreSQL only; ``None`` on SQLite)."""

    mode: Optional[str] = None
    archived_count: Optional[int] = None
    last_archived_wal: Optional[str] = None
    last_archived_at: Optional[datetime] = None
    failed_count: Optional[int] = None
    last_failed_wal: Optional[str] = None
    last_failed_at: Optional[datetime] = None
    error_code: Optional[str] = None

    @property
    def failing(self) -> bool:
        """The last attempt failed (a failure newer than the last success)."""
        return self.last_failed_at is not None and (self.last_archived_at is None
                                                    or self.last_failed_at > self.last_archived_at)

    @property
    def ok(self) -> bool:
        return self.error_code is None and not self.failing


@dataclass
class ClusterStatus:
    """The replicated PostgreSQL (``[cluster]``): Patroni's view and the pgBackRest repository."""

    replication: R.Replication
    repo: Optional[R.BackupRepo] = None
    backup_stale: bool = False

    @property
    def ok(self) -> bool:
        repo_ok = self.repo is None or (self.repo.error_code is None and self.repo.status_code == 0
                                        and not self.backup_stale)
        return self.replication.healthy and repo_ok


@dataclass
class OpsStatus:
    at: datetime
    databases: list[DatabaseStatus]
    outbox: list[OutboxStatus]
    retention: list[RetentionStatus]
    backup: BackupStatus
    scheduler: Optional[SchedulerStatus] = None
    #: A4: the due month's access-log analysis (作成済 / 承認済; ADR 0028)
    monthly_report: Optional[object] = None
    #: A4: the last checkpoint of each operation-log chain (ADR 0031)
    checkpoints: list = field(default_factory=list)
    #: A4: the last automatic checkpoint of this process ("ok" or chain:code …), None when not run here
    checkpoint_outcome: Optional[str] = None
    #: Q3: WAL archiving of the primary (PostgreSQL) and the cluster's replication state (ADR 0044)
    archive: Optional[ArchiveStatus] = None
    cluster: Optional[ClusterStatus] = None

    @property
    def ok(self) -> bool:
        return (all(d.reachable and d.up_to_date for d in self.databases)
                and (self.archive is None or self.archive.ok) and (self.cluster is None or self.cluster.ok))

    def as_dict(self) -> dict:
        def conv(v):
            if isinstance(v, datetime):
                return v.astimezone(timezone.utc).isoformat()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        d = conv({"status": "ok" if self.ok else "degraded", **asdict(self)})
        if self.archive is not None:
            d["archive"]["failing"] = self.archive.failing
        if self.cluster is not None:
            d["cluster"]["ok"] = self.cluster.ok
            d["cluster"]["replication"]["healthy"] = self.cluster.replication.healthy
        if self.monthly_report is not None:
            d["monthly_report"]["label"] = self.monthly_report.label
        return d


def _code(e: Exception) -> str:
    return getattr(e, "code", None) or type(e).__name__


_HEADS: dict[str, str] = {}


def head_revision(name: str, engine) -> str:
    """The migration head of ``name`` (read from the migration files once per process: they do not
    change while it runs, and reading them is most of the cost of a scrape)."""
    if name not in _HEADS:
        _HEADS[name] = migrate.head_revision(name, engine)
    return _HEADS[name]


#: a table estimated under this many rows is counted exactly; above it the estimate is shown (ADR 0052)
EXACT_BELOW = 10_000


def _per_table(conn, tables: list[str], expr: str) -> dict[str, int]:
    """``expr`` (with ``{t}``, the quoted table name) for each table, in one statement per 100 tables
    (``UNION ALL`` of scalar sub-queries: one round trip instead of one per table)."""
    out: dict[str, int] = {}
    for k in range(0, len(tables), 100):
        part = tables[k:k + 100]
        q = " UNION ALL ".join(f"SELECT {i}, {expr.format(t=_quoted(t))}" for i, t in enumerate(part))
        for i, n in conn.execute(text(q)):
            out[part[int(i)]] = int(n or 0)
    return out


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'      # names from the catalogue, quoted


#: PostgreSQL's catalogue of the current schema in one round trip: every table's name, the server's cheap
#: idea of its rows (``pg_stat_user_tables.n_live_tup`` — inserts minus deletes, current to within
#: seconds — or the planner's ``pg_class.reltuples`` as of the last VACUUM/ANALYZE, whichever is larger)
#: and its size on disk with indexes and TOAST
_PG_CATALOGUE = text(
    "SELECT c.relname, c.relkind, GREATEST(c.reltuples, COALESCE(s.n_live_tup, 0), 0)::bigint, "
    "pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')")


def _pg_catalogue(conn) -> tuple[list[str], dict[str, int], int]:
    """(tables, estimated rows per table, bytes of the schema) from :data:`_PG_CATALOGUE`."""
    tables, est, size = [], {}, 0
    for name, kind, rows, nbytes in conn.execute(_PG_CATALOGUE):
        size += int(nbytes or 0)
        if kind in ("r", "p"):
            tables.append(name)
            est[name] = int(rows or 0)
    return sorted(tables), est, size


def _estimates(conn, tables: list[str]) -> dict[str, int]:
    """The engine's cheap idea of each table's size, without reading the table.

    PostgreSQL: the catalogue (:func:`_pg_catalogue`). SQLite: the span of the rowid (the largest minus
    the smallest, plus one: two B-tree descents, each its own sub-query — a lone MIN or MAX is read from
    the B-tree's edge, both in one SELECT read the whole table): never fewer than the rows there are,
    more only where rows were deleted in between."""
    if conn.dialect.name == "postgresql":
        return _pg_catalogue(conn)[1]
    try:
        return _per_table(conn, tables, "(SELECT MAX(rowid) FROM {t}) - (SELECT MIN(rowid) FROM {t}) + 1")
    except Exception:  # noqa: BLE001 - a table without rowid: every table counted exactly
        return {}


def row_counts(conn) -> tuple[dict[str, int], list[str]]:
    """Rows per table and which of them are estimates.

    A COUNT(*) reads the whole table (or its smallest index) — on PostgreSQL at 100,000 residents the
    95 counts of the three databases were most of every /ops view, and they grow with the registers.
    So a table the engine estimates at :data:`EXACT_BELOW` rows or more shows the estimate (約, the
    operator reads growth, not a figure to reconcile); smaller ones, where a count is cheap and a
    figure such as 0 or 3 matters (outbox, sessions, media), are counted exactly — all of them in one
    statement. No count shown to an auditor comes from here (the audit screens count exactly)."""
    tables = sorted(inspect(conn).get_table_names())
    return _counted(conn, tables, _estimates(conn, tables))


def _counted(conn, tables: list[str], est: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    big = [t for t in tables if est.get(t, 0) >= EXACT_BELOW]
    exact = _per_table(conn, [t for t in tables if t not in big], "(SELECT COUNT(*) FROM {t})")
    return {t: est[t] if t in big else exact[t] for t in tables}, big


def database(registers, name: str, *, counts: bool = True) -> DatabaseStatus:
    st = DatabaseStatus(name)
    engine = registers.engine(name)
    try:
        with engine.connect() as conn:
            if is_sqlite(str(engine.url)):
                conn.execute(text("SELECT 1"))
                st.reachable = True
                path = engine.url.database
                st.size_bytes = sum(os.path.getsize(p) for p in (path, path + "-wal") if p and os.path.exists(p))
                if counts:
                    st.rows, st.estimated = row_counts(conn)
            else:
                # one catalogue query answers reachable, size, the tables and their estimates (issue 19)
                tables, est, st.size_bytes = _pg_catalogue(conn)
                st.reachable = True
                if counts:
                    st.rows, st.estimated = _counted(conn, tables, est)
            st.revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        st.head = head_revision(name, engine)
        st.up_to_date = st.revision == st.head
    except Exception as e:  # noqa: BLE001 - reported, never raised
        st.error_code = _code(e)
    return st


def outbox(registers, register: str, now: datetime) -> OutboxStatus:
    st = OutboxStatus(register)
    t = INTAKE_TABLES[register][1]
    try:
        with registers.engine(register).connect() as conn:
            rows = dict(conn.execute(select(t.c.state, func.count()).where(t.c.state.in_(("pending", "failed")))
                                     .group_by(t.c.state)).all())
            oldest = conn.execute(select(func.min(t.c.created_at)).where(t.c.state.in_(("pending", "failed")))
                                  ).scalar_one()
        st.depth = sum(rows.values())
        st.failed = rows.get("failed", 0)
        st.oldest_at = _utc(oldest)
        st.oldest_age_seconds = max(0.0, (now - st.oldest_at).total_seconds()) if st.oldest_at else 0.0
    except Exception as e:  # noqa: BLE001
        st.error_code = _code(e)
    return st


def retention(registers, register: str) -> RetentionStatus:
    """The last run of the retention job in ``register`` (one batch = one run of every rule)."""
    st = RetentionStatus(register)
    t = RETENTION_RUNS[register]
    try:
        with registers.engine(register).connect() as conn:
            last = conn.execute(select(t.c.batch_id, t.c.finished_at).where(t.c.dry_run.is_(False))
                                .order_by(t.c.run_id.desc()).limit(1)).first()
            if last is not None:
                st.last_run_at = _utc(last.finished_at)
                by = dict(conn.execute(select(t.c.status, func.count()).where(t.c.batch_id == last.batch_id)
                                       .group_by(t.c.status)).all())
                st.completed, st.failed = by.get("completed", 0) + by.get("skipped", 0), by.get("failed", 0)
    except Exception as e:  # noqa: BLE001
        st.error_code = _code(e)
    return st


def backup(config: Config) -> BackupStatus:
    """``DIR/ops/backup-status.json`` as written by the backup job; absent means "never ran"."""
    path = status_path(config)
    st = BackupStatus()
    if not path.exists():
        return st
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(d, dict):
            raise ValueError("not an object")
        st.present = True
        st.last_success_at = _utc(d.get("last_success_at"))
        st.last_failure_at = _utc(d.get("last_failure_at"))
        code = d.get("last_failure_code")
        st.last_failure_code = str(code)[:40] if code is not None else None
        st.last_bytes = int(d["last_bytes"]) if d.get("last_bytes") is not None else None
        st.last_seconds = float(d["last_seconds"]) if d.get("last_seconds") is not None else None
        st.last_file = Path(str(d["last_file"])).name if d.get("last_file") else None
    except (OSError, ValueError, TypeError, KeyError):
        st.error_code = "BACKUP_STATUS_UNREADABLE"
    return st


def scheduler(config: Config, sched, now: datetime) -> SchedulerStatus:
    rc = config.retention
    st = SchedulerStatus(enabled=rc.enabled, daily_at=rc.daily_at)
    if rc.enabled:
        try:
            st.next_run_at = next_run_after(now, rc.daily_at)
        except ValueError:
            st.next_run_at = None
    if sched is not None:
        thread = getattr(sched, "_thread", None)
        st.running = bool(thread is not None and thread.is_alive())
        st.runs = sched.runs
        st.last_run_at = getattr(sched, "last_run_at", None)
        st.last_outcome = getattr(sched, "last_outcome", None)
    return st


def collect(registers, config: Config, *, sched=None, now: Optional[datetime] = None, counts: bool = True) -> OpsStatus:
    """Every probe, side by side: they read three databases, a file and perhaps Patroni's REST API, and
    none depends on another — run one after the other the screen waited for the sum of some forty
    round trips (issue 19, ADR 0052). Each probe reports its own failure as a code."""
    now = now or datetime.now(timezone.utc)
    with ThreadPoolExecutor(max_workers=6, thread_name_prefix="jukinet-ops-status") as ex:
        dbs = [ex.submit(database, registers, name, counts=counts) for name in migrate.STORES]
        box = [ex.submit(outbox, registers, r, now) for r in migrate.REGISTERS]
        ret = [ex.submit(retention, registers, r) for r in migrate.REGISTERS]
        mon = ex.submit(monthly_report, registers, config, sched, now)
        arc = ex.submit(archive, registers)
        clu = ex.submit(cluster, config, now)
        return OpsStatus(
            at=now,
            databases=[f.result() for f in dbs],
            outbox=[f.result() for f in box],
            retention=[f.result() for f in ret],
            backup=backup(config),
            scheduler=scheduler(config, sched, now),
            monthly_report=mon.result(),
            checkpoints=oplog_checkpoints.latest(config.data_dir),
            checkpoint_outcome=getattr(sched, "checkpoint_outcome", None),
            archive=arc.result(),
            cluster=clu.result(),
        )


def archive(registers, store: str = "juki") -> Optional[ArchiveStatus]:
    """``pg_stat_archiver`` over the register's own connection (it reaches the primary); None on SQLite."""
    engine = registers.engine(store)
    if is_sqlite(str(engine.url)):
        return None
    st = ArchiveStatus()
    try:
        with engine.connect() as conn:
            st.mode = conn.execute(text("SHOW archive_mode")).scalar()
            row = conn.execute(text("SELECT archived_count, last_archived_wal, last_archived_time, failed_count, "
                                    "last_failed_wal, last_failed_time FROM pg_stat_archiver")).one()
        st.archived_count, st.last_archived_wal, st.failed_count, st.last_failed_wal = (
            int(row[0]), row[1], int(row[3]), row[4])
        st.last_archived_at, st.last_failed_at = _utc(row[2]), _utc(row[5])
    except Exception as e:  # noqa: BLE001
        st.error_code = _code(e)
    return st


def cluster(config: Config, now: datetime) -> Optional[ClusterStatus]:
    cc = config.cluster
    if not cc.patroni_urls:
        return None
    rep = R.read(list(cc.patroni_urls), expected_members=cc.expected_members, max_lag_bytes=cc.max_lag_bytes,
                 max_lag_seconds=cc.max_lag_seconds, max_dcs_age_seconds=cc.max_dcs_age_seconds,
                 timeout=cc.rest_timeout, now=now)
    st = ClusterStatus(replication=rep)
    if cc.pgbackrest_config:
        st.repo = R.pgbackrest_info(cc.pgbackrest_config, cc.pgbackrest_stanza)
        last = st.repo.last_backup_at
        st.backup_stale = last is None or (now - last).total_seconds() > cc.max_backup_age_hours * 3600
    return st


def monthly_report(registers, config: Config, sched, now: datetime):
    return monthly.status(config, registers, now, getattr(sched, "monthly_outcome", None))


def light(registers, config: Config, *, sched=None) -> OpsStatus:
    """The status without row counts (for the metrics scrape)."""
    return collect(registers, config, sched=sched, counts=False)
