"""Sign-in and the session of the operator UI (A1, A6; ADR 0008): the login page (WebAuthn and the
password + one-time-password fallback), terminal activation, fingerprint enrollment, the lock
screen, keep-alive and logout."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from jukinet.errors import JukinetError
from jukinet.security.model import TERMINAL_UNREGISTERED, Refused, refused
from jukinet.web import auth as A
from jukinet.web.pages import _cookie, _form, _redirect, ctx_post, message, render
from jukinet.web.transport_security import delete_cookie

router = APIRouter(include_in_schema=False)


# ---- pages before login --------------------------------------------------------------------------

@router.get("/login")
def login_page(request: Request):
    tid = A.terminal_id(request)
    if tid is None:
        A.security(request).log_refusal(A.Actor(), "login_page", refused(TERMINAL_UNREGISTERED))
        return message(request, "操作端末ではありません", "この端末は操作端末として登録されていません。システム管理者に端末登録を依頼してください。",
                       code="TERMINAL_UNREGISTERED", status=403)
    return render(request, "login.html", terminal_id=tid)


async def _registered_terminal(request: Request, action: str) -> str:
    """CSRF check, then the registered 操作端末ID of this browser; an unregistered one is refused and logged."""
    await A.check_csrf(request)
    tid = A.terminal_id(request)
    if tid is None:
        raise A.security(request).refuse(A.Actor(), action, refused(TERMINAL_UNREGISTERED))
    return tid


@router.post("/auth/login/options")
async def login_options(request: Request):
    tid = await _registered_terminal(request, "login")
    body = await request.json()
    return A.security(request).login_options(str(body.get("operator_id") or ""), tid)


@router.post("/auth/login/verify")
async def login_verify(request: Request):
    tid = await _registered_terminal(request, "login")
    body = await request.json()
    res = A.security(request).login_verify(tid, str(body.get("challenge_id") or ""), body.get("credential") or {})
    resp = JSONResponse({"redirect": "/"})
    _cookie(request, resp, A.SESSION_COOKIE, res.token)
    return resp


@router.post("/login/password")
async def login_password(request: Request):
    form = await _form(request)
    await A.check_csrf(request, None, form)
    tid = A.terminal_id(request)
    if tid is None:
        return message(request, "操作端末ではありません", "この端末は操作端末として登録されていません。",
                       code="TERMINAL_UNREGISTERED", status=403)
    try:
        res = A.security(request).password_login(form.get("operator_id", ""), form.get("password", ""),
                                                 form.get("totp", ""), tid)
    except Refused as e:
        # which of the three was wrong is not said (no oracle): the message is shown with the form
        return render(request, "login.html", terminal_id=tid, status=e.status, operator_id=form.get("operator_id", ""),
                      error=JukinetError(e.code, e.message, field=getattr(e, "field", None)), password_open=True)
    resp = RedirectResponse("/", status_code=303)
    _cookie(request, resp, A.SESSION_COOKIE, res.token)
    return resp


@router.get("/terminal/activate")
def activate_page(request: Request, code: str = ""):
    return render(request, "terminal_activate.html", code=code)


@router.post("/terminal/activate")
async def activate(request: Request):
    form = await _form(request)
    await A.check_csrf(request, None, form)
    try:
        tid, secret = A.security(request).activate_terminal(form.get("code", ""))
    except Refused as e:
        # the form again, the message at the code field (issue 19); the refusal is logged by the service
        return render(request, "terminal_activate.html", code="", status=e.status,
                      error=JukinetError(e.code, e.message, field="code"))
    resp = message(request, "操作端末の登録", f"この端末を操作端末 {tid} として登録しました。", link="/login",
                   link_text="ログイン画面へ")
    _cookie(request, resp, A.TERMINAL_COOKIE, f"{tid}.{secret}", max_age=365 * 24 * 3600)
    return resp


@router.get("/enroll")
def enroll_page(request: Request, token: str = ""):
    tid = A.terminal_id(request)
    if tid is None:
        A.security(request).log_refusal(A.Actor(), "enroll_page", refused(TERMINAL_UNREGISTERED))
        return message(request, "操作端末ではありません", "生体認証の登録は、登録済みの操作端末で行ってください。",
                       code="TERMINAL_UNREGISTERED", status=403)
    op = A.security(request).enrollment_operator(token)
    if op is None:
        A.security(request).log_refusal(A.Actor(None, tid), "enroll_page", Refused(
            "ENROLLMENT_INVALID", "登録用リンクが無効か期限切れです。"))
    return render(request, "enroll.html", op=op, token=token, terminal_id=tid, status=200 if op else 403)


@router.post("/auth/enroll/options")
async def enroll_options(request: Request):
    tid = await _registered_terminal(request, "enroll")
    body = await request.json()
    return A.security(request).registration_options(str(body.get("token") or ""), tid)


@router.post("/auth/enroll/verify")
async def enroll_verify(request: Request):
    tid = await _registered_terminal(request, "enroll")
    body = await request.json()
    op = A.security(request).registration_verify(str(body.get("token") or ""), tid, str(body.get("challenge_id") or ""),
                                                 body.get("credential") or {})
    return {"operator_id": op.operator_id, "status": op.status}


# ---- session: lock, touch, logout ---------------------------------------------------------------

@router.get("/lock")
def lock_page(request: Request):
    s = A.security(request).session_info(A.session_token(request))
    return render(request, "lock.html", operator_id=s.operator_id if s else "")


@router.post("/lock")
async def lock(request: Request):
    # no CSRF needed to *lock*: it only ever takes rights away; the session must match the terminal
    if A.security(request).lock(A.session_token(request), A.terminal_id(request)):
        A.drop_scratch(request, A.session_token(request))   # no personal data kept for a locked screen
    return _redirect(request, "/lock")


@router.post("/session/touch")
async def touch(request: Request):
    ctx = A.context(request)
    await A.check_csrf(request, ctx)
    return Response(status_code=204)


@router.post("/logout")
async def logout(request: Request):
    ctx, _ = await ctx_post(request)
    A.security(request).logout(ctx.token, ctx.terminal_id)
    A.drop_scratch(request, ctx.token)
    resp = _redirect(request, "/login")
    delete_cookie(request, resp, A.SESSION_COOKIE)
    return resp
