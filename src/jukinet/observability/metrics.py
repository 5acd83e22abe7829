"""Prometheus metrics of the server (A7; ADR 0027) — counts, times and codes only.

Two kinds:

* **Events**, counted as they happen, in this module's :data:`REGISTRY` (one per process; in a
  consolidated center one :class:`Events` per tenant, chosen per request and per background thread): HTTP
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

import threading
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

disable_created_metrics()   # no ``*_created`` series: half the lines, nothing a dashboard uses


class Events:
    """The event counters of one installation, in a registry of their own. A single-prefecture
    server uses the process's default; a consolidated center gives each tenant its own, so that one
    prefecture's ``/metrics`` never counts another's requests, notifications or refusals (ADR 0045)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter("jukinet_http_requests", "HTTP requests by route template, method and status",
                                     ["method", "route", "status"], registry=r)
        self.http_latency = Histogram("jukinet_http_request_duration_seconds", "HTTP request duration by route template",
                                      ["method", "route"], registry=r,
                                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
        self.intake = Counter("jukinet_intake_notifications", "CS notifications by register, outcome and refusal code",
                              ["register", "outcome", "code"], registry=r)
        self.oplog_appends = Counter("jukinet_oplog_appends", "Operation-log entries written, by chain, action and outcome",
                                     ["chain", "action", "outcome"], registry=r)
        self.login_failures = Counter("jukinet_login_failures", "Refused operator logins, by code", ["code"], registry=r)
        # certificate revocation (ADR 0030): alert when next_update - time() is small or negative
        self.crl_next_update = Gauge("jukinet_crl_next_update_timestamp_seconds",
                                     "Earliest nextUpdate of the CRLs in force (Unix time; 0 if none)", registry=r)
        self.crl_revoked = Gauge("jukinet_crl_revoked_certificates", "Certificates listed on the CRLs in force",
                                 registry=r)
        self.crl_errors = Counter("jukinet_crl_load_errors", "CRL files refused (missing, unreadable, bad signature)",
                                  ["code"], registry=r)


_DEFAULT = Events()
REGISTRY = _DEFAULT.registry
#: the tenant a request is served for (set by the center's router around the tenant's application)
_current: ContextVar[Optional[Events]] = ContextVar("jukinet_metric_events", default=None)
#: background threads of a tenant (outbox worker, scheduler, CRL watcher): thread id -> (the thread,
#: its events); the thread is kept so that a later thread given the same id (ids are reused once a
#: thread ends) is never counted in a stopped tenant's events
_threads: dict[int, tuple[threading.Thread, Events]] = {}
_threads_lock = threading.Lock()


def current() -> Events:
    ev = _current.get()
    if ev is not None:
        return ev
    entry = _threads.get(threading.get_ident())
    if entry is not None and entry[0] is threading.current_thread():
        return entry[1]
    return _DEFAULT


def use(events: Events) -> Token:
    """Count what follows in this context (a request, and the thread-pool calls it makes) in ``events``."""
    return _current.set(events)


def reset(token: Token) -> None:
    _current.reset(token)


@contextmanager
def threads_of(events: Events) -> Iterator[None]:
    """Count in ``events`` what the threads started inside this block (and this thread meanwhile) do."""
    before = {t.ident for t in threading.enumerate()}
    token = use(events)
    try:
        yield
    finally:
        reset(token)
        with _threads_lock:
            for t in threading.enumerate():
                if t.ident not in before and t.ident is not None:
                    _threads[t.ident] = (t, events)
            for ident in [i for i in _threads if i not in {t.ident for t in threading.enumerate()}]:
                del _threads[ident]     # threads that have ended (their ids may be reused)


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    e = current()
    e.http_requests.labels(method, route, str(status)).inc()
    e.http_latency.labels(method, route).observe(seconds)


def intake_answers(register: str, answers) -> None:
    """Count the answers of one intake call (``{"status": accepted|duplicate|rejected, "error"}``)."""
    intake = current().intake
    for a in answers:
        if a is None:
            continue
        status = a.get("status")
        if status == "rejected":
            intake.labels(register, "refused", (a.get("error") or {}).get("code") or "UNKNOWN").inc()
        else:
            intake.labels(register, status or "unknown", "").inc()


def intake_refused(register: str, code: str, n: int = 1) -> None:
    """A request refused as a whole (no certificate, not JSON, …): ``n`` notifications or one request."""
    current().intake.labels(register, "refused", code).inc(max(1, n))


def oplog_appended(chain: str, action: str, outcome: str) -> None:
    current().oplog_appends.labels(chain, action[:40], outcome).inc()


def login_failed(code: str) -> None:
    current().login_failures.labels(code).inc()


def crl_state(next_update: float | None, revoked: int) -> None:
    e = current()
    e.crl_next_update.set(next_update or 0)
    e.crl_revoked.set(revoked)


def crl_load_error(code: str) -> None:
    current().crl_errors.labels(code).inc()


def exposition(state_registry: CollectorRegistry, events: Optional[Events] = None) -> bytes:
    """The text exposition: the event counters (of ``events``, default: the current installation's),
    then the application's state."""
    return generate_latest((events or current()).registry) + generate_latest(state_registry)
