"""Query plans of what the code really sends: the SELECTs a block of code sends to an engine, and
PostgreSQL's ``EXPLAIN`` of each (issue 16; the plan tests and ``bench/plans_bench.py``).

:func:`captured` listens to SQLAlchemy's ``before_cursor_execute`` while the block runs and keeps
every SELECT with its bound parameters as the driver received them; :func:`explain` asks PostgreSQL
for the plan of one of them (``EXPLAIN (FORMAT JSON)``, with ``analyze=True`` the executed plan and
its server-side time; ``indexes=False`` plans it with index and bitmap scans off — a full scan, the
baseline a bench compares with); :func:`plan_nodes` walks a plan tree.

Diagnostics only: nothing here is on a request path, and parameters are never logged or shown
(they may hold personal data).

>>> list(n["Node Type"] for n in plan_nodes({"Node Type": "Limit", "Plans": [{"Node Type": "Index Scan"}]}))
['Limit', 'Index Scan']
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    """The SELECT statements the code under the block sends to ``engine``, with their parameters."""
    got: list[tuple[str, object]] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            got.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield got
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def plan_nodes(plan: dict) -> Iterator[dict]:
    """Every node of a plan tree (``EXPLAIN (FORMAT JSON)``'s ``Plan``), parents first."""
    yield plan
    for sub in plan.get("Plans", ()):
        yield from plan_nodes(sub)


def explain(engine: Engine, statement: str, parameters, *, analyze: bool = False,
            indexes: bool = True) -> tuple[list[dict], float | None]:
    """The plan's nodes of ``statement`` on PostgreSQL, and with ``analyze`` its execution time in ms
    (server side; ``None`` without). ``indexes=False``: index, index-only and bitmap scans off."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    with engine.begin() as conn:
        if not indexes:
            for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                conn.exec_driver_sql(f"SET LOCAL {setting} = off")
        out = conn.exec_driver_sql(f"EXPLAIN ({options}) " + statement, parameters).scalar_one()
    doc = (json.loads(out) if isinstance(out, str) else out)[0]
    return list(plan_nodes(doc["Plan"])), doc.get("Execution Time")
