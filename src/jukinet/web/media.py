"""The screen of the media register (媒体管理簿, G2) and the virus checks (G3; ADR 0040).

* ``GET /media`` — the register (medium, label, location, custodian, status), the weekly checks
  (overdue warned), the last movements, the manager's approvals and the virus checks. Every role that
  keeps or audits media (システム管理者・業務担当者・管理責任者・運用担当者・監査者); no personal data.
* ``POST /media/check`` — record the weekly check: the media ids or labels found in the vault, one a
  line; the discrepancies are computed and recorded with who and when.
* ``POST /media/approve`` — (管理責任者) the prior approval of retiring or destroying a medium or
  destroying a form; anyone else is refused (``MEDIA_APPROVER_NOT_MANAGER``).

Movements, handover, return and destruction are also commands (``jukinet media …``). Every view,
record and refusal is in the operation log.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from jukinet.audit import media_checks as MC
from jukinet.errors import JukinetError
from jukinet.media import service as M
from jukinet.web import auth as A
from jukinet.web.audit_reports import wareki_time
from jukinet.web.pages import ctx_post, render, templates

router = APIRouter(include_in_schema=False)


def _svc(request: Request) -> M.MediaService:
    return request.app.state.installation.media


def _page(request: Request, ctx: A.Ctx, *, notice=None, error=None, result=None, status=200):
    templates.env.filters.setdefault("wareki_time", wareki_time)
    svc = _svc(request)
    return render(request, "media.html", ctx, status=status, items=svc.items(), checks=svc.checks(limit=12),
                  check_status=svc.check_status(), movements=svc.movements(limit=30), approvals=svc.approvals(limit=20),
                  scans=svc.scans(limit=20), result=result, notice=notice, error=error, M=M,
                  interval=svc.cfg.check_interval_days, locations=svc.cfg.locations,
                  can_record=ctx.operator.can("media"), is_manager="manager" in ctx.operator.roles)


def _log(request: Request, ctx: A.Ctx, action: str) -> None:
    sec = A.security(request)
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action=action, detail={})


@router.get("/media")
async def media_page(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "media_view", "media_view")
    await run_in_threadpool(_log, request, ctx, "media_view")
    return await run_in_threadpool(lambda: _page(request, ctx))


@router.post("/media/check")
async def media_check(request: Request):
    ctx, form = await ctx_post(request)
    found = (form.get("found") or "").splitlines()
    try:
        res = await run_in_threadpool(lambda: _svc(request).weekly_check(ctx.operator, ctx.terminal_id, found,
                                                                         note=form.get("note") or ""))
    except JukinetError as e:
        return await run_in_threadpool(lambda: _page(request, ctx, error=e, status=403 if e.code == "FORBIDDEN" else 400))
    return await run_in_threadpool(lambda: _page(
        request, ctx, result=res, notice=f"週次点検 (記録番号 {res.check_id}) を記録しました: 管理簿 {res.expected} / "
                                         f"確認 {res.found} / 差異 {len(res.discrepancies)}"))


@router.post("/media/approve")
async def media_approve(request: Request):
    ctx, form = await ctx_post(request)
    try:
        aid = await run_in_threadpool(lambda: _svc(request).approve(
            ctx.operator, ctx.terminal_id, form.get("target_id") or "", form.get("action") or "",
            form.get("reason") or "", target_kind="form" if form.get("target_kind") == "form" else "media"))
    except JukinetError as e:
        return await run_in_threadpool(lambda: _page(request, ctx, error=e, status=400))
    return await run_in_threadpool(lambda: _page(request, ctx, notice=f"承認を記録しました。承認番号 {aid}"))


__all__ = ["router", "MC"]
