"""Hostile input at the command line's file doors of 事務2/事務4 (P1, P4, N1, Q2; issue 17):
``jukinet catalogue load FILE``, ``jukinet provision batch … FILE`` and ``jukinet query national``
(keys on standard input).

Each bad input — NUL, lone surrogates (the JSON/TOML escape and raw bytes), bytes that are not
UTF-8, characters Shift_JIS cannot hold, 100k characters, a directory or unreadable file — ends
with ``CODE: 日本語メッセージ`` and a non-zero exit, never a traceback, and changes neither register
nor the catalogue.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select, text as sql
from typer.testing import CliRunner

from jukinet.cli import app
from jukinet.provision import catalogue as C
from jukinet.store.tables_provision import provision_affairs, provision_requesters

from . import people as P
from .test_cli import add_operator

runner = CliRunner()
pytestmark = pytest.mark.xdist_group("provision-cli")
CODED = re.compile(r"\b[A-Z][A-Z0-9_]+:\s.*[\u3040-\u30ff\u4e00-\u9fff]", re.S)
REGISTER_TABLES = ("juki_current", "juki_history", "fuhyo_current", "fuhyo_history")


def state(world) -> dict:
    out = {}
    for t in REGISTER_TABLES:
        with world.registers.engine(t.split("_")[0]).connect() as c:
            out[t] = sorted(map(repr, c.execute(sql(f"SELECT * FROM {t}")).all()))
    with world.registers.admin_tx(write=False) as c:
        for t in (provision_affairs, provision_requesters):
            out[t.name] = sorted(map(repr, c.execute(select(t)).all()))
    return out


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_coded_exit(r) -> None:
    assert r.exit_code not in (0, None), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    assert CODED.search(r.output), r.output


_CATALOGUE_BAD = {
    "nul-escape": lambda t: t.replace('name = "警備業法による認定に関する事務"', 'name = "警備業法\\u0000"'),
    "surrogate-escape": lambda t: t.replace('name = "警備業法による認定に関する事務"', 'name = "警備業法\\ud800"'),
    "raw-surrogate": lambda t: t.replace("警備業法による認定に関する事務", "警備業法\ud800"),
    "not-utf8": lambda t: t.replace("警備業法による認定に関する事務", "\udcff\udcfe"),
    "100k": lambda t: t.replace("警備業法による認定に関する事務", "警" * 100_000),
}


@pytest.mark.parametrize("how", list(_CATALOGUE_BAD))
def test_q2_p1_cli_catalogue_load_of_a_hostile_file_is_a_code(world, tmp_path, how):
    add_operator(world, "ADM-Q2", ["admin"], regs=(), affairs=())
    before = state(world)
    f = tmp_path / "cat.toml"
    f.write_bytes(_CATALOGUE_BAD[how](C.DEFAULT_PATH.read_text(encoding="utf-8")).encode("utf-8", "surrogateescape"
                                                                                       if how == "not-utf8" else
                                                                                       "surrogatepass"))
    r = invoke("catalogue", "load", f, "--operator", "ADM-Q2", "--data-dir", world.config.data_dir)
    assert_coded_exit(r)
    assert state(world) == before


def test_q2_p1_cli_catalogue_load_of_an_unreadable_file_is_a_code(world, tmp_path):
    f = tmp_path / "cat.toml"
    f.write_text("x", encoding="utf-8")
    f.chmod(0)
    try:
        r = invoke("catalogue", "load", f, "--data-dir", world.config.data_dir)
    finally:
        f.chmod(0o600)
    if r.exit_code == 0:   # running as root: the file is readable after all
        pytest.skip("root reads a mode-000 file")
    assert_coded_exit(r)


@pytest.mark.parametrize("keys", [
    b'{"name": "\\ud800", "birth_date": "1980-04-01"}',
    b'{"juminhyo_code": "\\u0000"}',
    b'{"name": "\\u5c71\\u7530\\u0000", "birth_date": "1980-04-01"}',
    '{"name": "山田", "birth_date": "1980-04-01"}'.encode("cp932"),                 # not UTF-8
    b'{"name": "\xed\xa0\x80", "birth_date": "1980-04-01"}',                     # raw surrogate bytes
    b'{"juminhyo_code": ["10000000001"]}',
    b'{"name": {"a": 1}, "birth_date": "1980-04-01"}',
    b'[1, 2]',
    ('{"name": "' + "山" * 100_000 + '", "birth_date": "1980-04-01"}').encode(),
], ids=["surrogate", "nul", "nul-in-name", "cp932", "raw-surrogate", "list", "object", "array", "100k"])
def test_q2_n1_cli_query_national_hostile_stdin_is_a_code(world, keys):
    add_operator(world, "OP-QQ", ["operator"])
    before = state(world)
    r = invoke("query", "national", "--operator", "OP-QQ", "--purpose", "inquiry", "--data-dir",
               world.config.data_dir, input=keys)
    assert_coded_exit(r)
    assert state(world) == before


@pytest.mark.parametrize("content", [
    "依頼番号,氏名,生年月日\nA-1,山田\x00太郎,1980-04-01\n".encode(),
    "依頼番号,氏名,生年月日\nA-1,山田\ud800,1980-04-01\n".encode("utf-8", "surrogatepass"),
    b"\xff\xfe\x00\x00garbage\n\x00\x00",
], ids=["nul", "raw-surrogate", "garbage"])
def test_q2_p4_cli_batch_hostile_file_never_a_traceback(world, tmp_path, content):
    add_operator(world, "OP-BQ", ["operator"])
    before = state(world)
    f = tmp_path / "cond.csv"
    f.write_bytes(content)
    r = invoke("provision", "batch", "--operator", "OP-BQ", "--requester", "SOMU", "--affair", "SOMU-KENZEI",
               "--data-dir", world.config.data_dir, "--in", f)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    if r.exit_code != 0:
        assert CODED.search(r.output), r.output
    assert state(world) == before
