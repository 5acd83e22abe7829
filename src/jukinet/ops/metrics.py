"""Prometheus metrics of the server (A7; ADR 0027) — counts, times and codes only.

Two kinds:

* **Events**, counted as they happen, in this module's :data:`REGISTRY` (one per process): HTTP
  requests and their latency by *route template* (``/stats/csv/{source}``, never the raw path or
  query string), CS notifications accepted / duplicate / refused by code, operation-log appends by
  chain, action and outcome, login failures by code.
* **State**, read when ``/metrics`` is scraped (:class:`StateCollector`, one per application): each
  database up and at its migration head, database size, outbox depth and age of its oldest entry,
  the last retention run, the last backup (``DIR/ops/backup-status.json``) and the scheduler.

No label ever carries a value of a register: labels are route templates, methods, status codes,
register names, error codes and action names (all from fixed sets in the code).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()   # no ``*_created`` series: half the lines, nothing a dashboard uses
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("jukinet_http_requests", "HTTP requests by route template, method and status",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram("jukinet_http_request_duration_seconds", "HTTP request duration by route template",
                         ["method", "route"], registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
INTAKE = Counter("jukinet_intake_notifications", "CS notifications by register, outcome and refusal code",
                 ["register", "outcome", "code"], registry=REGISTRY)
OPLOG_APPENDS = Counter("jukinet_oplog_appends", "Operation-log entries written, by chain, action and outcome",
                        ["chain", "action", "outcome"], registry=REGISTRY)
LOGIN_FAILURES = Counter("jukinet_login_failures", "Refused operator logins, by code", ["code"], registry=REGISTRY)
# certificate revocation (ADR 0030): alert when next_update - time() is small or negative
CRL_NEXT_UPDATE = Gauge("jukinet_crl_next_update_timestamp_seconds",
                        "Earliest nextUpdate of the CRLs in force (Unix time; 0 if none)", registry=REGISTRY)
CRL_REVOKED = Gauge("jukinet_crl_revoked_certificates", "Certificates listed on the CRLs in force", registry=REGISTRY)
CRL_ERRORS = Counter("jukinet_crl_load_errors", "CRL files refused (missing, unreadable, bad signature)", ["code"],
                     registry=REGISTRY)


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def intake_answers(register: str, answers) -> None:
    """Count the answers of one intake call (``{"status": accepted|duplicate|rejected, "error"}``)."""
    for a in answers:
        if a is None:
            continue
        status = a.get("status")
        if status == "rejected":
            INTAKE.labels(register, "refused", (a.get("error") or {}).get("code") or "UNKNOWN").inc()
        else:
            INTAKE.labels(register, status or "unknown", "").inc()


def intake_refused(register: str, code: str, n: int = 1) -> None:
    """A request refused as a whole (no certificate, not JSON, …): ``n`` notifications or one request."""
    INTAKE.labels(register, "refused", code).inc(max(1, n))


def oplog_appended(chain: str, action: str, outcome: str) -> None:
    OPLOG_APPENDS.labels(chain, action[:40], outcome).inc()


def login_failed(code: str) -> None:
    LOGIN_FAILURES.labels(code).inc()


def crl_state(next_update: float | None, revoked: int) -> None:
    CRL_NEXT_UPDATE.set(next_update or 0)
    CRL_REVOKED.set(revoked)


def crl_load_error(code: str) -> None:
    CRL_ERRORS.labels(code).inc()


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
        from jukinet.ops import status as S

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
        mr = st.monthly_report
        if mr is not None and mr.error_code is None:   # A4 (ADR 0028): last month's analysis
            yield GaugeMetricFamily("jukinet_audit_monthly_report_generated",
                                    "1 if the due month's access-log analysis exists", value=1 if mr.generated_at else 0)
            yield GaugeMetricFamily("jukinet_audit_monthly_report_signed_off",
                                    "1 if its current version is signed off by the manager",
                                    value=1 if mr.signed_off else 0)


def app_registry(registers, config, scheduler_of=lambda: None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StateCollector(registers, config, scheduler_of))
    return reg


def exposition(state_registry: CollectorRegistry) -> bytes:
    """The text exposition: the process's event counters, then the application's state."""
    return generate_latest(REGISTRY) + generate_latest(state_registry)
