"""Terminal API for the system administrator (roster) and auditors (verification)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jukinet.security.oplog import verify_all
from jukinet.web import auth as A
from jukinet.web.api_common import ERRORS, api_ctx

router = APIRouter(prefix="/api/v1", tags=["操作者・操作ログ"], responses=ERRORS)


class OperatorOut(BaseModel):
    operator_id: str
    display_name: str
    department: str
    roles: list[str]
    registers: list[str]
    affairs: list[str]
    status: str
    password_allowed: bool
    credential_count: int
    created_at: Optional[datetime]
    updated_at: Optional[datetime]


class OperatorIn(BaseModel):
    display_name: str = Field(max_length=60)
    department: str = Field("", max_length=60)
    operator_id: Optional[str] = Field(None, max_length=32)
    roles: list[str]
    registers: list[str] = []
    affairs: list[str] = []
    password_allowed: bool = False


class OperatorCreated(BaseModel):
    operator: OperatorOut
    enrollment_token: str


class StatusIn(BaseModel):
    status: Literal["suspended", "active", "removed"]


class ChainReport(BaseModel):
    chain: str
    ok: bool
    count: int
    head_seq: int
    problems: list[str]


def _out(o) -> OperatorOut:
    return OperatorOut(operator_id=o.operator_id, display_name=o.display_name, department=o.department,
                       roles=list(o.roles), registers=list(o.registers), affairs=list(o.affairs), status=o.status,
                       password_allowed=o.password_allowed, credential_count=o.credential_count,
                       created_at=o.created_at, updated_at=o.updated_at)


@router.get("/operators", response_model=list[OperatorOut])
def operators(request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """The roster (システム管理者 only)."""
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "roster", "roster")
    return [_out(o) for o in sec.list_operators()]


@router.post("/operators", response_model=OperatorCreated, status_code=201)
def create_operator(body: OperatorIn, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "roster", "operator_register")
    op, token = sec.register_operator(ctx.actor, display_name=body.display_name, department=body.department,
                                      roles=body.roles, registers=body.registers, affairs=body.affairs,
                                      operator_id=body.operator_id, password_allowed=body.password_allowed)
    return OperatorCreated(operator=_out(op), enrollment_token=token)


@router.post("/operators/{operator_id}/status", response_model=OperatorOut)
def operator_status(operator_id: str, body: StatusIn, request: Request, ctx: A.Ctx = Depends(api_ctx)):
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "roster", "operator_status")
    return _out(sec.set_status(ctx.actor, operator_id, body.status))


@router.post("/audit/verify", response_model=list[ChainReport])
def audit_verify(request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """Verify the three operation-log chains (監査者 only)."""
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "audit_verify", "audit_verify")
    reports = verify_all(sec.oplog, {c: sec.registers.engine(c) for c in ("juki", "fuhyo", "admin")})
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action="audit_verify", detail={"ok": all(r.ok for r in reports)})
    return [ChainReport(chain=r.chain, ok=r.ok, count=r.count, head_seq=r.head_seq, problems=[str(p) for p in r.problems])
            for r in reports]
