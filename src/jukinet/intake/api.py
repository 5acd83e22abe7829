"""The CS channel: ``POST /cs/v1/notifications`` and ``POST /cs/v1/notifications:batch`` (U1, U2, U6).

Who sends is taken from the client certificate the TLS layer verified (the ASGI TLS extension,
see :mod:`jukinet.intake.transport`), checked again here against our CA, and must name a 市町村CS
(``urn:jukinet:lg:NNNNNN``; ADR 0005). A request without one is refused before its body is read
(401 ``CLIENT_CERT_REQUIRED``), one with a certificate that is not a CS's is refused (403). Every
refusal and every notification is written to the communication log.

Answers, one per notification: ``{"notification_id", "status": "accepted"|"duplicate"|"rejected",
"error": null | {"code", "message"[, "field"]}}``. The single endpoint answers 200 (accepted or
duplicate), 409 (``NOTIFICATION_ID_REUSED``) or 422 (any other refusal); the batch endpoint
answers 200 with ``{"results": [...]}`` in the order sent, or 4xx when the request as a whole is
refused. Personal data travels only in POST bodies and never in answers, URLs or logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
from typing import Any, Optional

from fastapi import APIRouter, Request
from sqlalchemy.exc import DBAPIError, OperationalError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from jukinet import pki
from jukinet.errors import JukinetError
from jukinet.intake import wire
from jukinet.intake.service import IntakeService, make_item
from jukinet.pki.crl import RevocationChecker
from jukinet.store import faults

router = APIRouter(prefix="/cs/v1", tags=["事務1 市町村CS"])
log = logging.getLogger("jukinet.intake")

MAX_SINGLE_BYTES = 64 * 1024
MAX_BATCH_BYTES = 8 * 1024 * 1024

_ERROR = {"type": "object", "required": ["code", "message"],
          "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}
_ANSWER = {"type": "object", "required": ["notification_id", "status", "error"],
           "properties": {"notification_id": {"type": ["string", "null"]},
                          "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                          "error": {"anyOf": [{"type": "null"}, _ERROR]}}}
_REFUSAL = {"type": "object", "required": ["error"], "properties": {"error": _ERROR}}
_CODE = {"type": "string", "pattern": "^[0-9]+$"}
_NULLSTR = {"type": ["string", "null"]}
NOTIFICATION_SCHEMA = {
    "type": "object",
    "description": "jukinet.notification/1 — 異動通知 (one person, the record after the change)",
    "required": list(wire.TOP_REQUIRED),
    "additionalProperties": False,
    "properties": {
        "schema": {"type": "string", "enum": [wire.SCHEMA]},
        "notification_id": {"type": "string", "maxLength": 64},
        "register": {"type": "string", "enum": list(wire.REGISTERS)},
        "municipality_code": _CODE, "reason": {"type": "string"},
        "change_date": {"type": "string", "format": "date"},
        "juminhyo_code": _CODE, "new_juminhyo_code": {"type": ["string", "null"]},
        "record": {"type": "object", "properties": {
            "name": {"type": "string"}, "name_kana": {"type": "string"},
            "birth_date": {"type": "string", "format": "date"}, "sex": {"type": "string", "enum": ["1", "2"]},
            "address": _NULLSTR, "oaza_code": _NULLSTR, "kojin_bango": _NULLSTR,
            "former_surname": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
                "name": {"type": "string"}, "name_kana": {"type": "string"}}}]},
            "address_municipality_code": _NULLSTR, "last_address": _NULLSTR, "old_juminhyo_code": _NULLSTR,
            "fuhyo_municipality_code": {"type": "string"}, "status": {"type": "string", "enum": ["現存", "消除"]}}},
    },
}
BATCH_SCHEMA = {"type": "object", "required": ["notifications"], "additionalProperties": False,
                "properties": {"notifications": {"type": "array", "items": NOTIFICATION_SCHEMA, "maxItems": 1000}}}


def _responses(ok_schema: dict, single: bool) -> dict:
    r = {"200": {"description": "受理 (accepted / duplicate)" if single else "通知ごとの結果",
                 "content": {"application/json": {"schema": ok_schema}}},
         "400": {"description": "本文が不正", "content": {"application/json": {"schema": _REFUSAL}}},
         "401": {"description": "クライアント証明書なし", "content": {"application/json": {"schema": _REFUSAL}}},
         "403": {"description": "市町村CSの証明書ではない・失効している (CERT_REVOKED)", "content": {"application/json": {"schema": _REFUSAL}}},
         "413": {"description": "本文が大きすぎる", "content": {"application/json": {"schema": _REFUSAL}}},
         "503": {"description": "一時的に受付不可 (何も適用されていない; 再送する)",
                 "content": {"application/json": {"schema": _REFUSAL}}}}
    if single:
        r["409"] = {"description": "通知IDの再使用", "content": {"application/json": {"schema": _ANSWER}}}
        r["422"] = {"description": "不受理", "content": {"application/json": {"schema": _ANSWER}}}
    return r


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _service(request: Request) -> IntakeService:
    app = request.app
    svc = getattr(app.state, "intake", None)
    if svc is None:
        svc = IntakeService(app.state.registers, app.state.config,
                            on_applied=getattr(app.state, "outbox_wake", None))
        app.state.intake = svc
    return svc


def _ca(request: Request):
    ca = getattr(request.app.state, "tls_ca", None)
    if ca is None:
        config = request.app.state.config
        ca = pki.load_cert(config.resolve(config.tls.ca_cert))
        request.app.state.tls_ca = ca
    return ca


def _revocation(request: Request):
    """The installation's CRL checker (ADR 0030), one per application."""
    checker = getattr(request.app.state, "revocation", None)
    if checker is None:
        checker = request.app.state.revocation = RevocationChecker(request.app.state.config)
    return checker


def peer_certificate(request: Request) -> Optional[bytes]:
    """The DER client certificate the TLS layer verified for this connection, or None."""
    tls = (request.scope.get("extensions") or {}).get("tls") or {}
    der = tls.get("client_cert_der")
    if der:
        return der
    chain = tls.get("client_cert_chain") or []
    if chain:
        try:
            return ssl.PEM_cert_to_DER_cert(chain[0])
        except ValueError:
            return None
    return None


async def _read_body(request: Request, limit: int) -> Optional[bytes]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        raise JukinetError("CLIENT_DISCONNECTED", "送信元が切断しました。") from None
    return b"".join(chunks)


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key")
        d[k] = v
    return d


def _reject_constant(_name):
    raise ValueError("non-finite number")


def decode(body: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity. Raises JukinetError."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JukinetError("BODY_NOT_JSON", "本文が正しい JSON (UTF-8) ではありません。") from None


async def _authenticate(request: Request, svc: IntakeService):
    """(identity, fingerprint) of the sending CS, or a refusal response (already logged)."""
    der = peer_certificate(request)
    if der is None:
        await run_in_threadpool(svc.record_refusal, peer="unknown", code="CLIENT_CERT_REQUIRED")
        return None, _refusal(401, "CLIENT_CERT_REQUIRED", "市町村CSのクライアント証明書による相互認証が必要です。")
    fp = pki.fingerprint(der)
    try:
        ident = pki.identity_of(der, _ca(request), usage="client")
    except JukinetError as e:
        await run_in_threadpool(svc.record_refusal, peer="unknown", code=e.code, fingerprint=fp)
        return None, _refusal(403, e.code, e.message)
    if ident.kind != "cs":
        await run_in_threadpool(svc.record_refusal, peer=ident.label, code="NOT_A_CS", fingerprint=fp)
        return None, _refusal(403, "NOT_A_CS", "市町村CSの証明書ではありません。")
    try:   # revocation (ADR 0030): before the body is read; no usable CRL refuses (fail closed)
        checker = _revocation(request)
        if checker.fresh():
            checker.check(der)      # in memory: a worker-thread hop cost more than the check
        else:
            await run_in_threadpool(checker.check, der)
    except JukinetError as e:
        await run_in_threadpool(svc.record_refusal, peer=ident.label, code=e.code, fingerprint=fp)
        return None, _refusal(503 if e.code == "CRL_UNAVAILABLE" else 403, e.code, e.message)
    return (ident, fp), None


@router.post("/notifications", summary="異動通知 (1件)", responses=_responses(_ANSWER, True),
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/json": {"schema": NOTIFICATION_SCHEMA}}}})
async def post_notification(request: Request):
    svc = _service(request)
    who, refused = await _authenticate(request, svc)
    if refused is not None:
        return refused
    ident, fp = who
    body = await _read_body(request, MAX_SINGLE_BYTES)
    if body is None:
        await run_in_threadpool(svc.record_refusal, peer=ident.label, code="BODY_TOO_LARGE", fingerprint=fp)
        return _refusal(413, "BODY_TOO_LARGE", "本文が大きすぎます。")
    envelope = hashlib.sha256(body).hexdigest()
    try:
        obj = decode(body)
    except JukinetError as e:
        await run_in_threadpool(svc.record_refusal, peer=ident.label, code=e.code, fingerprint=fp,
                                envelope_digest=envelope, size=len(body))
        return _refusal(400, e.code, e.message)
    item = make_item(obj, size=len(body))
    answers = await _submit(svc, ident, [item], fp, envelope)
    if isinstance(answers, JSONResponse):
        return answers
    [a] = answers
    status = 200
    if a["status"] == "rejected":
        status = 409 if a["error"]["code"] == "NOTIFICATION_ID_REUSED" else 422
    return JSONResponse(status_code=status, content=a)


@router.post("/notifications:batch", summary="異動通知 (一括, 最大1,000件)",
             responses=_responses({"type": "object", "required": ["results"],
                                   "properties": {"results": {"type": "array", "items": _ANSWER}}}, False),
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/json": {"schema": BATCH_SCHEMA}}}})
async def post_batch(request: Request):
    svc = _service(request)
    who, refused = await _authenticate(request, svc)
    if refused is not None:
        return refused
    ident, fp = who
    body = await _read_body(request, MAX_BATCH_BYTES)
    if body is None:
        await run_in_threadpool(svc.record_refusal, peer=ident.label, code="BODY_TOO_LARGE", fingerprint=fp)
        return _refusal(413, "BODY_TOO_LARGE", "本文が大きすぎます。")
    envelope = hashlib.sha256(body).hexdigest()
    try:
        obj = decode(body)
        if not isinstance(obj, dict) or set(obj) != {"notifications"} or not isinstance(obj["notifications"], list):
            raise JukinetError("BATCH_FORMAT", "一括通知は {\"notifications\": [...]} の形式で送信してください。")
        limit = svc.config.intake.max_batch
        if not obj["notifications"] or len(obj["notifications"]) > limit:
            raise JukinetError("BATCH_SIZE", f"一括通知は1件以上{limit}件以下で送信してください。")
    except JukinetError as e:
        await run_in_threadpool(svc.record_refusal, peer=ident.label, code=e.code, fingerprint=fp,
                                envelope_digest=envelope, size=len(body))
        return _refusal(400, e.code, e.message)
    items = [make_item(o) for o in obj["notifications"]]
    answers = await _submit(svc, ident, items, fp, envelope)
    if isinstance(answers, JSONResponse):
        return answers
    return JSONResponse(status_code=200, content={"results": answers})


def database_unavailable(e: BaseException) -> bool:
    """The database could not be reached or the connection died (a failover, a restart)."""
    return isinstance(e, OperationalError) or (isinstance(e, DBAPIError) and e.connection_invalidated)


async def _submit(svc: IntakeService, ident, items, fp, envelope):
    """The intake, with any unexpected failure turned into a 503 the CS will retry. Only the
    exception's type is logged: database errors can quote the values of a statement.

    A connection lost to the database (the primary died, a switchover) is answered 503
    ``DATABASE_UNAVAILABLE`` whatever moment it died at — even during COMMIT, when the transaction
    may or may not have been committed. Resending is safe either way: the intake is idempotent on
    the notification id, so a resend of what was committed is answered ``duplicate`` and nothing is
    applied twice (ADR 0037). Nothing is acknowledged before a commit that the synchronous standby
    has flushed (``synchronous_commit = on`` under Patroni's ``synchronous_mode``)."""
    try:
        return await run_in_threadpool(svc.submit, ident, items, fingerprint=fp, envelope_digest=envelope)
    except JukinetError:
        raise
    except Exception as e:  # noqa: BLE001
        if faults.is_storage_fault(e) and not faults.connection_lost(e):   # full disk, read-only (ADR 0038)
            log.error("intake: storage unavailable (%s); nothing was applied, the CS will resend", type(e).__name__)
            return storage_refusal()
        if isinstance(e, DBAPIError) and database_unavailable(e):
            log.warning("intake: database unavailable (%s); not acknowledged, the CS will resend",
                        type(e.orig).__name__ if e.orig is not None else type(e).__name__)
            return JSONResponse(status_code=503, headers={"Retry-After": "1"}, content={"error": {
                "code": "DATABASE_UNAVAILABLE",
                "message": "データベースに接続できません (切替中の可能性があります)。同じ通知を再送してください。"}})
        log.error("intake failed (%s); nothing was applied, the CS will resend", type(e).__name__)
        return _refusal(503, "INTAKE_UNAVAILABLE", "一時的に受け付けできません。同じ通知を再送してください。")


def storage_refusal() -> JSONResponse:
    """503 ``STORAGE_UNAVAILABLE`` with ``Retry-After``: nothing was written; resend the same."""
    return JSONResponse(status_code=503, headers={"Retry-After": str(faults.RETRY_AFTER_SECONDS)},
                        content={"error": {"code": faults.CODE, "message": faults.MESSAGE}})
