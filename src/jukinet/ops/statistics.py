"""Statistics: counts of updates, provisions, disclosures and consistency checks (A9; ADR 0014).

PIA II(1).3⑧: "本人確認情報の更新件数や提供件数等の集計を行う", and statistical material under
住基法 第30条の15第1項第4号. Everything here is a **count**: no query returns a person, a
住民票コード or any item's value, and neither do the CSV files or the charts made from them.

Sources (each a :class:`StatSource` in a registry, so a room adds or replaces one — issue 6
disclosures — by :func:`register_source` under the planned name):

* ``updates_juki`` / ``updates_fuhyo`` — every stored version is one update (the current row and
  each row of the history table): counted by the month of its 通知を受けた年月日 (the day in Japan we
  received the notice), its 市町村コード (附票: 附票管理市町村コード) and its 異動事由. Read through
  the covering indexes ``ix_*_{current,history}_stats`` over the period asked for. Versions erased
  by retention (A8) are no longer counted. A month that is over never gets another update (the
  通知を受けた年月日 of a version is the day it was stored), so its counts are read once and kept
  (:class:`ClosedMonths`) until the retention job or a seed changes the register; only the current
  month is counted on every view (issue 19, ADR 0052).
* ``consistency`` — consistency checks (C1) per month (JST) of the check, municipality, register
  and outcome: checks, persons compared, differences found.
* ``provisions`` — the provision record of both registers (P5, ``provision_records``): by month
  (JST) × register × requester × affair × kind (提供 / 移転 / 全国サーバ照会) × outcome, refusals
  included; "no data yet" while that table does not exist.
* ``disclosures`` (開示請求: month × register × scope × 突合 outcome) and ``corrections`` (訂正等の申出:
  month × register × kind × status) — from issue 6's tables; "no data yet" while they do not exist.

A period is a range of months, inclusive: ``Period("2026-04", "2027-03")`` (a fiscal year).
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
import re
import threading
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Optional

from sqlalchemy import func, inspect, literal, select, union_all

from jukinet.errors import JukinetError
from jukinet.store.repository import JST
from jukinet.store.tables import (fuhyo_current, fuhyo_history, fuhyo_seed_progress, juki_current, juki_history,
                                  juki_seed_progress)
from jukinet.store.tables_disclosure import CORRECTION_REQUESTS, DISCLOSURE_REQUESTS
from jukinet.store.tables_provision import PROVISION_RECORDS, provision_affairs, provision_requesters
from jukinet.store.tables_reconcile import RECONCILE, RETENTION_RUNS
from jukinet import geo
from jukinet import wareki

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    """Months ``start`` … ``end`` (``YYYY-MM``), both included."""

    start: str
    end: str

    def __post_init__(self):
        for m in (self.start, self.end):
            if not isinstance(m, str) or not _MONTH.match(m):
                raise JukinetError("STATS_PERIOD_INVALID", "期間は YYYY-MM の形式で指定してください。", field="period")
        if self.start > self.end:
            raise JukinetError("STATS_PERIOD_INVALID", "期間の開始が終了より後です。", field="period")
        y0, m0 = map(int, self.start.split("-"))
        y1, m1 = map(int, self.end.split("-"))
        if (y1 - y0) * 12 + (m1 - m0) >= 240:
            raise JukinetError("STATS_PERIOD_INVALID", "期間は20年以内で指定してください。", field="period")

    @classmethod
    def last_months(cls, n: int, today: Optional[date] = None) -> "Period":
        """The ``n`` months ending with the current one (in Japan)."""
        today = today or datetime.now(timezone.utc).astimezone(JST).date()
        y, m = today.year, today.month
        k = y * 12 + (m - 1) - (n - 1)
        return cls(f"{k // 12:04d}-{k % 12 + 1:02d}", f"{y:04d}-{m:02d}")

    @classmethod
    def fiscal_year(cls, year: int) -> "Period":
        """年度: April ``year`` … March ``year + 1``."""
        return cls(f"{year:04d}-04", f"{year + 1:04d}-03")

    def months(self) -> list[str]:
        y, m = map(int, self.start.split("-"))
        out = []
        while f"{y:04d}-{m:02d}" <= self.end:
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def first_day(self) -> date:
        y, m = map(int, self.start.split("-"))
        return date(y, m, 1)

    def day_after(self) -> date:
        y, m = map(int, self.end.split("-"))
        return date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1)

    def label(self) -> str:
        """``令和8年4月 〜 令和8年5月`` (和暦, ADR 0042)."""
        return f"{wareki.to_wareki_month(self.start)} 〜 {wareki.to_wareki_month(self.end)}"


@dataclass
class StatTable:
    """A table of counts: ``columns`` name the dimensions then the measures; ``rows`` are tuples.
    ``available`` is False for a source whose data does not exist yet (``note`` says why)."""

    name: str
    title: str
    columns: tuple
    rows: list = field(default_factory=list)
    available: bool = True
    note: str = ""

    def total(self, measure: int = -1) -> int:
        return sum(r[measure] for r in self.rows)

    def sum_by(self, dim: int, measure: int = -1) -> dict:
        out: dict = {}
        for r in self.rows:
            out[r[dim]] = out.get(r[dim], 0) + r[measure]
        return out

    def to_csv(self) -> str:
        """CSV text (the caller writes it UTF-8 with BOM, for Excel): header row of Japanese column
        names, then the rows. A source with no data yet gives its header and a comment row."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([COLUMN_LABELS.get(c, c) for c in self.columns])
        for r in self.rows:
            w.writerow(r)
        if not self.available:
            w.writerow([f"# {self.note}"])
        return buf.getvalue()


COLUMN_LABELS = {
    "month": "年月", "municipality_code": "市町村コード", "municipality": "市町村", "reason": "異動事由",
    "count": "件数", "register": "ファイル", "status": "結果", "checks": "確認回数", "compared": "照合人数",
    "differences": "相違件数", "pending": "確認保留", "requester": "提供先", "affair": "事務", "kind": "種別",
    "outcome": "結果", "requester_name": "提供先名", "affair_name": "事務名", "scope": "開示の範囲",
    "month_wareki": "年月 (和暦)",
}
REGISTER_LABELS = {"juki": "本人確認情報", "fuhyo": "附票本人確認情報"}
NO_DATA = "まだデータがありません（記録する機能が未実装です）。"


class StatSource:
    name = ""
    title = ""
    columns: tuple = ()

    def available(self, registers) -> bool:
        return True

    def rows(self, registers, period: Period) -> list[tuple]:
        raise NotImplementedError

    def table(self, registers, period: Period) -> StatTable:
        if not self.available(registers):
            return StatTable(self.name, self.title, self.columns, [], False, NO_DATA)
        return StatTable(self.name, self.title, self.columns, self.rows(registers, period))


_PRESENT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _has_table(engine, name: str) -> bool:
    """Whether a room's table exists yet (a catalogue query); once it does it stays, so that is kept."""
    present = _PRESENT.setdefault(engine, set())
    if name not in present:
        with engine.connect() as conn:
            if not inspect(conn).has_table(name):
                return False
        present.add(name)
    return True


def _month_of_date(conn, col):
    if conn.dialect.name == "sqlite":
        return func.substr(col, 1, 7)
    return func.to_char(col, "YYYY-MM")


def _month_of_instant_jst(conn, col):
    if conn.dialect.name == "sqlite":
        return func.strftime("%Y-%m", col, "+9 hours")
    return func.to_char(func.timezone("Asia/Tokyo", col), "YYYY-MM")


class UpdatesSource(StatSource):
    """Updates of one register by month × municipality × reason (current + history)."""

    columns = ("month", "municipality_code", "reason", "count")

    def __init__(self, register: str):
        self.register = register
        self.name = f"updates_{register}"
        self.title = f"更新件数 ({REGISTER_LABELS[register]})"
        if register == "juki":
            self.tables = ((juki_current, "municipality_code"), (juki_history, "municipality_code"))
        else:
            self.tables = ((fuhyo_current, "fuhyo_municipality_code"), (fuhyo_history, "fuhyo_municipality_code"))

    def rows(self, registers, period: Period) -> list[tuple]:
        """Months that are over from :data:`CLOSED` (read once), the months still open counted now."""
        return CLOSED.rows(self.name, registers.engine(self.register), period, self.count,
                           lambda conn: _closed_marker(conn, self.register))

    def count(self, conn, period: Period) -> list[tuple]:
        """The counts of ``period`` as stored now (one query over current and history)."""
        lo, hi = period.first_day(), period.day_after()
        parts = []
        for t, mc in self.tables:
            month = _month_of_date(conn, t.c.notified_date).label("month")
            parts.append(select(month, t.c[mc].label("mc"), t.c.reason.label("reason"),
                                func.count().label("n"))
                         .where(t.c.notified_date >= lo, t.c.notified_date < hi)
                         .group_by(month, t.c[mc], t.c.reason))
        u = union_all(*parts).subquery()
        q = (select(u.c.month, u.c.mc, u.c.reason, func.sum(u.c.n))
             .group_by(u.c.month, u.c.mc, u.c.reason).order_by(u.c.month, u.c.mc, u.c.reason))
        return [(m, mc, r, int(n)) for m, mc, r, n in conn.execute(q)]


def _closed_marker(conn, register: str) -> tuple:
    """What changes when a month that is over can change: a run of the retention job (it erases old
    versions, A8) and a seed (it writes versions of past months). One round trip."""
    runs = RETENTION_RUNS[register]
    seed = juki_seed_progress if register == "juki" else fuhyo_seed_progress
    row = conn.execute(select(select(func.max(runs.c.run_id)).scalar_subquery(),
                              select(seed.c.batches_done).limit(1).scalar_subquery(),
                              select(seed.c.complete).limit(1).scalar_subquery())).one()
    return tuple(row)


def open_from(now: Optional[datetime] = None) -> str:
    """The first month (``YYYY-MM``) that can still get updates: the current month in Japan, and on its
    first day the month before too (a notice stored just before midnight may commit just after)."""
    now = now or datetime.now(timezone.utc)
    day = (now.astimezone(JST) - timedelta(days=1)).date()
    return f"{day.year:04d}-{day.month:02d}"


def _month_before(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y - 1:04d}-12" if m == 1 else f"{y:04d}-{m - 1:02d}"


class ClosedMonths:
    """The counts of months that are over, kept per database (engine) and source, month by month.

    A source whose rows are counted by a month that can no longer get rows (the month a version was
    stored) reads each such month once; a view then counts only the months still open. The kept
    months are dropped when ``marker`` — read on every view, cheaply — changes. Counts only (no
    personal data), in this process's memory, bounded by the months asked for (at most 240 per
    period)."""

    def __init__(self, clock: Callable[[], datetime] | None = None):
        self._kept: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.clock = clock
        self.reads = 0            # queries over months that are over (tests, bench)

    def rows(self, source: str, engine, period: Period, count, marker) -> list[tuple]:
        first_open = open_from(self.clock() if self.clock else None)
        with engine.connect() as conn:
            out: list[tuple] = []
            if period.start < first_open:
                closed = Period(period.start, min(period.end, _month_before(first_open)))
                out += self._closed(source, engine, conn, closed, count, marker(conn))
            if period.end >= first_open:
                out += count(conn, Period(max(period.start, first_open), period.end))
            conn.rollback()
        return out

    def _closed(self, source, engine, conn, period: Period, count, mark) -> list[tuple]:
        months = period.months()
        with self._lock:
            per_engine = self._kept.setdefault(engine, {})
            kept = per_engine.get(source)
            if kept is None or kept[0] != mark:
                kept = per_engine[source] = (mark, {})
            missing = [m for m in months if m not in kept[1]]
        if missing:
            got: dict[str, list] = {m: [] for m in period.months() if missing[0] <= m <= missing[-1]}
            for r in count(conn, Period(missing[0], missing[-1])):
                got.setdefault(r[0], []).append(r)
            self.reads += 1
            with self._lock:
                if per_engine.get(source, (None,))[0] == mark:
                    per_engine[source][1].update(got)
            byk = {**kept[1], **got}
        else:
            byk = kept[1]
        return [r for m in months for r in byk.get(m, [])]


#: the months that are over, of every database this process reads (ADR 0052)
CLOSED = ClosedMonths()


class ConsistencySource(StatSource):
    """Consistency checks by month (JST) × municipality × register × outcome."""

    name = "consistency"
    title = "整合性確認"
    columns = ("month", "municipality_code", "register", "status", "checks", "compared", "differences", "pending")

    def rows(self, registers, period: Period) -> list[tuple]:
        # stored in UTC (SQLite keeps the wall time it is given): compare in UTC
        lo = datetime.combine(period.first_day(), datetime.min.time(), JST).astimezone(timezone.utc)
        hi = datetime.combine(period.day_after(), datetime.min.time(), JST).astimezone(timezone.utc)
        out = []
        for register, (runs, _) in RECONCILE.items():
            with registers.uow(register, write=False) as uow:
                conn = uow.conn
                month = _month_of_instant_jst(conn, runs.c.started_at).label("month")
                diffs = runs.c.only_in_snapshot_count + runs.c.only_on_server_count + runs.c.differs_count
                q = (select(month, runs.c.municipality_code, runs.c.status, func.count(),
                            func.coalesce(func.sum(runs.c.server_count), 0), func.coalesce(func.sum(diffs), 0),
                            func.coalesce(func.sum(runs.c.pending_count), 0))
                     .where(runs.c.started_at >= lo, runs.c.started_at < hi)
                     .group_by(month, runs.c.municipality_code, runs.c.status))
                for m, mc, st, n, comp, d, p in conn.execute(q):
                    out.append((m, mc, register, st, int(n), int(comp), int(d), int(p)))
        out.sort()
        return out


class ProvisionsSource(StatSource):
    """提供・移転 (and 全国サーバへの照会) from the provision record of both registers (P5, issue 5):
    by month (JST) × register × requester × affair × kind × outcome — refusals included, as the
    record keeps them. Unavailable (no data yet) while the provision record table does not exist."""

    name = "provisions"
    title = "提供・移転件数"
    columns = ("month", "register", "requester", "requester_name", "affair", "affair_name", "kind", "outcome",
               "count")

    def _names(self, registers) -> tuple[dict, dict]:
        """Requester and affair names from the catalogue (admin database), code → name."""
        if not _has_table(registers.engine("admin"), provision_requesters.name):
            return {}, {}
        names: tuple[dict, dict] = ({}, {})
        with registers.admin_tx(write=False) as conn:      # both lists in one round trip
            q = union_all(select(literal(0).label("k"), provision_requesters.c.code, provision_requesters.c.name),
                          select(literal(1).label("k"), provision_affairs.c.code, provision_affairs.c.name))
            for k, code, name in conn.execute(q):
                names[int(k)][code] = name
        return names

    def _tables(self):
        return PROVISION_RECORDS

    def available(self, registers) -> bool:
        tables = self._tables()
        if not tables:
            return False
        return _has_table(registers.engine("juki"), tables["juki"].name)

    def rows(self, registers, period: Period) -> list[tuple]:
        lo = datetime.combine(period.first_day(), datetime.min.time(), JST).astimezone(timezone.utc)
        hi = datetime.combine(period.day_after(), datetime.min.time(), JST).astimezone(timezone.utc)
        out = []
        req_names, aff_names = self._names(registers)
        for register, t in self._tables().items():
            with registers.uow(register, write=False) as uow:
                conn = uow.conn
                month = _month_of_instant_jst(conn, t.c.at).label("month")
                q = (select(month, t.c.requester_code, t.c.affair_code, t.c.kind, t.c.outcome, func.count())
                     .where(t.c.at >= lo, t.c.at < hi)
                     .group_by(month, t.c.requester_code, t.c.affair_code, t.c.kind, t.c.outcome))
                for m, req, aff, kind, outcome, n in conn.execute(q):
                    req, aff = req or "", aff or ""
                    out.append((m, register, req, req_names.get(req, req), aff, aff_names.get(aff, aff), kind,
                                outcome, int(n)))
        out.sort()
        return out


class _RegisterTableSource(StatSource):
    """Counts of one table of both registers by month (JST of ``at_column``) and two dimensions,
    from a room's own tables; "no data yet" while they do not exist."""

    tables: dict = {}
    at_column = ""
    dims: tuple = ()

    def _tables(self) -> dict:
        return self.tables

    def available(self, registers) -> bool:
        tables = self._tables()
        if not tables:
            return False
        return _has_table(registers.engine("juki"), tables["juki"].name)

    def rows(self, registers, period: Period) -> list[tuple]:
        lo = datetime.combine(period.first_day(), datetime.min.time(), JST).astimezone(timezone.utc)
        hi = datetime.combine(period.day_after(), datetime.min.time(), JST).astimezone(timezone.utc)
        out = []
        for register, t in self._tables().items():
            with registers.uow(register, write=False) as uow:
                conn = uow.conn
                at = t.c[self.at_column]
                month = _month_of_instant_jst(conn, at).label("month")
                cols = [t.c[d] for d in self.dims]
                q = (select(month, *cols, func.count()).where(at >= lo, at < hi).group_by(month, *cols))
                for m, *rest in conn.execute(q):
                    out.append((m, register, *[x or "" for x in rest[:-1]], int(rest[-1])))
        out.sort()
        return out


class DisclosuresSource(_RegisterTableSource):
    """開示請求 (O1, O3; issue 6): by month received × register × scope × 突合 outcome."""

    name, title = "disclosures", "開示請求件数"
    columns = ("month", "register", "scope", "outcome", "count")
    tables, at_column, dims = DISCLOSURE_REQUESTS, "received_at", ("scope", "outcome")


class CorrectionsSource(_RegisterTableSource):
    """訂正等の申出 (O2; issue 6): by month received × register × kind × status."""

    name, title = "corrections", "訂正等の申出件数"
    columns = ("month", "register", "kind", "status", "count")
    tables, at_column, dims = CORRECTION_REQUESTS, "received_at", ("kind", "status")


class PlannedSource(StatSource):
    """A source whose records another issue builds; "no data yet" until it registers the real one."""

    def __init__(self, name: str, title: str, columns: tuple):
        self.name, self.title, self.columns = name, title, columns

    def available(self, registers) -> bool:
        return False


_SOURCES: dict[str, StatSource] = {}


def register_source(source: StatSource) -> StatSource:
    _SOURCES[source.name] = source
    return source


def sources() -> dict[str, StatSource]:
    if not _SOURCES:
        register_source(UpdatesSource("juki"))
        register_source(UpdatesSource("fuhyo"))
        register_source(ProvisionsSource())
        register_source(DisclosuresSource())
        register_source(CorrectionsSource())
        register_source(ConsistencySource())
    return dict(_SOURCES)


def collect(registers, period: Period, names: Optional[list[str]] = None) -> dict[str, StatTable]:
    """Every source's table for the period (or only those named), in registry order."""
    all_ = sources()
    if names:
        unknown = [n for n in names if n not in all_]
        if unknown:
            raise JukinetError("STATS_SOURCE_UNKNOWN", "指定された統計がありません。")
        all_ = {n: all_[n] for n in names}
    # the sources read different tables of three databases and wait on them, not on each other: side by
    # side, a view waits for the slowest source, not for the sum (issue 19, ADR 0052)
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="jukinet-stats") as ex:
        futures = {n: ex.submit(s.table, registers, period) for n, s in all_.items()}
        return {n: f.result() for n, f in futures.items()}


def municipality_name(code: str, prefecture_code: str = geo.mie.PREFECTURE_CODE) -> str:
    """The municipality's name; prefixed by its prefecture when that is not ``prefecture_code``."""
    m = geo.find(code)
    if m is None:
        return code
    return m.name if m.prefecture_code == prefecture_code else m.prefecture + m.name


def with_names(table: StatTable) -> StatTable:
    """The same table for people (CSV and screens): a 市町村 name column after each 市町村コード and the
    month in 和暦 after the ISO month (which stays, for sorting in a spreadsheet; ADR 0042)."""
    cols, rows = table.columns, list(table.rows)
    if "municipality_code" in cols:
        i = cols.index("municipality_code")
        cols = cols[:i + 1] + ("municipality",) + cols[i + 1:]
        rows = [r[:i + 1] + (municipality_name(r[i]),) + r[i + 1:] for r in rows]
    if "month" in cols:
        i = cols.index("month")
        cols = cols[:i + 1] + ("month_wareki",) + cols[i + 1:]
        rows = [r[:i + 1] + (wareki.show(r[i]),) + r[i + 1:] for r in rows]
    if cols == table.columns:
        return table
    return StatTable(table.name, table.title, cols, rows, table.available, table.note)
