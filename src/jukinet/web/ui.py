"""The Japanese operator UI (server-rendered, Jinja2 + vendored htmx): login, enrollment, terminal
activation, search and detail (事務5), the lock screen, roster and operation log.

Thin: each handler checks who is asking (:mod:`jukinet.web.auth`), calls a service, renders.
Personal data travels only in POST bodies (search is POST, detail is POST with the 住民票コード in
the body) and every page is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from jukinet.bootstrap import Installation
from jukinet import wareki
from jukinet.domain.records import SEX
from jukinet.errors import JukinetError
from jukinet.search import service as search_service
from jukinet.security import roles as R
from jukinet.security.model import TERMINAL_UNREGISTERED, Refused, refused
from jukinet.security.oplog import recent
from jukinet.web import auth as A
from jukinet.web.transport_security import cookie_secure, delete_cookie, set_cookie
from jukinet.web.auth import authorize_search
from jukinet.security.oplog import verify_all
from jukinet.web import api_auth, api_roster, api_search, safety

HERE = Path(__file__).parent
JST = timezone(timedelta(hours=9))
STATUS = {"pending": "登録待ち", "active": "有効", "suspended": "停止", "removed": "削除"}
TSTATUS = {"pending": "登録待ち", "active": "有効", "revoked": "廃止"}
CHAIN_NAMES = {"juki": "本人確認情報ファイル (juki)", "fuhyo": "附票本人確認情報ファイル (fuhyo)", "admin": "管理 (admin)"}

templates = Jinja2Templates(directory=str(HERE / "templates"))


def _wareki(d) -> str:
    if d in (None, ""):
        return ""
    try:
        return wareki.to_wareki(d)
    except JukinetError:
        return str(d)


def _jst(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


def _code(detail_text) -> str:
    try:
        return json.loads(detail_text or "{}").get("code", "")
    except ValueError:
        return ""


templates.env.filters.update(wareki=_wareki, sex=lambda s: SEX.get(s, s or ""), jst=_jst, code=_code)

router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, ctx: A.Ctx | None = None, status: int = 200, **kw) -> HTMLResponse:
    sec = A.security(request)
    csrf = ctx.session.csrf_token if ctx else A.csrf_cookie(request)
    resp = templates.TemplateResponse(request, name, {
        "ctx": ctx, "csrf": csrf, "cfg": sec.cfg, "R": R, "system_name": f"{sec.config.prefecture_name} 住基ネット 都道府県サーバ",
        "STATUS": STATUS, "TSTATUS": TSTATUS, "CHAIN_NAMES": CHAIN_NAMES, "now": datetime.now(timezone.utc), **kw},
        status_code=status)
    return _with_csrf_cookie(request, resp)


def _with_csrf_cookie(request: Request, resp: Response) -> Response:
    new = getattr(request.state, "new_csrf", None)
    if new:
        resp.set_cookie(A.CSRF_COOKIE, new, httponly=True, samesite="strict", secure=cookie_secure(request))
    return resp


def _cookie(request: Request, resp: Response, name: str, value: str, max_age: int | None = None) -> None:
    set_cookie(request, resp, name, value, max_age=max_age)   # Secure over TLS (ADR 0031)


def _redirect(request: Request, url: str) -> Response:
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def message(request: Request, heading: str, text: str, *, code: str | None = None, status: int = 200,
            ctx: A.Ctx | None = None, link: str | None = None, link_text: str = "") -> HTMLResponse:
    return render(request, "message.html", ctx, status=status, heading=heading, message=text, code=code,
                  error=status >= 400, link=link, link_text=link_text)


async def _form(request: Request):
    return await request.form()


async def ctx_post(request: Request):
    """A POST by an authenticated operator: session first, then the CSRF token."""
    ctx = A.context(request)
    form = await _form(request)
    await A.check_csrf(request, ctx, form)
    return ctx, form


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
        return render(request, "login.html", terminal_id=tid, message=e.message, status=e.status)
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
        return message(request, "操作端末の登録", e.message, code=e.code, status=e.status)
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
    A.security(request).lock(A.session_token(request), A.terminal_id(request))
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
    resp = _redirect(request, "/login")
    delete_cookie(request, resp, A.SESSION_COOKIE)
    return resp


# ---- menu, search, detail -------------------------------------------------------------------------

@router.get("/")
def menu(request: Request):
    ctx = A.context(request)
    return render(request, "menu.html", ctx)


def _search_form(form, ctx: A.Ctx) -> dict:
    regs = form.getlist("registers") if hasattr(form, "getlist") else form.get("registers", [])
    pages = form.getlist("page") if hasattr(form, "getlist") else [form.get("page")]
    return {
        "purpose_code": form.get("purpose_code") or "", "case_ref": form.get("case_ref") or "",
        "registers": [r for r in regs if r] or ctx.operator.search_registers()[:1],
        "name": form.get("name") or "", "name_match": form.get("name_match") or "exact",
        "birth_from": form.get("birth_from") or "", "birth_to": form.get("birth_to") or "",
        "sex": form.get("sex") or "", "address": form.get("address") or "",
        "include_removed": bool(form.get("include_removed")), "page": (pages[-1] if pages else None) or "1",
    }


def parse_date(text: str, field: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return wareki.parse_wareki(text)
    except JukinetError:
        raise JukinetError("DATE_FORMAT", "生年月日は 和暦 (例: 昭和55年4月1日, S55.4.1) か 西暦 (1980-04-01) で入力してください。",
                           field=field)


def search_command(f: dict) -> search_service.SearchCommand:
    birth_from = parse_date(f["birth_from"], "birth_from")
    birth_to = parse_date(f["birth_to"], "birth_to") if f["birth_to"] else birth_from
    try:
        page = int(f["page"])
    except (TypeError, ValueError):
        page = 0
    return search_service.SearchCommand(
        purpose_code=f["purpose_code"], case_ref=f["case_ref"] or None, registers=tuple(f["registers"]),
        name=f["name"] or None, name_match=f["name_match"], birth_from=birth_from, birth_to=birth_to,
        sex=f["sex"] or None, address=f["address"] or None, include_removed=f["include_removed"], page=page)


@router.get("/search")
def search_page(request: Request):
    ctx = A.context(request)
    authorize_search(request, ctx, [], "search_form")
    return render(request, "search.html", ctx, f={"registers": ctx.operator.search_registers()[:1]})


@router.post("/search")
async def search(request: Request):
    ctx, form = await ctx_post(request)
    f = _search_form(form, ctx)
    authorize_search(request, ctx, f["registers"], "search")
    sec = A.security(request)
    result, error = None, None
    try:
        cmd = search_command(f)
        result = search_service.search(cmd, sec.registers, sec.oplog, ctx.actor, cap=sec.cfg.search_cap,
                                       page_size=sec.cfg.search_page_size, prefecture_name=sec.config.prefecture_name)
    except Refused:
        raise
    except JukinetError as e:
        error = e
        sec.log_refusal(ctx.actor, "search", e, chain=f["registers"][0] if f["registers"] else "admin",
                        purpose_code=f["purpose_code"] if f["purpose_code"] in R.PURPOSES else None)
    template = "results.html" if request.headers.get("HX-Request") else "search.html"
    return render(request, template, ctx, f=f, result=result, error=error, status=200 if error is None else 400)


def _detail_rows(d) -> list[tuple[str, object]]:
    r = d.record
    rows = [("住民票コード", r.juminhyo_code), ("氏名", r.name), ("ふりがな", r.name_kana),
            ("生年月日", _wareki(r.birth_date)), ("性別", SEX.get(r.sex, r.sex))]
    if d.register == "juki":
        fs = r.former_surname
        rows += [("住所", r.address), ("個人番号", r.kojin_bango), ("市町村コード", r.municipality_code),
                 ("大字・字コード", r.oaza_code), ("旧氏", f"{fs.name} ({fs.name_kana})" if fs else None),
                 ("異動事由", r.reason), ("異動年月日", _wareki(r.change_date)),
                 ("通知を受けた年月日", _wareki(r.notified_date)), ("更新順番号", r.update_seq),
                 ("外字数 (氏名／住所)", f"{r.name_gaiji_count}／{r.address_gaiji_count}"),
                 ("状態", "消除" if r.deleted else "現存")]
    else:
        rows += [("住所", r.address), ("住所 市町村コード", r.address_municipality_code), ("最終住所", r.last_address),
                 ("附票管理市町村コード", r.fuhyo_municipality_code), ("旧住民票コード", r.old_juminhyo_code),
                 ("異動事由", r.reason), ("異動年月日", _wareki(r.change_date)), ("通知区分", r.notification_kind),
                 ("更新順番号", r.update_seq), ("外字パターン", r.gaiji_pattern), ("状態", r.status)]
    return rows


@router.post("/detail")
async def detail(request: Request):
    ctx, form = await ctx_post(request)
    register = form.get("register") or ""
    authorize_search(request, ctx, [register], "detail")
    sec = A.security(request)
    cmd = search_service.DetailCommand(purpose_code=form.get("purpose_code") or "", register=register,
                                       juminhyo_code=form.get("juminhyo_code") or "",
                                       case_ref=form.get("case_ref") or None)
    try:
        d = search_service.detail(cmd, sec.registers, sec.oplog, ctx.actor)
    except Refused:
        raise
    except JukinetError as e:
        if e.code != "NOT_FOUND":
            sec.log_refusal(ctx.actor, "detail", e, chain=register if register in R.REGISTERS else "admin")
        return message(request, "本人確認情報 詳細", e.message, code=e.code, status=404 if e.code == "NOT_FOUND" else 400,
                       ctx=ctx, link="/search", link_text="検索画面に戻る")
    return render(request, "detail.html", ctx, d=d, rows=_detail_rows(d), purpose_code=cmd.purpose_code,
                  case_ref=cmd.case_ref)


# ---- roster (A2) ---------------------------------------------------------------------------------

def _roster(request: Request, ctx: A.Ctx, *, notice=None, error=None, status=200):
    sec = A.security(request)
    return render(request, "roster.html", ctx, operators=sec.list_operators(), terminals=sec.list_terminals(),
                  notice=notice, error=error, status=status)


def _base_url(request: Request) -> str:
    sec = A.security(request)
    return sec.cfg.origins[0] if sec.cfg.origins else f"{request.url.scheme}://{request.url.netloc}"


@router.get("/roster")
def roster(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "roster", "roster")
    return _roster(request, ctx)


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
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作者 {op.operator_id} を登録しました。登録用リンク (指紋の登録):",
                                         "link": f"{_base_url(request)}/enroll?token={token}"})


@router.post("/roster/operators/{operator_id}/update")
async def roster_update(request: Request, operator_id: str):
    ctx, form = await _roster_post(request, "operator_update")
    try:
        A.security(request).update_operator(ctx.actor, operator_id, roles=form.getlist("roles"),
                                            registers=form.getlist("registers"), affairs=form.getlist("affairs"),
                                            password_allowed=bool(form.get("password_allowed")))
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作者 {operator_id} の権限を変更しました。"})


@router.post("/roster/operators/{operator_id}/status")
async def roster_status(request: Request, operator_id: str):
    ctx, form = await _roster_post(request, "operator_status")
    try:
        op = A.security(request).set_status(ctx.actor, operator_id, form.get("status", ""))
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作者 {operator_id} を「{STATUS[op.status]}」にしました。"})


@router.post("/roster/operators/{operator_id}/enrollment")
async def roster_enrollment(request: Request, operator_id: str):
    ctx, _ = await _roster_post(request, "enrollment_issue")
    try:
        token = A.security(request).reissue_enrollment(ctx.actor, operator_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作者 {operator_id} の登録用リンクを発行しました。",
                                         "link": f"{_base_url(request)}/enroll?token={token}"})


@router.post("/roster/operators/{operator_id}/password")
async def roster_password(request: Request, operator_id: str):
    ctx, _ = await _roster_post(request, "password_grant")
    try:
        g = A.security(request).grant_password(ctx.actor, operator_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作者 {operator_id} の代替認証を発行しました。",
                                         "password": g.password, "totp_uri": g.totp_uri})


@router.post("/roster/terminals")
async def terminal_create(request: Request):
    ctx, form = await _roster_post(request, "terminal_register")
    try:
        t, code = A.security(request).add_terminal(ctx.actor, form.get("name", ""))
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作端末 {t.terminal_id} を登録しました。その端末のブラウザで開く端末登録リンク:",
                                         "link": f"{_base_url(request)}/terminal/activate?code={code}"})


@router.post("/roster/terminals/{terminal_id}/revoke")
async def terminal_revoke(request: Request, terminal_id: str):
    ctx, _ = await _roster_post(request, "terminal_revoke")
    try:
        A.security(request).revoke_terminal(ctx.actor, terminal_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作端末 {terminal_id} を廃止しました。"})


@router.post("/roster/terminals/{terminal_id}/activation")
async def terminal_activation(request: Request, terminal_id: str):
    ctx, _ = await _roster_post(request, "terminal_activation_issue")
    try:
        code = A.security(request).reissue_activation(ctx.actor, terminal_id)
    except JukinetError as e:
        return _roster(request, ctx, error=e, status=400)
    return _roster(request, ctx, notice={"text": f"操作端末 {terminal_id} の端末登録リンク:",
                                         "link": f"{_base_url(request)}/terminal/activate?code={code}"})


# ---- operation log (A4) --------------------------------------------------------------------------

def _chains_for(op) -> list[str]:
    if "auditor" in op.roles:
        return ["juki", "fuhyo", "admin"]
    return [c for c in ("juki", "fuhyo") if op.can("oplog", c)]


def _audit(request: Request, ctx: A.Ctx, reports=None):
    sec = A.security(request)
    chains = []
    for chain in _chains_for(ctx.operator):
        with sec.registers.engine(chain).connect() as conn:
            chains.append((chain, recent(conn, chain, limit=50)))
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action="oplog_view", detail={"chains": ",".join(c for c, _ in chains)})
    return render(request, "audit.html", ctx, chains=chains, reports=reports)


@router.get("/audit")
def audit(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "oplog", "oplog_view")
    return _audit(request, ctx)


@router.post("/audit/verify")
async def audit_verify(request: Request):
    ctx, _ = await ctx_post(request)
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "audit_verify", "audit_verify")
    reports = verify_all(sec.oplog, {c: sec.registers.engine(c) for c in ("juki", "fuhyo", "admin")})
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action="audit_verify",
                         detail={"ok": all(r.ok for r in reports)})
    return _audit(request, ctx, reports)


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


def install(app: FastAPI, inst: Installation) -> None:
    """Add the operator UI, its terminal API, static files and the refusal handling to ``app``."""
    app.state.security = inst.security
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
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

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        resp = await call_next(request)
        path = request.url.path
        if not (path.startswith("/static/") or path.startswith("/fonts/")):
            resp.headers["Cache-Control"] = "no-store"
            resp.headers["Pragma"] = "no-cache"
        if not (path.startswith("/docs") or path.startswith("/redoc")):
            resp.headers.setdefault("Content-Security-Policy", _CSP)
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp
