"""The month of the operation log as the monthly analysis reads it: counted by the database (A4;
issue 16, ADR 0059).

The analysis used to read every entry of the month as an :class:`~jukinet.audit.analysis.Entry` and
parse its JSON keys (25× a bare ``GROUP BY`` at 100,000 entries). Now, per chain:

1. **Counts** — one ``GROUP BY`` operator, JST day, action, outcome (:meth:`MonthLog.groups`): the
   counts table, flags (a) and (e) per operator-day, and the totals. The JST day is a balanced
   ``CASE`` over the month's day boundaries (plain comparisons of ``at``: the same SQL on SQLite and
   PostgreSQL).
2. **The entries a rule may list** (:meth:`MonthLog.found`), read as objects with their keys parsed:

   * every refused entry (f; the counts tell a refusal from an input error by its code), read by
     the operator-days the counts show refusals on (the ``(operator_id, at)`` index);
   * granted personal-data access outside office hours (c): ``at`` in the gaps between the working
     days' office hours — index ranges, the closed days computed in Python (jpholiday);
   * lookups and batch outputs of the operator-days that (a) or (e) flag, by the counts;
   * (b) and (d): **one** more pass over the granted personal-data access (:meth:`MonthLog._keyed`)
     groups it per operator, person digest (the keys' ``juminhyo_code``), the 氏 / area search keys
     any operator's flag (d) names, and lookup or not, with the group's seqs — and returns only the
     groups a flag may name (:meth:`MonthLog._keyed_all`: pairs looked up often enough in one chain to
     be over the limit in all, read then from every chain; groups with a related search key or
     person); Python then picks the pairs over the limit (summed over the chains) and the groups
     related to their operator (the digests of persons sharing the 氏 or living under the prefix),
     and reads those seqs.

   Each list is a superset of what its rule names; the rules (:mod:`jukinet.audit.analysis`) then
   run unchanged on it, so the analysis is the one of the whole month (tested against it).

A JSON member is read with ``json_extract`` on SQLite and ``->>`` on PostgreSQL, from the keys parsed
once per row into a ``jsonb`` there (:func:`json_doc`, :func:`doc_text`). Nothing here logs or raises
with a key or digest.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Iterable, Iterator

from sqlalchemy import and_, any_, bindparam, func, literal_column, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import case
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from jukinet.audit import analysis as an
from jukinet.store.tables_security import OPLOG

JST = an.JST
#: bind parameters in one IN list or OR of terms (well below SQLite's limit of a statement)
CHUNK = 400
_ENTRY_COLUMNS = ("seq", "at", "operator_id", "terminal_id", "action", "outcome", "purpose_code", "keys",
                  "result_count", "detail")


class _JsonDoc(FunctionElement):
    type = String()
    inherit_cache = True
    name = "json_doc"


def json_doc(column):
    """``column``'s JSON text parsed once, for several :func:`doc_text` of it: PostgreSQL's ``jsonb``
    (one parse; ``->>`` on it is a lookup), SQLite's text itself (``json_extract`` reads text)."""
    return _JsonDoc(column)


@compiles(_JsonDoc)
def _json_doc_sqlite(element, compiler, **kw):
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(_JsonDoc, "postgresql")
def _json_doc_postgresql(element, compiler, **kw):
    return f"CAST({compiler.process(list(element.clauses)[0], **kw)} AS jsonb)"


class _DocText(FunctionElement):
    type = String()
    inherit_cache = True
    name = "doc_text"


def doc_text(doc, key: str):
    """The text of member ``key`` of a :func:`json_doc` (NULL when absent)."""
    if not re.fullmatch(r"[a-z_]+", key):
        raise ValueError("doc_text: a plain member name")
    return _DocText(doc, literal_column(f"'{key}'"))


@compiles(_DocText)
def _doc_text_sqlite(element, compiler, **kw):
    doc, key = list(element.clauses)
    return f"json_extract({compiler.process(doc, **kw)}, '$.{key.name.strip(chr(39))}')"


@compiles(_DocText, "postgresql")
def _doc_text_postgresql(element, compiler, **kw):
    doc, key = list(element.clauses)
    return f"({compiler.process(doc, **kw)} ->> {key.name})"


class _SeqList(FunctionElement):
    type = String()
    inherit_cache = True
    name = "seq_list"


def seq_list(column):
    """The values of an integer column in a group, as text joined by commas (aggregate)."""
    return _SeqList(column)


@compiles(_SeqList)
def _seq_list_sqlite(element, compiler, **kw):
    return f"group_concat({compiler.process(list(element.clauses)[0], **kw)}, ',')"


@compiles(_SeqList, "postgresql")
def _seq_list_postgresql(element, compiler, **kw):
    return f"string_agg(CAST({compiler.process(list(element.clauses)[0], **kw)} AS TEXT), ',')"


def _in_list(column, values: list[str], postgres: bool):
    """``column`` is one of ``values`` — one bind parameter whatever their number (a related 氏 of a big
    city names many persons): PostgreSQL ``= ANY(text[])``, SQLite ``IN (SELECT value FROM json_each(…))``."""
    if not values:
        return literal_column("1") == literal_column("0")
    if postgres:
        return column == any_(bindparam("persons", values, type_=ARRAY(String)))
    return column.in_(select(literal_column("value")).select_from(
        func.json_each(bindparam("persons", json.dumps(values)))))


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), max(size, 1)):
        yield items[i:i + size]


class MonthLog:
    """One month (``[start, end)`` in UTC, JST days) of the chains in ``engines`` (chain → engine)."""

    def __init__(self, engines: dict[str, Engine], start: datetime, end: datetime, days: list[date]):
        self.engines = engines
        self.start, self.end = start, end
        self.days = list(days)
        self.day_keys = [d.isoformat() for d in self.days]
        self.day_start = [datetime.combine(d, datetime.min.time(), JST).astimezone(start.tzinfo) for d in self.days]
        self._entries: dict = {}

    @classmethod
    def of(cls, engines: dict[str, Engine], start: datetime, end: datetime) -> "MonthLog":
        first, last = start.astimezone(JST).date(), (end - timedelta(microseconds=1)).astimezone(JST).date()
        return cls(engines, start, end, [first + timedelta(days=i) for i in range((last - first).days + 1)])

    # ---- SQL pieces ----------------------------------------------------------------------------

    def _in_month(self, log):
        return and_(log.c.at >= self.start, log.c.at < self.end)

    def _day_index(self, at, lo: int = 0, hi: int | None = None):
        """``CASE`` giving the index of the JST day of ``at`` (balanced: ≈ 5 comparisons a row)."""
        hi = len(self.days) - 1 if hi is None else hi
        if lo == hi:
            return literal_column(str(lo))
        mid = (lo + hi + 1) // 2
        return case((at < self.day_start[mid], self._day_index(at, lo, mid - 1)),
                    else_=self._day_index(at, mid, hi))

    def _day_range(self, log, day: str):
        i = self.day_keys.index(day)
        end = self.day_start[i + 1] if i + 1 < len(self.days) else self.end
        return and_(log.c.at >= self.day_start[i], log.c.at < end)

    def _off_hours(self, log, rules: an.Rules):
        """``at`` outside the office hours of the working days (c), as ranges of ``at``."""
        windows = []
        if rules.office_start < rules.office_end:
            for d in self.days:
                if an.closed_day(d, rules) is None:
                    windows.append((datetime.combine(d, rules.office_start, JST).astimezone(self.start.tzinfo),
                                    datetime.combine(d, rules.office_end, JST).astimezone(self.start.tzinfo)))
        gaps, lo = [], self.start
        for ws, we in windows:
            if ws > lo:
                gaps.append(and_(log.c.at >= lo, log.c.at < ws))
            lo = max(lo, we)
        if lo < self.end:
            gaps.append(and_(log.c.at >= lo, log.c.at < self.end))
        return or_(*gaps) if gaps else None

    # ---- counts --------------------------------------------------------------------------------

    def groups(self) -> list[an.Group]:
        """The month's entries counted per chain, operator, JST day, action and outcome."""
        out = []
        for chain, engine in self.engines.items():
            log, _ = OPLOG[chain]
            inner = (select(log.c.operator_id.label("op"), self._day_index(log.c.at).label("d"), log.c.action,
                            log.c.outcome, func.coalesce(log.c.result_count, 0).label("rc"))
                     .where(self._in_month(log)).subquery())
            q = (select(inner.c.op, inner.c.d, inner.c.action, inner.c.outcome, func.count(), func.sum(inner.c.rc))
                 .group_by(inner.c.op, inner.c.d, inner.c.action, inner.c.outcome))
            with engine.connect() as conn:
                for op, d, action, outcome, n, results in conn.execute(q):
                    out.append(an.Group(chain, op, self.day_keys[int(d)], action, outcome, int(n), int(results or 0)))
        return out

    # ---- the entries the rules may list --------------------------------------------------------

    def _read(self, conn, chain: str, log, *where) -> list[an.Entry]:
        q = select(*(log.c[c] for c in _ENTRY_COLUMNS)).where(self._in_month(log), *where)
        out = []
        for row in conn.execute(q):
            e = self._entries.get((chain, row.seq))
            if e is None:
                e = self._entries[(chain, row.seq)] = an.Entry.from_row(chain, row)
            out.append(e)
        return out

    def found(self, groups: list[an.Group], rules: an.Rules, related: dict[str, an.Related]) -> an.Found:
        """The entries each rule may list (:class:`~jukinet.audit.analysis.Found`), given the counts."""
        found = an.Found()
        wanted = an.wanted_days(groups, rules)
        present = defaultdict(set)             # chain -> (operator, day) with granted entries
        refused = defaultdict(set)             # chain -> (operator, day) with refused entries
        personal = defaultdict(set)            # chain -> operators with granted personal-data access
        for g in groups:
            if g.outcome == "granted" and g.operator_id:
                present[g.chain].add((g.operator_id, g.day))
                if g.action in an.PERSONAL_ACTIONS:
                    personal[g.chain].add(g.operator_id)
            if g.outcome == "refused":
                refused[g.chain].add((g.operator_id, g.day))
        seqs = self._keyed_seqs(self._keyed_all([c for c in self.engines if personal[c]], rules, related),
                                rules, related)
        for chain, engine in self.engines.items():
            log, _ = OPLOG[chain]
            with engine.connect() as conn:
                found.refused += self._read_days(conn, chain, log, {k: None for k in refused[chain]},
                                                 log.c.outcome == "refused")
                off = self._off_hours(log, rules)
                if off is not None and personal[chain]:
                    found.off_hours += self._read(conn, chain, log, log.c.outcome == "granted",
                                                  log.c.action.in_(an.PERSONAL_ACTIONS),
                                                  log.c.operator_id.is_not(None), off)
                days = {}
                for key in (wanted.lookups | wanted.mass_batch) & present[chain]:
                    days[key] = sorted((an.LOOKUP_ACTIONS if key in wanted.lookups else frozenset())
                                       | (an.BATCH_ACTIONS if key in wanted.mass_batch else frozenset()))
                found.days += self._read_days(conn, chain, log, days, log.c.outcome == "granted")
                for which in ("repeats", "related"):
                    for chunk in _chunks(sorted(seqs[which][chain]), CHUNK):
                        getattr(found, which).extend(self._read(conn, chain, log, log.c.seq.in_(chunk)))
        return found

    def _read_days(self, conn, chain: str, log, days: dict, *where) -> list[an.Entry]:
        """The entries of the (operator, day) keys of ``days`` (their actions, or any for None)."""
        terms = []
        for (op, day), actions in sorted(days.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
            who = log.c.operator_id.is_(None) if op is None else log.c.operator_id == op
            terms.append(and_(who, self._day_range(log, day), *([log.c.action.in_(actions)] if actions else [])))
        out = []
        for chunk in _chunks(terms, CHUNK // 6):
            out += self._read(conn, chain, log, *where, or_(*chunk))
        return out

    def _keyed_all(self, chains: list[str], rules: an.Rules, related: dict[str, an.Related]) -> dict[str, list]:
        """The groups of :meth:`_keyed` that (b) or (d) may name, per chain — every group of a pair that may
        be over the limit, wherever its lookups are.

        A pair looked up more than ``L`` times in all ``C`` chains together was looked up at least
        ``T = ⌈(L + 1) / C⌉`` times in one of them; each chain returns the pairs it saw ``T`` times or more
        (the candidates) and the groups (d) may relate; with more than one chain, the candidates' groups
        are then read from every chain (a second, narrow pass: their operators only), so that the sums
        over the chains are exact. A pair not among the candidates was looked up at most ``C (T − 1) ≤ L``
        times: never over the limit."""
        if not chains:
            return {}
        t = max(1, -(-(rules.repeat_lookups + 1) // len(chains)))
        persons = sorted({p for r in related.values() for p in r.persons if p})
        keyed = {chain: self._keyed(chain, related, t, persons) for chain in chains}
        pairs = {(r[0], r[1]) for rows in keyed.values() for r in rows if int(r[5]) and r[1] and r[8] >= t}
        if len(chains) > 1 and pairs:
            for chain in chains:
                have = {tuple(r[:6]) for r in keyed[chain]}
                keyed[chain] += [r for r in self._keyed(chain, related, t, persons, pairs=pairs)
                                 if tuple(r[:6]) not in have]
        return keyed

    def _keyed(self, chain: str, related: dict[str, an.Related], t: int, persons: list[str], *,
               pairs: set | None = None) -> list:
        """One pass over the granted personal-data access of ``chain``, grouped per operator, person digest
        (the keys' ``juminhyo_code``), the search keys of flag (d) that some operator's
        :class:`~jukinet.analysis.Related` names, and lookup or not — with how many, their seqs and how
        many lookups of the (operator, person) pair the chain holds in all. Only the groups a flag may
        name come back: lookups of a pair seen ``t`` times or more, groups with a related search key or a
        person in ``persons`` (any operator's related persons) — or, with ``pairs``, every lookup group of
        those pairs. Rows: (op, p, nm, fn, ad, lk, n, seqs, pair lookups)."""
        log, _ = OPLOG[chain]
        keys = log.c["keys"]
        names = sorted(set().union(*(r.names for r in related.values())))
        addresses = sorted(set().union(*(r.addresses for r in related.values())))
        postgres = self.engines[chain].dialect.name == "postgresql"

        # the keys parsed once per row (PostgreSQL: a jsonb in a subquery kept apart by OFFSET 0, so that
        # the planner does not copy the cast into each member below), then up to four members read from it
        where = [self._in_month(log), log.c.outcome == "granted", log.c.action.in_(an.PERSONAL_ACTIONS),
                 log.c.operator_id.is_not(None)]
        if pairs is not None:
            where.append(log.c.operator_id.in_(sorted({op for op, _p in pairs})))
        doc = select(log.c.operator_id.label("op"), json_doc(keys).label("kj"), log.c.action.label("act"),
                     log.c.seq).where(*where)
        doc = (doc.offset(0) if postgres else doc).subquery()

        def hit(key: str, values: list):
            v = doc_text(doc.c.kj, key)
            return case((v.in_(values), v), else_=None) if values else literal_column("NULL")
        inner = (select(doc.c.op.label("op"), doc_text(doc.c.kj, "juminhyo_code").label("p"),
                        hit("name", names).label("nm"), hit("four_name", names).label("fn"),
                        hit("address", addresses).label("ad"),
                        case((doc.c.act.in_(an.LOOKUP_ACTIONS), literal_column("1")),
                             else_=literal_column("0")).label("lk"), doc.c.seq)
                 .subquery())
        cols = (inner.c.op, inner.c.p, inner.c.nm, inner.c.fn, inner.c.ad, inner.c.lk)
        g = (select(*cols, func.count().label("n"), seq_list(inner.c.seq).label("seqs"),
                    func.sum(func.count()).over(partition_by=(inner.c.op, inner.c.p, inner.c.lk)).label("pn"))
             .group_by(*cols).subquery())
        lookups = and_(g.c.lk == literal_column("1"), g.c.p.is_not(None))
        if pairs is not None:
            wanted = and_(lookups, tuple_(g.c.op, g.c.p).in_(sorted(pairs)))
        else:
            wanted = or_(and_(lookups, g.c.pn >= t), g.c.nm.is_not(None), g.c.fn.is_not(None), g.c.ad.is_not(None),
                         _in_list(g.c.p, persons, postgres))
        q = select(g.c.op, g.c.p, g.c.nm, g.c.fn, g.c.ad, g.c.lk, g.c.n, g.c.seqs, g.c.pn).where(wanted)
        with self.engines[chain].connect() as conn:
            return [(*r[:8], int(r[8])) for r in conn.execute(q)]

    @staticmethod
    def _keyed_seqs(keyed: dict, rules: an.Rules, related: dict[str, an.Related]) -> dict:
        """{"repeats" | "related": {chain: seqs}} from the rows of :meth:`_keyed` of every chain:
        (b) the lookups of the pairs over the limit (summed over the chains), (d) the entries whose
        keys are related to their operator (as :func:`~jukinet.audit.analysis.flag_related` decides)."""
        pairs = Counter()
        for rows in keyed.values():
            for op, p, _nm, _fn, _ad, lk, n, _seqs, _pn in rows:
                if int(lk):
                    pairs[(op, p)] += int(n)
        over = an.repeated_pairs(pairs, rules)
        out: dict = {"repeats": defaultdict(set), "related": defaultdict(set)}
        for chain, rows in keyed.items():
            for op, p, nm, fn, ad, lk, _n, seqs, _pn in rows:
                r = related.get(op)
                repeat = bool(int(lk)) and (op, p) in over
                rel = r is not None and (p in r.persons or nm in r.names or fn in r.names or ad in r.addresses)
                if repeat or rel:
                    ids = {int(x) for x in seqs.split(",")}
                    if repeat:
                        out["repeats"][chain] |= ids
                    if rel:
                        out["related"][chain] |= ids
        return out


def entries_of(found: an.Found) -> Iterable[an.Entry]:
    """Every entry read as an object (each once)."""
    seen = {}
    for es in (found.refused, found.off_hours, found.days, found.repeats, found.related):
        for e in es:
            seen[(e.chain, e.seq)] = e
    return seen.values()
