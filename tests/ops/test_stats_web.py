"""A9 on the operator side: the statistics screen for 管理責任者・監査者・運用担当者 only; every
other role and anonymous are refused and the refusal is in the operation log (A3, A4)."""

from __future__ import annotations

import base64
from datetime import date, datetime, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jukinet.security.oplog import Actor
from jukinet.store.tables_security import OPLOG, operators
from jukinet.web import auth as A
from jukinet.web.app import create_app

from ops_people import TSU, juki, put_current

ADMIN = Actor("bootstrap", None)
PERSONAS = {
    "admin": (["admin"], [], []),
    "operator": (["operator"], ["juki", "fuhyo"], ["search"]),
    "manager": (["manager"], ["juki"], []),
    "auditor": (["auditor"], [], []),
    "operations": (["operations"], [], []),
}
ALLOWED = {"manager", "auditor", "operations"}


@pytest.fixture
def site(config, registers):
    config.server.port = 8700
    app = create_app(config, registers)
    sec = app.state.security
    _, code = sec.add_terminal(ADMIN, "代表端末1")
    tid, secret = sec.activate_terminal(code)
    tokens = {}
    for persona, (roles, regs, affairs) in PERSONAS.items():
        op, _ = sec.register_operator(ADMIN, display_name=f"{persona} 担当", roles=roles, registers=regs,
                                      affairs=affairs, operator_id=persona.upper())
        with registers.admin_tx() as conn:
            conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
        op = sec.get_operator(op.operator_id)
        with registers.admin_tx() as conn:
            tokens[persona] = sec._start_session(conn, op, tid, "test", datetime.now(timezone.utc)).token
    with registers.juki_uow() as uow:
        put_current(uow.conn, juki(1, notified=date(2026, 4, 1)))
        put_current(uow.conn, juki(2, notified=date(2026, 5, 1), reason="転居"))

    def client(persona=None):
        c = TestClient(app, base_url="http://localhost:8700")
        c.cookies.set(A.TERMINAL_COOKIE, f"{tid}.{secret}")
        if persona:
            c.cookies.set(A.SESSION_COOKIE, tokens[persona])
        return c

    return client, registers


def oplog(registers, outcome: str, action_prefix: str = "") -> int:
    log, _ = OPLOG["admin"]
    with registers.admin_engine.connect() as c:
        return c.execute(select(func.count()).select_from(log).where(
            log.c.outcome == outcome, log.c.action.like(f"{action_prefix}%"))).scalar_one()


def test_a9_a3_statistics_screen_for_manager_auditor_operations_only(site):
    client, registers = site
    for persona in PERSONAS:
        before = oplog(registers, "refused")
        r = client(persona).get("/stats?from=2026-04&to=2026-05", follow_redirects=False)
        if persona in ALLOWED:
            assert r.status_code == 200, (persona, r.status_code)
            assert "統計" in r.text and 'id="chart-updates_by_month"' in r.text
            assert r.text.count("data:image/svg+xml;base64,") >= 8
            assert 'id="sum-updates-juki">2<' in r.text
        else:
            assert r.status_code == 403, (persona, r.status_code)
            assert oplog(registers, "refused") == before + 1
    r = client(None).get("/stats", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert oplog(registers, "granted", "stats_view") == len(ALLOWED)


def test_a9_screen_never_shows_personal_data(site):
    client, _ = site
    r = client("operations").get("/stats?from=2026-04&to=2026-05")
    html = r.text
    for uri in [p.split('"')[0] for p in html.split("data:image/svg+xml;base64,")[1:]]:
        html += base64.b64decode(uri).decode("utf-8")
    assert "三重　太郎" not in html and "広明町" not in html and "ミエ" not in html


def test_a9_csv_and_svg_downloads_are_logged(site):
    client, registers = site
    c = client("auditor")
    r = c.get("/stats/csv/updates_juki?from=2026-04&to=2026-05")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf") and "attachment" in r.headers["content-disposition"]
    assert "2026-05,令和8年5月,242012,津市,転居,1" in r.content.decode("utf-8-sig")
    r = c.get("/stats/svg/updates_by_reason_juki?from=2026-04&to=2026-05")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert oplog(registers, "granted", "stats_export") == 2
    assert c.get("/stats/csv/nothing").status_code == 400
    assert client("operator").get("/stats/csv/updates_juki").status_code == 403
    r = c.get("/stats?from=2026-13&to=2026-01")
    assert r.status_code == 200 and "STATS_PERIOD_INVALID" in r.text
    assert c.get("/stats/stats.css").status_code == 200


def test_a9_fiscal_year_parameter(site):
    client, _ = site
    r = client("manager").get("/stats?fy=2026")
    assert r.status_code == 200 and "令和8年4月 〜 令和9年3月" in r.text
    assert TSU  # the two updates fall into 2026年度
    assert 'id="sum-updates-juki">2<' in r.text
