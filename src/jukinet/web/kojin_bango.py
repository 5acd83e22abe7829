"""The 「個人番号を表示」 action of the detail screen (A3, A4): a POST (the 住民票コード in the body),
allowed only for a stated purpose that needs the number, logged either way.

htmx swaps ``#kojin-bango-cell`` of the detail page with the answer's; without script the answer is a
page of its own. A refusal keeps the number masked and says why, next to it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from jukinet.errors import JukinetError
from jukinet.search import kojin_bango as NB
from jukinet.security import roles as R
from jukinet.security.model import Refused
from jukinet.web import auth as A
from jukinet.web.auth import authorize_search
from jukinet.web.pages import ctx_post, render

router = APIRouter(include_in_schema=False)


@router.post("/detail/kojin-bango")
async def reveal(request: Request):
    ctx, form = await ctx_post(request)
    authorize_search(request, ctx, ["juki"], NB.ACTION)
    sec = A.security(request)
    cmd = NB.RevealCommand(purpose_code=form.get("purpose_code") or "", juminhyo_code=form.get("juminhyo_code") or "",
                           case_ref=form.get("case_ref") or None)
    try:
        number = NB.reveal(cmd, sec.registers, sec.oplog, ctx.actor)
    except JukinetError as e:
        if e.code != "NOT_FOUND":
            sec.log_refusal(ctx.actor, NB.ACTION, e, chain="juki",
                            purpose_code=cmd.purpose_code if cmd.purpose_code in R.PURPOSES else None)
        status = e.status if isinstance(e, Refused) else (404 if e.code == "NOT_FOUND" else 400)
        return render(request, "kojin_bango.html", ctx, status=status, error=e, number=None,
                      purpose_code=cmd.purpose_code)
    return render(request, "kojin_bango.html", ctx, error=None, number=number, purpose_code=cmd.purpose_code)
