"""Shared pieces of the terminal API (``/api/v1``): authentication dependency and error schema.

Other bodies' terminal software authenticates the **terminal** with ``X-Jukinet-Terminal:
<id>.<secret>`` (issued when the administrator registers the terminal) and the **operator** with a
session token from ``/api/v1/auth/*`` sent as ``Authorization: Bearer <token>``. The session is bound
to that terminal and subject to the same idle and absolute limits as the browser (A6).
"""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel

from jukinet.web import auth as A


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS = {400: {"model": ErrorResponse, "description": "入力エラー"},
          401: {"model": ErrorResponse, "description": "未認証・セッション無効・アイドルロック"},
          403: {"model": ErrorResponse, "description": "権限なし・未登録端末"}}


def api_ctx(request: Request) -> A.Ctx:
    return A.context(request)
