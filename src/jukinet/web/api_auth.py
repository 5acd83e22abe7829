"""Terminal API: login (WebAuthn or, where allowed, password + TOTP), logout, who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from jukinet.security.model import TERMINAL_UNREGISTERED, refused
from jukinet.security.oplog import Actor
from jukinet.web import auth as A
from jukinet.web.api_common import ERRORS, api_ctx

router = APIRouter(prefix="/api/v1/auth", tags=["認証"], responses=ERRORS)


class OptionsRequest(BaseModel):
    operator_id: str = Field(max_length=32)


class CeremonyOptions(BaseModel):
    challenge_id: str
    publicKey: dict[str, Any]


class VerifyRequest(BaseModel):
    challenge_id: str
    credential: dict[str, Any]


class PasswordRequest(BaseModel):
    operator_id: str = Field(max_length=32)
    password: str = Field(max_length=200)
    totp: str = Field(max_length=10)


class SessionInfo(BaseModel):
    token: str | None = None
    operator_id: str
    terminal_id: str
    roles: list[str]
    registers: list[str]
    affairs: list[str]
    expires_at: datetime
    idle_minutes: float


def _terminal(request: Request) -> str:
    tid = A.terminal_id(request)
    if tid is None:
        raise A.security(request).refuse(Actor(), A.action_name(request), refused(TERMINAL_UNREGISTERED))
    return tid


def _info(request: Request, op, session, token=None) -> SessionInfo:
    return SessionInfo(token=token, operator_id=op.operator_id, terminal_id=session.terminal_id, roles=list(op.roles),
                       registers=list(op.registers), affairs=list(op.affairs), expires_at=session.expires_at,
                       idle_minutes=A.security(request).cfg.idle_minutes)


@router.post("/webauthn/options", response_model=CeremonyOptions)
def webauthn_options(body: OptionsRequest, request: Request):
    """WebAuthn assertion options for the operator (user verification required)."""
    return A.security(request).login_options(body.operator_id, _terminal(request))


@router.post("/webauthn/verify", response_model=SessionInfo)
def webauthn_verify(body: VerifyRequest, request: Request):
    """Verify the authenticator's assertion; returns a session token bound to this terminal."""
    res = A.security(request).login_verify(_terminal(request), body.challenge_id, body.credential)
    return _info(request, res.operator, res.session, res.token)


@router.post("/password", response_model=SessionInfo)
def password(body: PasswordRequest, request: Request):
    """Fallback: password + TOTP, only for operators the administrator allowed it for."""
    res = A.security(request).password_login(body.operator_id, body.password, body.totp, _terminal(request))
    return _info(request, res.operator, res.session, res.token)


@router.get("/session", response_model=SessionInfo)
def session(request: Request, ctx: A.Ctx = Depends(api_ctx)):
    """The operator and terminal of the current session (restarts the idle clock)."""
    return _info(request, ctx.operator, ctx.session)


@router.post("/logout", status_code=204)
def logout(request: Request, ctx: A.Ctx = Depends(api_ctx)):
    A.security(request).logout(ctx.token, ctx.terminal_id)
