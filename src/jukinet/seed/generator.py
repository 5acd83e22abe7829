"""Deterministic synthetic population of one prefecture (三重県 by default) for both registers (D1 and D2).

:func:`generate` yields :class:`Batch` objects: the D1 rows (current and removed; the row dicts of
:func:`jukinet.store.repository.juki_to_row`, 個人番号 in the clear) with their history rows, and the D2
rows (:func:`~jukinet.store.repository.fuhyo_to_row`) with theirs. Nothing is
kept between batches except a few counters and small caches, so memory does not grow with the
population. The code constants come from ``random.Random(seed)``; each block of :data:`BLOCK`
persons draws from its own stream, seeded from (``seed``, block) alone, so any batch can be generated
on its own, in any process (:meth:`Generator.batch`, ADR 0057): the same seed and ``residents`` give the
same rows, timestamps included, whatever the batch size and the number of processes.

The prefecture (``prefecture``: a number, code or name; 三重県 when None) gives the real 市区町村
codes and 町域 (:mod:`jukinet.geo`, ADR 0035); "Mie" below stands for it. Municipalities are drawn by
their ``weight``: the population for 三重県, a proxy from Japan Post's 町域 elsewhere.

What a population looks like (``residents`` = N, the current D1 persons)
    * **Residents** (N): age from Japan's 2025 age pyramid (5-year groups; ~30% aged 65+), share
      of women by age group (~51% overall), a municipality weighted by population, a real 町域 and
      a synthetic 番地.
    * **Removed persons** (消除者, ``removed_ratio`` × N, default 25%): 死亡 45%, 国内転出 50%,
      国外転出 5%, removed on a date between 2002-08-05 (住基ネット稼働) and ``today``; the person's
      age at that date follows a mortality curve (死亡) or a mover curve (転出). The removed
      version has 削除フラグ and 保存期間フラグ set and is the current row; the version it removed
      is history. (A real file accumulates more: ~50k removals a year since 2002 would be ~75%
      of N; pass ``removed_ratio`` to get that.)
    * **Origin** (異動事由 of the first version): 出生 (change date = birth date; 75% of those under
      18 at the end, 35% of the others), else 国内転入 (96%) or 国外転入 (4%) on a date between birth
      and the end.
    * **History** (``history_ratio``, default 15% of persons): 1 (60%), 2 (30%) or 3 (10%) changes
      after 2002-08-05: 転居 (50%: a new address in the same municipality), a move between two Mie
      municipalities (25%: 国内転出 in A — a removed version — then 国内転入 in B; two versions),
      職権修正 (15%: the surname changed), 個人番号変更 (10%, only after 2016; else a 転居). The
      current row's 異動事由 is the last change's.
    * **旧氏** (2% of adults whose record reaches 2019-11-05, 80% women): a former surname with its
      reading; when the person's first version predates 2019-11-05 (旧氏 on the 住民票 began then)
      a 旧氏記載 version after that date adds it.
    * **外字** (D4): 1% of surnames (and 旧氏) are spelled with a 外字 (see :mod:`.names`).
    * **個人番号**: every resident, and every removed person removed on or after 2015-10-05 (the
      number did not exist before; older removed persons have none), on all their versions.
    * **Codes**: 住民票コード and 個人番号 come from a bijection of the person's index (an affine
      map modulo 10¹⁰ resp. 10¹¹ whose constants depend on the seed) plus the check digit, so they
      are unique without a set of seen codes. A 個人番号変更 gives the old number from the same map
      at index ``persons + i``.
    * **更新順番号**: consecutive per register (1, 2, 3, …) in generation order; a person's versions
      are in date order, so a current row's number is above its history rows'.
    * **タイムスタンプ / 通知を受けた年月日**: a version is received on its change date (or 1–5 days
      later, never after ``today``) during office hours (JST); versions before the server existed
      count as received on its first day (住基ネット 2002-08-05, 附票連携 2022-01-04). 通知を受けた
      年月日 is the JST date of the タイムスタンプ. History before 2002-08-05 (D1) or 2022-01-04
      (D2) does not exist: only the version on file at that date and later ones are kept.

D2 (附票, persons whose 本籍 is in Mie)
    * 80% of D1 persons have their 本籍 in Mie. Their 附票 follows their addresses: 記載, then
      住所変更 for each move and 職権修正 for a name change. 附票管理市町村コード (the 本籍地) is the
      first municipality they lived in (85%) or another Mie municipality. How it ends: residents —
      現存 at their Mie address; 死亡 — 消除; 国外転出 — 現存 with no address and a 最終住所 (reason
      国外転出); 国内転出 — 住所変更 to an address in another prefecture (same 住民票コード as the
      removed D1 record).
    * Plus ``other_prefecture_ratio`` × N (default 15%) persons who never lived in Mie in D1's time:
      new 住民票コード, an address in :func:`jukinet.geo.elsewhere`, 20% with an
      earlier address, 8% removed (消除: 転籍 out of Mie or death).
    * 個人番号 never appears in D2.

Names are ``"姓\\u3000名"`` and readings ``"セイ\\u3000メイ"``: one full-width space (U+3000), the form
:func:`jukinet.kana.validate_kana` gives readings.
"""

from __future__ import annotations

import bisect
import random
from operator import mul as _mul
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Iterator, Optional

from jukinet import kana as _kana
from jukinet import moji as _moji
from jukinet import geo
from jukinet.seed import names

__all__ = ["generate", "Batch", "Generator", "BLOCK", "Params", "JUKINET_START", "MYNUMBER_START", "KYUUJI_START", "FUHYO_START",
           "DEFAULT_TODAY"]

DEFAULT_TODAY = date(2026, 11, 26)
JUKINET_START = date(2002, 8, 5)    # 住基ネット 第一次稼働
MYNUMBER_START = date(2015, 10, 5)  # 番号法: 個人番号の指定
KYUUJI_START = date(2019, 11, 5)    # 旧氏の住民票への記載
FUHYO_START = date(2022, 1, 4)      # 附票連携 (assumed date; only bounds D2 history and notified dates)

JST = timezone(timedelta(hours=9), "JST")
NAME_SEP = "\u3000"

# Japan, 2025 (approx., thousands): 5-year age groups 0–4 … 95–99, 100–104.
_PYRAMID = (3900, 4700, 5200, 5500, 6200, 6400, 6300, 7000, 7700, 9000, 9700, 8300, 7500,
            7300, 9000, 8300, 6300, 4300, 2000, 550, 95)
#: P(female) by 5-year group (more women at old ages).
_FEMALE_BY_GROUP = tuple(0.488 if g < 11 else 0.50 if g < 13 else 0.52 if g < 15 else 0.57 if g < 17
                         else 0.68 if g < 19 else 0.82 for g in range(len(_PYRAMID)))
# age at death (years) and at moving out: (low, high, weight)
_DEATH_AGES = ((0, 40, 2), (40, 60, 6), (60, 70, 10), (70, 80, 20), (80, 90, 37), (90, 100, 23), (100, 106, 2))
_MOVER_AGES = ((0, 18, 15), (18, 30, 40), (30, 45, 25), (45, 65, 12), (65, 90, 8))

#: addresses outside the prefecture use the first 80 町域 of each place (what the Mie-only tables held,
#: so that a Mie seed gives the same rows as before ADR 0035)
OTHER_TOWN_LIMIT = 80

#: persons per random stream: the stream of block ``b`` (persons ``b × BLOCK`` …) is seeded from (seed, D1 or
#: 附票-only, b) alone, so the population does not depend on the batch size nor on which process
#: generates which batch (ADR 0057); it divides every batch size used so far (100, 250, 700, 1000, 5000)
BLOCK = 50

_REMOVAL = (("死亡", 0.45), ("国内転出", 0.50), ("国外転出", 0.05))
_EVENTS = (("転居", 0.50), ("移動", 0.25), ("職権修正", 0.15), ("個人番号変更", 0.10))
_EVENT_COUNT = ((1, 0.6), (2, 0.3), (3, 0.1))


@dataclass(frozen=True)
class Params:
    """Proportions of a population (see the module docstring)."""

    removed_ratio: float = 0.25
    history_ratio: float = 0.15
    former_surname_ratio: float = 0.02
    gaiji_ratio: float = 0.01
    mie_honseki_ratio: float = 0.80
    other_prefecture_ratio: float = 0.15
    other_history_ratio: float = 0.20
    other_removed_ratio: float = 0.08


@dataclass
class Batch:
    """One batch of rows for both registers."""

    juki: list = field(default_factory=list)            # row dicts (current table)
    juki_history: list = field(default_factory=list)    # row dicts (history table)
    fuhyo: list = field(default_factory=list)           # row dicts (current table)
    fuhyo_history: list = field(default_factory=list)   # row dicts (history table)
    persons: int = 0                                    # persons generated in this batch
    residents: int = 0
    removed: int = 0
    fuhyo_removed: int = 0
    fuhyo_abroad: int = 0
    fuhyo_other_prefecture: int = 0

    def renumber(self, juki_after: int, fuhyo_after: int) -> tuple[int, int]:
        """Number the versions of a batch generated on its own (from 1 in each register: :meth:`Generator.batch`)
        after ``juki_after`` / ``fuhyo_after``, the last numbers of the batches before it; the new last numbers."""
        for rows, history, after in ((self.juki, self.juki_history, juki_after),
                                     (self.fuhyo, self.fuhyo_history, fuhyo_after)):
            if after:
                for r in rows:
                    r["update_seq"] += after
                for h in history:
                    h["update_seq"] += after
                    h["superseded_by_seq"] += after
        return (juki_after + len(self.juki) + len(self.juki_history),
                fuhyo_after + len(self.fuhyo) + len(self.fuhyo_history))


_J_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)    # jukinet.codes: 住民票コード
_K_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)  # python-stdnum jp.in_: 個人番号


def _juminhyo_check(first10: str) -> str:
    """:func:`jukinet.codes.juminhyo_code_check_digit` of ten digits the generator made (no input to
    validate; test_q1_generator_check_digits_match_codes)."""
    r = sum(map(_mul, map(int, first10), _J_WEIGHTS)) % 11
    return "0" if r <= 1 else str(11 - r)


def _kojin_check(first11: str) -> str:
    """:func:`jukinet.codes.kojin_bango_check_digit` of eleven digits the generator made."""
    return str(-sum(map(_mul, map(int, first11), _K_WEIGHTS)) % 11 % 10)


_GAIJI_PATTERN = {(a, b, c): f"{a:d}{b:d}{c:d}" for a in (False, True) for b in (False, True) for c in (False, True)}


def _chain_history(rows: list[dict], out: list) -> None:
    """The versions of one person (oldest first) but the last, as history rows superseded by the next."""
    for old, new in zip(rows, rows[1:]):   # never the last: no copy needed
        old["superseded_at"] = new["timestamp"]
        old["superseded_by_seq"] = new["update_seq"]
        old["superseded_by_reason"] = new["reason"]
        out.append(old)



def _cum(weights) -> list[float]:
    out, s = [], 0.0
    for w in weights:
        s += w
        out.append(s)
    return out


class _Pick:
    """Weighted choice with one ``rng.random()`` call."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, items, weights):
        self.items = list(items)
        self.cum = _cum(weights)
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]


def _affine(rng: random.Random, modulus: int) -> tuple[int, int]:
    """Constants of a bijection i -> (a*i + b) mod modulus (modulus a power of ten: a coprime to 10)."""
    while True:
        a = rng.randrange(modulus // 10, modulus)
        if a % 2 and a % 5:
            return a, rng.randrange(modulus)


class _Derived:
    """Memoised :mod:`jukinet.moji` / :mod:`jukinet.kana` calls (same values as derive_juki/derive_fuhyo)."""

    #: characters of synthetic 番地 ("12番地3", "2丁目3番4号")
    BANCHI_CHARS = "0123456789番地丁目号"

    def __init__(self):
        self._gaiji: dict[str, int] = {}
        self._seion: dict[str, str] = {}
        self._plain = frozenset(ch for ch in self.BANCHI_CHARS if not _moji.count_gaiji(ch))  # asked once

    def banchi_gaiji(self, banchi: str) -> int:
        """外字数 of a synthetic 番地: 0 without asking moji again when all its characters are plain."""
        return 0 if self._plain.issuperset(banchi) else self.gaiji(banchi)

    def gaiji(self, text: Optional[str]) -> int:
        if not text:
            return 0
        v = self._gaiji.get(text)
        if v is None:
            if len(self._gaiji) > 500_000:
                self._gaiji.clear()
            v = self._gaiji[text] = _moji.count_gaiji(text)
        return v

    def name_gaiji(self, surname: str, given: str) -> int:
        """外字数 of ``surname + NAME_SEP + given``: the sum of the parts' (a 外字 segment never spans the
        full-width space, which is in JIS X 0208), each part asked once."""
        g = self._gaiji
        a = g.get(surname)
        if a is None:
            a = self.gaiji(surname)
        b = g.get(given)
        if b is None:
            b = self.gaiji(given)
        return a + b

    def name_seion(self, surname: str, given: str) -> str:
        """:func:`jukinet.kana.seion` of ``surname + NAME_SEP + given``, from the parts' keys where that is
        the same: the space is dropped and each kana folds on its own, except a ウ/ゥ after an オ段 kana
        (rule 8), a ヴ followed by a small kana, and marks that act on the kana before them — so the
        whole reading is folded when the given name starts with anything but a plain katakana
        other than ウ/ゥ, or the surname ends with ヴ (test_q1_generator_name_keys_*)."""
        g0 = given[:1]
        if surname and "\u30a1" <= g0 <= "\u30fa" and g0 not in "ウゥ" and surname[-1] != "ヴ":
            return self.seion(surname) + self.seion(given)
        return self.seion(surname + NAME_SEP + given)

    def seion(self, text: str) -> str:
        v = self._seion.get(text)
        if v is None:
            if len(self._seion) > 500_000:
                self._seion.clear()
            v = self._seion[text] = _kana.seion(text)
        return v


@dataclass(slots=True)
class _V:
    """One version of a person while it is being built (content + 異動事由 + date)."""

    surname: tuple[str, str]
    given: tuple[str, str]
    address: str
    address_gaiji: int
    oaza_code: Optional[str]
    muni: str
    kojin: Optional[str]
    fs: Optional[tuple[str, str]]
    reason: str = ""
    change_date: date = DEFAULT_TODAY
    deleted: bool = False

    def copy(self, **kw) -> "_V":
        v = _V(self.surname, self.given, self.address, self.address_gaiji, self.oaza_code, self.muni, self.kojin,
               self.fs, self.reason, self.change_date, self.deleted)
        for k, val in kw.items():
            setattr(v, k, val)
        return v


class Generator:
    """The state of one generation run; see :func:`generate`."""

    def __init__(self, residents: int, seed: int = 0, today: date = DEFAULT_TODAY, params: Params = Params(),
                 prefecture: Optional[geo.places.PrefectureRef] = None):
        if residents < 0:
            raise ValueError("residents must be >= 0")
        self.p = params
        self.today = today
        self.today_ord = today.toordinal()
        self.residents = residents
        self.removed = round(residents * params.removed_ratio)
        self.d1_persons = residents + self.removed
        self.others = round(residents * params.other_prefecture_ratio)
        self.total_persons = self.d1_persons + self.others
        self.seed = seed
        self.rng = rng = random.Random(seed)   # the code constants; each block of persons has its own stream
        self.jcode = _affine(rng, 10**10)
        self.kcode = _affine(rng, 10**11)
        self.derived = _Derived()
        self.juki_seq = 0
        self.fuhyo_seq = 0
        self.last_ts = {}
        self._midnights: dict[int, tuple[datetime, date]] = {}
        self.prefecture = pref = geo.prefecture(prefecture)
        others = geo.elsewhere(pref)
        self._mie_pick = _Pick(pref.municipalities, [m.weight for m in pref.municipalities])
        self._other_pick = _Pick(others, [m.weight for m in others])
        self._surname_pick = _Pick(names.SURNAMES, names.SURNAME_WEIGHTS)
        self._age_group_pick = _Pick(range(len(_PYRAMID)), _PYRAMID)
        self._death_pick = _Pick(_DEATH_AGES, [w for *_, w in _DEATH_AGES])
        self._mover_pick = _Pick(_MOVER_AGES, [w for *_, w in _MOVER_AGES])
        self._removal_pick = _Pick([r for r, _ in _REMOVAL], [w for _, w in _REMOVAL])
        self._event_pick = _Pick([e for e, _ in _EVENTS], [w for _, w in _EVENTS])
        self._count_pick = _Pick([n for n, _ in _EVENT_COUNT], [w for _, w in _EVENT_COUNT])
        self._start_ord = max(JUKINET_START.toordinal(), 1)
        self._towns = {**{m.code: geo.towns(m.code)[:OTHER_TOWN_LIMIT] for m in others},
                       **{m.code: geo.towns(m.code) for m in pref.municipalities}}

    # --- codes -------------------------------------------------------------------------------

    def juminhyo_code(self, index: int) -> str:
        a, b = self.jcode
        first10 = f"{(a * index + b) % 10**10:010d}"
        return first10 + _juminhyo_check(first10)

    def kojin_bango(self, index: int) -> str:
        a, b = self.kcode
        first11 = f"{(a * index + b) % 10**11:011d}"
        return first11 + _kojin_check(first11)

    # --- pieces ------------------------------------------------------------------------------

    def _date_between(self, lo: int, hi: int) -> int:
        """An ordinal in [lo, hi]."""
        return lo + int(self.rng.random() * (hi - lo + 1)) if hi > lo else lo

    def _surname(self) -> tuple[str, str]:
        rng = self.rng
        if rng.random() < self.p.gaiji_ratio:
            gs = names.GAIJI_SURNAMES
            return gs[int(rng.random() * len(gs))]
        return self._surname_pick(rng)

    def _given(self, sex: str, birth_year: int) -> tuple[str, str]:
        pool = names.given_pool(sex, birth_year)
        return pool[int(self.rng.random() * len(pool))]

    def _address(self, m: geo.Municipality) -> tuple[str, int, str]:
        rng = self.rng
        ts = self._towns[m.code]
        town = ts[int(rng.random() * len(ts))]
        base = m.address_prefix + town.name
        banchi = geo.random_banchi(rng, town)
        dv = self.derived
        return base + banchi, dv.gaiji(base) + dv.banchi_gaiji(banchi), town.oaza_code

    def _other_mie(self, code: str) -> geo.Municipality:
        """Another municipality of the prefecture (the same one if it has only one)."""
        while len(self.prefecture.municipalities) > 1:
            m = self._mie_pick(self.rng)
            if m.code != code:
                return m
        return self.prefecture.municipalities[0]

    def _resident_birth(self) -> tuple[str, int]:
        rng = self.rng
        g = self._age_group_pick(rng)
        sex = "2" if rng.random() < _FEMALE_BY_GROUP[g] else "1"
        lo, hi = g * 5 * 365.2425, (g + 1) * 5 * 365.2425
        age_days = int(lo + rng.random() * (hi - lo))
        return sex, self.today_ord - age_days

    def _removed_birth(self, reason: str, removal_ord: int) -> tuple[str, int]:
        rng = self.rng
        lo, hi, _ = (self._death_pick if reason == "死亡" else self._mover_pick)(rng)
        sex = "2" if rng.random() < (0.5 if reason == "死亡" else 0.48) else "1"
        age_days = int((lo + rng.random() * (hi - lo)) * 365.2425)
        return sex, removal_ord - age_days

    def _received(self, change_date: date, floor: date, key: str) -> tuple[datetime, date]:
        """タイムスタンプ (UTC) and 通知を受けた年月日 (its JST date) of a version, after the person's previous one.

        Received on the change date (60%), the day after (30%) or 2–5 days later, never after
        ``today``, between 09:00 and 18:00 JST (00:00–09:00 UTC, so the JST date is the same day).
        """
        rng = self.rng
        d = max(change_date, floor).toordinal()
        r = rng.random()
        d += 0 if r < 0.6 else 1 if r < 0.9 else 2 + int(rng.random() * 4)
        d = min(d, self.today_ord)
        midnight = self._midnights.get(d)
        if midnight is None:   # at most one per day since the server started: ~9,000
            day = date.fromordinal(d)
            midnight = self._midnights[d] = (datetime(day.year, day.month, day.day, tzinfo=timezone.utc), day)
        ts = midnight[0] + timedelta(seconds=int(rng.random() * 9 * 3600))
        day = midnight[1]
        prev = self.last_ts.get(key)
        if prev is not None and ts <= prev:
            ts = prev + timedelta(seconds=1 + int(rng.random() * 600))
            day = ts.astimezone(JST).date()
        self.last_ts[key] = ts
        return ts, day

    # --- D1 ----------------------------------------------------------------------------------

    def _d1_versions(self, index: int, removal: Optional[str]) -> tuple[list[_V], int, str]:
        """The versions of one D1 person, oldest first; with the birth date and sex."""
        rng, p = self.rng, self.p
        if removal is None:
            end_ord = self.today_ord
            sex, birth_ord = self._resident_birth()
        else:
            end_ord = self._date_between(self._start_ord, self.today_ord)
            sex, birth_ord = self._removed_birth(removal, end_ord)
        birth_year = date.fromordinal(birth_ord).year
        age_end = (end_ord - birth_ord) / 365.2425
        surname = self._surname()
        given = self._given(sex, birth_year)
        m = self._mie_pick(rng)
        address, address_g, oaza = self._address(m)
        has_kojin = removal is None or end_ord >= MYNUMBER_START.toordinal()
        kojin = self.kojin_bango(index) if has_kojin else None
        fs = None
        if rng.random() < p.former_surname_ratio and age_end >= 20 and end_ord >= KYUUJI_START.toordinal():
            if sex == "1" and rng.random() < 0.6:  # 旧氏 holders are mostly women (~80%)
                sex = "2"
                given = self._given(sex, birth_year)
            while fs is None or fs[0] == surname[0]:
                fs = self._surname()

        # origin
        if rng.random() < (0.75 if age_end < 18 else 0.35):
            origin, d0 = "出生", birth_ord
        else:
            origin = "国外転入" if rng.random() < 0.04 else "国内転入"
            d0 = self._date_between(birth_ord, end_ord)

        # later changes (only those after the server started are on file)
        last_event_ord = end_ord - 1 if removal else end_ord
        lo = max(d0, self._start_ord)
        events: list[tuple[int, str]] = []
        if rng.random() < p.history_ratio and lo < last_event_ord:
            n = self._count_pick(rng)
            kinds = [self._event_pick(rng) for _ in range(n)]
            dates = sorted(self._date_between(lo + 1, last_event_ord) for _ in range(n))
            mynumber_ok = date(2016, 1, 1).toordinal()
            seen_kojin = False
            for d, kind in zip(dates, kinds):
                if kind == "個人番号変更" and (kojin is None or d < mynumber_ok or seen_kojin):
                    kind = "転居"
                seen_kojin |= kind == "個人番号変更"
                events.append((d, kind))
        if fs is not None:
            kyuuji = KYUUJI_START.toordinal()
            if d0 < kyuuji:
                after = max([kyuuji] + [d for d, _ in events])
                if after <= last_event_ord:
                    events.append((self._date_between(after, last_event_ord), "旧氏記載"))
                else:
                    fs = None

        # build backwards from the latest content
        cur = _V(surname, given, address, address_g, oaza, m.code, kojin, fs)
        rev: list[_V] = []
        for i in range(len(events) - 1, -1, -1):
            d, kind = events[i]
            prev_ord = events[i - 1][0] if i else d0
            if kind == "移動":
                rev.append(cur.copy(reason="国内転入", change_date=date.fromordinal(d)))
                pm = self._other_mie(cur.muni)
                a, ag, oz = self._address(pm)
                before = cur.copy(address=a, address_gaiji=ag, oaza_code=oz, muni=pm.code)
                out_ord = max(prev_ord, self._start_ord, d - int(rng.random() * 15))
                rev.append(before.copy(reason="国内転出", change_date=date.fromordinal(out_ord), deleted=True))
                cur = before
                continue
            rev.append(cur.copy(reason=kind, change_date=date.fromordinal(d)))
            if kind == "転居":
                a, ag, oz = self._address(self.prefecture.by_code[cur.muni])
                cur = cur.copy(address=a, address_gaiji=ag, oaza_code=oz)
            elif kind == "職権修正":
                old = fs if fs and fs[0] != cur.surname[0] else None  # marriage: the 旧氏 was the surname
                while old is None or old[0] == cur.surname[0]:
                    old = self._surname()
                # a 旧氏 equal to the surname is not kept: before the change there was none
                cur = cur.copy(surname=old, fs=None if cur.fs and cur.fs[0] == old[0] else cur.fs)
            elif kind == "個人番号変更":
                cur = cur.copy(kojin=self.kojin_bango(self.d1_persons + index))
            elif kind == "旧氏記載":
                cur = cur.copy(fs=None)
        rev.append(cur.copy(reason=origin, change_date=date.fromordinal(d0)))
        versions = rev[::-1]
        if removal is not None:
            versions.append(versions[-1].copy(reason=removal, change_date=date.fromordinal(end_ord), deleted=True))
        return versions, birth_ord, sex

    def _juki_row(self, code: str, v: _V, birth: date, sex: str, key: str) -> dict:
        """The row of one version (:func:`jukinet.store.repository.juki_to_row` of its record: 個人番号 in
        the clear), built directly — no record object per version."""
        dv = self.derived
        sur, giv, fs = v.surname, v.given, v.fs
        name_g = dv.name_gaiji(sur[0], giv[0])
        fs_g = dv.gaiji(fs[0]) if fs else 0
        ts, notified = self._received(v.change_date, JUKINET_START, key)
        self.juki_seq += 1
        deleted = v.deleted
        return {
            "juminhyo_code": code, "name": sur[0] + NAME_SEP + giv[0], "name_gaiji_count": name_g,
            "name_kana": sur[1] + NAME_SEP + giv[1], "birth_date": birth, "sex": sex, "address": v.address,
            "address_gaiji_count": v.address_gaiji, "kojin_bango": v.kojin, "reason": v.reason,
            "change_date": v.change_date, "retention_flag": deleted, "name_seion": dv.name_seion(sur[1], giv[1]),
            "municipality_code": v.muni, "oaza_code": v.oaza_code, "operator_id": None, "terminal_id": None,
            "timestamp": ts, "notified_date": notified, "gaiji_flag": bool(name_g or v.address_gaiji or fs_g),
            "deleted": deleted, "update_seq": self.juki_seq, "name_gaiji_change_seq": 0,
            "address_gaiji_change_seq": 0, "former_surname": fs[0] if fs else None,
            "former_surname_kana": fs[1] if fs else None, "former_surname_gaiji_count": fs_g,
            "former_surname_gaiji_change_seq": 0,
        }

    def _d1_person(self, index: int, removal: Optional[str], batch: Batch) -> None:
        versions, birth_ord, sex = self._d1_versions(index, removal)
        birth = date.fromordinal(birth_ord)
        code = self.juminhyo_code(index)
        key = "j" + code
        rows = [self._juki_row(code, v, birth, sex, key) for v in versions]
        _chain_history(rows, batch.juki_history)
        batch.juki.append(rows[-1])
        del self.last_ts[key]
        if self.rng.random() < self.p.mie_honseki_ratio:
            self._d1_fuhyo(code, versions, birth, sex, removal, batch)

    # --- D2 ----------------------------------------------------------------------------------

    def _fuhyo_chain(self, code: str, chain: list[dict], birth: date, sex: str, manager: str, batch: Batch) -> None:
        """Store a 附票 version chain (oldest first), keeping what was on file from FUHYO_START on."""
        start = 0
        for i, c in enumerate(chain):
            if c["change_date"] <= FUHYO_START:
                start = i
        chain = chain[start:]
        if chain[-1]["status"] == "消除" and chain[-1]["change_date"] < FUHYO_START:
            return  # removed before the fuhyo server existed
        dv = self.derived
        key = "f" + code
        rows = []
        for c in chain:
            sur, giv = c["parts"]
            name_g, addr_g, last_g = dv.name_gaiji(sur[0], giv[0]), c["address_gaiji"], c["last_address_gaiji"]
            ts, notified = self._received(c["change_date"], FUHYO_START, key)
            self.fuhyo_seq += 1
            rows.append({
                "juminhyo_code": code, "name": c["name"], "name_gaiji_count": name_g, "name_kana": c["kana"],
                "birth_date": birth, "sex": sex, "address_municipality_code": c["muni"], "address": c["address"],
                "address_gaiji_count": addr_g, "last_address": c["last_address"], "last_address_gaiji_count": last_g,
                "change_date": c["change_date"], "old_juminhyo_code": None, "fuhyo_municipality_code": manager,
                "status": c["status"], "gaiji_flag": bool(name_g or addr_g or last_g),
                "gaiji_pattern": _GAIJI_PATTERN[bool(name_g), bool(addr_g), bool(last_g)],
                "notification_kind": c["kind"], "reason": c["reason"], "name_seion": dv.name_seion(sur[1], giv[1]),
                "timestamp": ts, "notified_date": notified, "update_seq": self.fuhyo_seq,
            })
        del self.last_ts[key]
        _chain_history(rows, batch.fuhyo_history)
        last = rows[-1]
        batch.fuhyo.append(last)
        if last["status"] == "消除":
            batch.fuhyo_removed += 1
        elif last["address"] is None:
            batch.fuhyo_abroad += 1
        elif last["address_municipality_code"] not in self.prefecture:
            batch.fuhyo_other_prefecture += 1

    @staticmethod
    def _fc(parts, v_name, v_kana, address, address_gaiji, muni, change_date, reason, kind, status="現存",
            last_address=None) -> dict:
        """One 附票 version while a chain is built; ``parts`` (surname, given): the name's (文字, よみ) pairs."""
        return {"parts": parts, "name": v_name, "kana": v_kana, "address": address, "address_gaiji": address_gaiji,
                "muni": muni, "change_date": change_date, "reason": reason, "kind": kind, "status": status,
                "last_address": last_address, "last_address_gaiji": 0}

    def _d1_fuhyo(self, code: str, versions: list[_V], birth: date, sex: str, removal: Optional[str],
                  batch: Batch) -> None:
        rng = self.rng
        first = versions[0]
        manager = first.muni if rng.random() < 0.85 else self._other_mie(first.muni).code
        chain: list[dict] = []
        live = [v for v in versions if not v.deleted]
        for i, v in enumerate(live):
            name = v.surname[0] + NAME_SEP + v.given[0]
            kana = v.surname[1] + NAME_SEP + v.given[1]
            if i == 0:
                chain.append(self._fc((v.surname, v.given), name, kana, v.address, v.address_gaiji, v.muni, v.change_date, "記載", "記載"))
                continue
            prev = chain[-1]
            if v.address != prev["address"]:
                chain.append(self._fc((v.surname, v.given), name, kana, v.address, v.address_gaiji, v.muni, v.change_date, "住所変更", "修正"))
            elif name != prev["name"]:
                chain.append(self._fc((v.surname, v.given), name, kana, v.address, v.address_gaiji, v.muni, v.change_date, "職権修正", "修正"))
        last = chain[-1]
        if removal is not None:
            end = versions[-1].change_date
            if removal == "死亡":
                chain.append(dict(last, change_date=end, reason="消除", kind="消除", status="消除"))
            elif removal == "国外転出":
                chain.append(dict(last, address=None, address_gaiji=0, muni=None, change_date=end, reason="国外転出",
                                  kind="修正", last_address=last["address"], last_address_gaiji=last["address_gaiji"]))
            else:  # 国内転出: the 附票 follows them to another prefecture
                om = self._other_pick(rng)
                a, ag, _ = self._address(om)
                moved = min(self.today_ord, end.toordinal() + int(rng.random() * 15))
                chain.append(dict(last, address=a, address_gaiji=ag, muni=om.code, change_date=date.fromordinal(moved),
                                  reason="住所変更", kind="修正"))
        self._fuhyo_chain(code, chain, birth, sex, manager, batch)

    def _other_person(self, index: int, batch: Batch) -> None:
        """A person with a Mie 本籍 living in another prefecture (D2 only)."""
        rng, p = self.rng, self.p
        sex, birth_ord = self._resident_birth()
        birth = date.fromordinal(birth_ord)
        surname, given = self._surname(), self._given(sex, birth.year)
        name, kana = surname[0] + NAME_SEP + given[0], surname[1] + NAME_SEP + given[1]
        manager = self._mie_pick(rng).code
        d0 = birth_ord if rng.random() < 0.3 else self._date_between(birth_ord, self.today_ord)
        om = self._other_pick(rng)
        a, ag, _ = self._address(om)
        chain = [self._fc((surname, given), name, kana, a, ag, om.code, date.fromordinal(d0), "記載", "記載")]
        lo = max(d0, FUHYO_START.toordinal()) + 1
        if rng.random() < p.other_history_ratio and lo < self.today_ord:
            om = self._other_pick(rng)
            a, ag, _ = self._address(om)
            chain.append(self._fc((surname, given), name, kana, a, ag, om.code, date.fromordinal(self._date_between(lo, self.today_ord)),
                                  "住所変更", "修正"))
        if rng.random() < p.other_removed_ratio:
            lo = max(chain[-1]["change_date"].toordinal() + 1, FUHYO_START.toordinal())
            if lo <= self.today_ord:
                chain.append(dict(chain[-1], change_date=date.fromordinal(self._date_between(lo, self.today_ord)),
                                  reason="消除", kind="消除", status="消除"))
        self._fuhyo_chain(self.juminhyo_code(index), chain, birth, sex, manager, batch)

    # --- driver ------------------------------------------------------------------------------

    def batch_count(self, batch_size: int) -> int:
        """How many batches of ``batch_size`` persons :meth:`batches` yields (D1 persons, then the 附票-only ones)."""
        return -(-self.d1_persons // batch_size) + -(-self.others // batch_size)

    def batch(self, k: int, batch_size: int) -> Batch:
        """The ``k``-th batch on its own (any process, any order): its versions are numbered from 1 in each
        register; :meth:`Batch.renumber` puts them after the earlier batches'. A batch that starts inside a
        block of :data:`BLOCK` persons generates the block's earlier persons and drops them."""
        d1_batches = -(-self.d1_persons // batch_size)
        if k < d1_batches:
            phase, lo, count = "d1", k * batch_size, self.d1_persons
        else:
            phase, lo, count = "other", (k - d1_batches) * batch_size, self.others
        hi = min(count, lo + batch_size)
        n1, removed = self.d1_persons, self.removed
        batch, out = Batch(), Batch()
        for index in range(lo - lo % BLOCK, hi):
            if index % BLOCK == 0:
                self.rng = random.Random(f"jukinet-seed/{self.seed}/{phase}/{index // BLOCK}")
            if index == lo:
                batch, self.juki_seq, self.fuhyo_seq = out, 0, 0
            if phase == "other":
                self._other_person(n1 + index, batch)
                continue
            is_removed = (index + 1) * removed // n1 > index * removed // n1
            self._d1_person(index, self._removal_pick(self.rng) if is_removed else None, batch)
            batch.removed += is_removed
            batch.residents += not is_removed
        out.persons = max(hi - lo, 0)
        return out

    def batches(self, batch_size: int = 5000) -> Iterator[Batch]:
        """All batches in order, numbered (更新順番号) one after the other."""
        juki_seq = fuhyo_seq = 0
        for k in range(self.batch_count(batch_size)):
            b = self.batch(k, batch_size)
            juki_seq, fuhyo_seq = b.renumber(juki_seq, fuhyo_seq)
            yield b


def generate(residents: int, seed: int = 0, *, today: date = DEFAULT_TODAY, params: Params = Params(),
             batch_size: int = 5000, prefecture: Optional[geo.places.PrefectureRef] = None) -> Iterator[Batch]:
    """Yield the population of ``prefecture`` (三重県 when None) in batches of ``batch_size`` persons
    (see the module docstring)."""
    return Generator(residents, seed, today, params, prefecture).batches(batch_size)
