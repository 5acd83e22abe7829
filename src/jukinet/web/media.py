"""The screen of the media register (媒体管理簿, G2) and the virus checks (G3; ADR 0040).

* ``GET /media`` — the register (medium, label, location, custodian, status), the weekly checks
  (overdue warned), the last movements, the manager's approvals and the virus checks. Every role that
  keeps or audits media (システム管理者・業務担当者・管理責任者・運用担当者・監査者); no personal data.
* ``POST /media/check`` — record the weekly check: the media ids or labels found in the vault, one a
  line; the discrepancies are computed and recorded with who and when.
* ``POST /media/approve`` — (管理責任者) the prior approval of retiring or destroying a medium or
  destroying a form; anyone else is refused (``MEDIA_APPROVER_NOT_MANAGER``).
* ``POST /media/move`` — 移動・持出・持出からの返却・依頼元からの返却 of a registered medium.
* ``POST /media/dispose`` — 使用停止 or 廃棄 with the approval number.
* ``POST /media/handover`` — (multipart) 受渡し of a batch result medium: the file copied from the
  medium is virus-checked and compared with the one written.
* ``POST /media/scan`` — (multipart) the virus check of a file brought in or to be handed out (G3).

The same is scriptable (``jukinet media …``). Every view, record and refusal is in the operation log;
an uploaded file lives in a private temporary file only while it is checked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
        return await run_in_threadpool(lambda e=e: _page(request, ctx, error=e, status=403 if e.code == "FORBIDDEN" else 400))
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
        return await run_in_threadpool(lambda e=e: _page(request, ctx, error=e, status=400))
    return await run_in_threadpool(lambda: _page(request, ctx, notice=f"承認を記録しました。承認番号 {aid}"))


async def _upload(form, limit: int = 2 * 1024 * 1024 * 1024) -> Path:
    upload = form.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise JukinetError("FILE_REQUIRED", "ファイルを選択してください。", field="file")
    fd, name = tempfile.mkstemp(prefix="jukinet-media-")
    size = 0
    with os.fdopen(fd, "wb") as f:
        while True:
            chunk = await upload.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                f.close()
                os.unlink(name)
                raise JukinetError("FILE_TOO_LARGE", "ファイルが大きすぎます。", field="file")
            f.write(chunk)
    return Path(name)


async def _act(request: Request, ctx: A.Ctx, work, notice: str, *, cleanup: Path | None = None):
    try:
        out = await run_in_threadpool(work)
    except JukinetError as e:
        return await run_in_threadpool(lambda e=e: _page(request, ctx, error=e, status=getattr(e, "status", 400)))
    finally:
        if cleanup is not None:
            cleanup.unlink(missing_ok=True)
    return await run_in_threadpool(lambda: _page(request, ctx, notice=notice.format(out=out)))


@router.post("/media/move")
async def media_move(request: Request):
    ctx, form = await ctx_post(request)
    kind = form.get("kind") or ""
    svc = _svc(request)
    if kind == "return":
        work = lambda: svc.return_(ctx.operator, ctx.terminal_id, form.get("media_id") or "",  # noqa: E731
                                   location=form.get("location") or "", counterpart=form.get("counterpart") or "")
    else:
        work = lambda: svc.move(ctx.operator, ctx.terminal_id, form.get("media_id") or "", kind,  # noqa: E731
                                location=form.get("location") or "", reason=form.get("reason") or "")
    return await _act(request, ctx, work, "移動を記録しました (記録番号 {out})。")


@router.post("/media/dispose")
async def media_dispose(request: Request):
    ctx, form = await ctx_post(request)
    svc = _svc(request)
    mid, aid, reason = form.get("media_id") or "", form.get("approval_id") or "", form.get("reason") or ""
    if form.get("action") == "retire":
        work = lambda: svc.retire(ctx.operator, ctx.terminal_id, mid, approval_id=aid, reason=reason)  # noqa: E731
    else:
        work = lambda: svc.destroy(ctx.operator, ctx.terminal_id, mid, approval_id=aid,  # noqa: E731
                                   method=form.get("method") or "", reason=reason)
    return await _act(request, ctx, work, "記録しました (記録番号 {out})。")


@router.post("/media/handover")
async def media_handover(request: Request):
    ctx, form = await ctx_post(request)
    try:
        path = await _upload(form)
    except JukinetError as e:
        return await run_in_threadpool(lambda e=e: _page(request, ctx, error=e, status=400))
    svc = _svc(request)
    work = lambda: svc.handover(ctx.operator, ctx.terminal_id, form.get("media_id") or "",  # noqa: E731
                                requester_code=form.get("requester_code") or "", file=path,
                                medium=form.get("medium") or "", label=form.get("label") or "",
                                receiver=form.get("receiver") or "")
    return await _act(request, ctx, work, "ウイルスチェック: 検出なし。受渡しを記録しました (記録番号 {out})。", cleanup=path)


@router.post("/media/scan")
async def media_scan(request: Request):
    ctx, form = await ctx_post(request)
    try:
        path = await _upload(form)
    except JukinetError as e:
        return await run_in_threadpool(lambda e=e: _page(request, ctx, error=e, status=400))
    svc = _svc(request)
    work = lambda: svc.scan(ctx.operator, ctx.terminal_id, path,  # noqa: E731
                            direction="out" if form.get("direction") == "out" else "in").engine
    return await _act(request, ctx, work, "ウイルスチェック ({out}): 検出なし。", cleanup=path)


__all__ = ["router", "MC"]
