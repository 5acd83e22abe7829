"""The application's last safety net (Q2): no request ever gets a bare ``text/plain`` 500.

Every door validates its text where it arrives (:mod:`jukinet.text`); this only catches what
slipped past. An encoding error about a lone surrogate can only come from request text (nothing
the system itself writes holds one): it is the client's, 400 ``TEXT_NOT_ENCODABLE``. Anything else
unexpected is a real server fault and stays one — a coded JSON 500 ``INTERNAL_ERROR`` — so a fault
is never hidden as a client error. Neither answer nor the log line carries the exception's text
(it may quote a value); only its type is logged.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jukinet import text

log = logging.getLogger("jukinet.http")

_NO_STORE = {"Cache-Control": "no-store"}


def caused_by_request_text(exc: BaseException) -> bool:
    """True for an encoding error over a lone surrogate (what a JSON ``\\ud800`` decodes to).

    >>> try:
    ...     "a\\ud800".encode("utf-8")
    ... except UnicodeEncodeError as e:
    ...     caused_by_request_text(e)
    True
    >>> try:
    ...     "𠮷".encode("cp932")
    ... except UnicodeEncodeError as e:
    ...     caused_by_request_text(e)
    False
    """
    if not isinstance(exc, UnicodeEncodeError) or not isinstance(exc.object, str):
        return False
    return any("\ud800" <= ch <= "\udfff" for ch in exc.object[exc.start:exc.end])


def install(app: FastAPI) -> None:
    """Add the two handlers to ``app``."""

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError):
        if caused_by_request_text(exc):
            log.warning("request text not encodable (%s %s)", request.method, request.url.path)
            return JSONResponse(status_code=400, headers=_NO_STORE, content={"error": {
                "code": text.CODE, "message": text.message("入力")}})
        return _internal(request, exc)

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception):
        return _internal(request, exc)


def _internal(request: Request, exc: BaseException) -> JSONResponse:
    log.error("internal error (%s) on %s %s", type(exc).__name__, request.method, request.url.path)
    return JSONResponse(status_code=500, headers=_NO_STORE, content={"error": {
        "code": "INTERNAL_ERROR", "message": "サーバ内部でエラーが発生しました。時間をおいて再度お試しください。"}})
