"""附票 provision with 個人番号 (P6): fetched from D1 by 住民票コード through one narrow, logged path into a
temporary area outside D2, erased after the delivery window; D2 never holds a 個人番号; no other path."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import traceback
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, inspect, select, text

import jukinet
from jukinet import codes
from jukinet.errors import JukinetError
from jukinet.provision.batch import BatchCommand, BatchService
from jukinet.store.repository import JST
from jukinet.provision.kojin_bango_link import temp_store
from jukinet.provision.media import decrypt_file
from jukinet.provision.service import ProvideCommand
from jukinet.store.tables_security import OPLOG

from . import people as P

SRC = Path(jukinet.__file__).parent
_TOKEN_12 = re.compile(r"(?<![0-9A-Za-z])\d{12}(?![0-9A-Za-z])")


def provide(world, **kw):
    return world.svc.provide(ProvideCommand(**kw), P.OPERATOR, "T0001")


def batch_with_numbers(world, tmp_path):
    path = tmp_path / "fuhyo.csv"
    path.write_text("依頼番号,住民票コード,氏名,生年月日\n"
                    f"F-1,{P.TARO},,\nF-2,{P.ABROAD_ONLY},,\nF-3,,スズキ　サブロウ,1975-09-09\n", encoding="cp932")
    res = BatchService(world.svc).run(BatchCommand("SOMU", "SOMU-KENZEI-F", path), P.OPERATOR, "T0001")
    out = io.BytesIO()
    with open(res.output_path, "rb") as f:
        decrypt_file(f, out, res.password)
    return res, list(csv.DictReader(io.StringIO(out.getvalue().decode())))


def every_value(engine):
    """(table, column, value as text) of every non-null cell of every table of a database."""
    insp = inspect(engine)
    with engine.connect() as conn:
        for table in insp.get_table_names():
            cols = [c["name"] for c in insp.get_columns(table)]
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for c, v in zip(cols, row):
                    if v is not None:
                        yield table, c, v.hex() if isinstance(v, (bytes, memoryview)) else str(v)


def oplog(world, chain, action=None):
    log, _ = OPLOG[chain]
    q = select(log).order_by(log.c.seq)
    if action:
        q = q.where(log.c.action == action)
    with world.registers.engine(chain).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def test_p6_d2_never_holds_kojin_bango(world, tmp_path):
    single = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI-F", juminhyo_code=P.TARO)
    assert single.values["kojin_bango"] == P.TARO_NO and single.number_included     # the number was provided …
    res, rows = batch_with_numbers(world, tmp_path)
    assert rows[0]["個人番号"] == P.TARO_NO and rows[1]["個人番号"] == "" and rows[2]["個人番号"] == ""
    numbers = {p.kojin_bango for p in P.JUKI if p.kojin_bango}
    found = []
    for table, col, value in every_value(world.registers.fuhyo_engine):     # … and D2 holds none
        for tok in _TOKEN_12.findall(value):
            if codes.is_valid_kojin_bango(tok):
                found.append((table, col))
        for n in numbers:
            if n in value:
                found.append((table, col, "known"))
    assert found == [], found
    if world.backend == "sqlite":      # not even in free pages or the write-ahead log
        db = Path(world.registers.fuhyo_engine.url.database)
        for f in (db, db.with_name(db.name + "-wal")):
            if f.exists():
                assert P.TARO_NO.encode() not in f.read_bytes()
    # the temporary area is outside the D2 database, encrypted
    area = world.config.resolve(world.config.provision.kojin_bango_temp_dir)
    files = list(area.iterdir())
    assert len(files) == 2 and all(P.TARO_NO.encode() not in f.read_bytes() for f in files)
    assert not str(area).startswith(str(Path(world.registers.fuhyo_engine.url.database or "/nonexistent")))


def test_p6_number_only_where_bango_law_allows(world):
    r = provide(world, requester_code="KANKYO", affair_code="KANKYO-RYOKEN-F", juminhyo_code=P.TARO)
    assert r.provided and "kojin_bango" not in r.values and not r.number_included
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="KANKYO", affair_code="KANKYO-RYOKEN-F", juminhyo_code=P.TARO,
                items=["kojin_bango"])
    assert e.value.code == "ITEM_NOT_ALLOWED"
    assert oplog(world, "juki", "kojin_bango_link") == []      # D1 was not touched
    assert temp_store(world.config, world.svc.keyring).count() == 0


def test_p6_link_is_logged_in_both_registers(world):
    provide(world, requester_code="KODOMO", affair_code="KODOMO-JIFU-F", name="ヤマダ タロウ", birth_date="1980-04-01",
            case_ref="KJ-1")
    j = oplog(world, "juki", "kojin_bango_link")
    f = oplog(world, "fuhyo", "kojin_bango_link")
    assert len(j) == 1 and len(f) == 1
    jd, fd = json.loads(j[0]["detail"]), json.loads(f[0]["detail"])
    assert jd["ref"] == fd["ref"] and jd["affair"] == fd["affair"] == "KODOMO-JIFU-F"
    assert jd["to"] == "fuhyo" and fd["from"] == "juki" and jd["found"] == 1 and fd["provided"] == 1
    assert j[0]["operator_id"] == f[0]["operator_id"] == "OP-PROV" and j[0]["terminal_id"] == "T0001"
    assert P.TARO not in j[0]["keys"] and P.TARO_NO not in json.dumps(j + f, default=str)
    prov = oplog(world, "fuhyo", "provision")[-1]
    assert json.loads(prov["detail"])["number_included"] is True


def test_p6_person_without_a_d1_record_gets_no_number(world):
    r = provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI-F", juminhyo_code=P.ABROAD_ONLY)
    assert r.provided and r.values["kojin_bango"] is None and not r.number_included and r.number_note
    rec = json.loads(oplog(world, "juki", "kojin_bango_link")[-1]["detail"])
    assert rec["requested"] == 1 and rec["found"] == 0


def test_p6_temporary_area_is_erased_after_the_delivery_window(world):
    from jukinet import retention

    provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI-F", juminhyo_code=P.TARO)
    store = temp_store(world.config, world.svc.keyring)
    assert store.count() == 1
    window = world.config.provision.kojin_bango_temp_days
    assert 0 < window < 365
    (rep,) = retention.run(world.registers, only=["fuhyo_kojin_bango_temp"], pause_seconds=0)
    assert rep.status == "completed" and rep.erased == 0 and store.count() == 1
    later = datetime.now(JST).date() + timedelta(days=window + 1)   # the retention job counts JST days
    (rep,) = retention.run(world.registers, only=["fuhyo_kojin_bango_temp"], today=later, pause_seconds=0)
    assert rep.erased == 1 and store.count() == 0
    world.config.provision.kojin_bango_temp_days = 365
    with pytest.raises(JukinetError) as e:
        provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI-F", juminhyo_code=P.TARO)
    assert e.value.code == "CONFIG_INVALID"


# ------------------------------------------------------------------ no other path between the registers

_OPEN = {reg: re.compile(rf"""\b{reg}_uow\s*\(|\b{reg}_engine\b|\b(?:uow|engine)\(\s*["']{reg}["']""")
         for reg in ("juki", "fuhyo")}

#: modules that open both register databases explicitly, and why that is not a path between them
ALLOWED_BOTH = {
    "store/registers.py": "defines the engines and units of work",
    "seed/populate.py": "writes synthetic persons into both (generation; reads neither)",
    "sim/cs.py": "the CS simulator (a peer outside the server) reading test data",
    "provision/kojin_bango_link.py": "the P6 path: 個人番号 from D1 by 住民票コード for a 附票 provision",
}


def test_p6_only_the_link_module_opens_both_registers():
    both = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("store/migrations/"):
            continue
        src = path.read_text(encoding="utf-8")
        ast.parse(src)
        if all(_OPEN[reg].search(src) for reg in ("juki", "fuhyo")):
            both[rel] = True
    unexpected = sorted(set(both) - set(ALLOWED_BOTH))
    assert not unexpected, (f"{unexpected} open both the juki and the fuhyo register: PIA III.3 R1 allows only the "
                            "paths of provision/kojin_bango_link.py — route through it, or justify in ALLOWED_BOTH")
    assert _OPEN["juki"].search((SRC / "provision" / "kojin_bango_link.py").read_text(encoding="utf-8"))
    # within 事務2, nothing but the link module names the juki register explicitly
    for path in sorted((SRC / "provision").glob("*.py")):
        if path.name != "kojin_bango_link.py":
            assert not _OPEN["juki"].search(path.read_text(encoding="utf-8")), path.name


def test_p6_at_run_time_d1_is_opened_for_a_fuhyo_provision_only_by_the_link(world, tmp_path):
    opened = []

    def on_checkout(*_a):
        opened.append([f.filename for f in traceback.extract_stack()])

    event.listen(world.registers.juki_engine, "checkout", on_checkout)
    try:
        provide(world, requester_code="KANKYO", affair_code="KANKYO-RYOKEN-F", juminhyo_code=P.TARO)
        assert opened == []                       # without 個人番号: D1 is not touched at all
        provide(world, requester_code="SOMU", affair_code="SOMU-KENZEI-F", juminhyo_code=P.TARO)
        batch_with_numbers(world, tmp_path)
    finally:
        event.remove(world.registers.juki_engine, "checkout", on_checkout)
    assert len(opened) >= 2
    for stack in opened:
        assert any(f.endswith("provision/kojin_bango_link.py") for f in stack)
