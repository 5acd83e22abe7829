"""事務3 doors: the operator screens of disclosure to residents — thin: who is asking
(:mod:`jukinet.web.auth`), then :class:`jukinet.disclosure.service.DisclosureService`, then a page or a PDF.

Personal data travels only in POST bodies and answers (request numbers are office references, not
personal data); every page and PDF is ``Cache-Control: no-store`` (the operator side's middleware).

Screens: ``/disclosure`` (受付・突合・帳票交付), ``/disclosure/corrections`` (訂正等の申出),
``/disclosure/suspensions`` (利用停止請求, O4), ``/disclosure/reports`` (市町村への通報, O5),
``/disclosure/forms`` (帳票管理簿, CSV), ``/disclosure/inquiries`` (問合せ記録, CSV).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from jukinet.bootstrap import Installation
from jukinet.disclosure import access
from jukinet.disclosure import reports as R
from jukinet.disclosure import service as S
from jukinet.errors import JukinetError
from jukinet.security.model import Refused
from jukinet.web import auth as A
from jukinet.web.pages import ctx_post, render, see_other, shown

router = APIRouter(include_in_schema=False)


def svc(request: Request) -> S.DisclosureService:
    return request.app.state.disclosure


def _reg(value) -> str:
    return value if value in ("juki", "fuhyo") else "juki"


def _page(request: Request, name: str, ctx: A.Ctx, status: int = 200, **kw):
    return render(request, f"disclosure/{name}", ctx, status=status, S=S, access=access, **kw)


def _status(e: JukinetError) -> int:
    return e.status if isinstance(e, Refused) else 400


def _pdf(issued: S.Issued) -> Response:
    return Response(issued.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{issued.serial}.pdf"', "X-Form-Serial": issued.serial})


# ---- 受付・突合・交付 (O1, O3) --------------------------------------------------------------------

def _index(request: Request, ctx: A.Ctx, register: str, status: int = 200, **kw):
    rows = svc(request).requests(register, ctx.operator, ctx.terminal_id) if access.can(ctx.operator, "handle",
                                                                                        register) else []
    return _page(request, "index.html", ctx, status=status, register=register, rows=rows, **kw)


@router.get("/disclosure")
def index(request: Request, register: str = "juki"):
    ctx = A.context(request)
    register = _reg(register)
    svc(request)._require(ctx.operator, ctx.terminal_id, "handle", register, "disclosure_view")
    return _index(request, ctx, register, f={}, **shown(request, ctx))


@router.post("/disclosure/intake")
async def intake(request: Request):
    ctx, form = await ctx_post(request)
    f = {k: (form.get(k) or "").strip() for k in ("register", "request_no", "name", "birth_date", "sex", "address",
                                                   "scope")}
    register = _reg(f.pop("register"))
    try:
        result = svc(request).intake(S.IntakeCommand(register=register, **f), ctx.operator, ctx.terminal_id)
    except Refused:
        raise
    except JukinetError as e:
        return _index(request, ctx, register, status=_status(e), f=f, error=e, error_form="intake")
    return see_other(request, ctx, f"/disclosure?register={register}", result=result)


@router.post("/disclosure/decide")
async def decide(request: Request):
    ctx, form = await ctx_post(request)
    register, no = _reg(form.get("register")), (form.get("request_no") or "").strip()
    try:
        svc(request).decide(register, no, form.get("decision") or "", form.get("reason") or "", ctx.operator,
                            ctx.terminal_id)
    except Refused:
        raise
    except JukinetError as e:
        return _index(request, ctx, register, status=_status(e), f={}, error=e)
    return see_other(request, ctx, f"/disclosure?register={register}", notice=f"請求番号 {no} の判断を記録しました。")


@router.post("/disclosure/form")
async def issue(request: Request):
    ctx, form = await ctx_post(request)
    register, no = _reg(form.get("register")), (form.get("request_no") or "").strip()
    kind = form.get("kind") or "identity"
    purpose, copies = form.get("purpose") or "disclosure_request", form.get("copies") or "1"
    try:
        copies = int(copies)
        if kind == "provisions":
            issued = svc(request).provisions_form(register, no, ctx.operator, ctx.terminal_id, purpose=purpose,
                                                  copies=copies)
        else:
            issued = svc(request).disclosure_form(register, no, ctx.operator, ctx.terminal_id, purpose=purpose,
                                                  copies=copies, with_history=kind == "history")
    except Refused:
        raise
    except ValueError:
        e = JukinetError("COPIES_RANGE", "部数は1〜5部です。", field="copies")
        return _index(request, ctx, register, status=400, f={}, error=e)
    except JukinetError as e:
        return _index(request, ctx, register, status=_status(e), f={}, error=e)
    return _pdf(issued)


# ---- 訂正等の申出 (O2) ----------------------------------------------------------------------------

def _corrections(request: Request, ctx: A.Ctx, register: str, status: int = 200, **kw):
    rows = svc(request).corrections(register, ctx.operator, ctx.terminal_id)
    steps = {r.correction_id: svc(request).steps(register, r.correction_id) for r in rows[:50]}
    return _page(request, "corrections.html", ctx, status=status, register=register, rows=rows, steps=steps,
                 today=S.today_jst(), **kw)


@router.get("/disclosure/corrections")
def corrections(request: Request, register: str = "juki"):
    ctx = A.context(request)
    return _corrections(request, ctx, _reg(register), **shown(request, ctx))


@router.post("/disclosure/corrections")
async def correction_open(request: Request):
    ctx, form = await ctx_post(request)
    register = _reg(form.get("register"))
    try:
        cid = svc(request).open_correction(register, (form.get("request_no") or "").strip(), form.get("kind") or "",
                                           [i for i in form.getlist("items") if i], form.get("statement") or "",
                                           ctx.operator, ctx.terminal_id)
    except Refused:
        raise
    except JukinetError as e:
        f = {"request_no": form.get("request_no") or "", "kind": form.get("kind") or "",
             "items": form.getlist("items"), "statement": form.get("statement") or ""}
        return _corrections(request, ctx, register, status=_status(e), error=e, error_form="correction", f=f)
    return see_other(request, ctx, f"/disclosure/corrections?register={register}", notice=f"申出 {cid} を受け付けました。")


@router.post("/disclosure/corrections/step")
async def correction_step(request: Request):
    ctx, form = await ctx_post(request)
    register, cid = _reg(form.get("register")), form.get("correction_id") or ""
    try:
        rid = svc(request).step(register, cid, form.get("to_status") or "", ctx.operator, ctx.terminal_id,
                                assignee=(form.get("assignee") or "").strip() or None,
                                municipality_code=(form.get("municipality_code") or "").strip() or None)
    except Refused:
        raise
    except JukinetError as e:
        return _corrections(request, ctx, register, status=_status(e), error=e)
    extra = f" 通報 {rid} を記録し、通報書を作成しました (市町村CSへ送信します)。" if rid else ""
    return see_other(request, ctx, f"/disclosure/corrections?register={register}",
                     notice=f"申出 {cid} の状態を更新しました。{extra}")


@router.post("/disclosure/corrections/letter")
async def correction_letter(request: Request):
    ctx, form = await ctx_post(request)
    register = _reg(form.get("register"))
    try:
        issued = svc(request).correction_letter(register, form.get("correction_id") or "", ctx.operator,
                                                ctx.terminal_id)
    except Refused:
        raise
    except JukinetError as e:
        return _corrections(request, ctx, register, status=_status(e), error=e)
    return _pdf(issued)


# ---- 利用停止請求 (O4) -----------------------------------------------------------------------------

def _suspensions(request: Request, ctx: A.Ctx, register: str, status: int = 200, **kw):
    rows = svc(request).suspensions(register, ctx.operator, ctx.terminal_id)
    steps = {r.suspension_id: svc(request).suspension_steps(register, r.suspension_id) for r in rows[:50]}
    reps: dict = {}
    for rep in svc(request).municipal_reports(register, ctx.operator, ctx.terminal_id):
        if rep.source == "suspension":
            reps.setdefault(rep.case_id, []).append(rep)
    return _page(request, "suspensions.html", ctx, status=status, register=register, rows=rows, steps=steps,
                 reports=reps, R=R, today=S.today_jst(), f=kw.pop("f", {}), **kw)


@router.get("/disclosure/suspensions")
def suspensions(request: Request, register: str = "juki"):
    ctx = A.context(request)
    return _suspensions(request, ctx, _reg(register))


@router.post("/disclosure/suspensions")
async def suspension_open(request: Request):
    ctx, form = await ctx_post(request)
    register = _reg(form.get("register"))
    f = {k: (form.get(k) or "").strip() for k in ("request_no", "kind", "grounds", "statement", "copy_sheets",
                                                   "copy_size")}
    try:
        sid = svc(request).open_suspension(register, f["request_no"], f["kind"], f["grounds"], f["statement"],
                                           ctx.operator, ctx.terminal_id, copy_sheets=f["copy_sheets"] or "0",
                                           copy_size=f["copy_size"] or None)
    except Refused:
        raise
    except JukinetError as e:
        return _suspensions(request, ctx, register, status=_status(e), error=e, f=f)
    return _suspensions(request, ctx, register, notice=f"利用停止請求 {sid} を受け付けました。受付票を交付してください。",
                        opened=sid)


async def _suspension_action(request: Request, action):
    ctx, form = await ctx_post(request)
    register, sid = _reg(form.get("register")), form.get("suspension_id") or ""
    try:
        notice = action(register, sid, form, ctx)
    except Refused:
        raise
    except JukinetError as e:
        return _suspensions(request, ctx, register, status=_status(e), error=e)
    if isinstance(notice, S.Issued):
        return _pdf(notice)
    return _suspensions(request, ctx, register, notice=notice)


@router.post("/disclosure/suspensions/step")
async def suspension_step(request: Request):
    def act(register, sid, form, ctx):
        svc(request).step_suspension(register, sid, form.get("to_status") or "", ctx.operator, ctx.terminal_id,
                                     assignee=(form.get("assignee") or "").strip() or None)
        return f"利用停止請求 {sid} の状態を更新しました。"
    return await _suspension_action(request, act)


@router.post("/disclosure/suspensions/decide")
async def suspension_decide(request: Request):
    def act(register, sid, form, ctx):
        svc(request).decide_suspension(register, sid, form.get("decision") or "", form.get("reason") or "",
                                       ctx.operator, ctx.terminal_id)
        return f"利用停止請求 {sid} の決定を記録しました。決定通知書を交付してください。"
    return await _suspension_action(request, act)


@router.post("/disclosure/suspensions/extend")
async def suspension_extend(request: Request):
    def act(register, sid, form, ctx):
        due = svc(request).extend_suspension(register, sid, form.get("reason") or "", ctx.operator, ctx.terminal_id)
        return f"利用停止請求 {sid} の期限を延長しました (新しい期限 {S.wareki.to_wareki(due)})。"
    return await _suspension_action(request, act)


@router.post("/disclosure/suspensions/report")
async def suspension_report(request: Request):
    def act(register, sid, form, ctx):
        rid = svc(request).report_suspension_finding(
            register, sid, (form.get("municipality_code") or "").strip(), form.get("kind") or "",
            [i for i in form.getlist("items") if i], ctx.operator, ctx.terminal_id)
        return f"通報 {rid} を記録しました。通報書を作成し、市町村CSへ送信します。"
    return await _suspension_action(request, act)


@router.post("/disclosure/suspensions/receipt")
async def suspension_receipt(request: Request):
    return await _suspension_action(request, lambda register, sid, form, ctx: svc(request).suspension_receipt(
        register, sid, ctx.operator, ctx.terminal_id))


@router.post("/disclosure/suspensions/letter")
async def suspension_letter(request: Request):
    return await _suspension_action(request, lambda register, sid, form, ctx: svc(request).suspension_letter(
        register, sid, ctx.operator, ctx.terminal_id))


# ---- 市町村への通報 (O5) ---------------------------------------------------------------------------

def _reports(request: Request, ctx: A.Ctx, register: str, status: int = 200, **kw):
    rows = svc(request).municipal_reports(register, ctx.operator, ctx.terminal_id)
    late = {r.report_id for r in R.overdue(svc(request).registers, register)}
    return _page(request, "reports.html", ctx, status=status, register=register, rows=rows, late=late, R=R, **kw)


@router.get("/disclosure/reports")
def reports_page(request: Request, register: str = "juki"):
    ctx = A.context(request)
    return _reports(request, ctx, _reg(register))


@router.post("/disclosure/reports/document")
async def report_document(request: Request):
    ctx, form = await ctx_post(request)
    register = _reg(form.get("register"))
    try:
        issued = svc(request).report_document(register, form.get("report_id") or "", ctx.operator, ctx.terminal_id)
    except Refused:
        raise
    except JukinetError as e:
        return _reports(request, ctx, register, status=_status(e), error=e)
    return _pdf(issued)


# ---- 帳票管理簿 (A5) --------------------------------------------------------------------------------

def _forms(request: Request, ctx: A.Ctx, status: int = 200, **kw):
    return _page(request, "forms.html", ctx, status=status, rows=svc(request).forms(ctx.operator, ctx.terminal_id),
                 **kw)


@router.get("/disclosure/forms")
def forms_page(request: Request):
    ctx = A.context(request)
    return _forms(request, ctx, **shown(request, ctx))


@router.get("/disclosure/forms.csv")
def forms_csv(request: Request):
    ctx = A.context(request)
    return Response(svc(request).forms_csv(ctx.operator, ctx.terminal_id), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="form-register.csv"'})


@router.post("/disclosure/forms/dispose")
async def forms_dispose(request: Request):
    ctx, form = await ctx_post(request)
    serial = form.get("serial") or ""
    try:
        svc(request).dispose(serial, form.get("method") or "", ctx.operator, ctx.terminal_id,
                             approval_id=form.get("approval_id") or "")
    except Refused:
        raise
    except JukinetError as e:
        return _forms(request, ctx, status=_status(e), error=e)
    return see_other(request, ctx, "/disclosure/forms", notice=f"帳票 {serial} の廃棄を記録しました。")


# ---- 問合せ記録 (A10) --------------------------------------------------------------------------------

def _inquiries(request: Request, ctx: A.Ctx, status: int = 200, **kw):
    return _page(request, "inquiries.html", ctx, status=status,
                 rows=svc(request).inquiries(ctx.operator, ctx.terminal_id), **kw)


@router.get("/disclosure/inquiries")
def inquiries_page(request: Request):
    ctx = A.context(request)
    return _inquiries(request, ctx, **shown(request, ctx))


@router.get("/disclosure/inquiries.csv")
def inquiries_csv(request: Request):
    ctx = A.context(request)
    return Response(svc(request).inquiries_csv(ctx.operator, ctx.terminal_id), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="inquiries.csv"'})


@router.post("/disclosure/inquiries")
async def inquiry_add(request: Request):
    ctx, form = await ctx_post(request)
    try:
        iid = svc(request).add_inquiry(form.get("channel") or "", form.get("category") or "",
                                       form.get("summary") or "", ctx.operator, ctx.terminal_id)
    except Refused:
        raise
    except JukinetError as e:
        f = {k: form.get(k) or "" for k in ("channel", "category", "summary")}
        return _inquiries(request, ctx, status=_status(e), error=e, error_form="inquiry", f=f)
    return see_other(request, ctx, "/disclosure/inquiries", notice=f"問合せ {iid} を記録しました。")


@router.post("/disclosure/inquiries/handle")
async def inquiry_handle(request: Request):
    ctx, form = await ctx_post(request)
    try:
        svc(request).handle_inquiry(int(form.get("inquiry_id") or 0), form.get("handling") or "", ctx.operator,
                                    ctx.terminal_id, close=form.get("close", "1") == "1")
    except Refused:
        raise
    except JukinetError as e:
        return _inquiries(request, ctx, status=_status(e), error=e)
    return see_other(request, ctx, "/disclosure/inquiries", notice="対応を記録しました。")


def install(app: FastAPI, inst: Installation) -> None:
    """Add the 事務3 screens to the application (after the operator side)."""
    app.state.disclosure = inst.disclosure
    app.include_router(router)


__all__ = ["install", "router"]
