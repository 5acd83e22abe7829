"""Load a synthetic population into both registers (``jukinet seed``).

:func:`populate` streams :mod:`jukinet.seed.generator` batches into the two databases, one
transaction per batch and register, and finally moves each register's 更新順番号 counter past the
last number used. Memory stays flat: one batch (``batch_size`` persons, default 5,000) at a time,
and at most two more generated ahead (one queued, one being generated).

Fast path (default; issue 16): the rows go through the engine's own bulk path
(:mod:`jukinet.store.bulk`: ``COPY`` on PostgreSQL, the driver's ``executemany`` on SQLite), the
batches are generated in worker processes (:mod:`jukinet.seed.workers`, ADR 0057; a thread of this
process for a small seed) while the previous one is written, and the secondary
indexes of the four big tables are dropped for the load and built once at the end. ``fast=False``
(``jukinet seed --slow``) is the SQLAlchemy ``insert`` path with the indexes in place; both give the
same rows (test_q1_seed_fast_path_*). 履歴 ``history_id`` are assigned by the seed, in generation order,
so that they do not depend on the engine's sequence (which a rolled-back transaction advances).

Resumable (issue 16): each register has a ``seed_progress`` row (prefecture, residents, seed, batch
size, batches written), updated in the transaction of every batch. A seed killed half way and run
again regenerates the same batches (a random stream per block of persons), skips what each register has committed and
writes the rest: the same rows as a run that was never interrupted. ``complete`` is set only by the
last step (after the counters, the indexes and, on SQLite, a checkpoint with the configured
``synchronous``); a register without it is a seed in progress. Refusals: ``SEED_ALREADY_DONE`` (a
completed seed), ``SEED_OTHER_PREFECTURE`` (another prefecture's seed or data), ``SEED_RESUME_MISMATCH``
(a seed in progress with other residents/seed), ``SEED_NOT_EMPTY`` (records not from a seed).

Durability during the load — only because it is restartable: SQLite runs the load with
``synchronous=OFF`` (WAL kept: a ``kill -9`` cannot corrupt it, an OS crash or power loss may; seed
again into a fresh data directory then) and a 256 MiB page cache, both put back before the
``complete`` marker is written; PostgreSQL commits the batches with ``synchronous_commit=off`` (a
server crash may lose the last batches, data and progress row together, never corrupt them).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import date
from typing import Callable, Iterator, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from jukinet import geo
from jukinet.errors import JukinetError
from jukinet.seed.generator import DEFAULT_TODAY, Generator, Params
from jukinet.seed.workers import Workers
from jukinet.seed.workers import load as load_batch
from jukinet.store.bulk import (analyze_tables, create_secondary_indexes, drop_secondary_indexes, relax_commit,
                                 reset_identity)
from jukinet.store.engine import writer
from jukinet.store.faults import is_storage_fault
from jukinet.store.repository import FuhyoRepository, JukiRepository
from jukinet.store.tables import (fuhyo_current, fuhyo_history, fuhyo_seed_progress, juki_current, juki_history,
                                  juki_seed_progress)

__all__ = ["populate", "SeedReport", "Progress", "STORAGE_CODE"]

#: a seed ended by a storage fault (full disk, read-only or vanished database): resumable
STORAGE_CODE = "SEED_STORAGE_UNAVAILABLE"
STORAGE_MESSAGE = ("記憶装置に書き込めないため (容量不足など) 住民データの投入を中断しました。投入済みの分は保存されています"
                   "が、投入は完了していません (サーバは起動できません)。容量を確保してから同じコマンド (同じ --residents と "
                   "--seed) を再実行すると続きから投入します。")

#: ``progress(done, total)``: persons generated and stored so far, and persons in all.
Progress = Callable[[int, int], None]

_SEED_CACHE_KIB = 256 * 1024
#: fewer batches than this: generated in this process (starting a worker costs about a second)
_WORKERS_FROM_BATCHES = 4


@dataclass
class SeedReport:
    """What :func:`populate` stored.

    D1: ``residents`` current persons, ``removed`` 消除者 (both in the current table, one row each),
    ``history`` earlier versions (history table). D2: ``fuhyo_current`` records with status 現存
    (of which ``fuhyo_abroad`` 国外転出者 and ``fuhyo_other_prefecture`` living outside the prefecture),
    ``fuhyo_removed`` with status 消除, ``fuhyo_history`` earlier versions.
    """

    residents: int
    removed: int
    history: int
    fuhyo_current: int
    fuhyo_removed: int
    fuhyo_abroad: int
    fuhyo_other_prefecture: int
    fuhyo_history: int
    seed: int
    seconds: float
    prefecture_code: str = ""

    @property
    def juki_rows(self) -> int:
        return self.residents + self.removed + self.history

    @property
    def fuhyo_rows(self) -> int:
        return self.fuhyo_current + self.fuhyo_removed + self.fuhyo_history

    def as_dict(self) -> dict:
        return asdict(self)


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _pragmas(conn: Connection, synchronous: str, cache_kib: Optional[int]) -> None:
    """Set pragmas on the DBAPI connection, outside any transaction (isolation_level is None)."""
    raw = conn.connection.driver_connection
    raw.execute(f"PRAGMA synchronous={synchronous}")
    raw.execute(f"PRAGMA cache_size={-cache_kib if cache_kib else -2000}")



class _Register:
    """One register during a seed: its connection, tables and how many batches it has committed."""

    def __init__(self, conn: Connection, repo, current, history, progress, area_column):
        self.conn, self.repo, self.current, self.history, self.progress = conn, repo, current, history, progress
        self.area_column = area_column
        self.done = 0
        self.indexes_dropped = False

    def progress_row(self):
        return self.conn.execute(select(self.progress).where(self.progress.c.name == _SEED)).first()

    def data_prefecture(self) -> Optional[str]:
        """The 2-digit prefecture of any record on file (None when the register is empty)."""
        row = self.conn.execute(select(self.area_column).limit(1)).first()
        return None if row is None else (row[0] or "")[:2]

    def write(self, index: int, rows: list, history: list, fast: bool) -> None:
        with self.conn.begin():
            if fast:
                relax_commit(self.conn)
                if not self.indexes_dropped:   # built once at the end (create_secondary_indexes)
                    drop_secondary_indexes(self.conn, (self.current, self.history))
                    self.indexes_dropped = True
            self.repo(self.conn).bulk_load_rows(rows, history, fast=fast)
            self.conn.execute(update(self.progress).where(self.progress.c.name == _SEED)
                              .values(batches_done=index + 1))
        self.done = index + 1


_SEED = "seed"
_END = object()


def _ahead(batches: Iterator, depth: int = 1) -> Iterator:
    """The batches, generated (or received from the workers) in a background thread up to ``depth`` ahead of
    the one being written."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for b in batches:
                if not put(b):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)

    t = threading.Thread(target=run, name="jukinet-seed-generator", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def _prefecture_name(two_digits: str) -> str:
    try:
        return geo.prefecture(two_digits).name
    except JukinetError:
        return "不明"


def _start(regs: list[_Register], pref, residents: int, seed: int, batch_size: int) -> int:
    """Refuse what must not be seeded; record or resume the seed's progress. The batch size to use."""
    rows = []
    for r in regs:
        with r.conn.begin():
            rows.append((r.progress_row(), r.data_prefecture()))
    found = [p for p, _ in rows if p is not None]
    for p in found:
        if p.prefecture_code != pref.code:
            raise JukinetError("SEED_OTHER_PREFECTURE",
                               f"このデータベースには別の都道府県（{_prefecture_name(p.prefecture_code[:2])}）の住民データが"
                               f"投入されています。{pref.name}のデータは新しいデータベースに投入してください。")
    if found and all(p is not None and p.complete for p, _ in rows):
        p = found[0]
        raise JukinetError("SEED_ALREADY_DONE",
                           f"住民データは投入済みです（{pref.name}・住民数 {p.residents:,} 人・シード {p.seed}）。"
                           "もう一度投入するには新しいデータディレクトリで init してください。")
    for p in found:
        if (p.residents, p.seed) != (residents, seed):
            raise JukinetError("SEED_RESUME_MISMATCH",
                               f"中断した投入（住民数 {p.residents:,} 人・シード {p.seed}）と条件が異なります。"
                               "同じ住民数とシードで再実行すると続きから投入します。")
    for p, area in rows:
        if p is None and area is not None:
            if area != pref.code[:2]:
                raise JukinetError("SEED_OTHER_PREFECTURE",
                                   f"このデータベースには別の都道府県（{_prefecture_name(area)}）のデータがあります。"
                                   f"{pref.name}のデータは新しいデータベースに投入してください。")
            raise JukinetError("SEED_NOT_EMPTY",
                               "登録済みのデータがあるため投入できません。"
                               "新しいデータディレクトリで init してから seed を実行してください。")
    batch_size = found[0].batch_size if found else batch_size
    for r, (p, _) in zip(regs, rows):
        if p is None:
            with r.conn.begin():
                r.conn.execute(insert(r.progress).values(name=_SEED, prefecture_code=pref.code, residents=residents,
                                                         seed=seed, batch_size=batch_size, batches_done=0,
                                                         complete=False))
        else:
            r.done = p.batches_done
    return batch_size


def _require_same_population(reg: _Register, first: dict) -> None:
    """A resumed seed continues the population it started (``SEED_RESUME_MISMATCH`` otherwise): the first
    person, as stored, is the one generated again. A seed started by a version of jukinet before ADR 0057
    (one random stream) has other persons under the same 住民票コード."""
    t = reg.current
    with reg.conn.begin():
        row = reg.conn.execute(select(t.c.name, t.c.name_kana, t.c.address)
                               .where(t.c.juminhyo_code == first["juminhyo_code"])).first()
    if row is not None and tuple(row) != (first["name"], first["name_kana"], first["address"]):
        raise JukinetError("SEED_RESUME_MISMATCH",
                           "中断した投入は別の版の jukinet で生成された住民データのため、続きから投入できません。"
                           "新しいデータディレクトリで init してから seed を実行してください。")


def populate(registers, residents: int, seed: int = 0, *, progress: Optional[Progress] = None,
             today: date = DEFAULT_TODAY, params: Params = Params(), batch_size: int = 5000,
             prefecture: Optional[geo.places.PrefectureRef] = None, fast: bool = True,
             workers: Optional[int] = None) -> SeedReport:
    """Generate ``residents`` current persons (plus removed persons, history and the 附票) and store them.

    ``registers`` is a :class:`jukinet.store.registers.Registers`; both registers must be empty, or
    hold a seed of the same ``residents`` and ``seed`` that was interrupted: it is resumed (with the
    batch size it started with). The same ``seed`` (and ``residents``, ``today``, ``params``) gives
    the same rows, with ``fast`` or not, interrupted or not. ``progress``, if given, is called after
    every batch as ``progress(done, total)`` in persons (D1 persons, then the 附票-only persons);
    e.g. with rich: ``lambda done, total: bar.update(task, completed=done, total=total)``.

    The population is the installation's prefecture's (``config.prefecture_code``; real 市区町村 codes
    and 町域, ADR 0035). ``prefecture``, if given, must be that prefecture (``PREFECTURE_MISMATCH``
    otherwise: the CS certificates and the intake are the configured prefecture's).

    ``workers`` (fast path only): processes that generate the batches while this one writes
    (:mod:`jukinet.seed.workers`); 0 generates here, in a thread; None: one worker when there are
    at least four batches and more than one core. The rows do not depend on it.

    A storage fault during the load — a full disk, a read-only or vanished database — ends the seed
    with ``SEED_STORAGE_UNAVAILABLE``: the batches committed so far stay, the registers stay a seed in
    progress (``serve`` refuses them), and the same command run again once there is room resumes it.
    """
    try:
        return _populate(registers, residents, seed, progress=progress, today=today, params=params,
                         batch_size=batch_size, prefecture=prefecture, fast=fast, workers=workers)
    except JukinetError:
        raise
    except Exception as e:
        if is_storage_fault(e):   # the driver's text may quote a row: not carried on
            raise JukinetError(STORAGE_CODE, STORAGE_MESSAGE) from None
        raise


def _populate(registers, residents: int, seed: int, *, progress: Optional[Progress], today: date, params: Params,
              batch_size: int, prefecture: Optional[geo.places.PrefectureRef], fast: bool,
              workers: Optional[int]) -> SeedReport:
    started = time.perf_counter()
    pref = geo.prefecture(registers.config.prefecture_code)
    if prefecture is not None and geo.prefecture(prefecture).code != pref.code:
        raise JukinetError("PREFECTURE_MISMATCH",
                           f"このデータディレクトリは{pref.name}のものです。別の都道府県は "
                           "`jukinet init --prefecture NN` で作成した新しいデータディレクトリに投入してください。",
                           field="prefecture")
    gen = Generator(residents, seed, today, params, pref)
    sync = registers.config.database.sqlite_synchronous
    totals = dict(residents=0, removed=0, history=0, fuhyo=0, fuhyo_removed=0, fuhyo_abroad=0,
                  fuhyo_other_prefecture=0, fuhyo_history=0)
    with ExitStack() as stack, writer(registers.juki_engine).connect() as jc, \
            writer(registers.fuhyo_engine).connect() as fc:
        juki = _Register(jc, JukiRepository, juki_current, juki_history, juki_seed_progress,
                         juki_current.c.municipality_code)
        fuhyo = _Register(fc, FuhyoRepository, fuhyo_current, fuhyo_history, fuhyo_seed_progress,
                          fuhyo_current.c.fuhyo_municipality_code)
        conns = [c for c in (jc, fc) if _is_sqlite(c)]
        for c in conns:
            _pragmas(c, "OFF", _SEED_CACHE_KIB)
        restored = False
        try:
            batch_size = _start([juki, fuhyo], pref, residents, seed, batch_size)
            count = gen.batch_count(batch_size)
            if workers is None:     # the rows are the same either way (ADR 0057)
                workers = 1 if fast and count >= _WORKERS_FROM_BATCHES and (os.cpu_count() or 1) > 1 else 0
            batches = (gen.batch(k, batch_size) for k in range(count))
            if fast and workers > 0:
                pool = stack.enter_context(Workers(workers, residents, seed, today, params, pref.code, batch_size))
                ahead = _ahead(pool.pickled(0, count))     # received (not unpickled) in a thread
                stack.callback(ahead.close)                # before the pool closes (LIFO)
                batches = map(load_batch, ahead)
            elif fast:
                batches = _ahead(batches)
                stack.callback(batches.close)
            done = juki_hid = fuhyo_hid = juki_seq = fuhyo_seq = 0
            for i, batch in enumerate(batches):
                if i == 0 and juki.done and batch.juki:
                    _require_same_population(juki, batch.juki[0])
                juki_seq, fuhyo_seq = batch.renumber(juki_seq, fuhyo_seq)
                # history ids in generation order, whatever the engine's sequence did (rolled-back batches)
                for juki_hid, h in enumerate(batch.juki_history, juki_hid + 1):
                    h["history_id"] = juki_hid
                for fuhyo_hid, h in enumerate(batch.fuhyo_history, fuhyo_hid + 1):
                    h["history_id"] = fuhyo_hid
                if i >= juki.done and (batch.juki or batch.juki_history):
                    juki.write(i, batch.juki, batch.juki_history, fast)
                if i >= fuhyo.done and (batch.fuhyo or batch.fuhyo_history):
                    fuhyo.write(i, batch.fuhyo, batch.fuhyo_history, fast)
                totals["residents"] += batch.residents
                totals["removed"] += batch.removed
                totals["history"] += len(batch.juki_history)
                totals["fuhyo"] += len(batch.fuhyo)
                totals["fuhyo_removed"] += batch.fuhyo_removed
                totals["fuhyo_abroad"] += batch.fuhyo_abroad
                totals["fuhyo_other_prefecture"] += batch.fuhyo_other_prefecture
                totals["fuhyo_history"] += len(batch.fuhyo_history)
                done += batch.persons
                if progress is not None:
                    progress(done, gen.total_persons)
            for reg, seq in ((juki, juki_seq), (fuhyo, fuhyo_seq)):
                with reg.conn.begin():
                    if seq:
                        reg.repo(reg.conn).set_seq_at_least(seq)
                    reset_identity(reg.conn, reg.history, "history_id")
                    create_secondary_indexes(reg.conn, (reg.current, reg.history))
                    analyze_tables(reg.conn, (reg.current, reg.history))
            _restore(conns, sync)
            restored = True
            for reg in (juki, fuhyo):   # last: a register without it is a seed in progress
                with reg.conn.begin():
                    reg.conn.execute(update(reg.progress).where(reg.progress.c.name == _SEED).values(complete=True))
        finally:
            if not restored:
                _restore(conns, sync)
    if progress is not None and gen.total_persons == 0:
        progress(0, 0)
    return SeedReport(
        residents=totals["residents"], removed=totals["removed"], history=totals["history"],
        fuhyo_current=totals["fuhyo"] - totals["fuhyo_removed"], fuhyo_removed=totals["fuhyo_removed"],
        fuhyo_abroad=totals["fuhyo_abroad"], fuhyo_other_prefecture=totals["fuhyo_other_prefecture"],
        fuhyo_history=totals["fuhyo_history"], seed=seed, seconds=time.perf_counter() - started,
        prefecture_code=pref.code,
    )


def _restore(conns: list[Connection], sync: str) -> None:
    """SQLite: the configured ``synchronous`` and cache again, and the WAL checkpointed into the file."""
    for c in conns:
        if c.in_transaction():
            c.rollback()
        _pragmas(c, sync, None)
        c.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
