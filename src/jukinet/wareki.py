"""和暦 (Japanese era dates) for display and input: 令和8年11月26日 ↔ 2026-11-26.

Dates are stored and exchanged as ISO dates; the operator screens and the printed forms show
them in 和暦. An era starts on the day of its 改元 (元号を改める政令 and, for 明治, 明治改元の詔):

====  ====  ==========  ===========================================================
元号  略号  first day   note
====  ====  ==========  ===========================================================
令和  R     2019-05-01  元号を改める政令 (平成31年政令第143号)
平成  H     1989-01-08  元号を改める政令 (昭和64年政令第1号)
昭和  S     1926-12-25  the day of 改元 (大正15年12月25日 is shown as 昭和元年)
大正  T     1912-07-30  the day of 改元 (明治45年7月30日 is shown as 大正元年)
明治  M     1868-01-25  see below
====  ====  ==========  ===========================================================

明治: the 改元の詔 is dated 慶応4年9月8日 (1868-10-23) and made the whole year 明治元年, i.e. from
慶応4年1月1日 of the old calendar, which is 1868-01-25 in the Gregorian calendar. Like most systems
we use 1868-01-25 as the first day of 明治 and number years by the Gregorian year (明治N年 =
1867 + N). Japan used the lunisolar calendar until 明治5年12月2日 (1872-12-31), so for dates
before 1873-01-01 the month and day we show are the Gregorian ones, not those of the documents of
the time (1868-10-23 is shown as 明治元年10月23日, where the 詔 itself says 9月8日). Dates before
1868-01-25 are refused with ``WAREKI_OUT_OF_RANGE``.

>>> from datetime import date
>>> to_wareki(date(2026, 11, 26))
'令和8年11月26日'
>>> to_wareki('2019-05-01'), to_wareki('2019-04-30')
('令和元年5月1日', '平成31年4月30日')
>>> to_wareki('1989-01-08'), to_wareki('1989-01-07')
('平成元年1月8日', '昭和64年1月7日')
>>> to_wareki('1926-12-25'), to_wareki('1926-12-24'), to_wareki('1912-07-30'), to_wareki('1912-07-29')
('昭和元年12月25日', '大正15年12月24日', '大正元年7月30日', '明治45年7月29日')
>>> to_wareki('1868-10-23'), to_wareki('1868-01-25')
('明治元年10月23日', '明治元年1月25日')
>>> to_wareki('2026-11-26', style='short')
'R8.11.26'
>>> era_of('2019-05-01')
('令和', 1)
>>> to_wareki('1868-01-24')
Traceback (most recent call last):
...
jukinet.errors.JukinetError: WAREKI_OUT_OF_RANGE: 和暦に変換できない日付です。

:func:`parse_wareki` reads what people type: the kanji form (元年, full-width digits, spaces)
and the abbreviated form (R8.11.26, H31.4.30, S64.1.7, with ``.`` ``/`` or ``-``).

>>> parse_wareki('令和8年11月26日'), parse_wareki('令和元年5月1日')
(datetime.date(2026, 11, 26), datetime.date(2019, 5, 1))
>>> parse_wareki('令和８年１１月２６日'), parse_wareki('R8.11.26')
(datetime.date(2026, 11, 26), datetime.date(2026, 11, 26))
>>> parse_wareki('H31.4.30'), parse_wareki('S64.1.7'), parse_wareki('m1/10/23')
(datetime.date(2019, 4, 30), datetime.date(1989, 1, 7), datetime.date(1868, 10, 23))
>>> parse_wareki('平成31年5月1日')          # that day is 令和元年
Traceback (most recent call last):
...
jukinet.errors.JukinetError: WAREKI_FORMAT: 和暦の日付の形式が正しくありません。
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple

from jukinet.errors import JukinetError

__all__ = ["Era", "ERAS", "JST", "era_of", "to_wareki", "parse_wareki", "japan_date", "japan_stamp", "to_wareki_time",
           "to_wareki_month", "show"]

#: 日本標準時: the day and the time every screen, form, ID and file name uses (ADR 0042)
JST = timezone(timedelta(hours=9), "JST")


class Era(NamedTuple):
    name: str
    letter: str
    start: date


#: The eras, newest first.
ERAS: tuple[Era, ...] = (
    Era("令和", "R", date(2019, 5, 1)),
    Era("平成", "H", date(1989, 1, 8)),
    Era("昭和", "S", date(1926, 12, 25)),
    Era("大正", "T", date(1912, 7, 30)),
    Era("明治", "M", date(1868, 1, 25)),
)

_BY_NAME = {e.name: e for e in ERAS} | {e.letter: e for e in ERAS}

_OUT_OF_RANGE = ("WAREKI_OUT_OF_RANGE", "和暦に変換できない日付です。")
_WAREKI_FORMAT = ("WAREKI_FORMAT", "和暦の日付の形式が正しくありません。")
_DATE_FORMAT = ("DATE_FORMAT", "日付の形式が正しくありません。")


def _as_date(d: date | str) -> date:
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    if isinstance(d, str):
        try:
            return date.fromisoformat(d.strip())
        except ValueError:
            pass
    raise JukinetError(*_DATE_FORMAT)


def _era(d: date) -> Era:
    for era in ERAS:
        if d >= era.start:
            return era
    raise JukinetError(*_OUT_OF_RANGE)


def era_of(d: date | str) -> tuple[str, int]:
    """The era and the year in it of ``d`` (a date, or an ISO ``YYYY-MM-DD`` string).

    >>> era_of(date(1989, 1, 7)), era_of('1989-01-08'), era_of(datetime(2026, 11, 26, 9, 30))
    (('昭和', 64), ('平成', 1), ('令和', 8))
    >>> era_of('2026/11/26')
    Traceback (most recent call last):
    ...
    jukinet.errors.JukinetError: DATE_FORMAT: 日付の形式が正しくありません。
    """
    d = _as_date(d)
    era = _era(d)
    return era.name, d.year - era.start.year + 1


def to_wareki(d: date | str, *, style: str = "kanji") -> str:
    """``d`` in 和暦.

    ``style="kanji"``: 令和8年11月26日, the first year written 元年.
    ``style="short"``: R8.11.26 (era letter, no zero padding, the first year written 1).

    >>> to_wareki(date(2019, 5, 1), style='short'), to_wareki(date(1989, 1, 7), style='short')
    ('R1.5.1', 'S64.1.7')
    """
    d = _as_date(d)
    era = _era(d)
    year = d.year - era.start.year + 1
    if style == "kanji":
        y = "元" if year == 1 else str(year)
        return f"{era.name}{y}年{d.month}月{d.day}日"
    if style == "short":
        return f"{era.letter}{year}.{d.month}.{d.day}"
    raise ValueError(f"unknown style: {style!r}")


_PATTERN = re.compile(
    r"(?P<era>明治|大正|昭和|平成|令和|[MTSHR])(?P<year>元|[0-9]{1,3})"
    r"(?:年(?P<m1>[0-9]{1,2})月(?P<d1>[0-9]{1,2})日"
    r"|(?P<sep>[./-])(?P<m2>[0-9]{1,2})(?P=sep)(?P<d2>[0-9]{1,2}))"
)


def parse_wareki(text: str) -> date:
    """Read a 和暦 date; refuse anything else with ``WAREKI_FORMAT``.

    Accepted: ``令和8年11月26日`` (元年, full-width digits, ㋿/㍻-style ligatures, spaces anywhere)
    and ``R8.11.26`` (M T S H R in either case; ``.`` ``/`` or ``-``, the same one twice). The
    date must exist and lie in the era named (平成31年5月1日 and 昭和元年1月1日 do not).

    >>> parse_wareki(' 令和 元年 5月 1日 '), parse_wareki('㍻元年1月8日'), parse_wareki('ｒ１－５－１')
    (datetime.date(2019, 5, 1), datetime.date(1989, 1, 8), datetime.date(2019, 5, 1))
    >>> codes = []
    >>> for bad in ('令和8年2月30日', '令和0年1月1日', '明治元年1月1日', 'R8.11/26', '2026-11-26', '', None):
    ...     try:
    ...         parse_wareki(bad)
    ...     except JukinetError as e:
    ...         codes.append(e.code)
    >>> codes == ['WAREKI_FORMAT'] * 7
    True
    """
    if not isinstance(text, str):
        raise JukinetError(*_WAREKI_FORMAT)
    t = "".join(unicodedata.normalize("NFKC", text).split())
    m = _PATTERN.fullmatch(t[:1].upper() + t[1:])
    if not m:
        raise JukinetError(*_WAREKI_FORMAT)
    era = _BY_NAME[m["era"]]
    year = 1 if m["year"] == "元" else int(m["year"])
    month = int(m["m1"] or m["m2"])
    day = int(m["d1"] or m["d2"])
    try:
        if year < 1:
            raise ValueError
        d = date(era.start.year + year - 1, month, day)
        if _era(d) != era:
            raise ValueError
    except (ValueError, JukinetError):
        raise JukinetError(*_WAREKI_FORMAT) from None
    return d


# ---- instants: the day in Japan, JST times (ADR 0042) ------------------------------------------------

def _instant(v: datetime | str) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)    # stored naive = UTC


def japan_date(v: datetime | str) -> date:
    """The day in Japan of an instant (a naive value is UTC, as the databases store it).

    >>> japan_date(datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc)), japan_date('2026-11-26T14:59:59Z')
    (datetime.date(2026, 11, 27), datetime.date(2026, 11, 26))
    """
    return _instant(v).astimezone(JST).date()


def japan_stamp(v: datetime | str, fmt: str = "%Y%m%d") -> str:
    """An instant formatted in JST, for IDs and file names that carry a date.

    >>> japan_stamp(datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc))
    '20261127'
    >>> japan_stamp(datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc), "%Y%m%dT%H%M%S")
    '20261127T083000'
    """
    return _instant(v).astimezone(JST).strftime(fmt)


def to_wareki_time(v: datetime | str | None, *, seconds: bool = True) -> str:
    """An instant as 和暦 date and JST time: 令和8年11月27日 08:30:00 (``seconds=False``: 08:30).

    >>> to_wareki_time(datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc))
    '令和8年11月27日 08:30:00'
    >>> to_wareki_time('2019-04-30T15:00:00+00:00', seconds=False), to_wareki_time(None)
    ('令和元年5月1日 00:00', '')
    """
    if v in (None, ""):
        return ""
    local = _instant(v).astimezone(JST)
    return f"{to_wareki(local.date())} {local:%H:%M:%S}" if seconds else f"{to_wareki(local.date())} {local:%H:%M}"


def to_wareki_month(v: date | str | tuple[int, int]) -> str:
    """A month (``"2026-11"``, ``(2026, 11)`` or any day of it) in 和暦; the era of its first day.

    >>> to_wareki_month("2026-11"), to_wareki_month((2019, 5)), to_wareki_month("2019-04"), to_wareki_month("1989-01")
    ('令和8年11月', '令和元年5月', '平成31年4月', '昭和64年1月')
    """
    if isinstance(v, tuple):
        first = date(v[0], v[1], 1)
    elif isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}", v.strip()):
        y, m = v.strip().split("-")
        first = date(int(y), int(m), 1)
    else:
        first = _as_date(v).replace(day=1)
    era = _era(first)
    year = first.year - era.start.year + 1
    return f"{era.name}{'元' if year == 1 else year}年{first.month}月"


def show(v) -> str:
    """Whatever a screen, form or report shows: a date or an ISO date text in 和暦, an instant in 和暦 + JST,
    a month ``YYYY-MM`` in 和暦; anything else unchanged (never raises).

    >>> show(date(2026, 11, 26)), show('2026-11-26'), show('2026-11'), show('2026-11-26T00:00:00Z'), show('abc')
    ('令和8年11月26日', '令和8年11月26日', '令和8年11月', '令和8年11月26日 09:00:00', 'abc')
    """
    if v in (None, ""):
        return ""
    try:
        if isinstance(v, datetime):
            return to_wareki_time(v)
        if isinstance(v, date):
            return to_wareki(v)
        text = str(v).strip()
        if re.fullmatch(r"\d{4}-\d{2}", text):
            return to_wareki_month(text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return to_wareki(text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", text):
            return to_wareki_time(text)
    except (ValueError, JukinetError):
        pass
    return str(v)
