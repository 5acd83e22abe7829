"""Load a synthetic population into both registers (``jukinet seed``).

:func:`populate` streams :mod:`jukinet.seed.generator` batches into the two databases through the
repositories' ``bulk_load`` (SQLAlchemy Core ``executemany``), one transaction per batch and
register, and finally moves each register's 更新順番号 counter past the last number used. Memory
stays flat: one batch (``batch_size`` persons, default 5,000) at a time.

SQLite: for the duration of the load the seeding connections run with ``PRAGMA synchronous=OFF``
and a 256 MiB page cache (``cache_size``); both are put back (synchronous from the config, the
default cache) when the load ends, and the WAL is checkpointed and truncated. A crash or power
loss *during* seeding may therefore leave a broken database — seed again into a fresh data
directory. Nothing else is changed: the schema, indexes and constraints are the migrations'.

A register that already holds records is refused (``SEED_NOT_EMPTY``): seeding is for a new
installation only, and never mixes with real data.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date
from typing import Callable, Optional

from sqlalchemy.engine import Connection

from jukinet import geo
from jukinet.errors import JukinetError
from jukinet.seed.generator import DEFAULT_TODAY, Generator, Params
from jukinet.store.engine import writer
from jukinet.store.repository import FuhyoRepository, JukiRepository

__all__ = ["populate", "SeedReport", "Progress"]

#: ``progress(done, total)``: persons generated and stored so far, and persons in all.
Progress = Callable[[int, int], None]

_SEED_CACHE_KIB = 256 * 1024


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


def populate(registers, residents: int, seed: int = 0, *, progress: Optional[Progress] = None,
             today: date = DEFAULT_TODAY, params: Params = Params(), batch_size: int = 5000,
             prefecture: Optional[geo.places.PrefectureRef] = None) -> SeedReport:
    """Generate ``residents`` current persons (plus removed persons, history and the 附票) and store them.

    ``registers`` is a :class:`jukinet.store.registers.Registers`; both registers must be empty.
    The same ``seed`` (and ``residents``, ``today``, ``params``) gives the same rows. ``progress``,
    if given, is called after every batch as ``progress(done, total)`` in persons (D1 persons, then
    the 附票-only persons); e.g. with rich: ``lambda done, total: bar.update(task, completed=done,
    total=total)``.

    The population is the installation's prefecture's (``config.prefecture_code``; real 市区町村 codes
    and 町域, ADR 0035). ``prefecture``, if given, must be that prefecture (``PREFECTURE_MISMATCH``
    otherwise: the CS certificates and the intake are the configured prefecture's).
    """
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
    with writer(registers.juki_engine).connect() as jc, writer(registers.fuhyo_engine).connect() as fc:
        conns = [c for c in (jc, fc) if _is_sqlite(c)]
        for c in conns:
            _pragmas(c, "OFF", _SEED_CACHE_KIB)
        try:
            with jc.begin():
                juki_count = JukiRepository(jc).count()
            with fc.begin():
                fuhyo_count = FuhyoRepository(fc).count()
            if juki_count or fuhyo_count:
                raise JukinetError("SEED_NOT_EMPTY",
                                   "登録済みのデータがあるため投入できません。"
                                   "新しいデータディレクトリで init してから seed を実行してください。")
            done = 0
            for batch in gen.batches(batch_size):
                if batch.juki or batch.juki_history:
                    with jc.begin():
                        JukiRepository(jc).bulk_load(batch.juki, batch.juki_history)
                if batch.fuhyo or batch.fuhyo_history:
                    with fc.begin():
                        FuhyoRepository(fc).bulk_load(batch.fuhyo, batch.fuhyo_history)
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
            if gen.juki_seq:
                with jc.begin():
                    JukiRepository(jc).set_seq_at_least(gen.juki_seq)
            if gen.fuhyo_seq:
                with fc.begin():
                    FuhyoRepository(fc).set_seq_at_least(gen.fuhyo_seq)
        finally:
            for c in conns:
                if c.in_transaction():
                    c.rollback()
                _pragmas(c, sync, None)
                c.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    if progress is not None and gen.total_persons == 0:
        progress(0, 0)
    return SeedReport(
        residents=totals["residents"], removed=totals["removed"], history=totals["history"],
        fuhyo_current=totals["fuhyo"] - totals["fuhyo_removed"], fuhyo_removed=totals["fuhyo_removed"],
        fuhyo_abroad=totals["fuhyo_abroad"], fuhyo_other_prefecture=totals["fuhyo_other_prefecture"],
        fuhyo_history=totals["fuhyo_history"], seed=seed, seconds=time.perf_counter() - started,
        prefecture_code=pref.code,
    )
