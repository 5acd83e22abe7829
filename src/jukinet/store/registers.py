"""The databases of one installation, opened from its config (built by :mod:`jukinet.bootstrap`).

``Registers`` holds one engine per register and hands out units of work:

    with registers.juki_uow() as uow:      # one transaction on D1
        rec = uow.repo.get(code)
        uow.repo.apply(new, previous=rec)
    # committed here; rolled back if the block raised
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from sqlalchemy.engine import Connection, Engine

from jukinet.config import Config
from jukinet.store import atrest
from jukinet.store.engine import is_sqlite, make_engine, writer
from jukinet.store.repository import FuhyoRepository, JukiRepository


#: how long a writer waits for this process's queue before it goes to SQLite's lock (the busy timeout)
_QUEUE_TIMEOUT_S = 30.0


@dataclass
class UnitOfWork:
    """One transaction on one register: its connection and repository."""

    conn: Connection
    repo: JukiRepository | FuhyoRepository


class Registers:
    def __init__(self, config: Config, connections=None):
        """``connections``: a :class:`jukinet.store.connpool.ConnectionGovernor` that releases idle
        PostgreSQL connections and keeps a budget per cluster (a consolidated center; ADR 0055)."""
        self.config = config
        db = config.database
        sync = db.sqlite_synchronous

        def engine(url: str) -> Engine:
            pool = {} if is_sqlite(url) else {"pool_size": db.pool_size, "max_overflow": db.max_overflow}
            made = make_engine(url, synchronous=sync, **pool)
            return connections.govern(made) if connections is not None else made

        self.juki_engine: Engine = engine(db.juki_url)
        self.fuhyo_engine: Engine = engine(db.fuhyo_url)
        self.admin_engine: Engine = engine(db.admin_url)
        # 個人番号 at rest (ADR 0025): the keys are loaded and checked against D1 at startup
        self.kojin_bango_cipher = atrest.load_for(config.data_dir, self.juki_engine)
        # the writer engines, made once and after the cipher is attached (an option engine copies the
        # engine's options when made; one per unit of work cost ≈ 3 % of an intake, ADR 0063)
        self._writers = {"juki": writer(self.juki_engine), "fuhyo": writer(self.fuhyo_engine),
                         "admin": writer(self.admin_engine)}
        # SQLite: the writers of this process queue on a lock of their own before ``BEGIN IMMEDIATE``
        # (ADR 0063). SQLite's busy handler polls — it sleeps 1, 2, 5, 10 … ms between tries and is not
        # woken when the lock is freed —, so the intake and the outbox worker waiting on each other
        # lost milliseconds per transaction with the database idle. Other processes (the CLI while
        # the server runs) still meet on SQLite's own lock and busy timeout, as before.
        locks: dict[str, threading.RLock] = {}
        self._write_locks = {
            name: locks.setdefault(url, threading.RLock()) if is_sqlite(url) else None
            for name, url in (("juki", db.juki_url), ("fuhyo", db.fuhyo_url), ("admin", db.admin_url))}

    def engine(self, register: str) -> Engine:
        return {"juki": self.juki_engine, "fuhyo": self.fuhyo_engine, "admin": self.admin_engine}[register]

    @contextmanager
    def uow(self, register: str, *, write: bool = True):
        engine = self._writers[register] if write else self.engine(register)
        repo_cls = JukiRepository if register == "juki" else FuhyoRepository
        with self._queued(register if write else None), engine.begin() as conn:
            yield UnitOfWork(conn, repo_cls(conn))

    @contextmanager
    def admin_tx(self, *, write: bool = True):
        """A transaction on the admin database (operators, catalogues): yields the connection."""
        engine = self._writers["admin"] if write else self.admin_engine
        with self._queued("admin" if write else None), engine.begin() as conn:
            yield conn

    @contextmanager
    def _queued(self, register: Optional[str]):
        """Hold this process's write lock of ``register``'s SQLite file for the transaction (see
        ``__init__``); nothing on PostgreSQL or for a reader. After the busy timeout it goes on
        without it, and SQLite's own lock decides as before."""
        lock = self._write_locks.get(register) if register else None
        got = lock.acquire(timeout=_QUEUE_TIMEOUT_S) if lock is not None else False
        try:
            yield
        finally:
            if got:
                lock.release()

    def juki_uow(self, write: bool = True):
        return self.uow("juki", write=write)

    def fuhyo_uow(self, write: bool = True):
        return self.uow("fuhyo", write=write)

    def dispose(self) -> None:
        self.juki_engine.dispose()
        self.fuhyo_engine.dispose()
        self.admin_engine.dispose()
