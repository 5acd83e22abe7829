"""A4 (issue 19): an input error is not a refusal. N searches with a wrongly written 生年月日
(昭和99年13月1日) or no condition at all are logged — as input errors (outcome ``invalid``) — and do not
raise flag (f) 拒否 against the operator; N refusals for a purpose that does not allow the operation do.
The hash chains stay intact. Through the operator screens, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import select

from jukinet.audit import analysis as an
from jukinet.security.oplog import verify_all
from jukinet.store.tables_security import OPLOG

if "operator_site" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "operator_site", Path(__file__).resolve().parent.parent / "web" / "operator_site.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["operator_site"] = _mod
    _spec.loader.exec_module(_mod)
from operator_site import juki, site  # noqa: E402,F401  (fixture)

N = 6
OP = "OPERATOR-JUKI"


def _entries(site) -> list[an.Entry]:
    out = []
    for chain, (log, _) in OPLOG.items():
        with site.registers.engine(chain).connect() as conn:
            out += [an.Entry.from_row(chain, row) for row in conn.execute(select(log))]
    return out


def _post(site, path, data, persona="operator_juki"):
    return site.client(persona).post(path, data={**data, "csrf_token": site.csrf(persona)})


def _refusal_flags(a: an.Analysis, op=OP) -> list[an.Flag]:
    return [f for f in a.flags if f.kind == "f" and f.operator_id == op]


def test_a4_date_format_and_empty_searches_do_not_raise_the_refusal_flag(site):
    for _ in range(N):
        r = _post(site, "/search", {"purpose_code": "inquiry", "registers": "juki", "birth_from": "昭和99年13月1日"})
        assert r.status_code == 400 and "DATE_FORMAT" in r.text
        r = _post(site, "/search", {"purpose_code": "inquiry", "registers": "juki"})
        assert r.status_code == 400 and "SEARCH_TOO_BROAD" in r.text
    mine = [e for e in _entries(site) if e.operator_id == OP and e.action == "search"]
    assert len(mine) == 2 * N
    assert {e.outcome for e in mine} == {"invalid"}
    assert {e.detail["code"] for e in mine} == {"DATE_FORMAT", "SEARCH_TOO_BROAD"}
    a = an.analyse(_entries(site))
    assert _refusal_flags(a) == []
    assert a.counts[OP].invalid == 2 * N and a.counts[OP].refused == 0       # information only
    reports = verify_all(site.sec.oplog, {c: site.registers.engine(c) for c in OPLOG})
    assert all(r.ok for r in reports), [str(p) for r in reports for p in r.problems]


def test_a4_purpose_refusals_raise_the_refusal_flag(site):
    with site.registers.juki_uow() as uow:
        uow.repo.apply(juki("10000000011", "番号　花子", "バンゴウ　ハナコ", date(1975, 6, 1), sex="2")
                       .replace(kojin_bango="123456789018"))
    for _ in range(N):
        # 「個人番号を表示」 for 「住民・本人からの問合せへの対応」: the purpose does not need the number
        r = _post(site, "/detail/kojin-bango", {"purpose_code": "inquiry", "juminhyo_code": "10000000011"})
        assert r.status_code == 403
    a = an.analyse(_entries(site))
    flags = _refusal_flags(a)
    assert len(flags) == 1 and len(flags[0].entries) == N
    assert "KOJIN_BANGO_NOT_NEEDED" in flags[0].reason
    assert a.counts[OP].refused == N and a.counts[OP].invalid == 0
    reports = verify_all(site.sec.oplog, {c: site.registers.engine(c) for c in OPLOG})
    assert all(r.ok for r in reports)


def test_a4_input_errors_logged_as_refusals_before_the_distinction_do_not_count_either():
    """Entries written before input errors had an outcome of their own stay as they are (the chain is
    never rewritten); the analysis tells them apart by their code."""
    at = datetime(2026, 10, 5, 1, 0, tzinfo=timezone.utc)
    old = [an.Entry("juki", i, at, OP, "T1", "search", "refused", "inquiry", detail={"code": code})
           for i, code in enumerate(["DATE_FORMAT"] * 4 + ["SEARCH_TOO_BROAD"] * 2 + ["JUMINHYO_CODE_CHECKSUM"], 1)]
    a = an.analyse(old)
    assert _refusal_flags(a) == [] and a.counts[OP].invalid == 7
    forbidden = [an.Entry("juki", 100 + i, at, OP, "T1", "search", "refused", detail={"code": "FORBIDDEN"})
                 for i in range(2)]
    assert len(_refusal_flags(an.analyse(old + forbidden))[0].entries) == 2
    assert a.flags == []
