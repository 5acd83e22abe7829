"""Terminal API of 事務5: 4情報 search and the detail view — the same services as the UI."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Literal, Optional

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from jukinet.search import kojin_bango as NB
from jukinet.search import service as S
from jukinet.security import number_display as ND
from jukinet.security import roles as R
from jukinet.web import auth as A
from jukinet.web.api_common import ERRORS, api_ctx
from jukinet.web.auth import authorize_search

router = APIRouter(prefix="/api/v1", tags=["事務5 検索"], responses=ERRORS)


class SearchRequest(BaseModel):
    purpose_code: str = Field(description="検索の目的 (jukinet.security.roles.PURPOSES のコード)")
    case_ref: Optional[str] = Field(None, max_length=32)
    registers: list[Literal["juki", "fuhyo"]] = ["juki"]
    name: Optional[str] = Field(None, max_length=60, description="氏名 (漢字) または ふりがな")
    name_match: Literal["exact", "prefix"] = "exact"
    birth_date: Optional[date] = Field(None, description="生年月日 (完全一致)")
    birth_from: Optional[date] = None
    birth_to: Optional[date] = None
    sex: Optional[Literal["1", "2"]] = None
    address: Optional[str] = Field(None, max_length=120, description="住所 (前方一致)")
    include_removed: bool = False
    page: int = Field(1, ge=1)


#: "register" is our item (juki | fuhyo); as a Python attribute it would shadow BaseModel.register (ABC)
REGISTER = dict(alias="register", serialization_alias="register")
BY_NAME = ConfigDict(populate_by_name=True)


class HitOut(BaseModel):
    model_config = BY_NAME
    register_: str = Field(**REGISTER)
    juminhyo_code: str
    name: str
    name_kana: str
    birth_date: date
    sex: str
    address: Optional[str]
    removed: bool
    gaiji: bool


class RegisterCount(BaseModel):
    model_config = BY_NAME
    register_: str = Field(**REGISTER)
    count: int
    over_cap: bool


class SearchResponse(BaseModel):
    total: int
    over_cap: bool
    cap: int
    page: int
    pages: int
    registers: list[RegisterCount]
    hits: list[HitOut]


class DetailRequest(BaseModel):
    purpose_code: str
    case_ref: Optional[str] = Field(None, max_length=32)
    model_config = BY_NAME
    register_: Literal["juki", "fuhyo"] = Field("juki", **REGISTER)
    juminhyo_code: str = Field(min_length=11, max_length=11)
    reveal_kojin_bango: bool = Field(False, description=(
        "個人番号を全桁で返す (住基のみ)。検索の目的が個人番号を必要とする場合 (verify・correction・consistency・"
        "provision) に限り、操作ログ kojin_bango_reveal に記録して応じる。それ以外の目的は "
        "KOJIN_BANGO_NOT_NEEDED で拒否。既定は下4桁のみ (●●●●●●●●1234)"))


class DetailResponse(BaseModel):
    model_config = BY_NAME
    register_: str = Field(**REGISTER)
    record: dict
    history: list[dict]
    kojin_bango_revealed: bool = Field(False, description="個人番号を全桁で返したか (既定: 下4桁のみ)")


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """4情報 search (S1). More than ``cap`` matches are not listed (``over_cap``)."""
    authorize_search(request, ctx, body.registers, "search")
    sec = A.security(request)
    bf, bt = (body.birth_date, body.birth_date) if body.birth_date else (body.birth_from, body.birth_to)
    cmd = S.SearchCommand(purpose_code=body.purpose_code, case_ref=body.case_ref, registers=tuple(body.registers),
                          name=body.name, name_match=body.name_match, birth_from=bf, birth_to=bt, sex=body.sex,
                          address=body.address, include_removed=body.include_removed, page=body.page)
    try:
        res = S.search(cmd, sec.registers, sec.oplog, ctx.actor, cap=sec.cfg.search_cap,
                       page_size=sec.cfg.search_page_size, prefecture_name=sec.config.prefecture_name)
    except S.JukinetError as e:
        if not isinstance(e, A.Refused):
            sec.log_refusal(ctx.actor, "search", e, chain=body.registers[0] if body.registers else "admin")
        raise
    return SearchResponse(total=res.total, over_cap=res.over_cap, cap=res.cap, page=res.page, pages=res.pages,
                          registers=[RegisterCount(register_=r.register, count=r.count, over_cap=r.over_cap)
                                     for r in res.registers],
                          hits=[HitOut(**{k: getattr(h, k.rstrip('_')) for k in HitOut.model_fields}) for h in res.page_hits()])


def _record(r) -> dict:
    d = dataclasses.asdict(r)
    d.pop("name_seion", None)
    return d


@router.post("/persons/detail", response_model=DetailResponse)
def detail(body: DetailRequest, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """One person's record (current or removed) with every earlier version; 住民票コード in the body.

    The 個人番号 is masked (``●●●●●●●●1234``) unless ``reveal_kojin_bango`` is true and the stated
    purpose needs the number (A3, ADR 0032/0042): then it is returned in full and the display is a
    ``kojin_bango_reveal`` entry of its own in the juki operation log. A request to reveal for any
    other purpose is refused (``KOJIN_BANGO_NOT_NEEDED``, logged) before anything is read."""
    authorize_search(request, ctx, [body.register_], "detail")
    sec = A.security(request)
    cmd = S.DetailCommand(purpose_code=body.purpose_code, register=body.register_,
                          juminhyo_code=body.juminhyo_code, case_ref=body.case_ref)
    if body.reveal_kojin_bango:
        _check_reveal(body, sec, ctx)
    try:
        d = S.detail(cmd, sec.registers, sec.oplog, ctx.actor)
    except S.JukinetError as e:
        if e.code != "NOT_FOUND" and not isinstance(e, A.Refused):
            sec.log_refusal(ctx.actor, "detail", e, chain=body.register_)
        raise
    record, history = _record(d.record), [_record(h) for h in d.history]
    revealed = False
    if body.reveal_kojin_bango and record.get("kojin_bango"):
        NB.reveal(NB.RevealCommand(purpose_code=body.purpose_code, juminhyo_code=body.juminhyo_code,
                                   case_ref=body.case_ref), sec.registers, sec.oplog, ctx.actor)
        revealed = True
    else:
        record, history = ND.mask_fields(record), [ND.mask_fields(h) for h in history]
    return DetailResponse(register_=d.register, record=record, history=history, kojin_bango_revealed=revealed)


def _check_reveal(body: DetailRequest, sec, ctx: A.Ctx) -> None:
    """A request for the full 個人番号: refused (and logged) unless the purpose needs it."""
    try:
        S.validate_purpose(body.purpose_code, body.case_ref)
        if body.register_ != "juki":
            raise S.JukinetError(*ND.NOT_HELD[:2], field="reveal_kojin_bango")
        if not ND.revealable(body.purpose_code):
            raise A.Refused(*ND.NOT_NEEDED[:2], status=ND.NOT_NEEDED[2], field="reveal_kojin_bango")
    except S.JukinetError as e:
        sec.log_refusal(ctx.actor, ND.ACTION, e, chain=body.register_,
                        purpose_code=body.purpose_code if body.purpose_code in R.PURPOSES else None)
        raise
