"""Hostile text on the reconciliation channel end to end (C1, Q2; issue 17): ``POST
/cs/v1/consistency/{register}`` over the real HTTPS server with mutual TLS, and ``jukinet reconcile
FILE`` on the command line.

A snapshot whose records carry arbitrary Unicode in any string item — lone surrogates (as the JSON
escape and as raw bytes), NUL, noncharacters, private use, IVS selectors, control characters,
100k characters — is answered 200 with a result document or refused with a coded JSON 4xx; never a
5xx, never ``text/plain``. The command prints ``CODE: 日本語`` on stderr and exits 2, never a
traceback. A refusal changes nothing in either register.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text as sql
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.reconcile.snapshot import header_line, trailer_line
from jukinet.sim.cs import CsClient

from reconcile_people import TSU
from test_reconcile_channel import server  # noqa: F401  (fixture: the real mTLS server)

runner = CliRunner()
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
REGISTER_TABLES = ("juki_current", "juki_history", "fuhyo_current", "fuhyo_history")
NASTY = st.sampled_from(["\ud800", "\udfff", "\udc00\ud800", "\ufffe", "\uffff", "\U0010ffff", "\ue000",
                         "\U000e0100", "\ufe0f", "\x00", "\x07", "\x1b", "\u202e", "\u2028", "\u3000", "\ufeff",
                         "𠮷", "髙"])
ANY_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(NASTY | st.characters(), min_size=1, max_size=10).map("".join),
    st.builds(lambda c, n: c * n, NASTY | st.characters(), st.sampled_from([1000, 100_000])))
RECORD = {"juminhyo_code": "10000000001", "municipality_code": TSU, "name": "三重　太郎", "name_kana": "ミエ　タロウ",
          "birth_date": "1970-01-01", "sex": "1", "address": "三重県津市広明町3番地", "oaza_code": "0012"}
TEXT_ITEMS = list(RECORD) + ["unknown"]


def registers_rows(registers) -> dict:
    out = {}
    for t in REGISTER_TABLES:
        with registers.engine(t.split("_")[0]).connect() as c:
            out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    return out


def snapshot(rec: dict, escaped: bool) -> bytes:
    if escaped:   # \udXXX escapes: valid JSON that decodes to text no encoder takes
        line = (json.dumps(rec) + "\n").encode("ascii")
    else:         # raw bytes, lone surrogates as a careless encoder writes them
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    return (header_line("juki", TSU, 1, "2026-11-01T00:00:00+09:00") + line
            + trailer_line(1, hashlib.sha256(line).hexdigest()))


def post(config, data: bytes):
    cs = CsClient(config, TSU)
    try:
        return cs.http.post("/cs/v1/consistency/juki", content=data, headers={"content-type": "application/x-ndjson"})
    finally:
        cs.close()


def check_channel(config, registers, rec, escaped):
    before = registers_rows(registers)
    r = post(config, snapshot(rec, escaped))
    ctype = r.headers.get("content-type", "")
    assert r.status_code < 500 and not ctype.startswith("text/plain"), (r.status_code, ctype, r.text[:300])
    if r.status_code >= 400:
        err = r.json()["error"]
        assert err["code"] and _JAPANESE.search(err["message"]) and "ud800" not in r.text.lower()
    else:
        assert ctype.startswith("application/x-ndjson")
    assert registers_rows(registers) == before
    return r


@pytest.mark.parametrize("item", TEXT_ITEMS)
@pytest.mark.parametrize("bad", ["\ud800", "\udc00\ud800", "\x00", "x" * 100_000], ids=["surrogate", "reversed",
                                                                                      "nul", "100k"])
def test_c1_q2_hostile_text_over_the_mtls_channel_is_coded(server, populated, config, item, bad):
    for escaped in (True, False):
        r = check_channel(config, populated, dict(RECORD, **{item: RECORD.get(item, "") + bad}), escaped)
        if bad in ("\ud800", "\udc00\ud800"):
            assert r.status_code == 422 and r.json()["error"]["code"] in ("RECONCILE_JSON_INVALID",
                                                                         "RECONCILE_ENCODING"), r.text[:300]


@pytest.mark.parametrize("bad", ["\ud800", "\x00"], ids=["surrogate", "nul"])
def test_c1_q2_reconcile_command_refuses_a_hostile_file_with_a_code_not_a_traceback(populated, config, tmp_path, bad):
    before = registers_rows(populated)
    f = tmp_path / "snap.jsonl"
    f.write_bytes(snapshot(dict(RECORD, name="三重" + bad), escaped=True))
    r = runner.invoke(app, ["reconcile", "--data-dir", str(config.data_dir), "--municipality", TSU, str(f)])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if bad == "\ud800":
        assert r.exit_code == 2 and re.search(r"RECONCILE_[A-Z_]+: .*[\u3040-\u30ff\u4e00-\u9fff]", r.output)
    assert registers_rows(populated) == before


def test_c1_q2_reconcile_command_unreadable_file_is_a_code(populated, config, tmp_path):
    r = runner.invoke(app, ["reconcile", "--data-dir", str(config.data_dir), "--municipality", TSU, str(tmp_path)])
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit)
    assert re.search(r"[A-Z_]+: .*[\u3040-\u30ff\u4e00-\u9fff]", r.output)


_SETTINGS = dict(deadline=None, database=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def _spoiled(values):
    rec = dict(RECORD)
    for k, v in zip(TEXT_ITEMS, values):
        if v is not None:
            rec[k] = v
    return rec


@settings(max_examples=20, **_SETTINGS)
@given(values=st.lists(st.none() | ANY_TEXT, min_size=len(TEXT_ITEMS), max_size=len(TEXT_ITEMS)),
       escaped=st.booleans())
def test_c1_q2_any_text_over_the_mtls_channel_never_5xx(server, populated, config, values, escaped):
    check_channel(config, populated, _spoiled(values), escaped)


@pytest.mark.nightly
@settings(max_examples=1000, **_SETTINGS)
@given(values=st.lists(st.none() | ANY_TEXT, min_size=len(TEXT_ITEMS), max_size=len(TEXT_ITEMS)),
       escaped=st.booleans())
def test_c1_q2_any_text_over_the_mtls_channel_never_5xx_nightly(server, populated, config, values, escaped):
    check_channel(config, populated, _spoiled(values), escaped)
