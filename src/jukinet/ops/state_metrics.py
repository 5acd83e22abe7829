"""The state half of the Prometheus metrics (A7; ADR 0027): read from the databases, the backup status
file, the scheduler and (Q3, ADR 0044) the WAL archiver and the Patroni cluster when ``/metrics`` is scraped. The event counters are in
:mod:`jukinet.observability.metrics`; this collector is in the operations room because it reads the
operations status (:mod:`jukinet.ops.status`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from datetime import datetime, timezone

from sqlalchemy import func, select

from jukinet.ops import status as S
from jukinet.store.tables_media import media_checks


def _ts(dt) -> float | None:
    return dt.timestamp() if dt is not None else None


class StateCollector(Collector):
    """Gauges read from the databases and the backup status file at scrape time."""

    def __init__(self, registers, config, scheduler_of=lambda: None):
        self.registers = registers
        self.config = config
        self.scheduler_of = scheduler_of

    def describe(self):
        return []

    def collect(self):
        st = S.light(self.registers, self.config, sched=self.scheduler_of())
        up = GaugeMetricFamily("jukinet_database_up", "1 if the database answers", labels=["database"])
        head = GaugeMetricFamily("jukinet_database_schema_up_to_date", "1 if the database is at the migration head",
                                 labels=["database"])
        size = GaugeMetricFamily("jukinet_database_size_bytes", "Size of the database (files or schema)",
                                 labels=["database"])
        for d in st.databases:
            up.add_metric([d.name], 1 if d.reachable else 0)
            head.add_metric([d.name], 1 if d.up_to_date else 0)
            if d.size_bytes is not None:
                size.add_metric([d.name], d.size_bytes)
        yield from (up, head, size)
        depth = GaugeMetricFamily("jukinet_outbox_depth", "Updates not yet confirmed by the national server",
                                  labels=["register"])
        failed = GaugeMetricFamily("jukinet_outbox_failed", "Outbox entries in state failed", labels=["register"])
        age = GaugeMetricFamily("jukinet_outbox_oldest_age_seconds", "Age of the oldest waiting outbox entry",
                                labels=["register"])
        for o in st.outbox:
            if o.depth is not None:
                depth.add_metric([o.register], o.depth)
                failed.add_metric([o.register], o.failed or 0)
                age.add_metric([o.register], o.oldest_age_seconds or 0.0)
        yield from (depth, failed, age)
        ret = GaugeMetricFamily("jukinet_retention_last_run_timestamp_seconds",
                                "End of the last retention run (Unix time)", labels=["register"])
        ret_failed = GaugeMetricFamily("jukinet_retention_last_run_failed_rules",
                                       "Rules that failed in the last retention run", labels=["register"])
        for r in st.retention:
            if r.last_run_at is not None:
                ret.add_metric([r.register], r.last_run_at.timestamp())
                ret_failed.add_metric([r.register], r.failed)
        yield from (ret, ret_failed)
        b = st.backup
        yield GaugeMetricFamily("jukinet_backup_status_present", "1 if the backup status file exists and is readable",
                                value=1 if b.present else 0)
        for name, text, value in (
                ("jukinet_backup_last_success_timestamp_seconds", "Last successful backup (Unix time)",
                 _ts(b.last_success_at)),
                ("jukinet_backup_last_failure_timestamp_seconds", "Last failed backup (Unix time)",
                 _ts(b.last_failure_at)),
                ("jukinet_backup_last_bytes", "Size of the last backup", b.last_bytes),
                ("jukinet_backup_last_duration_seconds", "Duration of the last backup", b.last_seconds)):
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)
        sc = st.scheduler
        if sc is not None:
            yield GaugeMetricFamily("jukinet_scheduler_enabled", "1 if the daily retention job is enabled",
                                    value=1 if sc.enabled else 0)
            if sc.running is not None:
                yield GaugeMetricFamily("jukinet_scheduler_running", "1 if the scheduler thread is alive",
                                        value=1 if sc.running else 0)
        yield from self._media()
        mr = st.monthly_report
        if mr is not None and mr.error_code is None:   # A4 (ADR 0028): last month's analysis
            yield GaugeMetricFamily("jukinet_audit_monthly_report_generated",
                                    "1 if the due month's access-log analysis exists", value=1 if mr.generated_at else 0)
            yield GaugeMetricFamily("jukinet_audit_monthly_report_signed_off",
                                    "1 if its current version is signed off by the manager",
                                    value=1 if mr.signed_off else 0)
        if st.archive is not None:
            yield from archive_metrics(st.archive)
        if st.cluster is not None:
            yield from cluster_metrics(st.cluster)

    def _media(self):
        """G2 (ADR 0040): the last weekly check of the media register and whether the next is overdue."""
        try:
            with self.registers.admin_tx(write=False) as conn:
                last = conn.execute(select(func.max(media_checks.c.checked_at))).scalar()
        except Exception:  # noqa: BLE001 - a database that does not answer is reported by jukinet_database_up
            return
        if last is not None:
            last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
            yield GaugeMetricFamily("jukinet_media_check_last_timestamp_seconds",
                                    "Last weekly check of the media register against the vault (Unix time)",
                                    value=last.timestamp())
        overdue = last is None or (datetime.now(timezone.utc) - last).total_seconds() > \
            self.config.media.check_interval_days * 86400
        yield GaugeMetricFamily("jukinet_media_check_overdue",
                                "1 if the weekly check of the media register is overdue", value=1 if overdue else 0)


def archive_metrics(a: S.ArchiveStatus):
    """WAL archiving of the primary (``pg_stat_archiver``; Q3, ADR 0044)."""
    if a.error_code is not None:
        return
    yield GaugeMetricFamily("jukinet_wal_archive_failing", "1 if the last WAL archive attempt failed",
                            value=1 if a.failing else 0)
    yield GaugeMetricFamily("jukinet_wal_archived", "WAL segments archived since the statistics reset",
                            value=a.archived_count or 0)
    yield GaugeMetricFamily("jukinet_wal_archive_failures", "Failed WAL archive attempts since the statistics reset",
                            value=a.failed_count or 0)
    for name, text, value in (
            ("jukinet_wal_last_archived_timestamp_seconds", "Last WAL segment archived (Unix time)",
             _ts(a.last_archived_at)),
            ("jukinet_wal_last_archive_failure_timestamp_seconds", "Last failed WAL archive attempt (Unix time)",
             _ts(a.last_failed_at))):
        if value is not None:
            yield GaugeMetricFamily(name, text, value=value)


def cluster_metrics(c: S.ClusterStatus):
    """The replication state from Patroni's REST API and the pgBackRest repository (Q3, ADR 0044).
    Labels: node names and roles from Patroni (fixed by the configuration)."""
    rep = c.replication
    yield GaugeMetricFamily("jukinet_cluster_reachable", "1 if a Patroni REST API answered", value=1 if rep.reachable else 0)
    yield GaugeMetricFamily("jukinet_cluster_healthy",
                            "1 if there is a leader, a synchronous standby and every member streams within the lag limits",
                            value=1 if rep.healthy else 0)
    yield GaugeMetricFamily("jukinet_cluster_members", "Members registered in the DCS", value=len(rep.members))
    yield GaugeMetricFamily("jukinet_cluster_sync_standbys", "Synchronous standbys",
                            value=1 if rep.sync_standby else 0)
    if rep.timeline is not None:
        yield GaugeMetricFamily("jukinet_cluster_timeline", "Timeline of the leader", value=rep.timeline)
    up = GaugeMetricFamily("jukinet_cluster_member_up", "1 if the member runs and its REST API answers",
                           labels=["member", "role"])
    tl = GaugeMetricFamily("jukinet_cluster_member_timeline", "Timeline of the member", labels=["member"])
    lag_b = GaugeMetricFamily("jukinet_cluster_member_lag_bytes", "WAL bytes the standby is behind the leader",
                              labels=["member"])
    lag_s = GaugeMetricFamily("jukinet_cluster_member_lag_seconds",
                              "Seconds the standby's replay is behind (0 when it has replayed everything)",
                              labels=["member"])
    for m in rep.members:
        up.add_metric([m.name, m.role], 1 if m.up else 0)
        if m.timeline is not None:
            tl.add_metric([m.name], m.timeline)
        if m.role not in ("leader", "standby_leader"):
            if m.lag_bytes is not None:
                lag_b.add_metric([m.name], m.lag_bytes)
            if m.lag_seconds is not None:
                lag_s.add_metric([m.name], m.lag_seconds)
    yield from (up, tl, lag_b, lag_s)
    problems = GaugeMetricFamily("jukinet_cluster_problems", "Faults seen in the replication state, by code",
                                 labels=["code"])
    counts: dict[str, int] = {}
    for p in rep.problems:
        counts[p.code] = counts.get(p.code, 0) + 1
    for code, n in sorted(counts.items()):
        problems.add_metric([code], n)
    yield problems
    r = c.repo
    if r is not None:
        yield GaugeMetricFamily("jukinet_pgbackrest_ok", "1 if the pgBackRest stanza is ok and a recent backup exists",
                                value=1 if r.error_code is None and r.status_code == 0 and not c.backup_stale else 0)
        yield GaugeMetricFamily("jukinet_pgbackrest_backups", "Backups in the repository", value=r.backups)
        for name, text, value in (
                ("jukinet_pgbackrest_last_backup_timestamp_seconds", "End of the last backup (Unix time)",
                 _ts(r.last_backup_at)),
                ("jukinet_pgbackrest_last_full_backup_timestamp_seconds", "End of the last full backup (Unix time)",
                 _ts(r.last_full_at))):
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)



def app_registry(registers, config, scheduler_of=lambda: None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StateCollector(registers, config, scheduler_of))
    return reg
