"""Shared fixtures: a fresh installation per test, on SQLite and (when configured) PostgreSQL.

``JUKINET_TEST_POSTGRES_URL`` points at a PostgreSQL server where we may create databases (an
administrator URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``). Each test that asks for
the ``backend`` fixture runs once per engine; on PostgreSQL it gets a throwaway database and two
throwaway roles, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jukinet.config import Config
from jukinet.store import provision
from jukinet.store.registers import Registers

PG_URL = os.environ.get("JUKINET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
_ran = Counter()


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


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def config(tmp_path, backend, request) -> Config:
    """A migrated, empty installation on the backend under test."""
    return make_installation(tmp_path / "data", backend, request)


@pytest.fixture
def registers(config):
    regs = Registers(config)
    yield regs
    regs.dispose()


@pytest.fixture
def pg_database(request):
    if not PG_URL:
        pytest.skip("JUKINET_TEST_POSTGRES_URL is not set")
    pg = PostgresDatabase(PG_URL)
    request.addfinalizer(pg.drop)
    return pg


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        for b in BACKENDS:
            if f"[{b}" in report.nodeid or f"-{b}]" in report.nodeid or f"-{b}-" in report.nodeid:
                _ran[b] += 1


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        "jukinet backends: " + ", ".join(f"{b}: {_ran[b]} passed" for b in BACKENDS)
        + ("" if PG_URL else " (PostgreSQL not configured: set JUKINET_TEST_POSTGRES_URL)"))
