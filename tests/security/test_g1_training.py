"""G1: nobody becomes or stays a terminal operator without the year's security training (PIA IV.2
「受講しないと端末の操作者となれない」); the annual inventory shows who is untrained; a flagged improper
operation is linked to the action taken (ADR 0034). Both engines; web (TestClient), CLI, services."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pyotp
import pytest
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from jukinet.audit.inventory import InventoryService
from jukinet.cli import app as cli_app
from jukinet.errors import JukinetError
from jukinet.security import training as TR
from jukinet.security.model import Refused
from jukinet.store.tables_audit import audit_reports
from jukinet.store.tables_security import OPLOG, operator_trainings, operators as ops_t
from jukinet.audit.service import AuditService
from jukinet.security.service import Security
from tests.web.operator_site import ADMIN, site  # noqa: F401  (fixture)

JST = timezone(timedelta(hours=9))


def today() -> date:
    return datetime.now(JST).date()


def admin_log(site, action=None):
    log = OPLOG["admin"][0]
    with site.registers.admin_engine.connect() as conn:
        rows = conn.execute(select(log).order_by(log.c.seq)).all()
    return [r for r in rows if action is None or r.action == action]


@pytest.fixture
def gated(site):  # noqa: F811
    site.sec.cfg.training_required = True
    return site


def _password_operator(site, persona="operator_juki"):
    oid = site.op_ids[persona]
    site.sec.update_operator(ADMIN, oid, roles=["operator"], registers=["juki"], affairs=["search"],
                             password_allowed=True)
    return oid


def test_g1_fiscal_year_runs_april_to_march():
    assert TR.fiscal_year(date(2027, 3, 31)) == 2026 and TR.fiscal_year(date(2026, 4, 1)) == 2026
    assert TR.fiscal_year_label(2026) == "令和8年度"


def test_g1_untrained_operator_cannot_sign_in_then_can_after_training(gated):
    site = gated
    oid = _password_operator(site)
    with site.registers.admin_tx() as conn:     # trained last 年度 only: not enough
        conn.execute(insert(operator_trainings).values(
            operator_id=oid, course="前年度研修", taken_on=date(today().year - 1, 4, 2),
            fiscal_year=TR.fiscal_year(date(today().year - 1, 4, 2)) - (1 if today().month < 4 else 0),
            recorded_at=datetime.now(timezone.utc), recorded_by="ADMIN"))
    g = site.sec.grant_password(ADMIN, oid)   # already active: the grant itself is allowed
    r = site.api().post("/api/v1/auth/password", json={"operator_id": oid, "password": g.password,
                                                       "totp": pyotp.TOTP(g.totp_secret).now()})
    assert r.status_code == 403 and r.json()["error"]["code"] == "TRAINING_REQUIRED"
    assert "研修" in r.json()["error"]["message"]
    e = admin_log(site)[-1]
    assert e.outcome == "refused" and e.operator_id == oid and json.loads(e.detail)["code"] == "TRAINING_REQUIRED"
    site.sec.record_training(ADMIN, oid, course="住基ネット情報セキュリティ研修", taken_on=today())
    with site.registers.admin_tx() as conn:
        conn.execute(update(ops_t).where(ops_t.c.operator_id == oid).values(totp_last_step=None))
    r = site.api().post("/api/v1/auth/password", json={"operator_id": oid, "password": g.password,
                                                       "totp": pyotp.TOTP(g.totp_secret).now()})
    assert r.status_code == 200, r.text


def test_g1_untrained_operator_cannot_be_activated(gated):
    site = gated
    oid = _password_operator(site, "operator_both")
    site.sec.grant_password(ADMIN, oid)           # active already: allowed (sign-in stays gated)
    site.sec.set_status(ADMIN, oid, "suspended")
    with pytest.raises(Refused) as e:
        site.sec.set_status(ADMIN, oid, "active")
    assert e.value.code == "TRAINING_REQUIRED"
    assert site.sec.get_operator(oid).status == "suspended"
    assert admin_log(site)[-1].outcome == "refused"
    # a pending operator: enrollment (the link) and the password grant are refused
    op, token = site.sec.register_operator(ADMIN, display_name="新人 担当", roles=["operator"], registers=["juki"],
                                           affairs=["search"], password_allowed=True)
    with pytest.raises(Refused) as e:
        site.sec.registration_options(token, site.terminal_id)
    assert e.value.code == "TRAINING_REQUIRED"
    with pytest.raises(Refused) as e:
        site.sec.grant_password(ADMIN, op.operator_id)
    assert e.value.code == "TRAINING_REQUIRED" and site.sec.get_operator(op.operator_id).status == "pending"
    site.sec.record_training(ADMIN, op.operator_id, course="新任者研修", taken_on=today())
    assert site.sec.registration_options(token, site.terminal_id)["challenge_id"]
    site.sec.record_training(ADMIN, oid, course="住基ネット情報セキュリティ研修", taken_on=today())
    assert site.sec.set_status(ADMIN, oid, "active").status == "active"


def test_g1_bad_inputs_are_refused_coded_unchanged_and_logged(gated):
    site = gated
    sec = site.sec
    before = len(sec.trainings())
    cases = [
        (dict(operator_id=site.op_ids["operator_both"], course="研修", taken_on=today() + timedelta(days=1)),
         "TRAINING_DATE_FUTURE"),
        (dict(operator_id="NOBODY-1", course="研修", taken_on=today()), "OPERATOR_NOT_FOUND"),
        (dict(operator_id=site.op_ids["operator_both"], course="", taken_on=today()), "TRAINING_COURSE_REQUIRED"),
        (dict(operator_id=site.op_ids["operator_both"], course="研修", taken_on="2026-02-30"), "TRAINING_DATE_INVALID"),
    ]
    for kw, code in cases:
        oid = kw.pop("operator_id")
        with pytest.raises(JukinetError) as e:
            sec.record_training(ADMIN, oid, **kw)
        assert e.value.code == code
        last = admin_log(site, "training_record")[-1]
        assert last.outcome == "refused" and json.loads(last.detail)["code"] == code
    # a non-manager (業務担当者, 監査者) may not record it
    for persona in ("operator_both", "auditor"):
        with pytest.raises(Refused) as e:
            sec.record_training(ADMIN, site.op_ids["operator_juki"], course="研修", taken_on=today(),
                                by=sec.get_operator(site.op_ids[persona]))
        assert e.value.code == "FORBIDDEN"
    assert len(sec.trainings()) == before


def test_g1_web_roster_training_screen(gated):
    site = gated
    for persona in ("admin", "manager"):
        sec_ops = site.sec
        sec_ops.record_training(ADMIN, site.op_ids[persona], course="研修", taken_on=today())
    c = site.client("admin")
    r = c.get("/roster")
    assert r.status_code == 200 and "研修 (今年度)" in r.text and "未受講" in r.text
    r = c.get("/roster/training")
    assert r.status_code == 200 and 'id="training-form"' in r.text
    target = site.op_ids["operator_both"]
    r = c.post("/roster/training", data={"csrf_token": site.csrf("admin"), "operator_id": target,
                                         "course": "住基ネット情報セキュリティ研修", "taken_on": today().isoformat()})
    assert r.status_code == 200 and f'id="tr-{target}" data-trained="yes"' in r.text
    y, m, d = today().year, today().month, today().day
    assert "年度" in r.text and f"{m}月{d}日" in r.text     # 和暦 dates
    entry = admin_log(site, "training_record")[-1]
    assert entry.outcome == "granted" and entry.operator_id == site.op_ids["admin"]
    assert json.loads(entry.detail)["target"] == target
    # future date on the screen: coded, nothing recorded
    n = len(site.sec.trainings())
    r = c.post("/roster/training", data={"csrf_token": site.csrf("admin"), "operator_id": target, "course": "研修",
                                         "taken_on": (today() + timedelta(days=3)).isoformat()})
    assert r.status_code == 400 and 'data-code="TRAINING_DATE_FUTURE"' in r.text and len(site.sec.trainings()) == n
    # a manager may record; an auditor may not (refused and logged)
    r = site.client("manager").post("/roster/training", data={
        "csrf_token": site.csrf("manager"), "operator_id": site.op_ids["operator_juki"], "course": "研修",
        "taken_on": today().isoformat()})
    assert r.status_code == 200
    site.sec.record_training(ADMIN, site.op_ids["auditor"], course="研修", taken_on=today())
    r = site.client("auditor").post("/roster/training", data={
        "csrf_token": site.csrf("auditor"), "operator_id": target, "course": "研修", "taken_on": today().isoformat()})
    assert r.status_code == 403
    assert admin_log(site)[-1].outcome == "refused"


def test_g1_inventory_flags_the_untrained(gated):
    site = gated
    site.sec.record_training(ADMIN, site.op_ids["operator_both"], course="研修", taken_on=today())
    inv = InventoryService(site.sec.config, site.registers, site.sec.oplog).take()
    untrained = {f.operator_id for f in inv.findings if f.kind == "untrained"}
    assert site.op_ids["operator_both"] not in untrained and site.op_ids["operator_juki"] in untrained
    acc = {a.operator_id: a for a in inv.accounts}
    assert acc[site.op_ids["operator_both"]].trained is True and acc[site.op_ids["auditor"]].trained is False
    site.sec.record_training(ADMIN, site.op_ids["admin"], course="研修", taken_on=today())
    r = site.client("admin").get("/roster/inventory")
    assert r.status_code == 200 and 'id="inventory-training"' in r.text and 'data-kind="untrained"' in r.text


def test_g1_flag_links_to_the_action_taken(gated):
    site = gated
    for p in ("manager", "auditor"):
        site.sec.record_training(ADMIN, site.op_ids[p], course="研修", taken_on=today())
    with site.registers.admin_tx() as conn:
        conn.execute(insert(audit_reports).values(month="2026-01", pdf_sha256="a" * 64, csv_sha256="b" * 64,
                                                  flag_count=3, entry_count=10, summary="{}",
                                                  generated_at=datetime.now(timezone.utc), generated_by="MANAGER"))
    c = site.client("manager")
    target = site.op_ids["operator_both"]
    r = c.post("/audit/reports/actions", data={"csrf_token": site.csrf("manager"), "month": "2026-01", "flag_no": "2",
                                               "operator_id": target, "kind": "guidance",
                                               "taken_on": today().isoformat(), "note": "面談し再教育を実施"})
    assert r.status_code == 200 and 'data-flag="2" data-kind="guidance"' in r.text and "指導・再教育" in r.text
    e = admin_log(site, "improper_action")[-1]
    assert e.outcome == "granted" and json.loads(e.detail)["flag_no"] == 2
    # bad inputs: unknown flag, future date, bad kind — coded, nothing recorded, logged
    for data, code in (({"flag_no": "9", "kind": "suspend"}, "AUDIT_FLAG_UNKNOWN"),
                       ({"flag_no": "1", "kind": "suspend", "taken_on": (today() + timedelta(days=1)).isoformat()},
                        "ACTION_DATE_FUTURE"),
                       ({"flag_no": "1", "kind": "scold"}, "ACTION_KIND_INVALID")):
        form = {"csrf_token": site.csrf("manager"), "month": "2026-01", "operator_id": target,
                "taken_on": today().isoformat(), **data}
        r = c.post("/audit/reports/actions", data=form)
        assert r.status_code == 400 and f'data-code="{code}"' in r.text
        assert json.loads(admin_log(site, "improper_action")[-1].detail)["code"] == code
    assert len(AuditService(site.sec.config, site.registers).actions()) == 1
    # where the auditor looks: the reports list and the inventory
    r = site.client("auditor").get("/audit/reports")
    assert r.status_code == 200 and 'data-month="2026-01" data-flag="2"' in r.text
    assert 'id="action-form"' not in r.text     # the auditor reads, the manager records
    site.sec.record_training(ADMIN, site.op_ids["admin"], course="研修", taken_on=today())
    r = site.client("admin").get("/roster/inventory")
    assert 'id="inventory-actions"' in r.text and f'data-operator="{target}" data-kind="guidance"' in r.text


def test_g1_cli_training_add_list_and_bootstrap(config):
    runner = CliRunner()
    config.security.training_required = True
    config.save()
    d = str(config.data_dir)
    r = runner.invoke(cli_app, ["operator", "bootstrap", "--name", "管理　太郎", "--id", "ADMIN01",
                                "--training-date", today().isoformat(), "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["operator", "training", "list", "--data-dir", d])
    assert r.exit_code == 0 and "ADMIN01" in r.output and "受講済" in r.output
    r = runner.invoke(cli_app, ["operator", "training", "add", "--operator", "ADMIN01", "--course", "研修",
                                "--date", (today() + timedelta(days=1)).isoformat(), "--data-dir", d])
    assert r.exit_code == 2 and "TRAINING_DATE_FUTURE" in r.output
    r = runner.invoke(cli_app, ["operator", "training", "add", "--operator", "NOBODY", "--course", "研修",
                                "--date", today().isoformat(), "--data-dir", d])
    assert r.exit_code == 2 and "OPERATOR_NOT_FOUND" in r.output
    r = runner.invoke(cli_app, ["operator", "training", "add", "--operator", "ADMIN01", "--course", "年次研修",
                                "--date", today().isoformat(), "--by", "ADMIN01", "--data-dir", d])
    assert r.exit_code == 2 and "FORBIDDEN" in r.output      # a recorder not yet active holds no right
    r = runner.invoke(cli_app, ["operator", "training", "add", "--operator", "ADMIN01", "--course", "年次研修",
                                "--date", today().isoformat(), "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["operator", "training", "list", "--operator", "ADMIN01", "--data-dir", d])
    assert r.output.count("ADMIN01") == 3


def test_g1_bootstrap_admin_without_training_has_a_grace_then_not(config, registers):
    config.security.training_required = True
    sec = Security(config, registers)
    op, _ = sec.bootstrap_admin(display_name="管理　太郎", operator_id="ADMIN01")
    now = datetime.now(timezone.utc)
    st = sec.training_status(now)["ADMIN01"]
    assert not st["trained"] and st["grace_until"] is not None
    with registers.admin_tx() as conn:
        assert sec._trained(conn, "ADMIN01", now)
        assert not sec._trained(conn, "ADMIN01", now + timedelta(days=config.security.bootstrap_training_grace_days + 1))
