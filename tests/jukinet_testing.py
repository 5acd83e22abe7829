"""Test support shared by every folder: throwaway installations on SQLite and PostgreSQL.

Import it as ``from jukinet_testing import make_installation`` — a module with its own name, so no
folder's ``conftest.py`` can shadow it (several folders have one; ``import conftest`` is ambiguous).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jukinet.config import Config
from jukinet.store import provision

PG_URL = os.environ.get("JUKINET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


class PostgresDatabase:
    """A throwaway PostgreSQL database (and the two register roles ``init`` creates in it)."""

    def __init__(self, admin_url: str):
        self.admin = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.name = f"jukinet_t_{os.getpid()}_{secrets.token_hex(4)}"
        self._engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with self._engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = self.admin.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self._engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            for register in ("juki", "fuhyo", "admin"):
                c.execute(text(f'DROP ROLE IF EXISTS "{self.name}_{register}"'))
        self._engine.dispose()


def make_installation(data_dir: Path, backend: str, request=None) -> Config:
    if backend == "postgres":
        pg = PostgresDatabase(PG_URL)
        if request is not None:
            request.addfinalizer(pg.drop)
        db = provision.database_config(data_dir, pg.url)
    else:
        db = provision.database_config(data_dir, None)
    provision.migrate_all(db)
    config = Config(data_dir=data_dir, database=db)
    config.save()
    return config
