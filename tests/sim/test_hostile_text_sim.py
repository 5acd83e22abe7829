"""Hostile text in ``jukinet sim cs --send FILE`` (U1, Q2; issue 17): the simulator sends every line
as written — a notification with a lone surrogate (the JSON escape ``\\ud800``), NUL, raw bytes that
are not UTF-8, 100k characters — and prints the server's coded answer for it; it never crashes
re-encoding a line (which used to print ``NO_ANSWER`` for a line the server never saw). An
unreadable file is ``CODE: 日本語`` and exit 2, never a traceback. A rejected line changes nothing.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import text as sql
from typer.testing import CliRunner

from jukinet.cli import app

from intake.helpers import TSU, jcode, tennyu

runner = CliRunner()


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def rows(registers) -> list:
    with registers.engine("juki").connect() as c:
        return sorted(map(repr, c.execute(sql("SELECT * FROM juki_current")).all()))


def test_u1_q2_sim_cs_sends_hostile_lines_as_written_and_prints_coded_answers(installation, server, registers,
                                                                              tmp_path):
    good = tennyu(jcode(41))
    bad = [dict(tennyu(jcode(42)), name="三重\ud800"), dict(tennyu(jcode(43)), address="津市\x00"),
           dict(tennyu(jcode(44)), **{"\udfff": 1}), dict(tennyu(jcode(45)), name="山" * 100_000)]
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"".join((json.dumps(n) + "\n").encode("ascii") for n in bad)           # \udXXX escapes
                  + (json.dumps(tennyu(jcode(46)), ensure_ascii=False).replace("三重", "\ud800") + "\n")
                  .encode("utf-8", "surrogatepass")                                      # raw bytes
                  + (json.dumps(good, ensure_ascii=False) + "\n").encode())
    before = rows(registers)
    r = runner.invoke(app, ["sim", "cs", "--data-dir", str(installation.data_dir), "--municipality", TSU,
                            "--send", str(f)])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 0, r.output
    lines = _lines(r.stdout)
    assert [x["status"] for x in lines] == ["rejected"] * 5 + ["accepted"], lines
    assert all(x["error"]["code"] != "NO_ANSWER" and x["error"]["message"] for x in lines[:5]), lines
    assert lines[0]["error"]["code"] == "TEXT_NOT_ENCODABLE"
    assert "ud800" not in r.stdout.lower()
    after = rows(registers)
    assert len(after) == len(before) + 1 and jcode(41) in "".join(after)


def test_u1_q2_sim_cs_unreadable_file_is_a_code(installation, tmp_path):
    r = runner.invoke(app, ["sim", "cs", "--data-dir", str(installation.data_dir), "--municipality", TSU,
                            "--send", str(tmp_path)])
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit)
    assert re.search(r"[A-Z_]+:\s.*[\u3040-\u30ff\u4e00-\u9fff]", r.output, re.S)
