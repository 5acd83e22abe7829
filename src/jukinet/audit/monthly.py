"""The monthly access-log analysis, made by ``jukinet serve`` itself (A4; ADR 0028).

On the 1st of each month at ``[audit].monthly_report_at`` (JST) — or at the first start of the
server after that, should it have been down — the ops scheduler generates **last month's** report
with the same service as ``jukinet audit report`` and the manager's screen
(:meth:`jukinet.audit.service.AuditService.generate`): PDF and CSV rendered, their SHA-256 and the
counts stored in ``audit_reports``, the run in the admin operation log (actor ``scheduler``). The
管理責任者 then only reviews and signs off on ``/audit/reports``.

Idempotent: once a month has a report (made by the scheduler or by a person) whose entry count is
still the month's, the daily check does nothing. Entries are never removed from the chains, so a
different count means entries of that month were appended late (the log changed): then the report
is generated again and the service stores a second version (it stores a new row only for a new
digest). A failure is logged by code and tried again at the next daily check.

:func:`status` is what the operations status shows: the month due, whether its report exists, and
whether the current version is signed off — counts and times only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import select

from jukinet.audit.service import JST, Month, previous_month
from jukinet.store.tables_audit import audit_reports, audit_signoffs
from jukinet.audit.service import AuditService
from jukinet.security.oplog import Actor
from jukinet.security.oplog import CHAINS
from jukinet.store.tables_security import OPLOG
from jukinet import wareki
from sqlalchemy import func

log = logging.getLogger("jukinet.ops")
SCHEDULER_ACTOR = "scheduler"


@dataclass
class MonthlyRun:
    month: str
    #: "generated", "regenerated" (the month's log changed), "exists" (nothing done), or an error code
    outcome: str
    report_id: Optional[int] = None


def due_month(now: datetime, at: str) -> Month:
    """The month whose report is due at ``now``: last month once the 1st's ``at`` (JST) has passed,
    the month before it until then.

    >>> due_month(datetime(2026, 10, 31, 20, 0, tzinfo=timezone.utc), "05:00").key   # 11/1 05:00 JST
    '2026-10'
    >>> due_month(datetime(2026, 10, 31, 19, 59, tzinfo=timezone.utc), "05:00").key
    '2026-09'
    """
    hh, mm = (int(x) for x in at.split(":"))
    local = now.astimezone(JST)
    first = local.replace(day=1, hour=hh, minute=mm, second=0, microsecond=0)
    today = local.date() if local >= first else local.date().replace(day=1) - timedelta(days=1)
    return previous_month(today)


def next_due_at(now: datetime, at: str) -> datetime:
    """The next 1st-of-the-month ``at`` (JST) strictly after ``now``, in UTC."""
    hh, mm = (int(x) for x in at.split(":"))
    local = now.astimezone(JST)
    t = local.replace(day=1, hour=hh, minute=mm, second=0, microsecond=0)
    if t <= local:
        t = (t.replace(day=28) + timedelta(days=4)).replace(day=1)
    return t.astimezone(timezone.utc)


def run(config, registers, *, now: datetime) -> MonthlyRun:
    """Generate the due month's report unless it has one; never raises (failures: log, by code)."""
    month = due_month(now, config.audit.monthly_report_at)
    try:
        with registers.admin_tx(write=False) as conn:
            existing = conn.execute(select(audit_reports.c.report_id, audit_reports.c.entry_count)
                                    .where(audit_reports.c.month == month.key)
                                    .order_by(audit_reports.c.report_id.desc()).limit(1)).first()
        if existing is not None and existing.entry_count == entry_count(registers, month):
            return MonthlyRun(month.key, "exists", existing.report_id)
        g = AuditService(config, registers).generate(Actor(SCHEDULER_ACTOR, None), month, now=now)
    except Exception as e:  # noqa: BLE001 - reported by code; tried again at the next check
        code = getattr(e, "code", None) or type(e).__name__
        log.error("monthly access-log analysis failed: month=%s code=%s", month.key, code)
        return MonthlyRun(month.key, code)
    log.info("monthly access-log analysis generated: month=%s report_id=%s entries=%d flags=%d",
             month.key, g.report_id, g.analysis.entries, len(g.analysis.flags))
    return MonthlyRun(month.key, "generated" if existing is None else "regenerated", g.report_id)


def entry_count(registers, month: Month) -> int:
    """Entries of the three chains stamped in the month (what the report counts)."""
    total = 0
    for chain in CHAINS:
        t, _ = OPLOG[chain]
        with registers.engine(chain).connect() as conn:
            total += conn.execute(select(func.count()).select_from(t)
                                  .where(t.c.at >= month.start_utc, t.c.at < month.end_utc)).scalar_one()
    return total


@dataclass
class MonthlyStatus:
    enabled: bool
    at: str
    month: Optional[str] = None
    generated_at: Optional[datetime] = None
    generated_by_scheduler: bool = False
    signed_off: bool = False
    #: the scheduler's last run in this process ("generated", "exists" or a code)
    last_outcome: Optional[str] = None
    next_run_at: Optional[datetime] = None
    error_code: Optional[str] = None

    @property
    def label(self) -> str:
        """``令和8年10月分 作成済 / 未承認`` (what /ops shows; the month in 和暦, ADR 0042)."""
        month = f"{wareki.show(self.month)}分" if self.month else ""
        if self.error_code:
            return f"{month} 状態を取得できません ({self.error_code})".strip()
        if self.generated_at is None:
            return f"{month} 未作成"
        return f"{month} 作成済 / {'承認済' if self.signed_off else '未承認'}"


def status(config, registers, now: datetime, last_outcome: Optional[str] = None) -> MonthlyStatus:
    cfg = config.audit
    st = MonthlyStatus(enabled=cfg.monthly_report, at=cfg.monthly_report_at, last_outcome=last_outcome)
    try:
        st.month = due_month(now, cfg.monthly_report_at).key
        st.next_run_at = next_due_at(now, cfg.monthly_report_at) if cfg.monthly_report else None
        with registers.admin_tx(write=False) as conn:
            rep = conn.execute(select(audit_reports.c.report_id, audit_reports.c.generated_at,
                                      audit_reports.c.generated_by)
                               .where(audit_reports.c.month == st.month)
                               .order_by(audit_reports.c.report_id.desc()).limit(1)).first()
            if rep is not None:
                st.generated_at = rep.generated_at if rep.generated_at.tzinfo else \
                    rep.generated_at.replace(tzinfo=timezone.utc)
                st.generated_by_scheduler = rep.generated_by == SCHEDULER_ACTOR
                st.signed_off = conn.execute(select(audit_signoffs.c.signoff_id)
                                             .where(audit_signoffs.c.report_id == rep.report_id).limit(1)
                                             ).first() is not None
    except Exception as e:  # noqa: BLE001 - a status never raises
        st.error_code = getattr(e, "code", None) or type(e).__name__
    return st
