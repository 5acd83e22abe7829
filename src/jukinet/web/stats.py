"""The statistics screen (統計, A9): counts with server-rendered charts, CSV and SVG downloads.

Who may see it: 管理責任者 (manager), 監査者 (auditor) and 運用担当者 (operations) — the counts hold
no personal data, so the operations contractor may read them too (A7). Everyone else is refused
with ``FORBIDDEN``, and the refusal is written to the operation log like every refusal of the
operator side (A4); each view and each download is logged as granted, with the period only.

* ``GET /stats?from=YYYY-MM&to=YYYY-MM`` (or ``fy=2026``; default: the last 12 months) — the page:
  summary, charts (SVG as ``<img>`` data URIs, so the page's CSP needs no inline styles), the
  tables beside them.
* ``GET /stats/csv/{source}`` — one source as CSV (UTF-8 with BOM), same period parameters.
* ``GET /stats/svg/{chart}`` — one chart as an SVG file.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from jukinet.errors import JukinetError
from jukinet.ops import stats_report
from jukinet.ops.statistics import Period, collect, sources, with_names
from jukinet.security.model import FORBIDDEN
from jukinet.web import auth as A
from jukinet.web.pages import render

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
#: roles that may read statistics (counts only, no personal data)
STATS_ROLES = frozenset({"manager", "auditor", "operations"})


def _ctx(request: Request, action: str) -> A.Ctx:
    ctx = A.context(request)
    if ctx.operator.status != "active" or not set(ctx.operator.roles) & STATS_ROLES:
        raise A.security(request).refuse(ctx.actor, action, FORBIDDEN, detail={"permission": "stats"})
    return ctx


def _log(request: Request, ctx: A.Ctx, action: str, detail: dict) -> None:
    sec = A.security(request)
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action=action, detail=detail)


def _period(request: Request) -> Period:
    q = request.query_params
    fy = q.get("fy")
    if fy:
        if not fy.isdigit() or not 1900 <= int(fy) <= 2999:
            raise JukinetError("STATS_PERIOD_INVALID", "年度は西暦4桁で指定してください。", field="fy")
        return Period.fiscal_year(int(fy))
    start, end = q.get("from") or None, q.get("to") or None
    if start or end:
        return Period(start or end, end or start)
    return Period.last_months(12)


#: the charts of the last few (period, counts): drawing them (matplotlib) takes about a second and a
#: half, the counts behind them change only when the registers do — a chart is a pure function of the
#: counts, so equal counts give the same SVG (issue 19, ADR 0048: p95 ≤ 100 ms). Counts only, no
#: personal data; bounded.
_CHARTS: OrderedDict[str, dict] = OrderedDict()
_CHARTS_LOCK = threading.Lock()


def _charts(tables: dict, period: Period) -> dict:
    key = hashlib.sha256(repr((period.start, period.end, period.label(),
                               sorted((n, t.columns, t.rows, t.available, t.note) for n, t in tables.items())))
                         .encode("utf-8")).hexdigest()
    with _CHARTS_LOCK:
        if key in _CHARTS:
            _CHARTS.move_to_end(key)
            return _CHARTS[key]
    charts = {name: (title, svg, _svg_uri(svg)) for name, (title, svg) in stats_report.charts(tables, period).items()}
    with _CHARTS_LOCK:
        _CHARTS[key] = charts
        while len(_CHARTS) > 16:
            _CHARTS.popitem(last=False)
    return charts


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


@router.get("/stats")
async def stats_page(request: Request):
    ctx = _ctx(request, "stats_view")
    error = None
    try:
        period = _period(request)
    except JukinetError as e:
        error, period = e, Period.last_months(12)
    registers = request.app.state.registers
    tables = await run_in_threadpool(collect, registers, period)
    views = stats_report.views(tables, period)
    charts = await run_in_threadpool(_charts, tables, period)
    await run_in_threadpool(_log, request, ctx, "stats_view", {"from": period.start, "to": period.end})
    ups = [t for n, t in tables.items() if n.startswith("updates_")]
    summary = {
        "updates_juki": tables["updates_juki"].total() if "updates_juki" in tables else 0,
        "updates_fuhyo": tables["updates_fuhyo"].total() if "updates_fuhyo" in tables else 0,
        "checks": sum(r[4] for r in tables["consistency"].rows) if "consistency" in tables else 0,
        "differences": sum(r[6] for r in tables["consistency"].rows) if "consistency" in tables else 0,
    }
    query = f"from={period.start}&to={period.end}"
    return render(request, "stats/index.html", ctx, period=period, views={v.name: v for v in views},
                  charts=[(name, title, uri) for name, (title, _svg, uri) in charts.items()],
                  tables=tables, summary=summary, query=query, error=error, has_updates=bool(ups),
                  sources=sources())


def _download(body: bytes, filename: str, media: str) -> Response:
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@router.get("/stats/csv/{source}")
async def stats_csv(source: str, request: Request):
    ctx = _ctx(request, "stats_export")
    period = _period(request)
    if source not in sources():
        raise JukinetError("STATS_SOURCE_UNKNOWN", "指定された統計がありません。")
    tables = await run_in_threadpool(collect, request.app.state.registers, period, [source])
    await run_in_threadpool(_log, request, ctx, "stats_export",
                            {"source": source, "format": "csv", "from": period.start, "to": period.end})
    body = with_names(tables[source]).to_csv().encode("utf-8-sig")
    return _download(body, f"{source}_{period.start}_{period.end}.csv", "text/csv; charset=utf-8")


@router.get("/stats/svg/{chart}")
async def stats_svg(chart: str, request: Request):
    ctx = _ctx(request, "stats_export")
    period = _period(request)
    tables = await run_in_threadpool(collect, request.app.state.registers, period)
    charts = await run_in_threadpool(_charts, tables, period)
    if chart not in charts:
        raise JukinetError("STATS_SOURCE_UNKNOWN", "指定されたグラフがありません。")
    await run_in_threadpool(_log, request, ctx, "stats_export",
                            {"chart": chart, "format": "svg", "from": period.start, "to": period.end})
    return _download(charts[chart][1].encode("utf-8"), f"{chart}_{period.start}_{period.end}.svg", "image/svg+xml")


@router.get("/stats/stats.css")
def stats_css():
    """The page's own styles (served from here: the CSP allows 'self' stylesheets, no inline ones)."""
    return Response((HERE / "templates" / "stats" / "stats.css").read_text(encoding="utf-8"),
                    media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})
