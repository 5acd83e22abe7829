"""The engine a benchmark measures on (issue 16): SQLite by default, PostgreSQL with ``--db-url``.

Every benchmark takes ``--db-url URL`` — a PostgreSQL *server* URL where it may create databases and
roles (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``); without it, SQLite files in a
temporary directory. What the benchmark creates on the server it drops again, in a ``finally``:

    with Server(a.db_url) as server:             # a no-op for SQLite
        data_dir = server.installation(tmp / "data", residents=5000)
        with bootstrap(data_dir) as inst:
            bare = Bare.of(inst.registers, "juki")   # the same database through the bare driver
            ...

* :class:`Server` — throwaway databases named ``jukinet_bench_<pid>_<hex>_<n>`` (unique per run),
  each with the three register roles ``jukinet init`` creates in it (``<db>_juki`` …); all dropped
  on exit, even after an error or Ctrl-C.
* :meth:`Server.installation` — ``jukinet init`` in-process: databases, migrations, config, the
  checkpoint file; and ``populate`` when ``residents`` is given.
* :class:`Bare` — the baseline's connection: the ``sqlite3`` module on the register's file, or
  ``psycopg`` connected as the register's role (its ``search_path`` is the register's schema), with
  ``?`` placeholders on both, autocommit, explicit ``BEGIN``/``COMMIT``, and COPY on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import sys
from pathlib import Path
from typing import Iterable, Optional

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from jukinet.bootstrap import bootstrap  # noqa: E402
from jukinet.config import Config  # noqa: E402
from jukinet.security.checkpoints import genesis as genesis_checkpoints  # noqa: E402
from jukinet.seed import populate  # noqa: E402
from jukinet.store import migrate, provision  # noqa: E402

STORES = tuple(migrate.STORES)


def add_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--db-url", default=None,
                    help="PostgreSQL server URL where the bench may create (and drops again) its own databases "
                         "and roles, e.g. postgresql://postgres@127.0.0.1:5432/postgres; default: SQLite")


def engine_name(db_url: Optional[str]) -> str:
    return "PostgreSQL" if db_url else "SQLite"


class Server:
    """Throwaway PostgreSQL databases (and their register roles) on the server of ``db_url``; for
    ``db_url=None`` (SQLite) it creates nothing and :meth:`database` returns ``None``."""

    def __init__(self, db_url: Optional[str]):
        self.db_url = db_url
        self.created: list[str] = []
        #: keep what this run made (its databases and their register roles): ``growth_bench.py --keep``
        self.keep = False
        self.tag = f"jukinet_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self._engine = None
        if db_url:
            if not db_url.startswith("postgresql"):
                raise SystemExit(f"--db-url must be a postgresql:// URL, not {db_url!r}")
            self.admin = make_url(db_url).set(drivername="postgresql+psycopg")
            self._engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")

    @property
    def postgres(self) -> bool:
        return self._engine is not None

    def sql(self, statement: str):
        with self._engine.connect() as c:
            return c.execute(text(statement)).fetchall() if statement.lstrip().upper().startswith("SELECT") \
                else c.execute(text(statement))

    def database(self, suffix: str = "") -> Optional[str]:
        """A new empty database; its administrator URL (``postgresql://…/name``). ``None`` on SQLite."""
        if not self.postgres:
            return None
        name = f"{self.tag}_{suffix or len(self.created)}"
        self.created.append(name)
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str, driver: str = "postgresql") -> str:
        return self.admin.set(drivername=driver, database=name).render_as_string(hide_password=False)

    def version(self) -> str:
        if not self.postgres:
            return f"SQLite {sqlite3.sqlite_version}"
        return "PostgreSQL " + self.sql("SELECT current_setting('server_version')")[0][0].split()[0]

    def installation(self, data_dir: Path, residents: int = 0, seed: int = 0, *, progress=None) -> Path:
        """``jukinet init`` (in-process) into ``data_dir`` on this engine, then ``populate`` N residents."""
        db = provision.database_config(data_dir, self.database("inst") if self.postgres else None)
        provision.migrate_all(db, data_dir)
        config = Config(data_dir=data_dir, database=db)
        config.save()
        genesis_checkpoints(data_dir)
        if residents:
            with bootstrap(data_dir) as inst:
                print(f"seeding {residents:,} residents ({engine_name(self.db_url)}) into {data_dir} …",
                      file=sys.stderr)
                populate(inst.registers, residents, seed, **({"progress": progress} if progress else {}))
        return data_dir

    def drop(self) -> None:
        if not self.postgres:
            return
        try:
            if self.keep:
                return
            for name in self.created:
                self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # register roles of every database this run made (init's, and restore's for a restored copy)
            for (role,) in self.sql(f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{self.tag}%'"):
                self.sql(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            self._engine.dispose()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.drop()


class Bare:
    """The baseline's connection to one register's database, through the bare driver (autocommit).

    SQL is written with ``?`` placeholders; on PostgreSQL they become ``%s``."""

    def __init__(self, conn, postgres: bool):
        self.conn, self.postgres = conn, postgres

    @classmethod
    def of(cls, registers, store: str) -> "Bare":
        url = registers.engine(store).url
        if url.get_backend_name() == "sqlite":
            return cls(sqlite3.connect(url.database, isolation_level=None, timeout=300), False)
        return cls(psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                                   autocommit=True), True)

    @classmethod
    def of_url(cls, url: str) -> "Bare":
        if url.startswith("sqlite"):
            return cls(sqlite3.connect(make_url(url).database, isolation_level=None, timeout=300), False)
        return cls(psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                                   autocommit=True), True)

    def q(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Iterable = ()):
        return self.conn.execute(self.q(sql), tuple(params))

    def executemany(self, sql: str, rows) -> None:
        if self.postgres:
            with self.conn.cursor() as cur:
                cur.executemany(self.q(sql), rows)
        else:
            self.conn.executemany(sql, rows)

    def copy(self, table: str, columns: list[str], rows) -> None:
        """PostgreSQL COPY … FROM STDIN (psycopg's copy API); ``executemany`` INSERT on SQLite."""
        if not self.postgres:
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                  f"VALUES ({', '.join('?' * len(columns))})", rows)
            return
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)

    def begin_write(self) -> None:
        self.conn.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def analyze(self) -> None:
        self.conn.execute("ANALYZE")

    def tables(self) -> list[str]:
        if self.postgres:
            return [r[0] for r in self.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")]
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND name NOT LIKE 'sqlite_%' ORDER BY 1")]

    def full_scan(self, sql: str, params: Iterable = ()):
        """The same SELECT without its indexes: ``NOT INDEXED`` for SQLite (written in ``sql`` after the
        table name as ``{noidx}``), index and bitmap scans switched off for this transaction on PostgreSQL."""
        if not self.postgres:
            return self.conn.execute(sql.format(noidx=" NOT INDEXED"), tuple(params)).fetchall()
        with self.conn.transaction():
            for s in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                self.conn.execute(f"SET LOCAL {s} = off")
            # never a prepared statement: psycopg prepares a query text it has run 5 times, and a plan
            # cached with the indexes on would be used again whatever the settings say
            return self.conn.execute(self.q(sql.format(noidx="")), tuple(params), prepare=False).fetchall()

    def close(self) -> None:
        self.conn.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")
