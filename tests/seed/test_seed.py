"""The synthetic population (``jukinet seed``): codes, determinism, 外字, D2 rules, proportions, history.

One installation is seeded once per module (2,000 residents) and read by most tests.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import date, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from jukinet import codes
from jukinet.config import Config
from jukinet.domain import reasons
from jukinet.domain.records import derive_fuhyo, derive_juki
from jukinet.errors import JukinetError
from jukinet.geo import mie
from jukinet.seed import Params, SeedReport, populate
from jukinet.seed.generator import DEFAULT_TODAY, FUHYO_START, JUKINET_START, MYNUMBER_START
from jukinet.seed.names import GAIJI_SURNAMES
from jukinet.store import provision
from jukinet.store.registers import Registers
from jukinet.store.repository import row_to_fuhyo, row_to_juki
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, fuhyo_seed_progress, juki_counters,
                                  juki_current, juki_history, juki_seed_progress)

N = 2000
JST = timezone(timedelta(hours=9))
MIE_CODES = {m.code for m in mie.MUNICIPALITIES}


def _installation(path: Path) -> Registers:
    db = provision.database_config(path, None)
    provision.migrate_all(db)
    return Registers(Config(data_dir=path, database=db))


def _rows(engine, table, order=None, cipher=None):
    """Raw rows; D1 rows with their sealed 個人番号 opened when given the installation's cipher."""
    with engine.connect() as c:
        q = select(table)
        if order is not None:
            q = q.order_by(*order)
        return [cipher.open_row(r) if cipher else dict(r._mapping) for r in c.execute(q)]


class Seeded:
    def __init__(self, registers: Registers, report: SeedReport, calls: list):
        self.registers = registers
        self.report = report
        self.progress_calls = calls
        je, fe = registers.juki_engine, registers.fuhyo_engine
        self.juki = _rows(je, juki_current, cipher=registers.kojin_bango_cipher)
        self.juki_hist = _rows(je, juki_history, [juki_history.c.update_seq], cipher=registers.kojin_bango_cipher)
        self.fuhyo = _rows(fe, fuhyo_current)
        self.fuhyo_hist = _rows(fe, fuhyo_history, [fuhyo_history.c.update_seq])
        with je.connect() as c:
            self.juki_counter = c.execute(select(juki_counters.c.value)).scalar_one()
        with fe.connect() as c:
            self.fuhyo_counter = c.execute(select(fuhyo_counters.c.value)).scalar_one()

    @property
    def residents(self):
        return [r for r in self.juki if not r["deleted"]]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Seeded:
    registers = _installation(tmp_path_factory.mktemp("seed") / "data")
    calls = []
    report = populate(registers, N, seed=7, progress=lambda done, total: calls.append((done, total)),
                      batch_size=700)
    yield Seeded(registers, report, calls)
    registers.dispose()


def _fingerprint(registers: Registers) -> str:
    h = hashlib.sha256()
    for engine, tables, cols in ((registers.juki_engine, (juki_current, juki_history),
                                  ("juminhyo_code", "name", "address", "kojin_bango", "update_seq")),
                                 (registers.fuhyo_engine, (fuhyo_current, fuhyo_history),
                                  ("juminhyo_code", "name", "address", "last_address", "update_seq"))):
        for t in tables:
            cipher = registers.kojin_bango_cipher if "kojin_bango" in cols else None
            for r in _rows(engine, t, [t.c.update_seq], cipher):
                h.update(repr(tuple(r[k] for k in cols)).encode())
    return h.hexdigest()


# --- D3: codes --------------------------------------------------------------------------------


def test_d1_seed_codes_valid(seeded):
    for r in seeded.juki + seeded.juki_hist + seeded.fuhyo + seeded.fuhyo_hist:
        assert codes.validate_juminhyo_code(r["juminhyo_code"]) == r["juminhyo_code"]
    for r in seeded.juki + seeded.juki_hist:
        if r["kojin_bango"] is not None:
            assert codes.validate_kojin_bango(r["kojin_bango"]) == r["kojin_bango"]
        assert codes.validate_lg_code(r["municipality_code"])
    for r in seeded.fuhyo + seeded.fuhyo_hist:
        assert codes.validate_lg_code(r["fuhyo_municipality_code"])
        if r["address_municipality_code"] is not None:
            assert codes.validate_lg_code(r["address_municipality_code"])


def test_d1_seed_codes_unique(seeded):
    # every resident has a 個人番号; nobody shares one, not even with an earlier (changed) number
    assert all(r["kojin_bango"] for r in seeded.residents)
    owner = {}
    for r in seeded.juki + seeded.juki_hist:
        if r["kojin_bango"] is not None:
            assert owner.setdefault(r["kojin_bango"], r["juminhyo_code"]) == r["juminhyo_code"]
    # removed before 個人番号 existed: none on any version
    for r in seeded.juki:
        if r["deleted"] and r["change_date"] < MYNUMBER_START:
            assert r["kojin_bango"] is None
    assert len({r["juminhyo_code"] for r in seeded.juki}) == len(seeded.juki)
    # 附票-only persons (other prefectures) have codes D1 does not know
    d1 = {r["juminhyo_code"] for r in seeded.juki}
    fresh = [r for r in seeded.fuhyo if r["juminhyo_code"] not in d1]
    assert len(fresh) == round(N * Params().other_prefecture_ratio)


def test_d1_seed_deterministic(seeded, tmp_path):
    again = _installation(tmp_path / "again")
    other = _installation(tmp_path / "other")
    try:
        populate(again, N, seed=7, batch_size=1000)   # batch size does not change the data
        populate(other, N, seed=8)
        assert _fingerprint(again) == _fingerprint(seeded.registers)
        assert _fingerprint(other) != _fingerprint(seeded.registers)
    finally:
        again.dispose()
        other.dispose()


# --- D1 content --------------------------------------------------------------------------------


def test_d1_seed_counts_match_report(seeded):
    rep = seeded.report
    assert rep.residents == N == len(seeded.residents)
    assert rep.removed == round(N * Params().removed_ratio) == len(seeded.juki) - N
    assert rep.history == len(seeded.juki_hist)
    assert rep.fuhyo_current + rep.fuhyo_removed == len(seeded.fuhyo)
    assert rep.fuhyo_removed == sum(r["status"] == "消除" for r in seeded.fuhyo)
    assert rep.fuhyo_history == len(seeded.fuhyo_hist)
    assert rep.seconds > 0
    assert rep.juki_rows == len(seeded.juki) + len(seeded.juki_hist)


def test_d1_seed_municipality_codes_all_mie(seeded):
    for r in seeded.juki + seeded.juki_hist:
        assert r["municipality_code"] in MIE_CODES
        m = mie.BY_CODE[r["municipality_code"]]
        assert r["address"].startswith(m.address_prefix)
        town = {t.oaza_code: t for t in mie.towns(m.code)}[r["oaza_code"]]
        assert r["address"].startswith(m.address_prefix + town.name)
    assert len({r["municipality_code"] for r in seeded.residents}) >= 25  # small 町 may be missed at N=2000
    for r in seeded.fuhyo + seeded.fuhyo_hist:
        assert r["fuhyo_municipality_code"] in MIE_CODES


def test_d1_seed_names_and_kana_format(seeded):
    for r in seeded.juki:
        sei, mei = r["name"].split("\u3000")
        kana_sei, kana_mei = r["name_kana"].split("\u3000")
        assert sei and mei and kana_sei and kana_mei
        assert all("\u30a1" <= ch <= "\u30fc" for ch in kana_sei + kana_mei), r["name_kana"]


def test_d1_seed_age_sex_proportions(seeded):
    res = seeded.residents
    old = sum(r["birth_date"] <= DEFAULT_TODAY.replace(year=DEFAULT_TODAY.year - 65) for r in res) / len(res)
    female = sum(r["sex"] == "2" for r in res) / len(res)
    assert 0.25 <= old <= 0.36
    assert 0.47 <= female <= 0.56
    assert all(r["birth_date"] <= DEFAULT_TODAY for r in res)
    assert min(r["birth_date"] for r in res) >= date(1920, 1, 1)


def test_d1_seed_removed_and_history_proportions(seeded):
    removed = [r for r in seeded.juki if r["deleted"]]
    assert {r["reason"] for r in removed} <= {"死亡", "国内転出", "国外転出"}
    assert all(r["retention_flag"] for r in removed)
    assert not any(r["retention_flag"] for r in seeded.residents)
    assert len(removed) / N == pytest.approx(0.25, abs=0.001)
    mix = Counter(r["reason"] for r in removed)
    assert 0.35 < mix["死亡"] / len(removed) < 0.55 and mix["国外転出"] > 0
    # history: every removed person (the removed version), plus ~15% of persons with 1-3 changes
    with_history = {r["juminhyo_code"] for r in seeded.juki_hist}
    changed = {r["juminhyo_code"] for r in seeded.residents} & with_history
    assert 0.10 <= len(changed) / N <= 0.25
    assert {r["juminhyo_code"] for r in removed} <= with_history
    per_person = Counter(r["juminhyo_code"] for r in seeded.juki_hist)
    assert max(per_person.values()) <= 8
    fs = sum(r["former_surname"] is not None for r in seeded.residents) / N
    assert 0.005 <= fs <= 0.03
    assert all(r["former_surname_kana"] for r in seeded.residents if r["former_surname"])


def test_d1_seed_history_seq_below_current(seeded):
    current = {r["juminhyo_code"]: r for r in seeded.juki}
    versions = defaultdict(list)
    for h in seeded.juki_hist:
        versions[h["juminhyo_code"]].append(h)
    for code, hs in versions.items():
        cur = current[code]
        chain = sorted(hs, key=lambda h: h["update_seq"]) + [cur]
        for old, new in zip(chain, chain[1:]):
            assert old["update_seq"] < new["update_seq"]
            assert old["superseded_by_seq"] == new["update_seq"]
            assert old["superseded_by_reason"] == new["reason"]
            assert old["superseded_at"] == new["timestamp"]
            assert old["timestamp"] < new["timestamp"]
            assert old["change_date"] <= new["change_date"]
    # consecutive numbers across the register; the counter continues after the last
    seqs = sorted([r["update_seq"] for r in seeded.juki] + [h["update_seq"] for h in seeded.juki_hist])
    assert seqs == list(range(1, len(seqs) + 1))
    assert seeded.juki_counter == seqs[-1]
    fseqs = sorted([r["update_seq"] for r in seeded.fuhyo] + [h["update_seq"] for h in seeded.fuhyo_hist])
    assert fseqs == list(range(1, len(fseqs) + 1))
    assert seeded.fuhyo_counter == fseqs[-1]


def test_d1_seed_dates_consistent(seeded):
    for r in seeded.juki + seeded.juki_hist + seeded.fuhyo + seeded.fuhyo_hist:
        assert r["birth_date"] <= r["change_date"] <= DEFAULT_TODAY
        assert r["timestamp"] is not None and r["notified_date"] is not None
        ts = r["timestamp"].replace(tzinfo=timezone.utc)  # SQLite hands UTC back naive
        assert ts.astimezone(JST).date() == r["notified_date"]
        assert r["notified_date"] <= DEFAULT_TODAY
    for r in seeded.juki + seeded.juki_hist:
        assert r["notified_date"] >= JUKINET_START
        if r["reason"] == "出生":
            assert r["change_date"] == r["birth_date"]
    for r in seeded.fuhyo + seeded.fuhyo_hist:
        assert r["notified_date"] >= FUHYO_START


def test_d1_d2_seed_derived_items_are_derive_results(seeded):
    for r in seeded.juki + seeded.juki_hist:
        rec = row_to_juki(r)
        assert derive_juki(rec) == rec
    for r in seeded.fuhyo + seeded.fuhyo_hist:
        rec = row_to_fuhyo(r)
        assert derive_fuhyo(rec) == rec


def _juki_chains(seeded):
    by_code = defaultdict(list)
    for h in seeded.juki_hist:
        by_code[h["juminhyo_code"]].append(h)
    for r in seeded.juki:
        yield sorted(by_code[r["juminhyo_code"]], key=lambda h: h["update_seq"]) + [r]


def test_d1_seed_history_passes_the_reason_table(seeded):
    """Replaying each person's versions through check_juki (U3) accepts every change."""
    for chain in _juki_chains(seeded):
        on_file = None
        for i, row in enumerate(chain):
            new = row_to_juki(row)
            reason = reasons.JUKI_REASONS[new.reason]
            current = on_file if on_file is not None and not on_file.deleted else None
            sender = new.municipality_code if reason.category == "記載" else current.municipality_code
            stored = reasons.check_juki(new.reason, sender=sender, current=current, any_record=i > 0,
                                        proposed=new.replace(deleted=False, retention_flag=False),
                                        today=DEFAULT_TODAY)
            assert (stored.deleted, stored.retention_flag) == (new.deleted, new.retention_flag)
            on_file = new


def test_d2_seed_history_passes_the_reason_table(seeded):
    by_code = defaultdict(list)
    for h in seeded.fuhyo_hist:
        by_code[h["juminhyo_code"]].append(h)
    for r in seeded.fuhyo:
        chain = [row_to_fuhyo(x) for x in sorted(by_code[r["juminhyo_code"]], key=lambda h: h["update_seq"])]
        chain.append(row_to_fuhyo(r))
        for prev, new in zip(chain, chain[1:]):   # the first version was on file when the server began
            stored = reasons.check_fuhyo(new.reason, sender=new.fuhyo_municipality_code, current=prev,
                                         any_record=True, proposed=new, today=DEFAULT_TODAY)
            assert stored.notification_kind == new.notification_kind


# --- D4: 外字 -----------------------------------------------------------------------------------


def test_d4_seed_has_gaiji_about_one_percent(seeded):
    persons = seeded.juki
    with_gaiji = [r for r in persons if r["name_gaiji_count"] > 0]
    assert 0.003 <= len(with_gaiji) / len(persons) <= 0.025
    gaiji_surnames = {s for s, _ in GAIJI_SURNAMES}
    for r in with_gaiji:
        assert r["gaiji_flag"]
        assert r["name"].split("\u3000")[0] in gaiji_surnames   # kept exactly, IVS included
    assert all(r["gaiji_flag"] == bool(r["name_gaiji_count"] or r["address_gaiji_count"]
                                       or r["former_surname_gaiji_count"]) for r in persons)


# --- D2 ------------------------------------------------------------------------------------------


def test_d2_seed_fuhyo_has_no_kojin_bango_and_abroad_persons(seeded):
    assert "kojin_bango" not in fuhyo_current.c and "kojin_bango" not in fuhyo_history.c
    numbers = {r["kojin_bango"] for r in seeded.juki + seeded.juki_hist if r["kojin_bango"]}
    for r in seeded.fuhyo + seeded.fuhyo_hist:
        assert not numbers & {v for v in r.values() if isinstance(v, str)}
    abroad = [r for r in seeded.fuhyo if r["status"] == "現存" and r["address"] is None]
    assert abroad and seeded.report.fuhyo_abroad == len(abroad)
    for r in abroad:
        assert r["address_municipality_code"] is None and r["last_address"].startswith("三重県")
        assert r["reason"] == "国外転出" and r["notification_kind"] == "修正"
    assert 0.003 <= len(abroad) / N <= 0.03
    removed = [r for r in seeded.fuhyo if r["status"] == "消除"]
    assert removed and all(r["reason"] == "消除" and r["notification_kind"] == "消除" for r in removed)


def test_d2_seed_covers_mie_residents_and_other_prefectures(seeded):
    fuhyo = {r["juminhyo_code"]: r for r in seeded.fuhyo}
    residents = seeded.residents
    covered = [r for r in residents if r["juminhyo_code"] in fuhyo]
    assert 0.75 <= len(covered) / N <= 0.85
    for r in covered:   # a resident's 附票 shows the same person at the same address
        f = fuhyo[r["juminhyo_code"]]
        assert (f["name"], f["birth_date"], f["sex"], f["address"], f["address_municipality_code"], f["status"]) == \
               (r["name"], r["birth_date"], r["sex"], r["address"], r["municipality_code"], "現存")
    same = sum(fuhyo[r["juminhyo_code"]]["fuhyo_municipality_code"] == r["municipality_code"] for r in covered)
    assert same / len(covered) > 0.6
    outside = [r for r in seeded.fuhyo if r["status"] == "現存" and r["address"] is not None
               and r["address_municipality_code"] not in MIE_CODES]
    assert len(outside) == seeded.report.fuhyo_other_prefecture
    assert len(outside) / N >= 0.15
    for r in outside:
        m = mie.OTHER_BY_CODE[r["address_municipality_code"]]
        assert r["address"].startswith(m.address_prefix)


# --- loading -------------------------------------------------------------------------------------


def test_seed_progress_reports_every_batch(seeded):
    calls = seeded.progress_calls
    total = calls[-1][1]
    assert len(calls) > 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1][0] == total == N + round(N * 0.25) + round(N * 0.15)


def test_seed_refuses_non_empty(seeded):
    before = (len(seeded.juki), len(seeded.fuhyo))
    with pytest.raises(JukinetError) as e:
        populate(seeded.registers, 10, seed=1)
    assert e.value.code == "SEED_ALREADY_DONE"        # a completed seed (issue 16)
    assert "住民データは投入済みです" in e.value.message
    assert before == (len(_rows(seeded.registers.juki_engine, juki_current)),
                      len(_rows(seeded.registers.fuhyo_engine, fuhyo_current)))


def test_seed_refuses_when_only_fuhyo_has_data(tmp_path):
    registers = _installation(tmp_path / "data")
    try:
        populate(registers, 20, seed=1)
        with registers.juki_uow() as uow:
            uow.conn.execute(juki_history.delete())
            uow.conn.execute(juki_current.delete())
            uow.conn.execute(juki_seed_progress.delete())
        with registers.fuhyo_uow() as uow:              # data, but not from a seed
            uow.conn.execute(fuhyo_seed_progress.delete())
        with pytest.raises(JukinetError, match="SEED_NOT_EMPTY"):
            populate(registers, 20, seed=1)
    finally:
        registers.dispose()


def test_seed_restores_sqlite_synchronous(tmp_path):
    registers = _installation(tmp_path / "data")
    try:
        populate(registers, 50, seed=3)
        with registers.juki_engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2   # FULL, as configured
        with registers.fuhyo_engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        registers.dispose()


def test_seed_zero_residents(tmp_path):
    registers = _installation(tmp_path / "data")
    try:
        rep = populate(registers, 0)
        assert (rep.residents, rep.removed, rep.history, rep.fuhyo_current) == (0, 0, 0, 0)
    finally:
        registers.dispose()


# --- Q1: Mie scale on the embedded default -----------------------------------------------------------

def _seed_peak(path: Path, residents: int) -> int:
    import tracemalloc

    registers = _installation(path)
    try:
        tracemalloc.start()
        populate(registers, residents, seed=3, batch_size=250)   # small: enough batches for a steady state
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        registers.dispose()


def test_q1_seed_streams_in_bounded_memory(tmp_path):
    """1.8M residents are seeded on one machine (bench/RESULTS.md: 732 MiB peak RSS, two 256 MiB page
    caches included) only because rows are generated and written batch by batch. One materialised
    resident costs well over 1 KB of Python objects (28 items + 附票 + history): growing the population
    fourfold must add far less than that per extra resident."""
    small, large = 1000, 4000
    peak_small = _seed_peak(tmp_path / "small", small)
    peak_large = _seed_peak(tmp_path / "large", large)
    per_extra_resident = (peak_large - peak_small) / (large - small)
    assert per_extra_resident < 512, f"{per_extra_resident:.0f} bytes per extra resident"
    assert peak_large < 32 * 1024 * 1024, peak_large
