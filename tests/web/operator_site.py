"""Fixtures of the operator side: an app with a terminal, operators of every role, sessions.

A plain module (not a conftest.py: other test folders import the root ``conftest`` by name, and a
second ``conftest`` module would shadow it). Test modules import the ``site`` fixture from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jukinet.security.service import sha256
from jukinet.store.tables_security import OPLOG, operators, sessions

from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.security.oplog import Actor
from jukinet.web import auth as A
from jukinet.web.app import create_app

ADMIN = Actor("bootstrap", None)

#: persona -> (roles, registers, affairs)
PERSONAS = {
    "admin": (["admin"], [], []),
    "operator_juki": (["operator"], ["juki"], ["search"]),
    "operator_both": (["operator"], ["juki", "fuhyo"], ["search"]),
    "operator_noaffair": (["operator"], ["juki", "fuhyo"], ["provision"]),
    "manager": (["manager"], ["juki"], []),
    "auditor": (["auditor"], [], []),
    "operations": (["operations"], [], []),
}


def juki(code, name, kana, birth, sex="1", address="三重県津市広明町13番地", **kw) -> JukiRecord:
    return derive_juki(JukiRecord(juminhyo_code=code, name=name, name_kana=kana, birth_date=birth, sex=sex,
                                  address=address, kojin_bango=None, reason="国内転入", change_date=date(2020, 4, 1),
                                  municipality_code="242012", **kw))


PEOPLE = [
    juki("10000000001", "山田　太郎", "ヤマダ　タロウ", date(1980, 4, 1)),
    juki("10000000002", "山田　花子", "ヤマダ　ハナコ", date(1982, 7, 7), sex="2"),
    juki("10000000003", "山多　次郎", "ヤマタ　ジロウ", date(1980, 4, 1), address="三重県四日市市諏訪町1番5号"),
    juki("10000000004", "髙橋　一郎", "タカハシ　イチロウ", date(1955, 1, 20), address="三重県伊勢市岩渕1丁目7番29号"),
    juki("10000000005", "𠮷田　さくら", "ヨシダ　サクラ", date(2001, 3, 3), sex="2"),
    juki("10000000006", "佐藤　ゆうこ", "サトウ　ユウコ", date(1990, 12, 31), sex="2", address="三重県津市栄町1丁目1番"),
    juki("10000000007", "山田　一", "ヤマダ　ハジメ", date(1930, 5, 5), deleted=True, retention_flag=True),
]


def seed_people(registers):
    with registers.juki_uow() as uow:
        for p in PEOPLE:
            uow.repo.apply(p)
        cur = uow.repo.get("10000000001")
        uow.repo.apply(cur.replace(address="三重県津市丸之内1番1号", reason="転居"), previous=cur)
    with registers.fuhyo_uow() as uow:
        uow.repo.apply(derive_fuhyo(FuhyoRecord(
            juminhyo_code="10000000001", name="山田　太郎", name_kana="ヤマダ　タロウ", birth_date=date(1980, 4, 1),
            sex="1", address_municipality_code="242012", address="三重県津市丸之内1番1号",
            change_date=date(2020, 4, 1), fuhyo_municipality_code="242012")))


@dataclass
class Site:
    app: object
    sec: object
    registers: object
    terminal: str          # cookie value <id>.<secret>
    terminal_id: str
    other_terminal: str
    tokens: dict            # persona -> session token

    def client(self, persona: str | None = None, *, terminal: str | None = None) -> TestClient:
        c = TestClient(self.app, base_url="http://localhost:8700")
        c.cookies.set(A.TERMINAL_COOKIE, terminal or self.terminal)
        if persona:
            c.cookies.set(A.SESSION_COOKIE, self.tokens[persona])
        return c

    def api(self, persona: str | None = None, *, terminal: str | None = None) -> TestClient:
        h = {A.TERMINAL_HEADER: terminal or self.terminal}
        if persona:
            h["Authorization"] = f"Bearer {self.tokens[persona]}"
        return TestClient(self.app, base_url="http://localhost:8700", headers=h)

    def csrf(self, persona: str) -> str:
        return self.sec.session_info(self.tokens[persona]).csrf_token

    def new_session(self, persona: str) -> str:
        op = self.sec.get_operator(self.op_ids[persona])
        with self.registers.admin_tx() as conn:
            res = self.sec._start_session(conn, op, self.terminal_id, "test", datetime.now(timezone.utc))
        return res.token


def activate(sec, name: str) -> tuple[str, str]:
    t, code = sec.add_terminal(ADMIN, name)
    tid, secret = sec.activate_terminal(code)
    return tid, f"{tid}.{secret}"


def make_site(config, registers) -> Site:
    config.server.port = 8700
    app = create_app(config, registers)
    sec = app.state.security
    tid, cookie = activate(sec, "代表端末1")
    _, other = activate(sec, "業務端末2")
    site = Site(app, sec, registers, cookie, tid, other, {})
    site.op_ids = {}
    for persona, (roles, regs, affairs) in PERSONAS.items():
        op, _token = sec.register_operator(ADMIN, display_name=f"{persona} 担当", roles=roles, registers=regs,
                                           affairs=affairs, operator_id=persona.upper().replace("_", "-")[:32])
        with registers.admin_tx() as conn:
            from sqlalchemy import update
            from jukinet.store.tables_security import operators
            conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
        site.op_ids[persona] = op.operator_id
    for persona in PERSONAS:
        site.tokens[persona] = site.new_session(persona)
    return site


def add_operator(site: Site, persona: str, operator_id: str, *, roles, registers, affairs,
                 display_name: str | None = None) -> None:
    """One more active operator with a session, as ``site.tokens[persona]``."""
    site.sec.register_operator(ADMIN, display_name=display_name or f"{persona} 担当", roles=roles, registers=registers,
                               affairs=affairs, operator_id=operator_id)
    with site.registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == operator_id).values(status="active"))
    site.op_ids[persona] = operator_id
    site.tokens[persona] = site.new_session(persona)


@pytest.fixture
def site(config, registers) -> Site:
    s = make_site(config, registers)
    seed_people(registers)
    return s


# ---- calling a route as someone (the authorization matrices: test_matrix, test_a7_operations_routes) ----

def refusals(registers) -> int:
    """Refused entries in all operation-log chains."""
    n = 0
    for chain, (log, _) in OPLOG.items():
        with registers.engine(chain).connect() as conn:
            n += conn.execute(select(func.count()).select_from(log).where(log.c.outcome == "refused")).scalar_one()
    return n


def idle_session(site, persona="operator_both") -> str:
    token = site.new_session(persona)
    with site.registers.admin_tx() as conn:
        conn.execute(update(sessions).where(sessions.c.session_hash == sha256(token)).values(
            last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=site.sec.cfg.idle_minutes + 1)))
    return token


def call(site, who: str, kind: str, method: str, path: str, body, files=None, follow: bool = False):
    """``who``: a persona of ``site.tokens``, or anonymous / idle / other_terminal / no_terminal.
    ``kind``: "api" (bearer + terminal header, JSON body — or form fields with ``files``) or "ui"
    (cookies, form POST with the session's CSRF token, multipart with ``files``). ``follow``: follow a
    redirect (Post/Redirect/Get of the search and detail screens, ADR 0043) with the same cookies."""
    from jukinet.web import auth as A

    persona = who if who in site.tokens else None
    terminal = site.other_terminal if who == "other_terminal" else site.terminal
    token = None
    if persona:
        token = site.tokens[persona]
    elif who in ("idle", "other_terminal"):
        token = idle_session(site) if who == "idle" else site.new_session("operator_both")
    if kind == "api":
        c = site.api(None, terminal=terminal)
        if who == "no_terminal":
            c.headers.pop(A.TERMINAL_HEADER)
        if token:
            c.headers["Authorization"] = f"Bearer {token}"
        if files is not None:
            return c.request(method, path, data=body or {}, files=files)
        return c.request(method, path, json=body) if body is not None else c.request(method, path)
    c = site.client(None, terminal=terminal)
    if who == "no_terminal":
        c.cookies.delete(A.TERMINAL_COOKIE)
    if token:
        c.cookies.set(A.SESSION_COOKIE, token)
    if method == "POST":
        data = dict(body or {})
        if token:
            data["csrf_token"] = site.sec.session_info(token).csrf_token
        return c.post(path, data=data, files=files, follow_redirects=follow)
    return c.get(path, follow_redirects=follow)
