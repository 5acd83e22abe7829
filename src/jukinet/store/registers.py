"""The databases of one installation, opened from its config (built by :mod:`jukinet.bootstrap`).

``Registers`` holds one engine per register and hands out units of work:

    with registers.juki_uow() as uow:      # one transaction on D1
        rec = uow.repo.get(code)
        uow.repo.apply(new, previous=rec)
    # committed here; rolled back if the block raised
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from jukinet.config import Config
from jukinet.store import atrest
from jukinet.store.engine import is_sqlite, make_engine, writer
from jukinet.store.repository import FuhyoRepository, JukiRepository


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

    def engine(self, register: str) -> Engine:
        return {"juki": self.juki_engine, "fuhyo": self.fuhyo_engine, "admin": self.admin_engine}[register]

    @contextmanager
    def uow(self, register: str, *, write: bool = True):
        engine = writer(self.engine(register)) if write else self.engine(register)
        repo_cls = JukiRepository if register == "juki" else FuhyoRepository
        with engine.begin() as conn:
            yield UnitOfWork(conn, repo_cls(conn))

    @contextmanager
    def admin_tx(self, *, write: bool = True):
        """A transaction on the admin database (operators, catalogues): yields the connection."""
        engine = writer(self.admin_engine) if write else self.admin_engine
        with engine.begin() as conn:
            yield conn

    def juki_uow(self, write: bool = True):
        return self.uow("juki", write=write)

    def fuhyo_uow(self, write: bool = True):
        return self.uow("fuhyo", write=write)

    def dispose(self) -> None:
        self.juki_engine.dispose()
        self.fuhyo_engine.dispose()
        self.admin_engine.dispose()
