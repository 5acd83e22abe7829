"""Items that may be provided, the keys a requester sends, and 突合 (P2).

**Items.** An affair lists the items it may receive (its ``items``); a provision returns exactly
those and nothing else. The item names are the same in the catalogue, the API, the batch result
file and the provision record (which stores item *names*, never values).

**Keys.** A requester identifies a person by exactly one key: 住民票コード, 個人番号 (only for an
affair for which 番号法 allows it, and never for 附票 — D2 has no 個人番号), or 4情報 (氏名 and
生年月日 required; 性別 and 住所 narrow the candidates). Whatever 4情報 the requester sends are
compared with the record found (突合) and the result is reported item by item: 一致 / 不一致.

>>> k = parse_keys(name="山田 太郎", birth_date="昭和55年4月1日", sex="男")
>>> k.kind, k.four.name, k.four.birth_date.isoformat(), k.four.sex
('four', '山田 太郎', '1980-04-01', '1')
>>> parse_keys(juminhyo_code="52601815907", name="山田太郎").kind
'juminhyo_code'
>>> parse_keys()
Traceback (most recent call last):
...
jukinet.errors.JukinetError: KEY_REQUIRED: 住民票コード・個人番号・4情報 (氏名と生年月日) のいずれかを指定してください。
>>> same_name("山田　太郎", "山田太郎"), same_name("ヤマダ タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"), same_address("三重県津市広明町１３番地", "津市広明町13番地")
(True, True, True)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Optional

from jukinet import codes, kana, wareki
from jukinet.errors import JukinetError

#: items of 本人確認情報 (D1) that an affair may receive (住基法 第30条の6, 第7条; PIA II(1).5)
JUKI_ITEMS: dict[str, str] = {
    "juminhyo_code": "住民票コード",
    "name": "氏名",
    "name_kana": "ふりがな",
    "former_surname": "旧氏",
    "birth_date": "生年月日",
    "sex": "性別",
    "address": "住所",
    "kojin_bango": "個人番号",
    "reason": "異動事由",
    "change_date": "異動年月日",
}

#: items of 附票本人確認情報 (D2), plus 個人番号 fetched from D1 by 住民票コード (P6) where 番号法 allows
FUHYO_ITEMS: dict[str, str] = {
    "juminhyo_code": "住民票コード",
    "name": "氏名",
    "name_kana": "ふりがな",
    "birth_date": "生年月日",
    "sex": "性別",
    "address": "住所",
    "last_address": "最終住所",
    "reason": "異動事由",
    "change_date": "異動年月日",
    "kojin_bango": "個人番号",
}

ITEMS = {"juki": JUKI_ITEMS, "fuhyo": FUHYO_ITEMS}
FOUR = ("name", "birth_date", "sex", "address")
FOUR_LABELS = {"name": "氏名", "birth_date": "生年月日", "sex": "性別", "address": "住所"}
MATCH, MISMATCH = "一致", "不一致"

_SPACES = re.compile(r"\s+")
_PREF = re.compile(r"^.{2,3}?[都道府県]")
_HYPHENS = str.maketrans({c: "-" for c in "‐‑‒–—―−－ｰ"})
_SEX_WORDS = {"1": "1", "2": "2", "男": "1", "女": "2", "男性": "1", "女性": "2"}


def err(code: str, message: str, field: str | None = None) -> JukinetError:
    return JukinetError(code, message, field=field)


def labels(register: str, items) -> list[str]:
    table = ITEMS[register]
    return [table.get(i, i) for i in items]


def check_items(register: str, allowed: tuple[str, ...], requested: Optional[list[str]]) -> tuple[str, ...]:
    """The items to provide: those requested (each allowed for the affair), or all the affair's."""
    if not requested:
        return tuple(allowed)
    out = []
    for i in requested:
        if i not in ITEMS[register]:
            raise err("ITEM_UNKNOWN", "項目の指定が正しくありません。", "items")
        if i not in allowed:
            raise err("ITEM_NOT_ALLOWED", "この事務で提供できない項目が指定されています。", "items")
        if i not in out:
            out.append(i)
    return tuple(i for i in allowed if i in out)


# ------------------------------------------------------------------ keys

@dataclass(frozen=True)
class Four:
    """4情報 as supplied by the requester (any may be missing)."""

    name: Optional[str] = None
    birth_date: Optional[date] = None
    sex: Optional[str] = None
    address: Optional[str] = None

    def supplied(self) -> tuple[str, ...]:
        return tuple(f for f in FOUR if getattr(self, f) not in (None, ""))

    def digest_keys(self) -> dict:
        return {f"four_{f}": (getattr(self, f).isoformat() if f == "birth_date" else normalize_name(self.name)
                              if f == "name" else getattr(self, f)) for f in self.supplied()}


@dataclass(frozen=True)
class Keys:
    kind: str                         # juminhyo_code | kojin_bango | four
    juminhyo_code: Optional[str] = None
    kojin_bango: Optional[str] = None
    four: Four = Four()

    def digest_keys(self) -> dict:
        """The keys as logged (keyed digests of these values, never the values)."""
        d = {}
        if self.juminhyo_code:
            d["juminhyo_code"] = self.juminhyo_code
        if self.kojin_bango:
            d["kojin_bango"] = self.kojin_bango
        d.update(self.four.digest_keys())
        return d


def parse_date(v, field: str = "birth_date") -> Optional[date]:
    if v in (None, ""):
        return None
    if isinstance(v, date):
        return v
    text = str(v).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return wareki.parse_wareki(text)
    except JukinetError:
        raise err("DATE_FORMAT", "生年月日は 西暦 (1980-04-01) か 和暦 (昭和55年4月1日) で指定してください。", field) from None


def parse_sex(v) -> Optional[str]:
    if v in (None, ""):
        return None
    s = _SEX_WORDS.get(str(v).strip())
    if s is None:
        raise err("SEX_FORMAT", "性別は 1 (男) または 2 (女) で指定してください。", "sex")
    return s


def parse_keys(*, juminhyo_code=None, kojin_bango=None, name=None, birth_date=None, sex=None,
               address=None) -> Keys:
    """Validate what the requester sent; raise a :class:`JukinetError` naming the item at fault."""
    name = _SPACES.sub(" ", str(name).strip()) if name not in (None, "") else None
    address = str(address).strip() if address not in (None, "") else None
    if name is not None and len(name) > 60:
        raise err("NAME_TOO_LONG", "氏名が長すぎます。", "name")
    if address is not None and len(address) > 120:
        raise err("ADDRESS_TOO_LONG", "住所が長すぎます。", "address")
    four = Four(name, parse_date(birth_date), parse_sex(sex), address)
    jc = codes.validate_juminhyo_code(codes.compact(juminhyo_code)) if juminhyo_code not in (None, "") else None
    kb = codes.validate_kojin_bango(codes.compact(kojin_bango)) if kojin_bango not in (None, "") else None
    if jc and kb:
        raise err("KEYS_CONFLICT", "住民票コードと個人番号は同時に指定できません。", "kojin_bango")
    if jc:
        return Keys("juminhyo_code", juminhyo_code=jc, four=four)
    if kb:
        return Keys("kojin_bango", kojin_bango=kb, four=four)
    if four.name and four.birth_date:
        if kana.is_kana(four.name) and not kana.seion(four.name):
            raise err("KANA_FORMAT", "ふりがなはカタカナで入力してください。", "name")
        return Keys("four", four=four)
    if four.supplied():
        raise err("KEY_REQUIRED", "4情報で照会するときは氏名と生年月日を指定してください。",
                  "birth_date" if four.name else "name")
    raise err("KEY_REQUIRED", "住民票コード・個人番号・4情報 (氏名と生年月日) のいずれかを指定してください。")


# ------------------------------------------------------------------ 突合

def normalize_name(s: Optional[str]) -> str:
    return "".join(unicodedata.normalize("NFKC", s or "").split())


def same_name(on_file: Optional[str], supplied: str, on_file_kana: Optional[str] = None) -> bool:
    """氏名: kanji compared as written (spaces ignored, width folded); kana on the 清音化 key."""
    if kana.is_kana(supplied):
        ref = on_file_kana if on_file_kana else on_file
        return bool(ref) and kana.seion(ref) == kana.seion(supplied)
    return normalize_name(on_file) == normalize_name(supplied)


def normalize_address(s: Optional[str]) -> str:
    return "".join(unicodedata.normalize("NFKC", s or "").translate(_HYPHENS).split())


def same_address(on_file: Optional[str], supplied: str) -> bool:
    """住所: width, spaces and hyphen variants folded; the prefecture may be left out."""
    a, b = normalize_address(on_file), normalize_address(supplied)
    if not a:
        return False
    if not _PREF.match(b):
        a = _PREF.sub("", a, count=1)
    return a == b


def match(view: dict, four: Four) -> dict[str, str]:
    """突合: each 4情報 item the requester supplied, compared with the record — 一致 / 不一致."""
    out = {}
    if four.name:
        out["name"] = MATCH if same_name(view.get("name"), four.name, view.get("name_kana")) else MISMATCH
    if four.birth_date:
        out["birth_date"] = MATCH if view.get("birth_date") == four.birth_date.isoformat() else MISMATCH
    if four.sex:
        out["sex"] = MATCH if view.get("sex") == four.sex else MISMATCH
    if four.address:
        out["address"] = MATCH if same_address(view.get("address") or view.get("last_address"),
                                                four.address) else MISMATCH
    return out


# ------------------------------------------------------------------ record → view

def _iso(v) -> Optional[str]:
    return v.isoformat() if isinstance(v, date) else (str(v) if v not in (None, "") else None)


def row_view(register: str, row, cipher=None) -> dict:
    """The view of a ``*_current`` row straight from the database (no record object in between).
    D1 rows need the installation's ``cipher`` to open the 個人番号 (ADR 0025)."""
    m = row._mapping
    if register == "juki":
        fs = m["former_surname"]
        return {"juminhyo_code": m["juminhyo_code"], "name": m["name"], "name_kana": m["name_kana"],
                "former_surname": f"{fs}（{m['former_surname_kana']}）" if fs is not None else None,
                "birth_date": _iso(m["birth_date"]), "sex": m["sex"], "address": m["address"],
                "kojin_bango": cipher.open_value(m), "reason": m["reason"], "change_date": _iso(m["change_date"]),
                "removed": bool(m["deleted"])}
    return {"juminhyo_code": m["juminhyo_code"], "name": m["name"], "name_kana": m["name_kana"],
            "birth_date": _iso(m["birth_date"]), "sex": m["sex"], "address": m["address"],
            "last_address": m["last_address"], "reason": m["reason"], "change_date": _iso(m["change_date"]),
            "removed": m["status"] != "現存"}


def national_view(register: str, d: dict) -> dict:
    """A record answered by the national server (事務4): only what it returns (no 旧氏, 異動事由 …)."""
    v = {"juminhyo_code": d.get("juminhyo_code"), "name": d.get("name"), "name_kana": d.get("name_kana"),
         "birth_date": d.get("birth_date"), "sex": d.get("sex"), "address": d.get("address"),
         "removed": d.get("status") not in (None, "", "現存"), "prefecture": d.get("prefecture"),
         "municipality_code": d.get("municipality_code")}
    if register == "juki":
        v["kojin_bango"] = d.get("kojin_bango")
    return v


def select(view: dict, items: tuple[str, ...]) -> dict:
    return {i: view.get(i) for i in items}
