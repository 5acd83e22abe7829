"""G5: the yearly self-inspection per unit and the internal audit (PIA IV.1), the contractor's worker
roster and monthly security report (III.4), each reviewed by the 管理責任者 (ADR 0041). Where an
auditor looks: the annual inventory and the monthly report. Both engines; services, screens, CLI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from jukinet.audit import governance as GV
from jukinet.audit.service import AuditService, parse_month
from jukinet.cli import app as cli_app
from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor
from jukinet.store.tables_governance import (contractor_reports, contractor_workers, governance_reviews,
                                             self_inspections)
from tests.governance.people import JST, contractor, detail, from_installation, log, set_department, today
from tests.web.operator_site import ADMIN, site  # noqa: F401  (fixture)

ALL_OK = {c: "ok" for c in GV.CHECKLIST}


def _count(site, table) -> int:
    with site.registers.admin_tx(write=False) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def units(site):  # noqa: F811
    set_department(site, "operator_juki", "市町村課")
    set_department(site, "operator_both", "市町村課")
    set_department(site, "manager", "情報政策課")
    set_department(site, "operations", "委託先")      # contractor: not a unit that inspects
    return site


def _mgr(site):
    return site.sec.get_operator(site.op_ids["manager"])


def test_g5_self_inspection_per_unit_reviewed_by_the_manager(units):
    site = units
    g = from_installation(site)
    assert g.units() == ["市町村課", "情報政策課"]
    iid = g.record_inspection(Actor(site.op_ids["admin"], None), kind="self", unit="市町村課",
                              conducted_on=today(), inspector="市町村課長",
                              answers={**ALL_OK, "c04": "ng"}, findings="離席時の画面ロック漏れが1件あった",
                              by=site.sec.get_operator(site.op_ids["admin"]))
    g.review(Actor(site.op_ids["manager"], None), "inspection", iid, decision="follow_up",
             note="翌月に再確認する", by=_mgr(site))
    fy = GV.TR.fiscal_year(today())
    y = g.year(fy)
    assert y["missing"] == ["情報政策課"]
    done = dict(y["units"])
    assert done["市町村課"].items_ng == 1 and done["情報政策課"] is None
    assert [r.decision for r in y["reviews"][iid]] == ["follow_up"]
    e = log(site, action="inspection_record")[-1]
    assert e.outcome == "granted" and detail(e)["items_ng"] == 1
    assert detail(log(site, action="governance_review")[-1])["target"] == "inspection"
    # where the auditor looks: the annual inventory (the 年度's units, who has not inspected)
    r = site.client("admin").get("/roster/inventory")
    assert r.status_code == 200 and 'id="inventory-inspections"' in r.text
    assert 'data-unit="市町村課" data-done="yes"' in r.text and 'data-unit="情報政策課" data-done="no"' in r.text
    assert "未実施" in r.text and 'data-unit="委託先"' not in r.text


def test_g5_inspection_screen_record_and_review(units):
    site = units
    c = site.client("admin")
    r = c.get("/inspections")
    assert r.status_code == 200 and 'id="inspection-form"' in r.text and "年度" in r.text
    form = {"csrf_token": site.csrf("admin"), "kind": "internal_audit", "unit": "情報政策課",
            "conducted_on": today().isoformat(), "inspector": "監査担当 伊勢", "findings": "",
            **{f"item_{k}": "ok" for k in GV.CHECKLIST}}
    r = c.post("/inspections", data=form)
    assert r.status_code == 200 and 'data-kind="internal_audit"' in r.text
    iid = from_installation(site).inspections()[0].inspection_id
    # the administrator may not review (coded), the manager may
    r = c.post("/governance/reviews", data={"csrf_token": site.csrf("admin"), "target": "inspection",
                                            "target_id": str(iid), "decision": "accepted"})
    assert r.status_code == 403 and 'data-code="APPROVAL_NOT_MANAGER"' in r.text
    assert _count(site, governance_reviews) == 0
    r = site.client("manager").post("/governance/reviews", data={
        "csrf_token": site.csrf("manager"), "target": "inspection", "target_id": str(iid), "decision": "accepted"})
    assert r.status_code == 200 and "確認済 (問題なし)" in r.text and _count(site, governance_reviews) == 1
    # an incomplete checklist comes back with what was entered
    form2 = dict(form, kind="self", unit="市町村課")
    form2.pop("item_c07")
    r = c.post("/inspections", data=form2)
    assert r.status_code == 400 and 'data-code="INSPECTION_ANSWERS_INCOMPLETE"' in r.text and "c07" in r.text
    r = site.client("operations").get("/inspections")
    assert r.status_code == 403


def test_g5_contractor_roster_and_monthly_report_reviewed(units):
    site = units
    c = site.client("admin")
    last_month = (datetime.now(JST).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    r = c.post("/contractor/workers", data={"csrf_token": site.csrf("admin"), "company": "日本電気株式会社三重支店",
                                            "name": "保守 一郎", "duty": "端末の障害対応",
                                            "from_date": (today() - timedelta(days=10)).isoformat()})
    assert r.status_code == 200 and 'data-current="yes"' in r.text and "保守 一郎" in r.text
    r = c.post("/contractor/reports", data={"csrf_token": site.csrf("admin"), "month": last_month,
                                            "company": "日本電気株式会社三重支店", "received_on": today().isoformat(),
                                            "checks_total": "40", "checks_ng": "1", "summary": "媒体管理簿の記入漏れ1件"})
    assert r.status_code == 200 and f'data-month="{last_month}"' in r.text and "未確認" in r.text
    rid = from_installation(site).reports()[0].report_id
    m = site.client("manager")
    r = m.post("/governance/reviews", data={"csrf_token": site.csrf("manager"), "target": "contractor_report",
                                            "target_id": str(rid), "decision": "follow_up", "note": "是正報告を求める"})
    assert r.status_code == 200 and "是正報告を求める" in r.text
    r = m.post("/governance/reviews", data={"csrf_token": site.csrf("manager"), "target": "worker_roster",
                                            "decision": "accepted"})
    assert r.status_code == 200 and "従事者 1 名" in r.text
    # the monthly report of that month shows the report and its review
    svc = AuditService(site.sec.config, site.registers)
    month = parse_month(last_month)
    gov = svc.governance_month(month)
    (row, reviews), = gov.contractor_reports
    assert row.checks_ng == 1 and [v.decision for v in reviews] == ["follow_up"]
    _, _, pdf, csv = svc.render(month, now=datetime.now(timezone.utc))
    text = csv.decode("utf-8-sig")
    assert "委託先報告" in text and "要対応 MANAGER" in text and pdf.startswith(b"%PDF")
    # a month without a report says so (the auditor sees it is missing)
    this = parse_month(datetime.now(JST).strftime("%Y-%m"))
    assert svc.governance_month(this).contractor_reports == []


def test_g5_bad_input_is_refused_coded_unchanged_and_logged(units):
    site = units
    g = from_installation(site)
    admin = site.sec.get_operator(site.op_ids["admin"])
    a = Actor(admin.operator_id, None)
    iid = g.record_inspection(a, kind="self", unit="市町村課", conducted_on=today(), inspector="課長", answers=ALL_OK,
                              by=admin)
    rid = g.record_report(a, month=today().strftime("%Y-%m"), company="A社", received_on=today(), checks_total=10,
                          checks_ng=0, by=admin)
    future = today() + timedelta(days=1)
    next_month = (today().replace(day=28) + timedelta(days=7)).strftime("%Y-%m")
    tables = (self_inspections, contractor_workers, contractor_reports, governance_reviews)
    before = [_count(site, t) for t in tables]
    cases = [
        (lambda: g.record_inspection(a, kind="self", unit="情報政策課", conducted_on=future, inspector="x",
                                     answers=ALL_OK, by=admin), "INSPECTION_DATE_FUTURE"),
        (lambda: g.record_inspection(a, kind="self", unit="市町村課", conducted_on=today(), inspector="x",
                                     answers=ALL_OK, by=admin), "INSPECTION_DUPLICATE"),
        (lambda: g.record_inspection(a, kind="self", unit="情報政策課", conducted_on=today(), inspector="x",
                                     answers={**ALL_OK, "c01": "ng"}, by=admin), "INSPECTION_FINDINGS_REQUIRED"),
        (lambda: g.record_inspection(a, kind="yearly", unit="情報政策課", conducted_on=today(), inspector="x",
                                     answers=ALL_OK, by=admin), "INSPECTION_KIND_INVALID"),
        (lambda: g.review(a, "inspection", iid, decision="accepted", by=admin), "APPROVAL_NOT_MANAGER"),
        (lambda: g.review(a, "inspection", iid, decision="accepted", by=None), "APPROVAL_NOT_MANAGER"),
        (lambda: g.review(a, "inspection", 424242, decision="accepted", by=_mgr(site)), "INSPECTION_NOT_FOUND"),
        (lambda: g.review(a, "contractor_report", "x", decision="accepted", by=_mgr(site)),
         "CONTRACTOR_REPORT_NOT_FOUND"),
        (lambda: g.review(a, "contractor_report", rid, decision="follow_up", by=_mgr(site)), "REVIEW_NOTE_REQUIRED"),
        (lambda: g.add_worker(a, company="A社", name="甲", duty="保守", from_date=future, by=admin),
         "CONTRACTOR_DATE_FUTURE"),
        (lambda: g.add_worker(a, company="A社", name="甲", duty="保守", from_date=today(), operator_id="NOBODY",
                              by=admin), "OPERATOR_NOT_FOUND"),
        (lambda: g.add_worker(a, company="A社", name="甲", duty="保守", from_date=today(),
                              operator_id=site.op_ids["operations"], by=admin), "CONTRACTOR_OPERATOR_NOT_MAINTENANCE"),
        (lambda: g.end_worker(a, 999, to_date=today(), by=admin), "CONTRACTOR_WORKER_NOT_FOUND"),
        (lambda: g.record_report(a, month=next_month, company="A社", received_on=today(), checks_total=10,
                                 checks_ng=0, by=admin), "CONTRACTOR_MONTH_FUTURE"),
        (lambda: g.record_report(a, month="2026-10", company="B社", received_on=future, checks_total=10, checks_ng=0,
                                 by=admin), "CONTRACTOR_DATE_FUTURE"),
        (lambda: g.record_report(a, month="2026-10", company="B社", received_on=today(), checks_total=10,
                                 checks_ng=11, by=admin), "CONTRACTOR_CHECKS_INVALID"),
        (lambda: g.record_report(a, month=today().strftime("%Y-%m"), company="A社", received_on=today(),
                                 checks_total=10, checks_ng=0, by=admin), "CONTRACTOR_REPORT_DUPLICATE"),
        (lambda: g.record_report(a, month="2026-10", company="B社", received_on=today(), checks_total=10, checks_ng=0,
                                 by=site.sec.get_operator(site.op_ids["auditor"])), "FORBIDDEN"),
    ]
    for call, code in cases:
        with pytest.raises(JukinetError) as e:
            call()
        assert e.value.code == code, (code, e.value.code)
        last = log(site)[-1]
        assert last.outcome in ("refused", "invalid") and detail(last)["code"] == code
    assert [_count(site, t) for t in tables] == before


def test_g5_cli_inspection_and_contractor(units, config):
    site = units
    runner = CliRunner()
    d = str(config.data_dir)
    mgr = site.op_ids["manager"]
    ok10 = ",".join(["ok"] * len(GV.CHECKLIST))
    r = runner.invoke(cli_app, ["inspection", "record", "--unit", "市町村課", "--date", today().isoformat(),
                                "--inspector", "市町村課長", "--answers", ok10, "--by", site.op_ids["admin"],
                                "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["inspection", "record", "--unit", "情報政策課", "--date",
                                (today() + timedelta(days=2)).isoformat(), "--inspector", "x", "--answers", ok10,
                                "--data-dir", d])
    assert r.exit_code == 2 and "INSPECTION_DATE_FUTURE" in r.output
    r = runner.invoke(cli_app, ["inspection", "review", "1", "--decision", "accepted", "--by", site.op_ids["admin"],
                                "--data-dir", d])
    assert r.exit_code == 2 and "APPROVAL_NOT_MANAGER" in r.output
    r = runner.invoke(cli_app, ["inspection", "review", "1", "--decision", "accepted", "--by", mgr, "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["inspection", "list", "--data-dir", d])
    assert r.exit_code == 0 and "確認済" in r.output and "未実施" in r.output and "情報政策課" in r.output
    r = runner.invoke(cli_app, ["contractor", "worker-add", "--company", "A社", "--name", "保守 次郎", "--duty", "保守",
                                "--from", today().isoformat(), "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["contractor", "report", "--month", today().strftime("%Y-%m"), "--company", "A社",
                                "--received", today().isoformat(), "--checks", "30", "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["contractor", "review", "report", "999", "--decision", "accepted", "--by", mgr,
                                "--data-dir", d])
    assert r.exit_code == 2 and "CONTRACTOR_REPORT_NOT_FOUND" in r.output
    r = runner.invoke(cli_app, ["contractor", "review", "roster", "--decision", "accepted", "--by", mgr,
                                "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["contractor", "list", "--data-dir", d])
    assert r.exit_code == 0 and "保守 次郎" in r.output and "未確認" in r.output


def test_g5_roster_gates_the_maintenance_worker(units):
    """A 保守作業者 taken off the roster (従事終了) can no longer be witnessed in."""
    site = units
    g = from_installation(site)
    contractor(site)
    (w,) = g.workers(current_only=True)
    g.end_worker(ADMIN, w.worker_id, to_date=today() - timedelta(days=1))
    assert g.workers(current_only=True) == []
