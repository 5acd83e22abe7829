"""事務2/事務4 doors: the operator screens and the terminal API of provision, batch provision, approvals,
the catalogue and national queries — thin: who is asking (:mod:`jukinet.web.auth`), then a service of
:mod:`jukinet.provision`, then a page or JSON.

Personal data travels only in POST bodies (keys, uploaded conditions files) and answers; every page
is ``Cache-Control: no-store`` (set by the operator side's middleware). A result file is downloaded by
POST, only by the operator who made it, and each download is counted in the media register and logged.

Screens: ``/provision`` (single provision), ``/provision/batch`` (一括提供), ``/provision/approvals``
(A5), ``/provision/media`` (媒体管理簿), ``/provision/catalogue`` (P1, システム管理者),
``/query/national`` (事務4). API: ``/api/v1/provision…``, ``/api/v1/national/query``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Optional

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from jukinet.bootstrap import Installation
from jukinet.errors import JukinetError
from jukinet.provision import access, approvals
from jukinet.provision import catalogue as C
from jukinet.provision.batch import BatchCommand, BatchService
from jukinet.provision.items import ITEMS
from jukinet.provision.records import recent as recent_records
from jukinet.provision.service import NationalQueryCommand, ProvideCommand, ProvisionService
from jukinet.security import number_display as ND
from jukinet.security.model import FORBIDDEN, Refused, refused
from jukinet.store.tables_provision import provision_media
from jukinet.web import auth as A
from jukinet.web import jobs
from jukinet.web.api_common import ERRORS, api_ctx
from jukinet.web.pages import ctx_post, render, see_other, shown

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["事務2 提供・移転 / 事務4 全国サーバ照会"], responses=ERRORS)

SOURCE = {"local": "県内 (本人確認情報ファイル)", "national": "全国サーバ (県外)"}
OUTCOME = {"provided": "提供", "not_found": "該当なし", "ambiguous": "複数該当", "failed": "照会失敗"}


def svc(request: Request) -> ProvisionService:
    return request.app.state.provision


def _require(request: Request, ctx: A.Ctx, what: str, register: str | None, action: str) -> None:
    if not access.can(ctx.operator, what, register):
        chain = register if register in ("juki", "fuhyo") else "admin"
        raise A.security(request).refuse(ctx.actor, action, refused(FORBIDDEN), chain=chain,
                                         detail={"permission": what})


def _page(request: Request, name: str, ctx: A.Ctx, status: int = 200, **kw):
    spec = svc(request).catalogue()
    return render(request, f"provision/{name}", ctx, status=status, spec=spec, ITEMS=ITEMS, SOURCE=SOURCE,
                  OUTCOME=OUTCOME, access=access, C=C, **kw)


# ================================================================== single provision (P2, P3, P5, P6)

def _provide_form(form) -> dict:
    f = {k: (form.get(k) or "").strip() for k in ("requester_code", "affair_code", "juminhyo_code", "kojin_bango",
                                                   "name", "birth_date", "sex", "address", "case_ref")}
    grant = (form.get("grant") or "").strip()      # the screen's one select: "<requester>|<affair>"
    if grant and "|" in grant:
        f["requester_code"], f["affair_code"] = grant.split("|", 1)
    return f


@router.get("/provision")
def provision_page(request: Request):
    ctx = A.context(request)
    _require(request, ctx, "provide", None, "provision_form")
    return _page(request, "single.html", ctx, **{"f": {}, **shown(request, ctx)})


@router.post("/provision")
async def provision_submit(request: Request):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "provide", None, "provision")
    f = _provide_form(form)
    items = [i for i in form.getlist("items") if i] or None
    result, error = None, None
    try:
        result = svc(request).provide(ProvideCommand(items=items, **{k: v or None for k, v in f.items()}),
                                      ctx.operator, ctx.terminal_id,
                                      channel="terminal")
    except JukinetError as e:
        error = e
    if error is None:   # Post/Redirect/Get: a reload does not provide (and record) again
        return see_other(request, ctx, "/provision", f=f, result=result)
    status = error.status if isinstance(error, Refused) else 400
    return _page(request, "single.html", ctx, status=status, f=f, result=result, error=error)


class ProvideIn(BaseModel):
    requester_code: str = Field(max_length=20, description="提供先・移転先コード (カタログ)")
    affair_code: str = Field(max_length=40, description="事務コード (カタログ)")
    juminhyo_code: Optional[str] = Field(None, max_length=20)
    kojin_bango: Optional[str] = Field(None, max_length=20, description="番号法で認められた事務のみ")
    name: Optional[str] = Field(None, max_length=60, description="氏名 (漢字またはかな)")
    birth_date: Optional[str] = Field(None, max_length=20, description="西暦 YYYY-MM-DD または和暦")
    sex: Optional[str] = Field(None, max_length=2, description="1 (男) / 2 (女)")
    address: Optional[str] = Field(None, max_length=120)
    items: Optional[list[str]] = Field(None, description="提供を求める項目 (省略時は事務の全項目)")
    case_ref: Optional[str] = Field(None, max_length=32)


#: "register" is our item (juki | fuhyo); as a Python attribute it would shadow BaseModel.register (ABC)
REGISTER = dict(alias="register", serialization_alias="register")


class ProvideOut(BaseModel):
    record_id: Optional[int]
    register_: str = Field(**REGISTER)
    kind: str
    requester_code: str
    affair_code: str
    legal_basis: str
    outcome: str
    message: str
    source: Optional[str]
    prefecture: Optional[str]
    removed: bool
    items: dict
    match: dict
    number_included: bool
    number_note: Optional[str]
    number_code: Optional[str] = None      # P7: why the 個人番号 was refused (e.g. KOJIN_BANGO_NOT_ABROAD)


@api.post("/provision", response_model=ProvideOut)
def api_provide(body: ProvideIn, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """提供・移転 (1件): 住民票コード・個人番号・4情報のいずれかをキーに、事務の項目だけを返す。4情報を送ると
    突合の結果 (一致/不一致) を返す。県外の者は全国サーバに照会する。すべての試行は提供・移転の記録に残る。"""
    r = svc(request).provide(ProvideCommand(**body.model_dump()), ctx.operator, ctx.terminal_id, channel="api")
    return ProvideOut(record_id=r.record_id, register=r.register, kind=r.kind, requester_code=r.requester.code,
                      affair_code=r.affair.code, legal_basis=r.affair.basis, outcome=r.outcome, message=r.message,
                      source=r.source, prefecture=r.prefecture, removed=r.removed,
                      items={i: r.values.get(i) for i in r.items} if r.provided else {}, match=r.match,
                      number_included=r.number_included, number_note=r.number_note, number_code=r.number_code)


@api.get("/provision/catalogue")
def api_catalogue(request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """提供先・移転先、事務 (根拠・ファイル・項目・個人番号の可否) と割当て (個人情報を含まない)."""
    if not (access.can(ctx.operator, "provide") or access.can(ctx.operator, "catalogue")):
        _require(request, ctx, "provide", None, "catalogue_view")
    spec = svc(request).catalogue()
    return {"requesters": [{"code": r.code, "name": r.name, "kind": r.kind, "status": r.status}
                           for r in sorted(spec.requesters.values(), key=lambda r: r.code)],
            "affairs": [{"code": a.code, "name": a.name, "source": a.source, "basis": a.basis, "register": a.register,
                         "items": list(a.items), "kojin_bango": a.kojin_bango_allowed,
                         "kojin_bango_basis": a.kojin_bango_basis, "status": a.status,
                         "requesters": spec.requesters_of(a.code)}
                        for a in sorted(spec.affairs.values(), key=lambda a: a.code)]}


# ================================================================== batch provision (P4, A5)

async def _save_upload(upload, limit: int = 512 * 1024 * 1024) -> Path:
    """The uploaded conditions file, streamed to a private temporary file (removed after the run)."""
    fd, name = tempfile.mkstemp(prefix="jukinet-batch-", suffix=".csv")
    size = 0
    with os.fdopen(fd, "wb") as f:
        while True:
            chunk = await upload.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                f.close()
                os.unlink(name)
                raise JukinetError("FILE_TOO_LARGE", "ファイルが大きすぎます。分割してください。", field="file")
            f.write(chunk)
    return Path(name)


def _batch_form(form) -> dict:
    return {k: (form.get(k) or "").strip() for k in ("requester_code", "affair_code", "encoding", "approval_id",
                                                      "purpose", "case_ref")}


@router.get("/provision/batch")
def batch_page(request: Request):
    ctx = A.context(request)
    _require(request, ctx, "provide", None, "provision_batch_form")
    return _page(request, "batch.html", ctx, f={"encoding": "auto"},
                 threshold=request.app.state.config.provision.batch_approval_threshold)


@router.post("/provision/batch")
async def batch_submit(request: Request):
    """確認のみ: answered at once. A run: started in the background (:mod:`jukinet.web.jobs`) with a progress
    display; its result page shows the result file's password once (issue 19, ADR 0048)."""
    ctx, form = await ctx_post(request)
    _require(request, ctx, "provide", None, "provision_batch")
    f = _batch_form(form)
    upload = form.get("file")
    check = error = None
    path = None
    try:
        if upload is None or not hasattr(upload, "read"):
            raise JukinetError("FILE_REQUIRED", "照会条件ファイルを選択してください。", field="file")
        path = await _save_upload(upload)
        cmd = BatchCommand(f["requester_code"], f["affair_code"], path, encoding=f["encoding"] or "auto",
                           approval_id=f["approval_id"] or None, purpose=f["purpose"] or None,
                           case_ref=f["case_ref"] or None)
        b = BatchService(svc(request))
        if form.get("check_only"):
            check = await run_in_threadpool(b.check, cmd, ctx.operator, ctx.terminal_id, channel="terminal")
        else:
            run_path, path = path, None        # the job removes it when the run is over
            op, terminal_id = ctx.operator, ctx.terminal_id

            def work(job: jobs.Job):
                job.progress(0, None, "照会条件ファイルの確認")
                return b.run(cmd, op, terminal_id, channel="terminal",
                             progress=lambda done, total: job.progress(done, total, "照会・結果ファイルの作成"))

            return jobs.start(request, ctx, title="一括提供", back="/provision/batch", work=work,
                              finish=_batch_finished, unit="行", cleanup=lambda: run_path.unlink(missing_ok=True), f=f)
    except JukinetError as e:
        error = e
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
    status = 200 if error is None else (error.status if isinstance(error, Refused) else 400)
    return _page(request, "batch.html", ctx, status=status, f=f, check=check, error=error,
                 threshold=request.app.state.config.provision.batch_approval_threshold)


def _batch_finished(request: Request, ctx: A.Ctx, job: jobs.Job):
    """The result page of a batch run (GET, after the progress display). The result file's password is
    shown on the first display only; a reload says it was shown (the password is not kept)."""
    error, result = job.error, job.result
    password = None
    if result is not None:
        password = job.data.pop("password", result.password)
        job.data["password"] = None
        result.password = ""          # the only copy left is the one on the screen being sent
    status = 200 if error is None else (error.status if isinstance(error, Refused) else 400)
    return _page(request, "batch.html", ctx, status=status, f=job.data.get("f", {}), result=result, error=error,
                 password=password, threshold=request.app.state.config.provision.batch_approval_threshold)


def _media_row(request: Request, media_id: str):
    with request.app.state.registers.admin_tx(write=False) as conn:
        return conn.execute(select(provision_media).where(provision_media.c.media_id == media_id)).first()


def _download(request: Request, ctx: A.Ctx, media_id: str) -> Response:
    _require(request, ctx, "provide", None, "media_download")   # refused before any lookup (A7)
    row = _media_row(request, media_id)
    if row is None or row.status != "written":
        raise JukinetError("MEDIA_UNKNOWN", "媒体IDが見つかりません。")
    if row.operator_id != ctx.operator.operator_id:
        raise A.security(request).refuse(ctx.actor, "media_download", refused(FORBIDDEN), chain="admin",
                                         detail={"media": media_id})
    path = request.app.state.config.resolve(request.app.state.config.provision.media_dir) / f"{media_id}.jkm"
    if not path.is_file() or row.erased_at is not None:
        raise JukinetError("MEDIA_ERASED", "結果ファイルはサーバから消去されています。")
    now = datetime.now(timezone.utc)
    regs = request.app.state.registers
    with regs.admin_tx() as conn:
        conn.execute(update(provision_media).where(provision_media.c.media_id == media_id)
                     .values(downloads=provision_media.c.downloads + 1, last_download_at=now))
        svc(request).oplog.append(conn, "admin", actor=ctx.actor, action="media_download", now=now,
                                  detail={"media": media_id, "sha256": row.sha256})
    return FileResponse(path, media_type="application/octet-stream", filename=f"{media_id}.jkm")


@router.post("/provision/media/{media_id}/download")
async def media_download(request: Request, media_id: str):
    ctx, _ = await ctx_post(request)
    return _download(request, ctx, media_id)


@router.get("/provision/media")
def media_page(request: Request):
    ctx = A.context(request)
    if not (access.can(ctx.operator, "records") or access.can(ctx.operator, "provide")):
        _require(request, ctx, "records", None, "media_view")
    t = provision_media
    q = select(t).order_by(t.c.created_at.desc()).limit(200)
    if not access.can(ctx.operator, "records"):
        q = q.where(t.c.operator_id == ctx.operator.operator_id)     # an operator sees their own outputs
    with request.app.state.registers.admin_tx(write=False) as conn:
        rows = conn.execute(q).all()
    return _page(request, "media.html", ctx, rows=rows)


class BatchOut(BaseModel):
    media_id: str
    register_: str = Field(**REGISTER)
    password: str = Field(description="この応答でのみ返す。媒体とは別に手渡すこと")
    rows: int
    provided: int
    not_found: int
    ambiguous: int
    errors: int
    failed: int
    national: int
    number_refused: int = Field(0, description="個人番号を提供しなかった行 (国外転出者でない者; 結果コード KOJIN_BANGO_NOT_ABROAD)")
    size: int
    sha256: str
    key_id: str
    approval_id: Optional[str]


class CheckOut(BaseModel):
    rows: int
    encoding: str
    columns: list[str]
    errors: int
    error_codes: dict
    approval_required: bool


@api.post("/provision/batch", response_model=BatchOut | CheckOut)
async def api_batch(request: Request, file: UploadFile = File(...), requester_code: str = Form(...),
                    affair_code: str = Form(...), encoding: str = Form("auto"), approval_id: Optional[str] = Form(None),
                    purpose: Optional[str] = Form(None), case_ref: Optional[str] = Form(None),
                    check_only: bool = Form(False), ctx: A.Ctx = Depends(api_ctx)):
    """一括提供: 照会条件ファイル (CSV, UTF-8 / Shift_JIS) → 暗号化した結果ファイル (jukinet.media/1)。
    結果ファイルは ``POST /api/v1/provision/media/{media_id}/download`` で取得する。"""
    path = await _save_upload(file)
    try:
        cmd = BatchCommand(requester_code, affair_code, path, encoding=encoding, approval_id=approval_id or None,
                           purpose=purpose, case_ref=case_ref)
        b = BatchService(svc(request))
        if check_only:
            c = b.check(cmd, ctx.operator, ctx.terminal_id, channel="api")
            return CheckOut(**c.__dict__)
        r = b.run(cmd, ctx.operator, ctx.terminal_id, channel="api")
    finally:
        path.unlink(missing_ok=True)
    return BatchOut(media_id=r.media_id, register=r.register, password=r.password, rows=r.rows, provided=r.provided,
                    not_found=r.not_found, ambiguous=r.ambiguous, errors=r.errors, failed=r.failed,
                    national=r.national, number_refused=r.number_refused, size=r.size, sha256=r.sha256,
                    key_id=r.key_id, approval_id=r.approval_id)


@api.post("/provision/media/{media_id}/download")
def api_media_download(media_id: str, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """結果ファイル (暗号化済み) の取得 — 作成した操作者のみ。取得は媒体管理簿と操作ログに記録する。"""
    return _download(request, ctx, media_id)


# ================================================================== approvals (A5)

@router.get("/provision/approvals")
def approvals_page(request: Request):
    ctx = A.context(request)
    if not (access.can(ctx.operator, "provide") or access.can(ctx.operator, "approve")):
        _require(request, ctx, "approve", None, "approval_view")
    return _page(request, "approvals.html", ctx, items=approvals.listing(request.app.state.registers),
                 now=datetime.now(timezone.utc), **{"f": {}, **shown(request, ctx)})


@router.post("/provision/approvals")
async def approvals_request(request: Request):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "provide", None, "approval_request")
    f = {k: (form.get(k) or "").strip() for k in ("requester_code", "affair_code", "max_rows", "purpose", "days")}
    error = notice = None
    try:
        try:
            rows = int(f["max_rows"])
            days = int(f["days"]) if f["days"] else None
        except ValueError:
            raise JukinetError("ROWS_INVALID", "件数・有効期間は数字で入力してください。", field="max_rows") from None
        a = approvals.request(request.app.state.registers, svc(request).oplog, request.app.state.config, ctx.operator,
                              ctx.terminal_id, requester_code=f["requester_code"], affair_code=f["affair_code"],
                              max_rows=rows, purpose=f["purpose"], days=days)
        return see_other(request, ctx, "/provision/approvals", notice=f"承認を申請しました: {a.approval_id}")
    except JukinetError as e:
        error = e
    return _page(request, "approvals.html", ctx, status=200 if error is None else 400,
                 items=approvals.listing(request.app.state.registers), now=datetime.now(timezone.utc), f=f,
                 error=error, notice=notice)


@router.post("/provision/approvals/{approval_id}/decide")
async def approvals_decide(request: Request, approval_id: str):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "approve", None, "approval_decide")
    error = notice = None
    try:
        a = approvals.decide(request.app.state.registers, svc(request).oplog, ctx.operator, ctx.terminal_id,
                             approval_id, approve=form.get("decision") == "approve")
        return see_other(request, ctx, "/provision/approvals",
                         notice=f"{a.approval_id} を「{approvals.STATUS[a.status]}」にしました。")
    except JukinetError as e:
        error = e
    return _page(request, "approvals.html", ctx, status=200 if error is None else 400,
                 items=approvals.listing(request.app.state.registers), now=datetime.now(timezone.utc), f={},
                 error=error, notice=notice)


class ApprovalIn(BaseModel):
    requester_code: str
    affair_code: str
    max_rows: int = Field(ge=1)
    purpose: str = Field(max_length=200, description="利用目的 (個人情報を書かない)")
    days: Optional[int] = Field(None, ge=1)


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject"]


def _approval_out(a: approvals.Approval) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in a.__dict__.items()}


@api.post("/provision/approvals")
def api_approval_request(body: ApprovalIn, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """一括提供の事前承認を申請する (業務担当者)."""
    _require(request, ctx, "provide", None, "approval_request")   # refused before any lookup (A7)
    a = approvals.request(request.app.state.registers, svc(request).oplog, request.app.state.config, ctx.operator,
                          ctx.terminal_id, **body.model_dump())
    return _approval_out(a)


@api.post("/provision/approvals/{approval_id}/decide")
def api_approval_decide(approval_id: str, body: DecisionIn, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """申請を承認・却下する (管理責任者; 自分の申請は不可)."""
    _require(request, ctx, "approve", None, "approval_decide")   # refused before any lookup (A7)
    a = approvals.decide(request.app.state.registers, svc(request).oplog, ctx.operator, ctx.terminal_id, approval_id,
                         approve=body.decision == "approve")
    return _approval_out(a)


# ================================================================== catalogue (P1, システム管理者)

def _catalogue(request: Request, ctx: A.Ctx, status: int = 200, **kw):
    return _page(request, "catalogue.html", ctx, status=status, history=C.history(request.app.state.registers),
                 **kw)


@router.get("/provision/catalogue")
def catalogue_page(request: Request):
    ctx = A.context(request)
    _require(request, ctx, "catalogue", None, "catalogue_view")
    return _catalogue(request, ctx, **shown(request, ctx))


@router.get("/provision/catalogue.toml")
def catalogue_export(request: Request):
    ctx = A.context(request)
    _require(request, ctx, "catalogue", None, "catalogue_export")
    return Response(C.to_toml(svc(request).catalogue()), media_type="application/toml; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="catalogue.toml"'})


@router.post("/provision/catalogue/upload")
async def catalogue_upload(request: Request):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "catalogue", None, "catalogue_load")
    upload = form.get("file")
    try:
        if upload is None or not hasattr(upload, "read"):
            raise JukinetError("FILE_REQUIRED", "カタログファイルを選択してください。", field="file")
        data = await upload.read(4 * 1024 * 1024 + 1)
        if len(data) > 4 * 1024 * 1024:
            raise JukinetError("FILE_TOO_LARGE", "カタログファイルが大きすぎます。", field="file")
        changes = C.load_file(request.app.state.registers, svc(request).oplog, data, actor=ctx.actor, via="screen")
    except JukinetError as e:
        # whatever is wrong inside the file, on this form it is the file field that is wrong
        return _catalogue(request, ctx, status=400, error=JukinetError(e.code, e.message, field="file"),
                          error_form="upload")
    return see_other(request, ctx, "/provision/catalogue", notice=f"カタログを読み込みました (変更 {len(changes)} 件)。")


@router.post("/provision/catalogue/affairs")
async def catalogue_affair(request: Request):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "catalogue", None, "catalogue_edit")
    try:
        code = (form.get("code") or "").strip()
        spec = svc(request).catalogue()
        a = C.Affair(code=code, name=(form.get("name") or "").strip(), source=form.get("source") or "",
                     basis=(form.get("basis") or "").strip(), register=form.get("register") or "",
                     items=tuple(i for i in form.getlist("items") if i),
                     kojin_bango_allowed=bool(form.get("kojin_bango_allowed")),
                     kojin_bango_basis=(form.get("kojin_bango_basis") or "").strip() or None,
                     status="retired" if form.get("retired") else "active")
        grants = {rc: rc in form.getlist("requesters") for rc in spec.requesters}
        changes = C.edit(request.app.state.registers, svc(request).oplog, actor=ctx.actor, affair=a, grants=grants)
    except JukinetError as e:
        return _catalogue(request, ctx, status=400, error=e, error_form="affair")
    return see_other(request, ctx, "/provision/catalogue", notice=f"事務 {code} を保存しました (変更 {len(changes)} 件)。")


@router.post("/provision/catalogue/requesters")
async def catalogue_requester(request: Request):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "catalogue", None, "catalogue_edit")
    try:
        code = (form.get("code") or "").strip()
        r = C.Requester(code, (form.get("name") or "").strip(), form.get("kind") or "",
                        "retired" if form.get("retired") else "active")
        changes = C.edit(request.app.state.registers, svc(request).oplog, actor=ctx.actor, requester=r)
    except JukinetError as e:
        return _catalogue(request, ctx, status=400, error=e, error_form="requester",
                          f={k: (form.get(k) or "") for k in ("code", "name", "kind")})
    return see_other(request, ctx, "/provision/catalogue", notice=f"提供先・移転先 {code} を保存しました (変更 {len(changes)} 件)。")


# ================================================================== national query (N1, 事務4)

@router.get("/query/national")
def national_page(request: Request):
    ctx = A.context(request)
    _require(request, ctx, "national", None, "national_query_form")
    return _page(request, "national.html", ctx, **{
        "f": {"register": (access.registers_for(ctx.operator, "national") or ["juki"])[0]}, **shown(request, ctx)})


@router.post("/query/national")
async def national_submit(request: Request):
    ctx, form = await ctx_post(request)
    _require(request, ctx, "national", None, "national_query")
    f = {k: (form.get(k) or "").strip() for k in ("register", "purpose_code", "case_ref", "juminhyo_code",
                                                   "kojin_bango", "name", "birth_date", "sex", "address")}
    result = error = None
    try:
        # the screen shows the full 個人番号 only for a purpose that needs it (ADR 0032); the service masks otherwise
        result = svc(request).national_query(NationalQueryCommand(**{k: (v or None) if k != "register" else v
                                                                     for k, v in f.items()},
                                                                  reveal_kojin_bango=ND.revealable(f["purpose_code"])),
                                             ctx.operator, ctx.terminal_id, channel="terminal")
    except JukinetError as e:
        error = e
    if error is None:   # Post/Redirect/Get: a reload does not query (and record) again
        return see_other(request, ctx, "/query/national", f=f, result=result)
    status = error.status if isinstance(error, Refused) else 400
    return _page(request, "national.html", ctx, status=status, f=f, result=result, error=error)


class NationalIn(BaseModel):
    register_: Literal["juki", "fuhyo"] = Field("juki", **REGISTER)
    purpose_code: str
    case_ref: Optional[str] = Field(None, max_length=32)
    juminhyo_code: Optional[str] = Field(None, max_length=20)
    kojin_bango: Optional[str] = Field(None, max_length=20)
    name: Optional[str] = Field(None, max_length=60)
    birth_date: Optional[str] = Field(None, max_length=20)
    sex: Optional[str] = Field(None, max_length=2)
    address: Optional[str] = Field(None, max_length=120)
    reveal_kojin_bango: bool = Field(False, description=(
        "結果の個人番号を全桁で返す (全国サーバのみ)。照会の目的が個人番号を必要とする場合に限り応じ、照会の操作ログに "
        "number_included として記録する。それ以外は KOJIN_BANGO_NOT_NEEDED で拒否。既定は下4桁のみ"))


@api.post("/national/query")
def api_national(body: NationalIn, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """全国サーバ (juki) / 附票全国サーバ (fuhyo) への照会: 住民票コード・個人番号 (全国サーバのみ)・4情報."""
    r = svc(request).national_query(NationalQueryCommand(**body.model_dump(by_alias=True)), ctx.operator,
                                    ctx.terminal_id, channel="api")
    return {"record_id": r.record_id, "register": r.register, "outcome": r.outcome, "message": r.message,
            "results": r.results}


# ================================================================== provision record (managers, auditors)

@router.get("/provision/records")
def records_page(request: Request, register: str = "juki"):
    ctx = A.context(request)
    register = register if register in ("juki", "fuhyo") else "juki"
    _require(request, ctx, "records", register, "provision_records_view")
    with request.app.state.registers.uow(register, write=False) as uow:
        rows = recent_records(uow.conn, register, limit=200)
    with request.app.state.registers.admin_tx() as conn:
        svc(request).oplog.append(conn, "admin", actor=ctx.actor, action="provision_records_view",
                                  detail={"register": register}, result_count=len(rows))
    return _page(request, "records.html", ctx, rows=rows, register=register)


def install(app: FastAPI, inst: Installation) -> None:
    """Add the 事務2/事務4 screens and API to the application (after the operator side)."""
    app.state.provision = inst.provision
    app.include_router(router)
    app.include_router(api)


__all__ = ["install", "router", "api"]
