"""Screens of the audit room: the monthly access-log analysis with the manager's sign-off (A4;
ADR 0022) and the annual roster inventory (A2; ADR 0023).

* ``GET /audit/reports`` — the last 12 months: report digest, flag counts, sign-off (管理責任者;
  read-only for 監査者).
* ``POST /audit/reports/generate`` — (管理責任者) render the month's report, fix its SHA-256, show
  the flags and the sign-off form.
* ``POST /audit/reports/download`` — PDF or CSV (管理責任者, 監査者); POST, so nothing is in a URL.
* ``POST /audit/reports/signoff`` — (管理責任者) record the sign-off of the version shown; refused
  (``AUDIT_REPORT_CHANGED``) when the report no longer has that digest.
* ``GET /roster/inventory`` — (システム管理者) the findings, the last confirmation (warned when older
  than a year); ``POST /roster/inventory`` confirms with a disposition per finding;
  ``POST /roster/inventory/csv`` exports the findings; ``POST /roster/operators/{id}/watch`` records
  the address prefix used by flag (d).

Every view, download, generation, sign-off and refusal is in the operation log.
"""

from __future__ import annotations

import asyncio
import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from jukinet import wareki
from jukinet.audit import analysis as an
from jukinet.audit import inventory as inv
from jukinet.audit import report as rp
from jukinet.audit.service import ACTIONS, DECISIONS, FLAG_DISPOSITIONS, AuditService, parse_month
from jukinet.errors import JukinetError
from jukinet.security import training as TR
from jukinet.store.tables_audit import audit_watch
from jukinet.web import auth as A
from jukinet.web import jobs
from jukinet.web.pages import ctx_post, render, see_other, shown, templates

router = APIRouter(include_in_schema=False)


def wareki_time(v) -> str:
    """A stored UTC time as 和暦 date + JST time (令和8年11月26日 09:15)."""
    if v in (None, ""):
        return ""
    return wareki.to_wareki_time(v, seconds=False)


def _install_filter() -> None:
    templates.env.filters.setdefault("wareki_time", wareki_time)


def _svc(request: Request) -> AuditService:
    return request.app.state.installation.audit


def _inv(request: Request) -> inv.InventoryService:
    st = request.app.state
    if not hasattr(st, "inventory"):
        st.inventory = inv.InventoryService(st.config, st.registers, A.security(request).oplog)
    return st.inventory


def _log(request: Request, ctx: A.Ctx, action: str, detail: dict, result_count: int | None = None) -> None:
    sec = A.security(request)
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action=action, detail=detail, result_count=result_count)


def _render(request: Request, name: str, ctx: A.Ctx, status: int = 200, **kw):
    _install_filter()
    return render(request, name, ctx, status=status, KINDS=an.KINDS, DECISIONS=DECISIONS,
                  FLAG_DISPOSITIONS=FLAG_DISPOSITIONS, INV_KINDS=inv.KINDS, DISPOSITIONS=inv.DISPOSITIONS,
                  ACTIONS=ACTIONS, **kw)


def _month(request: Request, ctx: A.Ctx, form, action: str):
    try:
        return parse_month(form.get("month"))
    except JukinetError as e:
        A.security(request).log_refusal(ctx.actor, action, e)
        raise


async def _post(request: Request, permission: str, action: str):
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, permission, action)
    return ctx, form


# ---- monthly analysis (A4) -------------------------------------------------------------------------

async def _list(request: Request, ctx: A.Ctx, *, error=None, notice=None, status=200, error_form=None, f=None):
    months = await run_in_threadpool(_svc(request).months)
    actions = await run_in_threadpool(_svc(request).actions)
    return _render(request, "audit/reports.html", ctx, months=months, actions=actions, error=error, notice=notice,
                   status=status, error_form=error_form, f=f or {})


@router.get("/audit/reports")
async def reports(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "audit_report_view", "audit_reports_view")
    await run_in_threadpool(_log, request, ctx, "audit_reports_view", {})
    return await _list(request, ctx, **shown(request, ctx))


@router.post("/audit/reports/generate")
async def generate(request: Request):
    ctx, form = await _post(request, "audit_report", "audit_report")
    try:
        month = _month(request, ctx, form, "audit_report")
    except JukinetError as e:
        return await _list(request, ctx, error=e, status=400)
    svc, actor = _svc(request), ctx.actor
    # in the background with a progress display by stage; the result page is a GET (issue 19, ADR 0048)
    return jobs.start(request, ctx, title=f"操作ログ月次分析 ({wareki.to_wareki_month(month.key)})",
                      back="/audit/reports", unit="段階",
                      work=lambda job: svc.generate(actor, month, progress=job.progress), finish=_generated)


def _generated(request: Request, ctx: A.Ctx, job: jobs.Job):
    if job.error is not None:
        return _render(request, "message.html", ctx, status=400, heading="報告書を作成できませんでした",
                       message=job.error.message, code=job.error.code, error=True, link="/audit/reports",
                       link_text="操作ログ月次分析へ")
    g = job.result
    return _render(request, "audit/report.html", ctx, g=g, signoffs=_svc(request).signoffs(g.month.key),
                   name_of=lambda op: rp._name(op, g.names), action_label=rp.action_label)


@router.post("/audit/reports/download")
async def download(request: Request):
    ctx, form = await _post(request, "audit_report_view", "audit_report_download")
    fmt = form.get("format") or "pdf"
    try:
        month = _month(request, ctx, form, "audit_report_download")
        if fmt not in ("pdf", "csv"):
            raise JukinetError("AUDIT_FORMAT_INVALID", "形式は PDF か CSV を指定してください。", field="format")
    except JukinetError as e:
        return await _list(request, ctx, error=e, status=400)
    svc = _svc(request)
    _a, _names, pdf, csv = await run_in_threadpool(svc.render, month)
    body = pdf if fmt == "pdf" else csv
    await run_in_threadpool(_log, request, ctx, "audit_report_download",
                            {"month": month.key, "format": fmt, "sha256": hashlib.sha256(body).hexdigest()})
    media = "application/pdf" if fmt == "pdf" else "text/csv; charset=utf-8"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit-{month.key}.{fmt}"', "Cache-Control": "no-store"})


@router.post("/audit/reports/signoff")
async def signoff(request: Request):
    ctx, form = await _post(request, "audit_report", "audit_signoff")
    svc = _svc(request)
    notes = {k[5:]: v for k, v in form.items() if k.startswith("note_") and v}
    try:
        month = _month(request, ctx, form, "audit_signoff")
        await run_in_threadpool(lambda: svc.sign_off(ctx.actor, month, form.get("pdf_sha256") or "",
                                                     decision=form.get("decision") or "",
                                                     comment=form.get("comment") or "", flag_notes=notes))
    except JukinetError as e:
        A.security(request).log_refusal(ctx.actor, "audit_signoff", e,
                                        detail={"month": (form.get("month") or "")[:7]})
        return await _list(request, ctx, error=e, status=409 if e.code == "AUDIT_REPORT_CHANGED" else 400)
    return see_other(request, ctx, "/audit/reports", notice=f"{month.key} の報告書の確認を記録しました。")


@router.post("/audit/reports/actions")
async def improper_action(request: Request):
    """G1: link a flag of a month's report to the action taken (管理責任者; refusals logged by the service)."""
    ctx, form = await _post(request, "audit_report", "improper_action")
    svc = _svc(request)
    try:
        flag_no = int(form.get("flag_no") or "0")
    except ValueError:
        flag_no = 0
    try:
        await run_in_threadpool(lambda: svc.record_action(
            ctx.actor, form.get("month") or "", flag_no, (form.get("operator_id") or "").strip(),
            form.get("kind") or "", taken_on=form.get("taken_on") or "", note=form.get("note") or ""))
    except JukinetError as e:
        f = {k: form.get(k) or "" for k in ("month", "flag_no", "operator_id", "kind", "taken_on", "note")}
        return await _list(request, ctx, error=e, status=400, error_form="action", f=f)
    return see_other(request, ctx, "/audit/reports", notice="フラグへの対応を記録しました。")


# ---- annual inventory (A2) --------------------------------------------------------------------------

async def _inventory_page(request: Request, ctx: A.Ctx, *, error=None, notice=None, status=200, log=None):
    """The inventory page. Its reads (the findings over the three chains, the history, the watch list,
    the actions, the 年度's inspections) — and ``log``, the view's log entry — are independent of each
    other: they run side by side in the thread pool, so the page waits for the slowest, not for the sum
    of about twenty round trips (issue 19, ADR 0052). Any failure (the log entry included) fails the page."""
    svc = _inv(request)
    gov = request.app.state.installation.governance
    taken, history, watch, actions, year, _ = await asyncio.gather(
        run_in_threadpool(svc.take), run_in_threadpool(svc.history), run_in_threadpool(_watch_list, request),
        run_in_threadpool(_svc(request).actions),
        run_in_threadpool(lambda: gov.year(TR.fiscal_year(TR.today_jst()))),
        run_in_threadpool(log) if log else asyncio.sleep(0))
    return _render(request, "audit/inventory.html", ctx, inv=taken, history=history, error=error, notice=notice,
                   status=status, max_age=svc.cfg.inventory_max_age_days, watch=watch, actions=actions, gov=year)


def _watch_list(request: Request) -> dict:
    with request.app.state.registers.admin_tx(write=False) as conn:
        return dict(conn.execute(select(audit_watch.c.operator_id, audit_watch.c.address_prefix)).all())


@router.get("/roster/inventory")
async def inventory_page(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "roster", "roster_inventory_view")
    return await _inventory_page(request, ctx, **shown(request, ctx),
                                 log=lambda: _log(request, ctx, "roster_inventory_view", {}))


@router.post("/roster/inventory")
async def inventory_confirm(request: Request):
    ctx, form = await _post(request, "roster", "roster_inventory")
    disp = {k[5:]: v for k, v in form.items() if k.startswith("disp_")}
    notes = {k[5:]: v for k, v in form.items() if k.startswith("note_")}
    try:
        iid = await run_in_threadpool(lambda: _inv(request).confirm(ctx.actor, disp, notes=notes,
                                                                    findings_sha256=form.get("findings_sha256") or None))
    except JukinetError as e:
        A.security(request).log_refusal(ctx.actor, "roster_inventory", e)
        return await _inventory_page(request, ctx, error=e, status=409 if e.code == "INVENTORY_CHANGED" else 400)
    return see_other(request, ctx, "/roster/inventory", notice=f"棚卸し (記録番号 {iid}) を記録しました。")


@router.post("/roster/inventory/csv")
async def inventory_csv(request: Request):
    ctx, _ = await _post(request, "roster", "roster_inventory_export")
    taken = await run_in_threadpool(_inv(request).take)
    await run_in_threadpool(_log, request, ctx, "roster_inventory_export", {"sha256": taken.sha256},
                            len(taken.findings))
    return Response(inv.csv_text(taken).encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="inventory.csv"', "Cache-Control": "no-store"})


@router.post("/roster/operators/{operator_id}/watch")
async def operator_watch(request: Request, operator_id: str):
    ctx, form = await _post(request, "roster", "audit_watch_set")
    try:
        await run_in_threadpool(_svc(request).set_watch, ctx.actor, operator_id, form.get("address_prefix") or "")
    except JukinetError as e:
        return await _inventory_page(request, ctx, error=e, status=400)
    return see_other(request, ctx, "/roster/inventory", notice=f"操作者 {operator_id} の住所区域を記録しました。")


def install(app) -> None:
    app.include_router(router)

