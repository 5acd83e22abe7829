"""Rendering a page of the Japanese operator UI and reading an operator's POST: the templates and
their filters (和暦, JST), cookies, redirects that work under htmx, the message page.

Every page module of the operator UI (:mod:`jukinet.web.signin`, :mod:`~jukinet.web.search`,
:mod:`~jukinet.web.roster`, :mod:`~jukinet.web.oplog`, and the screens of each 事務) renders through
:func:`render`. Every page is ``Cache-Control: no-store`` (:mod:`jukinet.web.ui`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from jukinet import labels, wareki
from jukinet.domain.records import SEX
from jukinet.errors import JukinetError
from jukinet.search import kojin_bango as NB
from jukinet.security import roles as R
from jukinet.store import faults
from jukinet.web import auth as A
from jukinet.web.transport_security import cookie_secure, set_cookie

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
    """A stored instant as the operator reads it: 和暦 date and JST time (令和8年11月27日 08:30:00, ADR 0042)."""
    return wareki.to_wareki_time(v)


def _jst_day(v) -> str:
    """The day in Japan of a stored instant, in 和暦 (令和8年11月27日)."""
    return wareki.to_wareki(wareki.japan_date(v)) if v not in (None, "") else ""


def _code(detail_text) -> str:
    try:
        return json.loads(detail_text or "{}").get("code", "")
    except ValueError:
        return ""


def _labelled(keys, names) -> list[tuple]:
    """``[(key, names[key]), …]``: the (value, label) items of a form macro (``_form.html``)."""
    return [(k, names.get(k, k)) for k in keys]


templates.env.filters.update(wareki=_wareki, sex=lambda s: SEX.get(s, s or ""), jst=_jst, jst_day=_jst_day,
                             wareki_month=wareki.to_wareki_month, show=wareki.show, code=_code,
                             kojin_mask=NB.mask, labelled=_labelled)
templates.env.filters.update(action_label=labels.action, actor_label=labels.actor, table_label=labels.table,
                             status_label=labels.status, checkpoint_source=labels.checkpoint_source)
templates.env.globals.update(kojin_bango_revealable=NB.revealable)

def render(request: Request, name: str, ctx: A.Ctx | None = None, status: int = 200, **kw) -> HTMLResponse:
    storage = status == 400 and isinstance(kw.get("error"), faults.StorageUnavailable)
    if storage:   # a full disk, a read-only database: not the operator's input — 503, try again (ADR 0051)
        status = 503
    sec = A.security(request)
    csrf = ctx.session.csrf_token if ctx else A.csrf_cookie(request)
    resp = templates.TemplateResponse(request, name, {
        "ctx": ctx, "csrf": csrf, "cfg": sec.cfg, "R": R, "system_name": f"{sec.config.prefecture_name} 住基ネット 都道府県サーバ",
        "STATUS": STATUS, "TSTATUS": TSTATUS, "CHAIN_NAMES": CHAIN_NAMES, "now": datetime.now(timezone.utc), **kw},
        status_code=status)
    if storage:
        resp.headers["Retry-After"] = str(faults.RETRY_AFTER_SECONDS)
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


def see_other(request: Request, ctx: A.Ctx, url: str, **shown) -> Response:
    """Post/Redirect/Get for an action that succeeded (ADR 0043): what its answer page shows (a notice, a
    result) is kept in the session's memory on the server, and the browser is sent (303, or
    ``HX-Redirect``) to ``url?shown=<random key>``; a reload of that page shows it again and re-submits
    nothing. The URL never carries what is shown."""
    key = A.scratch(request).put(ctx.session.session_hash, "shown", shown)
    return _redirect(request, f"{url}{'&' if '?' in url else '?'}shown={key}")


def shown(request: Request, ctx: A.Ctx) -> dict:
    """What :func:`see_other` kept for this page (``{}`` when nothing or no longer)."""
    key = request.query_params.get("shown") or ""
    kept = A.scratch(request).get(ctx.session.session_hash, key) if key.startswith("shown-") else None
    return dict(kept or {})


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
