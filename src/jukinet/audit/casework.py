"""利用停止請求 and 通報 in the monthly report (O4, O5; ADR 0039): where the 管理責任者 and an auditor
look for requests that ran past their legal deadline and 通報 a municipality never acknowledged.

Figures as they stood at the **end of the month** (decisions and acknowledgements after it do not
change a closed month's figures, so a signed report keeps its SHA-256):

* per register: 利用停止請求 received in the month, decided in the month, extended in the month, and
  open at the end of the month past their deadline (期限超過, with their numbers);
* per register: 通報 made in the month, acknowledged by the municipality's CS by the end of the month,
  and 通報 older than ``OVERDUE_HOURS`` not acknowledged at the end of the month (要確認, with numbers).

Only office references (請求番号, 通報番号, 市町村コード) and counts: no resident data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import and_, func, or_, select

from jukinet.store.tables_disclosure import MUNICIPAL_REPORTS, SUSPENSION_REQUESTS, SUSPENSION_STEPS

LABELS = {"juki": "本人確認情報", "fuhyo": "附票"}
#: the same threshold as the operator screen (jukinet.disclosure.reports.OVERDUE_HOURS)
OVERDUE_HOURS = 72


@dataclass(frozen=True)
class Casework:
    #: (register label, received, decided, extended, open past the deadline at month end)
    suspensions: tuple = ()
    #: (register label, suspension_id, due date) of those past the deadline
    overdue: tuple = ()
    #: (register label, made, acknowledged by month end, unacknowledged past OVERDUE_HOURS)
    reports: tuple = ()
    #: (register label, report_id, municipality code, created_at) of those not acknowledged
    unacknowledged: tuple = field(default=())

    @property
    def attention(self) -> int:
        return len(self.overdue) + len(self.unacknowledged)


def casework(registers, start: datetime, end: datetime, last_day: date,
             now: Optional[datetime] = None) -> Casework:
    """The month [start, end) (UTC); ``now`` bounds a month not yet ended."""
    cut = min(end, now) if now else end
    sus, overdue, reps, unack = [], [], [], []
    for reg in ("juki", "fuhyo"):
        st, sp, mr = SUSPENSION_REQUESTS[reg], SUSPENSION_STEPS[reg], MUNICIPAL_REPORTS[reg]
        with registers.engine(reg).connect() as conn:
            received = conn.execute(select(func.count()).select_from(st).where(
                st.c.received_at >= start, st.c.received_at < end)).scalar()
            decided = conn.execute(select(func.count()).select_from(st).where(
                st.c.decided_at >= start, st.c.decided_at < end)).scalar()
            extended = conn.execute(select(func.count()).select_from(sp).where(
                sp.c.at >= start, sp.c.at < end, sp.c.note_code.startswith("extend:"))).scalar()
            day = min(last_day, (cut - timedelta(microseconds=1)).date()) if now else last_day
            late = conn.execute(select(st.c.suspension_id, st.c.due_date).where(
                st.c.received_at < cut, st.c.due_date < day,
                or_(st.c.decided_at.is_(None), st.c.decided_at >= cut)).order_by(st.c.due_date)).all()
            made = conn.execute(select(func.count()).select_from(mr).where(
                mr.c.created_at >= start, mr.c.created_at < end)).scalar()
            acked = conn.execute(select(func.count()).select_from(mr).where(
                mr.c.created_at >= start, mr.c.created_at < end, mr.c.acknowledged_at < cut)).scalar()
            waiting = conn.execute(select(mr.c.report_id, mr.c.municipality_code, mr.c.created_at).where(
                mr.c.created_at < cut - timedelta(hours=OVERDUE_HOURS),
                or_(mr.c.acknowledged_at.is_(None), and_(mr.c.acknowledged_at >= cut)))
                .order_by(mr.c.created_at)).all()
        label = LABELS[reg]
        sus.append((label, received, decided, extended, len(late)))
        overdue.extend((label, r.suspension_id, r.due_date) for r in late)
        reps.append((label, made, acked, len(waiting)))
        unack.extend((label, r.report_id, r.municipality_code, r.created_at) for r in waiting)
    return Casework(tuple(sus), tuple(overdue), tuple(reps), tuple(unack))
