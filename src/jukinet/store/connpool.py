"""The PostgreSQL connections of many installations in one process (the consolidated center; ADR 0055).

A center hosts up to 47 tenants × 3 registers, each register an engine with its own small pool
(ADR 0036). SQLAlchemy's ``QueuePool`` opens connections lazily but never closes an idle one, so
every tenant that was ever used keeps one connection per register for the life of the process —
141 for 47 tenants, past PostgreSQL's default ``max_connections = 100``. A
:class:`ConnectionGovernor` adds two things to the engines it is given (PostgreSQL only; SQLite is
files):

* **idle release**: a connection that has sat in its pool for ``idle_seconds`` is closed by one
  reaper thread for the whole process; the pool keeps its slot and reconnects on the next use
  (``pool_pre_ping`` is on anyway). A busy tenant keeps its connections, an idle one holds none;
* **a budget per cluster**: at most ``limit`` connections of the governed engines to one cluster
  (hosts of the URL) are open at any time. An engine that needs a new connection when the budget
  is spent first closes the longest-idle connection of any governed engine on that cluster, else
  waits (up to ``wait_seconds``; then :class:`ConnectionBudgetExhausted`, which the intake answers
  with a 503 the CS resends).

The count is of the live DBAPI connections themselves (a weak set, pruned of the closed ones), so
it cannot drift whatever path SQLAlchemy closes a connection by. A closed connection keeps its slot
for ``close_grace`` (0.25 s) more: its server process leaves ``pg_stat_activity`` a few milliseconds
after the client closed it (1–10 ms measured under load), and the bound is the server's count.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from typing import Optional

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = logging.getLogger("jukinet.store")
IDLE_SINCE = "jukinet_idle_since"


class ConnectionBudgetExhausted(PoolTimeoutError):
    """No connection to the cluster could be opened within the wait: every one is in use."""


def cluster_of(engine: Engine) -> str:
    """The cluster an engine connects to: its hosts (several for a Patroni cluster), sorted."""
    u = engine.url
    hosts = u.query.get("host")
    if hosts:
        return ",".join(sorted((hosts,) if isinstance(hosts, str) else hosts))
    return f"{u.host or ''}:{u.port or 5432}"


class ConnectionGovernor:
    """Idle release and a per-cluster budget for the PostgreSQL engines of one process."""

    def __init__(self, *, idle_seconds: float = 10.0, limit: int = 40, wait_seconds: float = 30.0,
                 close_grace: float = 0.25):
        """``limit`` 0: no budget; ``idle_seconds`` 0: idle connections are kept (SQLAlchemy's own
        behaviour, for comparison); the connections are counted either way."""
        self.idle_seconds = idle_seconds
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.close_grace = close_grace
        self._closing: dict[str, deque] = {}
        self._lock = threading.Lock()
        self._engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
        self._live: dict[str, "weakref.WeakSet"] = {}
        self._opening: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        #: the most connections open at once per cluster since the start (for the bench and tests)
        self.peak: dict[str, int] = {}
        self.evictions = 0
        self.reaped = 0

    # ---- the engines ------------------------------------------------------------------------------

    def govern(self, engine: Engine) -> Engine:
        """Count, budget and release the connections of ``engine`` (a PostgreSQL engine; SQLite untouched)."""
        if engine.dialect.name != "postgresql":
            return engine
        key = cluster_of(engine)

        @event.listens_for(engine, "do_connect")
        def _connect(dialect, _record, cargs, cparams):
            self._acquire(key)
            try:
                conn = dialect.connect(*cargs, **cparams)
            except BaseException:
                self._done_opening(key, None)
                raise
            self._done_opening(key, conn)
            return conn

        @event.listens_for(engine, "checkin")
        def _checkin(_dbapi_conn, record):
            record.info[IDLE_SINCE] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _checkout(_dbapi_conn, record, _proxy):
            record.info.pop(IDLE_SINCE, None)

        with self._lock:
            self._engines.add(engine)
            self._live.setdefault(key, weakref.WeakSet())
            self._closing.setdefault(key, deque())
            self._opening.setdefault(key, 0)
        return engine

    # ---- the budget -------------------------------------------------------------------------------

    def _open_count(self, key: str) -> int:
        """Connections to ``key`` still open, or closed less than ``close_grace`` ago (the lock held)."""
        now = time.monotonic()
        live, closing = self._live[key], self._closing[key]
        n = 0
        for c in list(live):
            if getattr(c, "closed", False):
                live.discard(c)
                closing.append(now)          # first seen closed: its slot is free after the grace
            else:
                n += 1
        while closing and now - closing[0] > self.close_grace:
            closing.popleft()
        return n + len(closing)

    def open_connections(self, key: Optional[str] = None) -> int:
        with self._lock:
            keys = [key] if key else list(self._live)
            return sum(self._open_count(k) for k in keys if k in self._live)

    def _acquire(self, key: str) -> None:
        deadline = time.monotonic() + self.wait_seconds
        evicted_at = None
        while True:
            with self._lock:
                if self.limit <= 0 or self._open_count(key) + self._opening[key] < self.limit:
                    self._opening[key] += 1
                    return
            now = time.monotonic()
            # one eviction frees one slot once its grace is over: do not close a second meanwhile
            if (evicted_at is None or now - evicted_at > self.close_grace) and self.evict_one(key):
                evicted_at = now
                continue
            if now > deadline:
                log.error("connection budget of cluster exhausted (%d): every connection in use", self.limit)
                raise ConnectionBudgetExhausted("connection budget exhausted")
            time.sleep(0.02)

    def _done_opening(self, key: str, conn) -> None:
        with self._lock:
            self._opening[key] -= 1
            if conn is not None:
                self._live[key].add(conn)
                n = self._open_count(key)
                if n > self.peak.get(key, 0):
                    self.peak[key] = n

    # ---- closing idle connections -----------------------------------------------------------------

    def _idle_records(self, engine: Engine):
        """(queue, [(idle since, record)]) of the connections waiting in the engine's pool."""
        q = getattr(engine.pool, "_pool", None)
        if q is None or not hasattr(q, "mutex"):
            return None, []
        with q.mutex:
            return q, [(r.info.get(IDLE_SINCE, time.monotonic()), r) for r in list(q.queue)
                       if r.dbapi_connection is not None]

    def _close_if_idle(self, q, record, older_than: float) -> bool:
        with q.mutex:              # a checkout takes the record out of the queue under the same lock
            if record not in q.queue or record.dbapi_connection is None:
                return False
            if record.info.get(IDLE_SINCE, time.monotonic()) > older_than:
                return False
            record.close()         # the pool keeps the slot; the next checkout connects again
            return True

    def evict_one(self, key: str) -> bool:
        """Close the longest-idle pooled connection to cluster ``key`` (the budget is spent)."""
        best = None
        for engine in list(self._engines):
            if cluster_of(engine) != key:
                continue
            q, idle = self._idle_records(engine)
            for since, rec in idle:
                if best is None or since < best[0]:
                    best = (since, q, rec)
        if best is None:
            return False
        if self._close_if_idle(best[1], best[2], best[0]):
            self.evictions += 1
            return True
        return False

    def reap(self, now: Optional[float] = None) -> int:
        """Close every pooled connection idle for ``idle_seconds``; the number closed."""
        if self.idle_seconds <= 0:
            return 0
        limit = (now if now is not None else time.monotonic()) - self.idle_seconds
        closed = 0
        for engine in list(self._engines):
            q, idle = self._idle_records(engine)
            for since, rec in idle:
                if since <= limit and self._close_if_idle(q, rec, limit):
                    closed += 1
        self.reaped += closed
        return closed

    def start(self) -> "ConnectionGovernor":
        if self.idle_seconds <= 0 or self._thread is not None:
            return self
        interval = max(0.2, min(self.idle_seconds / 4, 5.0))

        def run():
            while not self._stop.wait(interval):
                try:
                    self.reap()
                except Exception as e:  # noqa: BLE001 - the reaper never stops the server
                    log.error("connection reaper: %s", type(e).__name__)

        self._thread = threading.Thread(target=run, name="jukinet-conn-reaper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
