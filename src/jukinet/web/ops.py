"""運用担当者 (保守委託, A7) doors: the operations status screen and API, ``/metrics``, and the
observability middleware (request log + HTTP metrics) of the whole application (ADR 0026, 0027).

* ``GET /ops`` — 運用状況: databases (reachable, migration head, size, row counts), WAL archiving and
  the replicated cluster (Patroni members, roles, lag, timeline; pgBackRest), outbox, last
  retention run, last backup, scheduler. Dates in 和暦. Counts only: no value of a register.
* ``GET /api/v1/ops/status`` — the same as JSON (terminal + session like every ``/api/v1`` call).
  Both need the permission ``ops`` (運用担当者, システム管理者); a refusal is logged (A4), a view too.
* ``GET /metrics`` — Prometheus text exposition; from a loopback address (``metrics_loopback``) or
  with ``Authorization: Bearer <token>`` (``metrics_token_sha256``). A refusal is logged; a
  granted scrape is counted in the metrics only (a scrape every 15 s would swamp the log).

The middleware (pure ASGI) times every request, labels it with its **route template** (never the
raw path or query), counts it, and writes one ``jukinet.http`` log line with the request id, the
route template, method, status, duration and the operator id when a session was resolved.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid


from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from jukinet import wareki
from jukinet.bootstrap import Installation
from jukinet.observability import logs, metrics
from jukinet.ops import state_metrics
from jukinet.ops import status as S
from jukinet.security.model import Refused
from jukinet.security.oplog import Actor
from jukinet.web import auth as A
from jukinet.web.api_common import ERRORS, api_ctx
from jukinet.web.pages import render, templates

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["運用"], responses=ERRORS)
http_log = logging.getLogger("jukinet.http")

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
UNMATCHED = "<unmatched>"


# ---- middleware -----------------------------------------------------------------------------------

def route_template(scope) -> str:
    """The template of the route that served ``scope`` (``/stats/csv/{source}``), never the path."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    path = getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


class Observe:
    """Request id, request log line and HTTP metrics for every HTTP request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = uuid.uuid4().hex[:16]
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        error = None
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as e:  # noqa: BLE001 - logged by type, then handed on unchanged
            error = e
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "")
            metrics.observe_http(method, route, status["code"], seconds)
            ctx = (scope.get("state") or {}).get("ctx")
            fields = {"method": method, "route": route, "status": status["code"],
                      "duration_ms": round(seconds * 1000, 2),
                      "operator_id": getattr(getattr(ctx, "operator", None), "operator_id", None)}
            if error is not None:
                fields.update(logs.exception_summary((type(error), error, error.__traceback__)))
                http_log.error("http_request_failed", extra={"fields": fields})
            else:
                level = logging.ERROR if status["code"] >= 500 else logging.INFO
                http_log.log(level, "http_request", extra={"fields": fields})
            logs.request_id.reset(token)


# ---- /metrics -------------------------------------------------------------------------------------

def metrics_allowed(request: Request) -> bool:
    obs = request.app.state.config.observability
    host = request.client.host if request.client else ""
    if obs.metrics_loopback and (host in LOOPBACK or host.startswith("127.")):
        return True
    auth = request.headers.get("Authorization", "")
    if obs.metrics_token_sha256 and auth.lower().startswith("bearer "):
        sent = hashlib.sha256(auth[7:].strip().encode("utf-8")).hexdigest()
        return hmac.compare_digest(sent, obs.metrics_token_sha256.strip().lower())
    return False


@router.get("/metrics")
async def metrics_endpoint(request: Request):
    if not metrics_allowed(request):
        err = Refused("METRICS_FORBIDDEN", "メトリクスはローカルホストまたはトークンでのみ取得できます。", status=403)
        await run_in_threadpool(A.security(request).log_refusal, Actor(None, None), "metrics", err)
        return JSONResponse(status_code=403, content={"error": err.as_dict()})
    body = await run_in_threadpool(metrics.exposition, request.app.state.metrics_registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# ---- operations status ----------------------------------------------------------------------------

def _status(request: Request, ctx: A.Ctx, action: str) -> S.OpsStatus:
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "ops", action)
    st = S.collect(request.app.state.registers, request.app.state.config,
                   sched=getattr(request.app.state, "ops_scheduler", None))
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action=action, detail={"ok": st.ok})
    return st


@router.get("/ops")
def ops_page(request: Request):
    ctx = A.context(request)
    st = _status(request, ctx, "ops_status_view")
    return render(request, "ops/index.html", ctx, st=st)


@api.get("/ops/status", summary="運用状況 (件数・容量・時刻のみ; 運用担当者・システム管理者)")
def api_ops_status(request: Request, ctx: A.Ctx = Depends(api_ctx)):
    return _status(request, ctx, "ops_status_api").as_dict()


ROLE_NAMES = {"leader": "リーダー (プライマリ)", "sync_standby": "同期スタンバイ", "replica": "非同期スタンバイ",
              "standby_leader": "スタンバイリーダー"}
DB_NAMES = {"juki": "本人確認情報ファイル (juki)", "fuhyo": "附票本人確認情報ファイル (fuhyo)", "admin": "管理 (admin)"}


def wareki_dt(v) -> str:
    """An instant as 和暦 date and time in JST (令和8年11月26日 22:30:05)."""
    return wareki.to_wareki_time(v)


def bytes_ja(n) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,} バイト"


def duration_ja(seconds) -> str:
    s = int(seconds or 0)
    if s >= 86400:
        return f"{s // 86400}日{(s % 86400) // 3600}時間"
    if s >= 3600:
        return f"{s // 3600}時間{(s % 3600) // 60}分"
    if s >= 60:
        return f"{s // 60}分{s % 60}秒"
    return f"{s}秒"


def install(app: FastAPI, inst: Installation) -> None:
    """Add ``/ops``, ``/api/v1/ops/status``, ``/metrics`` and the observability middleware."""
    templates.env.filters.update(wareki_dt=wareki_dt, bytes_ja=bytes_ja, duration_ja=duration_ja)
    templates.env.globals["DB_NAMES"] = DB_NAMES
    templates.env.globals["EXACT_BELOW"] = S.EXACT_BELOW
    templates.env.globals["ROLE_NAMES"] = ROLE_NAMES
    app.state.metrics_registry = state_metrics.app_registry(
        inst.registers, inst.config, lambda: getattr(app.state, "ops_scheduler", None))
    app.include_router(router)
    app.include_router(api)
    app.add_middleware(Observe)

