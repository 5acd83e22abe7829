"""C1 — consistency check of a CS snapshot against our file (事務6), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import logging

import pytest
from sqlalchemy import func, select, update

from jukinet.errors import JukinetError
from jukinet.reconcile import result_lines, run_check
from jukinet.reconcile.service import due_status, get_run, list_runs
from jukinet.reconcile.simulate import build_snapshot
from jukinet.reconcile.snapshot import SnapshotRefused, record_line, write_snapshot, write_snapshot_to
from jukinet.store.atrest import KojinBangoCipher
from jukinet.store.tables import juki_current
from jukinet.store.tables_reconcile import RECONCILE

from reconcile_people import AS_OF, NOW, TSU, YOKKAICHI, bango_for, code_for, juki



def snapshot(registers, register="juki", municipality=TSU, inject=0, seed=1) -> tuple[bytes, dict]:
    buf = io.BytesIO()
    injected = build_snapshot(registers, register, municipality, buf, inject=inject, seed=seed, as_of=AS_OF)
    return buf.getvalue(), injected


def check(registers, data: bytes, register="juki", municipality=TSU):
    return run_check(registers, register, municipality, io.BytesIO(data), clock=lambda: NOW)


def stored_runs(registers, register="juki"):
    runs, diffs = RECONCILE[register]
    with registers.engine(register).connect() as c:
        return (c.execute(select(runs)).all(),
                c.execute(select(func.count()).select_from(diffs)).scalar_one())


@pytest.mark.parametrize("register", ["juki", "fuhyo"])
def test_c1_identical_snapshot_matches_every_current_person(populated, register):
    data, injected = snapshot(populated, register)
    assert injected["count"] == 200
    res = check(populated, data, register)
    assert res.status == "completed"
    assert (res.snapshot_count, res.server_count, res.matched, res.differences) == (200, 200, 200, 0)
    runs, ndiff = stored_runs(populated, register)
    assert len(runs) == 1 and runs[0].status == "completed" and ndiff == 0


@pytest.mark.parametrize("register", ["juki", "fuhyo"])
def test_c1_injected_differences_are_found_by_kind_and_item(populated, register):
    data, injected = snapshot(populated, register, inject=30, seed=7)
    assert injected == {"differs": 10, "only_on_server": 10, "only_in_snapshot": 10, "count": 200}
    res = check(populated, data, register)
    assert (res.differs, res.only_on_server, res.only_in_snapshot, res.pending) == (10, 10, 10, 0)
    assert res.matched == 180 and res.snapshot_count == 200 and res.server_count == 200
    assert res.item_counts == {"address": 10}
    lines = [json.loads(x) for x in result_lines(populated, register, res.run_id)]
    header, body, trailer = lines[0], lines[1:-1], lines[-1]
    assert header["schema"] == "jukinet.consistency-result/1" and header["counts"]["differs"] == 10
    assert header["municipality_code"] == TSU and header["register"] == register
    assert len(body) == 30 == trailer["count"]
    assert [b["juminhyo_code"] for b in body] == sorted(b["juminhyo_code"] for b in body)
    assert {b["kind"] for b in body} == {"differs", "only_on_server", "only_in_snapshot"}
    assert all(b["items"] == ["address"] for b in body if b["kind"] == "differs")


def test_c1_result_document_is_framed_like_the_snapshot(populated):
    data, _ = snapshot(populated, inject=6)
    res = check(populated, data)
    raw = list(result_lines(populated, "juki", res.run_id))
    trailer = json.loads(raw[-1])
    assert trailer["trailer"] is True
    assert trailer["sha256"] == hashlib.sha256(b"".join(raw[1:-1])).hexdigest()


def test_c1_result_and_logs_never_carry_values(populated, caplog):
    data, _ = snapshot(populated, inject=9)
    with caplog.at_level(logging.DEBUG, logger="jukinet"):
        res = check(populated, data)
    doc = b"".join(result_lines(populated, "juki", res.run_id)).decode()
    for text in (doc, caplog.text):
        assert "三重" not in text and "広明町" not in text and "ミエ" not in text
    assert "address" in doc  # the item's name is given


def test_c1_change_on_our_side_after_as_of_is_pending_not_a_difference(populated):
    data, _ = snapshot(populated)
    later = AS_OF.replace(day=22)
    with populated.juki_uow() as uow:
        cur = uow.repo.get(code_for(5))
        uow.repo.apply(cur.replace(address="三重県津市栄町1丁目1番", reason="転居"), previous=cur, now=later)
        uow.repo.apply(juki(500, TSU, reason="国内転入"), now=later)  # a 転入 after the snapshot
    res = check(populated, data)
    assert (res.pending, res.differs, res.only_on_server, res.matched) == (2, 0, 0, 199)


def test_c1_change_on_our_side_before_as_of_is_a_difference(populated):
    earlier = AS_OF.replace(day=10)
    with populated.juki_uow() as uow:
        cur = uow.repo.get(code_for(5))
        uow.repo.apply(cur.replace(address="三重県津市栄町1丁目1番", reason="転居"), previous=cur, now=earlier)
    # the CS still has the old address (it never sent the 転居): its snapshot is ours, altered back
    data, _ = snapshot(populated)
    lines = data.split(b"\n")
    lines = [ln.replace("栄町1丁目1番".encode(), "広明町5番地".encode()) for ln in lines]
    body = [ln + b"\n" for ln in lines[1:-2]]
    buf = io.BytesIO()
    write_snapshot_to(buf, "juki", TSU, body, len(body), as_of=AS_OF.isoformat())
    res = check(populated, buf.getvalue())
    assert (res.differs, res.pending, res.item_counts) == (1, 0, {"address": 1})


def test_c1_person_we_hold_as_removed_is_flagged_removed(populated):
    # 290..299 are removed in 四日市市; remove one 津市 resident too, before the snapshot time
    with populated.juki_uow() as uow:
        cur = uow.repo.get(code_for(3))
        uow.repo.apply(cur.replace(reason="死亡", deleted=True, retention_flag=True), previous=cur,
                       now=AS_OF.replace(day=5))
    data, _ = snapshot(populated)                       # no longer has person 3
    extra = record_line("juki", {"juminhyo_code": code_for(3), "municipality_code": TSU, "name": "三重　太郎3",
                                 "name_kana": "ミエ　タロウ", "birth_date": "1970-01-01", "sex": "1",
                                 "address": "三重県津市広明町3番地"})
    lines = data.split(b"\n")[1:-2]
    body = sorted([ln + b"\n" for ln in lines] + [extra])
    buf = io.BytesIO()
    write_snapshot_to(buf, "juki", TSU, body, len(body), as_of=AS_OF.isoformat())
    res = check(populated, buf.getvalue())
    assert res.only_in_snapshot == 1
    diffs = [json.loads(x) for x in result_lines(populated, "juki", res.run_id)][1:-1]
    assert diffs == [{"juminhyo_code": code_for(3), "kind": "only_in_snapshot", "items": ["removed"]}]


def test_c1_person_of_another_municipality_is_only_in_snapshot_without_saying_where(populated):
    data, _ = snapshot(populated)
    extra = record_line("juki", {"juminhyo_code": code_for(210), "municipality_code": TSU, "name": "x",
                                 "name_kana": "ミエ", "birth_date": "1970-01-01", "sex": "1", "address": "y"})
    body = sorted([ln + b"\n" for ln in data.split(b"\n")[1:-2]] + [extra])
    buf = io.BytesIO()
    write_snapshot_to(buf, "juki", TSU, body, len(body), as_of=AS_OF.isoformat())
    res = check(populated, buf.getvalue())
    diffs = [json.loads(x) for x in result_lines(populated, "juki", res.run_id)]
    assert diffs[1] == {"juminhyo_code": code_for(210), "kind": "only_in_snapshot", "items": []}
    assert YOKKAICHI not in json.dumps(diffs)


# ------------------------------------------------------------------ bad input (Q2)

def _valid(registers) -> list[bytes]:
    data, _ = snapshot(registers)
    return data.splitlines(keepends=True)


def _reframe(lines: list[bytes], count=None) -> bytes:
    """Header and trailer recomputed around the given record lines (so only the fault remains)."""
    body = lines[1:-1]
    h = hashlib.sha256(b"".join(body)).hexdigest()
    head = json.loads(lines[0])
    head["count"] = len(body) if count is None else count
    return (json.dumps(head).encode() + b"\n" + b"".join(body)
            + json.dumps({"trailer": True, "count": len(body) if count is None else count, "sha256": h}).encode()
            + b"\n")


def _edit(line: bytes, **changes) -> bytes:
    obj = json.loads(line)
    obj.update(changes)
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


BAD = {
    "RECONCILE_EMPTY": lambda ls: b"",
    "RECONCILE_HEADER_INVALID": lambda ls: _reframe([_edit(ls[0], schema="other/1")] + ls[1:]),
    "RECONCILE_MUNICIPALITY_MISMATCH": lambda ls: _reframe([_edit(ls[0], municipality_code=YOKKAICHI)] + ls[1:]),
    "RECONCILE_REGISTER_MISMATCH": lambda ls: _reframe([_edit(ls[0], register="fuhyo")] + ls[1:]),
    "RECONCILE_FOREIGN_RECORD": lambda ls: _reframe(ls[:5] + [_edit(ls[5], municipality_code=YOKKAICHI)] + ls[6:]),
    "RECONCILE_TRUNCATED": lambda ls: b"".join(ls[:-1]),
    "RECONCILE_TRUNCATED ": lambda ls: b"".join(ls[:100]),
    "RECONCILE_JSON_INVALID": lambda ls: _reframe(ls[:5] + [ls[5][:40] + b"\n"] + ls[6:]),
    "RECONCILE_COUNT_MISMATCH": lambda ls: _reframe(ls, count=199),
    "RECONCILE_DIGEST_MISMATCH": lambda ls: b"".join(ls[:-1]) .replace("広明町7番地".encode(), "広明町8番地".encode())
    + ls[-1],
    "RECONCILE_UNSORTED": lambda ls: _reframe(ls[:5] + [ls[6], ls[5]] + ls[7:]),
    "RECONCILE_DUPLICATE": lambda ls: _reframe(ls[:6] + [ls[5]] + ls[6:]),
    "RECONCILE_CODE_INVALID": lambda ls: _reframe(
        ls[:5] + [_edit(ls[5], juminhyo_code=json.loads(ls[5])["juminhyo_code"][:10] + "X")] + ls[6:]),
    "RECONCILE_FIELD_UNKNOWN": lambda ls: _reframe(ls[:5] + [_edit(ls[5], hobby="囲碁")] + ls[6:]),
    "RECONCILE_FIELD_MISSING": lambda ls: _reframe(ls[:5] + [_edit(ls[5], name=None)] + ls[6:]),
    "RECONCILE_FIELD_INVALID": lambda ls: _reframe(ls[:5] + [_edit(ls[5], birth_date="1980/04/01")] + ls[6:]),
    "RECONCILE_AFTER_TRAILER": lambda ls: b"".join(ls) + ls[3],
    "RECONCILE_AS_OF_FUTURE": lambda ls: _reframe([_edit(ls[0], as_of="2027-01-01T00:00:00+09:00")] + ls[1:]),
    "RECONCILE_LINE_TOO_LONG": lambda ls: _reframe(ls[:5] + [_edit(ls[5], name="長" * 30000)] + ls[6:]),
    "RECONCILE_ENCODING": lambda ls: _reframe(ls[:5] + [ls[5].replace("三重".encode(), "三重".encode("shift_jis"))]
                                              + ls[6:]),
}


def test_c1_q2_bad_snapshot_is_refused_with_a_clear_error_and_nothing_stored(populated):
    """Every kind of bad input, one after the other on one installation: each is refused with its
    code and a Japanese message naming the line, never a value; each leaves exactly one refusal
    record and no difference."""
    valid = _valid(populated)
    failures = []
    for i, code in enumerate(sorted(BAD), start=1):
        try:
            check(populated, BAD[code](valid))
        except SnapshotRefused as e:
            runs, ndiff = stored_runs(populated)
            r = runs[-1]
            problems = [
                e.code != code.strip() and f"code {e.code}",
                not (e.message.startswith("整合性確認データの") and e.message.isprintable()) and "message",
                any(x in e.message or x in str(e) for x in ("三重　太郎", "広明町", "ミエ", "囲碁")) and "value leaked",
                len(runs) != i and "not exactly one refusal record",
                ndiff != 0 and "differences stored",
                (r.status, r.error_code, r.matched_count, r.differs_count) != ("refused", code.strip(), 0, 0)
                and "refusal record",
                r.run_id != e.run_id and "run id",
                json.loads(json.dumps(e.as_dict()))["code"] != code.strip() and "as_dict",
            ]
            failures += [f"{code}: {p}" for p in problems if p]
        else:
            failures.append(f"{code}: accepted")
    assert not failures, failures


def test_c1_q2_sender_must_be_a_municipality_of_this_prefecture(populated):
    data, _ = snapshot(populated)
    for bad in ("242013", "131041", "240001", "24201"):
        with pytest.raises(JukinetError) as ei:
            check(populated, data, municipality=bad)
        assert ei.value.code == "RECONCILE_SENDER_INVALID"
    with pytest.raises(JukinetError) as ei:
        check(populated, data, register="other")
    assert ei.value.code == "RECONCILE_REGISTER_INVALID"
    assert stored_runs(populated)[0] == []


def test_c1_runs_listed_and_due_status_follows_the_interval(populated):
    data, _ = snapshot(populated)
    res = check(populated, data)
    assert [r.run_id for r in list_runs(populated, "juki")] == [res.run_id]
    assert get_run(populated, "juki", res.run_id).matched == 200
    due = {d.municipality_code: d for d in due_status(populated, "juki", [TSU, YOKKAICHI], interval_days=30, now=NOW)}
    assert not due[TSU].due and due[TSU].last_run_id == res.run_id
    assert due[YOKKAICHI].due and due[YOKKAICHI].last_completed is None
    from datetime import timedelta
    later = {d.municipality_code: d.due for d in
             due_status(populated, "juki", [TSU], interval_days=30, now=NOW + timedelta(days=31))}
    assert later[TSU]


def test_c1_changed_kojin_bango_is_reported_through_the_blind_index(populated, monkeypatch):
    """個人番号 is compared through its blind index, never opened (ADR 0058), and every kind of
    個人番号 difference is still reported as ``kojin_bango``: another valid number, a number where we
    hold none, none where we hold one, and a row of ours whose blind index is missing."""
    earlier = AS_OF.replace(day=10)
    with populated.juki_uow() as uow:                       # person 3: we hold no number
        cur = uow.repo.get(code_for(3))
        uow.repo.apply(cur.replace(kojin_bango=None, reason="個人番号変更"), previous=cur, now=earlier)
    lines = _valid(populated)
    at = {json.loads(ln)["juminhyo_code"]: i for i, ln in enumerate(lines[1:-1], start=1)}
    lines[at[code_for(1)]] = _edit(lines[at[code_for(1)]], kojin_bango=bango_for(1000))   # another number
    lines[at[code_for(2)]] = _edit(lines[at[code_for(2)]], kojin_bango=None)              # none on the CS
    lines[at[code_for(3)]] = _edit(lines[at[code_for(3)]], kojin_bango=bango_for(3))      # none on our side
    with populated.engine("juki").begin() as c:              # person 4: sealed, but no blind index
        c.execute(update(juki_current).where(juki_current.c.juminhyo_code == code_for(4)).values(kojin_bango_bi=None))

    def never(*a, **k):
        raise AssertionError("a 個人番号 was opened during the check")
    monkeypatch.setattr(KojinBangoCipher, "open", never)
    res = check(populated, _reframe(lines))
    assert (res.matched, res.differs, res.pending, res.item_counts) == (196, 4, 0, {"kojin_bango": 4})
    diffs = [json.loads(x) for x in result_lines(populated, "juki", res.run_id)][1:-1]
    assert sorted((d["juminhyo_code"], d["kind"], d["items"]) for d in diffs) == sorted(
        (code_for(i), "differs", ["kojin_bango"]) for i in (1, 2, 3, 4))


def test_c1_equal_kojin_bango_matches_through_the_blind_index(populated):
    """The same 個人番号 on both sides is a match (the blind index of the snapshot's number equals ours)."""
    lines = _valid(populated)
    assert all(json.loads(ln).get("kojin_bango") for ln in lines[1:-1])
    res = check(populated, _reframe(lines))
    assert (res.matched, res.differences) == (200, 0)


def test_c1_small_written_snapshot_roundtrip(populated):
    data = write_snapshot("juki", TSU, [], as_of=AS_OF.isoformat())
    res = check(populated, data)
    assert res.only_on_server == 200 and res.snapshot_count == 0


# ------------------------------------------------------------------ the reader's fast paths (D3, D5)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jukinet import codes as _codes, kana as _kana  # noqa: E402
from jukinet.reconcile.snapshot import _W_JUMINHYO, _W_KOJIN, _mod11_ok, _stored_kana  # noqa: E402

_KANA_ALPHABET = [chr(c) for c in range(0x30A1, 0x30FB)] + ["ー", "\u3000", " ", "ｱ", "ﾞ", "あ", "ヽ", "x", "漢"]


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet="0123456789", min_size=11, max_size=12) | st.text(max_size=13))
def test_c1_d3_fast_check_digits_agree_with_jukinet_codes(s):
    if _mod11_ok(s, _W_JUMINHYO, 11):           # never accepts what jukinet.codes refuses
        assert _codes.validate_juminhyo_code(s) == s
    if _mod11_ok(s, _W_KOJIN, 12):
        assert _codes.validate_kojin_bango(s) == s
    if len(s) == 11 and _codes.compact(s) == s:
        assert _mod11_ok(s, _W_JUMINHYO, 11) == _codes.is_valid_juminhyo_code(s)
    if len(s) == 12 and _codes.compact(s) == s:
        assert _mod11_ok(s, _W_KOJIN, 12) == _codes.is_valid_kojin_bango(s)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=_KANA_ALPHABET, min_size=1, max_size=10))
def test_c1_d5_kana_fast_path_gives_what_intake_stores(s):
    try:
        expected = _kana.validate_kana(s)
    except Exception:  # noqa: BLE001 - not kana: compared as sent
        expected = s
    assert _stored_kana(s) == expected


def test_c1_q2_bad_fuhyo_records_are_refused(populated):
    data, _ = snapshot(populated, "fuhyo")
    lines = data.splitlines(keepends=True)
    cases = {
        "RECONCILE_CODE_INVALID": _edit(lines[5], address_municipality_code=[1]),
        "RECONCILE_CODE_INVALID ": _edit(lines[5], old_juminhyo_code="12345678901"),
        "RECONCILE_FIELD_INVALID": _edit(lines[5], status="消除"),
        "RECONCILE_FIELD_INVALID ": _edit(lines[5], last_address=7),
        "RECONCILE_FOREIGN_RECORD": _edit(lines[5], fuhyo_municipality_code=YOKKAICHI),
    }
    for code, bad in cases.items():
        with pytest.raises(SnapshotRefused) as ei:
            check(populated, _reframe(lines[:5] + [bad] + lines[6:]), register="fuhyo")
        assert ei.value.code == code.strip(), code
