"""Hostile text in batch provision files (P4, Q2; issue 17): UTF-8 and Shift_JIS (cp932).

Whatever a conditions file holds in any cell — NUL, lone surrogates (as the bytes a
``surrogateescape``/``surrogatepass`` encoder writes: not UTF-8), noncharacters, private use, IVS
selectors, control characters, characters Shift_JIS cannot hold, 100k-character cells — the run
either refuses the whole file with a coded Japanese :class:`JukinetError` (nothing provided, no
media written) or answers each bad row with a coded result row; it never raises anything else, and
neither register (the 住民票 and 附票 records) changes.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql

from jukinet.errors import JukinetError

from . import people as P
from .test_batch import HEADER, media_rows, result_rows, run

REGISTER_TABLES = ("juki_current", "juki_history", "fuhyo_current", "fuhyo_history")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")

NASTY = st.sampled_from(["\ud800", "\udfff", "\udc00\ud800", "\ufffe", "\uffff", "\U0010ffff", "\ue000",
                         "\U000e0100", "\ufe0f", "\x00", "\x07", "\x1b", "\u202e", "\u2028", "\u3000", "\ufeff",
                         "𠮷", "髙", "ヤマダ", "\"", ",", "\r", "\n", "\x85"])
ANY_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(NASTY | st.characters(), min_size=1, max_size=10).map("".join),
    st.builds(lambda c, n: c * n, NASTY | st.characters(), st.sampled_from([1000, 100_000])))


def registers_rows(registers) -> dict:
    out = {}
    for t in REGISTER_TABLES:
        with registers.engine(t.split("_")[0]).connect() as c:
            out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    return out


def encode(text: str, encoding: str) -> bytes:
    """As a careless writer would: what the encoding cannot hold goes out as raw bytes."""
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace") if encoding != "utf-8" \
        else text.encode("utf-8", "surrogatepass")


def check_file(world, tmp_path, data: bytes, encoding: str):
    before = registers_rows(world.registers)
    media_before = len(media_rows(world))
    p = tmp_path / "hostile.csv"
    p.write_bytes(data)
    try:
        res = run(world, p, encoding=encoding)
    except JukinetError as e:
        assert e.code and _JAPANESE.search(e.message), (e.code, e.message)
        assert len(media_rows(world)) == media_before
    else:
        rows = result_rows(res)
        assert len(rows) == res.rows
        for r in rows:
            if r["結果"] == "エラー":
                assert r["結果コード"] and _JAPANESE.search(r["メッセージ"])
    assert registers_rows(world.registers) == before


@pytest.mark.parametrize("encoding", ["utf-8", "cp932", "auto"])
@pytest.mark.parametrize("cell", ["山田\x00太郎", "山\ud800田", "\udc00\ud800", "𠮷田　太郎", "山" * 100_000,
                                  "\x00" * 1000, "\ufeff山田"],
                         ids=["nul", "surrogate", "reversed", "not-sjis", "100k", "nul1000", "bom"])
@pytest.mark.parametrize("column", ["request_no", "name", "address", "birth_date"])
def test_q2_p4_hostile_cell_in_a_batch_file_is_a_coded_row_or_file_refusal(world, tmp_path, encoding, cell, column):
    values = {"request_no": "H-1", "juminhyo_code": "", "kojin_bango": "", "name": "山田　太郎",
              "birth_date": "1980-04-01", "sex": "", "address": ""}
    values[column] = cell
    line = ",".join('"' + v.replace('"', '""') + '"' for v in values.values())
    text = HEADER + line + "\n" + f"H-2,{P.TARO},,,,,\n"
    check_file(world, tmp_path, encode(text, "cp932" if encoding == "cp932" else "utf-8"), encoding)


_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def _draw_file(cells, encoding):
    rows = [HEADER]
    for i in range(0, len(cells), 7):
        chunk = (cells[i:i + 7] + [""] * 7)[:7]
        rows.append(",".join('"' + c.replace('"', '""') + '"' for c in chunk) + "\n")
    return encode("".join(rows), "cp932" if encoding == "cp932" else "utf-8")


@settings(max_examples=15, **_SETTINGS)
@given(cells=st.lists(ANY_TEXT, min_size=1, max_size=14), encoding=st.sampled_from(["utf-8", "cp932", "auto"]))
def test_q2_p4_any_text_in_a_batch_file_never_crashes(world, tmp_path, cells, encoding):
    check_file(world, tmp_path, _draw_file(cells, encoding), encoding)


@pytest.mark.nightly
@settings(max_examples=1000, **_SETTINGS)
@given(cells=st.lists(ANY_TEXT, min_size=1, max_size=14), encoding=st.sampled_from(["utf-8", "cp932", "auto"]))
def test_q2_p4_any_text_in_a_batch_file_never_crashes_nightly(world, tmp_path, cells, encoding):
    check_file(world, tmp_path, _draw_file(cells, encoding), encoding)
