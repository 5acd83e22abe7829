"""A PostgreSQL tablespace on a small file system: the full-disk drill (U4, Q2; issue 17, ADR 0051).

:class:`SmallDisk` mounts a tmpfs of a few MiB in a fresh directory under /tmp, gives a directory of
it to the PostgreSQL server's OS user and makes it a TABLESPACE of the machine's PostgreSQL (the one
at ``JUKINET_TEST_POSTGRES_URL``; a tablespace is an object, not a server setting). An installation
whose database is created ``WITH TABLESPACE`` it (``make_installation(..., tablespace=...)``) has
every table, index and the database's own catalogue on that file system; the write-ahead log stays
on the server's disk (that one is not ours to fill: a full WAL disk stops the whole server).

:meth:`SmallDisk.fill` writes a filler file as root until the file system answers ENOSPC: from then
on every relation that needs a new page fails with SQLSTATE 53100 ("could not extend file … No space
left on device"), while pages that still have room take rows — as on a real full disk.
:meth:`SmallDisk.free` removes the filler, :meth:`SmallDisk.grow` remounts the file system bigger:
space returns, nothing else is touched.

:meth:`SmallDisk.close` drops what is left in the tablespace (databases and their register roles),
the tablespace, and unmounts — whatever happened. A run killed before its teardown is swept by the
next one (:func:`sweep_leftovers`: tablespaces named after a process that no longer exists).

Needs root (mount) and a PostgreSQL server on this machine. Where either is missing the drill is
skipped — except with ``JUKINET_HA_REQUIRED`` set (CI, as root): there it fails.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PREFIX = "jukinet_full_"
ROLES = ("juki", "fuhyo", "admin")


def require_drill(pg_url: str | None) -> None:
    """Skip where the drill cannot run — fail instead in CI (``JUKINET_HA_REQUIRED``)."""
    why = None
    if not pg_url:
        why = "JUKINET_TEST_POSTGRES_URL is not set"
    elif os.geteuid() != 0:
        why = "the full-disk drill mounts a tmpfs: run it as root (CI does)"
    elif shutil.which("mount") is None or shutil.which("umount") is None:
        why = "mount/umount are not installed"
    if why:
        if os.environ.get("JUKINET_HA_REQUIRED"):
            pytest.fail(why)
        pytest.skip(why)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umount(root: Path) -> None:
    if os.path.ismount(root):
        if subprocess.run(["umount", str(root)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(root)], capture_output=True, check=True)
    try:
        root.rmdir()
    except OSError:
        pass


def _drop_tablespace(conn, name: str) -> None:
    """Drop the databases in tablespace ``name`` (and their register roles), then the tablespace."""
    dbs = conn.execute(text("SELECT d.datname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace "
                            "WHERE t.spcname = :n"), {"n": name}).scalars().all()
    for db in dbs:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        for r in ROLES:
            conn.execute(text(f'DROP ROLE IF EXISTS "{db}_{r}"'))
    conn.execute(text(f'DROP TABLESPACE IF EXISTS "{name}"'))


def sweep_leftovers(engine) -> list[str]:
    """Tablespaces of earlier drills whose process is gone (killed before its teardown): dropped, with
    their databases, and their file systems unmounted. Another live run's tablespace is left alone."""
    gone = []
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace "
                                 "WHERE spcname LIKE :p"), {"p": PREFIX + "%"}).all()
        for name, location in rows:
            pid = name[len(PREFIX):].split("_", 1)[0]
            if pid.isdigit() and _pid_alive(int(pid)):
                continue
            _drop_tablespace(conn, name)
            if location:
                _umount(Path(location).parent)
            gone.append(name)
    return gone


class SmallDisk:
    """A tmpfs of ``size_mb`` MiB with a PostgreSQL tablespace on it (see the module)."""

    def __init__(self, admin_url: str, size_mb: int = 64):
        self.engine = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"),
                                    isolation_level="AUTOCOMMIT")
        self.name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="jukinet-full-disk-", dir="/tmp"))
        self.location = self.root / "tablespace"
        self.filler = self.root / "filler"
        self.size_mb = size_mb
        self.tablespace: str | None = None
        try:
            sweep_leftovers(self.engine)
            with self.engine.connect() as c:
                data_directory = Path(c.execute(text("SHOW data_directory")).scalar_one())
            if not data_directory.is_dir():
                raise RuntimeError("the PostgreSQL server of JUKINET_TEST_POSTGRES_URL is not on this machine "
                                   "(its data directory is not here): a tablespace needs a local file system")
            owner = data_directory.stat()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(self.root)],
                           check=True, capture_output=True)
            self.location.mkdir(mode=0o700)
            os.chown(self.location, owner.st_uid, owner.st_gid)
            with self.engine.connect() as c:
                c.execute(text(f"CREATE TABLESPACE \"{self.name}\" LOCATION '{self.location}'"))
            self.tablespace = self.name
        except BaseException:
            self.close()
            raise

    # --- space ------------------------------------------------------------------------------------

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self) -> int:
        """Write the filler until the file system is full (ENOSPC); return the bytes written."""
        written = 0
        with open(self.filler, "ab", buffering=0) as f:
            for size in (1 << 20, 1 << 16, 4096, 512):
                block = b"\xa5" * size
                while True:
                    try:
                        n = f.write(block)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
                    written += n
                    if n < size:
                        break
        assert self.free_bytes() < 8192, self.free_bytes()     # not one PostgreSQL page is left
        return written

    def free(self) -> None:
        """Space returns: the filler is removed."""
        self.filler.unlink(missing_ok=True)

    def grow(self, size_mb: int) -> None:
        """Space returns: the file system is remounted bigger (the filler stays)."""
        subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(self.root)], check=True, capture_output=True)
        self.size_mb = size_mb

    # --- teardown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop what is left in the tablespace, the tablespace, unmount, remove the directory."""
        try:
            if self.tablespace:
                with self.engine.connect() as c:
                    _drop_tablespace(c, self.tablespace)
                self.tablespace = None
        finally:
            try:
                _umount(self.root)
            finally:
                self.engine.dispose()


def write_refusal(disk_url: str) -> tuple[str, str]:
    """(SQLSTATE, message) of one write into a new table of the database at ``disk_url`` (rolled back):
    on a full tablespace ``("53100", "could not extend file …")`` — proof that the disk is what refuses."""
    import psycopg

    url = make_url(disk_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname=url.database) as conn:
        try:
            conn.execute("CREATE TABLE jukinet_full_disk_probe (x text)")
            conn.execute("INSERT INTO jukinet_full_disk_probe SELECT repeat('x', 1000) FROM generate_series(1, 100)")
        except psycopg.Error as e:
            conn.rollback()
            return e.sqlstate or "", str(e)
        conn.rollback()
    return "", ""


# --- fixtures: a test module imports them (``from jukinet_small_disk import backend, config, small_disk``)
# and its installation is PostgreSQL in a tablespace on the small disk ------------------------------

@pytest.fixture
def small_disk():
    from jukinet_testing import PG_URL

    require_drill(PG_URL)
    disk = SmallDisk(PG_URL)
    yield disk
    disk.close()


@pytest.fixture(params=["postgres"])
def backend(request) -> str:
    """The drill is PostgreSQL's (SQLite's full disk: ``PRAGMA max_page_count``, ADR 0038)."""
    return request.param


@pytest.fixture
def config(tmp_path, small_disk, backend, request):
    """A migrated installation whose database lives in the small disk's tablespace (dropped before the
    tablespace: this fixture's finalizer runs first)."""
    from jukinet_testing import make_installation

    return make_installation(tmp_path / "data", "postgres", request, tablespace=small_disk.tablespace)


def admin_url_of(db) -> str:
    """The administrator URL (``JUKINET_TEST_POSTGRES_URL``) pointed at the database of ``db`` (an
    engine or a URL)."""
    from jukinet_testing import PG_URL

    database = (db.url if hasattr(db, "url") else make_url(db)).database
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def until_refused(snapshot, send, tries: int = 400):
    """Call ``send()`` until the full disk refuses (a full disk still takes rows while the last pages of
    the tables have room); return (the refused answer, ``snapshot()`` just before it)."""
    before = snapshot()
    for _ in range(tries):
        r = send()
        if r.status_code != 200:
            return r, before
        before = snapshot()
    raise AssertionError("the full disk never refused a write")
