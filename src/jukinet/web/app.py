"""The FastAPI application of 都道府県サーバ / 附票都道府県サーバ.

A door: :func:`create_app` receives the installation from :mod:`jukinet.bootstrap` and puts it,
its config, registers and services on ``app.state`` for the routers of each room (the CS intake
API, the operator UI, the API for other bodies' terminals, the health endpoint). Errors are returned as
``{"error": {"code": …, "message": …}}`` with no personal data.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from jukinet import __version__
from jukinet.bootstrap import Installation, bootstrap
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.intake.api import router as intake_router
from jukinet.ops import status as ops_status
from jukinet.reconcile.http import router as reconcile_router
from jukinet.disclosure.reports import router as municipal_reports_router
from jukinet.store import migrate
from jukinet.store.faults import StorageUnavailable
from jukinet.store.registers import Registers
from jukinet.store.seed_state import SEEDED, seed_state
from jukinet.web import safety, transport_security
from jukinet.web.audit_reports import router as audit_router
from jukinet.web.disclosure import install as install_disclosure
from jukinet.web.governance import router as governance_router
from jukinet.web.jobs import router as jobs_router
from jukinet.web.kojin_bango import router as kojin_bango_router
from jukinet.web.media import router as media_router
from jukinet.web.ops import install as install_ops
from jukinet.web.provision import install as install_provision
from jukinet.web.stats import router as stats_router
from jukinet.web.ui import install as install_operator_side


def create_app(installation: Installation | Config, registers: Registers | None = None) -> FastAPI:
    """The application of one installation (from :func:`jukinet.bootstrap.bootstrap`; a
    :class:`Config`, with or without open ``registers``, is assembled into one here)."""
    inst = installation if isinstance(installation, Installation) else bootstrap(installation, registers=registers)
    config, registers = inst.config, inst.registers
    app = FastAPI(title="jukinet 都道府県サーバ", version=__version__)
    app.state.installation = inst
    app.state.config = config
    app.state.registers = registers

    @app.exception_handler(JukinetError)
    async def _refused(_request: Request, exc: JukinetError):
        if isinstance(exc, StorageUnavailable):   # a full disk, a read-only database: 503, retry (ADR 0038)
            return safety.storage_refusal()
        return JSONResponse(status_code=400, content={"error": exc.as_dict()})

    safety.install(app)  # Q2: an unexpected exception is a coded JSON answer, never text/plain
    app.include_router(intake_router)

    app.include_router(reconcile_router)
    app.include_router(municipal_reports_router)   # O5: 通報 to the municipality's CS (ADR 0039)

    @app.get("/health", tags=["運用"])
    def health() -> JSONResponse:
        """Liveness and readiness: each register database answers, is at the migration head and holds no
        seed in progress (``SEED_IN_PROGRESS``, issue 16)."""
        status, registers_status = "ok", {}
        for register in migrate.STORES:
            engine = registers.engine(register)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                rev = migrate.current_revision(engine)
                head = ops_status.head_revision(register, engine)  # read once per process (ADR 0027)
                ok = rev == head
                registers_status[register] = {"reachable": True, "schema": rev, "up_to_date": ok}
                seed = seed_state(register, engine) if ok and register in SEEDED else None
                if seed is not None and not seed.complete:   # issue 16: a seed running or interrupted
                    ok = False
                    registers_status[register]["seed"] = {"code": "SEED_IN_PROGRESS", **seed.as_dict()}
            except Exception:  # noqa: BLE001 - health reports, never raises
                ok = False
                registers_status[register] = {"reachable": False}
            if not ok:
                status = "degraded"
        return JSONResponse(status_code=200 if status == "ok" else 503,
                            content={"status": status, "version": __version__, "registers": registers_status})

    install_operator_side(app, inst)        # operator UI, terminal API, static, fonts
    install_provision(app, inst)            # 事務2/事務4: provision screens and API
    install_disclosure(app, inst)           # 事務3: disclosure, corrections, forms
    app.include_router(kojin_bango_router)  # A3: 個人番号 shown in full only as a logged action
    app.include_router(stats_router)        # A9: statistics screen (counts only)
    app.include_router(audit_router)        # A4 monthly analysis, A2 inventory
    app.include_router(governance_router)   # G4 incidents, G5 inspections, contractor, witnessed maintenance
    app.include_router(jobs_router)         # long work in the background: progress, result (issue 19)
    app.include_router(media_router)        # G2/G3: 媒体管理簿, weekly check, approvals, virus checks
    install_ops(app, inst)                  # A7: operations status, /metrics, request log + metrics
    transport_security.install(app, config)  # outermost: HSTS on every TLS response (ADR 0031)

    return app
