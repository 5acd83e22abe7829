"""A4 — the monthly access-log analysis on a real installation (SQLite and PostgreSQL): flags on
activity made through the real search service, the report (PDF text read back with pypdf, CSV)
without resident data, the manager's sign-off on the web screen, refusals, and the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from typer.testing import CliRunner

from jukinet.audit.service import AuditService, JST, parse_month, previous_month
from jukinet.cli import app as cli_app
from jukinet.search import service as S
from jukinet.security.oplog import Actor
from jukinet.store.tables_audit import audit_reports, audit_signoffs

from .audit_site import ADMIN, last_entry, last_seq, resident_data, site  # noqa: F401  (fixture)
from jukinet_testing import finish_job


def _detail(site, actor, code, register="juki"):
    S.detail(S.DetailCommand(purpose_code="inquiry", register=register, juminhyo_code=code), site.registers,
             site.sec.oplog, actor)
    return last_seq(site.registers, register)


def _svc(site) -> AuditService:
    return AuditService(site.app.state.config, site.registers)


def _flags(a, kind, op=None):
    return [f for f in a.flags if f.kind == kind and (op is None or f.operator_id == op)]


def test_a4_flags_on_real_activity_name_the_entries_behind_them(site):
    sec, regs = site.sec, site.registers
    sec.register_operator(ADMIN, display_name="山田　一郎", roles=["operator"], registers=["juki", "fuhyo"],
                          affairs=["search"], operator_id="YAMADA")
    yamada = Actor("YAMADA", site.terminal_id)
    repeated = [_detail(site, yamada, "10000000004") for _ in range(4)]          # (b): 髙橋 4 times > 3
    kin = _detail(site, yamada, "10000000002")                                   # (d): 山田 花子, same 氏
    S.search(S.SearchCommand(purpose_code="inquiry", registers=("juki",), name="山田", name_match="prefix"),
             regs, sec.oplog, yamada)
    kin_search = last_seq(regs, "juki")                                          # (d): the 氏 as search key
    other = _detail(site, yamada, "10000000006")                                 # 佐藤: not related
    # the administrator records YAMADA's own area: a lookup of 山多 (四日市市諏訪町) is then related too
    r = site.client("admin").post("/roster/operators/YAMADA/watch", data={
        "address_prefix": "三重県四日市市諏訪町", "csrf_token": site.csrf("admin")})
    assert r.status_code == 200 and last_entry(regs, "admin", "audit_watch_set").operator_id == "ADMIN"
    neighbour = _detail(site, yamada, "10000000003")
    # a refusal: operator_juki asks for the fuhyo register (out of scope) on the screen (f)
    c = site.client("operator_juki")
    r = c.post("/detail", data={"purpose_code": "inquiry", "register": "fuhyo", "juminhyo_code": "10000000001",
                                "csrf_token": site.csrf("operator_juki")})
    assert r.status_code == 403
    refused = last_seq(regs, "fuhyo")
    # a clean operator: a lookup followed by a provision on the same day
    both = Actor("OPERATOR-BOTH", site.terminal_id)
    _detail(site, both, "10000000003")
    with regs.uow("juki") as uow:
        sec.oplog.append(uow.conn, "juki", actor=both, action="provision", purpose_code="provision",
                         keys={"juminhyo_code": "10000000003"}, result_count=1)

    month = parse_month(datetime.now(JST).strftime("%Y-%m"))
    a, names = _svc(site).analyse(month)
    assert names["YAMADA"] == "山田　一郎"
    b = _flags(a, "b", "YAMADA")
    assert len(b) == 1 and [e.seq for e in b[0].entries] == repeated
    d = _flags(a, "d", "YAMADA")
    assert len(d) == 1 and [e.seq for e in d[0].entries] == [kin, kin_search, neighbour]
    assert other not in [e.seq for e in d[0].entries]
    flag_a = _flags(a, "a", "YAMADA")
    assert {e.seq for f in flag_a for e in f.entries} == {*repeated, kin, kin_search, other, neighbour}
    f = _flags(a, "f", "OPERATOR-JUKI")
    assert [(e.chain, e.seq) for e in f[0].entries] == [("fuhyo", refused)]
    # silence for the clean operator (no flag of kind a, b, d, e, f)
    assert not [x for x in a.flags if x.operator_id == "OPERATOR-BOTH" and x.kind != "c"]
    assert a.counts["OPERATOR-BOTH"].lookups == 1 and a.counts["OPERATOR-BOTH"].business == 1


def _craft_past_month(site):
    """Entries in last month (JST), logged through the real operation log with their times."""
    m = previous_month()
    sec, regs = site.sec, site.registers
    night = datetime(m.year, m.month, 3, 22, 15, tzinfo=JST)           # 22:15 JST: outside office hours
    op = Actor("OPERATOR-JUKI", site.terminal_id)
    seqs = []
    with regs.uow("juki") as uow:
        for i, code in enumerate(("10000000001", "10000000002")):
            seqs.append(sec.oplog.append(uow.conn, "juki", actor=op, action="detail", purpose_code="inquiry",
                                         keys={"juminhyo_code": code}, result_count=1, now=night + timedelta(minutes=i)))
    return m, seqs


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def test_a4_report_pdf_and_csv_hold_flags_but_no_resident_data_and_are_stable(site):
    m, seqs = _craft_past_month(site)
    svc = _svc(site)
    g = svc.generate(Actor("MANAGER", site.terminal_id), m)
    text = _pdf_text(g.pdf)
    assert "操作ログ月次分析報告書" in text and "時間外照会" in text and "OPERATOR-JUKI" in text
    assert "令和" in text and "月途中" not in text
    csv_text = g.csv.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    c_rows = [r for r in rows if r["区分"] == "フラグ" and r["フラグ区分"].startswith("c ")]
    assert sorted(int(r["seq"]) for r in c_rows) == seqs and all(r["ログ"] == "juki" for r in c_rows)
    for item in resident_data():
        assert item not in text, item
        assert item not in csv_text, item
    # stable: the same month gives the same bytes and no new report version
    again = svc.generate(Actor("MANAGER", site.terminal_id), m)
    assert again.pdf_sha256 == g.pdf_sha256 == hashlib.sha256(g.pdf).hexdigest() and again.report_id == g.report_id
    with site.registers.admin_tx(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(audit_reports)).scalar_one() == 1
    entry = last_entry(site.registers, "admin", "audit_report")
    assert json.loads(entry.detail)["sha256"] == g.pdf_sha256


def _generate_on_screen(site, month: str):
    c = site.client("manager")
    r = finish_job(c, c.post("/audit/reports/generate", data={"month": month, "csrf_token": site.csrf("manager")}))
    assert r.status_code == 200, r.text
    sha = re.search(r'id="report-sha256">([0-9a-f]{64})<', r.text).group(1)
    return c, sha, r.text


def test_a4_manager_signs_off_on_the_screen_and_it_is_recorded(site):
    m, seqs = _craft_past_month(site)
    c, sha, page = _generate_on_screen(site, m.key)
    assert f"juki#{seqs[0]}" in page and "時間外照会" in page
    r = c.post("/audit/reports/signoff", data={"month": m.key, "pdf_sha256": sha, "decision": "follow_up",
                                               "comment": "担当者に確認する", "note_1": "investigate",
                                               "csrf_token": site.csrf("manager")})
    assert r.status_code == 200 and "確認を記録しました" in r.text
    with site.registers.admin_tx(write=False) as conn:
        s = conn.execute(select(audit_signoffs)).one()
    assert (s.month, s.pdf_sha256, s.signed_by, s.decision) == (m.key, sha, "MANAGER", "follow_up")
    assert json.loads(s.flag_notes) == {"1": "investigate"}
    logged = last_entry(site.registers, "admin", "audit_signoff")
    assert logged.operator_id == "MANAGER" and json.loads(logged.detail)["sha256"] == sha
    # visible in the list, to the manager and (read-only) to the auditor
    for persona in ("manager", "auditor"):
        page = site.client(persona).get("/audit/reports").text
        row = page[page.index(f'id="month-{m.key}"'):]
        row = row[:row.index("</tr>")]
        assert "要対応" in row and "MANAGER" in row
    assert "作成・確認" not in site.client("auditor").get("/audit/reports").text


def test_a4_signoff_refused_for_non_managers_and_for_a_changed_report(site):
    m, _ = _craft_past_month(site)
    c, sha, _ = _generate_on_screen(site, m.key)
    for persona in ("auditor", "operator_both", "admin"):
        r = site.client(persona).post("/audit/reports/signoff", data={
            "month": m.key, "pdf_sha256": sha, "decision": "no_issue", "csrf_token": site.csrf(persona)})
        assert r.status_code == 403, persona
        refusal = last_entry(site.registers, "admin", "audit_signoff")
        assert refusal.outcome == "refused" and refusal.operator_id == site.op_ids[persona]
    # a late entry in that month changes the report: the version the manager saw can no longer be signed
    with site.registers.uow("juki") as uow:
        site.sec.oplog.append(uow.conn, "juki", actor=Actor("OPERATOR-BOTH", site.terminal_id), action="search",
                              keys={"name": "x"}, result_count=1, now=datetime(m.year, m.month, 20, 10, tzinfo=JST))
    r = c.post("/audit/reports/signoff", data={"month": m.key, "pdf_sha256": sha, "decision": "no_issue",
                                               "csrf_token": site.csrf("manager")})
    assert r.status_code == 409 and 'data-code="AUDIT_REPORT_CHANGED"' in r.text
    with site.registers.admin_tx(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(audit_signoffs)).scalar_one() == 0
    refusal = last_entry(site.registers, "admin", "audit_signoff")
    assert refusal.outcome == "refused" and json.loads(refusal.detail)["code"] == "AUDIT_REPORT_CHANGED"
    # the current month cannot be signed off before it ends
    this = datetime.now(JST).strftime("%Y-%m")
    _, sha_now, _ = _generate_on_screen(site, this)
    r = c.post("/audit/reports/signoff", data={"month": this, "pdf_sha256": sha_now, "decision": "no_issue",
                                               "csrf_token": site.csrf("manager")})
    assert r.status_code == 400 and 'data-code="AUDIT_MONTH_OPEN"' in r.text


def test_a4_downloads_are_post_logged_and_bad_months_refused(site):
    m, _ = _craft_past_month(site)
    r = site.client("auditor").post("/audit/reports/download", data={"month": m.key, "format": "pdf",
                                                                     "csrf_token": site.csrf("auditor")})
    assert r.status_code == 200 and r.content.startswith(b"%PDF") and r.headers["cache-control"] == "no-store"
    entry = last_entry(site.registers, "admin", "audit_report_download")
    assert entry.operator_id == "AUDITOR" and json.loads(entry.detail)["sha256"] == hashlib.sha256(r.content).hexdigest()
    assert site.client("auditor").get(f"/audit/reports/download?month={m.key}").status_code == 405
    r = site.client("manager").post("/audit/reports/generate", data={"month": "2026-13",
                                                                     "csrf_token": site.csrf("manager")})
    assert r.status_code == 400 and 'data-code="AUDIT_MONTH_INVALID"' in r.text


def test_a4_cli_report_writes_files_and_refuses_bad_months_with_codes(site, tmp_path):
    m, _ = _craft_past_month(site)
    data_dir = str(site.app.state.config.data_dir)
    runner = CliRunner()
    r = runner.invoke(cli_app, ["audit", "report", "--month", m.key, "--out", str(tmp_path), "--data-dir", data_dir])
    assert r.exit_code == 0, r.output
    pdf = (tmp_path / f"audit-{m.key}.pdf").read_bytes()
    assert hashlib.sha256(pdf).hexdigest() in r.output.replace("\n", "")
    assert (tmp_path / f"audit-{m.key}.csv").read_text(encoding="utf-8-sig").startswith("区分,")
    for bad, code in (("2026-1x", "AUDIT_MONTH_INVALID"), ("10/2026", "AUDIT_MONTH_INVALID"),
                      ("2999-01", "AUDIT_MONTH_FUTURE")):
        r = runner.invoke(cli_app, ["audit", "report", "--month", bad, "--out", str(tmp_path), "--data-dir", data_dir])
        assert r.exit_code == 2 and code in r.output, (bad, r.output)
