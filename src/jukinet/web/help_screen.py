"""ヘルプ (/help): what a screen would otherwise say with a path into the documentation (ADR 0042) —
which role sees which screen, how to sign in (and the demo's fallback), the operations procedures in
short. No data of any register; any signed-in operator (also 運用担当者) may read it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from jukinet import labels
from jukinet.security import roles as R
from jukinet.web import auth as A
from jukinet.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/help")
def help_page(request: Request):
    ctx = A.context(request)
    return render(request, "help.html", ctx, role_screens=labels.role_screens(), ROLES=R.ROLES)
