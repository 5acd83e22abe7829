"""和暦 display and input of ISO dates."""

from datetime import date, datetime, timedelta

import jaconv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jukinet.errors import JukinetError
from jukinet.wareki import ERAS, era_of, parse_wareki, to_wareki

dates = st.dates(min_value=date(1873, 1, 1), max_value=date(2100, 12, 31))


@pytest.mark.parametrize(
    "iso, kanji",
    [
        ("2026-11-26", "令和8年11月26日"),
        ("2019-05-01", "令和元年5月1日"),
        ("2019-04-30", "平成31年4月30日"),
        ("1989-01-08", "平成元年1月8日"),
        ("1989-01-07", "昭和64年1月7日"),
        ("1926-12-25", "昭和元年12月25日"),
        ("1926-12-24", "大正15年12月24日"),
        ("1912-07-30", "大正元年7月30日"),
        ("1912-07-29", "明治45年7月29日"),
        ("1868-10-23", "明治元年10月23日"),
        ("1868-01-25", "明治元年1月25日"),
        ("1873-01-01", "明治6年1月1日"),
    ],
)
def test_wareki_table(iso, kanji):
    assert to_wareki(iso) == kanji
    assert to_wareki(date.fromisoformat(iso)) == kanji
    assert parse_wareki(kanji) == date.fromisoformat(iso)


def test_wareki_era_of():
    assert era_of(date(2026, 11, 26)) == ("令和", 8)
    assert era_of("2019-04-30") == ("平成", 31)
    assert era_of(datetime(1989, 1, 7, 23, 59)) == ("昭和", 64)


def test_wareki_eras_start_on_their_kaigen_day():
    for era in ERAS:
        assert era_of(era.start) == (era.name, 1)
    for newer, older in zip(ERAS, ERAS[1:]):
        assert era_of(newer.start - timedelta(days=1))[0] == older.name


def test_wareki_short_style():
    assert to_wareki("2026-11-26", style="short") == "R8.11.26"
    assert to_wareki("2019-05-01", style="short") == "R1.5.1"
    assert to_wareki("2019-04-30", style="short") == "H31.4.30"
    assert to_wareki("1989-01-07", style="short") == "S64.1.7"
    assert to_wareki("1926-12-24", style="short") == "T15.12.24"
    assert to_wareki("1900-01-01", style="short") == "M33.1.1"
    with pytest.raises(ValueError):
        to_wareki("2026-11-26", style="roman")


def test_wareki_before_meiji_is_out_of_range():
    for d in ("1868-01-24", date(1600, 10, 21)):
        with pytest.raises(JukinetError) as e:
            to_wareki(d)
        assert e.value.code == "WAREKI_OUT_OF_RANGE"
        assert e.value.message == "和暦に変換できない日付です。"
        with pytest.raises(JukinetError):
            era_of(d)


def test_wareki_bad_iso_string():
    with pytest.raises(JukinetError) as e:
        to_wareki("2026-13-01")
    assert e.value.code == "DATE_FORMAT"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("R8.11.26", date(2026, 11, 26)),
        ("H31.4.30", date(2019, 4, 30)),
        ("S64.1.7", date(1989, 1, 7)),
        ("T1.7.30", date(1912, 7, 30)),
        ("M45.7.29", date(1912, 7, 29)),
        ("r8/11/26", date(2026, 11, 26)),
        ("R08-11-26", date(2026, 11, 26)),
        ("R元.5.1", date(2019, 5, 1)),
        ("令和８年１１月２６日", date(2026, 11, 26)),
        ("令和 8年 11月 26日", date(2026, 11, 26)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("㋿元年5月1日", date(2019, 5, 1)),
        ("Ｈ３１．４．３０", date(2019, 4, 30)),
    ],
)
def test_wareki_parse_accepts(text, expected):
    assert parse_wareki(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "令和", "令和8年11月", "令和8年13月1日", "令和8年2月29日", "令和0年1月1日", "平成31年5月1日",
     "昭和64年1月8日", "昭和元年1月1日", "明治元年1月24日", "X8.11.26", "R8.11/26", "R8.11.26日",
     "2026-11-26", "8年11月26日", "令和8年11月26", "R8..26", None, 20261126],
)
def test_wareki_parse_refuses(text):
    with pytest.raises(JukinetError) as e:
        parse_wareki(text)
    assert e.value.code == "WAREKI_FORMAT"
    assert e.value.message == "和暦の日付の形式が正しくありません。"


@given(dates)
def test_wareki_roundtrip(d):
    assert parse_wareki(to_wareki(d)) == d
    assert parse_wareki(to_wareki(d, style="short")) == d
    assert parse_wareki(jaconv.h2z(to_wareki(d), digit=True)) == d


@given(dates)
def test_wareki_era_year_matches_text(d):
    name, year = era_of(d)
    text = to_wareki(d)
    assert text.startswith(name + ("元" if year == 1 else str(year)) + "年")
    assert text.endswith(f"{d.month}月{d.day}日")
