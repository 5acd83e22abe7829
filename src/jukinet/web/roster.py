"""The roster (操作者名簿, A2) on the operator UI: operators, their roles, registers and affairs,
enrollment and password links, and the 操作端末."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from jukinet.errors import JukinetError
from jukinet.security.model import Refused
from jukinet.web import auth as A
from jukinet.web.pages import JST, STATUS, ctx_post, render, see_other, shown

router = APIRouter(include_in_schema=False)


# ---- roster (A2) ---------------------------------------------------------------------------------

def _roster(request: Request, ctx: A.Ctx, *, notice=None, error=None, status=200, error_form=None, f=None):
    """``error_form``: which form of the page was sent (its fields show the error); ``f``: what it held."""
    sec = A.security(request)
    return render(request, "roster.html", ctx, operators=sec.list_operators(), terminals=sec.list_terminals(),
                  training=sec.training_status(), notice=notice, error=error, status=status,
                  error_form=error_form, f=f or {})


# ---- security training (G1; ADR 0034) --------------------------------------------------------------

def _training(request: Request, ctx: A.Ctx, *, notice=None, error=None, status=200, f=None):
    sec = A.security(request)
    return render(request, "training.html", ctx, operators=sec.list_operators(include_removed=False),
                  training=sec.training_status(), records=sec.trainings(), notice=notice, error=error,
                  status=status, today=datetime.now(JST).date().isoformat(), f=f or {})


@router.get("/roster/training")
def training_page(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "training", "training_view")
    return _training(request, ctx, **shown(request, ctx))


def _training_form(form) -> dict:
    return {k: form.get(k) or "" for k in ("operator_id", "course", "taken_on")}


@router.post("/roster/training")
async def training_record(request: Request):
    ctx, form = await ctx_post(request)
    sec = A.security(request)
    operator_id = (form.get("operator_id") or "").strip()
    try:
        sec.record_training(ctx.actor, operator_id, course=form.get("course") or "",
                            taken_on=form.get("taken_on") or "", by=ctx.operator)
    except Refused as e:
        if e.code == "FORBIDDEN":
            raise
        return _training(request, ctx, error=e, status=400, f=_training_form(form))
    except JukinetError as e:
        return _training(request, ctx, error=e, status=400, f=_training_form(form))
    return see_other(request, ctx, "/roster/training", notice={"text": f"操作者 {operator_id} の研修の受講を記録しました。"})


def _base_url(request: Request) -> str:
    sec = A.security(request)
    return sec.cfg.origins[0] if sec.cfg.origins else f"{request.url.scheme}://{request.url.netloc}"


@router.get("/roster")
def roster(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "roster", "roster")
    return _roster(request, ctx, **shown(request, ctx))


@router.get("/roster.csv")
def roster_csv(request: Request):
    ctx = A.context(request)
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "roster", "roster_export")
    return Response(sec.roster_csv(ctx.actor), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="operators.csv"'})


async def _roster_post(request: Request, action: str):
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "roster", action)
    return ctx, form


@router.post("/roster/operators")
async def roster_create(request: Request):
    ctx, form = await _roster_post(request, "operator_register")
    try:
        op, token = A.security(request).register_operator(
            ctx.actor, display_name=form.get("display_name", ""), department=form.get("department", ""),
            roles=form.getlist("roles"), registers=form.getlist("registers"), affairs=form.getlist("affairs"),
            operator_id=(form.get("operator_id") or "").strip() or None,
            password_allowed=bool(form.get("password_allowed")))
    except JukinetError as e:
        f = {k: form.get(k) or "" for k in ("display_name", "department", "operator_id", "password_allowed")}
        f.update({k: form.getlist(k) for k in ("roles", "registers", "affairs")})
        return _roster(request, ctx, error=e, status=400, error_form="operator", f=f)
    return see_other(request, ctx, "/roster", notice={"text": f"操作者 {op.operator_id} を登録しました。登録用リンク (指紋の登録):",
                                         "link": f"{_base_url(request)}/enroll?token={token}"})


@router.post("/roster/operators/{operator_id}/update")
async def roster_update(request: Request, operator_id: str):
    ctx, form = await _roster_post(request, "operator_update")
    try:
        A.security(request).update_operator(ctx.actor, operator_id, roles=form.getlist("roles"),
                                            registers=form.getlist("registers"), affairs=form.getlist("affairs"),
                                            password_allowed=bool(form.get("password_allowed")))
    except JukinetError as e:
        f = {k: form.get(k) or "" for k in ("display_name", "department", "operator_id", "password_allowed")}
        f.update({k: form.getlist(k) for k in ("roles", "registers", "affairs")})
        return _roster(request, ctx, error=e, status=400, error_form="operator", f=f)
    return see_other(request, ctx, "/roster", notice={"text": f"操作者 {operator_id} の権限を変更しました。"})


@router.post("/roster/operators/{operator_id}/status")
async def roster_status(request: Request, operator_id: str):
    ctx, form = await _roster_post(request, "operator_status")
    try:
        op = A.security(request).set_status(ctx.actor, operator_id, form.get("status", ""))
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return see_other(request, ctx, "/roster", notice={"text": f"操作者 {operator_id} を「{STATUS[op.status]}」にしました。"})


@router.post("/roster/operators/{operator_id}/enrollment")
async def roster_enrollment(request: Request, operator_id: str):
    ctx, _ = await _roster_post(request, "enrollment_issue")
    try:
        token = A.security(request).reissue_enrollment(ctx.actor, operator_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return see_other(request, ctx, "/roster", notice={"text": f"操作者 {operator_id} の登録用リンクを発行しました。",
                                         "link": f"{_base_url(request)}/enroll?token={token}"})


@router.post("/roster/operators/{operator_id}/password")
async def roster_password(request: Request, operator_id: str):
    ctx, _ = await _roster_post(request, "password_grant")
    try:
        g = A.security(request).grant_password(ctx.actor, operator_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return see_other(request, ctx, "/roster", notice={"text": f"操作者 {operator_id} の代替認証を発行しました。",
                                         "password": g.password, "totp_uri": g.totp_uri})


@router.post("/roster/terminals")
async def terminal_create(request: Request):
    ctx, form = await _roster_post(request, "terminal_register")
    try:
        t, code = A.security(request).add_terminal(ctx.actor, form.get("name", ""))
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400, error_form="terminal", f={"name": form.get("name") or ""})
    return see_other(request, ctx, "/roster", notice={"text": f"操作端末 {t.terminal_id} を登録しました。その端末のブラウザで開く端末登録リンク:",
                                         "link": f"{_base_url(request)}/terminal/activate?code={code}"})


@router.post("/roster/terminals/{terminal_id}/revoke")
async def terminal_revoke(request: Request, terminal_id: str):
    ctx, _ = await _roster_post(request, "terminal_revoke")
    try:
        A.security(request).revoke_terminal(ctx.actor, terminal_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return see_other(request, ctx, "/roster", notice={"text": f"操作端末 {terminal_id} を廃止しました。"})


@router.post("/roster/terminals/{terminal_id}/activation")
async def terminal_activation(request: Request, terminal_id: str):
    ctx, _ = await _roster_post(request, "terminal_activation_issue")
    try:
        code = A.security(request).reissue_activation(ctx.actor, terminal_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return see_other(request, ctx, "/roster", notice={"text": f"操作端末 {terminal_id} の端末登録リンク:",
                                         "link": f"{_base_url(request)}/terminal/activate?code={code}"})
