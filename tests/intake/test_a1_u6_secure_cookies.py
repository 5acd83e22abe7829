"""A1, U6 (issue 17): the operator's cookies over the real server — HTTPS for everyone, plain HTTP only
on loopback. Over HTTPS every Set-Cookie (CSRF, terminal, session) carries Secure and every response
HSTS, whatever ``[security] secure_cookies`` says; over plain loopback HTTP the same login works
without Secure (development), no HSTS, and the server logs a warning."""

from __future__ import annotations

import logging
import ssl

import httpx
import pyotp
import pytest
from sqlalchemy import update

from jukinet.server import PrefectureServer
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import operators
from jukinet.web import auth as A
from jukinet.web import transport_security

ADMIN = Actor("bootstrap", None)


def _operator_with_password(sec, registers, operator_id: str):
    op, _ = sec.register_operator(ADMIN, display_name="照会 担当", roles=["operator"], registers=["juki"],
                                  affairs=["search"], operator_id=operator_id)
    with registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
    sec.update_operator(ADMIN, op.operator_id, roles=["operator"], registers=["juki"], affairs=["search"],
                        password_allowed=True)
    return op.operator_id, sec.grant_password(ADMIN, op.operator_id)


def _login(client: httpx.Client, sec, registers) -> list[httpx.Response]:
    """Activate this browser as an operator terminal, then log in with password + TOTP; every response."""
    seen = []
    _, code = sec.add_terminal(ADMIN, "代表端末1")
    seen.append(client.get(f"/terminal/activate?code={code}"))
    seen.append(client.post("/terminal/activate", data={"code": code, "csrf_token": client.cookies.get(A.CSRF_COOKIE)}))
    assert seen[-1].status_code == 200 and client.cookies.get(A.TERMINAL_COOKIE)
    seen.append(client.get("/login"))
    oid, g = _operator_with_password(sec, registers, "OP0100")
    seen.append(client.post("/login/password", data={
        "operator_id": oid, "password": g.password, "totp": pyotp.TOTP(g.totp_secret).now(),
        "csrf_token": client.cookies.get(A.CSRF_COOKIE)}, follow_redirects=False))
    assert seen[-1].status_code == 303 and client.cookies.get(A.SESSION_COOKIE)
    seen.append(client.get("/"))
    assert seen[-1].status_code == 200      # the session cookie came back: logged in
    return seen


def _set_cookies(responses) -> dict[str, str]:
    out = {}
    for r in responses:
        for line in r.headers.get_list("set-cookie"):
            out[line.split("=", 1)[0]] = line
    return out


@pytest.fixture
def tls_server(installation, registers):
    # an old configuration file asking for cookies without Secure: ignored over TLS (and warned about)
    installation.security.secure_cookies = False
    srv = PrefectureServer(installation, registers, outbox=False).start()
    yield srv
    srv.stop()


def test_a1_u6_over_https_every_cookie_is_secure_and_hsts_is_sent(installation, tls_server, registers):
    ctx = ssl.create_default_context(cafile=str(installation.resolve(installation.tls.ca_cert)))
    base = f"https://{installation.server.host}:{installation.server.port}"
    with httpx.Client(base_url=base, verify=ctx) as client:
        seen = _login(client, tls_server.app.state.security, registers)
    cookies = _set_cookies(seen)
    assert set(cookies) >= {A.CSRF_COOKIE, A.TERMINAL_COOKIE, A.SESSION_COOKIE}
    for name, line in cookies.items():
        attrs = [a.strip().lower() for a in line.split(";")[1:]]
        assert "secure" in attrs and "httponly" in attrs and "samesite=strict" in attrs, (name, attrs)
    for r in seen:
        assert r.headers.get("strict-transport-security", "").startswith("max-age="), r.url
        assert int(r.headers["strict-transport-security"].split("=")[1].split(";")[0]) >= 31536000


def test_a1_u6_plain_http_on_loopback_works_without_secure_and_warns(installation, server, registers, caplog):
    transport_security._warned.clear()       # the warning is logged once per process
    base = f"http://{installation.server.host}:{installation.server.port}"
    with caplog.at_level(logging.WARNING, logger="jukinet.web"), httpx.Client(base_url=base) as client:
        seen = _login(client, server.app.state.security, registers)
    cookies = _set_cookies(seen)
    assert set(cookies) >= {A.CSRF_COOKIE, A.TERMINAL_COOKIE, A.SESSION_COOKIE}
    for line in cookies.values():
        assert "secure" not in [a.strip().lower() for a in line.split(";")[1:]]
    assert not any("strict-transport-security" in r.headers for r in seen)
    assert any("without Secure" in rec.getMessage() for rec in caplog.records)
