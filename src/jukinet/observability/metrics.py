"""Prometheus metrics of the server (A7; ADR 0027) — counts, times and codes only.

Two kinds:

* **Events**, counted as they happen, in this module's :data:`REGISTRY` (one per process): HTTP
  requests and their latency by *route template* (``/stats/csv/{source}``, never the raw path or
  query string), CS notifications accepted / duplicate / refused by code, operation-log appends by
  chain, action and outcome, login failures by code.
* **State**, read when ``/metrics`` is scraped (:class:`jukinet.ops.state_metrics.StateCollector`, one per application): each
  database up and at its migration head, database size, outbox depth and age of its oldest entry,
  the last retention run, the last backup (``DIR/ops/backup-status.json``) and the scheduler.

No label ever carries a value of a register: labels are route templates, methods, status codes,
register names, error codes and action names (all from fixed sets in the code).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

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


def exposition(state_registry: CollectorRegistry) -> bytes:
    """The text exposition: the process's event counters, then the application's state."""
    return generate_latest(REGISTRY) + generate_latest(state_registry)
