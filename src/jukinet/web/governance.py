"""Screens of the governance records (G4, G5; ADR 0041) and the witnessed maintenance sign-in.

* ``GET /incidents`` — the incident register (事故記録簿): open incidents first, the form to open one
  (システム管理者・管理責任者; 監査者 read-only). ``GET /incidents/{no}`` — one incident: its steps,
  notifications, closing and the operation-log entries involved; ``POST …/steps``,
  ``…/notifications``, ``…/links``, ``…/close`` (closing: 管理責任者 only).
* ``GET /audit/entries/{chain}/{seq}`` — one operation-log entry with the incidents it belongs to and
  the form to link it to an open incident (from the log screen, and back from the incident).
* ``GET /inspections`` — the 年度's self-inspections per unit and internal audits, units not yet
  inspected; ``POST /inspections`` records one; ``POST /governance/reviews`` is the 管理責任者's review.
* ``GET /contractor`` — the contractor's worker roster, monthly security reports, witnessed
  maintenance sessions; ``POST /contractor/workers``, ``…/workers/{id}/end``, ``/contractor/reports``.
* ``GET /login/maintenance`` — the witnessed sign-in of a 保守作業者 (the contractor and a staff member
  authenticate together): ``POST /login/maintenance`` (both by password + one-time password) or
  ``POST /auth/maintenance/verify`` (JSON; the witness by fingerprint). ``POST /maintenance/end``:
  the witness leaves, the session ends.

Every view and change is in the operation log; refusals are coded, change nothing and are logged.
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from jukinet.audit import governance as GV
from jukinet.audit import incidents as IN
from jukinet.audit.records import JST
from jukinet.errors import JukinetError
from jukinet.security import training as TR
from jukinet.security.model import FORBIDDEN, TERMINAL_UNREGISTERED, Refused, refused
from jukinet.security.oplog import CHAINS
from jukinet.security.oplog import entry as oplog_entry
from jukinet.web import auth as A
from jukinet.web.audit_reports import wareki_time
from jukinet.web.pages import _cookie, _form, _redirect, ctx_post, message, render, templates
from jukinet.web.transport_security import delete_cookie

router = APIRouter(include_in_schema=False)


def _inc(request: Request) -> IN.IncidentService:
    return request.app.state.installation.incidents


def _gov(request: Request) -> GV.GovernanceService:
    return request.app.state.installation.governance


def _log(request: Request, ctx: A.Ctx, action: str, detail: dict | None = None, result_count: int | None = None):
    sec = A.security(request)
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action=action, detail=detail, result_count=result_count)


def _page(request: Request, name: str, ctx: A.Ctx | None, status: int = 200, **kw):
    templates.env.filters.setdefault("wareki_time", wareki_time)
    return render(request, name, ctx, status=status, CATEGORIES=IN.CATEGORIES, SEVERITIES=IN.SEVERITIES,
                  PARTIES=IN.PARTIES, EVENT_KINDS=IN.EVENT_KINDS, INC_STATUS=IN.STATUSES, CHECKLIST=GV.CHECKLIST,
                  ANSWERS=GV.ANSWERS, INSP_KINDS=GV.KINDS, TARGETS=GV.TARGETS, REVIEW_DECISIONS=GV.DECISIONS,
                  now_local=datetime.now(JST).strftime("%Y-%m-%dT%H:%M"), today=datetime.now(JST).date().isoformat(),
                  **kw)


def _chains_for(op) -> list[str]:
    if "auditor" in op.roles:
        return list(CHAINS)
    return [c for c in ("juki", "fuhyo") if op.can("oplog", c)]


# ---- G4: the incident register ---------------------------------------------------------------------

async def _incidents_page(request: Request, ctx: A.Ctx, *, error=None, notice=None, status=200):
    rows = await run_in_threadpool(_inc(request).list)
    _log(request, ctx, "incident_view", {"list": True}, result_count=len(rows))
    return _page(request, "governance/incidents.html", ctx, status, incidents=rows, error=error, notice=notice)


@router.get("/incidents")
async def incidents_page(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance_view", "incident_view")
    return await _incidents_page(request, ctx)


@router.post("/incidents")
async def incident_open(request: Request):
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "incident", "incident_open")
    try:
        no = await run_in_threadpool(lambda: _inc(request).open(
            ctx.actor, title=form.get("title") or "", category=form.get("category") or "",
            severity=form.get("severity") or "", occurred_at=form.get("occurred_at") or "",
            discovered_at=form.get("discovered_at") or "", summary=form.get("summary") or "", by=ctx.operator))
    except JukinetError as e:
        return await _incidents_page(request, ctx, error=e, status=400)
    return _redirect(request, f"/incidents/{no}")


async def _incident_page(request: Request, ctx: A.Ctx, no: str, *, error=None, notice=None, status=200):
    try:
        view = await run_in_threadpool(lambda: _inc(request).get(no))
    except JukinetError as e:
        A.security(request).log_refusal(ctx.actor, "incident_view", e)
        return message(request, "事故記録簿", e.message, code=e.code, status=404, ctx=ctx, link="/incidents",
                       link_text="事故記録簿へ")
    _log(request, ctx, "incident_view", {"incident_no": view.no})
    return _page(request, "governance/incident.html", ctx, status, inc=view, error=error, notice=notice,
                 chains=CHAINS, readable=_chains_for(ctx.operator))


@router.get("/incidents/{no}")
async def incident_page(request: Request, no: str):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance_view", "incident_view")
    return await _incident_page(request, ctx, no)


async def _incident_post(request: Request, no: str, permission: str, action: str, call, done: str):
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, permission, action)
    try:
        await run_in_threadpool(lambda: call(ctx, form))
    except JukinetError as e:
        if e.code == "INCIDENT_NOT_FOUND":
            return message(request, "事故記録簿", e.message, code=e.code, status=404, ctx=ctx, link="/incidents",
                           link_text="事故記録簿へ")
        return await _incident_page(request, ctx, no, error=e, status=403 if e.code == "APPROVAL_NOT_MANAGER" else 400)
    return await _incident_page(request, ctx, no, notice=done)


@router.post("/incidents/{no}/steps")
async def incident_step(request: Request, no: str):
    return await _incident_post(request, no, "incident", "incident_step", lambda ctx, f: _inc(request).add_step(
        ctx.actor, no, at=f.get("at") or "", text=f.get("text") or "", by=ctx.operator), "対応を記録しました。")


@router.post("/incidents/{no}/notifications")
async def incident_notify(request: Request, no: str):
    return await _incident_post(request, no, "incident", "incident_notify", lambda ctx, f: _inc(request).notify(
        ctx.actor, no, party=f.get("party") or "", party_name=f.get("party_name") or "", at=f.get("at") or "",
        text=f.get("text") or "", by=ctx.operator), "報告・連絡を記録しました。")


@router.post("/incidents/{no}/links")
async def incident_link(request: Request, no: str):
    return await _incident_post(request, no, "incident", "incident_link", lambda ctx, f: _inc(request).link(
        ctx.actor, no, f.get("chain") or "", f.get("seq") or "", by=ctx.operator), "操作ログの項目を関連付けました。")


@router.post("/incidents/{no}/close")
async def incident_close(request: Request, no: str):
    return await _incident_post(request, no, "incident", "incident_close", lambda ctx, f: _inc(request).close(
        ctx.actor, no, at=f.get("at") or "", cause=f.get("cause") or "", prevention=f.get("prevention") or "",
        by=ctx.operator), "事故を終結しました。")


def _entry(request: Request, ctx: A.Ctx, chain: str, seq: str, action: str):
    """The entry (chain, seq) if the operator may read that chain; else a logged refusal / None."""
    sec = A.security(request)
    if chain not in CHAINS or chain not in _chains_for(ctx.operator):
        sec.require(ctx.operator, ctx.terminal_id, "oplog", action,
                    register=chain if chain in ("juki", "fuhyo") else None)
        if chain in CHAINS:   # a manager asking for a chain out of scope (admin chain: 監査者 only)
            raise sec.refuse(ctx.actor, action, FORBIDDEN)
        return None
    if not (seq.isdigit() and len(seq) < 19):
        return None
    with sec.registers.engine(chain).connect() as conn:
        return oplog_entry(conn, chain, int(seq))


async def _entry_page(request: Request, ctx: A.Ctx, chain: str, seq: str, *, error=None, notice=None, status=200):
    row = _entry(request, ctx, chain, seq, "oplog_entry_view")
    if row is None:
        err = JukinetError("OPLOG_ENTRY_NOT_FOUND", "その操作ログの項目はありません。")
        A.security(request).log_refusal(ctx.actor, "oplog_entry_view", err)
        return message(request, "操作ログ", err.message, code=err.code, status=404, ctx=ctx, link="/audit",
                       link_text="操作ログへ")
    linked = await run_in_threadpool(lambda: _inc(request).incidents_of_entries(chain, [row.seq]))
    open_incidents = await run_in_threadpool(lambda: _inc(request).list(status="open"))
    _log(request, ctx, "oplog_entry_view", {"chain": chain, "seq": row.seq})
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        detail = {}
    return _page(request, "governance/oplog_entry.html", ctx, status, chain=chain, e=row, detail=detail,
                 linked=linked.get(row.seq, []), open_incidents=open_incidents, error=error, notice=notice)


@router.get("/audit/entries/{chain}/{seq}")
async def oplog_entry_page(request: Request, chain: str, seq: str):
    """One log entry, the incidents it is linked to, and (for those who may) the link form (G4)."""
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "oplog", "oplog_entry_view")
    return await _entry_page(request, ctx, chain, seq)


@router.post("/audit/entries/{chain}/{seq}/link")
async def oplog_entry_link(request: Request, chain: str, seq: str):
    """Link this entry to an open incident (G4): the way from the log to the incident."""
    ctx, form = await ctx_post(request)
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "oplog", "incident_link")
    sec.require(ctx.operator, ctx.terminal_id, "incident", "incident_link")
    try:
        await run_in_threadpool(lambda: _inc(request).link(ctx.actor, form.get("incident_no") or "", chain, seq,
                                                           by=ctx.operator))
    except JukinetError as e:
        return await _entry_page(request, ctx, chain, seq, error=e, status=400)
    return await _entry_page(request, ctx, chain, seq, notice="事故に関連付けました。")


# ---- G5: self-inspection, internal audit -------------------------------------------------------------

async def _inspections_page(request: Request, ctx: A.Ctx, *, error=None, notice=None, status=200, form=None):
    fy = TR.fiscal_year(datetime.now(JST).date())
    year = await run_in_threadpool(lambda: _gov(request).year(fy))
    older = await run_in_threadpool(_gov(request).inspections)
    _log(request, ctx, "inspection_view", {"fiscal_year": fy})
    return _page(request, "governance/inspections.html", ctx, status, year=year, records=older, error=error,
                 notice=notice, form=form or {})


@router.get("/inspections")
async def inspections_page(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance_view", "inspection_view")
    return await _inspections_page(request, ctx)


@router.post("/inspections")
async def inspection_record(request: Request):
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance", "inspection_record")
    answers = {c: form.get(f"item_{c}") or "" for c in GV.CHECKLIST}
    try:
        await run_in_threadpool(lambda: _gov(request).record_inspection(
            ctx.actor, kind=form.get("kind") or "", unit=form.get("unit") or "",
            conducted_on=form.get("conducted_on") or "", inspector=form.get("inspector") or "", answers=answers,
            findings=form.get("findings") or "", by=ctx.operator))
    except JukinetError as e:
        return await _inspections_page(request, ctx, error=e, status=400, form=dict(form))
    return await _inspections_page(request, ctx, notice="点検の結果を記録しました。")


@router.post("/governance/reviews")
async def governance_review(request: Request):
    """The 管理責任者's review of an inspection, a monthly report or the roster (G5)."""
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance_view", "governance_review")
    target = form.get("target") or ""
    back = _contractor_page if target in ("contractor_report", "worker_roster") else _inspections_page
    try:
        await run_in_threadpool(lambda: _gov(request).review(
            ctx.actor, target, form.get("target_id") or "", decision=form.get("decision") or "",
            note=form.get("note") or "", by=ctx.operator))
    except JukinetError as e:
        return await back(request, ctx, error=e, status=403 if e.code == "APPROVAL_NOT_MANAGER" else 400)
    return await back(request, ctx, notice="確認を記録しました。")


# ---- G5: the contractor ----------------------------------------------------------------------------------

async def _contractor_page(request: Request, ctx: A.Ctx, *, error=None, notice=None, status=200, form=None):
    g = _gov(request)
    workers = await run_in_threadpool(g.workers)
    reports = await run_in_threadpool(g.reports)
    reviewed = await run_in_threadpool(lambda: g.reviewed("contractor_report"))
    roster_reviews = await run_in_threadpool(lambda: g.reviews("worker_roster"))
    maint = await run_in_threadpool(A.security(request).maintenance_sessions)
    _log(request, ctx, "contractor_view", {}, result_count=len(workers))
    today = datetime.now(JST).date()
    return _page(request, "governance/contractor.html", ctx, status, workers=workers, reports=reports,
                 reviewed=reviewed, roster_reviews=roster_reviews, maintenance=maint, error=error, notice=notice,
                 form=form or {}, today_date=today)


@router.get("/contractor")
async def contractor_page(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance_view", "contractor_view")
    return await _contractor_page(request, ctx)


async def _contractor_post(request: Request, action: str, call, done: str):
    ctx, form = await ctx_post(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "governance", action)
    try:
        await run_in_threadpool(lambda: call(ctx, form))
    except JukinetError as e:
        return await _contractor_page(request, ctx, error=e, status=400, form=dict(form))
    return await _contractor_page(request, ctx, notice=done)


@router.post("/contractor/workers")
async def contractor_worker_add(request: Request):
    return await _contractor_post(request, "contractor_worker_add", lambda ctx, f: _gov(request).add_worker(
        ctx.actor, company=f.get("company") or "", name=f.get("name") or "", duty=f.get("duty") or "",
        from_date=f.get("from_date") or "", operator_id=f.get("operator_id") or "", by=ctx.operator),
        "作業従事者を名簿に記録しました。")


@router.post("/contractor/workers/{worker_id}/end")
async def contractor_worker_end(request: Request, worker_id: str):
    return await _contractor_post(request, "contractor_worker_end", lambda ctx, f: _gov(request).end_worker(
        ctx.actor, worker_id, to_date=f.get("to_date") or "", by=ctx.operator), "従事の終了を記録しました。")


@router.post("/contractor/reports")
async def contractor_report(request: Request):
    return await _contractor_post(request, "contractor_report", lambda ctx, f: _gov(request).record_report(
        ctx.actor, month=f.get("month") or "", company=f.get("company") or "", received_on=f.get("received_on") or "",
        checks_total=f.get("checks_total") or "", checks_ng=f.get("checks_ng") or "", summary=f.get("summary") or "",
        by=ctx.operator), "月次報告の受領を記録しました。")


# ---- G5: witnessed maintenance sign-in ---------------------------------------------------------------

@router.get("/login/maintenance")
def maintenance_login_page(request: Request):
    tid = A.terminal_id(request)
    if tid is None:
        A.security(request).log_refusal(A.Actor(), "maintenance_login_page", refused(TERMINAL_UNREGISTERED))
        return message(request, "操作端末ではありません", "この端末は操作端末として登録されていません。",
                       code="TERMINAL_UNREGISTERED", status=403)
    return render(request, "governance/maintenance_login.html", terminal_id=tid)


@router.post("/login/maintenance")
async def maintenance_login(request: Request):
    form = await _form(request)
    await A.check_csrf(request, None, form)
    tid = A.terminal_id(request)
    if tid is None:
        raise A.security(request).refuse(A.Actor(), "maintenance_login", refused(TERMINAL_UNREGISTERED))
    contractor = {k: form.get(f"contractor_{k}", "") for k in ("operator_id", "password", "totp")}
    witness = {k: form.get(f"witness_{k}", "") for k in ("operator_id", "password", "totp")}
    try:
        res = await run_in_threadpool(lambda: A.security(request).maintenance_login(tid, contractor, witness))
    except Refused as e:
        return render(request, "governance/maintenance_login.html", terminal_id=tid, message=e.message, code=e.code,
                      status=e.status)
    resp = RedirectResponse("/", status_code=303)
    _cookie(request, resp, A.SESSION_COOKIE, res.token)
    return resp


@router.post("/auth/maintenance/verify")
async def maintenance_verify(request: Request):
    """JSON: ``{"contractor": {...}, "witness": {...}}`` — each a password + TOTP or a WebAuthn assertion."""
    await A.check_csrf(request)
    tid = A.terminal_id(request)
    if tid is None:
        raise A.security(request).refuse(A.Actor(), "maintenance_login", refused(TERMINAL_UNREGISTERED))
    try:
        body = await request.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    res = await run_in_threadpool(lambda: A.security(request).maintenance_login(
        tid, body.get("contractor") or {}, body.get("witness") or {}))
    resp = JSONResponse({"redirect": "/"})
    _cookie(request, resp, A.SESSION_COOKIE, res.token)
    return resp


@router.post("/maintenance/end")
async def maintenance_end(request: Request):
    """立会いの終了: the witness leaves, the maintenance session ends (logged under both)."""
    ctx, _ = await ctx_post(request)
    A.security(request).end_witness(ctx.token, ctx.terminal_id)
    resp = _redirect(request, "/login")
    delete_cookie(request, resp, A.SESSION_COOKIE)
    return resp

