"""Engines for the two register databases.

SQLite: WAL journal, foreign keys on, ``synchronous`` from the config (FULL by default so that an
acknowledged commit survives a power loss), a busy timeout so concurrent writers wait instead of
failing. PostgreSQL: psycopg 3; each register connects as its own role whose ``search_path`` is
its own schema (see :mod:`jukinet.store.provision`).
"""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, synchronous: str = "FULL", **kw) -> Engine:
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
            # pysqlite's implicit BEGIN handling is replaced by ours below (SQLAlchemy recipe), so
            # that a transaction takes the write lock at BEGIN IMMEDIATE when asked.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover
            write = conn.get_execution_options().get("jukinet_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **kw)


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take the write lock when they begin.

    On SQLite this is ``BEGIN IMMEDIATE``: a read-then-write transaction never fails on upgrading
    its lock; writers queue on the busy timeout. On PostgreSQL it changes nothing.
    """
    return engine.execution_options(jukinet_write=True)
