"""Cookies and HSTS by the transport the server actually saw (A1, A6, U6; ADR 0031).

The server answers HTTPS to everyone and plain HTTP only on a loopback address (port unification,
:mod:`jukinet.intake.transport`; ADR 0005). Per request:

* **over TLS** — the connection carried a TLS handshake (the ``tls`` ASGI extension our protocol
  adds from the transport) or the scheme is ``https`` — every cookie (CSRF, session, terminal) gets
  ``Secure`` and every response ``Strict-Transport-Security``. No setting turns this off.
* **plain HTTP** (loopback only: local development and the demo at ``http://localhost``) — cookies
  go without ``Secure`` (a client does not return a Secure cookie over plain HTTP), no HSTS, and a
  warning is logged once per process.

``[security] secure_cookies = false`` used to drop ``Secure`` everywhere; it is still read from old
configuration files but changes nothing over TLS, and the app logs a warning at start.
"""

from __future__ import annotations

import logging
import threading

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jukinet.config import Config

log = logging.getLogger("jukinet.web")

#: one year; no includeSubDomains (the prefecture's other hosts are not ours to pin)
HSTS = "max-age=31536000"

_warned = threading.Event()


def over_tls(scope: Scope) -> bool:
    return "tls" in (scope.get("extensions") or {}) or scope.get("scheme") in ("https", "wss")


def cookie_secure(request: Request) -> bool:
    """``Secure`` for a cookie set in answer to ``request``: always over TLS; plain HTTP (loopback
    development) gets none and a warning, once per process."""
    if over_tls(request.scope):
        return True
    if not _warned.is_set():
        _warned.set()
        log.warning("plain HTTP on loopback: cookies are set without Secure (development only; operators use HTTPS)")
    return False


def set_cookie(request: Request, resp: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=cookie_secure(request),
                    path="/")


def delete_cookie(request: Request, resp: Response, name: str) -> None:
    resp.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=cookie_secure(request))


class StrictTransportSecurity:
    """ASGI middleware: ``Strict-Transport-Security`` on every response sent over TLS."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not over_tls(scope):
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"strict-transport-security"]
                headers.append((b"strict-transport-security", HSTS.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_hsts)


def install(app, config: Config) -> None:
    """HSTS on TLS responses; a warning when the configuration still asks for cookies without Secure."""
    app.add_middleware(StrictTransportSecurity)
    if not config.security.secure_cookies:
        log.warning("[security] secure_cookies = false is ignored over TLS: cookies always get Secure there "
                    "(plain HTTP is served on loopback only, for development)")
