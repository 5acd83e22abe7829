"""A4 — the flag rules of the monthly access-log analysis, on crafted log entries (pure, no database).

Each rule fires on crafted activity, names exactly the entries behind it, and stays silent on a
clean working month."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from jukinet.audit import analysis as an

JST = an.JST
RULES = an.Rules(repeat_lookups=3, mass_lookups_per_day=5, mass_results_per_day=50, mass_batch_rows=100)


class Log:
    """Builds entries with increasing seq, at JST wall-clock times."""

    def __init__(self):
        self.seq = 0
        self.entries: list[an.Entry] = []

    def add(self, day: date, hhmm: str, action: str, op: str | None = "OP1", chain: str = "juki", **kw) -> an.Entry:
        self.seq += 1
        h, m = map(int, hhmm.split(":"))
        at = datetime(day.year, day.month, day.day, h, m, tzinfo=JST).astimezone(timezone.utc)
        e = an.Entry(chain, self.seq, at, op, "T1", action, **kw)
        self.entries.append(e)
        return e


MON = date(2026, 10, 5)     # Monday, a working day
SAT = date(2026, 10, 10)
HOLIDAY = date(2026, 10, 12)  # スポーツの日


def clean_month() -> Log:
    """A month of ordinary work: every lookup is followed by a provision the same day, in hours."""
    log = Log()
    d = date(2026, 10, 1)
    while d.month == 10:
        if an.closed_day(d, RULES) is None:
            for i, op in enumerate(("OP1", "OP2")):
                log.add(d, f"09:{10 + i}", "search", op, keys={"name": f"n{d.day}{op}"}, result_count=3)
                log.add(d, f"09:{20 + i}", "detail", op, keys={"juminhyo_code": f"p{d.day}{op}"}, result_count=1)
                log.add(d, f"09:{30 + i}", "provision", op, keys={"juminhyo_code": f"p{d.day}{op}"}, result_count=1)
            log.add(d, "08:45", "login", "OP1", chain="admin")
        d += timedelta(days=1)
    return log


def kinds(a: an.Analysis) -> list[str]:
    return [f.kind for f in a.flags]


def test_a4_clean_month_raises_no_flag():
    log = clean_month()
    a = an.analyse(log.entries, RULES)
    assert a.flags == []
    assert a.counts["OP1"].lookups > 0 and a.counts["OP1"].business > 0


def test_a4_flag_a_lookup_without_business_same_operator_same_day():
    log = clean_month()
    lone = [log.add(MON, "10:00", "search", "OP3", keys={"name": "x"}, result_count=2),
            log.add(MON, "10:05", "detail", "OP3", keys={"juminhyo_code": "q"}, result_count=1)]
    log.add(MON, "10:10", "provision", "OP4")                    # another operator's provision does not count
    log.add(date(2026, 10, 6), "10:10", "provision", "OP3")      # nor one on the next day
    a = an.analyse(log.entries, RULES)
    assert kinds(a) == ["a"]
    f = a.flags[0]
    assert (f.operator_id, f.day) == ("OP3", "2026-10-05") and [e.seq for e in f.entries] == [e.seq for e in lone]


def test_a4_flag_b_same_person_repeated_above_threshold():
    log = clean_month()
    same = [log.add(date(2026, 10, d), "11:00", "detail", "OP1", keys={"juminhyo_code": "victim"}, result_count=1)
            for d in (6, 7, 8, 9)]
    log.add(date(2026, 10, 6), "11:05", "detail", "OP2", keys={"juminhyo_code": "victim"})   # other operator: 1x
    a = an.analyse(log.entries, RULES)
    assert kinds(a) == ["b"]
    assert a.flags[0].operator_id == "OP1" and [e.seq for e in a.flags[0].entries] == [e.seq for e in same]
    # exactly at the threshold: silent
    a = an.analyse([e for e in log.entries if e.seq != same[-1].seq], RULES)
    assert "b" not in kinds(a)


def test_a4_flag_c_outside_hours_weekend_holiday_and_closed_days():
    log = clean_month()
    night = log.add(MON, "22:15", "detail", "OP1", keys={"juminhyo_code": "p5OP1"})
    early = log.add(MON, "07:59", "search", "OP1", keys={"name": "n"})
    sat = log.add(SAT, "10:00", "detail", "OP2", keys={"juminhyo_code": "p5OP2"})
    hol = log.add(HOLIDAY, "10:00", "provision", "OP2")
    log.add(SAT, "10:00", "login", "OP2", chain="admin")   # not a personal-data action
    a = an.analyse(log.entries, RULES)
    cs = [f for f in a.flags if f.kind == "c"]
    assert {(f.operator_id, f.day): [e.seq for e in f.entries] for f in cs} == {
        ("OP1", "2026-10-05"): [early.seq, night.seq], ("OP2", "2026-10-10"): [sat.seq],
        ("OP2", "2026-10-12"): [hol.seq]}
    assert "スポーツの日" in next(f.reason for f in cs if f.day == "2026-10-12")
    assert an.outside_hours(datetime(2026, 12, 29, 1, 0, tzinfo=timezone.utc), RULES) == "年末年始"


def test_a4_flag_d_related_person_by_digest():
    log = clean_month()
    by_code = log.add(MON, "10:00", "detail", "OP1", keys={"juminhyo_code": "kin"})
    by_name = log.add(MON, "10:01", "search", "OP1", keys={"name": "surname-digest"})
    log.add(MON, "10:02", "detail", "OP2", keys={"juminhyo_code": "kin"})     # not OP2's relative
    related = {"OP1": an.Related(frozenset({"kin"}), frozenset({"surname-digest"}), frozenset())}
    a = an.analyse(log.entries, RULES, related)
    ds = [f for f in a.flags if f.kind == "d"]
    assert len(ds) == 1 and ds[0].operator_id == "OP1"
    assert [e.seq for e in ds[0].entries] == [by_code.seq, by_name.seq]


def test_a4_flag_e_mass_lookups_results_and_batch():
    log = clean_month()
    day = date(2026, 10, 14)
    many = [log.add(day, f"10:{i:02d}", "search", "OP1", keys={"name": f"m{i}"}, result_count=1) for i in range(6)]
    big = log.add(date(2026, 10, 15), "10:00", "search", "OP2", keys={"name": "wide"}, result_count=60)
    batch = [log.add(date(2026, 10, 16), f"10:0{i}", "provision_batch", "OP1", result_count=50) for i in range(2)]
    a = an.analyse(log.entries, RULES)
    es = {(f.operator_id, f.day): f for f in a.flags if f.kind == "e"}
    assert set(es) == {("OP1", "2026-10-14"), ("OP2", "2026-10-15"), ("OP1", "2026-10-16")}
    day_entries = [e.seq for e in es[("OP1", "2026-10-14")].entries]
    assert set(e.seq for e in many) <= set(day_entries)
    assert big.seq in [e.seq for e in es[("OP2", "2026-10-15")].entries]
    assert [e.seq for e in es[("OP1", "2026-10-16")].entries] == [e.seq for e in batch]


def test_a4_flag_f_refusals_but_not_screen_locks():
    log = clean_month()
    r1 = log.add(MON, "10:00", "search", "OP1", outcome="refused", detail={"code": "FORBIDDEN"})
    r2 = log.add(MON, "10:01", "login", None, chain="admin", outcome="refused", detail={"code": "LOGIN_FAILED"})
    log.add(MON, "10:02", "request", "OP1", chain="admin", outcome="refused", detail={"code": "SESSION_IDLE"})
    a = an.analyse(log.entries, RULES)
    fs = {f.operator_id: [e.seq for e in f.entries] for f in a.flags if f.kind == "f"}
    assert fs == {None: [r2.seq], "OP1": [r1.seq]}
    assert kinds(a).count("f") == 2 and set(kinds(a)) == {"f"}


def test_a4_flags_are_numbered_and_counted_per_kind():
    log = clean_month()
    log.add(MON, "23:00", "search", "OP9", keys={"name": "x"})
    a = an.analyse(log.entries, RULES)
    assert [f.no for f in a.flags] == list(range(1, len(a.flags) + 1))
    assert a.flag_counts() == {"a": 1, "b": 0, "c": 1, "d": 0, "e": 0, "f": 0}
