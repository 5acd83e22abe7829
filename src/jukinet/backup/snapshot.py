"""A consistent copy of the three databases and the files a restore needs (A7; ADR 0024).

**SQLite** (WAL): the write lock of all three files is taken for a moment (``BEGIN IMMEDIATE`` on
each, with a short timeout; if one is busy, all are released and it is tried again so two
lock-takers never wait on each other), a read transaction is opened on each file while no writer
can commit, and the locks are released. The three read transactions see the same instant; the
SQLite online-backup API copies each file from its read transaction into a private temporary
directory on the server while intake carries on.

**PostgreSQL**: a ``REPEATABLE READ`` transaction exports its snapshot (``pg_export_snapshot``) and
``pg_dump --snapshot`` dumps each schema as its own role (custom format, streamed into the
encryptor): three dumps of one instant, no role that can read all three schemas is needed.

**Files**: ``jukinet.toml``, every file in ``keys/`` and ``pki/``, ``audit/checkpoints.jsonl`` — read
*before* the databases, so that every checkpoint refers to an entry the snapshot holds. Temporary
areas and media (already encrypted, erased after their period) are not part of a backup.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator, Optional
from urllib.parse import quote, urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from jukinet.config import CONFIG_NAME, Config
from jukinet.errors import JukinetError
from jukinet.store.migrate import STORES
from jukinet.store.engine import make_engine, postgres_url
from jukinet.store.migrate import current_revision
import psycopg

#: what a restore needs besides the databases (relative to the data directory)
DATA_FILES = (CONFIG_NAME, "audit/checkpoints.jsonl")
DATA_TREES = ("keys", "pki")

#: a snapshot directory or partial backup left by a killed run is erased after this long
STALE_SECONDS = 86400

Progress = Callable[[str, int, Optional[int]], None]


def data_files(data_dir: Path) -> list[tuple[str, bytes, int]]:
    """(relative path, content, mode) of the files a restore needs, in a stable order."""
    data_dir = Path(data_dir)
    paths = [data_dir / p for p in DATA_FILES if (data_dir / p).is_file()]
    for tree in DATA_TREES:
        root = data_dir / tree
        if root.is_dir():
            paths += sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return [(p.relative_to(data_dir).as_posix(), p.read_bytes(), p.stat().st_mode & 0o777) for p in paths]


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database)


@contextmanager
def private_tmp(parent: Path) -> Iterator[Path]:
    """A 0700 directory for plaintext snapshots, removed afterwards whatever happens (and, should a
    process have been killed, by the next run once it is a day old)."""
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in parent.glob("snapshot-*"):
        if stale.is_dir() and stale.stat().st_mtime < time.time() - STALE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    d = Path(tempfile.mkdtemp(prefix="snapshot-", dir=parent))
    try:
        yield d
    finally:
        for p in sorted(d.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        d.rmdir()


def _busy() -> JukinetError:
    return JukinetError("BACKUP_BUSY", "データベースの書込みが続いているため、整合したスナップショットを取れませんでした。"
                                       "しばらくしてから再実行してください。")


@contextmanager
def pinned_sqlite(paths: dict[str, Path], *, lock_timeout: float = 0.5, give_up_after: float = 120.0):
    """Yield one connection per store, each in a read transaction begun while every store's write
    lock was held: the three see the same instant."""
    readers = {s: sqlite3.connect(p, isolation_level=None, timeout=30, check_same_thread=False)
               for s, p in paths.items()}
    lockers = {s: sqlite3.connect(p, isolation_level=None, timeout=lock_timeout) for s, p in paths.items()}
    try:
        deadline = time.monotonic() + give_up_after
        while True:
            held = []
            try:
                for s, c in lockers.items():
                    c.execute("BEGIN IMMEDIATE")
                    held.append(s)
                for c in readers.values():
                    c.execute("BEGIN")
                    c.execute("SELECT count(*) FROM sqlite_master").fetchone()
                break
            except sqlite3.OperationalError:
                for c in readers.values():
                    if c.in_transaction:
                        c.execute("ROLLBACK")
                if time.monotonic() > deadline:
                    raise _busy() from None
            finally:
                for s in held:
                    lockers[s].execute("ROLLBACK")
            time.sleep(0.05)
        yield readers
    finally:
        for c in (*lockers.values(), *readers.values()):
            c.close()


def copy_sqlite(reader: sqlite3.Connection, dest: Path, progress: Optional[Callable[[int, int], None]] = None) -> None:
    """Copy the database as its open read transaction sees it (online-backup API)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    target = sqlite3.connect(dest)
    page = reader.execute("PRAGMA page_size").fetchone()[0]
    try:
        def cb(_status, remaining, total):   # in bytes
            if progress:
                progress((total - remaining) * page, total * page)

        reader.backup(target, pages=8192, progress=cb, sleep=0)
    finally:
        target.close()


# --- PostgreSQL ---------------------------------------------------------------------------------

def _host_list(u: URL) -> list[tuple[str, str]]:
    """(host, port) of every host a URL names, in order: SQLAlchemy's ``host=h:p`` query parameters
    (the multi-host form :func:`postgres_url` makes) or its single host and port; empty = libpq's
    default (the local socket)."""
    raw = u.query.get("host")
    if raw:
        out = []
        for h in ((raw,) if isinstance(raw, str) else raw):
            name, colon, port = h.rpartition(":")
            out.append((name, port) if colon and port.isdigit() and not h.startswith("/") else (h, ""))
        return out
    if u.host:
        return [(u.host, str(u.port or ""))]
    return []


def libpq(url: str, *, primary: bool = False, host: Optional[tuple[str, str]] = None) -> tuple[str, dict]:
    """A libpq URI without the password, and the environment that carries it (never on argv).

    The libpq multi-host form is kept (``host=h1,h2&port=p1,p2``: libpq tries them in order), so
    ``pg_dump`` and the snapshot connection reach a live node after a failover. ``primary``: with
    several hosts, the connection must be the primary (``target_session_attrs=read-write`` unless
    the URL already asks for ``read-write`` or ``primary``) — a backup is taken where every
    acknowledged commit is. ``host``: connect to exactly this (host, port), the node the snapshot
    was exported on (ADR 0049).
    """
    u = postgres_url(url)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if u.password:
        env["PGPASSWORD"] = u.password
    hosts = [host] if host else _host_list(u)
    query = {k: (v if isinstance(v, str) else ",".join(v)) for k, v in u.query.items() if k not in ("host", "port")}
    if primary and len(_host_list(u)) > 1 and query.get("target_session_attrs") not in ("read-write", "primary"):
        query["target_session_attrs"] = "read-write"
    if hosts:
        query["host"] = ",".join(h for h, _ in hosts)
        if any(p for _, p in hosts):
            query["port"] = ",".join(p for _, p in hosts)
    user = quote(u.username or "", safe="")
    conninfo = f"postgresql://{user}{'@' if user else ''}/{quote(u.database or '', safe='')}"
    if query:
        conninfo += "?" + urlencode(query, safe=",:/")
    return conninfo, env


@dataclass(frozen=True)
class ExportedSnapshot:
    """An exported snapshot and the node it lives on (a snapshot can be imported only there)."""
    snapshot_id: str
    host: tuple[str, str]


@contextmanager
def pg_exported_snapshot(url: str) -> Iterator[ExportedSnapshot]:
    """Hold a REPEATABLE READ transaction open on the primary and yield its exported snapshot and
    the node it was taken on."""
    conninfo, env = libpq(url, primary=True)
    try:
        conn = psycopg.connect(conninfo, password=env.get("PGPASSWORD"))
    except psycopg.OperationalError:
        raise JukinetError("BACKUP_DB_UNREACHABLE", "データベース（書込み可能なプライマリ）に接続できません。") from None
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot_id = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        yield ExportedSnapshot(snapshot_id, (conn.info.host, str(conn.info.port)))
        conn.rollback()
    finally:
        conn.close()


def pg_dump(url: str, schema: str, snapshot: Optional[str | ExportedSnapshot], out, *, compress_level: int,
            progress: Optional[Callable[[int], None]] = None, chunk: int = 1 << 20) -> None:
    """Stream ``pg_dump --format=custom`` of one schema (as its own role) into ``out.write``; with an
    :class:`ExportedSnapshot`, on the node that exported it."""
    pinned = snapshot.host if isinstance(snapshot, ExportedSnapshot) else None
    if isinstance(snapshot, ExportedSnapshot):
        snapshot = snapshot.snapshot_id
    conninfo, env = libpq(url, primary=True, host=pinned)
    argv = ["pg_dump", "--format=custom", f"--compress={compress_level}", f"--schema={schema}", "--no-owner",
            "--no-privileges", f"--dbname={conninfo}"]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    with tempfile.TemporaryFile() as err:
        try:
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
        except OSError:
            raise JukinetError("BACKUP_DUMP_FAILED", "pg_dump を実行できません (postgresql-client が必要です)。") from None
        done = 0
        while True:
            b = p.stdout.read(chunk)
            if not b:
                break
            out(b)
            done += len(b)
            if progress:
                progress(done)
        if p.wait() != 0:
            raise JukinetError("BACKUP_DUMP_FAILED", f"pg_dump が失敗しました (スキーマ {schema})。")


def pg_restore(url: str, dump: Path) -> None:
    """Restore one schema's dump into the (existing, empty) schema of the role of ``url``: the dump's
    own CREATE SCHEMA is left out, objects belong to the connecting role."""
    conninfo, env = libpq(url, primary=True)
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise JukinetError("BACKUP_RESTORE_FAILED", "pg_restore がダンプを読めませんでした。")
    lines = [(";" + line) if " SCHEMA - " in line else line for line in listing.stdout.splitlines()]
    list_file = dump.with_suffix(".list")
    list_file.write_text("\n".join(lines) + "\n")
    p = subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                        f"--use-list={list_file}", f"--dbname={conninfo}", str(dump)],
                       capture_output=True, env=env)
    if p.returncode != 0:
        raise JukinetError("BACKUP_RESTORE_FAILED", "pg_restore が失敗しました。")
    # pg_restore loads rows without statistics: ANALYZE the role's tables before anyone queries them
    # (a restored 東京都 is planned blind otherwise; see jukinet.store.bulk.analyze_tables)
    with psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        for table in tables:
            conn.execute(f'ANALYZE "{table}"')


def schema_heads(config: Config) -> dict:
    heads = {}
    for store in STORES:
        engine = make_engine(config.database.url(store))
        try:
            heads[store] = current_revision(engine)
        except OperationalError:
            raise JukinetError("BACKUP_DB_UNREACHABLE", "データベース（書込み可能なプライマリ）に接続できません。") from None
        finally:
            engine.dispose()
    return heads
