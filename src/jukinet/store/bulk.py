"""Bulk load through the engine's own fast path (seed, imports from another system; issue 16).

:func:`write_rows` writes row dicts into one table on the caller's connection, inside the caller's
transaction: ``COPY … FROM STDIN`` (psycopg 3's ``cursor.copy()`` / ``write_row``) on PostgreSQL, the
driver's own ``executemany`` on SQLite. The values are what SQLAlchemy would bind (each column
type's bind processor for the dialect), so a row stored here is the row an SQLAlchemy ``insert``
stores: a slow-path load and a fast-path load of the same rows are identical (test_q1_seed_fast_path_*).

:func:`drop_secondary_indexes` / :func:`create_secondary_indexes` take a table's secondary indexes
(every index of the metadata: the primary key stays) off for a load and build them again from the
metadata, as the migrations made them; both are idempotent, so a load killed half way and run again
ends with every index.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection

__all__ = ["write_rows", "drop_secondary_indexes", "create_secondary_indexes", "analyze_tables", "reset_identity",
           "relax_commit", "is_postgres"]


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _plan(conn: Connection, table: Table):
    """(column names, bind processors) of ``table`` on the connection's dialect; cached per dialect."""
    dialect = conn.dialect
    key = ("_jukinet_bulk_plan", dialect.name)
    plan = table.info.get(key)
    if plan is None:
        names = [c.name for c in table.columns]
        procs = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns]
        plan = table.info[key] = (names, procs)
    return plan


def write_rows(conn: Connection, table: Table, rows: Sequence[dict]) -> int:
    """Insert ``rows`` (dicts keyed by column name; a missing key is NULL) into ``table``."""
    if not rows:
        return 0
    names, procs = _plan(conn, table)
    raw = conn.connection.driver_connection
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    if is_postgres(conn):
        # psycopg adapts date, datetime, bool, bytes itself; the bind processors are for the DBAPI call
        with raw.cursor() as cur:
            with cur.copy(f"COPY {quote(table.name)} ({columns}) FROM STDIN") as copy:
                write = copy.write_row
                for r in rows:
                    write(list(map(r.get, names)))
        return len(rows)
    converted = [(i, p) for i, p in enumerate(procs) if p is not None]   # dates, timestamps, booleans

    def values(r: dict) -> list:
        v = list(map(r.get, names))
        for i, p in converted:
            x = v[i]
            if x is not None:
                v[i] = p(x)
        return v

    raw.executemany(f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({', '.join('?' * len(names))})",
                    map(values, rows))
    return len(rows)


def drop_secondary_indexes(conn: Connection, tables: Iterable[Table]) -> None:
    for t in tables:
        for idx in sorted(t.indexes, key=lambda i: i.name):
            conn.execute(text(f"DROP INDEX IF EXISTS {conn.dialect.identifier_preparer.quote(idx.name)}"))


def create_secondary_indexes(conn: Connection, tables: Iterable[Table]) -> None:
    if is_postgres(conn):
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for t in tables:
        for idx in sorted(t.indexes, key=lambda i: i.name):
            idx.create(conn, checkfirst=True)


def analyze_tables(conn: Connection, tables: Iterable[Table]) -> None:
    """PostgreSQL: ``ANALYZE`` the freshly loaded tables, so the planner sees their real sizes and
    value spreads at once, not after autovacuum gets round to them (or never: a server run with
    ``autovacuum = off``). Without it, an equality on the 個人番号 blind index of 東京都's 17.5M rows
    was estimated at 0.5 % of the table (87,500 rows) and planned as a parallel bitmap scan: 170 ms
    instead of 0.05 ms (bench/RESULTS.md, issue 16). SQLite plans from the schema (no statistics are
    kept unless ANALYZE is run, and then only as hints); nothing is done there."""
    if is_postgres(conn):
        quote = conn.dialect.identifier_preparer.quote
        for t in tables:
            conn.execute(text(f"ANALYZE {quote(t.name)}"))


def reset_identity(conn: Connection, table: Table, column: str) -> None:
    """After rows were written with explicit ids: the next generated id is above them (PostgreSQL's
    sequence; SQLite's INTEGER PRIMARY KEY already takes max + 1)."""
    if is_postgres(conn):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                          f"(SELECT COALESCE(MAX({column}), 0) + 1 FROM {table.name}), false)"),
                     {"t": table.name, "c": column})


def relax_commit(conn: Connection) -> None:
    """This transaction's commit does not wait for the WAL flush (PostgreSQL ``synchronous_commit=off``):
    a server crash may lose it whole, never corrupt it. For restartable loads only."""
    if is_postgres(conn):
        conn.execute(text("SET LOCAL synchronous_commit = off"))
