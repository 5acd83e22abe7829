"""Shared fixtures: a fresh installation per test, on SQLite and (when configured) PostgreSQL.

``JUKINET_TEST_POSTGRES_URL`` points at a PostgreSQL server where we may create databases (an
administrator URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``). Each test that asks for
the ``backend`` fixture runs once per engine; on PostgreSQL it gets a throwaway database and two
throwaway roles, dropped afterwards.
"""

from __future__ import annotations

from collections import Counter

import pytest
from jukinet_testing import BACKENDS, PG_URL, PostgresDatabase, make_installation  # noqa: F401

from jukinet.config import Config
from jukinet.store.registers import Registers

_ran = Counter()


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


def pytest_collection_modifyitems(config, items):
    """Tests marked ``nightly`` (property tests with many more examples) run only when selected,
    e.g. ``pytest -m nightly``; the default run has their bounded twins."""
    if "nightly" in (config.getoption("markexpr", "") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("nightly") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("nightly") is not None])
        items[:] = keep


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        for b in BACKENDS:
            if f"[{b}" in report.nodeid or f"-{b}]" in report.nodeid or f"-{b}-" in report.nodeid:
                _ran[b] += 1


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        "jukinet backends: " + ", ".join(f"{b}: {_ran[b]} passed" for b in BACKENDS)
        + ("" if PG_URL else " (PostgreSQL not configured: set JUKINET_TEST_POSTGRES_URL)"))
