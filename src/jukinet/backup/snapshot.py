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
from typing import Callable, Iterator, Optional

from sqlalchemy.engine import make_url

from jukinet.config import CONFIG_NAME, Config
from jukinet.errors import JukinetError
from jukinet.store.migrate import STORES
from jukinet.store.engine import make_engine
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

def libpq(url: str) -> tuple[str, dict]:
    """A libpq URI without the password, and the environment that carries it (never on argv)."""
    u = make_url(url)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if u.password:
        env["PGPASSWORD"] = u.password
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


@contextmanager
def pg_exported_snapshot(url: str) -> Iterator[str]:
    """Hold a REPEATABLE READ transaction open and yield its exported snapshot id."""
    conninfo, env = libpq(url)
    conn = psycopg.connect(conninfo, password=env.get("PGPASSWORD"))
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        conn.rollback()
    finally:
        conn.close()


def pg_dump(url: str, schema: str, snapshot: Optional[str], out, *, compress_level: int,
            progress: Optional[Callable[[int], None]] = None, chunk: int = 1 << 20) -> None:
    """Stream ``pg_dump --format=custom`` of one schema (as its own role) into ``out.write``."""
    conninfo, env = libpq(url)
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
    conninfo, env = libpq(url)
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


def schema_heads(config: Config) -> dict:
    heads = {}
    for store in STORES:
        engine = make_engine(config.database.url(store))
        try:
            heads[store] = current_revision(engine)
        finally:
            engine.dispose()
    return heads
