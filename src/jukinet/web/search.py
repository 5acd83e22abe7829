"""The menu and 事務5 on the operator UI: 4情報 search and the detail page (S1, A3; ADR 0011, 0043).

Personal data travels only in POST bodies (search is POST, detail is POST with the 住民票コード in
the body) and never in a URL; the 個人番号 is masked unless the stated purpose needs it (ADR 0032).

Post/Redirect/Get (ADR 0043): a search that runs is logged once, its hits are kept in the session's
memory on the server (:mod:`jukinet.web.scratch`) and the browser is sent to ``GET /search/results``;
paging (``?page=N``) and 「検索結果に戻る」 read them from there — no second search, no second log
entry, and a reload re-submits nothing. A detail is read (and logged) by ``POST /detail`` and shown by
``GET /detail/view/<random key>``. An input error is answered at once (400) with the form, the message
under its field and in the error summary."""

from __future__ import annotations

import dataclasses
from datetime import date

from fastapi import APIRouter, Request

from jukinet import wareki
from jukinet.domain.records import SEX
from jukinet.errors import JukinetError
from jukinet.search import kojin_bango as NB
from jukinet.search import service as search_service
from jukinet.security import roles as R
from jukinet.security.model import Refused
from jukinet.web import auth as A
from jukinet.web.auth import authorize_search
from jukinet.web.pages import _redirect, _wareki, ctx_post, message, render

router = APIRouter(include_in_schema=False)


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
    return render(request, "search.html", ctx, f={"registers": ctx.operator.search_registers()[:1]},
                  has_stored=_stored_search(request, ctx) is not None)


@router.post("/search")
async def search(request: Request):
    ctx, form = await ctx_post(request)
    f = _search_form(form, ctx)
    authorize_search(request, ctx, f["registers"], "search")
    sec = A.security(request)
    try:
        cmd = search_command({**f, "page": "1"})
        result = search_service.search(cmd, sec.registers, sec.oplog, ctx.actor, cap=sec.cfg.search_cap,
                                       page_size=sec.cfg.search_page_size, prefecture_name=sec.config.prefecture_name)
    except Refused:
        raise
    except JukinetError as e:
        sec.log_refusal(ctx.actor, "search", e, chain=f["registers"][0] if f["registers"] else "admin",
                        purpose_code=f["purpose_code"] if f["purpose_code"] in R.PURPOSES else None)
        # htmx swaps #search-area (form + results): the error at its field and in the summary
        return render(request, "search.html", ctx, f=f, result=None, error=e, status=400)
    A.scratch(request).set(ctx.session.session_hash, SEARCH_KEY, {"f": {**f, "page": "1"}, "result": result})
    return _redirect(request, "/search/results")


SEARCH_KEY = "search"


def _stored_search(request: Request, ctx: A.Ctx):
    return A.scratch(request).get(ctx.session.session_hash, SEARCH_KEY)


@router.get("/search/results")
def search_results(request: Request, page: str = "1"):
    """The kept result of the session's last search, one page of it: not a new search, not logged again."""
    ctx = A.context(request)
    stored = _stored_search(request, ctx)
    if stored is None:
        authorize_search(request, ctx, [], "search_form")
        return render(request, "search.html", ctx, f={"registers": ctx.operator.search_registers()[:1]},
                      expired=True)
    f, result = stored["f"], stored["result"]
    authorize_search(request, ctx, f["registers"], "search_form")
    try:
        n = min(max(int(page), 1), result.pages)
    except ValueError:
        n = 1
    stored["f"] = {**f, "page": str(n)}
    return render(request, "search.html", ctx, f=stored["f"], result=dataclasses.replace(result, page=n), error=None)


def _detail_rows(d) -> list[tuple[str, object]]:
    r = d.record
    rows = [("住民票コード", r.juminhyo_code), ("氏名", r.name), ("ふりがな", r.name_kana),
            ("生年月日", _wareki(r.birth_date)), ("性別", SEX.get(r.sex, r.sex))]
    if d.register == "juki":
        fs = r.former_surname
        rows += [("住所", r.address), ("個人番号", NB.mask(r.kojin_bango)), ("市町村コード", r.municipality_code),
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
                       ctx=ctx, link="/search/results", link_text="検索結果に戻る")
    key = A.scratch(request).put(ctx.session.session_hash, "detail", {
        "d": d, "purpose_code": cmd.purpose_code, "case_ref": cmd.case_ref})
    return _redirect(request, f"/detail/view/{key}")


@router.get("/detail/view/{key}")
def detail_view(request: Request, key: str):
    """A detail read by ``POST /detail``, shown again from the session's memory (a reload logs nothing)."""
    ctx = A.context(request)
    authorize_search(request, ctx, [], "detail_view")     # no search right at all: a logged refusal first
    kept = A.scratch(request).get(ctx.session.session_hash, key) if key.startswith("detail-") else None
    if kept is None:
        return message(request, "本人確認情報 詳細", "この詳細の表示期限が過ぎました。検索結果から開き直してください。",
                       code="DETAIL_EXPIRED", status=404, ctx=ctx, link="/search/results", link_text="検索結果に戻る")
    d = kept["d"]
    authorize_search(request, ctx, [d.register], "detail_view")
    stored = _stored_search(request, ctx)
    page = stored["f"].get("page", "1") if stored else None
    return render(request, "detail.html", ctx, d=d, rows=_detail_rows(d), purpose_code=kept["purpose_code"],
                  case_ref=kept["case_ref"], back_page=page)
