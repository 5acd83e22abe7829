"""The FastAPI application of 都道府県サーバ / 附票都道府県サーバ.

For now it serves the health endpoint; the CS intake API, the operator UI and the API for other
bodies' terminals are added as routers by their rooms. Errors are returned as
``{"error": {"code": …, "message": …}}`` with no personal data.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from jukinet import __version__
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.ops import status as ops_status
from jukinet.store import migrate
from jukinet.store.registers import Registers
from jukinet.web import safety
from jukinet.web.kojin_bango import router as kojin_bango_router


def create_app(config: Config, registers: Registers | None = None) -> FastAPI:
    registers = registers or Registers(config)
    app = FastAPI(title="jukinet 都道府県サーバ", version=__version__)
    app.state.config = config
    app.state.registers = registers

    @app.exception_handler(JukinetError)
    async def _refused(_request: Request, exc: JukinetError):
        return JSONResponse(status_code=400, content={"error": exc.as_dict()})

    safety.install(app)  # Q2: an unexpected exception is a coded JSON answer, never text/plain

    from jukinet.intake.api import router as intake_router  # 事務1: the CS channel (mutual TLS)

    app.include_router(intake_router)
    from jukinet.reconcile.http import router as reconcile_router  # 事務6: consistency checks on the CS channel

    app.include_router(reconcile_router)

    @app.get("/health", tags=["運用"])
    def health() -> JSONResponse:
        """Liveness and readiness: each register database answers and is at the migration head."""
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
            except Exception:  # noqa: BLE001 - health reports, never raises
                ok = False
                registers_status[register] = {"reachable": False}
            if not ok:
                status = "degraded"
        return JSONResponse(status_code=200 if status == "ok" else 503,
                            content={"status": status, "version": __version__, "registers": registers_status})

    from jukinet.web.ui import install as install_operator_side  # operator UI, terminal API, static, fonts

    install_operator_side(app, config, registers)

    from jukinet.web.provision import install as install_provision  # 事務2/事務4: provision screens and API

    install_provision(app, config, registers)
    from jukinet.web.disclosure import install as install_disclosure  # 事務3: disclosure, corrections, forms

    install_disclosure(app, config, registers)
    app.include_router(kojin_bango_router)  # A3: 個人番号 shown in full only as a logged action
    from jukinet.web.stats import router as stats_router  # A9: statistics screen (counts only)

    app.include_router(stats_router)
    from jukinet.web.audit_reports import router as audit_router  # A4 monthly analysis, A2 inventory

    app.include_router(audit_router)
    from jukinet.web.ops import install as install_ops  # A7: operations status, /metrics, request log + metrics

    install_ops(app, config, registers)

    return app
