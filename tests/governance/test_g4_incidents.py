"""G4: the incident register (事故発生時手順; PIA III.7 R1⑧; ADR 0041) — an incident is opened, its
steps, the people and bodies notified and the closing are recorded; it is reachable from the
operation-log entries involved and back; it appears in the monthly report. Both engines; services,
the Japanese operator UI (TestClient) and the CLI."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from jukinet.audit.service import AuditService, parse_month
from jukinet.cli import app as cli_app
from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor
from jukinet.store.tables_governance import incident_events, incident_links, incidents
from tests.governance.people import JST, detail, incidents_of, log, now_local
from tests.web.operator_site import site  # noqa: F401  (fixture)


def _juki_entry(site, action="search") -> int:
    """An entry in the 本人確認情報 chain, as a search by the 業務担当者 would leave."""
    with site.registers.juki_uow() as uow:
        return site.sec.oplog.append(uow.conn, "juki", actor=Actor(site.op_ids["operator_juki"], site.terminal_id),
                                     action=action, purpose_code="inquiry", result_count=3)


def _count(site, table) -> int:
    with site.registers.admin_tx(write=False) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _open(site, **kw) -> str:
    args = dict(title="帳票の誤送付", category="loss", severity="serious", occurred_at=now_local(-120),
                discovered_at=now_local(-60), summary="提供帳票1件を別の市町村へ送付した。")
    args.update(kw)
    return incidents_of(site).open(Actor(site.op_ids["manager"], site.terminal_id),
                                   by=site.sec.get_operator(site.op_ids["manager"]), **args)


def test_g4_incident_is_opened_stepped_notified_and_closed_with_its_log(site):  # noqa: F811
    svc = incidents_of(site)
    mgr = site.sec.get_operator(site.op_ids["manager"])
    admin = site.sec.get_operator(site.op_ids["admin"])
    no = _open(site)
    assert re.fullmatch(r"INC-\d{4}-0001", no)
    svc.add_step(Actor(admin.operator_id, None), no, at=now_local(-50), text="送付先に連絡し回収を依頼", by=admin)
    svc.notify(Actor(admin.operator_id, None), no, party="municipality", party_name="津市市民課", at=now_local(-40),
               text="誤送付の事実と回収予定を連絡", by=admin)
    svc.notify(Actor(admin.operator_id, None), no, party="manager", party_name="市町村課長", at=now_local(-30), by=admin)
    seq = _juki_entry(site)
    svc.link(Actor(admin.operator_id, None), no, "juki", seq, by=admin)
    svc.close(Actor(mgr.operator_id, None), no, at=now_local(-1), cause="宛先の確認漏れ",
              prevention="発送前に2名で宛先を照合する", by=mgr)
    v = svc.get(no)
    assert v.row.status == "closed" and v.row.closed_by == mgr.operator_id and v.row.cause == "宛先の確認漏れ"
    assert [e.kind for e in v.events] == ["open", "step", "notify", "notify", "close"]
    assert [(e.party, e.party_name) for e in v.notified] == [("municipality", "津市市民課"), ("manager", "市町村課長")]
    assert [(c, s, e.action) for c, s, e in v.links] == [("juki", seq, "search")]
    actions = [e.action for e in log(site) if e.action.startswith("incident_") and e.outcome == "granted"]
    assert actions == ["incident_open", "incident_step", "incident_notify", "incident_notify", "incident_link",
                       "incident_close"]
    assert all(detail(e)["incident_no"] == no for e in log(site) if e.action.startswith("incident_"))


def test_g4_reachable_from_the_log_screen_and_back(site):  # noqa: F811
    seq = _juki_entry(site)
    c = site.client("manager")
    r = c.post("/incidents", data={"csrf_token": site.csrf("manager"), "title": "不審な検索", "category": "misuse",
                                   "severity": "minor", "occurred_at": now_local(-90), "discovered_at": now_local(-10),
                                   "summary": "同一人の検索が繰り返された"}, follow_redirects=False)
    assert r.status_code == 303
    no = r.headers["location"].rsplit("/", 1)[1]
    # from the log entry to the incident: link it on the entry's screen
    r = c.get(f"/audit/entries/juki/{seq}")
    assert r.status_code == 200 and 'id="entry-link-form"' in r.text and "関連付けられた事故はありません" in r.text
    r = c.post(f"/audit/entries/juki/{seq}/link", data={"csrf_token": site.csrf("manager"), "incident_no": no})
    assert r.status_code == 200 and f'href="/incidents/{no}"' in r.text
    # the log screen shows the incident next to the entry
    r = c.get("/audit")
    row = re.search(rf'<tr[^>]*id="log-juki-{seq}".*?</tr>', r.text, re.S).group(0)
    assert f'href="/incidents/{no}"' in row and f'href="/audit/entries/juki/{seq}"' in row
    # and the incident leads back to the entry
    r = c.get(f"/incidents/{no}")
    assert r.status_code == 200 and f'data-chain="juki" data-seq="{seq}"' in r.text
    assert f'href="/audit/entries/juki/{seq}"' in r.text and "不審な検索" in r.text
    # the auditor reads the register (no forms); the operations contractor may not
    r = site.client("auditor").get(f"/incidents/{no}")
    assert r.status_code == 200 and 'id="step-form"' not in r.text
    r = site.client("operations").get("/incidents")
    assert r.status_code == 403 and "FORBIDDEN" in r.text
    assert log(site)[-1].outcome == "refused" and log(site)[-1].operator_id == site.op_ids["operations"]


def test_g4_web_steps_notifications_and_closing_by_the_manager_only(site):  # noqa: F811
    no = _open(site)
    admin = site.client("admin")
    r = admin.post(f"/incidents/{no}/steps", data={"csrf_token": site.csrf("admin"), "at": now_local(-5),
                                                   "text": "端末を隔離した"})
    assert r.status_code == 200 and 'data-kind="step"' in r.text and "端末を隔離した" in r.text
    r = admin.post(f"/incidents/{no}/notifications", data={"csrf_token": site.csrf("admin"), "party": "ppc",
                                                           "party_name": "個人情報保護委員会 事務局", "at": now_local(-4)})
    assert r.status_code == 200 and 'data-party="ppc"' in r.text
    assert 'id="close-form"' not in r.text        # the form is the manager's
    n_before = _count(site, incident_events)
    r = admin.post(f"/incidents/{no}/close", data={"csrf_token": site.csrf("admin"), "at": now_local(-1),
                                                   "cause": "設定誤り", "prevention": "設定手順の見直し"})
    assert r.status_code == 403 and 'data-code="APPROVAL_NOT_MANAGER"' in r.text
    assert _count(site, incident_events) == n_before and incidents_of(site).get(no).row.status == "open"
    assert detail(log(site, action="incident_close")[-1])["code"] == "APPROVAL_NOT_MANAGER"
    r = site.client("manager").post(f"/incidents/{no}/close", data={
        "csrf_token": site.csrf("manager"), "at": now_local(-1), "cause": "設定誤り", "prevention": "設定手順の見直し"})
    assert r.status_code == 200 and 'data-status="closed"' in r.text and "設定手順の見直し" in r.text
    assert "令和" in r.text      # 和暦


def test_g4_bad_input_is_refused_coded_unchanged_and_logged(site):  # noqa: F811
    svc = incidents_of(site)
    mgr = site.sec.get_operator(site.op_ids["manager"])
    admin = site.sec.get_operator(site.op_ids["admin"])
    a = Actor(mgr.operator_id, None)
    no = _open(site)
    tomorrow = (datetime.now(JST) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    counts = (_count(site, incidents), _count(site, incident_events), _count(site, incident_links))
    cases = [
        (lambda: _open(site, occurred_at=tomorrow), "INCIDENT_DATE_FUTURE"),
        (lambda: _open(site, occurred_at="2026-02-30T10:00"), "INCIDENT_DATE_INVALID"),
        (lambda: _open(site, occurred_at=now_local(-10), discovered_at=now_local(-20)), "INCIDENT_DATE_ORDER"),
        (lambda: _open(site, category="fire"), "INCIDENT_CATEGORY_INVALID"),
        (lambda: _open(site, title=""), "INCIDENT_TITLE_REQUIRED"),
        (lambda: svc.add_step(a, "INC-1999-0042", at=now_local(-1), text="x", by=mgr), "INCIDENT_NOT_FOUND"),
        (lambda: svc.add_step(a, no, at=tomorrow, text="x", by=mgr), "INCIDENT_DATE_FUTURE"),
        (lambda: svc.notify(a, no, party="press", party_name="x", at=now_local(-1), by=mgr), "INCIDENT_PARTY_INVALID"),
        (lambda: svc.link(a, no, "juki", 999999, by=mgr), "OPLOG_ENTRY_NOT_FOUND"),
        (lambda: svc.link(a, no, "elsewhere", 1, by=mgr), "OPLOG_CHAIN_INVALID"),
        (lambda: svc.close(a, no, at=now_local(-1), cause="c", prevention="p", by=admin), "APPROVAL_NOT_MANAGER"),
        (lambda: svc.close(a, no, at=now_local(-1), cause="c", prevention="p", by=None), "APPROVAL_NOT_MANAGER"),
        (lambda: svc.close(a, no, at=now_local(-1), cause="c", prevention="p", by=mgr), "INCIDENT_NOT_NOTIFIED"),
        (lambda: svc.open(a, title="t", category="loss", severity="minor", occurred_at=now_local(-2),
                          discovered_at=now_local(-1), summary="s",
                          by=site.sec.get_operator(site.op_ids["operator_both"])), "FORBIDDEN"),
    ]
    for call, code in cases:
        with pytest.raises(JukinetError) as e:
            call()
        assert e.value.code == code, (code, e.value.code)
        last = [x for x in log(site) if x.action.startswith("incident_")][-1]
        assert last.outcome in ("refused", "invalid") and detail(last)["code"] == code
    assert (_count(site, incidents), _count(site, incident_events), _count(site, incident_links)) == counts
    # a closed incident takes no more steps
    svc.notify(a, no, party="manager", party_name="課長", at=now_local(-1), by=mgr)
    svc.close(a, no, at=now_local(-1), cause="c", prevention="p", by=mgr)
    with pytest.raises(JukinetError) as e:
        svc.add_step(a, no, at=now_local(-1), text="追加", by=mgr)
    assert e.value.code == "INCIDENT_CLOSED"
    # unknown ids on the screens: a coded page, no 5xx
    c = site.client("manager")
    assert c.get("/incidents/INC-1999-0042").status_code == 404
    assert c.get("/audit/entries/juki/99999").status_code == 404
    r = c.post(f"/audit/entries/juki/{_juki_entry(site)}/link", data={"csrf_token": site.csrf("manager"),
                                                                    "incident_no": "INC-1999-0042"})
    assert r.status_code == 400 and 'data-code="INCIDENT_NOT_FOUND"' in r.text


def test_g4_incidents_appear_in_the_monthly_report(site):  # noqa: F811
    no = _open(site)
    month = parse_month(datetime.now(JST).strftime("%Y-%m"))
    svc = AuditService(site.sec.config, site.registers)
    gov = svc.governance_month(month)
    assert [r.incident_no for r in gov.incidents["opened"]] == [no]
    assert [r.incident_no for r in gov.incidents["open"]] == [no]
    _, _, pdf, csv = svc.render(month, now=datetime.now(timezone.utc))
    text = csv.decode("utf-8-sig")
    assert f",{no}," in text and "事故" in text and "帳票の誤送付" in text
    assert pdf.startswith(b"%PDF")
    # last month's report does not list it
    prev = parse_month((datetime.now(JST).replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    assert svc.governance_month(prev).incidents["opened"] == []


def test_g4_cli_open_notify_link_close(site, config):  # noqa: F811
    runner = CliRunner()
    d = str(config.data_dir)
    mgr = site.op_ids["manager"]
    r = runner.invoke(cli_app, ["incident", "open", "--title", "USBメモリの紛失", "--category", "loss",
                                "--severity", "serious", "--occurred", now_local(-60), "--discovered", now_local(-30),
                                "--summary", "持出し記録のない媒体が所在不明", "--by", mgr, "--data-dir", d])
    assert r.exit_code == 0, r.output
    no = re.search(r"INC-\d{4}-\d{4}", r.output).group(0)
    seq = _juki_entry(site)
    for args in (["notify", no, "--party", "manager", "--name", "市町村課長", "--at", now_local(-20), "--by", mgr],
                 ["link", no, "--chain", "juki", "--seq", str(seq), "--by", mgr]):
        r = runner.invoke(cli_app, ["incident", *args, "--data-dir", d])
        assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["incident", "close", no, "--at", now_local(-1), "--cause", "c", "--prevention", "p",
                                "--by", site.op_ids["admin"], "--data-dir", d])
    assert r.exit_code == 2 and "APPROVAL_NOT_MANAGER" in r.output
    r = runner.invoke(cli_app, ["incident", "step", "INC-1999-0001", "--at", now_local(-1), "--text", "x",
                                "--data-dir", d])
    assert r.exit_code == 2 and "INCIDENT_NOT_FOUND" in r.output
    r = runner.invoke(cli_app, ["incident", "close", no, "--at", now_local(-1), "--cause", "c", "--prevention", "p",
                                "--by", mgr, "--data-dir", d])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["incident", "show", no, "--data-dir", d])
    assert r.exit_code == 0 and "終結" in r.output and f"juki seq {seq}" in r.output and "管理責任者 (市町村課長)" in r.output
