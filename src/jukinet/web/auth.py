"""Who is asking: terminal, session and CSRF checks shared by the operator UI and the terminal API.

* **Terminal** (操作端末ID): browser — cookie ``jukinet_terminal`` (``<id>.<secret>``, set when the
  terminal is activated); API — header ``X-Jukinet-Terminal`` with the same value (ADR 0008).
* **Session**: browser — cookie ``jukinet_session``; API — ``Authorization: Bearer <token>``.
  A session is valid only on the terminal it was opened on, for ``idle_minutes`` after the last
  request and ``session_max_minutes`` in all (:meth:`Security.resolve`, which logs refusals).
* **CSRF** (browser POSTs): the form field ``csrf_token`` or header ``X-CSRF-Token`` must equal the
  session's token (or, before login, the ``jukinet_csrf`` cookie), and a present ``Origin`` must be
  one of ours.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Optional

from fastapi import Request

from jukinet.security import roles as R
from jukinet.security.model import CSRF, Operator, Refused, Session, refused  # noqa: F401
from jukinet.security.oplog import Actor
from jukinet.security.service import Security, sha256
from jukinet.web.scratch import Scratch

TERMINAL_COOKIE = "jukinet_terminal"
SESSION_COOKIE = "jukinet_session"
CSRF_COOKIE = "jukinet_csrf"
TERMINAL_HEADER = "X-Jukinet-Terminal"


@dataclass(frozen=True)
class Ctx:
    operator: Operator
    session: Session
    terminal_id: str
    token: str

    @property
    def actor(self) -> Actor:
        return Actor(self.operator.operator_id, self.terminal_id, self.session.witness_id)


def security(request: Request) -> Security:
    return request.app.state.security


def scratch(request: Request) -> Scratch:
    """The per-session memory of the operator screens (:mod:`jukinet.web.scratch`)."""
    st = request.app.state
    if getattr(st, "scratch", None) is None:
        st.scratch = Scratch(ttl_seconds=security(request).cfg.session_max_minutes * 60)
    return st.scratch


def drop_scratch(request: Request, token: str | None) -> None:
    """Forget what the screens kept for the session of ``token`` (logout, lock)."""
    if token:
        scratch(request).drop(sha256(token))


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def terminal_id(request: Request) -> Optional[str]:
    if not hasattr(request.state, "terminal_id"):
        raw = request.headers.get(TERMINAL_HEADER) if is_api(request) else request.cookies.get(TERMINAL_COOKIE)
        request.state.terminal_id = security(request).terminal_from_secret(raw)
    return request.state.terminal_id


def session_token(request: Request) -> Optional[str]:
    if is_api(request):
        auth = request.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None
    return request.cookies.get(SESSION_COOKIE)


def action_name(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"[:40]


def context(request: Request) -> Ctx:
    """The authenticated operator of this request, or a logged refusal (raised)."""
    sec = security(request)
    token = session_token(request)
    r = sec.resolve(token, terminal_id(request), action=action_name(request))
    ctx = Ctx(r.operator, r.session, r.terminal_id, token)
    request.state.ctx = ctx
    return ctx


def csrf_cookie(request: Request) -> str:
    """The pre-login CSRF token (double submit); a new one is set by :func:`ensure_csrf_cookie`."""
    tok = request.cookies.get(CSRF_COOKIE)
    if not tok:
        tok = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_csrf = tok
    return tok


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True
    if origin == "null":  # privacy-sensitive contexts: trust the browser's own fetch metadata
        return request.headers.get("Sec-Fetch-Site") == "same-origin"
    allowed = set(security(request).origins)
    allowed.add(f"{request.url.scheme}://{request.url.netloc}")
    return origin in allowed


async def check_csrf(request: Request, ctx: Ctx | None = None, form=None) -> None:
    """Refuse (and log) a browser POST without the right CSRF token or from a foreign origin."""
    sent = request.headers.get("X-CSRF-Token")
    if sent is None:
        if form is None:
            form = await request.form()
        sent = form.get("csrf_token")
    expected = ctx.session.csrf_token if ctx is not None else request.cookies.get(CSRF_COOKIE)
    if not sent or not expected or not secrets.compare_digest(str(sent), str(expected)) or not _origin_ok(request):
        actor = ctx.actor if ctx else Actor(None, terminal_id(request))
        raise security(request).refuse(actor, action_name(request), refused(CSRF))


def authorize_search(request: Request, ctx: Ctx, registers, action: str) -> None:
    """Every register searched must be in scope; a refusal is logged in that register's chain."""
    sec = security(request)
    if not ctx.operator.search_registers():
        sec.require(ctx.operator, ctx.terminal_id, "search", action)
    for reg in registers:
        if reg in R.REGISTERS:
            sec.require(ctx.operator, ctx.terminal_id, "search", action, register=reg)
