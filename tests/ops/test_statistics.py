"""A9 — statistics: counts of updates (by reason, municipality, month), consistency checks, and the
planned sources; CSV and SVG output; the command line. Never a person's data."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import pytest
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.errors import JukinetError
from jukinet import charts
from jukinet.ops import stats_report
from jukinet.ops.statistics import Period, collect, with_names

from ops_people import TSU, YOKKAICHI, fuhyo, jst, juki, put_current, put_history

runner = CliRunner()


@pytest.fixture
def updates(registers):
    """juki: 4 versions in 2026-04 (3 津市, 1 四日市市), 2 in 2026-05, 1 in 2025-12 (outside);
    fuhyo: 2 in 2026-05. Current and history rows both count."""
    with registers.juki_uow() as uow:
        c = uow.conn
        put_current(c, juki(1, notified=date(2026, 4, 1)))                               # 国内転入 04 津
        put_current(c, juki(2, notified=date(2026, 4, 30), reason="出生"))                # 出生 04 津
        put_current(c, juki(3, notified=date(2026, 5, 2), reason="転居", seq=30))          # 転居 05 津
        put_history(c, juki(3, notified=date(2026, 4, 10), seq=31), superseded=jst(date(2026, 5, 2)), by_seq=30)
        put_current(c, juki(4, notified=date(2026, 4, 15), municipality=YOKKAICHI, reason="死亡", deleted=True))
        put_current(c, juki(5, notified=date(2026, 5, 31), reason="転居"))                 # 05 津
        put_current(c, juki(6, notified=date(2025, 12, 31)))                              # outside
        put_current(c, juki(7, notified=date(2026, 6, 1)))                                # outside
    with registers.fuhyo_uow() as uow:
        put_current(uow.conn, fuhyo(1, notified=date(2026, 5, 1)))
        put_current(uow.conn, fuhyo(2, notified=date(2026, 5, 20), reason="住所変更", municipality=YOKKAICHI))
    return registers


PERIOD = Period("2026-04", "2026-05")


def test_a9_updates_by_month_municipality_and_reason(updates):
    t = collect(updates, PERIOD)
    assert t["updates_juki"].rows == [
        ("2026-04", TSU, "出生", 1), ("2026-04", TSU, "国内転入", 2), ("2026-04", YOKKAICHI, "死亡", 1),
        ("2026-05", TSU, "転居", 2)]
    assert t["updates_fuhyo"].rows == [("2026-05", TSU, "記載", 1), ("2026-05", YOKKAICHI, "住所変更", 1)]
    assert t["updates_juki"].total() == 6 and t["updates_juki"].sum_by(2)["転居"] == 2
    assert collect(updates, Period("2025-12", "2026-06"))["updates_juki"].total() == 8


def test_a9_planned_sources_say_no_data_yet(updates, monkeypatch):
    from jukinet.ops import statistics
    from jukinet.ops.statistics import PlannedSource
    statistics.sources()
    monkeypatch.setitem(statistics._SOURCES, "future", PlannedSource("future", "将来の件数", ("month", "count")))
    t = collect(updates, PERIOD)
    assert not t["future"].available and t["future"].rows == [] and "まだデータがありません" in t["future"].note
    assert "まだデータがありません" in t["future"].to_csv()


def test_a9_disclosures_and_corrections_from_the_disclosure_tables(updates):
    from sqlalchemy import insert
    from jukinet.store.tables_disclosure import CORRECTION_REQUESTS, DISCLOSURE_REQUESTS

    def req(no, at, scope="identity", outcome="matched"):
        return dict(request_no=no, received_at=at, operator_id="OP1", scope=scope, match_result="{}",
                    outcome=outcome)

    with updates.juki_uow() as uow:
        uow.conn.execute(insert(DISCLOSURE_REQUESTS["juki"]), [
            req("D1", jst(date(2026, 4, 2))), req("D2", jst(date(2026, 4, 3)), "provisions"),
            req("D3", jst(date(2026, 5, 3)), outcome="partial"), req("D4", jst(date(2026, 7, 1)))])
        uow.conn.execute(insert(CORRECTION_REQUESTS["juki"]), [dict(
            correction_id="C1", request_no="D3", juminhyo_code="10000000001", kind="correct", items="address",
            status="investigating", received_at=jst(date(2026, 5, 4)), due_date=date(2026, 6, 4),
            updated_at=jst(date(2026, 5, 4)))])
    t = collect(updates, PERIOD)
    assert t["disclosures"].rows == [("2026-04", "juki", "identity", "matched", 1),
                                     ("2026-04", "juki", "provisions", "matched", 1),
                                     ("2026-05", "juki", "identity", "partial", 1)]
    assert t["corrections"].rows == [("2026-05", "juki", "correct", "investigating", 1)]
    views = {v.name: v for v in stats_report.views(t, PERIOD)}
    assert ("本人確認情報", "提供状況", "一致", 1) in views["disclosures"].rows
    assert views["corrections"].rows == [("本人確認情報", "訂正", "調査中", 1)]
    charts = stats_report.charts(t, PERIOD)
    assert charts["disclosures"][1].startswith("<svg") and "月別" in charts["corrections"][0]


def test_a9_provisions_by_requester_affair_month_from_the_provision_record(updates):
    from sqlalchemy import insert
    from jukinet.store.tables_provision import PROVISION_RECORDS

    def rec(at, kind="provision", outcome="provided", req="KENKEI", aff="KOAN-UNTEN"):
        return dict(at=at, channel="terminal", kind=kind, requester_code=req, affair_code=aff, key_kind="four",
                    keys_digest="{}", outcome=outcome, items="name", number_included=False)

    with updates.juki_uow() as uow:
        uow.conn.execute(insert(PROVISION_RECORDS["juki"]), [
            rec(jst(date(2026, 4, 3))), rec(jst(date(2026, 4, 4)), outcome="refused"),
            rec(jst(date(2026, 5, 6)), kind="transfer", req="SOMU", aff="SOMU-KENZEI"),
            rec(jst(date(2026, 6, 1)))])                                  # outside the period
    with updates.fuhyo_uow() as uow:
        uow.conn.execute(insert(PROVISION_RECORDS["fuhyo"]), [rec(jst(date(2026, 5, 7)))])
    t = collect(updates, PERIOD)["provisions"]
    assert t.available and t.total() == 4
    k, a = ("KENKEI", "KENKEI"), ("KOAN-UNTEN", "KOAN-UNTEN")   # not in the catalogue: the code stands
    assert t.rows == [("2026-04", "juki", *k, *a, "provision", "provided", 1),
                      ("2026-04", "juki", *k, *a, "provision", "refused", 1),
                      ("2026-05", "fuhyo", *k, *a, "provision", "provided", 1),
                      ("2026-05", "juki", "SOMU", "SOMU", "SOMU-KENZEI", "SOMU-KENZEI", "transfer", "provided", 1)]
    views = {v.name: v for v in stats_report.views(collect(updates, PERIOD), PERIOD)}
    assert ("KENKEI", "KOAN-UNTEN", "提供", "本人確認情報", 2, 1, 1) in views["provisions"].rows
    from jukinet.store.tables_provision import provision_requesters
    with updates.admin_tx() as conn:                               # names come from the catalogue
        conn.execute(insert(provision_requesters).values(code="SOMU", name="総務部", kind="department",
                                                         status="active", updated_at=jst(date(2026, 1, 1))))
    assert collect(updates, PERIOD)["provisions"].rows[-1][2:4] == ("SOMU", "総務部")
    title, svg = stats_report.charts(collect(updates, PERIOD), PERIOD)["provisions"]
    assert "月別" in title and svg.startswith("<svg")


def test_a9_consistency_checks_are_counted(updates):
    from jukinet.reconcile import run_check
    from jukinet.reconcile.snapshot import write_snapshot
    data = write_snapshot("juki", TSU, [], as_of="2026-05-10T09:00:00+09:00")
    run_check(updates, "juki", TSU, io.BytesIO(data), clock=lambda: datetime(2026, 5, 10, 1, tzinfo=timezone.utc))
    with pytest.raises(JukinetError):
        run_check(updates, "juki", TSU, io.BytesIO(data[:-5]), clock=lambda: datetime(2026, 5, 11, tzinfo=timezone.utc))
    rows = collect(updates, PERIOD, ["consistency"])["consistency"].rows
    # 6 current 津市 persons compared: 4 only here, 2 stored after as_of (pending)
    assert rows == [("2026-05", TSU, "juki", "completed", 1, 6, 4, 2), ("2026-05", TSU, "juki", "refused", 1, 0, 0, 0)]


def test_a9_q2_bad_period_is_a_clear_error():
    for a, b in (("2026-13", "2026-12"), ("2026-05", "2026-04"), ("26-01", "2026-01"), ("2000-01", "2030-01")):
        with pytest.raises(JukinetError) as ei:
            Period(a, b)
        assert ei.value.code == "STATS_PERIOD_INVALID"
    assert Period.fiscal_year(2026) == Period("2026-04", "2027-03")
    assert Period.last_months(3, date(2026, 2, 10)) == Period("2025-12", "2026-02")
    assert len(Period("2025-11", "2026-02").months()) == 4


def test_a9_csv_has_japanese_header_municipality_names_and_no_personal_data(updates, tmp_path):
    t = collect(updates, PERIOD)
    written = stats_report.write_files(t, PERIOD, csv_dir=tmp_path / "csv", svg_dir=tmp_path / "svg")
    p = tmp_path / "csv" / "updates_juki_2026-04_2026-05.csv"
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                     # BOM for Excel
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["年月", "年月 (和暦)", "市町村コード", "市町村", "異動事由", "件数"]
    assert ["2026-04", "令和8年4月", YOKKAICHI, "四日市市", "死亡", "1"] in rows
    assert {q.suffix for q in written} == {".csv", ".svg"}
    for q in written:
        text = q.read_text(encoding="utf-8-sig")
        assert "三重　太郎" not in text and "広明町" not in text and "ミエ" not in text


def test_a9_charts_are_accessible_deterministic_svg(updates):
    t = collect(updates, PERIOD)
    a = stats_report.charts(t, PERIOD)
    b = stats_report.charts(t, PERIOD)
    assert set(a) >= {"updates_by_month", "updates_by_reason_juki", "updates_by_reason_fuhyo",
                      "updates_by_municipality", "provisions", "disclosures", "corrections", "consistency"}
    for name, (title, svg) in a.items():
        assert svg.startswith("<svg") and 'role="img"' in svg and f"<title>{title}" in svg
        assert svg == b[name][1], name                         # same counts, same bytes
    assert charts.japanese_font() is not None, "install fonts-ipafont-gothic (or fonts-noto-cjk)"


def test_a9_stats_command_prints_tables_and_writes_files(updates, config, tmp_path):
    r = runner.invoke(app, ["stats", "--data-dir", str(config.data_dir), "--from", "2026-04", "--to", "2026-05",
                            "--csv", str(tmp_path / "c"), "--svg", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "異動事由別" in r.output and "転居" in r.output and "四日市市" in r.output
    assert len(list((tmp_path / "c").glob("*.csv"))) == 6 and len(list((tmp_path / "s").glob("*.svg"))) >= 8
    assert "提供・移転" in r.output
    r = runner.invoke(app, ["stats", "--data-dir", str(config.data_dir), "--from", "2026-05", "--to", "2026-04"])
    assert r.exit_code == 2 and "STATS_PERIOD_INVALID" in r.output


def test_a9_with_names_adds_the_municipality_column(updates):
    t = with_names(collect(updates, PERIOD)["updates_fuhyo"])
    assert t.columns == ("month", "month_wareki", "municipality_code", "municipality", "reason", "count")
    assert t.rows[0][1] == "令和8年5月" and t.rows[0][3] == "津市"


def test_d3_a9_chart_axes_and_period_in_wareki(updates, monkeypatch):
    t = collect(updates, PERIOD)
    axes = {}
    real = stats_report.ch.bar_chart
    monkeypatch.setattr(stats_report.ch, "bar_chart", lambda title, labels, *a, **k: (axes.setdefault(title, list(labels)),
                                                                                     real(title, labels, *a, **k))[1])
    title, _svg = stats_report.charts(t, PERIOD)["updates_by_month"]
    assert title.endswith("令和8年4月 〜 令和8年5月") and axes[title] == ["令和8年4月", "令和8年5月"]
    view = next(v for v in stats_report.views(t, PERIOD) if v.name == "updates_by_month")
    assert [r[0] for r in view.rows][:2] == ["令和8年4月", "令和8年5月"]
    assert stats_report.axis_months(["2019-04", "2019-05"]) == ["平成31年4月", "令和元年5月"]


def test_a9_q4_months_that_are_over_are_read_once_and_the_open_month_on_every_view(updates, monkeypatch):
    """ADR 0052: a month that is over gets no more updates (a version's 通知を受けた年月日 is the day it was
    stored), so its counts are read once; the open month is counted on every view; a retention run (it
    erases old versions) or a seed makes the kept months be read again. The figures stay exact."""
    from jukinet import retention
    from jukinet.ops import statistics
    from jukinet.ops.statistics import ClosedMonths, UpdatesSource, open_from

    closed = ClosedMonths(clock=lambda: datetime(2026, 5, 20, 3, 0, tzinfo=timezone.utc))   # May is open
    monkeypatch.setattr(statistics, "CLOSED", closed)
    want = [("2026-04", TSU, "出生", 1), ("2026-04", TSU, "国内転入", 2), ("2026-04", YOKKAICHI, "死亡", 1),
            ("2026-05", TSU, "転居", 2)]
    assert collect(updates, PERIOD)["updates_juki"].rows == want
    reads = closed.reads
    assert reads == 2                                           # April of juki and of fuhyo
    assert collect(updates, PERIOD)["updates_juki"].rows == want and closed.reads == reads
    with updates.juki_uow() as uow:                             # a notice stored today (May, still open)
        put_current(uow.conn, juki(8, notified=date(2026, 5, 20), reason="転居"))
    t = collect(updates, PERIOD)["updates_juki"]
    assert t.rows == want[:3] + [("2026-05", TSU, "転居", 3)] and closed.reads == reads
    # the same as one count over the whole period, read now
    with updates.engine("juki").connect() as conn:
        assert UpdatesSource("juki").count(conn, PERIOD) == t.rows
    # a wider period reads only the months not kept yet; a retention run makes them be read again
    assert collect(updates, Period("2025-12", "2026-05"))["updates_juki"].total() == 8 and closed.reads == reads + 2
    retention.run(updates)
    assert collect(updates, PERIOD)["updates_juki"].rows == t.rows and closed.reads == reads + 4
    # on the first day of a month the month before is still open (a notice stored before midnight)
    assert open_from(datetime(2026, 5, 31, 15, 30, tzinfo=timezone.utc)) == "2026-05"     # 6月1日 0:30 JST
    assert open_from(datetime(2026, 6, 1, 15, 0, tzinfo=timezone.utc)) == "2026-06"       # 6月2日 0:00 JST
