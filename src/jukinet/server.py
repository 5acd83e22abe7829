"""The prefectural server process: HTTPS (mutual TLS on the CS endpoints) + the outbox worker.

A door: it receives the installation from :mod:`jukinet.bootstrap` and serves the web
application of :mod:`jukinet.web.app` on it.

``jukinet serve`` runs :class:`PrefectureServer` in the foreground; the demo and the tests run it
in a thread. TLS handshakes refused by the TLS layer (unknown CA, expired certificate) never reach
the application; they are written to the communication log by a small background writer fed from
:mod:`jukinet.intake.transport` (the TLS layer must not wait for a database).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Optional

from jukinet import pki
from jukinet.bootstrap import Installation, bootstrap
from jukinet.config import Config
from jukinet.intake import transport
from jukinet.intake.service import IntakeService
from jukinet.pki.crl import RevocationChecker
from jukinet.store.registers import Registers
from jukinet.store.seed_state import require_seed_complete
from jukinet.web.app import create_app

log = logging.getLogger("jukinet.server")


def ensure_pki(config: Config) -> None:
    """The development PKI, if the config names files that do not exist yet (no-op in production)."""
    pki.ensure_dev_pki(config.tls, config.data_dir, config.prefecture_code,
                       hosts=sorted({config.server.host, config.national.host, "127.0.0.1", "localhost"}))


class _HandshakeLog:
    """Writes refused TLS handshakes to the juki register's communication log, off the event loop."""

    def __init__(self, service: IntakeService):
        self.service = service
        self.q: "queue.Queue[Optional[str]]" = queue.Queue(maxsize=10000)
        self.thread = threading.Thread(target=self._run, name="jukinet-tls-log", daemon=True)
        self.thread.start()

    def hook(self, code: str, _peer) -> None:
        try:
            self.q.put_nowait(code)
        except queue.Full:  # pragma: no cover - a flood of bad handshakes; counted, not stored
            log.warning("TLS refusal log queue full")

    def _run(self) -> None:
        while True:
            code = self.q.get()
            if code is None:
                return
            try:
                self.service.record_refusal(peer="unknown", code=code)
            except Exception as e:  # noqa: BLE001
                log.error("TLS refusal not recorded: %s", type(e).__name__)
            finally:
                self.q.task_done()

    def flush(self) -> None:
        self.q.join()

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(5)


class PrefectureServer:
    """The FastAPI app on HTTPS, the outbox worker, and the TLS refusal log, started together."""

    def __init__(self, installation: Installation | Config, registers: Optional[Registers] = None, *,
                 outbox: Optional[bool] = None, log_level: str = "warning"):
        """``installation``: from :func:`jukinet.bootstrap.bootstrap` (a :class:`Config`, with or
        without open ``registers``, is assembled into one here)."""
        inst = installation if isinstance(installation, Installation) else bootstrap(installation, registers=registers)
        config = inst.config
        # issue 16: never serve a register whose seed is running or was interrupted (SEED_IN_PROGRESS)
        try:
            require_seed_complete(inst.registers, str(config.data_dir))
        except BaseException:
            if not isinstance(installation, Installation):
                inst.close()
            raise
        ensure_pki(config)
        self.installation = inst
        self._owns_installation = not isinstance(installation, Installation)
        self.config = config
        self.registers = inst.registers
        self.app = create_app(inst)
        run_outbox = config.intake.outbox_worker if outbox is None else outbox
        self.worker = inst.outbox_worker() if run_outbox else None
        self.app.state.outbox_wake = self.worker.wake if self.worker else None
        self.intake = inst.intake_service(on_applied=self.app.state.outbox_wake)
        self.app.state.intake = self.intake
        self.tls_log = _HandshakeLog(self.intake)
        tls = config.tls
        ctx = None
        if tls.enabled:
            # the CRLs the CS endpoints check (ADR 0030), read now so a bad CRL is logged at start
            self.app.state.revocation = RevocationChecker(config)
            self.app.state.revocation.refresh(force=True)
            self.app.state.revocation.watch()
            ctx = pki.server_context(config.resolve(tls.server_cert), config.resolve(tls.server_key),
                                     config.resolve(tls.ca_cert), client_cert="optional",
                                     sslobject_class=transport.recording_class(self.tls_log.hook))
        # port N: HTTPS for everyone (the CS must show a certificate); on a loopback address also plain
        # HTTP for a local operator browser (ADR 0005)
        self.server = transport.make_server(self.app, config.server.host, config.server.port, ctx,
                                            log_level=log_level, plain_http_on_loopback=True)
        self._thread: Optional[transport.ServerThread] = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.config.tls.enabled else "http"
        return f"{scheme}://{self.config.server.host}:{self.config.server.port}"

    def _start_worker(self) -> None:
        if self.worker is not None:
            self.worker.start()

    def run(self) -> None:
        """Foreground (``jukinet serve``): returns after Ctrl-C / SIGTERM."""
        self._start_worker()
        try:
            self.server.run()
        finally:
            self.close()

    def start(self) -> "PrefectureServer":
        self._thread = transport.ServerThread(self.server).start()
        self._start_worker()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        self.close()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        checker = getattr(self.app.state, "revocation", None)
        if checker is not None:
            checker.stop()
        self.tls_log.close()
        if self._owns_installation:
            self.installation.close()
