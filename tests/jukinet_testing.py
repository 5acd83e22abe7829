"""Test support shared by every folder: throwaway installations on SQLite and PostgreSQL.

Import it as ``from jukinet_testing import make_installation`` — a module with its own name, so no
folder's ``conftest.py`` can shadow it (several folders have one; ``import conftest`` is ambiguous).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from jukinet.config import Config
from jukinet.security.checkpoints import genesis as genesis_checkpoints
from jukinet.store import provision
from jukinet.viruscheck import write_test_database

PG_URL = os.environ.get("JUKINET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


class PostgresDatabase:
    """A throwaway PostgreSQL database (and the two register roles ``init`` creates in it);
    ``tablespace``: created there (its default tablespace: every schema's tables and indexes, and the
    database's own catalogue, live on that file system — the full-disk drill, ADR 0051)."""

    def __init__(self, admin_url: str, tablespace: str | None = None):
        self.admin = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.name = f"jukinet_t_{os.getpid()}_{secrets.token_hex(4)}"
        self._engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with self._engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"' + (f' TABLESPACE "{tablespace}"' if tablespace else "")))
        self.url = self.admin.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self._engine.connect() as c:
            # DROP DATABASE asks for a checkpoint; while a full-disk drill (tests/jukinet_small_disk.py)
            # holds its tablespace full, a checkpoint of the drill's own server can fail for a few
            # seconds ("checkpoint request failed"): try again until the drill has given the space back
            for attempt in range(60):
                try:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
                    break
                except DBAPIError as e:
                    if "checkpoint request failed" not in str(e.orig) or attempt == 59:
                        raise
                    time.sleep(1)
            for register in ("juki", "fuhyo", "admin"):
                c.execute(text(f'DROP ROLE IF EXISTS "{self.name}_{register}"'))
        self._engine.dispose()


def make_installation(data_dir: Path, backend: str, request=None, *, tablespace: str | None = None,
                      admin_url: str | None = None) -> Config:
    """A migrated installation on SQLite or PostgreSQL (a throwaway database on ``admin_url``'s server,
    by default the shared one at ``JUKINET_TEST_POSTGRES_URL``; the full-disk drill passes its own)."""
    if backend == "postgres":
        pg = PostgresDatabase(admin_url or PG_URL, tablespace)
        if request is not None:
            request.addfinalizer(pg.drop)
        db = provision.database_config(data_dir, pg.url)
    else:
        db = provision.database_config(data_dir, None)
    provision.migrate_all(db)
    config = Config(data_dir=data_dir, database=db)
    # G1's training gate is off in the shared test installation, so that the tests of other rooms need
    # not record a 研修 for every operator they make; tests/security/test_g1_training.py turns it on
    # (ADR 0034). Production and `jukinet init` keep the default: on.
    config.security.training_required = False
    # G3: every file brought in is checked by the real ClamAV (clamscan); the public signature database
    # cannot be downloaded here, so the installation points clamscan at a signature file with the
    # EICAR test signature only (ADR 0040). Production: freshclam's directory (docs/operations.md).
    config.media.scanner = "clamscan"
    config.media.database = str(write_test_database(data_dir / "clamav"))
    config.save()
    genesis_checkpoints(data_dir)  # as `jukinet init` does (ADR 0031)
    return config


def every_value(engine):
    """(table, column, value) of every non-null value of every table of a database — a raw read, past
    the application (bytes for binary columns, text for the rest)."""
    with engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            t = Table(name, MetaData(), autoload_with=conn)
            for row in conn.execute(select(t)):
                for col, v in row._mapping.items():
                    if v is not None:
                        yield name, col, bytes(v) if isinstance(v, (bytes, memoryview)) else str(v)


def table_digests(config, stores=("juki", "fuhyo", "admin")) -> dict:
    """(store, table) → (row count, SHA-256 of every row in primary-key order): "nothing changed"."""
    import hashlib

    from jukinet.store.engine import make_engine

    out = {}
    for store in stores:
        engine = make_engine(config.database.url(store))
        try:
            with engine.connect() as conn:
                for name in sorted(inspect(conn).get_table_names()):
                    t = Table(name, MetaData(), autoload_with=conn)
                    h = hashlib.sha256()
                    rows = conn.execute(select(t).order_by(*(list(t.primary_key.columns) or list(t.columns)))).all()
                    for row in rows:
                        h.update(repr(tuple(row)).encode())
                    out[(store, name)] = (len(rows), h.hexdigest())
        finally:
            engine.dispose()
    return out


def sqlite_file_bytes(engine) -> list[bytes]:
    """SQLite: the bytes of the database file and its write-ahead log (free pages included)."""
    db = Path(engine.url.database)
    return [f.read_bytes() for f in (db, db.with_name(db.name + "-wal")) if f.exists()]


def upgrade_that_seals(store: str, engine, key_file: Path, data_dir: Path, from_revision: str) -> None:
    """Upgrade an installation that never had the key file ``key_file`` (ADR 0025, 0029): without the
    data directory the sealing migration refuses and changes nothing; with it, it reaches the head."""
    import pytest

    from jukinet.errors import JukinetError
    from jukinet.store import migrate

    key_file.unlink()
    with pytest.raises(JukinetError) as e:
        migrate.upgrade(store, engine)
    assert e.value.code == "ATREST_KEY_UNAVAILABLE"
    assert migrate.current_revision(engine) == from_revision
    migrate.upgrade(store, engine, data_dir=data_dir)           # `jukinet init` passes it
    assert migrate.current_revision(engine) == migrate.head_revision(store, engine)
    assert key_file.exists()


def finish_job(client, r, timeout: float = 120.0):
    """Long work of a screen runs in the background (issue 19, ADR 0048): after the POST the browser is on
    ``/jobs/<key>``, the progress page, until the work is over; reload it as the page's polling would and
    return the final page."""
    import time
    deadline = time.monotonic() + timeout
    while 'id="job-progress"' in r.text and time.monotonic() < deadline:
        time.sleep(0.05)
        r = client.get(str(r.url))
    return r
