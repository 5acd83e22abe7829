"""Storage faults: a full disk, a read-only database, a database that went away (U4, Q2; ADR 0038).

Such a fault is not the request's and not a bug: the write did not happen (the transaction rolled
back, nothing was acknowledged), and the same request succeeds once space returns or the database
is writable again. The doors answer it as :class:`StorageUnavailable` — code
``STORAGE_UNAVAILABLE``, HTTP 503 with ``Retry-After`` — and the senders retry. No restart is needed:
every transaction asks the database afresh (SQLite reopens nothing; PostgreSQL's pool pings).

Recognised, walking the exception and its causes (SQLAlchemy wraps the driver's error in ``orig``):

* SQLite: ``SQLITE_FULL`` (13; also ``PRAGMA max_page_count`` reached), ``SQLITE_READONLY`` (8 and
  its extended codes), ``SQLITE_IOERR`` (10), ``SQLITE_CANTOPEN`` (14);
* PostgreSQL (SQLSTATE): ``53100`` disk_full (a full file system under a tablespace: "could not
  extend file"; drilled on a small tmpfs, ADR 0051), ``53000`` insufficient_resources, ``58030``
  io_error (the disk answered EIO: the statement failed, the transaction rolled back), ``25006``
  read_only_sql_transaction (a standby, ``default_transaction_read_only``), ``57P01``–``57P03``
  (shut down, starting up), class ``08`` (connection lost);
* a connection SQLAlchemy invalidated (``connection_invalidated``).

>>> import sqlite3
>>> e = sqlite3.OperationalError("database or disk is full"); e.sqlite_errorcode = 13
>>> is_storage_fault(e), is_storage_fault(ValueError("x"))
(True, False)
>>> class PgError(Exception):
...     sqlstate = "25006"
>>> is_storage_fault(RuntimeError("wrapped")) , is_storage_fault(_chain(RuntimeError("w"), PgError()))
(False, True)
>>> PgError.sqlstate = "53100"; is_storage_fault(PgError()), connection_lost(PgError())
(True, False)
>>> StorageUnavailable().code, StorageUnavailable.status
('STORAGE_UNAVAILABLE', 503)
"""

from __future__ import annotations

from typing import Iterator

from jukinet.errors import JukinetError

CODE = "STORAGE_UNAVAILABLE"
MESSAGE = "記憶装置に書き込めないため、一時的に受け付けできません (何も登録していません)。時間をおいて同じ内容を再送してください。"
RETRY_AFTER_SECONDS = 30

_SQLITE_PRIMARY = {8, 10, 13, 14}           # READONLY, IOERR, FULL, CANTOPEN
_PG_SQLSTATES = {"53100", "53000", "58030", "25006", "57P01", "57P02", "57P03"}


class StorageUnavailable(JukinetError):
    """The database cannot take a write now (full, read-only, gone); nothing was written."""

    code = CODE
    message = MESSAGE
    status = 503


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([getattr(e, "orig", None), e.__cause__, e.__context__])


def is_storage_fault(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the storage cannot take a write now."""
    for e in _causes(exc):
        if isinstance(e, StorageUnavailable):
            return True
        if getattr(e, "connection_invalidated", False):
            return True
        code = getattr(e, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _SQLITE_PRIMARY:
            return True
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and (state in _PG_SQLSTATES or state.startswith("08")):
            return True
    return False


def connection_lost(exc: BaseException) -> bool:
    """True when the fault is the connection itself (a failover, a restart: SQLSTATE class ``08``,
    ``57P01``–``57P03``, or a connection SQLAlchemy invalidated) rather than a full or read-only
    store: the doors answer it ``DATABASE_UNAVAILABLE`` and the sender retries at once (ADR 0037).

    >>> class Lost(Exception):
    ...     sqlstate = "08006"
    >>> connection_lost(Lost()), connection_lost(ValueError("x"))
    (True, False)
    """
    for e in _causes(exc):
        if getattr(e, "connection_invalidated", False):
            return True
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in {"57P01", "57P02", "57P03"}):
            return True
    return False


def _chain(outer: BaseException, inner: BaseException) -> BaseException:
    """(doctest helper) ``outer`` raised from ``inner``."""
    outer.__cause__ = inner
    return outer
