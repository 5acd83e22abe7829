"""A4 / issue 16 (ADR 0059) — the monthly analysis counted by the database is the analysis of the
whole month: on a month with every kind of flag, crafted through the real operation log in all three
chains (SQLite and PostgreSQL), the counted path (:meth:`AuditService.analyse`) gives the same
counts, the same flags naming the same entries, and the same PDF and CSV bytes as the rules run on
every entry read as an object (what the service did before)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

from jukinet.audit import analysis as an
from jukinet.audit import monthlog
from jukinet.audit.service import JST, AuditService, Month
from jukinet.security.oplog import Actor
from jukinet.store.tables_security import OPLOG

from .audit_site import ADMIN, site  # noqa: F401  (fixture)

MONTH = Month(2025, 11)       # 11/3 文化の日, 11/23 勤労感謝の日 (Sun) → 11/24 振替休日; 11/14 closed below


def at(day: int, hh: int = 10, mm: int = 0, ss: int = 0, us: int = 0, month: int = 11, year: int = 2025) -> datetime:
    return datetime(year, month, day, hh, mm, ss, us, tzinfo=JST)


class Log:
    """Appends entries through the real operation log, each stamped with its own time."""

    def __init__(self, site):
        self.site = site
        self.seqs: dict[str, list[int]] = {"juki": [], "fuhyo": [], "admin": []}

    def add(self, chain: str, op: str | None, action: str, when: datetime, *, outcome: str = "granted",
            keys: dict | None = None, result_count: int | None = None, code: str | None = None) -> tuple[str, int]:
        with self.site.registers.uow(chain) as uow:
            seq = self.site.sec.oplog.append(uow.conn, chain, actor=Actor(op, self.site.terminal_id), action=action,
                                             outcome=outcome, purpose_code="inquiry", keys=keys,
                                             result_count=result_count, detail={"code": code} if code else None,
                                             now=when)
        self.seqs[chain].append(seq)
        return chain, seq


def craft(site) -> dict:
    """A month with each kind of flag (and entries that must not raise one), in juki, fuhyo and admin."""
    sec = site.sec
    sec.register_operator(ADMIN, display_name="山田　一郎", roles=["operator"], registers=["juki", "fuhyo"],
                          affairs=["search"], operator_id="YAMADA")
    sec.register_operator(ADMIN, display_name="佐藤　次郎", roles=["operator"], registers=["juki", "fuhyo"],
                          affairs=["search"], operator_id="SATO")
    AuditService(site.app.state.config, site.registers).set_watch(ADMIN, "SATO", "三重県四日市市諏訪町")
    m, both, juki_op = Log(site), "OPERATOR-BOTH", "OPERATOR-JUKI"
    code = {"juminhyo_code": "10000000006"}
    out: dict = {}
    # ordinary work: lookups followed by a provision the same day, in both register chains
    for day in (4, 5, 6, 7, 10, 11, 12):
        m.add("juki", both, "search", at(day, 9), keys={"name": "佐藤"}, result_count=2)
        m.add("fuhyo", both, "detail", at(day, 9, 5), keys=code, result_count=1)
        m.add("juki", both, "provision", at(day, 9, 10), keys=code, result_count=1)
        m.add("admin", both, "login", at(day, 8, 40))
    # (a) lookups without business that day — but not when the business is in another chain
    out["a"] = [m.add("juki", juki_op, "search", at(11, 10), keys={"name": "x"}, result_count=1),
                m.add("fuhyo", juki_op, "detail", at(11, 10, 5), keys=code, result_count=1)]
    m.add("juki", juki_op, "provision", at(12, 10))                       # the next day: does not count
    m.add("juki", "SATO", "detail", at(13, 10), keys=code, result_count=1)
    m.add("fuhyo", "SATO", "provision", at(13, 11))                       # same day, other chain: followed
    # (a) by day: 23:59:59.999999 JST and 00:00 JST the next day are two days
    out["a_day_end"] = m.add("juki", juki_op, "search", at(17, 23, 59, 59, 999999), keys={"name": "y"})
    m.add("juki", juki_op, "provision", at(18, 0, 0))
    # (b) one person looked up 4 times by YAMADA, 2 in each register chain; 3 times by SATO (silent);
    #     4 times by OPERATOR-BOTH with one refused (3 granted: silent)
    takahashi = {"juminhyo_code": "10000000004"}
    out["b"] = [m.add(chain, "YAMADA", "detail", at(day, 11), keys=takahashi, result_count=1)
                for chain, day in (("juki", 4), ("fuhyo", 5), ("juki", 6), ("fuhyo", 7))]
    for day in (4, 5, 6):
        m.add("juki", "SATO", "detail", at(day, 11, 30), keys=takahashi, result_count=1)
    for day, outcome in ((4, "granted"), (5, "granted"), (6, "refused"), (7, "granted")):
        m.add("juki", both, "detail", at(day, 12), keys=takahashi, outcome=outcome, code="FORBIDDEN"
              if outcome == "refused" else None)
    # (c) outside office hours: night, before 08:30, at 17:30 (not at 08:30 or 17:29:59.999999),
    #     Saturday, holiday, 振替休日, a closed day of the config; not a login, not a refusal
    out["c"] = [m.add("juki", "YAMADA", "detail", at(10, 22, 15), keys=code),
                m.add("juki", both, "search", at(10, 8, 29, 59), keys={"name": "z"}),
                m.add("fuhyo", both, "detail", at(10, 17, 30), keys=code),
                m.add("juki", both, "detail", at(15, 10), keys=code),
                m.add("juki", both, "provision", at(3, 10), keys=code),
                m.add("fuhyo", juki_op, "detail", at(24, 10), keys=code),
                m.add("juki", juki_op, "detail", at(14, 10), keys=code)]
    m.add("juki", both, "search", at(10, 8, 30), keys={"name": "z"})
    m.add("juki", both, "detail", at(10, 17, 29, 59, 999999), keys=code)
    m.add("admin", both, "login", at(15, 23))
    m.add("juki", both, "detail", at(15, 23, 30), keys=code, outcome="refused", code="FORBIDDEN")
    # (d) related persons: YAMADA's 氏 (山田 花子; a search by the 氏), SATO's 氏 (佐藤 ゆうこ) and area (山多)
    out["d"] = [m.add("juki", "YAMADA", "detail", at(19, 10), keys={"juminhyo_code": "10000000002"}),
                m.add("juki", "YAMADA", "search", at(19, 10, 1), keys={"name": "山田"}),
                m.add("fuhyo", "SATO", "detail", at(19, 10, 2), keys={"juminhyo_code": "10000000003"}),
                m.add("juki", "SATO", "search", at(19, 10, 3), keys={"address": "三重県四日市市諏訪町"}),
                m.add("juki", "SATO", "provision", at(19, 10, 4), keys={"juminhyo_code": "10000000006"})]
    m.add("juki", juki_op, "detail", at(19, 10, 5), keys={"juminhyo_code": "10000000002"})    # not related
    m.add("juki", "YAMADA", "detail", at(19, 10, 6), keys={"juminhyo_code": "10000000002"}, outcome="refused",
          code="FORBIDDEN")
    # (e) mass lookups (6 > 5, over two chains), mass results (60 > 50), batch outputs (2 × 50 ≥ 100); a
    #     batch of 40 alone is silent
    out["e"] = ([m.add("juki" if i % 2 else "fuhyo", both, "search", at(20, 10, i), keys={"name": f"m{i}"},
                       result_count=1) for i in range(6)]
                + [m.add("juki", juki_op, "search", at(21, 10), keys={"name": "wide"}, result_count=60)]
                + [m.add("juki", juki_op, "provision_batch", at(25, 10, i), result_count=50) for i in range(2)])
    m.add("juki", "SATO", "provision_batch", at(26, 10), result_count=40)
    # (f) refusals (one without an operator); not the screen-lock codes, not input errors (either form)
    out["f"] = [m.add("juki", juki_op, "detail", at(27, 10), keys=code, outcome="refused", code="FORBIDDEN"),
                m.add("admin", None, "login", at(27, 10, 1), outcome="refused", code="LOGIN_FAILED")]
    m.add("admin", both, "request", at(27, 10, 2), outcome="refused", code="SESSION_IDLE")
    m.add("juki", both, "search", at(27, 10, 3), outcome="invalid", code="DATE_FORMAT")
    m.add("juki", both, "search", at(27, 10, 4), outcome="refused", code="DATE_FORMAT")
    # the month's edges: 00:00 JST on the 1st is in, 23:59:59 JST on the day before and 00:00 of the next month are not
    out["first"] = m.add("juki", both, "search", at(1, 0, 0), keys={"name": "edge"})
    m.add("juki", both, "search", at(31, 23, 59, 59, month=10), keys={"name": "before"})
    m.add("juki", both, "search", at(1, 0, 0, month=12), keys={"name": "after"})
    return out


def _four_name_search(site, op: str, surname: str, when: datetime) -> tuple[str, int]:
    """A 4情報 search whose stored key is the 氏's digest (the rule compares ``four_name`` with the
    same digests as ``name``), written as a row after the chain's last entry."""
    log, _ = OPLOG["juki"]
    d = site.sec.oplog.digest
    with site.registers.uow("juki") as uow:
        seq = uow.conn.execute(select(log.c.seq).order_by(log.c.seq.desc()).limit(1)).scalar_one() + 1
        uow.conn.execute(insert(log).values(
            seq=seq, at=when.astimezone(timezone.utc), operator_id=op, terminal_id=site.terminal_id, action="search",
            outcome="granted", purpose_code="inquiry", case_ref=None, keys=json.dumps({"four_name": d("name", surname)}),
            result_count=1, detail="{}", prev_hash="0" * 64, entry_hash="0" * 64))
    return "juki", seq


def _svc(site) -> AuditService:
    svc = AuditService(site.app.state.config, site.registers)
    svc.cfg = dataclasses.replace(svc.cfg, repeat_lookups=3, mass_lookups_per_day=5, mass_results_per_day=50,
                                  mass_batch_rows=100, closed_days=[*svc.cfg.closed_days, "11-14"])
    return svc


def _whole_month(svc: AuditService, month: Month) -> tuple[an.Analysis, dict]:
    """The analysis as it was made before ADR 0059: every entry of the month read as an object."""
    entries = svc.entries(month)
    names = svc.roster_names()
    related = svc.related(names, {e.operator_id for e in entries})
    return an.analyse(entries, svc.rules, related), names


def _flags(a: an.Analysis) -> list:
    return [(f.no, f.kind, f.operator_id, f.day, f.reason, [(e.chain, e.seq) for e in f.entries]) for f in a.flags]


def test_a4_counted_analysis_is_the_whole_months_analysis_with_every_kind_of_flag(site):
    out = craft(site)
    out["d"].append(_four_name_search(site, "YAMADA", "山田", at(19, 10, 7)))
    svc = _svc(site)
    old, _ = _whole_month(svc, MONTH)
    new, _ = svc.analyse(MONTH)
    assert _flags(new) == _flags(old)
    assert new.counts == old.counts and new.entries == old.entries
    assert new.flag_counts() == old.flag_counts()
    # the month really has every kind, each naming the crafted entries
    refs = {k: {(e.chain, e.seq) for f in new.flags if f.kind == k for e in f.entries} for k in an.KINDS}
    for kind in "abcdef":
        assert set(out[kind]) <= refs[kind], kind
    assert out["a_day_end"] in refs["a"] and out["first"] in {(e.chain, e.seq) for e in svc.entries(MONTH)}
    assert {f.operator_id for f in new.flags if f.kind == "b"} == {"YAMADA", "OPERATOR-BOTH"}
    assert {f.operator_id for f in new.flags if f.kind == "d"} == {"YAMADA", "SATO"}
    assert {f.operator_id for f in new.flags if f.kind == "f"} == {"OPERATOR-JUKI", "OPERATOR-BOTH", "YAMADA", None}
    # input errors (either form) are counted apart; a screen lock is a refusal that raises no flag
    assert new.counts["OPERATOR-BOTH"].invalid == 2 and new.counts["OPERATOR-BOTH"].refused == 3
    assert new.entries == len(svc.entries(MONTH))


def test_a4_counted_report_pdf_and_csv_are_the_bytes_of_the_whole_months_report(site):
    craft(site)
    svc = _svc(site)
    now = datetime(2025, 12, 2, tzinfo=timezone.utc)
    _a, _n, pdf, csv = svc.render(MONTH, now)
    svc.analyse = lambda month: _whole_month(svc, month)
    _a, _n, old_pdf, old_csv = svc.render(MONTH, now)
    assert csv == old_csv and pdf == old_pdf
    assert "フラグ".encode() in csv


@pytest.mark.parametrize("repeat_lookups", [0, 1, 3])
def test_a4_repeated_pairs_across_chains_whatever_the_limit(site, repeat_lookups):
    """(b) is counted per chain and summed: the big chain is asked only for pairs over the limit less
    the other chains' largest count — the same pairs as counting all together, at any limit."""
    craft(site)
    svc = _svc(site)
    svc.cfg = dataclasses.replace(svc.cfg, repeat_lookups=repeat_lookups)
    old, _ = _whole_month(svc, MONTH)
    new, _ = svc.analyse(MONTH)
    assert [f for f in _flags(new) if f[1] == "b"] == [f for f in _flags(old) if f[1] == "b"]
    assert _flags(new) == _flags(old)


@pytest.mark.parametrize("split", [(3, 1), (1, 3), (2, 2)])
def test_a4_repeated_pair_mostly_in_one_chain_lists_the_other_chains_lookups_too(site, split):
    """A pair over the limit (3) with most of its lookups in one chain — 3 + 1 — is flagged with all four,
    the one in the other chain included: each chain names only the pairs it saw ⌈(3 + 1) / 2⌉ = 2 times
    or more, and the candidates are then read from every chain."""
    craft(site)
    m = Log(site)
    person = {"juminhyo_code": "10000000099"}
    mine = [m.add("juki", "SATO", "detail", at(25, 10, i), keys=person, result_count=1) for i in range(split[0])]
    mine += [m.add("fuhyo", "SATO", "detail", at(25, 11, i), keys=person, result_count=1) for i in range(split[1])]
    svc = _svc(site)
    svc.cfg = dataclasses.replace(svc.cfg, repeat_lookups=3)
    old, _ = _whole_month(svc, MONTH)
    new, _ = svc.analyse(MONTH)
    assert _flags(new) == _flags(old)
    flagged = {(e.chain, e.seq) for f in new.flags if f.kind == "b" and f.operator_id == "SATO" for e in f.entries}
    assert set(mine) <= flagged


def test_a4_counted_analysis_reads_as_objects_only_the_entries_the_flags_list(site):
    craft(site)
    svc = _svc(site)
    log = svc.month_log(MONTH)
    groups = log.groups()
    names = svc.roster_names()
    found = log.found(groups, svc.rules, svc.related(names, {g.operator_id for g in groups}))
    read = {(e.chain, e.seq) for e in monthlog.entries_of(found)}
    a = an.analyse_grouped(groups, found, svc.rules, svc.related(names, {g.operator_id for g in groups}))
    listed = {(e.chain, e.seq) for f in a.flags for e in f.entries}
    refused = {(e.chain, e.seq) for e in found.refused}
    # beyond the refused entries (counted one by one), nothing is read that no flag lists
    assert read - refused == listed - refused
    assert len(read) < sum(g.n for g in groups)
