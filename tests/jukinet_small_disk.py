"""A PostgreSQL tablespace on a small file system, on a server of its own: the full-disk drill (U4, Q2;
issue 17, ADR 0051, ADR 0056).

:class:`DrillServer` is a private PostgreSQL 15 started for the drill (``initdb`` + ``pg_ctl`` as the
``postgres`` OS user, a free 127.0.0.1 port, everything in a fresh directory under /tmp). The drill
does **not** use the machine's shared server (``JUKINET_TEST_POSTGRES_URL``): shared buffers are
shared by every database of a server, so while one tablespace is full *another* test's backend that
evicts one of its dirty pages gets the ENOSPC ("could not write block … No space left on device"),
and checkpoints fail for everyone — the drill would fail innocent tests running beside it (CI did).

:class:`SmallDisk` mounts a tmpfs of a few MiB inside the drill server's directory, gives a directory
of it to the ``postgres`` user and makes it a TABLESPACE of the drill server. An installation whose
database is created ``WITH TABLESPACE`` it (``make_installation(..., tablespace=..., admin_url=...)``)
has every table, index and the database's own catalogue on that file system; the write-ahead log
stays on the server's disk (that one is not ours to fill: a full WAL disk stops the whole server).

:meth:`SmallDisk.fill` writes a filler file as root until the file system answers ENOSPC: from then
on every relation that needs a new page fails with SQLSTATE 53100 ("could not extend file … No space
left on device"), while pages that still have room take rows — as on a real full disk.
:meth:`SmallDisk.free` removes the filler, :meth:`SmallDisk.grow` remounts the file system bigger:
space returns, nothing else is touched.

:meth:`SmallDisk.close` drops what is left in the tablespace (databases and their register roles),
the tablespace, and unmounts — whatever happened; :meth:`DrillServer.close` stops the server and
removes its directory. A run killed before its teardown is swept by the next one
(:func:`sweep_leftovers`: drill directories whose owning process no longer exists).

Needs root (mount, and running the server as ``postgres``) and PostgreSQL 15's programs. Where either
is missing the drill is skipped — except with ``JUKINET_HA_REQUIRED`` set (CI, as root): there it fails.
"""

from __future__ import annotations

import errno
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jukinet.cluster.local import PG_BIN

PREFIX = "jukinet_full_"
DRILL_DIR_PREFIX = "jukinet-drill-pg-"
ROLES = ("juki", "fuhyo", "admin")
RUN_AS = "postgres"


def require_drill() -> None:
    """Skip where the drill cannot run — fail instead in CI (``JUKINET_HA_REQUIRED``)."""
    why = None
    if os.geteuid() != 0:
        why = "the full-disk drill mounts a tmpfs and runs PostgreSQL as 'postgres': run it as root (CI does)"
    elif shutil.which("mount") is None or shutil.which("umount") is None:
        why = "mount/umount are not installed"
    elif not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        why = f"PostgreSQL 15's programs are not in {PG_BIN} (Debian: postgresql-15)"
    else:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            why = f"no OS user {RUN_AS!r} to run the drill's PostgreSQL"
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, user=RUN_AS, group=pwd.getpwnam(RUN_AS).pw_gid, extra_groups=[],
                          capture_output=True, text=True, **kw)


def _stop_postmaster(data: Path) -> None:
    """Stop the server of ``data`` at once (its postmaster.pid), whether or not pg_ctl can."""
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGQUIT)                       # immediate shutdown
    for _ in range(100):
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def sweep_leftovers() -> list[Path]:
    """Drill directories of earlier runs whose owning process is gone (killed before the teardown):
    their server stopped, their small disks unmounted, the directory removed. Another live run's
    directory is left alone."""
    gone = []
    for root in Path("/tmp").glob(DRILL_DIR_PREFIX + "*"):
        owner = root / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue                                   # being created, or not ours
        if _pid_alive(pid):
            continue
        _stop_postmaster(root / "data")
        for disk in root.glob("disk-*"):
            _umount(disk)
        shutil.rmtree(root, ignore_errors=True)
        gone.append(root)
    return gone


class DrillServer:
    """A private PostgreSQL 15 for the full-disk drill (see the module): ``admin_url`` is its
    superuser URL (trust on 127.0.0.1)."""

    def __init__(self):
        sweep_leftovers()
        self.root = Path(tempfile.mkdtemp(prefix=DRILL_DIR_PREFIX, dir="/tmp"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        try:
            pg = pwd.getpwnam(RUN_AS)
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
            (self.root / "owner.pid").write_text(str(os.getpid()))
            r = _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], cwd=self.root)
            if r.returncode != 0:
                raise RuntimeError(f"initdb failed: {r.stderr[-2000:]}")
            options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB "
                       "-c max_connections=60 -c autovacuum=off")
            r = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                              "-o", options, "-w", "-t", "60", "start"], cwd=self.root)
            if r.returncode != 0:
                log = (self.root / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the drill's PostgreSQL did not start: {r.stderr[-1000:]} {log}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        _stop_postmaster(self.data)
        for disk in self.root.glob("disk-*"):
            _umount(disk)
        shutil.rmtree(self.root, ignore_errors=True)


def _drop_tablespace(conn, name: str) -> None:
    """Drop the databases in tablespace ``name`` (and their register roles), then the tablespace."""
    dbs = conn.execute(text("SELECT d.datname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace "
                            "WHERE t.spcname = :n"), {"n": name}).scalars().all()
    for db in dbs:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        for r in ROLES:
            conn.execute(text(f'DROP ROLE IF EXISTS "{db}_{r}"'))
    conn.execute(text(f'DROP TABLESPACE IF EXISTS "{name}"'))


class SmallDisk:
    """A tmpfs of ``size_mb`` MiB with a tablespace of the drill server on it (see the module)."""

    def __init__(self, server: DrillServer, size_mb: int = 64):
        self.server = server
        self.admin_url = server.admin_url
        self.engine = create_engine(make_url(server.admin_url).set(drivername="postgresql+psycopg"),
                                    isolation_level="AUTOCOMMIT")
        self.name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self.root = server.root / f"disk-{secrets.token_hex(3)}"
        self.location = self.root / "tablespace"
        self.filler = self.root / "filler"
        self.size_mb = size_mb
        self.tablespace: str | None = None
        try:
            self.root.mkdir()
            owner = server.data.stat()
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


# --- fixtures: a test module imports them (``backend, config, small_disk, drill_server``)
# and its installation is PostgreSQL in a tablespace on the small disk ------------------------------

@pytest.fixture(scope="session")
def drill_server():
    """The drill's own PostgreSQL (one per test process; each drill gets its own small disk on it)."""
    require_drill()
    server = DrillServer()
    yield server
    server.close()


@pytest.fixture
def small_disk(drill_server):
    disk = SmallDisk(drill_server)
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

    return make_installation(tmp_path / "data", "postgres", request, tablespace=small_disk.tablespace,
                             admin_url=small_disk.admin_url)


def admin_url_of(db) -> str:
    """The superuser URL of the server that holds the database of ``db`` (an engine or a URL), pointed
    at that database (the drill server trusts ``postgres`` on 127.0.0.1)."""
    url = db.url if hasattr(db, "url") else make_url(db)
    return url.set(username="postgres", password=None).render_as_string(hide_password=False)


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
