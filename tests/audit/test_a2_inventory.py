"""A2 — the annual roster inventory (棚卸し): findings from the roster against the last 12 months of
the operation log, the administrator's confirmation per finding (admin DB + admin operation log),
the "last inventory" warning, and the CLI (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from jukinet.audit.inventory import InventoryService, findings, Account
from jukinet.cli import app as cli_app
from jukinet.search import service as S
from jukinet.security.oplog import Actor
from jukinet.store.tables_audit import roster_inventories
from jukinet.store.tables_security import operators, webauthn_credentials

from .audit_site import ADMIN, last_entry, site  # noqa: F401  (fixture)

NOW = datetime.now(timezone.utc)


def _set(regs, oid, **values):
    with regs.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == oid).values(**values))


def _credential(regs, oid):
    with regs.admin_tx() as conn:
        conn.execute(insert(webauthn_credentials).values(credential_id=f"cred-{oid}", operator_id=oid,
                                                         public_key=b"k", sign_count=0, created_at=NOW))


def _world(site):
    """A roster with one case of each finding, and operators whose use matches their rights."""
    sec, regs = site.sec, site.registers
    # operator_juki uses exactly what it holds (juki, 事務5) and logged in recently: no finding
    S.search(S.SearchCommand(purpose_code="inquiry", registers=("juki",), name="ヤマダ", name_match="prefix"),
             regs, sec.oplog, Actor("OPERATOR-JUKI", site.terminal_id))
    with regs.admin_tx() as conn:
        for oid, days in (("OPERATOR-JUKI", 1), ("OPERATOR-BOTH", 2), ("OLDIE", 120)):
            sec.oplog.append(conn, "admin", actor=Actor(oid, site.terminal_id), action="login",
                             now=NOW - timedelta(days=days))
    # operator_both holds fuhyo too but used only juki
    S.search(S.SearchCommand(purpose_code="inquiry", registers=("juki",), name="ヤマダ", name_match="prefix"),
             regs, sec.oplog, Actor("OPERATOR-BOTH", site.terminal_id))
    for oid, roles in (("OLDIE", ["auditor"]), ("NEVER", ["auditor"]), ("LEAVER", ["auditor"]),
                       ("GONE", ["auditor"])):
        sec.register_operator(ADMIN, display_name=f"{oid} 担当", roles=roles, operator_id=oid)
    _set(regs, "OLDIE", status="active", created_at=NOW - timedelta(days=400))
    _credential(regs, "OLDIE")
    _set(regs, "NEVER", created_at=NOW - timedelta(days=200))                 # pending, nothing enrolled
    _credential(regs, "LEAVER")
    _set(regs, "LEAVER", status="active")
    sec.set_status(ADMIN, "LEAVER", "suspended")                              # keeps the credential
    _credential(regs, "GONE")
    _set(regs, "GONE", status="active")
    sec.set_status(ADMIN, "GONE", "removed")                                  # removal wipes them: clean
    _set(regs, "MANAGER", roles="operator,manager", registers="juki", affairs="search")  # should not exist


def _by_operator(inv):
    out: dict = {}
    for f in inv.findings:
        out.setdefault(f.operator_id, set()).add((f.kind, f.subject))
    return out


def test_a2_findings_unused_leavers_and_rights_beyond_duty(site):
    _world(site)
    inv = InventoryService(site.app.state.config, site.registers, site.sec.oplog).take()
    got = _by_operator(inv)
    assert "OPERATOR-JUKI" not in got and "GONE" not in got
    assert got["OPERATOR-BOTH"] == {("unused_register", "fuhyo")}
    assert ("unused", "") in got["OLDIE"]
    assert got["NEVER"] == {("never_enrolled", "")}
    assert got["LEAVER"] == {("leaver_credentials", "")}
    assert ("combination", "manager+operator") in got["MANAGER"]
    assert {("unused_register", "juki"), ("unused_register", "fuhyo"), ("unused_affair", "provision")} <= \
        got["OPERATOR-NOAFFAIR"]
    assert ("unused_role", "auditor") in got["AUDITOR"]
    texts = {f.operator_id: f.text for f in inv.findings if f.kind == "unused"}
    assert "120 日" in texts["OLDIE"]
    assert inv.last is None and inv.overdue


def test_a2_rules_silent_for_a_well_used_roster():
    acct = Account("OP1", "x", ("operator",), ("juki",), ("search", "provision"), "active",
                   created_at=NOW - timedelta(days=900), last_login=NOW - timedelta(days=3), credentials=1)
    usage = {"OP1": {("juki", "detail"): 3, ("juki", "provision"): 1}}
    assert findings([acct], usage, now=NOW) == []


def test_a2_administrator_confirms_each_finding_on_the_screen(site):
    _world(site)
    c = site.client("admin")
    page = c.get("/roster/inventory")
    assert page.status_code == 200 and "棚卸しの記録がありません" in page.text
    sha = re.search(r'name="findings_sha256" value="([0-9a-f]{64})"', page.text).group(1)
    r = c.post("/roster/inventory", data={"findings_sha256": sha, "disp_LEAVER:leaver_credentials:": "fixed",
                                          "disp_OPERATOR-BOTH:unused_register:fuhyo": "keep",
                                          "note_OPERATOR-BOTH:unused_register:fuhyo": "附票は年度末に使用",
                                          "csrf_token": site.csrf("admin")})
    assert r.status_code == 200 and "棚卸し (記録番号" in r.text
    assert "棚卸しの記録がありません" not in r.text and "日を超えています" not in r.text
    with site.registers.admin_tx(write=False) as conn:
        row = conn.execute(select(roster_inventories)).one()
    assert row.confirmed_by == "ADMIN" and row.findings_sha256 == sha
    recorded = {f["key"]: (f["disposition"], f["note"]) for f in json.loads(row.findings)}
    assert recorded["LEAVER:leaver_credentials:"] == ("fixed", "")
    assert recorded["OPERATOR-BOTH:unused_register:fuhyo"] == ("keep", "附票は年度末に使用")
    assert recorded["NEVER:never_enrolled:"] == ("will_fix", "")
    logged = last_entry(site.registers, "admin", "roster_inventory")
    assert logged.operator_id == "ADMIN" and json.loads(logged.detail)["inventory_id"] == row.inventory_id
    # more than a year later the screen warns again
    with site.registers.admin_tx() as conn:
        conn.execute(update(roster_inventories).values(confirmed_at=NOW - timedelta(days=400)))
    assert "365 日を超えています" in c.get("/roster/inventory").text


def test_a2_confirmation_refused_when_findings_changed_or_disposition_unknown(site):
    _world(site)
    c = site.client("admin")
    sha = re.search(r'name="findings_sha256" value="([0-9a-f]{64})"', c.get("/roster/inventory").text).group(1)
    _credential(site.registers, "GONE")          # a removed operator gets a credential back: a new finding
    r = c.post("/roster/inventory", data={"findings_sha256": sha, "csrf_token": site.csrf("admin")})
    assert r.status_code == 409 and 'data-code="INVENTORY_CHANGED"' in r.text
    r = c.post("/roster/inventory", data={"disp_NEVER:never_enrolled:": "ignore", "csrf_token": site.csrf("admin")})
    assert r.status_code == 400 and 'data-code="INVENTORY_DISPOSITION_INVALID"' in r.text
    with site.registers.admin_tx(write=False) as conn:
        assert conn.execute(select(roster_inventories)).first() is None
    assert site.client("manager").get("/roster/inventory").status_code == 403


def test_a2_cli_prints_findings_and_writes_csv(site, tmp_path):
    _world(site)
    out = tmp_path / "inv.csv"
    r = CliRunner().invoke(cli_app, ["operator", "inventory", "--csv", str(out),
                                     "--data-dir", str(site.app.state.config.data_dir)])
    assert r.exit_code == 0, r.output
    assert "LEAVER" in r.output and "棚卸しの確認記録がありません" in r.output
    text = out.read_text(encoding="utf-8-sig")
    assert text.startswith("操作者ID,区分,対象,内容") and "NEVER,認証手段の未登録" in text
    r = CliRunner().invoke(cli_app, ["operator", "inventory", "--data-dir", str(tmp_path / "none")])
    assert r.exit_code == 2 and "CONFIG_MISSING" in r.output
