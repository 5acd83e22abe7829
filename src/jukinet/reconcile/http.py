"""The CS endpoint of 事務6 (C1): ``POST /cs/v1/consistency/{register}`` and its companions.

The channel is the intake's: HTTPS with mutual TLS; the sending municipality is the one named by
the client certificate the TLS layer verified (:func:`jukinet.intake.api._authenticate`, ADR
0005), **never** the payload — the snapshot's header must agree with it. Requests without a CS
certificate are refused before the body is read and written to the communication log, like every
intake refusal.

* ``POST /cs/v1/consistency/{register}`` — body: a ``jukinet.snapshot/1`` stream (JSON Lines, up
  to :data:`MAX_SNAPSHOT_BYTES`). The body is spooled to an anonymous temporary file (so a slow
  sender never holds a database transaction open), then compared. 200: the result document
  (``application/x-ndjson``, ``jukinet.consistency-result/1``: header with counts, one line per
  difference, trailer with count and SHA-256), header ``X-Jukinet-Run-Id``. 422: the snapshot was
  refused — ``{"error": {"code", "message", "line", "run_id"}}``; only a refusal record is stored.
* ``GET /cs/v1/consistency/{register}/results/{run_id}`` — the result document again (only the
  sender's own runs; any other id is 404).
* ``GET /cs/v1/consistency/{register}/due`` — whether a periodic check is due for the sender.

Every request in and every result document out is a row of the communication log (U6): digests
and sizes, never content.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from jukinet.errors import JukinetError
from jukinet.reconcile import service
from jukinet.reconcile.snapshot import SnapshotRefused
from jukinet.intake.api import _authenticate, _service
from jukinet.intake.service import comm_row
from jukinet.store.tables_intake import INTAKE_TABLES

router = APIRouter(prefix="/cs/v1/consistency", tags=["事務6 整合性確認"])

#: 400,000 persons × ~400 bytes is ~160 MB; the largest municipality of Tokyo fits with room
MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024
_CHUNK = 1024 * 1024

_ERROR = {"type": "object", "required": ["code", "message"],
          "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"},
                         "line": {"type": "integer"}, "run_id": {"type": "integer"}}}
_RESPONSES = {
    "200": {"description": "整合性確認結果 (jukinet.consistency-result/1, JSON Lines)",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
    "401": {"description": "クライアント証明書なし", "content": {"application/json": {"schema": {"type": "object"}}}},
    "403": {"description": "市町村CSの証明書ではない", "content": {"application/json": {"schema": {"type": "object"}}}},
    "413": {"description": "本文が大きすぎる", "content": {"application/json": {"schema": {"type": "object"}}}},
    "422": {"description": "整合性確認用データの不備 (拒否記録のみ保存)",
            "content": {"application/json": {"schema": {"type": "object", "properties": {"error": _ERROR}}}}},
}


def _refusal(status: int, err: dict) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": err}, headers={"Cache-Control": "no-store"})


async def _sender(request: Request):
    svc = _service(request)
    who, refused = await _authenticate(request, svc)
    return svc, who, refused


def _comm(request: Request, register: str, *, direction: str, peer: str, result: str, code=None, fp=None,
          message_id=None, digest=None, size=None) -> None:
    row = comm_row(at=datetime.now(timezone.utc), channel="cs", direction=direction, peer=peer, result=result,
                   code=code, peer_cert_sha256=fp, message_id=message_id, digest=digest, envelope_digest=digest,
                   size=size)
    with request.app.state.registers.engine(register).begin() as conn:
        conn.execute(INTAKE_TABLES[register][2].insert().values(**row))


def _register(register: str) -> str:
    if register not in ("juki", "fuhyo"):
        raise JukinetError("RECONCILE_REGISTER_INVALID", "ファイルの指定（juki または fuhyo）が正しくありません。",
                           field="register")
    return register


@router.post("/{register}", summary="整合性確認用データの送信 (JSON Lines)", responses=_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {"application/x-ndjson": {
                 "schema": {"type": "string", "description": "jukinet.snapshot/1"}}}}})
async def post_snapshot(register: str, request: Request):
    svc, who, refused = await _sender(request)
    if refused is not None:
        return refused
    ident, fp = who
    _register(register)
    registers = request.app.state.registers
    spool = tempfile.TemporaryFile()  # anonymous: never has a name, gone with the process
    try:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_SNAPSHOT_BYTES:
                err = {"code": "BODY_TOO_LARGE", "message": "整合性確認用データが大きすぎます。"}
                await run_in_threadpool(service.record_refusal, registers, register, ident.code, err, trigger="cs")
                await run_in_threadpool(_comm, request, register, direction="in", peer=ident.label,
                                        result="rejected", code=err["code"], fp=fp, size=size)
                return _refusal(413, err)
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        body_digest = digest.hexdigest()
        try:
            res = await run_in_threadpool(service.run_check, registers, register, ident.code, spool, trigger="cs")
        except SnapshotRefused as e:
            err = {**e.as_dict(), "run_id": getattr(e, "run_id", None)}
            await run_in_threadpool(_comm, request, register, direction="in", peer=ident.label, result="rejected",
                                    code=e.code, fp=fp, message_id=f"consistency:{err['run_id']}",
                                    digest=body_digest, size=size)
            return _refusal(422, err)
        except JukinetError as e:
            await run_in_threadpool(_comm, request, register, direction="in", peer=ident.label, result="rejected",
                                    code=e.code, fp=fp, digest=body_digest, size=size)
            return _refusal(400, e.as_dict())
        await run_in_threadpool(_comm, request, register, direction="in", peer=ident.label, result="accepted",
                                fp=fp, message_id=f"consistency:{res.run_id}", digest=body_digest, size=size)
    finally:
        spool.close()
    return await _result_response(request, register, res.run_id, ident, fp)


async def _result_response(request: Request, register: str, run_id: int, ident, fp) -> StreamingResponse:
    """Write the result document to a spool (to log its digest and size first), then stream it."""
    registers = request.app.state.registers
    out = tempfile.TemporaryFile()

    def build():
        h, n = hashlib.sha256(), 0
        for line in service.result_lines(registers, register, run_id):
            h.update(line)
            n += len(line)
            out.write(line)
        out.seek(0)
        return h.hexdigest(), n

    digest, size = await run_in_threadpool(build)
    await run_in_threadpool(_comm, request, register, direction="out", peer=ident.label, result="sent", fp=fp,
                            message_id=f"consistency:{run_id}", digest=digest, size=size)

    def chunks():
        try:
            while True:
                b = out.read(_CHUNK)
                if not b:
                    break
                yield b
        finally:
            out.close()

    return StreamingResponse(chunks(), media_type="application/x-ndjson",
                             headers={"X-Jukinet-Run-Id": str(run_id), "Cache-Control": "no-store",
                                      "Content-Length": str(size)})


@router.get("/{register}/results/{run_id}", summary="整合性確認結果の再取得", responses=_RESPONSES)
async def get_result(register: str, run_id: int, request: Request):
    svc, who, refused = await _sender(request)
    if refused is not None:
        return refused
    ident, fp = who
    _register(register)
    run = await run_in_threadpool(service.get_run, request.app.state.registers, register, run_id)
    if run is None or run.municipality_code != ident.code:  # another municipality's run does not exist for you
        return _refusal(404, {"code": "RECONCILE_RUN_NOT_FOUND", "message": "整合性確認の結果がありません。"})
    return await _result_response(request, register, run_id, ident, fp)


@router.get("/{register}/due", summary="定期の整合性確認の要否")
async def get_due(register: str, request: Request):
    svc, who, refused = await _sender(request)
    if refused is not None:
        return refused
    ident, _fp = who
    _register(register)
    config = request.app.state.config
    [d] = await run_in_threadpool(service.due_status, request.app.state.registers, register, [ident.code],
                                  interval_days=config.reconcile.interval_days)
    return JSONResponse({"municipality_code": d.municipality_code, "register": register, "due": d.due,
                         "interval_days": config.reconcile.interval_days,
                         "last_completed": d.last_completed.isoformat() if d.last_completed else None,
                         "last_run_id": d.last_run_id})
