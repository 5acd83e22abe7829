"""Retention: erase what is past its retention period, automatically, in batches (A8; ADR 0013).

The job is a **registry of rules**. Each :class:`RetentionRule` names one kind of row, the
database it lives in, how its retention date is found, its period, and how to count and erase
what is past it. :func:`run` applies every registered rule (or the ones asked for), each in short
transactions of ``batch_size`` rows so that intake is never held up, and writes one
``retention_runs`` row per rule: when, cutoff, how many rows were past it (per year) and how many
were erased — counts only, never a value. A *dry run* counts and records, and erases nothing.

Rules in force (the register rules follow PIA II(1).6②, III(1).7 and 住民基本台帳法施行令 第30条の6):

============================  ======  ==================================================  =========
rule                          store   rows                                                 period
============================  ======  ==================================================  =========
``juki_history``              juki    履歴: every superseded version (``juki_history``)    150 years
``juki_removed``              juki    消除者: removed persons (``juki_current``, 削除フラグ) 150 years
``fuhyo_history``             fuhyo   附票の履歴 (``fuhyo_history``)                        150 years
``fuhyo_removed``             fuhyo   消除された附票 (``fuhyo_current``, 状態区分 消除)      150 years
``reconcile_details_juki``    juki    整合性確認の相違一覧 (``reconcile_differences``)       config
``reconcile_details_fuhyo``   fuhyo   same, 附票                                           config
``provision_records``         juki    提供・移転の記録 (拒否を含む) (P5)                     7 years
``provision_records_fuhyo``   fuhyo   the same of the 附票 side                            7 years
``fuhyo_kojin_bango_temp``    fuhyo   附票提供用の個人番号一時領域 (files, ADR 0017)         < 1 year
``provision_media_files``     juki    server copies of encrypted batch results (ADR 0016)  config
============================  ======  ==================================================  =========

**The register rule, exactly.** The retention date of a version is the day (in Japan, JST) on
which we *received the notice* that ended it: for 履歴 the notice of the 修正 that superseded it
(``superseded_at``), for a 消除者 the notice of the 消除 (its 通知を受けた年月日 ``notified_date``).
The period is counted from that day and the row is erased on the first run **after** the same
calendar day 150 years later (29 February counts as 1 March in a common year): whether or not the
first day is counted (民法 第140条), the law's minimum is kept and the row goes one day later at
most. So on ``today`` every row whose retention date is on or before :func:`cutoff_date`
(``today`` − 1 day − 150 years, 29 February → 28 February) is erased. Erasing a 消除者 does not
need to erase its history separately: every earlier version was superseded no later than the 消除,
so its own clock ran out no later.

The provision record's retention date is the day (JST) of the attempt; it is erased on the first
run after the same calendar day 7 years later (PIA III(1).5 R1, III(2).5 R1: "7年分保存"), by the
same date rule as the registers. The temporary area and the media files are files outside the
databases; their rules erase the files whose window has passed and record the counts like every
other rule (the store named is where the run is recorded).

**Adding a rule**: write a :class:`RetentionRule` (usually a :class:`TableRule`) here and register it
in :func:`_builtin`. A rule whose table does not exist yet is reported as ``skipped``. Before a run
each rule is bound to the installation's registers (:meth:`RetentionRule.bind`), so a rule never
opens a database itself (ADR 0033).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import Integer, Table, and_, cast, delete, func, inspect, select, update
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.provision.tempstore import for_config as temp_store_for
from jukinet.store.repository import JST, utcnow
from jukinet.store.tables import fuhyo_current, fuhyo_history, juki_current, juki_history
from jukinet.store.tables_provision import PROVISION_RECORDS, provision_media
from jukinet.store.tables_reconcile import RECONCILE, RETENTION_RUNS

log = logging.getLogger("jukinet.retention")



# ------------------------------------------------------------------ dates

def years_back(d: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February → 28 February when there is none.

    >>> years_back(date(2176, 3, 1), 150), years_back(date(2176, 2, 29), 150)
    (datetime.date(2026, 3, 1), datetime.date(2026, 2, 28))
    """
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def anniversary(d: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February → 1 March when there is none.

    >>> anniversary(date(2028, 2, 29), 150), anniversary(date(2028, 2, 29), 152)
    (datetime.date(2178, 3, 1), datetime.date(2180, 2, 29))
    """
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return date(d.year + years, 3, 1)


def cutoff_date(today: date, years: int) -> date:
    """The last retention date erased on ``today``: rows dated on or before it are past their
    period. Equivalent to "``anniversary(retention date, years) < today``" (tested for every day).

    >>> cutoff_date(date(2176, 11, 26), 150)
    datetime.date(2026, 11, 25)
    """
    return years_back(today - timedelta(days=1), years)


def jst_midnight_after(d: date) -> datetime:
    """The instant (UTC) at which day ``d`` ends in Japan: rows stamped before it fall on or before ``d``."""
    return datetime.combine(d + timedelta(days=1), datetime.min.time(), JST).astimezone(timezone.utc)


def today_jst(now: Optional[datetime] = None) -> date:
    return (now or utcnow()).astimezone(JST).date()


# ------------------------------------------------------------------ rules

@dataclass(frozen=True)
class Cutoff:
    """Rows whose retention date is on or before ``date`` go; for a timestamp column that means
    stamped before ``instant``."""

    date: date
    instant: Optional[datetime] = None

    def label(self) -> str:
        return self.instant.isoformat() if self.instant else self.date.isoformat()


class RetentionRule:
    """One kind of row with a retention period. Subclasses implement the four queries."""

    name: str = ""
    store: str = "juki"       # the database: juki | fuhyo
    title: str = ""           # Japanese, for people
    basis: str = ""           # where the period comes from
    period: str = ""          # "150年", "7年", …

    registers = None          # the installation's registers, bound by :func:`run`

    def bind(self, registers) -> "RetentionRule":
        self.registers = registers
        return self

    def available(self, conn: Connection) -> bool:
        return True

    def cutoff(self, today: date, config) -> Cutoff:
        raise NotImplementedError

    def eligible(self, conn: Connection, cutoff: Cutoff) -> int:
        raise NotImplementedError

    def by_year(self, conn: Connection, cutoff: Cutoff) -> dict[int, int]:
        raise NotImplementedError

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        """Erase at most ``limit`` rows past the cutoff; return how many were erased."""
        raise NotImplementedError


def _year_of_date(conn: Connection, col):
    if conn.dialect.name == "sqlite":
        return cast(func.substr(col, 1, 4), Integer)
    return func.extract("year", col)


def _year_of_instant_jst(conn: Connection, col):
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%Y", col, "+9 hours"), Integer)
    return func.extract("year", func.timezone("Asia/Tokyo", col))


#: at or above this many rows past the cutoff a rule erases in primary-key order (one pass over the
#: table, each page written once) instead of retention-date order through the index (few rows)
BULK_ROWS = 50_000


class TableRule(RetentionRule):
    """Rows of one table whose retention date is a ``DATE`` column (``instant=False``) or a
    ``TIMESTAMP`` column read as a date in Japan (``instant=True``), past a period in years or
    days, optionally narrowed by ``where``. ``key`` is the primary-key column erased by.

    Two ways to find a batch: the daily case (a few rows) walks the date index, oldest first; a
    bulk purge (:data:`BULK_ROWS` or more, e.g. the first run after a migration) walks the primary
    key from where the last batch ended — rows past the cutoff are spread over the whole table, and
    date order would rewrite each table page once per batch that touches it.
    """

    def __init__(self, name: str, store: str, table: Table, *, key: str, column: str, instant: bool,
                 title: str, basis: str, years: Optional[int] = None, days: Optional[int] = None,
                 years_from_config: Optional[str] = None, where=None):
        self.name, self.store, self.table, self.key, self.column = name, store, table, key, column
        self.instant, self.title, self.basis, self.where = instant, title, basis, where
        self.years, self.days, self.years_from_config = years, days, years_from_config
        self.period = f"{years}年" if years else (f"{days}日" if days else "設定値")

    def available(self, conn: Connection) -> bool:
        return inspect(conn).has_table(self.table.name)

    def _years(self, config) -> Optional[int]:
        if self.years_from_config:
            section, attr = self.years_from_config.split(".")
            return getattr(getattr(config, section), attr)
        return self.years

    def cutoff(self, today: date, config) -> Cutoff:
        years = self._years(config)
        if years:
            self.period = f"{years}年"
            d = cutoff_date(today, years)
        else:
            d = today - timedelta(days=self.days + 1)
        return Cutoff(d, jst_midnight_after(d) if self.instant else None)

    def _past(self, cutoff: Cutoff):
        col = self.table.c[self.column]
        cond = col < cutoff.instant if self.instant else col <= cutoff.date
        return and_(cond, self.where) if self.where is not None else cond

    def eligible(self, conn: Connection, cutoff: Cutoff) -> int:
        n = conn.execute(select(func.count()).select_from(self.table).where(self._past(cutoff))).scalar_one()
        self._walk = {cutoff: [n >= BULK_ROWS, None]}   # [by key?, last key erased]
        return n

    def by_year(self, conn: Connection, cutoff: Cutoff) -> dict[int, int]:
        col = self.table.c[self.column]
        year = (_year_of_instant_jst if self.instant else _year_of_date)(conn, col).label("y")
        q = select(year, func.count()).where(self._past(cutoff)).group_by(year).order_by(year)
        return {int(y): n for y, n in conn.execute(q)}

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        key = self.table.c[self.key]
        walk = getattr(self, "_walk", {}).get(cutoff, [False, None])
        if walk[0]:
            q = select(key).where(self._past(cutoff))
            if walk[1] is not None:
                q = q.where(key > walk[1])
            batch = [k for (k,) in conn.execute(q.order_by(key).limit(limit))]
        else:
            batch = [k for (k,) in conn.execute(select(key).where(self._past(cutoff))
                                                .order_by(self.table.c[self.column]).limit(limit))]
        if not batch:
            return 0
        conn.execute(delete(self.table).where(key.in_(batch)))
        walk[1] = batch[-1] if walk[0] else None
        return len(batch)


class ReconcileDetailsRule(RetentionRule):
    """The list of differing persons of a consistency check (住民票コード + item names), after
    ``reconcile.detail_retention_days``; the run and its counts stay (statistics, A9)."""

    period = "設定値"
    basis = "ADR 0012: 相違一覧は次回の確認までの作業用。件数は統計のため保存"

    def __init__(self, register: str):
        self.register = register
        self.store = register
        self.name = f"reconcile_details_{register}"
        self.title = f"整合性確認の相違一覧 ({'本人確認情報' if register == 'juki' else '附票本人確認情報'})"
        self.runs, self.diffs = RECONCILE[register]

    def available(self, conn: Connection) -> bool:
        return inspect(conn).has_table(self.diffs.name)

    def cutoff(self, today: date, config) -> Cutoff:
        days = config.reconcile.detail_retention_days
        self.period = f"{days}日"
        d = today - timedelta(days=days + 1)
        return Cutoff(d, jst_midnight_after(d))

    def _runs(self, cutoff: Cutoff):
        """Runs past the window whose list of differences is not yet erased (and not empty)."""
        has_rows = select(self.diffs.c.run_id).where(self.diffs.c.run_id == self.runs.c.run_id).exists()
        return select(self.runs.c.run_id).where(self.runs.c.finished_at < cutoff.instant,
                                                self.runs.c.details_erased_at.is_(None), has_rows)

    def eligible(self, conn: Connection, cutoff: Cutoff) -> int:
        return conn.execute(select(func.count()).select_from(self.diffs)
                            .where(self.diffs.c.run_id.in_(self._runs(cutoff)))).scalar_one()

    def by_year(self, conn: Connection, cutoff: Cutoff) -> dict[int, int]:
        year = _year_of_instant_jst(conn, self.runs.c.finished_at).label("y")
        q = (select(year, func.count()).select_from(self.diffs.join(self.runs, self.diffs.c.run_id == self.runs.c.run_id))
             .where(self.runs.c.finished_at < cutoff.instant, self.runs.c.details_erased_at.is_(None))
             .group_by(year).order_by(year))
        return {int(y): n for y, n in conn.execute(q)}

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        run = conn.execute(self._runs(cutoff).order_by(self.runs.c.run_id).limit(1)).scalar()
        if run is None:
            return 0
        codes = [c for (c,) in conn.execute(select(self.diffs.c.juminhyo_code).where(self.diffs.c.run_id == run)
                                            .order_by(self.diffs.c.juminhyo_code).limit(limit))]
        conn.execute(delete(self.diffs).where(self.diffs.c.run_id == run, self.diffs.c.juminhyo_code.in_(codes)))
        if len(codes) < limit:  # this run's list is now empty: say when it went
            conn.execute(update(self.runs).where(self.runs.c.run_id == run).values(details_erased_at=utcnow()))
        return len(codes)


class PlannedRule(RetentionRule):
    """A rule the law requires whose rows do not exist yet in this build (another issue adds the
    table and registers the real rule under the same name). Reported as ``skipped``."""

    def __init__(self, name: str, title: str, basis: str, period: str):
        self.name, self.title, self.basis, self.period = name, title, basis, period
        self.store = "juki"

    def available(self, conn: Connection) -> bool:
        return False


# ------------------------------------------------------------------ 事務2: provision record, temporary area, media

PROVISION_BASIS = "PIA III(1).5 R1, III(2).5 R1: 提供・移転の記録は7年分保存 (P5)"


class _FileRule(RetentionRule):
    """Files in a directory of the data directory whose window has passed (no database rows)."""

    def available(self, conn: Connection) -> bool:
        return True

    def cutoff(self, today: date, config) -> Cutoff:
        """Files expired by now — or by the start of ``today`` (JST) when the job runs for a later day."""
        self.config = config
        return Cutoff(today, max(datetime.now(timezone.utc), jst_midnight_after(today - timedelta(days=1))))

    def _expired(self, cutoff: Cutoff) -> list[tuple[datetime, Path]]:
        raise NotImplementedError

    def eligible(self, conn: Connection, cutoff: Cutoff) -> int:
        return len(self._expired(cutoff))

    def by_year(self, conn: Connection, cutoff: Cutoff) -> dict[int, int]:
        out: dict[int, int] = {}
        for when, _ in self._expired(cutoff):
            y = (when + timedelta(hours=9)).year
            out[y] = out.get(y, 0) + 1
        return out

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        n = 0
        for _, p in self._expired(cutoff)[:limit]:
            p.unlink(missing_ok=True)
            n += 1
        return n


class KojinBangoTempRule(_FileRule):
    name = "fuhyo_kojin_bango_temp"
    store = "fuhyo"
    title = "附票提供用の個人番号一時領域"
    basis = ("PIA II(2).6②, III(2).7 R2/R3: 提供後の一時的な保存、1年未満で自動消去 (P6); "
             "復元できないよう項目ごとの鍵を破棄 (P8, ADR 0034)")

    def cutoff(self, today: date, config) -> Cutoff:
        self.period = f"{config.provision.kojin_bango_temp_days}日"
        return super().cutoff(today, config)

    def _store(self):
        return temp_store_for(self.config, KeyRing(self.config.data_dir))

    def _expired(self, cutoff: Cutoff):
        return [(datetime.fromtimestamp(exp, timezone.utc), p) for exp, p in self._store().expired(cutoff.instant)]

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        """Crypto-erasure (P8): each entry's key is overwritten and unlinked, then the entry."""
        store = self._store()
        n = 0
        for _, p in self._expired(cutoff)[:limit]:
            store.destroy(p)
            n += 1
        return n


class MediaFilesRule(_FileRule):
    """The server's copy of an encrypted batch result, ``media_retention_days`` after it was written
    (the media register keeps the entry and its digest; ``erased_at`` is set)."""

    name = "provision_media_files"
    store = "juki"
    title = "一括提供の結果ファイル (暗号化済み) のサーバ上の控え"
    basis = "ADR 0016: 受け渡しの後は保持しない (媒体管理簿の記録は残す)"

    def cutoff(self, today: date, config) -> Cutoff:
        self.period = f"{config.provision.media_retention_days}日"
        self.config = config
        d = today - timedelta(days=config.provision.media_retention_days + 1)
        return Cutoff(d, jst_midnight_after(d))

    def _expired(self, cutoff: Cutoff):
        d = self.config.resolve(self.config.provision.media_dir)
        if not d.exists():
            return []
        out = []
        for p in d.glob("*.jkm"):
            when = datetime.fromtimestamp(p.stat().st_mtime, timezone.utc)
            if when < cutoff.instant:
                out.append((when, p))
        return sorted(out)

    def erase_batch(self, conn: Connection, cutoff: Cutoff, limit: int) -> int:
        files = self._expired(cutoff)[:limit]
        n = super().erase_batch(conn, cutoff, limit)
        if files:
            with self.registers.admin_tx() as aconn:
                aconn.execute(update(provision_media).where(
                    provision_media.c.media_id.in_([p.stem for _, p in files]),
                    provision_media.c.erased_at.is_(None)).values(erased_at=datetime.now(timezone.utc)))
        return n



_RULES: dict[str, RetentionRule] = {}


def register_rule(rule: RetentionRule) -> RetentionRule:
    """Add (or replace, by name) a rule in the registry."""
    if rule.store not in RETENTION_RUNS:
        raise ValueError(f"rule {rule.name}: store must be one of {sorted(RETENTION_RUNS)}")
    _RULES[rule.name] = rule
    return rule


def _builtin() -> None:
    basis = "住民基本台帳法施行令 第30条の6 (PIA II(1).6②, III(1).7)"
    fbasis = "附票本人確認情報の保存期間 (PIA II(2).6, III(2).7); 本人確認情報と同じ150年 (ADR 0013)"
    for reg, cur, hist, removed, mc, label in (
            ("juki", juki_current, juki_history, juki_current.c.deleted.is_(True), "municipality_code", "本人確認情報"),
            ("fuhyo", fuhyo_current, fuhyo_history, fuhyo_current.c.status == "消除", "fuhyo_municipality_code",
             "附票本人確認情報")):
        register_rule(TableRule(f"{reg}_history", reg, hist, key="history_id", column="superseded_at", instant=True,
                                title=f"{label}の履歴 (修正前の{label})", basis=basis if reg == "juki" else fbasis,
                                years_from_config="retention.register_years"))
        register_rule(TableRule(f"{reg}_removed", reg, cur, key="juminhyo_code", column="notified_date",
                                instant=False, where=removed, title=f"消除された{label}",
                                basis=basis if reg == "juki" else fbasis, years_from_config="retention.register_years"))
        register_rule(ReconcileDetailsRule(reg))
    # 事務2 (P5, P6): the provision record of each register, the fuhyo 個人番号 temporary area, media files
    for reg, name in (("juki", "provision_records"), ("fuhyo", "provision_records_fuhyo")):
        register_rule(TableRule(name, reg, PROVISION_RECORDS[reg], key="record_id", column="at", instant=True,
                                title=f"提供・移転の記録 (拒否を含む、{'本人確認情報' if reg == 'juki' else '附票本人確認情報'})",
                                basis=PROVISION_BASIS, years_from_config="provision.record_years"))
    register_rule(KojinBangoTempRule())
    register_rule(MediaFilesRule())


def load_rules() -> dict[str, RetentionRule]:
    if not _RULES:
        _builtin()
    return dict(_RULES)


# ------------------------------------------------------------------ the job

@dataclass
class RuleReport:
    rule: str
    title: str
    store: str
    period: str
    status: str                    # completed | failed | skipped
    cutoff: Optional[str] = None
    eligible: int = 0
    erased: int = 0
    by_year: dict = field(default_factory=dict)
    error_code: Optional[str] = None
    seconds: float = 0.0


def run(registers, *, dry_run: bool = False, today: Optional[date] = None, only: Optional[list[str]] = None,
        batch_size: Optional[int] = None, pause_seconds: Optional[float] = None,
        clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], None] = time.sleep) -> list[RuleReport]:
    """Apply the rules (all, or ``only`` those named) as of ``today`` (JST today by default)."""
    config = registers.config
    rules = load_rules()
    if only:
        unknown = [n for n in only if n not in rules]
        if unknown:
            raise JukinetError("RETENTION_RULE_UNKNOWN", "指定された保存期間ルールがありません。")
        rules = {n: rules[n] for n in only}
    today = today or today_jst(clock())
    batch_size = batch_size or config.retention.batch_size
    pause = config.retention.pause_seconds if pause_seconds is None else pause_seconds
    batch_id = uuid.uuid4().hex
    reports = []
    for rule in rules.values():
        rule.bind(registers)
        started = clock()
        t0 = time.monotonic()
        rep = RuleReport(rule.name, rule.title, rule.store, rule.period, "completed")
        engine = registers.engine(rule.store)
        cutoff = None
        try:
            with engine.connect() as conn, conn.begin():
                if not rule.available(conn):
                    rep.status = "skipped"
                else:
                    cutoff = rule.cutoff(today, config)
                    rep.period = rule.period
                    rep.cutoff = cutoff.label()
                    rep.eligible = rule.eligible(conn, cutoff)
                    rep.by_year = rule.by_year(conn, cutoff)
            if rep.status == "completed" and not dry_run and rep.eligible:
                while True:
                    with registers.uow(rule.store) as uow:
                        n = rule.erase_batch(uow.conn, cutoff, batch_size)
                    if n == 0:
                        break
                    rep.erased += n
                    if pause:
                        sleep(pause)
        except Exception as e:  # noqa: BLE001 - recorded, then the other rules still run
            rep.status = "failed"
            rep.error_code = e.code if isinstance(e, JukinetError) else type(e).__name__
            log.error("retention rule %s failed: %s", rule.name, rep.error_code)
        rep.seconds = time.monotonic() - t0
        _record(registers, rep, batch_id, started, clock(), today, dry_run)
        log.info("retention rule=%s status=%s dry_run=%s cutoff=%s eligible=%d erased=%d", rule.name, rep.status,
                 dry_run, rep.cutoff, rep.eligible, rep.erased)
        reports.append(rep)
    return reports


def _record(registers, rep: RuleReport, batch_id: str, started: datetime, finished: datetime, today: date,
            dry_run: bool) -> None:
    t = RETENTION_RUNS[rep.store]
    with registers.uow(rep.store) as uow:
        uow.conn.execute(t.insert().values(
            batch_id=batch_id, rule=rep.rule, started_at=started, finished_at=finished, today=today,
            cutoff=rep.cutoff or "", dry_run=dry_run, status=rep.status, eligible_count=rep.eligible,
            erased_count=rep.erased, by_year=json.dumps({str(k): v for k, v in rep.by_year.items()}),
            error_code=rep.error_code))


def history(registers, *, limit: int = 50) -> list[dict]:
    """The latest retention runs of both registers, newest first (counts only)."""
    out = []
    for store, t in RETENTION_RUNS.items():
        with registers.uow(store, write=False) as uow:
            for r in uow.conn.execute(select(t).order_by(t.c.run_id.desc()).limit(limit)):
                d = dict(r._mapping)
                d["by_year"] = json.loads(d["by_year"] or "{}")
                d["store"] = store
                out.append(d)
    out.sort(key=lambda d: (str(d["started_at"]), d["run_id"]), reverse=True)
    return out[:limit]


# ------------------------------------------------------------------ the daily schedule (jukinet serve)

def next_run_after(now: datetime, daily_at: str) -> datetime:
    """The next instant (UTC) at ``daily_at`` (HH:MM, JST) strictly after ``now``.

    >>> next_run_after(datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc), "02:30").isoformat()
    '2026-11-26T17:30:00+00:00'
    """
    hh, mm = (int(x) for x in daily_at.split(":"))
    local = now.astimezone(JST)
    t = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if t <= local:
        t += timedelta(days=1)
    return t.astimezone(timezone.utc)
