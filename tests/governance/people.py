"""People and helpers of the governance tests (G4, G5): the operator site with departments, a
maintenance contractor on the roster, a staff witness with the password fallback, log readers."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pyotp
from sqlalchemy import select, update

from jukinet.store.tables_security import OPLOG, operators
from tests.web.operator_site import ADMIN

JST = timezone(timedelta(hours=9))


def today() -> date:
    return datetime.now(JST).date()


def now_local(minutes: int = 0) -> str:
    return (datetime.now(JST) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def log(site, chain="admin", action=None):
    t = OPLOG[chain][0]
    with site.registers.engine(chain).connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.seq)).all()
    return [r for r in rows if action is None or r.action == action]


def detail(entry) -> dict:
    return json.loads(entry.detail or "{}")


def set_department(site, persona: str, department: str) -> None:
    with site.registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == site.op_ids[persona])
                     .values(department=department))


class Party:
    """An operator who signs in by password + TOTP (the fallback)."""

    def __init__(self, site, operator_id: str, grant):
        self.site, self.operator_id, self.password = site, operator_id, grant.password
        self.totp = pyotp.TOTP(grant.totp_secret)

    def proof(self) -> dict:
        with self.site.registers.admin_tx() as conn:   # a new code for every sign-in of the test (no replay)
            conn.execute(update(operators).where(operators.c.operator_id == self.operator_id)
                         .values(totp_last_step=None))
        return {"operator_id": self.operator_id, "password": self.password, "totp": self.totp.now()}


def contractor(site, operator_id="MNT-01", *, on_roster=True) -> Party:
    """A 保守作業者 (maintenance) with the password fallback, on the contractor's current roster."""
    site.sec.register_operator(ADMIN, display_name="保守 作業員", department="日本電気株式会社三重支店",
                               roles=["maintenance"], operator_id=operator_id, password_allowed=True)
    g = site.sec.grant_password(ADMIN, operator_id)
    if on_roster:
        from_installation(site).add_worker(ADMIN, company="日本電気株式会社三重支店", name="保守 作業員",
                                           duty="代表端末・業務端末の運用管理支援", from_date=today() - timedelta(days=30),
                                           operator_id=operator_id)
    return Party(site, operator_id, g)


def witness(site, persona="manager") -> Party:
    """A staff member (the manager persona by default) allowed the password fallback."""
    oid = site.op_ids[persona]
    op = site.sec.get_operator(oid)
    site.sec.update_operator(ADMIN, oid, roles=list(op.roles), registers=list(op.registers),
                             affairs=list(op.affairs), password_allowed=True)
    return Party(site, oid, site.sec.grant_password(ADMIN, oid))


def from_installation(site):
    return site.app.state.installation.governance


def incidents_of(site):
    return site.app.state.installation.incidents
