"""The operator side of the application, put together: the page routers (:mod:`jukinet.web.signin`,
:mod:`~jukinet.web.search`, :mod:`~jukinet.web.roster`, :mod:`~jukinet.web.oplog`), the terminal API,
static files and fonts, and what every operator-side answer shares — refusals rendered as pages or
coded JSON, validation errors that name the field and never the value, security headers and
``Cache-Control: no-store``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

from jukinet.bootstrap import Installation
from jukinet.errors import JukinetError
from jukinet.security.model import Refused
from jukinet.web import api_auth, api_roster, api_search, help_screen, oplog, roster, safety, search, signin
from jukinet.web import auth as A
from jukinet.web.asgi import HttpMiddleware
from jukinet.web.pages import HERE, _redirect, message

router = APIRouter(include_in_schema=False)


# ---- fonts ---------------------------------------------------------------------------------------

@router.get("/fonts/ipamjm.ttf")
def font(request: Request):
    """IPAmj明朝 (fonts-ipamj-mincho) from the system path, for 外字 (D4). Not personal data: cacheable."""
    path = Path(A.security(request).cfg.font_path)
    if not path.is_file():
        return safety.http_refusal(404)
    return FileResponse(path, media_type="font/ttf", headers={"Cache-Control": "public, max-age=604800"})


# ---- wiring ------------------------------------------------------------------------------------

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders(HttpMiddleware):
    """Cache and browser-security headers on every answer (``no-store`` except static files and
    fonts, CSP except the API docs, frame / sniffing / referrer policies).

    Plain ASGI, not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs each request
    through a task group and memory streams, ≈ 10 % of the server's CPU for a 異動通知 (ADR 0063)."""

    async def http(self, scope, receive, send):
        path = scope["path"]
        no_store = not (path.startswith("/static/") or path.startswith("/fonts/"))
        csp = not (path.startswith("/docs") or path.startswith("/redoc"))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if no_store:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                if csp:
                    headers.setdefault("Content-Security-Policy", _CSP)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, inst: Installation) -> None:
    """Add the operator UI, its terminal API, static files and the refusal handling to ``app``."""
    app.state.security = inst.security
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    for page in (signin, search, roster, oplog, help_screen):
        app.include_router(page.router)
    for mod in (api_auth, api_search, api_roster):
        app.include_router(mod.router)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused):
        if A.is_api(request):
            return JSONResponse(status_code=exc.status, content={"error": exc.as_dict()},
                                headers={"Cache-Control": "no-store"})
        if exc.code == "SESSION_IDLE":
            return _redirect(request, "/lock")
        if exc.code in ("AUTH_REQUIRED", "SESSION_INVALID", "SESSION_EXPIRED", "SESSION_TERMINAL_MISMATCH"):
            if request.url.path.startswith("/auth/"):
                return JSONResponse(status_code=exc.status, content={"error": exc.as_dict()})
            return _redirect(request, "/login")
        if request.url.path.startswith("/auth/"):
            return JSONResponse(status_code=exc.status, content={"error": exc.as_dict()})
        ctx = getattr(request.state, "ctx", None)
        return message(request, "操作できません", exc.message, code=exc.code, status=exc.status, ctx=ctx,
                       link="/" if ctx else "/login", link_text="メニューへ" if ctx else "ログイン画面へ")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        """Terminal API: say which field is wrong, never echo the value (it may be personal data)."""
        if not A.is_api(request):
            return safety.validation_refusal(exc)
        fields = [".".join(str(x) for x in e.get("loc", ()) if x != "body") for e in exc.errors()]
        ctx = getattr(request.state, "ctx", None)
        actor = ctx.actor if ctx else A.Actor(None, A.terminal_id(request))
        A.security(request).log_refusal(actor, A.action_name(request), JukinetError("INPUT_INVALID", ""),
                                        detail={"fields": ",".join(fields)[:200]})
        return JSONResponse(status_code=422, headers={"Cache-Control": "no-store"}, content={"error": {
            "code": "INPUT_INVALID", "message": "入力の形式が正しくありません。", "field": ",".join(fields)}})

    app.add_middleware(SecurityHeaders)
