"""A8 — automatic erasure past the retention periods, in batches, logged with counts only."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import MetaData, func, select, text

from jukinet.errors import JukinetError
from jukinet import retention
from jukinet.retention import RetentionRule, anniversary, cutoff_date, next_run_after, years_back
from jukinet.store.tables import fuhyo_current, fuhyo_history, juki_current, juki_history
from jukinet.store.tables_reconcile import RETENTION_RUNS

from ops_people import fuhyo, jst, juki, put_current, put_history


TODAY = date(2176, 11, 26)          # JST; cutoff = 2026-11-25
REGISTER_RULES = ["juki_history", "juki_removed", "fuhyo_history", "fuhyo_removed"]


def count(registers, store, table, where=None) -> int:
    q = select(func.count()).select_from(table)
    if where is not None:
        q = q.where(where)
    with registers.engine(store).connect() as c:
        return c.execute(q).scalar_one()


@pytest.fixture
def aged(registers):
    """Versions on both sides of the 150-year line (TODAY = 2176-11-26, cutoff 2026-11-25)."""
    with registers.juki_uow() as uow:
        c = uow.conn
        # 消除者: removed on the cutoff day (goes), the day after (stays); a living person (stays)
        put_current(c, juki(1, notified=date(2026, 11, 25), reason="死亡", deleted=True))
        put_current(c, juki(2, notified=date(2026, 11, 26), reason="死亡", deleted=True))
        put_current(c, juki(3, notified=date(2000, 1, 1)))
        put_current(c, juki(4, notified=date(1990, 5, 5), reason="国外転出", deleted=True))
        # 履歴: superseded late on the cutoff day in Japan (goes), at midnight after it (stays)
        put_history(c, juki(3, notified=date(1999, 1, 1), seq=100), superseded=jst(date(2026, 11, 25), 23), by_seq=101)
        put_history(c, juki(3, notified=date(1999, 1, 1), seq=102),
                    superseded=datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc), by_seq=103)  # 00:00 JST 26th
        for k in range(25):                               # old history, many batches
            put_history(c, juki(3, notified=date(1900, 1, 1), seq=200 + k), superseded=jst(date(1950 + k, 6, 1)),
                        by_seq=300 + k)
    with registers.fuhyo_uow() as uow:
        c = uow.conn
        put_current(c, fuhyo(1, notified=date(2026, 11, 25), reason="消除", status="消除"))
        put_current(c, fuhyo(2, notified=date(2026, 11, 26), reason="消除", status="消除"))
        put_current(c, fuhyo(3, notified=date(2001, 1, 1)))
        put_history(c, fuhyo(3, notified=date(1999, 1, 1), seq=100), superseded=jst(date(2010, 1, 1)), by_seq=101)
        put_history(c, fuhyo(3, notified=date(1999, 1, 1), seq=102), superseded=jst(date(2030, 1, 1)), by_seq=103)
    return registers


def test_a8_cutoff_rule_erases_only_after_the_150th_anniversary():
    """For every retention date around leap days: erased on ``today`` ⇔ its 150th anniversary
    (29 Feb → 1 Mar) is before ``today``."""
    start = date(2024, 1, 1)
    for t in range(0, 3 * 366, 1):
        today = date(2174, 1, 1) + timedelta(days=t)
        c = cutoff_date(today, 150)
        for dd in range(-3, 3):
            d = c + timedelta(days=dd)
            assert (d <= c) == (anniversary(d, 150) < today), (today, d)
    assert start  # the window covers 2024-02-29 and 2028-02-29 → 2174…2178
    assert years_back(date(2176, 2, 29), 150) == date(2026, 2, 28)


def test_a8_dry_run_counts_per_rule_and_year_and_erases_nothing(aged):
    before = [count(aged, "juki", juki_history), count(aged, "juki", juki_current),
              count(aged, "fuhyo", fuhyo_history), count(aged, "fuhyo", fuhyo_current)]
    reps = {r.rule: r for r in retention.run(aged, dry_run=True, today=TODAY, only=REGISTER_RULES)}
    assert reps["juki_history"].eligible == 26 and reps["juki_history"].erased == 0
    assert reps["juki_history"].by_year == {**{1950 + k: 1 for k in range(25)}, 2026: 1}
    assert (reps["juki_removed"].eligible, reps["juki_removed"].by_year) == (2, {1990: 1, 2026: 1})
    assert (reps["fuhyo_history"].eligible, reps["fuhyo_removed"].eligible) == (1, 1)
    assert reps["juki_history"].cutoff.startswith("2026-11-25T15:00:00")   # 00:00 JST on the 26th
    assert reps["juki_removed"].cutoff == "2026-11-25"
    after = [count(aged, "juki", juki_history), count(aged, "juki", juki_current),
             count(aged, "fuhyo", fuhyo_history), count(aged, "fuhyo", fuhyo_current)]
    assert before == after
    with aged.engine("juki").connect() as c:
        runs = c.execute(select(RETENTION_RUNS["juki"])).all()
    assert {r.rule for r in runs} == {"juki_history", "juki_removed"}
    assert all(r.dry_run and r.erased_count == 0 and r.status == "completed" for r in runs)


def test_a8_run_erases_past_150_years_in_batches_and_keeps_the_rest(aged):
    pauses = []
    reps = {r.rule: r for r in retention.run(aged, today=TODAY, only=REGISTER_RULES, batch_size=7,
                                             sleep=pauses.append, pause_seconds=0.01)}
    assert reps["juki_history"].erased == 26 and reps["juki_removed"].erased == 2
    assert reps["fuhyo_history"].erased == 1 and reps["fuhyo_removed"].erased == 1
    assert len(pauses) >= 4                                 # 26 rows in batches of 7
    with aged.engine("juki").connect() as c:
        left = {r[0] for r in c.execute(select(juki_current.c.juminhyo_code))}
        hist = c.execute(select(juki_history.c.superseded_at)).all()
    from ops_people import code_for
    assert left == {code_for(2), code_for(3)}              # removed the day after, and the living
    assert len(hist) == 1                                   # the version superseded at 00:00 JST on the 26th
    with aged.engine("fuhyo").connect() as c:
        assert {r[0] for r in c.execute(select(fuhyo_current.c.juminhyo_code))} == {code_for(2), code_for(3)}
        assert c.execute(select(func.count()).select_from(fuhyo_history)).scalar_one() == 1
    # a second run finds nothing more
    again = {r.rule: r for r in retention.run(aged, today=TODAY, only=REGISTER_RULES)}
    assert all(r.eligible == 0 and r.erased == 0 for r in again.values())


def test_a8_versions_written_by_intake_are_erased_150_years_after_the_notice(registers):
    """Through the real apply(): 記載 2020, 転居 2021 (history), 死亡 2022 (removed)."""
    p = juki(50, notified=date(2020, 4, 1))
    with registers.juki_uow() as uow:
        uow.repo.apply(p, now=jst(date(2020, 4, 1)))
    with registers.juki_uow() as uow:
        cur = uow.repo.get(p.juminhyo_code)
        uow.repo.apply(cur.replace(address="三重県津市栄町1丁目", reason="転居"), previous=cur, now=jst(date(2021, 4, 1)))
    with registers.juki_uow() as uow:
        cur = uow.repo.get(p.juminhyo_code)
        uow.repo.apply(cur.replace(reason="死亡", deleted=True, retention_flag=True), previous=cur,
                       now=jst(date(2022, 4, 1)))
    runs = lambda today: {r.rule: r.erased for r in retention.run(registers, today=today,  # noqa: E731
                                                                  only=["juki_history", "juki_removed"])}
    assert runs(date(2171, 4, 1)) == {"juki_history": 0, "juki_removed": 0}
    assert runs(date(2171, 4, 2)) == {"juki_history": 1, "juki_removed": 0}   # 記載 version (superseded 2021)
    assert runs(date(2172, 4, 1)) == {"juki_history": 0, "juki_removed": 0}
    # the 転居 version was superseded by the 死亡 notice: its clock and the 消除者's end together
    assert runs(date(2172, 4, 2)) == {"juki_history": 1, "juki_removed": 1}
    with registers.juki_uow(write=False) as uow:
        assert uow.repo.get(p.juminhyo_code) is None and uow.repo.history_of(p.juminhyo_code) == []


def test_a8_year_is_counted_in_japan(registers):
    with registers.juki_uow() as uow:
        put_history(uow.conn, juki(7, notified=date(1999, 1, 1), seq=5),
                    superseded=datetime(2026, 12, 31, 20, 0, tzinfo=timezone.utc), by_seq=6)  # 2027-01-01 JST
    [rep] = retention.run(registers, today=date(2177, 6, 1), only=["juki_history"], dry_run=True)
    assert rep.by_year == {2027: 1}


def test_a8_planned_rules_are_skipped_until_their_table_exists(registers, monkeypatch):
    from jukinet.retention import PlannedRule, TableRule
    from jukinet.store.tables_reconcile import juki_reconcile_runs
    retention.load_rules()
    monkeypatch.setitem(retention._RULES, "future_rule", PlannedRule("future_rule", "将来の記録", "テスト", "7年"))
    absent = TableRule("absent_table", "juki", juki_reconcile_runs.to_metadata(MetaData(),
                                                                             name="no_such_table"),
                       key="run_id", column="started_at", instant=True, title="表がない", basis="テスト", years=1)
    monkeypatch.setitem(retention._RULES, "absent_table", absent)
    reps = {r.rule: r for r in retention.run(registers, today=TODAY, only=["future_rule", "absent_table"])}
    assert {r.status for r in reps.values()} == {"skipped"}
    assert reps["future_rule"].period == "7年"
    hist = retention.history(registers)
    assert {h["rule"] for h in hist} == {"future_rule", "absent_table"}
    assert all(h["status"] == "skipped" and h["erased_count"] == 0 for h in hist)


def test_a8_every_registered_rule_runs_on_an_empty_installation(registers):
    """Whatever rules the rooms registered (provision records, the 個人番号 area, …): a dry run and a
    real run on an empty installation complete or skip, never fail."""
    for dry in (True, False):
        reps = retention.run(registers, today=TODAY, dry_run=dry)
        assert {r.rule for r in reps} >= set(REGISTER_RULES)
        assert all(r.status in ("completed", "skipped") for r in reps), [(r.rule, r.error_code) for r in reps]


def test_a8_a_failing_rule_is_recorded_and_the_others_still_run(aged, monkeypatch):
    class Broken(RetentionRule):
        name, store, title, period = "broken", "fuhyo", "壊れた規則", "1年"

        def cutoff(self, today, config):
            raise JukinetError("BROKEN_RULE", "テスト用の失敗")

    retention.load_rules()
    monkeypatch.setitem(retention._RULES, "broken", Broken())
    reps = {r.rule: r for r in retention.run(aged, today=TODAY, only=["broken", "juki_removed"])}
    assert (reps["broken"].status, reps["broken"].error_code) == ("failed", "BROKEN_RULE")
    assert reps["juki_removed"].erased == 2
    with aged.engine("fuhyo").connect() as c:
        r = c.execute(select(RETENTION_RUNS["fuhyo"]).where(RETENTION_RUNS["fuhyo"].c.rule == "broken")).one()
    assert (r.status, r.error_code) == ("failed", "BROKEN_RULE")


def test_a8_unknown_rule_is_a_clear_error(registers):
    with pytest.raises(JukinetError) as ei:
        retention.run(registers, only=["nothing"])
    assert ei.value.code == "RETENTION_RULE_UNKNOWN"


def test_a8_consistency_details_erased_after_their_window_counts_stay(registers):
    from jukinet.reconcile import run_check
    from jukinet.reconcile.snapshot import write_snapshot
    with registers.juki_uow() as uow:
        for i in range(5):
            put_current(uow.conn, juki(i + 60, notified=date(2025, 1, 1)))
    as_of = "2026-01-10T00:00:00+09:00"
    data = write_snapshot("juki", "242012", [], as_of=as_of)
    res = run_check(registers, "juki", "242012", io.BytesIO(data),
                    clock=lambda: datetime(2026, 1, 10, 3, tzinfo=timezone.utc))
    assert res.only_on_server == 5
    keep = registers.config.reconcile.detail_retention_days
    early = date(2026, 1, 10) + timedelta(days=keep)
    [r] = retention.run(registers, today=early, only=["reconcile_details_juki"])
    assert r.eligible == 0
    [r] = retention.run(registers, today=early + timedelta(days=2), only=["reconcile_details_juki"], batch_size=2)
    assert (r.eligible, r.erased) == (5, 5)
    from jukinet.reconcile.service import differences, get_run
    assert differences(registers, "juki", res.run_id) == []
    run = get_run(registers, "juki", res.run_id)
    assert run.only_on_server == 5                            # the counts stay


def test_a8_next_daily_run_is_at_the_configured_time_in_japan():
    now = datetime(2026, 11, 26, 17, 30, tzinfo=timezone.utc)   # 02:30 JST on the 27th exactly
    assert next_run_after(now, "02:30") == datetime(2026, 11, 27, 17, 30, tzinfo=timezone.utc)
    assert next_run_after(now - timedelta(seconds=1), "02:30") == now


def test_a8_daily_task_of_serve_runs_every_rule_and_never_raises(aged, config, monkeypatch):
    from jukinet.scheduler import OpsScheduler

    noon = datetime(2176, 11, 26, 3, 0, tzinfo=timezone.utc)              # 12:00 JST, TODAY
    sched = OpsScheduler(config, clock=lambda: noon, registers=aged)
    sched.run_once()
    assert sched.runs == 1
    assert count(aged, "juki", juki_history) == 1                       # past 150 years: gone
    rules = {h["rule"] for h in retention.history(aged, limit=100)}
    assert set(REGISTER_RULES) <= rules
    monkeypatch.setattr(retention, "run", lambda *a, **k: 1 / 0)        # a failure is logged, not raised
    sched.run_once()
    assert sched.runs == 2
    config.retention.enabled = False
    assert OpsScheduler(config).start()._thread is None                 # off: no thread


def test_a8_bulk_purge_walks_the_primary_key_and_erases_the_same_rows(aged, monkeypatch):
    monkeypatch.setattr(retention, "BULK_ROWS", 1)           # every rule takes the bulk path
    reps = {r.rule: r for r in retention.run(aged, today=TODAY, only=REGISTER_RULES, batch_size=4,
                                             pause_seconds=0)}
    assert {k: r.erased for k, r in reps.items()} == {"juki_history": 26, "juki_removed": 2, "fuhyo_history": 1,
                                                      "fuhyo_removed": 1}
    from ops_people import code_for
    with aged.engine("juki").connect() as c:
        assert {r[0] for r in c.execute(select(juki_current.c.juminhyo_code))} == {code_for(2), code_for(3)}
        assert c.execute(select(func.count()).select_from(juki_history)).scalar_one() == 1
