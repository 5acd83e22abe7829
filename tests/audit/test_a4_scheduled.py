"""A4 (ADR 0028): the ops scheduler of ``jukinet serve`` makes last month's access-log analysis on
the 1st (JST) with the same service as the CLI, stored for the manager's screen; once per month
unless that month's log changed; failures logged by code; the outcome on the operations status.
Injected clock; SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import select

from jukinet.audit.monthly import due_month
from jukinet.audit.service import JST, AuditService, parse_month
from jukinet.scheduler import OpsScheduler
from jukinet.keyring import KEY_FILE
from jukinet.security.oplog import Actor
from jukinet.store.tables_audit import audit_reports

from .audit_site import resident_data, site  # noqa: F401  (fixture)


def jst(*a) -> datetime:
    return datetime(*a, tzinfo=JST)


def _log_in(site, month_day: datetime, n: int, chain: str = "juki") -> None:
    """``n`` searches by OPERATOR-BOTH stamped on that (past) day."""
    with site.registers.uow(chain) as uow:
        for i in range(n):
            site.sec.oplog.append(uow.conn, chain, actor=Actor("OPERATOR-BOTH", site.terminal_id), action="search",
                                  keys={"name": "山田"}, result_count=1, now=month_day.replace(minute=i))


def _reports(site, month: str) -> list:
    with site.registers.admin_tx(write=False) as conn:
        return conn.execute(select(audit_reports).where(audit_reports.c.month == month)
                            .order_by(audit_reports.c.report_id)).all()


def test_a4_due_month_is_last_month_from_the_first_at_the_configured_time():
    assert due_month(jst(2026, 11, 1, 5, 0), "05:00").key == "2026-10"
    assert due_month(jst(2026, 11, 1, 4, 59), "05:00").key == "2026-09"
    assert due_month(jst(2026, 11, 30, 23, 0), "05:00").key == "2026-10"
    assert due_month(jst(2027, 1, 1, 6, 0), "05:00").key == "2026-12"


def test_a4_scheduler_generates_last_months_report_once_and_again_only_when_the_log_changed(site, caplog):
    config = site.app.state.config
    _log_in(site, jst(2026, 9, 14, 10, 0), 5)
    _log_in(site, jst(2026, 9, 15, 22, 0), 2, chain="fuhyo")            # outside office hours: flag (c)
    now = {"t": jst(2026, 10, 1, 4, 59)}
    sched = OpsScheduler(config, clock=lambda: now["t"], registers=site.registers)

    now["t"] = jst(2026, 10, 1, 5, 0)                                     # the 1st, at monthly_report_at
    run = sched.run_monthly_once()
    assert (run.month, run.outcome) == ("2026-09", "generated")
    [rep] = _reports(site, "2026-09")
    assert rep.generated_by == "scheduler" and rep.entry_count == 7 and rep.flag_count >= 1
    # the same bytes as the manager's screen / the CLI would make: the stored digest is that version
    g = AuditService(config, site.registers).generate(Actor("MANAGER", site.terminal_id), parse_month("2026-09"),
                                                      now=now["t"])
    assert g.report_id == rep.report_id and g.pdf_sha256 == rep.pdf_sha256
    # the manager's list shows it as made automatically, not yet signed off
    page = site.client("manager").get("/audit/reports").text
    row = page[page.index('id="month-2026-09"'):]
    row = row[:row.index("</tr>")]
    assert rep.pdf_sha256[:16] in row and "自動作成" in row and "未確認" in row

    for t in (jst(2026, 10, 2, 5, 0), jst(2026, 10, 31, 5, 0)):           # the daily checks after: nothing new
        now["t"] = t
        assert sched.run_monthly_once().outcome == "exists"
    assert len(_reports(site, "2026-09")) == 1
    _log_in(site, jst(2026, 9, 30, 23, 0), 1)                             # a late entry of September
    assert sched.run_monthly_once().outcome == "regenerated"
    assert [r.entry_count for r in _reports(site, "2026-09")] == [7, 8]
    assert sched.run_monthly_once().outcome == "exists"

    # a failure (the operation-log key is unreadable) is logged by code; the next check makes it
    key = config.data_dir / KEY_FILE
    saved = key.read_bytes()
    key.write_text("not a key")
    now["t"] = jst(2026, 11, 1, 5, 0)
    with caplog.at_level(logging.ERROR, logger="jukinet.ops"):
        run = sched.run_monthly_once()
    assert run.month == "2026-10" and run.outcome == "ValueError"
    assert any("monthly access-log analysis failed: month=2026-10 code=ValueError" in r.getMessage()
               for r in caplog.records)
    assert _reports(site, "2026-10") == []
    key.write_bytes(saved)
    assert sched.run_monthly_once().outcome == "generated"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(v in text for v in resident_data())


def test_a4_ops_status_shows_the_months_report_and_its_signoff(site):
    config = site.app.state.config
    _log_in(site, jst(2026, 9, 14, 10, 0), 3)
    now = jst(2026, 10, 1, 6, 0)
    sched = OpsScheduler(config, clock=lambda: now, registers=site.registers)
    site.app.state.ops_scheduler = sched
    from jukinet.ops import status as S

    st = S.collect(site.registers, config, sched=sched, now=now)
    assert st.monthly_report.label == "令和8年9月分 未作成"
    sched.run_monthly_once()
    st = S.collect(site.registers, config, sched=sched, now=now)
    assert st.monthly_report.label == "令和8年9月分 作成済 / 未承認" and st.monthly_report.generated_by_scheduler
    assert st.as_dict()["monthly_report"]["label"] == "令和8年9月分 作成済 / 未承認"
    # the operations role sees it on /ops (the screen uses the real clock: September is not the due
    # month in real time, so only the scheduler's outcome is checked there)
    page = site.client("operations").get("/ops")
    assert page.status_code == 200 and 'id="ops-monthly"' in page.text and "2026-09: generated" in page.text
    [rep] = _reports(site, "2026-09")
    AuditService(config, site.registers).sign_off(Actor("MANAGER", site.terminal_id), parse_month("2026-09"),
                                                  rep.pdf_sha256, decision="no_issue", now=now)
    st = S.collect(site.registers, config, sched=sched, now=now)
    assert st.monthly_report.label == "令和8年9月分 作成済 / 承認済"


def test_a4_serve_scheduler_thread_makes_the_report_after_its_start_delay(site):
    config = site.app.state.config
    config.retention.enabled = config.backup.enabled = False
    _log_in(site, jst(2026, 9, 14, 10, 0), 2)
    sched = OpsScheduler(config, clock=lambda: jst(2026, 10, 3, 12, 0), registers=site.registers,
                         monthly_delay=0.0).start()
    try:
        deadline = time.monotonic() + 60
        while sched.monthly_outcome is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sched.stop()
    assert sched.monthly_outcome == "2026-09: generated"
    assert len(_reports(site, "2026-09")) == 1


def test_a4_metrics_tell_whether_the_due_months_report_exists_and_is_signed(site):
    from fastapi.testclient import TestClient

    local = TestClient(site.app, client=("127.0.0.1", 40000))

    def gauge(name):
        line = [x for x in local.get("/metrics").text.splitlines() if x.startswith(name + " ")]
        return float(line[0].split()[1])

    assert gauge("jukinet_audit_monthly_report_generated") == 0
    run = OpsScheduler(site.app.state.config, registers=site.registers).run_monthly_once()   # the real clock
    assert run.outcome == "generated"
    assert gauge("jukinet_audit_monthly_report_generated") == 1
    assert gauge("jukinet_audit_monthly_report_signed_off") == 0
