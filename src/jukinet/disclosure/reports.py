"""通報 to the municipality (O5; ADR 0039): the report outbox of the CS channel.

When an investigation — of a 訂正等の申出 (O2) or of a 利用停止請求 (O4) — finds the prefecture's
record wrong, the prefecture must tell the municipality that keeps the 住民票 (住基法第30条の35 の調査、
同法第12条の5 の通報): the municipality corrects its 住民票 and sends the correction through its CS
like any other change. jukinet

1. records a ``municipal_reports`` row **in the same transaction** as the finding (state
   ``pending``): once the finding is committed, the 通報 exists and cannot be lost;
2. prints the 通報書 (PDF, IPAmj明朝) in the form register (帳票管理簿, form type
   ``municipal_report``);
3. hands the 通報 (``jukinet.municipal-report/1``) to **that municipality's CS over the existing
   mutually authenticated channel**: the CS connects with its client certificate (as it does to send
   notifications, U1) and ``GET /cs/v1/reports`` returns the 通報 addressed to the municipality the
   certificate names — never another's. Each handing over is a row ``out``/``sent`` of the
   communication log (digest of the message, no content) and counts an attempt;
4. keeps handing it over, on every poll of the CS, until the CS acknowledges it with
   ``POST /cs/v1/reports/ack`` (``{"report_ids": [...]}``): then ``acknowledged``, a row
   ``in``/``acknowledged`` of the communication log. An acknowledgement repeated is ``duplicate``;
   one for a 通報 of another municipality or an unknown id is refused (``REPORT_UNKNOWN``) and
   logged. A CS that crashed between receiving and acknowledging gets the same 通報 again (same
   ``report_id``; the CS deduplicates on it) — at least once, never lost.

The CS is the side that opens connections in 住基ネット (its certificate is a client certificate; the
prefectural server does not reach into the municipality's network), so the outbox is drained by the
CS's poll rather than pushed: the retry of a failed delivery is the next poll. An unacknowledged 通報
older than :data:`OVERDUE_HOURS` is shown on the operator screen and in the monthly report.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Optional

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import insert, or_, select, update
from starlette.concurrency import run_in_threadpool

from jukinet.errors import JukinetError
from jukinet.intake.api import _authenticate, _service
from jukinet.intake.service import comm_row
from jukinet.intake.wire import canonical
from jukinet.store.tables_disclosure import MUNICIPAL_REPORTS, form_register
from jukinet.store.tables_intake import INTAKE_TABLES

SCHEMA = "jukinet.municipal-report/1"
BASIS = "住民基本台帳法第30条の35 (調査)・第12条の5 (通報)"
STATES = {"pending": "送信待ち", "sent": "送信済み (受領確認待ち)", "acknowledged": "受領確認済み"}
SOURCES = {"correction": "訂正等の申出", "suspension": "利用停止請求"}
#: a 通報 not acknowledged after this long is 要確認 (screen, monthly report)
OVERDUE_HOURS = 72
#: 通報 handed over per poll
BATCH = 100
MAX_ACK_BYTES = 64 * 1024

router = APIRouter(prefix="/cs/v1/reports", tags=["事務3 市町村への通報"])


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def report_id(register: str, case_id: str, municipality_code: str) -> str:
    return f"{register}-{case_id}-{municipality_code}"


def create(conn, register: str, *, source: str, case_id: str, request_no: str, juminhyo_code: str,
           municipality_code: str, kind: str, items: list[str], created_by: str) -> str:
    """Record a 通報 (pending) in the caller's transaction; returns its id."""
    t = MUNICIPAL_REPORTS[register]
    rid = report_id(register, case_id, municipality_code)
    if conn.execute(select(t.c.report_id).where(t.c.report_id == rid)).first():
        raise JukinetError("REPORT_ALREADY_MADE", "この申出・請求についてこの市町村へは通報済みです。",
                           field="municipality_code")
    conn.execute(insert(t).values(report_id=rid, source=source, case_id=case_id, request_no=request_no,
                                  juminhyo_code=juminhyo_code, municipality_code=municipality_code, kind=kind,
                                  items=",".join(items), state="pending", attempts=0, created_at=now_utc(),
                                  created_by=created_by))
    return rid


def _iso(v: Optional[datetime]) -> Optional[str]:
    if v is None:
        return None
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v.isoformat()


def message(r, register: str, prefecture_code: str, document: Optional[tuple[str, str]]) -> dict:
    """The wire form of one 通報 (what the CS needs to find the 住民票 and the items; no values)."""
    return {"schema": SCHEMA, "report_id": r.report_id, "register": register, "prefecture_code": prefecture_code,
            "municipality_code": r.municipality_code, "basis": BASIS, "source": r.source, "case_id": r.case_id,
            "juminhyo_code": r.juminhyo_code, "kind": r.kind, "items": r._mapping["items"].split(","),
            "created_at": _iso(r.created_at),
            "document": {"serial": document[0], "sha256": document[1]} if document else None}


def _documents(registers, serials: list[str]) -> dict[str, tuple[str, str]]:
    serials = [s for s in serials if s]
    if not serials:
        return {}
    with registers.admin_tx(write=False) as conn:
        return {r.serial: (r.serial, r.sha256) for r in conn.execute(
            select(form_register.c.serial, form_register.c.sha256).where(form_register.c.serial.in_(serials)))}


def hand_over(registers, prefecture_code: str, municipality_code: str, *, peer: str,
              fingerprint: Optional[str] = None, limit: int = BATCH) -> list[dict]:
    """The 通報 not yet acknowledged for ``municipality_code`` (both registers, oldest first); each
    handing over is counted and logged (``out``/``sent``) in the same transaction."""
    out: list[dict] = []
    for register in ("juki", "fuhyo"):
        t = MUNICIPAL_REPORTS[register]
        comm = INTAKE_TABLES[register][2]
        waiting = select(t.c.report_id).where(t.c.municipality_code == municipality_code,
                                              t.c.state.in_(("pending", "sent"))).limit(1)
        with registers.engine(register).connect() as conn:   # a poll with nothing waiting writes nothing
            if conn.execute(waiting).first() is None:
                continue
        with registers.uow(register) as uow:
            rows = uow.conn.execute(select(t).where(t.c.municipality_code == municipality_code,
                                                    t.c.state.in_(("pending", "sent")))
                                    .order_by(t.c.created_at, t.c.report_id).limit(limit - len(out))).all()
            if not rows:
                continue
            docs = _documents(registers, [r.form_serial for r in rows])
            at = now_utc()
            msgs = [message(r, register, prefecture_code, docs.get(r.form_serial)) for r in rows]
            uow.conn.execute(update(t).where(t.c.report_id.in_([r.report_id for r in rows]))
                             .values(state="sent", attempts=t.c.attempts + 1, last_sent_at=at))
            uow.conn.execute(comm.insert(), [comm_row(at=at, channel="cs", direction="out", peer=peer, result="sent",
                                                      peer_cert_sha256=fingerprint, message_id=m["report_id"],
                                                      digest=hashlib.sha256(canonical(m)).hexdigest())
                                             for m in msgs])
            out.extend(msgs)
        if len(out) >= limit:
            break
    return out


def acknowledge(registers, municipality_code: str, ids: list, *, peer: str,
                fingerprint: Optional[str] = None) -> list[dict]:
    """Record the CS's acknowledgements; one answer per id (acknowledged | duplicate | rejected)."""
    answers = []
    for rid in ids:
        register = rid.split("-", 1)[0] if isinstance(rid, str) else None
        if register not in ("juki", "fuhyo") or len(rid) > 40:
            answers.append({"report_id": rid if isinstance(rid, str) else None, "status": "rejected",
                            "error": {"code": "REPORT_UNKNOWN", "message": "この通報番号はありません。"}})
            _log(registers, "juki", peer, fingerprint, None, "rejected", "REPORT_UNKNOWN")
            continue
        t = MUNICIPAL_REPORTS[register]
        comm = INTAKE_TABLES[register][2]
        with registers.uow(register) as uow:
            r = uow.conn.execute(select(t).where(t.c.report_id == rid)).first()
            at = now_utc()
            if r is None or r.municipality_code != municipality_code:
                status, code = "rejected", "REPORT_UNKNOWN"
            elif r.state == "acknowledged":
                status, code = "duplicate", None
            elif r.state == "pending":     # never handed over: cannot have been received
                status, code = "rejected", "REPORT_NOT_SENT"
            else:
                status, code = "acknowledged", None
                uow.conn.execute(update(t).where(t.c.report_id == rid).values(state="acknowledged",
                                                                               acknowledged_at=at))
            uow.conn.execute(comm.insert().values(**comm_row(
                at=at, channel="cs", direction="in", peer=peer, result=status, code=code,
                peer_cert_sha256=fingerprint, message_id=rid)))
        a = {"report_id": rid, "status": status}
        if code:
            a["error"] = {"code": code, "message": "この通報番号はありません。" if code == "REPORT_UNKNOWN"
                          else "まだ送信していない通報です。"}
        answers.append(a)
    return answers


def _log(registers, register, peer, fingerprint, message_id, result, code) -> None:
    with registers.uow(register) as uow:
        uow.conn.execute(INTAKE_TABLES[register][2].insert().values(**comm_row(
            at=now_utc(), channel="cs", direction="in", peer=peer, result=result, code=code,
            peer_cert_sha256=fingerprint, message_id=message_id)))


def listing(registers, register: str, limit: int = 200) -> list:
    t = MUNICIPAL_REPORTS[register]
    with registers.uow(register, write=False) as uow:
        return uow.conn.execute(select(t).order_by(t.c.created_at.desc()).limit(limit)).all()


def overdue(registers, register: str, now: Optional[datetime] = None) -> list:
    """Unacknowledged 通報 older than :data:`OVERDUE_HOURS`."""
    t = MUNICIPAL_REPORTS[register]
    limit = (now or now_utc()) - timedelta(hours=OVERDUE_HOURS)
    with registers.uow(register, write=False) as uow:
        return uow.conn.execute(select(t).where(t.c.state != "acknowledged", t.c.created_at < limit)).all()


def comm_entries(registers, register: str, rid: str) -> list:
    """The communication-log rows of one 通報 (sent / acknowledged)."""
    comm = INTAKE_TABLES[register][2]
    with registers.engine(register).connect() as conn:
        return conn.execute(select(comm).where(comm.c.channel == "cs", or_(comm.c.message_id == rid))
                            .order_by(comm.c.log_id)).all()


# ---- the CS channel --------------------------------------------------------------------------

def _refusal(status: int, code: str, message_: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message_}},
                        headers={"Cache-Control": "no-store"})


@router.get("", summary="市町村への通報の受信 (受領確認まで繰り返し送信)")
async def get_reports(request: Request):
    svc = _service(request)
    who, refused = await _authenticate(request, svc)
    if refused is not None:
        return refused
    ident, fp = who
    app = request.app
    msgs = await run_in_threadpool(hand_over, app.state.registers, app.state.config.prefecture_code, ident.code,
                                   peer=ident.label, fingerprint=fp)
    return JSONResponse({"count": len(msgs), "reports": msgs}, headers={"Cache-Control": "no-store"})


@router.post("/ack", summary="通報の受領確認")
async def ack_reports(request: Request):
    svc = _service(request)
    who, refused = await _authenticate(request, svc)
    if refused is not None:
        return refused
    ident, fp = who
    body = await request.body()
    registers = request.app.state.registers
    if len(body) > MAX_ACK_BYTES:
        await run_in_threadpool(_log, registers, "juki", ident.label, fp, None, "rejected", "BODY_TOO_LARGE")
        return _refusal(413, "BODY_TOO_LARGE", "本文が大きすぎます。")
    try:
        obj = json.loads(body)
        ids = obj["report_ids"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        await run_in_threadpool(_log, registers, "juki", ident.label, fp, None, "rejected", "ACK_FORMAT")
        return _refusal(400, "ACK_FORMAT", '{"report_ids": ["..."]} の形式で送信してください。')
    answers = await run_in_threadpool(acknowledge, registers, ident.code, ids[:BATCH], peer=ident.label,
                                      fingerprint=fp)
    return JSONResponse({"results": answers}, headers={"Cache-Control": "no-store"})
