"""Security training (研修) of the operators: the gate of PIA IV.2 「受講しないと端末の操作者となれない」 (G1; ADR 0034).

An operator becomes (and stays) a terminal operator only with a training record of the **current
年度** (Japanese fiscal year, April–March, in JST): without it the operator cannot be activated
(enrollment, a password grant, 利用再開) nor sign in (``TRAINING_REQUIRED``). Records are kept in
``operator_trainings`` (admin database); a date in the future is refused (``TRAINING_DATE_FUTURE``).

The one exception is the **bootstrap administrator** (``jukinet operator bootstrap`` without
``--training-date``): for ``security.bootstrap_training_grace_days`` days after registration they
may work without a record, so that an installation can be set up before its first course; the
roster and the annual inventory show them as 猶予中 / untrained until the record is made.

>>> from datetime import date
>>> fiscal_year(date(2026, 3, 31)), fiscal_year(date(2026, 4, 1))
(2025, 2026)
>>> fiscal_year_label(2026), fiscal_year_label(2019)
('令和8年度', '平成31年度')
>>> parse_taken_on("2026-13-01")
Traceback (most recent call last):
...
jukinet.errors.JukinetError: TRAINING_DATE_INVALID: 受講日は YYYY-MM-DD の形式で、実在する日付を入力してください。
>>> parse_taken_on("2026-12-01", today=date(2026, 11, 26))
Traceback (most recent call last):
...
jukinet.errors.JukinetError: TRAINING_DATE_FUTURE: 受講日に未来の日付は指定できません。
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional

from jukinet import wareki
from jukinet.errors import JukinetError
from jukinet import text

JST = timezone(timedelta(hours=9))

#: the refusal of activation and sign-in (status 403): no record of the current 年度
TRAINING_REQUIRED = ("TRAINING_REQUIRED",
                     "今年度のセキュリティ研修の受講記録がないため、端末の操作者として利用できません。"
                     "研修を受講し、受講の記録をシステム管理者に依頼してください。", 403)
COURSE_MAX = 100


def today_jst(now: Optional[datetime] = None) -> date:
    return (now or datetime.now(timezone.utc)).astimezone(JST).date()


def fiscal_year(d: date) -> int:
    """The 年度 of a day: April to March, named by the year in which it begins."""
    return d.year if d.month >= 4 else d.year - 1


def fiscal_year_label(fy: int) -> str:
    era, year = wareki.era_of(date(fy, 4, 1))
    return f"{era}{'元' if year == 1 else year}年度"


def parse_taken_on(value, *, today: Optional[date] = None) -> date:
    """The date a course was attended: an ISO date, not in the future (JST)."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(str(value or "").strip())
        except ValueError:
            raise JukinetError("TRAINING_DATE_INVALID", "受講日は YYYY-MM-DD の形式で、実在する日付を入力してください。",
                               field="taken_on") from None
    if value > (today or today_jst()):
        raise JukinetError("TRAINING_DATE_FUTURE", "受講日に未来の日付は指定できません。", field="taken_on")
    return value


def check_course(course: str) -> str:
    course = (course or "").strip()
    if not course or len(course) > COURSE_MAX:
        raise JukinetError("TRAINING_COURSE_REQUIRED", f"研修名を{COURSE_MAX}文字以内で入力してください。", field="course")
    text.check(course, "研修名", field="course")
    return course
