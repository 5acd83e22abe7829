"""A1 (password+TOTP fallback, lockout), A2 (roster changes), A4 (fail closed), A6 (idle refused
server-side), S1 (POST only, no-store, CSRF) through the web layer."""

from __future__ import annotations

import json
import time

import pyotp
from sqlalchemy import select, text

from jukinet.security.oplog import Actor
from jukinet.store.tables_security import OPLOG
from operator_site import site  # noqa: F401  (fixture)

ADMIN = Actor("bootstrap", None)
FORM = {"purpose_code": "inquiry", "registers": ["juki"], "name": "やまだ", "name_match": "prefix"}


def last(site, chain="admin"):
    log, _ = OPLOG[chain]
    with site.registers.engine(chain).connect() as conn:
        return conn.execute(select(log).order_by(log.c.seq.desc())).first()


def test_a6_idle_session_refused(site):
    site.sec.cfg.idle_minutes = 0.01  # 0.6 s
    c = site.client("operator_both")
    assert c.get("/search").status_code == 200
    time.sleep(1.0)
    r = c.post("/search", data={**FORM, "csrf_token": site.csrf("operator_both")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/lock"
    e = last(site)
    assert e.outcome == "refused" and json.loads(e.detail)["code"] == "SESSION_IDLE"
    site.sec.cfg.idle_minutes = 5
    # the session stays ended: re-authentication is needed
    r = c.get("/search", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/lock"
    lock = c.get("/lock")
    assert lock.status_code == 200 and "OPERATOR-BOTH" in lock.text and "山田" not in lock.text


def test_a6_api_idle_session_refused(site):
    site.sec.cfg.idle_minutes = 0.01
    a = site.api("operator_both")
    time.sleep(1.0)
    r = a.post("/api/v1/search", json={"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "SESSION_IDLE"


def test_a6_explicit_lock_ends_the_session(site):
    c = site.client("operator_both")
    assert c.post("/lock", follow_redirects=False).headers["location"] == "/lock"
    assert c.get("/", follow_redirects=False).headers["location"] == "/lock"
    assert last(site).action in ("GET /", "screen_lock")


def test_s1_search_is_post_only_and_pages_are_no_store(site):
    c = site.client("operator_both")
    r = c.post("/search", data={**FORM, "csrf_token": site.csrf("operator_both")})
    assert r.status_code == 200 and "山田" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    # a GET with the keys in the URL does not search
    r = c.get("/search?name=やまだ")
    assert "山田　太郎" not in r.text
    r = c.post("/detail", data={"purpose_code": "inquiry", "register": "juki", "juminhyo_code": "10000000001",
                                "csrf_token": site.csrf("operator_both")})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store" and "丸之内" in r.text
    assert c.get("/static/app.css").headers.get("cache-control") != "no-store"


def test_s1_csrf_token_required_on_posts(site):
    c = site.client("operator_both")
    r = c.post("/search", data=FORM)
    assert r.status_code == 403 and "CSRF_INVALID" in r.text
    r = c.post("/search", data={**FORM, "csrf_token": "forged"})
    assert r.status_code == 403
    r = c.post("/search", data={**FORM, "csrf_token": site.csrf("operator_both")},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert json.loads(last(site).detail)["code"] == "CSRF_INVALID"


def test_a4_search_fails_closed_when_the_log_cannot_be_written(site):
    with site.registers.juki_engine.begin() as conn:
        conn.execute(text("DROP TABLE oplog"))
    a = site.api("operator_both")
    r = a.post("/api/v1/search", json={"purpose_code": "inquiry", "name": "ヤマダ", "name_match": "prefix"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "OPLOG_UNAVAILABLE"
    assert "山田" not in r.text
    r = site.client("operator_both").post("/search", data={**FORM, "csrf_token": site.csrf("operator_both")})
    assert "OPLOG_UNAVAILABLE" in r.text and "山田　太郎" not in r.text


def test_s1_purpose_is_required_before_searching(site):
    a = site.api("operator_both")
    r = a.post("/api/v1/search", json={"purpose_code": "", "name": "ヤマダ"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "PURPOSE_REQUIRED"
    e = last(site, "juki")
    assert e.outcome == "invalid" and e.action == "search"     # logged as an input error, not a refusal (A4)


def _grant_password(site, persona="operator_juki"):
    oid = site.op_ids[persona]
    site.sec.update_operator(ADMIN, oid, roles=["operator"], registers=["juki"], affairs=["search"],
                             password_allowed=True)
    return oid, site.sec.grant_password(ADMIN, oid)


def test_a1_password_totp_login_only_where_allowed(site):
    c = site.client()
    c.get("/login")
    csrf = c.cookies.get("jukinet_csrf")
    oid = site.op_ids["operator_both"]
    r = c.post("/login/password", data={"operator_id": oid, "password": "x", "totp": "000000", "csrf_token": csrf},
               follow_redirects=False)
    assert r.status_code == 401  # not allowed for this operator
    oid, g = _grant_password(site)
    code = pyotp.TOTP(g.totp_secret).now()
    r = c.post("/login/password", data={"operator_id": oid, "password": g.password, "totp": code,
                                        "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and c.cookies.get("jukinet_session")
    e = last(site)
    assert e.action == "login" and json.loads(e.detail)["method"] == "password_totp"
    # the same TOTP code cannot be replayed
    c2 = site.client()
    c2.get("/login")
    r = c2.post("/login/password", data={"operator_id": oid, "password": g.password, "totp": code,
                                         "csrf_token": c2.cookies.get("jukinet_csrf")}, follow_redirects=False)
    assert r.status_code == 401


def test_a1_lockout_after_repeated_failures(site):
    oid, g = _grant_password(site)
    a = site.api()
    for _ in range(site.sec.cfg.max_failed_logins):
        r = a.post("/api/v1/auth/password", json={"operator_id": oid, "password": "wrong", "totp": "000000"})
        assert r.status_code == 401
    r = a.post("/api/v1/auth/password", json={"operator_id": oid, "password": g.password,
                                              "totp": pyotp.TOTP(g.totp_secret).now()})
    assert r.status_code == 423 and r.json()["error"]["code"] == "LOGIN_LOCKED"
    actions = [e.action for e in site.registers.admin_engine.connect().execute(
        select(OPLOG["admin"][0]).order_by(OPLOG["admin"][0].c.seq))]
    assert "login_lockout" in actions


def test_a1_api_login_with_password_gives_a_terminal_bound_token(site):
    oid, g = _grant_password(site)
    r = site.api().post("/api/v1/auth/password", json={"operator_id": oid, "password": g.password,
                                                       "totp": pyotp.TOTP(g.totp_secret).now()})
    assert r.status_code == 200
    token = r.json()["token"]
    ok = site.api().get("/api/v1/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["terminal_id"] == site.terminal_id
    other = site.api(terminal=site.other_terminal).get("/api/v1/auth/session",
                                                        headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 401 and other.json()["error"]["code"] == "SESSION_TERMINAL_MISMATCH"


def test_a2_roster_changes_are_logged_and_suspension_ends_sessions(site):
    admin = site.client("admin")
    csrf = site.csrf("admin")
    oid = site.op_ids["operator_both"]
    r = admin.post(f"/roster/operators/{oid}/status", data={"status": "suspended", "csrf_token": csrf})
    assert r.status_code == 200 and "停止" in r.text
    e = last(site)
    assert e.action == "operator_suspended" and json.loads(e.detail)["target"] == oid
    assert site.api("operator_both").get("/api/v1/auth/session").status_code == 401
    r = admin.post(f"/roster/operators/{oid}/update", data={"roles": ["operator", "admin"], "csrf_token": csrf})
    assert r.status_code == 400 and "ROLE_CONFLICT" in r.text
    r = admin.post(f"/roster/operators/{oid}/status", data={"status": "removed", "csrf_token": csrf})
    assert "削除" in r.text
    csv_text = admin.get("/roster.csv").text
    assert csv_text.startswith("\ufeff操作者ID") and oid in csv_text and "削除" in csv_text
    assert last(site).action == "roster_export"


def test_a2_only_the_first_administrator_is_bootstrapped_by_cli(tmp_path):
    from typer.testing import CliRunner

    from jukinet.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["init", "--data-dir", str(tmp_path)]).exit_code == 0
    r = runner.invoke(app, ["operator", "bootstrap", "--name", "管理 太郎", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "/enroll?token=" in r.output and "/terminal/activate?code=" in r.output
    r = runner.invoke(app, ["operator", "bootstrap", "--name", "二人目", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "BOOTSTRAP_DONE" in r.output
    r = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "admin: 正常" in r.output


def test_d4_font_is_served_from_the_system_path(site):
    r = site.client().get("/fonts/ipamjm.ttf")
    from pathlib import Path

    if Path(site.sec.cfg.font_path).exists():
        assert r.status_code == 200 and r.headers["content-type"] == "font/ttf" and len(r.content) > 1_000_000
    else:
        assert r.status_code == 404


def test_q2_api_validation_errors_never_echo_the_input(site):
    a = site.api("operator_both")
    secret = "山田" * 40
    r = a.post("/api/v1/search", json={"purpose_code": "inquiry", "name": secret})
    assert r.status_code == 422 and r.json()["error"]["code"] == "INPUT_INVALID"
    assert "山田" not in r.text and r.json()["error"]["field"] == "name"
    e = last(site)
    assert e.outcome == "invalid" and json.loads(e.detail)["code"] == "INPUT_INVALID" and "山田" not in e.detail


def test_s1_storage_error_does_not_carry_search_keys(site, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from jukinet.search import queries

    def broken(*a, **k):
        raise OperationalError("SELECT ... name_seion = 'ヤマタ'", {"p": "ヤマタ"}, Exception("disk I/O error"))

    monkeypatch.setattr(queries, "build", broken)
    r = site.api("operator_both").post("/api/v1/search", json={"purpose_code": "inquiry", "name": "ヤマダ"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "SEARCH_UNAVAILABLE" and "ヤマ" not in r.text


def test_s1_terminal_api_is_in_the_openapi_document(site):
    doc = site.client().get("/openapi.json").json()
    for path in ("/api/v1/auth/webauthn/options", "/api/v1/auth/webauthn/verify", "/api/v1/auth/password",
                 "/api/v1/search", "/api/v1/persons/detail", "/api/v1/operators", "/api/v1/audit/verify"):
        assert path in doc["paths"], path
    assert "post" in doc["paths"]["/api/v1/search"] and "get" not in doc["paths"]["/api/v1/search"]
    assert not any(p.startswith("/search") or p.startswith("/roster") for p in doc["paths"])  # UI routes hidden


def test_a4_pages_refused_to_an_unregistered_terminal_are_logged(site):
    from jukinet.web import auth as A

    c = site.client()
    c.cookies.delete(A.TERMINAL_COOKIE)
    assert c.get("/login").status_code == 403
    assert json.loads(last(site).detail)["code"] == "TERMINAL_UNREGISTERED"
    assert site.client().get("/enroll?token=forged").status_code == 403
    e = last(site)
    assert e.terminal_id == site.terminal_id and json.loads(e.detail)["code"] == "ENROLLMENT_INVALID"


def test_s1_api_schemas_name_the_register_item_register(site):
    """The JSON item is ``register`` (juki | fuhyo), never pydantic's ABC method leaking in as a default."""
    doc = site.client().get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("HitOut", "RegisterCount", "DetailRequest", "DetailResponse"):
        props = schemas[name]["properties"]
        assert "register" in props and "register_" not in props, name
        assert "default" not in props["register"] or props["register"]["default"] in ("juki", "fuhyo"), name


def test_a6_idle_clock_is_written_at_most_every_20_seconds_and_still_locks(site):
    """ADR 0052: a request within 20 s of the recorded idle clock writes nothing (one write transaction
    per screen fewer); a later one restarts the clock; an idle session is still refused and ended."""
    from datetime import timedelta

    import pytest

    from jukinet.security.model import Refused
    from jukinet.security.service import sha256
    from jukinet.store.tables_security import sessions

    token = site.tokens["operator_both"]

    def seen():
        with site.registers.admin_engine.connect() as conn:
            return conn.execute(select(sessions.c.last_seen_at, sessions.c.ended_at)
                                .where(sessions.c.session_hash == sha256(token))).one()

    start = site.sec.session_info(token).last_seen_at
    r = site.sec.resolve(token, site.terminal_id, now=start + timedelta(seconds=5))
    assert r.operator.operator_id == "OPERATOR-BOTH"
    assert site.sec.session_info(token).last_seen_at == start          # not written: 5 s < 20 s
    site.sec.resolve(token, site.terminal_id, now=start + timedelta(seconds=25))
    assert site.sec.session_info(token).last_seen_at == start + timedelta(seconds=25)
    later = start + timedelta(seconds=25) + timedelta(minutes=site.sec.cfg.idle_minutes, seconds=1)
    with pytest.raises(Refused) as ei:
        site.sec.resolve(token, site.terminal_id, now=later)
    assert ei.value.code == "SESSION_IDLE" and seen().ended_at is not None
    e = last(site)
    assert e.outcome == "refused" and json.loads(e.detail)["code"] == "SESSION_IDLE"
    # a short idle time: the clock is written every tenth of it, so requests keep the session alive
    site.sec.cfg.idle_minutes = 0.5                                      # 30 s: written after 3 s
    token = site.tokens["operator_both"] = site.new_session("operator_both")
    start = site.sec.session_info(token).last_seen_at
    for s in (4, 8, 12, 16, 20, 24, 28, 32, 36):
        site.sec.resolve(token, site.terminal_id, now=start + timedelta(seconds=s))
    assert site.sec.session_info(token).last_seen_at == start + timedelta(seconds=36)
