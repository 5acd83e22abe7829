"""Engines for the two register databases.

SQLite: WAL journal, foreign keys on, ``synchronous`` from the config (FULL by default so that an
acknowledged commit survives a power loss), a busy timeout so concurrent writers wait instead of
failing. PostgreSQL: psycopg 3; each register connects as its own role whose ``search_path`` is
its own schema (see :mod:`jukinet.store.provision`).

A PostgreSQL URL may list several hosts, as libpq does (``postgresql://u:p@h1:5432,h2:5432/db
?target_session_attrs=read-write``): :func:`postgres_url` turns it into SQLAlchemy's form (one
``host=`` query parameter per host), which psycopg hands to libpq as ``host=h1,h2 port=…``. libpq
tries the hosts in order and keeps the first that accepts writes, so after a failover new
connections find the new primary; ``pool_pre_ping`` drops pooled connections to a dead one
(ADR 0037).
"""

from __future__ import annotations

from urllib.parse import unquote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def postgres_url(url: str | URL) -> URL:
    """A PostgreSQL URL for SQLAlchemy + psycopg, the libpq multi-host form accepted.

    >>> u = postgres_url("postgresql://app:pw@10.0.0.1:5432,10.0.0.2:5433/jukinet?target_session_attrs=read-write")
    >>> u.drivername, u.username, u.database, u.query["host"], u.query["target_session_attrs"]
    ('postgresql+psycopg', 'app', 'jukinet', ('10.0.0.1:5432', '10.0.0.2:5433'), 'read-write')
    >>> postgres_url("postgresql://app@db1/jukinet").host
    'db1'
    """
    if isinstance(url, URL):
        return url.set(drivername="postgresql+psycopg")
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if sep and "," in hostlist:
        hosts = [h for h in hostlist.split(",") if h]
        u = make_url(f"{scheme}://{userinfo}{at}{slash}{tail}")
        query = dict(u.query)
        query["host"] = tuple(unquote(h) for h in hosts)
        return u.set(drivername="postgresql+psycopg", query=query)
    return make_url(url).set(drivername="postgresql+psycopg")


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
    return create_engine(postgres_url(url), pool_pre_ping=True, **kw)


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take the write lock when they begin.

    On SQLite this is ``BEGIN IMMEDIATE``: a read-then-write transaction never fails on upgrading
    its lock; writers queue on the busy timeout. On PostgreSQL it changes nothing.
    """
    return engine.execution_options(jukinet_write=True)
