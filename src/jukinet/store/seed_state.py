"""Is a register's seed finished? (issue 16): ``jukinet serve``, ``center serve`` and ``demo`` refuse to
start on a seed in progress, ``/health`` reports it.

``jukinet seed`` keeps a ``seed_progress`` row in each register (:mod:`jukinet.seed.populate`); its
``complete`` flag is set only by the seed's last step. A row with ``complete`` false is a seed that
is running or was interrupted (``kill``, a full disk, a power cut): the register holds part of a
population, without its secondary indexes and its 更新順番号 counter not yet moved past the rows.
Serving it would answer 4情報 searches with a full scan and give an intake update numbers that the
seed has already used. Refused with ``SEED_IN_PROGRESS``, naming the command that resumes the seed
(the same ``--residents`` and ``--seed``). Only counts and the prefecture are reported: no value of
a register.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from jukinet import geo
from jukinet.errors import JukinetError
from jukinet.store.tables import fuhyo_seed_progress, juki_seed_progress

__all__ = ["SEEDED", "SeedState", "seed_state", "seeds_in_progress", "require_seed_complete", "seed_in_progress_error"]

_TABLES = {"juki": juki_seed_progress, "fuhyo": fuhyo_seed_progress}
#: the registers ``jukinet seed`` fills
SEEDED = tuple(_TABLES)


@dataclass(frozen=True)
class SeedState:
    """One register's ``seed_progress`` row (None from :func:`seed_state` when no seed ever ran)."""

    register: str
    prefecture_code: str
    residents: int
    seed: int
    batch_size: int
    batches_done: int
    complete: bool

    def as_dict(self) -> dict:
        """What ``/health`` shows: counts only."""
        return {"complete": self.complete, "residents": self.residents, "batches_done": self.batches_done,
                "batch_size": self.batch_size}


def seed_state(register: str, engine: Engine) -> Optional[SeedState]:
    """The seed recorded in ``register`` (``juki`` or ``fuhyo``), or None when none was run."""
    t = _TABLES[register]
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.name == "seed")).first()
    if row is None:
        return None
    return SeedState(register, row.prefecture_code, int(row.residents), int(row.seed), int(row.batch_size),
                     int(row.batches_done), bool(row.complete))


def seeds_in_progress(registers) -> list[SeedState]:
    """The registers of ``registers`` (a :class:`jukinet.store.registers.Registers`) whose seed is unfinished
    (a database behind the migration that added ``seed_progress`` has none; ``SCHEMA_BEHIND`` is
    :func:`jukinet.store.upgrade.require_current`'s to report)."""
    out = []
    for register in _TABLES:
        engine = registers.engine(register)
        if not inspect(engine).has_table(_TABLES[register].name):   # behind juki_0010/fuhyo_0008: no seed kept
            continue
        st = seed_state(register, engine)
        if st is not None and not st.complete:
            out.append(st)
    return out


def seed_in_progress_error(states: Iterable[SeedState], data_dir_hint: Optional[str] = None,
                           where: str = "") -> JukinetError:
    """``SEED_IN_PROGRESS`` for ``states`` (non-empty), naming the command that resumes the seed."""
    st = list(states)[0]
    try:
        pref = geo.prefecture(st.prefecture_code).name
    except JukinetError:
        pref = "不明"
    hint = f" --data-dir {data_dir_hint}" if data_dir_hint else ""
    return JukinetError(
        "SEED_IN_PROGRESS",
        f"{where}住民データの投入が完了していません ({pref}・住民数 {st.residents:,} 人・シード {st.seed})。"
        f"`jukinet seed{hint} --residents {st.residents} --seed {st.seed}` を実行して続きから投入し、"
        "完了してから起動してください。")


def require_seed_complete(registers, data_dir_hint: Optional[str] = None, where: str = "") -> None:
    """Refuse (``SEED_IN_PROGRESS``) a register whose seed is running or was interrupted."""
    states = seeds_in_progress(registers)
    if states:
        raise seed_in_progress_error(states, data_dir_hint, where)
