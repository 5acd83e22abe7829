"""G2: the backup media register (媒体管理簿, PIA III.4, III.7⑦) — every backup's medium, label,
location, custodian and movements; the weekly check of register against vault recorded as a
checklist (who, when, discrepancies) and overdue weeks raised in the monthly report; damaged media
retired and media destroyed only with the 管理責任者's prior approval. Bad input (a movement for an
unknown medium, a file that is not a backup, an approval by someone who is not the manager) is a
coded refusal, changes nothing and is logged (ADR 0040). Both engines; services, CLI, screen."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from jukinet.audit.inventory import InventoryService
from jukinet.audit.service import AuditService, parse_month, previous_month
from jukinet.backup.keys import PUBLIC_NAME, generate_key_pair
from jukinet.backup.service import make_backup
from jukinet.cli import app as cli_app
from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor
from jukinet.store.tables_media import media_approvals, media_checks, media_items, media_movements
from jukinet.store.tables_security import OPLOG
from jukinet.viruscheck import EICAR
from tests.web.operator_site import ADMIN, site  # noqa: F401  (fixture)

JST = timezone(timedelta(hours=9))


@pytest.fixture
def backup_file(site, tmp_path):  # noqa: F811
    keys = tmp_path / "prefecture-keys"
    generate_key_pair(keys, passphrase=None)
    cfg = site.app.state.config
    return make_backup(cfg, out=tmp_path / "medium" / "jukinet-backup.jkb", public_key=keys / PUBLIC_NAME).path


def svc(site):  # noqa: F811
    return site.app.state.installation.media


def op(site, persona):  # noqa: F811
    return site.sec.get_operator(site.op_ids[persona])


def count(site, table) -> int:  # noqa: F811
    with site.registers.admin_tx(write=False) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def last_log(site, action):  # noqa: F811
    log = OPLOG["admin"][0]
    with site.registers.admin_tx(write=False) as conn:
        return conn.execute(select(log).where(log.c.action == action).order_by(log.c.seq.desc()).limit(1)).first()


def test_g2_backup_medium_lifecycle_register_move_check_retire_destroy(site, backup_file):  # noqa: F811
    m = svc(site)
    ops, mgr = op(site, "operations"), op(site, "manager")
    a = m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-0001", location="データ保管庫",
                          custodian=ops.operator_id)
    b = m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-0002", location="データ保管庫",
                          custodian=ops.operator_id, note="遠隔地保管用の複製")
    item = m.item(a)
    assert (item.kind, item.medium, item.label, item.location, item.custodian, item.status) == \
        ("backup", "lto", "BK-0001", "データ保管庫", ops.operator_id, "in_vault")
    assert item.backup_id and item.backup_id in backup_file.read_bytes().decode("latin-1")
    m.move(ops, site.terminal_id, b, "checkout", location="遠隔地保管庫へ搬送中", reason="遠隔地保管")
    m.move(ops, site.terminal_id, b, "checkin", location="遠隔地保管庫")
    assert [x.kind for x in reversed(m.movements(b))] == ["register", "checkout", "checkin"]
    assert m.item(b).location == "遠隔地保管庫"
    # the weekly check: BK-0001 found, BK-0002 not found, a medium that is not in the register found
    res = m.weekly_check(ops, site.terminal_id, ["BK-0001", "BK-9999"], note="第1週点検")
    assert (res.expected, res.found) == (2, 1)
    assert sorted(d["kind"] for d in res.discrepancies) == ["missing", "unregistered"]
    row = m.checks()[0]
    assert row.checked_by == ops.operator_id and row.discrepancy_count == 2
    assert {d.get("media_id") for d in json.loads(row.discrepancies)} == {b, None}
    assert m.check_status()["overdue"] is False
    # damaged: retired with the manager's prior approval, stays in the vault (III.4)
    aid = m.approve(mgr, site.terminal_id, a, "retire", "読み取りエラー (破損)")
    m.retire(ops, site.terminal_id, a, approval_id=aid, reason="読み取りエラー (破損)")
    assert m.item(a).status == "retired" and m.item(a).location == "データ保管庫"
    aid2 = m.approve(mgr, site.terminal_id, a, "destroy", "耐用回数超過")
    m.destroy(ops, site.terminal_id, a, approval_id=aid2, method="crush", reason="耐用回数超過")
    assert m.item(a).status == "destroyed"
    with site.registers.admin_tx(write=False) as conn:
        ap = {r.approval_id: r for r in conn.execute(select(media_approvals))}
    assert ap[aid].status == "used" and ap[aid2].approved_by == mgr.operator_id
    d = last_log(site, "media_destroy")
    assert d.outcome == "granted" and json.loads(d.detail)["approval"] == aid2


def test_g2_bad_input_is_refused_changes_nothing_and_is_logged(site, backup_file, tmp_path):  # noqa: F811
    m = svc(site)
    ops, admin = op(site, "operations"), op(site, "admin")
    mid = m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-0001", location="データ保管庫",
                            custodian=ops.operator_id)
    before = {t.name: count(site, t) for t in (media_items, media_movements, media_approvals, media_checks)}
    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("これはバックアップではありません")
    truncated = tmp_path / "cut.jkb"
    truncated.write_bytes(backup_file.read_bytes()[:-100])
    cases = [
        (lambda: m.move(ops, site.terminal_id, "MB20260101-ZZZZZZ", "move", location="サーバ室"), "MEDIA_UNKNOWN",
         "media_move"),
        (lambda: m.register_backup(ops, site.terminal_id, not_backup, medium="lto", label="X-1", location="保管庫",
                                   custodian=ops.operator_id), "MEDIA_NOT_A_BACKUP", "media_register"),
        (lambda: m.register_backup(ops, site.terminal_id, truncated, medium="lto", label="X-2", location="保管庫",
                                   custodian=ops.operator_id), "MEDIA_NOT_A_BACKUP", "media_register"),
        (lambda: m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-0001",
                                   location="保管庫", custodian=ops.operator_id), "MEDIA_LABEL_EXISTS", "media_register"),
        (lambda: m.register_backup(ops, site.terminal_id, backup_file, medium="floppy", label="X-3",
                                   location="保管庫", custodian=ops.operator_id), "MEDIA_MEDIUM_UNKNOWN",
         "media_register"),
        (lambda: m.approve(admin, site.terminal_id, mid, "destroy", "不要"), "MEDIA_APPROVER_NOT_MANAGER",
         "media_approve"),
        (lambda: m.approve(ops, site.terminal_id, mid, "destroy", "不要"), "MEDIA_APPROVER_NOT_MANAGER",
         "media_approve"),
        (lambda: m.destroy(ops, site.terminal_id, mid, approval_id="MA20260101-000000", method="crush"),
         "MEDIA_APPROVAL_REQUIRED", "media_destroy"),
        (lambda: m.retire(ops, site.terminal_id, mid, approval_id="", reason="破損"), "MEDIA_APPROVAL_REQUIRED",
         "media_retire"),
        (lambda: m.move(ops, site.terminal_id, mid, "checkin", location="保管庫"), "MEDIA_STATE", "media_checkin"),
    ]
    for call, code, action in cases:
        with pytest.raises(JukinetError) as e:
            call()
        assert e.value.code == code, (action, e.value.code)
        entry = last_log(site, action)
        assert entry.outcome in ("refused", "invalid") and json.loads(entry.detail)["code"] == code
    after = {t.name: count(site, t) for t in (media_items, media_movements, media_approvals, media_checks)}
    assert after == before
    # a manager's approval for one action does not allow another
    aid = m.approve(op(site, "manager"), site.terminal_id, mid, "retire", "破損")
    with pytest.raises(JukinetError) as e:
        m.destroy(ops, site.terminal_id, mid, approval_id=aid, method="crush")
    assert e.value.code == "MEDIA_APPROVAL_REQUIRED" and m.item(mid).status == "in_vault"
    # the auditor (no media role) cannot record anything
    with pytest.raises(Exception) as e:
        m.weekly_check(op(site, "auditor"), site.terminal_id, [])
    assert getattr(e.value, "code", "") == "FORBIDDEN"


def test_g2_overdue_weekly_checks_are_raised_in_the_monthly_report(site, backup_file):  # noqa: F811
    m = svc(site)
    ops = op(site, "operations")
    m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-0001", location="データ保管庫",
                      custodian=ops.operator_id)
    month = previous_month()
    audit = AuditService(site.app.state.config, site.registers)
    weeks = audit.media_section(month).weeks
    # one check in the second week of last month, recorded then (as the contractor's checklist)
    at = datetime.combine(weeks[1][1] + timedelta(days=2), datetime.min.time(), JST).replace(hour=10)
    with site.registers.admin_tx() as conn:
        conn.execute(insert(media_checks).values(checked_at=at.astimezone(timezone.utc), checked_by=ops.operator_id,
                                                 week=weeks[1][0], expected=1, found=1, discrepancy_count=0,
                                                 discrepancies="[]"))
    sec = audit.media_section(parse_month(month.key))
    states = [w[3] for w in sec.weeks]
    assert states[1] == "checked" and states.count("overdue") == len(states) - 1 and sec.overdue == len(states) - 1
    g = audit.generate(Actor(site.op_ids["manager"], None), month)
    rows = list(csv.DictReader(io.StringIO(g.csv.decode("utf-8-sig"))))
    checks = [r for r in rows if r["区分"] == "媒体点検"]
    assert [r["結果"] for r in checks] == states and weeks[1][0] in {r["日付"] for r in checks}
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(g.pdf)).pages)
    assert "媒体管理簿" in text and "未実施" in text and f"未実施 {len(states) - 1} 週" in text


def test_g2_overdue_check_is_a_metric_for_the_monitoring(site, backup_file):  # noqa: F811
    local = TestClient(site.app, client=("127.0.0.1", 40000))
    assert "jukinet_media_check_overdue 1.0" in local.get("/metrics").text
    svc(site).weekly_check(op(site, "operations"), site.terminal_id, [])
    text = local.get("/metrics").text
    assert "jukinet_media_check_overdue 0.0" in text and "jukinet_media_check_last_timestamp_seconds" in text


def test_g2_cli_register_check_and_status(site, backup_file, tmp_path):  # noqa: F811
    d = str(site.app.state.config.data_dir)
    ops_id = site.op_ids["operations"]
    r = CliRunner().invoke(cli_app, ["media", "check-status", "--data-dir", d])
    assert r.exit_code == 1 and "期限超過" in r.stdout          # never checked: overdue
    r = CliRunner().invoke(cli_app, ["media", "register-backup", str(backup_file), "--medium", "lto", "--label", "BK-CLI",
                                     "--location", "データ保管庫", "--custodian", ops_id, "--by", ops_id, "--data-dir", d])
    assert r.exit_code == 0, r.output
    mid = r.stdout.split("媒体 ")[1].split()[0]
    r = CliRunner().invoke(cli_app, ["media", "move", "MB-NOPE", "--location", "サーバ室", "--by", ops_id, "--data-dir", d])
    assert r.exit_code == 2 and "MEDIA_UNKNOWN" in r.output
    r = CliRunner().invoke(cli_app, ["media", "approve", mid, "--action", "destroy", "--reason", "不要",
                                     "--by", site.op_ids["admin"], "--data-dir", d])
    assert r.exit_code == 2 and "MEDIA_APPROVER_NOT_MANAGER" in r.output
    r = CliRunner().invoke(cli_app, ["media", "check", "--found", "BK-CLI", "--by", ops_id, "--data-dir", d])
    assert r.exit_code == 0 and "差異 0" in r.stdout, r.output
    r = CliRunner().invoke(cli_app, ["media", "check-status", "--data-dir", d])
    assert r.exit_code == 0 and "期限内" in r.stdout
    r = CliRunner().invoke(cli_app, ["media", "show", mid, "--data-dir", d])
    assert "BK-CLI" in r.stdout and "登録" in r.stdout


def test_g2_screen_shows_the_register_records_the_weekly_check_and_the_approval(site, backup_file):  # noqa: F811
    m = svc(site)
    ops = op(site, "operations")
    mid = m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-WEB", location="データ保管庫",
                            custodian=ops.operator_id)
    c = site.client("operations")
    r = c.get("/media")
    assert r.status_code == 200 and "媒体管理簿" in r.text and "BK-WEB" in r.text and "週次点検" in r.text
    assert "期限超過" in r.text
    r = c.post("/media/check", data={"csrf_token": site.csrf("operations"), "found": "BK-WEB\nBK-XXXX", "note": ""})
    assert r.status_code == 200 and "差異 1" in r.text
    assert m.checks()[0].checked_by == ops.operator_id
    r = c.post("/media/approve", data={"csrf_token": site.csrf("operations"), "target_id": mid, "action": "destroy",
                                       "reason": "不要"})
    assert r.status_code == 400 and "MEDIA_APPROVER_NOT_MANAGER" in r.text
    mc = site.client("manager")
    r = mc.post("/media/approve", data={"csrf_token": site.csrf("manager"), "target_id": mid, "action": "destroy",
                                        "reason": "耐用年数超過"})
    assert r.status_code == 200 and "承認番号" in r.text
    r = site.client("auditor").get("/media")
    assert r.status_code == 200 and "BK-WEB" in r.text


def test_g2_annual_inventory_finds_a_leaver_still_custodian_of_media(site, backup_file):  # noqa: F811
    m = svc(site)
    ops = op(site, "operations")
    keeper = site.op_ids["operator_juki"]
    m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-INV", location="データ保管庫",
                      custodian=keeper)
    inv = InventoryService(site.sec.config, site.registers, site.sec.oplog)
    assert not [f for f in inv.take().findings if f.kind == "media_custodian"]
    site.sec.set_status(ADMIN, keeper, "suspended")
    found = [f for f in inv.take().findings if f.kind == "media_custodian"]
    assert [(f.operator_id, f.kind) for f in found] == [(keeper, "media_custodian")] and "1 件" in found[0].text
    r = site.client("admin").get("/roster/inventory")
    assert r.status_code == 200 and "離任者が管理者のままの媒体" in r.text


def test_g2_screen_records_movements_and_destruction_with_the_approval(site, backup_file):  # noqa: F811
    m = svc(site)
    ops = op(site, "operations")
    mid = m.register_backup(ops, site.terminal_id, backup_file, medium="lto", label="BK-MV", location="データ保管庫",
                            custodian=ops.operator_id)
    c = site.client("operations")
    tok = site.csrf("operations")
    r = c.post("/media/move", data={"csrf_token": tok, "media_id": "MB-NONE", "kind": "move", "location": "サーバ室"})
    assert r.status_code == 400 and "MEDIA_UNKNOWN" in r.text
    r = c.post("/media/move", data={"csrf_token": tok, "media_id": mid, "kind": "checkout", "location": "搬送中",
                                    "reason": "遠隔地保管"})
    assert r.status_code == 200 and m.item(mid).status == "out"
    r = c.post("/media/move", data={"csrf_token": tok, "media_id": mid, "kind": "checkin", "location": "遠隔地保管庫"})
    assert r.status_code == 200 and m.item(mid).location == "遠隔地保管庫"
    r = c.post("/media/dispose", data={"csrf_token": tok, "media_id": mid, "action": "destroy", "approval_id": "",
                                       "method": "crush"})
    assert r.status_code == 400 and "MEDIA_APPROVAL_REQUIRED" in r.text and m.item(mid).status == "in_vault"
    aid = m.approve(op(site, "manager"), site.terminal_id, mid, "destroy", "耐用年数超過")
    r = c.post("/media/dispose", data={"csrf_token": tok, "media_id": mid, "action": "destroy", "approval_id": aid,
                                       "method": "crush"})
    assert r.status_code == 200 and m.item(mid).status == "destroyed" and "廃棄済" in r.text


def test_g3_screen_virus_check_of_an_uploaded_file(site):  # noqa: F811
    c = site.client("operations")
    tok = site.csrf("operations")
    r = c.post("/media/scan", data={"csrf_token": tok, "direction": "in"},
               files={"file": ("conditions.csv", "依頼番号,住民票コード\n".encode(), "text/csv")})
    assert r.status_code == 200 and "検出なし" in r.text
    r = c.post("/media/scan", data={"csrf_token": tok, "direction": "in"},
               files={"file": ("conditions.csv", b"a,b\n" + EICAR + b"\n", "text/csv")})
    assert r.status_code == 400 and "MEDIA_INFECTED" in r.text and "ウイルスが検出" in r.text
    scans = svc(site).scans()
    assert [s.outcome for s in scans[:2]] == ["infected", "clean"] and scans[0].operator_id == site.op_ids["operations"]
    e = last_log(site, "media_scan")
    assert e.outcome == "refused" and json.loads(e.detail)["code"] == "MEDIA_INFECTED"
