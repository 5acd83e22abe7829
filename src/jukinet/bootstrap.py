"""The composition root: one function that assembles an installation of jukinet (ADR 0033).

Every door — the CLI commands, the web application, the prefectural server process with its
intake and outbox, the daily scheduler and the simulators — receives an :class:`Installation`
from :func:`bootstrap` and takes what it needs from it. None of them opens a database, loads a
key or builds a service itself; that happens here and only here, so that the consolidated center
(many prefectures in one process), the replicated cluster (other database URLs) and the national
scale work change *how an installation is put together* in one place.

    with bootstrap(data_dir) as inst:          # config, databases, keys, services
        inst.security.list_operators()
    # the databases are closed here

An installation is made of

* ``config`` — ``DIR/jukinet.toml`` (:class:`jukinet.config.Config`);
* ``registers`` — the engines of the three databases (D1 本人確認情報, D2 附票本人確認情報, admin)
  and the 個人番号 at-rest cipher (:class:`jukinet.store.registers.Registers`);
* ``keyring`` — the operator side's secret keys outside every database (:class:`jukinet.keyring.KeyRing`);
* ``clock`` — the time source (UTC); tests hand in a fixed one;
* the services per 事務, created on first use and shared by every door of the process:
  ``security`` (operators, terminals, sessions, operation log), ``provision`` (事務2/事務4),
  ``disclosure`` (事務3), ``audit`` (A4 monthly analysis, A2 inventory), ``media`` (媒体管理簿, G2/G3) and the intake of 事務1
  (:meth:`Installation.intake_service`) with its outbox worker (:meth:`Installation.outbox_worker`).

>>> import tempfile, pathlib
>>> from jukinet.config import Config
>>> from jukinet.store import provision as store_provision
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> db = store_provision.database_config(d, None)
>>> store_provision.migrate_all(db, d)
>>> with bootstrap(Config(data_dir=d, database=db)) as inst:
...     with inst.registers.juki_uow(write=False) as uow:
...         uow.repo.count()
0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

from jukinet.audit.governance import GovernanceService
from jukinet.audit.incidents import IncidentService
from jukinet.audit.service import AuditService
from jukinet.config import Config
from jukinet.disclosure.service import DisclosureService
from jukinet.intake.service import IntakeService
from jukinet.keyring import KeyRing
from jukinet.media.service import MediaService
from jukinet.outbox.worker import OutboxWorker
from jukinet.provision import catalogue
from jukinet.provision.service import ProvisionService
from jukinet.security.oplog import OperationLog
from jukinet.security.service import Security
from jukinet.store.registers import Registers
from jukinet.store.repository import utcnow

Clock = Callable[[], datetime]


@dataclass(eq=False)
class Installation:
    """One installation (one prefecture's files), assembled by :func:`bootstrap`."""

    config: Config
    registers: Registers
    clock: Clock = utcnow
    #: whether :meth:`close` disposes the registers (False when the caller handed them in)
    owns_registers: bool = True
    _closed: bool = field(default=False, repr=False)

    # ---- keys and the operation log ---------------------------------------------------------

    @cached_property
    def keyring(self) -> KeyRing:
        return KeyRing(self.config.data_dir)

    @cached_property
    def oplog(self) -> OperationLog:
        """The operation log (hash chains of juki, fuhyo and admin; ADR 0009)."""
        return OperationLog(self.keyring, self.config.data_dir)

    # ---- services per 事務, created on first use ------------------------------------------

    @cached_property
    def security(self) -> Security:
        return Security(self.config, self.registers)

    @cached_property
    def provision(self) -> ProvisionService:
        return ProvisionService(self.config, self.registers)

    @cached_property
    def disclosure(self) -> DisclosureService:
        return DisclosureService(self.config, self.registers)

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(self.config, self.registers)

    @cached_property
    def incidents(self) -> IncidentService:
        """The incident register (G4; ADR 0041)."""
        return IncidentService(self.config, self.registers)

    @cached_property
    def governance(self) -> GovernanceService:
        """Self-inspection, internal audit, the contractor's roster and reports (G5; ADR 0041)."""
        return GovernanceService(self.config, self.registers)

    @cached_property
    def media(self) -> MediaService:
        """媒体管理簿 and the virus check of media (G2, G3; ADR 0040)."""
        return MediaService(self.config, self.registers, self.security, clock=self.clock)

    def intake_service(self, on_applied: Optional[Callable[[str], None]] = None) -> IntakeService:
        """The intake of both registers (事務1); one per server process."""
        return IntakeService(self.registers, self.config, on_applied=on_applied)

    def outbox_worker(self, **kw) -> OutboxWorker:
        """The worker that forwards every update to the national servers (ADR 0007)."""
        return OutboxWorker(self.registers, self.config, **kw)

    def ensure_default_catalogue(self) -> int:
        """The shipped requester/affair catalogue unless the installation has one (P1); returns changes."""
        return len(catalogue.ensure_default(self.registers, self.oplog))

    # ---- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if "provision" in self.__dict__:
            self.provision.close()
        if self.owns_registers:
            self.registers.dispose()

    def __enter__(self) -> "Installation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bootstrap(source: Config | Path | str, *, registers: Optional[Registers] = None,
              clock: Clock = utcnow, connections=None) -> Installation:
    """Assemble the installation of a data directory (or of a loaded :class:`Config`).

    ``registers``: already open databases to use (tests, the web app of a running server); they
    are then not closed by :meth:`Installation.close`. Raises :class:`jukinet.errors.JukinetError`
    (``CONFIG_*``) when the data directory has no valid configuration, and the at-rest key errors of
    ADR 0025 when the keys do not match the database. ``connections``: the process's
    :class:`jukinet.store.connpool.ConnectionGovernor` (a consolidated center; ADR 0055).
    """
    config = source if isinstance(source, Config) else Config.load(Path(source))
    owns = registers is None
    return Installation(config=config, registers=registers if registers is not None else Registers(config, connections),
                        clock=clock, owns_registers=owns)
