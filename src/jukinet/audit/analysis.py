"""Monthly analysis of the operation log (A4; ADR 0022): counts per operator and the flags.

Pure: takes the month's log entries (:class:`Entry`, as read from the three hash chains) and the
rules (:class:`Rules`), returns an :class:`Analysis`. No database, no clock. The service gives it the
month as the database counted it (:class:`Group`) and only the entries a flag may list
(:class:`Found`; :func:`analyse_grouped`, ADR 0059); :func:`analyse` of every entry is the same
analysis, the definition it is tested against. Each flag names the
entries behind it (chain + seq); nothing here holds a resident's data — search keys are the keyed
digests the log already stores, and flag (d) compares them with digests the service computed.

Flags (kind — 区分):

====  ================  ==============================================================================
kind  区分              fires when
====  ================  ==============================================================================
a     業務なし照会      a lookup (検索・詳細表示) by an operator on a JST day on which that operator made
                        no provision, national query, disclosure or correction (same operator, same day)
b     同一人反復照会    one operator looked up (詳細表示) the same person (住民票コード digest) more
                        than ``repeat_lookups`` times in the month (provisions of that person do not count)
c     時間外照会        personal data accessed outside office hours, on a weekend, a public holiday
                        (jpholiday) or a closed day (年末年始)
d     関係者照会        a lookup of a person sharing the operator's surname or living under the
                        address prefix recorded for the operator (digests computed by the service)
e     大量照会・抽出    an operator-day with more lookups or result rows than the limits, or batch
                        outputs of at least ``mass_batch_rows`` persons
f     拒否              refused requests (except the codes that only mean "screen locked"); input errors
                        (outcome ``invalid``, or an input-error code: :mod:`jukinet.security.outcomes`)
                        are not refusals — they are counted per operator as information only
====  ================  ==============================================================================

>>> from datetime import datetime, timezone
>>> rules = Rules()
>>> e = lambda seq, h, action, **kw: Entry("juki", seq, datetime(2026, 10, 5, h, 0, tzinfo=timezone.utc),
...                                         "OP1", "T1", action, **kw)
>>> # 2026-10-05 is a Monday; 01:00 UTC = 10:00 JST (in hours), 13:00 UTC = 22:00 JST (outside)
>>> a = analyse([e(1, 1, "search", keys={"name": "n1"}), e(2, 1, "provision"), e(3, 13, "detail",
...             keys={"juminhyo_code": "p1"})], rules)
>>> [(f.kind, [x.seq for x in f.entries]) for f in a.flags]
[('c', [3])]
>>> a = analyse([e(1, 1, "search")], rules)
>>> [(f.kind, f.operator_id, f.day) for f in a.flags]
[('a', 'OP1', '2026-10-05')]
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Optional

import jpholiday

from jukinet.security.outcomes import is_input_error_entry, is_refusal_entry

JST = timezone(timedelta(hours=9))

#: 照会: a person looked up on the operator screens (事務5)
LOOKUP_ACTIONS = frozenset({"search", "detail"})
#: business that justifies a lookup the same day: provision (事務2/4), disclosure, correction (事務3)
BUSINESS_ACTIONS = frozenset({"provision", "provision_batch", "national_query", "disclosure_intake",
                              "disclosure_decide", "disclosure_form", "disclosure_provisions", "correction_open",
                              "correction_step", "correction_letter", "suspension_open", "suspension_step",
                              "suspension_decide", "suspension_extend", "suspension_receipt", "suspension_letter",
                              "municipal_report", "municipal_report_document"})
#: every action that reads a resident's data (for the office-hours rule (c))
PERSONAL_ACTIONS = LOOKUP_ACTIONS | BUSINESS_ACTIONS
#: batch outputs (e)
BATCH_ACTIONS = frozenset({"provision_batch"})

_EMPTY: dict = {}   # shared by entries without keys/detail (never mutated)


def _shared(text: Optional[str]) -> Optional[str]:
    """One object for equal texts (``sys.intern``: the vocabulary of operators, terminals, actions and
    days is small; an interned text is freed again when no entry holds it)."""
    return sys.intern(text) if type(text) is str else text

KINDS = {
    "a": "業務なし照会",
    "b": "同一人反復照会",
    "c": "時間外照会",
    "d": "関係者照会",
    "e": "大量照会・抽出",
    "f": "拒否",
}
KIND_HELP = {
    "a": "検索・詳細表示の当日に、同じ操作者による提供・全国サーバ照会・開示・訂正の処理がありません。",
    "b": "同じ操作者が同じ人の本人確認情報を繰り返し照会しています。",
    "c": "執務時間外 (休日・祝日・年末年始を含む) に本人確認情報を扱っています。",
    "d": "操作者と同じ氏、または操作者の住所の区域に住む人を照会しています。",
    "e": "1日の照会件数・抽出件数が上限を超えています。",
    "f": "権限・目的の範囲外として拒否された操作です (入力の誤りは含みません)。",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One operation-log entry as the analysis sees it (digests only).

    A month is held whole (every lookup may stand behind a flag, and the CSV lists them all), so an
    entry is kept small (issue 17; ADR 0046): the repeated texts read from the database (operator,
    terminal, action, outcome, purpose, the JST day, the keys' names) are one shared object each, not
    one copy per row, and the JST time is computed when a report prints it — 100,000 entries hold
    ≈ 46 MiB instead of 63 (the keyed digests and the time of each entry remain)."""

    chain: str
    seq: int
    at: datetime                      # aware (UTC)
    operator_id: Optional[str]
    terminal_id: Optional[str]
    action: str
    outcome: str = "granted"
    purpose_code: Optional[str] = None
    keys: dict = field(default_factory=dict)
    result_count: Optional[int] = None
    detail: dict = field(default_factory=dict)
    day: str = field(init=False, repr=False, compare=False)            # JST date, ISO

    def __post_init__(self):
        object.__setattr__(self, "day", _shared(self.at.astimezone(JST).date().isoformat()))

    @property
    def local(self) -> datetime:
        """The time in JST."""
        return self.at.astimezone(JST)

    @classmethod
    def from_row(cls, chain: str, row) -> "Entry":
        m = row._mapping if hasattr(row, "_mapping") else row
        at = m["at"]
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)

        def js(v):
            if not v or v == "{}":
                return _EMPTY
            try:
                d = json.loads(v)
            except ValueError:
                return _EMPTY
            return {_shared(k): val for k, val in d.items()} if isinstance(d, dict) else _EMPTY
        return cls(_shared(chain), int(m["seq"]), at.astimezone(timezone.utc), _shared(m["operator_id"]),
                   _shared(m["terminal_id"]), _shared(m["action"]), _shared(m["outcome"]), _shared(m["purpose_code"]),
                   js(m["keys"]), m["result_count"], js(m["detail"]))

    @property
    def granted(self) -> bool:
        return self.outcome == "granted"

    @property
    def person(self) -> Optional[str]:
        """The person looked up, as the keyed digest of the 住民票コード (None for a 4情報 search)."""
        return self.keys.get("juminhyo_code")

    @property
    def ref(self) -> str:
        return f"{self.chain}#{self.seq}"


@dataclass(frozen=True)
class Rules:
    office_start: time = time(8, 30)
    office_end: time = time(17, 30)
    closed_days: tuple = ("12-29", "12-30", "12-31", "01-02", "01-03")
    repeat_lookups: int = 3
    mass_lookups_per_day: int = 100
    mass_results_per_day: int = 2000
    mass_batch_rows: int = 1000
    refusal_ignore: frozenset = frozenset({"SESSION_IDLE", "SESSION_EXPIRED", "AUTH_REQUIRED", "SESSION_INVALID"})

    @classmethod
    def from_config(cls, cfg) -> "Rules":
        def hm(s: str) -> time:
            h, m = s.split(":")
            return time(int(h), int(m))
        return cls(hm(cfg.office_start), hm(cfg.office_end), tuple(cfg.closed_days), int(cfg.repeat_lookups),
                   int(cfg.mass_lookups_per_day), int(cfg.mass_results_per_day), int(cfg.mass_batch_rows),
                   frozenset(cfg.refusal_ignore))


def closed_day(d: date, rules: Rules = Rules()) -> Optional[str]:
    """Why ``d`` is not a working day (土曜日, 日曜日, the holiday's name, 年末年始), or None.

    >>> closed_day(date(2026, 11, 23)), closed_day(date(2026, 11, 28)), closed_day(date(2026, 11, 26))
    ('勤労感謝の日', '土曜日', None)
    >>> closed_day(date(2026, 12, 30)), closed_day(date(2027, 1, 1))
    ('年末年始', '元日')
    """
    name = jpholiday.is_holiday_name(d)
    if name:
        return name
    if d.weekday() >= 5:
        return "土曜日" if d.weekday() == 5 else "日曜日"
    if d.strftime("%m-%d") in rules.closed_days:
        return "年末年始"
    return None


def outside_hours(at: datetime, rules: Rules = Rules()) -> Optional[str]:
    """Why a moment is outside office hours (JST), or None.

    >>> outside_hours(datetime(2026, 11, 26, 0, 0, tzinfo=timezone.utc))        # 09:00 JST Thu
    >>> outside_hours(datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc))       # 19:00 JST
    '時間外 (19:00)'
    >>> outside_hours(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc))
    '勤労感謝の日'
    """
    local = at.astimezone(JST)
    why = closed_day(local.date(), rules)
    if why:
        return why
    if not (rules.office_start <= local.time() < rules.office_end):
        return f"時間外 ({local:%H:%M})"
    return None


@dataclass
class Flag:
    kind: str
    operator_id: Optional[str]
    day: Optional[str]               # JST date, or None for a whole-month flag
    reason: str                      # why, in Japanese, without personal data
    entries: list[Entry]
    no: int = 0

    @property
    def label(self) -> str:
        return KINDS[self.kind]


@dataclass
class OperatorCounts:
    operator_id: str
    by_action: Counter = field(default_factory=Counter)     # (action, outcome) -> n
    lookups: int = 0
    business: int = 0
    refused: int = 0
    invalid: int = 0          # input errors (入力誤り): information, never a flag
    results: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_action.values())


@dataclass
class Analysis:
    entries: int
    counts: dict[str, OperatorCounts]
    flags: list[Flag]

    def flag_counts(self) -> dict[str, int]:
        c = Counter(f.kind for f in self.flags)
        return {k: c.get(k, 0) for k in KINDS}


def _by_operator_day(entries: Iterable[Entry]) -> dict:
    out: dict = defaultdict(list)
    for e in entries:
        if e.operator_id:
            out[(e.operator_id, e.day)].append(e)
    return out


def flag_unfollowed(entries: list[Entry]) -> list[Flag]:
    """(a) Lookups on a day without any business action of the same operator (granted ones)."""
    flags = []
    for (op, day), es in sorted(_by_operator_day(e for e in entries if e.granted).items()):
        lookups = [e for e in es if e.action in LOOKUP_ACTIONS]
        if lookups and not any(e.action in BUSINESS_ACTIONS for e in es):
            flags.append(Flag("a", op, day, f"照会 {len(lookups)} 件、同日の提供・開示等の処理なし", lookups))
    return flags


def flag_repeats(entries: list[Entry], rules: Rules) -> list[Flag]:
    """(b) The same person (住民票コード digest) looked up by one operator more than the limit."""
    groups: dict = defaultdict(list)
    for e in entries:
        if e.granted and e.operator_id and e.action in LOOKUP_ACTIONS and e.person:
            groups[(e.operator_id, e.person)].append(e)
    flags = []
    n = 0
    for (op, _person), es in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0].at)):
        if len(es) > rules.repeat_lookups:
            n += 1
            flags.append(Flag("b", op, None, f"同一人の照会 {len(es)} 回 (上限 {rules.repeat_lookups} 回)", es))
    return flags


def flag_off_hours(entries: list[Entry], rules: Rules) -> list[Flag]:
    """(c) Personal data accessed outside office hours; one flag per operator and day."""
    flags = []
    for (op, day), es in sorted(_by_operator_day(e for e in entries if e.granted and e.action in PERSONAL_ACTIONS)
                                .items()):
        off = [(e, outside_hours(e.at, rules)) for e in es]
        off = [(e, why) for e, why in off if why]
        if off:
            whys = sorted({why.split(" ")[0] for _, why in off})
            flags.append(Flag("c", op, day, f"{'・'.join(whys)}の操作 {len(off)} 件", [e for e, _ in off]))
    return flags


@dataclass(frozen=True)
class Related:
    """Digests (as the log stores them) that designate persons related to one operator (d)."""

    persons: frozenset = frozenset()       # digests of 住民票コード of persons with the surname / at the address
    names: frozenset = frozenset()         # digests of the surname as a search key (name prefix search)
    addresses: frozenset = frozenset()     # digests of the recorded address prefix as a search key


def flag_related(entries: list[Entry], related: dict[str, Related]) -> list[Flag]:
    """(d) Lookups whose keys designate a person related to the operator; one flag per operator."""
    hits: dict = defaultdict(list)
    for e in entries:
        r = related.get(e.operator_id or "")
        if r is None or not e.granted or e.action not in PERSONAL_ACTIONS:
            continue
        k = e.keys
        if (k.get("juminhyo_code") in r.persons or k.get("name") in r.names or k.get("four_name") in r.names
                or k.get("address") in r.addresses):
            hits[e.operator_id].append(e)
    return [Flag("d", op, None, f"操作者と同じ氏・同じ区域の人の照会 {len(es)} 件", es) for op, es in sorted(hits.items())]


def flag_mass(entries: list[Entry], rules: Rules) -> list[Flag]:
    """(e) Many lookups or many result rows in one operator-day; large batch outputs."""
    flags = []
    for (op, day), es in sorted(_by_operator_day(e for e in entries if e.granted).items()):
        lookups = [e for e in es if e.action in LOOKUP_ACTIONS]
        results = sum(e.result_count or 0 for e in lookups)
        batch = [e for e in es if e.action in BATCH_ACTIONS]
        batch_rows = sum(e.result_count or 0 for e in batch)
        why, behind = [], []
        if len(lookups) > rules.mass_lookups_per_day:
            why.append(f"照会 {len(lookups)} 件 (上限 {rules.mass_lookups_per_day})")
        if results > rules.mass_results_per_day:
            why.append(f"照会結果 {results} 件 (上限 {rules.mass_results_per_day})")
        if why:
            behind += lookups
        if batch and batch_rows >= rules.mass_batch_rows:
            why.append(f"一括提供 {batch_rows} 人分 (基準 {rules.mass_batch_rows})")
            behind += batch
        if why:
            flags.append(Flag("e", op, day, "、".join(why), sorted(behind, key=lambda e: (e.at, e.chain, e.seq))))
    return flags


def flag_refusals(entries: list[Entry], rules: Rules) -> list[Flag]:
    """(f) Refused requests, per operator (unknown operator: None), except the "screen locked" codes."""
    groups: dict = defaultdict(list)
    for e in entries:
        code = e.detail.get("code")
        if is_refusal_entry(e.outcome, code) and code not in rules.refusal_ignore:
            groups[e.operator_id or ""].append(e)
    flags = []
    for op, es in sorted(groups.items()):
        codes = Counter(e.detail.get("code") or e.action for e in es)
        top = "・".join(f"{c} {n}" for c, n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
        flags.append(Flag("f", op or None, None, f"拒否 {len(es)} 件 ({top})", es))
    return flags


def count(entries: list[Entry]) -> dict[str, OperatorCounts]:
    out: dict[str, OperatorCounts] = {}
    for e in entries:
        op = e.operator_id or "(不明)"
        c = out.setdefault(op, OperatorCounts(op))
        c.by_action[(e.action, e.outcome)] += 1
        if is_input_error_entry(e.outcome, e.detail.get("code")):
            c.invalid += 1
        elif e.outcome == "refused":
            c.refused += 1
        elif e.action in LOOKUP_ACTIONS:
            c.lookups += 1
            c.results += e.result_count or 0
        elif e.action in BUSINESS_ACTIONS:
            c.business += 1
    return dict(sorted(out.items()))


def _numbered(flags: list[Flag]) -> list[Flag]:
    flags.sort(key=lambda f: (f.kind, f.operator_id or "", f.day or "", f.entries[0].at if f.entries else 0))
    for i, f in enumerate(flags, 1):
        f.no = i
    return flags


def _in_order(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.at, e.chain, e.seq))


def analyse(entries: Iterable[Entry], rules: Rules = Rules(), related: dict[str, Related] | None = None) -> Analysis:
    """Counts and flags of one month's entries (any order); flags are numbered 1.. by kind, operator, day.

    The whole month as objects: the rules' definition, used on crafted entries and as the reference
    :func:`analyse_grouped` (what the service runs) is tested against."""
    es = _in_order(entries)
    flags = (flag_unfollowed(es) + flag_repeats(es, rules) + flag_off_hours(es, rules)
             + flag_related(es, related or {}) + flag_mass(es, rules) + flag_refusals(es, rules))
    return Analysis(len(es), count(es), _numbered(flags))


# ---- the month as the database counts it (issue 16; ADR 0059) ---------------------------------------
#
# The service does not hold the month: the database counts it (one GROUP BY per chain, :class:`Group`),
# and only the entries some rule may list are read as :class:`Entry` (:class:`Found`, a superset of
# what the flags name, chosen with :func:`wanted_days` and the rules' own predicates). The flag
# functions above then run unchanged on those few entries, so each rule is still written once.


@dataclass(frozen=True, slots=True)
class Group:
    """The entries of one chain, operator, JST day, action and outcome: how many, and their result rows."""

    chain: str
    operator_id: Optional[str]
    day: str                          # JST date, ISO
    action: str
    outcome: str
    n: int
    results: int                      # sum of result_count (none counted as 0)


@dataclass(frozen=True)
class WantedDays:
    """The operator-days whose entries flags (a) and (e) list (from the counts alone)."""

    unfollowed: frozenset             # (a): lookups, no business
    mass_lookups: frozenset           # (e): lookups or their result rows over the day's limits
    mass_batch: frozenset             # (e): batch outputs of at least mass_batch_rows persons

    @property
    def lookups(self) -> frozenset:
        return self.unfollowed | self.mass_lookups


def wanted_days(groups: Iterable[Group], rules: Rules) -> WantedDays:
    """The (operator, day) pairs of flags (a) and (e), as :func:`flag_unfollowed` and :func:`flag_mass`
    decide them (granted entries of a known operator)."""
    per: dict = defaultdict(lambda: [0, 0, 0, 0, 0])        # lookups, results, business, batch, batch rows
    for g in groups:
        if g.outcome != "granted" or not g.operator_id:
            continue
        c = per[(g.operator_id, g.day)]
        if g.action in LOOKUP_ACTIONS:
            c[0] += g.n
            c[1] += g.results
        if g.action in BUSINESS_ACTIONS:
            c[2] += g.n
        if g.action in BATCH_ACTIONS:
            c[3] += g.n
            c[4] += g.results
    return WantedDays(
        frozenset(k for k, c in per.items() if c[0] and not c[2]),
        frozenset(k for k, c in per.items() if c[0] > rules.mass_lookups_per_day or c[1] > rules.mass_results_per_day),
        frozenset(k for k, c in per.items() if c[3] and c[4] >= rules.mass_batch_rows))


def repeated_pairs(counts: dict, rules: Rules) -> set:
    """(b): the (operator, person digest) pairs looked up more than ``repeat_lookups`` times, from
    ``{(operator, person): lookups}`` (granted lookups, summed over the chains)."""
    return {k for k, n in counts.items() if k[0] and k[1] and n > rules.repeat_lookups}


@dataclass
class Found:
    """The entries read as objects: each list holds every entry its rule may name (more is harmless)."""

    refused: list = field(default_factory=list)      # every entry with outcome refused (f, and the counts)
    off_hours: list = field(default_factory=list)    # granted personal-data access outside office hours (c)
    days: list = field(default_factory=list)         # lookups and batch outputs of the wanted days (a, e)
    repeats: list = field(default_factory=list)      # granted lookups of the repeated pairs (b)
    related: list = field(default_factory=list)      # granted personal-data access matching a related key (d)


def count_groups(groups: Iterable[Group], refused: Iterable[Entry]) -> dict[str, OperatorCounts]:
    """:func:`count` from the database's counts; a refused entry is an input error or a refusal by
    the code of its detail, so those few are counted one by one (``refused``: every one of them)."""
    out: dict[str, OperatorCounts] = {}
    for g in groups:
        op = g.operator_id or "(不明)"
        c = out.setdefault(op, OperatorCounts(op))
        c.by_action[(g.action, g.outcome)] += g.n
        if g.outcome == "refused":
            continue
        if is_input_error_entry(g.outcome, None):
            c.invalid += g.n
        elif g.action in LOOKUP_ACTIONS:
            c.lookups += g.n
            c.results += g.results
        elif g.action in BUSINESS_ACTIONS:
            c.business += g.n
    for e in refused:
        c = out.setdefault(e.operator_id or "(不明)", OperatorCounts(e.operator_id or "(不明)"))
        if is_input_error_entry(e.outcome, e.detail.get("code")):
            c.invalid += 1
        else:
            c.refused += 1
    return dict(sorted(out.items()))


def analyse_grouped(groups: list[Group], found: Found, rules: Rules = Rules(),
                    related: dict[str, Related] | None = None) -> Analysis:
    """The same :class:`Analysis` as :func:`analyse` of the whole month, from its counts and the
    entries of :class:`Found`."""
    w = wanted_days(groups, rules)
    unfollowed = [e for e in found.days if e.granted and e.action in LOOKUP_ACTIONS
                  and (e.operator_id, e.day) in w.unfollowed]
    mass = [e for e in found.days if e.granted and (
        (e.action in LOOKUP_ACTIONS and (e.operator_id, e.day) in w.mass_lookups)
        or (e.action in BATCH_ACTIONS and (e.operator_id, e.day) in w.mass_batch))]
    refused = [e for e in found.refused if e.outcome == "refused"]
    flags = (flag_unfollowed(_in_order(unfollowed)) + flag_repeats(_in_order(found.repeats), rules)
             + flag_off_hours(_in_order(found.off_hours), rules) + flag_related(_in_order(found.related), related or {})
             + flag_mass(_in_order(mass), rules) + flag_refusals(_in_order(refused), rules))
    return Analysis(sum(g.n for g in groups), count_groups(groups, refused), _numbered(flags))
