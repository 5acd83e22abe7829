"""The weekly check of the media register against the vault, week by week (G2; PIA III.4 「週次で
管理簿と保管庫の媒体をチェックし、チェックリストに記入している」; ADR 0040).

A week is an ISO week in JST (Monday–Sunday). A week is *checked* when a check was recorded in it;
a week that has ended (or, for the current week, is past ``interval_days`` since the last check)
without one is *overdue* (未実施) — the monthly report lists such weeks of its month and the
media screen warns.

>>> from datetime import date, datetime, timezone
>>> wk = weeks_of_month(2026, 11)
>>> [w.key for w in wk][:2], wk[0].monday, wk[-1].sunday
(['2026-W44', '2026-W45'], datetime.date(2026, 10, 26), datetime.date(2026, 11, 29))
>>> checks = [datetime(2026, 11, 4, 1, 0, tzinfo=timezone.utc)]           # Wednesday of W45
>>> [(s.week.key, s.state) for s in week_states(wk, checks, today=date(2026, 12, 7))][:3]
[('2026-W44', 'overdue'), ('2026-W45', 'checked'), ('2026-W46', 'overdue')]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Optional

JST = timezone(timedelta(hours=9))


@dataclass(frozen=True)
class Week:
    monday: date

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def key(self) -> str:
        y, w, _ = self.monday.isocalendar()
        return f"{y}-W{w:02d}"


def week_of(d: date) -> Week:
    return Week(d - timedelta(days=d.weekday()))


def week_key(at: datetime) -> str:
    return week_of(at.astimezone(JST).date()).key


def weeks_of_month(year: int, month: int) -> list[Week]:
    """The ISO weeks whose Sunday falls in the month (each week belongs to exactly one month)."""
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    out, w = [], week_of(first)
    while w.monday < nxt:
        if first <= w.sunday < nxt:
            out.append(w)
        w = Week(w.monday + timedelta(days=7))
    return out


@dataclass(frozen=True)
class WeekState:
    week: Week
    state: str                 # checked | overdue | open (the week has not ended and no check yet)
    checks: int


def week_states(weeks: Iterable[Week], checks: Iterable[datetime], *, today: Optional[date] = None) -> list[WeekState]:
    today = today or datetime.now(JST).date()
    per: dict[str, int] = {}
    for at in checks:
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        k = week_key(at)
        per[k] = per.get(k, 0) + 1
    out = []
    for w in weeks:
        n = per.get(w.key, 0)
        state = "checked" if n else ("open" if w.sunday >= today else "overdue")
        out.append(WeekState(w, state, n))
    return out


STATE_LABELS = {"checked": "実施", "overdue": "未実施 (期限超過)", "open": "今週 (未実施)"}
