"""The daily operations task of ``jukinet serve`` (A8, C1; ADR 0013).

One background thread, started by ``jukinet serve`` beside the web server: once a day at
``retention.daily_at`` (JST) it runs the retention job (:func:`jukinet.retention.run`, every
rule, not a dry run) and logs, as counts, how many municipalities are overdue for a consistency
check (``reconcile.interval_days``; the check itself is started by each CS, PIA 6-①). A failure is
logged by code and tried again the next day; the web server is never affected.

``retention.enabled = false`` turns the daily erasure off (e.g. when an external scheduler runs
``jukinet retention run`` instead).

A second thread writes the daily encrypted backup at ``backup.daily_at`` (A7, ADR 0024) when
``backup.enabled`` and the prefecture's public key is in place; it keeps ``backup.generations``
backups and writes ``DIR/ops/backup-status.json`` after every run.

A third thread makes last month's access-log analysis (A4, ADR 0028) when ``audit.monthly_report``:
a minute after the start (catching up a 1st the server was down on) and every day at
``audit.monthly_report_at`` (JST) it generates the due month's report unless the month has one
(:func:`jukinet.audit.monthly.run`); the outcome is on the operations status.

At its start and daily at ``audit.checkpoint_at`` (JST) it records a MAC'd checkpoint of every
operation-log chain (A4, ADR 0031; :func:`jukinet.security.checkpoints.take`), so a log deleted
whole is found by ``jukinet audit verify`` without anyone having to remember a command.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Callable, Iterator, Optional

from jukinet import retention
from jukinet.audit import monthly
from jukinet.backup.service import scheduled_backup
from jukinet.bootstrap import Installation, bootstrap
from jukinet.config import Config
from jukinet.reconcile.service import due_status, known_municipalities
from jukinet.retention import next_run_after
from jukinet.security import checkpoints
from jukinet.store.repository import utcnow

log = logging.getLogger("jukinet.ops")


class OpsScheduler:
    """The daily jobs of one installation. A door: ``jukinet serve`` hands it the installation it
    serves (:mod:`jukinet.bootstrap`); given only a :class:`Config` (and perhaps open ``registers``)
    it assembles the installation for each run and closes it afterwards."""

    def __init__(self, installation: Installation | Config, *, clock: Callable[[], datetime] = utcnow,
                 registers=None, monthly_delay: float = 60.0, gate=None):
        """``gate``: a lock (a semaphore) shared by the schedulers of a center's tenants, held during
        the backup and the monthly analysis so that they run one tenant at a time (their connections
        to the cluster stay bounded; ADR 0055)."""
        self.gate = gate if gate is not None else nullcontext()
        self.installation = installation if isinstance(installation, Installation) else None
        self.config = installation.config if self.installation is not None else installation
        self.monthly_delay = monthly_delay
        self._monthly_thread: Optional[threading.Thread] = None
        self.monthly_outcome: Optional[str] = None
        self.clock = clock
        self._registers = registers
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._backup_thread: Optional[threading.Thread] = None
        self.runs = 0
        self.backup_runs = 0
        #: shown on the operations status (A7): when the last run ended and how ("ok" or an error code)
        self.last_run_at: Optional[datetime] = None
        self.last_outcome: Optional[str] = None
        self._checkpoint_thread: Optional[threading.Thread] = None
        #: A4 (ADR 0031): the last automatic checkpoint — when, and "ok" or the codes of chains not recorded
        self.checkpoint_at: Optional[datetime] = None
        self.checkpoint_outcome: Optional[str] = None

    def start(self) -> "OpsScheduler":
        self.run_checkpoint_once("start")
        self._checkpoint_thread = threading.Thread(target=self._loop, args=(self.config.audit.checkpoint_at,
                                                                            self.run_checkpoint_once),
                                                   name="jukinet-checkpoint", daemon=True)
        self._checkpoint_thread.start()
        if self.config.retention.enabled:
            self._thread = threading.Thread(target=self._loop, name="jukinet-ops", daemon=True)
            self._thread.start()
        if self.config.backup.enabled:
            self._backup_thread = threading.Thread(target=self._loop, args=(self.config.backup.daily_at,
                                                                            self.run_backup_once),
                                                   name="jukinet-backup", daemon=True)
            self._backup_thread.start()
        if self.config.audit.monthly_report:
            self._monthly_thread = threading.Thread(target=self._monthly_loop, name="jukinet-monthly", daemon=True)
            self._monthly_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._backup_thread, self._monthly_thread, self._checkpoint_thread):
            if t is not None:
                t.join(10)

    def _loop(self, daily_at: Optional[str] = None, job: Optional[Callable[[], object]] = None) -> None:
        while not self._stop.is_set():
            due = next_run_after(self.clock(), daily_at or self.config.retention.daily_at)
            wait = max(0.0, (due - self.clock()).total_seconds())
            if self._stop.wait(min(wait, 3600.0)):
                return
            if self.clock() >= due:
                (job or self.run_once)()

    def _monthly_loop(self) -> None:
        if self._stop.wait(self.monthly_delay):
            return
        self.run_monthly_once()
        self._loop(self.config.audit.monthly_report_at, self.run_monthly_once)

    @contextmanager
    def _open(self) -> Iterator[Installation]:
        if self.installation is not None:
            yield self.installation
            return
        with bootstrap(self.config, registers=self._registers, clock=self.clock) as inst:
            yield inst

    def run_monthly_once(self):
        """Last month's access-log analysis unless it exists (A4); never raises."""
        with self.gate, self._open() as inst:
            result = monthly.run(self.config, inst.registers, now=self.clock())
            self.monthly_outcome = f"{result.month}: {result.outcome}"
            return result

    def run_checkpoint_once(self, source: str = "daily") -> list:
        """A MAC'd checkpoint of every operation-log chain (A4); never raises."""
        try:
            with self._open() as inst:
                taken = checkpoints.take_for(self.config, inst.registers, source=source)
        except Exception as e:  # noqa: BLE001 - reported by code; tried again tomorrow
            taken = [checkpoints.Taken(c, code=getattr(e, "code", None) or type(e).__name__) for c in checkpoints.CHAINS]
        self.checkpoint_at = self.clock()
        bad = [f"{t.chain}:{t.code}" for t in taken if not t.ok]
        self.checkpoint_outcome = "ok" if not bad else " ".join(bad)
        return taken

    def run_backup_once(self):
        """The daily encrypted backup (A7); never raises (failures: status file and log, by code)."""
        try:
            with self.gate:
                return scheduled_backup(self.config, clock=self.clock)
        finally:
            self.backup_runs += 1

    def run_once(self) -> None:
        """Retention (every rule) and the overdue-check count; never raises."""
        try:
            with self._open() as inst:
                self._daily(inst.registers)
        except Exception as e:  # noqa: BLE001 - reported by code; tried again tomorrow
            log.error("daily operations failed: %s", getattr(e, "code", type(e).__name__))
            self.last_outcome = getattr(e, "code", type(e).__name__)
        finally:
            self.runs += 1
            self.last_run_at = self.clock()

    def _daily(self, registers) -> None:
        reports = retention.run(registers, clock=self.clock)
        log.info("daily retention: %s", ", ".join(f"{r.rule}={r.status}:{r.erased}" for r in reports))
        self.last_outcome = "ok" if all(r.status != "failed" for r in reports) else "RETENTION_RULE_FAILED"
        for register in ("juki", "fuhyo"):
            due = due_status(registers, register, known_municipalities(registers, register),
                             interval_days=self.config.reconcile.interval_days, now=self.clock())
            overdue = sum(d.due for d in due)
            if overdue:
                log.warning("consistency checks overdue: register=%s municipalities=%d", register, overdue)
