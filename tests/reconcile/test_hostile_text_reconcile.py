"""Hostile text on the reconciliation channel (C1, Q2; issue 17): the snapshot reader, where the
text of ``POST /cs/v1/consistency/{register}`` (and ``jukinet reconcile FILE``) first arrives.

Arbitrary Unicode in every string item — lone surrogates (as the JSON escape ``\\ud800`` and as raw
bytes), noncharacters, private use, IVS selectors, control characters, 100k characters — is either
read or refused with a coded :class:`SnapshotRefused` naming a line; nothing else is ever raised.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jukinet.reconcile.snapshot import SnapshotReader, SnapshotRefused, header_line, trailer_line

TSU = "242012"
NASTY = st.sampled_from(["\ud800", "\udfff", "\udc00\ud800", "\ufffe", "\uffff", "\U0010ffff", "\ue000",
                         "\U000e0100", "\ufe0f", "\x00", "\x07", "\x1b", "\u202e", "\u2028", "\u3000", "\ufeff",
                         "𠮷", "髙"])
ANY_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(NASTY | st.characters(), min_size=1, max_size=10).map("".join),
    st.builds(lambda c, n: c * n, NASTY | st.characters(), st.sampled_from([1000, 100_000])))
RECORD = {"juminhyo_code": "10000000001", "municipality_code": TSU, "name": "三重　太郎", "name_kana": "ミエ　タロウ",
          "birth_date": "1970-01-01", "sex": "1", "address": "三重県津市広明町3番地", "oaza_code": "0012"}
TEXT_ITEMS = [k for k in RECORD] + ["unknown"]


def _line(rec: dict, escaped: bool) -> bytes:
    if escaped:   # \udXXX escapes: valid JSON that decodes to text no encoder takes
        return (json.dumps(rec) + "\n").encode("ascii")
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")   # raw bad bytes


def _read(rec: dict, escaped: bool):
    line = _line(rec, escaped)
    buf = io.BytesIO(header_line("juki", TSU, 1, "2026-11-01T00:00:00+09:00") + line
                     + trailer_line(1, hashlib.sha256(line).hexdigest()))
    return list(SnapshotReader(buf, register="juki", municipality_code=TSU))


def test_c1_q2_lone_surrogate_in_a_snapshot_is_refused_with_a_code_and_a_line():
    for item in TEXT_ITEMS:
        for escaped in (True, False):
            with pytest.raises(SnapshotRefused) as e:
                _read(dict(RECORD, **{item: RECORD.get(item, "") + "\ud800"}), escaped)
            assert e.value.code in ("RECONCILE_JSON_INVALID", "RECONCILE_ENCODING") and e.value.line == 2
            assert "ud800" not in e.value.message


def _check(values, escaped):
    rec = dict(RECORD)
    for k, v in zip(TEXT_ITEMS, values):
        if v is not None:
            rec[k] = v
    try:
        _read(rec, escaped)
    except SnapshotRefused as e:
        assert e.code.startswith("RECONCILE_") and e.message


_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])


@settings(max_examples=150, **_SETTINGS)
@given(values=st.lists(st.none() | ANY_TEXT, min_size=len(TEXT_ITEMS), max_size=len(TEXT_ITEMS)),
       escaped=st.booleans())
def test_c1_q2_any_text_in_a_snapshot_is_read_or_refused_with_a_code(values, escaped):
    _check(values, escaped)


@pytest.mark.nightly
@settings(max_examples=5000, **_SETTINGS)
@given(values=st.lists(st.none() | ANY_TEXT, min_size=len(TEXT_ITEMS), max_size=len(TEXT_ITEMS)),
       escaped=st.booleans())
def test_c1_q2_any_text_in_a_snapshot_is_read_or_refused_with_a_code_nightly(values, escaped):
    _check(values, escaped)
