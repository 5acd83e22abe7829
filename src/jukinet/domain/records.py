"""Records of the two specific personal information files (特定個人情報ファイル, PIA 別添2).

:class:`JukiRecord` is one version of a person in 都道府県知事保存本人確認情報ファイル (D1, 28 items);
:class:`FuhyoRecord` is one version of a person in 都道府県知事保存附票本人確認情報ファイル (D2, 18 items).
The numbers in the field comments are the item numbers of 別添2; ``docs/data-model.md`` maps each
to its database column.

Derived items (外字数, 外字フラグ, 清音化かな氏名) are computed from the received text by
:func:`derive_juki` / :func:`derive_fuhyo`; received text is kept exactly as it came (incl. IVS).

D2 never has a 個人番号 (PIA II(2).2④): :class:`FuhyoRecord` has no such field, and
``tests/unit/test_records.py`` fails if one is added.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Optional
from jukinet import kana, moji

SEX = {"1": "男", "2": "女"}

#: 附票本人確認情報状態区分
FUHYO_STATUS = ("現存", "消除")


@dataclass(frozen=True)
class FormerSurname:
    """旧氏 (住民基本台帳法施行令 第30条の13): 漢字 and ふりがな as received."""

    name: str
    name_kana: str


@dataclass(frozen=True)
class JukiRecord:
    """都道府県知事保存本人確認情報 — one version of one person (別添2 (1), items 1–28)."""

    juminhyo_code: str                      # 1 住民票コード
    name: str                               # 2 漢字氏名
    name_kana: str                          # 4 ふりがな氏名
    birth_date: date                        # 5 生年月日
    sex: str                                # 6 性別 ("1" 男, "2" 女)
    address: str                            # 7 住所
    kojin_bango: Optional[str]              # 9 個人番号
    reason: str                             # 10 異動事由
    change_date: date                       # 11 異動年月日
    municipality_code: str                  # 14 市町村コード
    oaza_code: Optional[str] = None         # 15 大字・字コード
    former_surname: Optional[FormerSurname] = None  # 25 旧氏 漢字, 27 旧氏 ふりがな
    # --- derived or set by the server ---
    name_gaiji_count: int = 0               # 3 外字数(氏名)
    address_gaiji_count: int = 0            # 8 外字数(住所)
    retention_flag: bool = False            # 12 保存期間フラグ (set once removed: the 150-year clock runs)
    name_seion: str = ""                    # 13 清音化かな氏名
    operator_id: Optional[str] = None       # 16 操作者ID (None: automatic intake from CS)
    terminal_id: Optional[str] = None       # 17 操作端末ID
    timestamp: Optional[datetime] = None    # 18 タイムスタンプ
    notified_date: Optional[date] = None    # 19 通知を受けた年月日
    gaiji_flag: bool = False                # 20 外字フラグ
    deleted: bool = False                   # 21 削除フラグ (消除者)
    update_seq: int = 0                     # 22 更新順番号
    name_gaiji_change_seq: int = 0          # 23 氏名外字変更連番
    address_gaiji_change_seq: int = 0       # 24 住所外字変更連番
    former_surname_gaiji_count: int = 0     # 26 旧氏 外字数
    former_surname_gaiji_change_seq: int = 0  # 28 旧氏 外字変更連番

    def replace(self, **changes) -> "JukiRecord":
        return dataclasses.replace(self, **changes)

    @classmethod
    def trusted(cls, **values) -> "JukiRecord":
        """The record ``JukiRecord(**values)`` would make, built without the frozen dataclass's
        ``object.__setattr__`` per field (about 10× faster): for values already derived and checked by
        the caller, i.e. the seed generator (issue 16). ``__init__`` validates nothing, so nothing is
        skipped; an unknown or missing field is still refused."""
        return _trusted(cls, values)


@dataclass(frozen=True)
class FuhyoRecord:
    """都道府県知事保存附票本人確認情報 — one version of one person (別添2 (2)ア, items 1–18).

    There is no 個人番号 here, by law (PIA II(2).2④).
    """

    juminhyo_code: str                      # 1 住民票コード
    name: str                               # 2 氏名 漢字
    name_kana: str                          # 4 氏名 ふりがな
    birth_date: date                        # 5 生年月日
    sex: str                                # 6 性別
    address_municipality_code: Optional[str]  # 7 住所 市町村コード (None when abroad)
    address: Optional[str]                  # 8 住所 漢字 (None when abroad)
    change_date: date                       # 12 異動年月日
    fuhyo_municipality_code: str            # 14 附票管理市町村コード
    status: str = "現存"                    # 15 附票本人確認情報状態区分
    last_address: Optional[str] = None      # 10 最終住所 漢字 (国外転出者)
    old_juminhyo_code: Optional[str] = None  # 13 旧住民票コード
    notification_kind: str = "記載"         # 18 通知区分 (記載 | 修正 | 消除), with the reason
    reason: str = "記載"                    # the fuhyo 異動事由 (see reasons.FUHYO_REASONS)
    # --- derived or set by the server ---
    name_gaiji_count: int = 0               # 3 氏名 外字数
    address_gaiji_count: int = 0            # 9 住所 外字数
    last_address_gaiji_count: int = 0       # 11 最終住所 外字数
    gaiji_flag: bool = False                # 16 外字フラグ
    gaiji_pattern: str = "000"              # 17 外字パターン
    name_seion: str = ""                    # search key (not a 別添2 item; derived, never shown)
    timestamp: Optional[datetime] = None
    notified_date: Optional[date] = None
    update_seq: int = 0

    def replace(self, **changes) -> "FuhyoRecord":
        return dataclasses.replace(self, **changes)

    @classmethod
    def trusted(cls, **values) -> "FuhyoRecord":
        """The record ``FuhyoRecord(**values)`` would make, built without the frozen dataclass's
        ``object.__setattr__`` per field (about 10× faster): for values already derived and checked by
        the caller, i.e. the seed generator (issue 16). ``__init__`` validates nothing, so nothing is
        skipped; an unknown or missing field is still refused."""
        return _trusted(cls, values)


_TRUSTED: dict[type, tuple[frozenset, frozenset, dict]] = {}


def _trusted(cls, values: dict):
    spec = _TRUSTED.get(cls)
    if spec is None:
        fields = dataclasses.fields(cls)
        assert all(f.default_factory is dataclasses.MISSING for f in fields) and not hasattr(cls, "__post_init__")
        spec = _TRUSTED[cls] = (frozenset(f.name for f in fields),
                                frozenset(f.name for f in fields if f.default is dataclasses.MISSING),
                                {f.name: f.default for f in fields if f.default is not dataclasses.MISSING})
    names, required, defaults = spec
    keys = values.keys()
    if not keys <= names or not required <= keys:
        raise TypeError(f"{cls.__name__}.trusted: fields {sorted(keys - names)} unknown, {sorted(required - keys)} missing")
    obj = object.__new__(cls)
    d = obj.__dict__
    d.update(defaults)
    d.update(values)
    return obj


def derive_juki(r: JukiRecord) -> JukiRecord:
    """Compute the derived items (3, 8, 13, 20, 26) from the received text."""
    fs = r.former_surname
    name_g = moji.count_gaiji(r.name)
    addr_g = moji.count_gaiji(r.address)
    fs_g = moji.count_gaiji(fs.name) if fs else 0
    return r.replace(
        name_gaiji_count=name_g,
        address_gaiji_count=addr_g,
        former_surname_gaiji_count=fs_g,
        gaiji_flag=bool(name_g or addr_g or fs_g),
        name_seion=kana.seion(r.name_kana),
    )


def derive_fuhyo(r: FuhyoRecord) -> FuhyoRecord:
    """Compute the derived items (3, 9, 11, 16, 17) from the received text."""
    name_g = moji.count_gaiji(r.name)
    addr_g = moji.count_gaiji(r.address)
    last_g = moji.count_gaiji(r.last_address)
    return r.replace(
        name_gaiji_count=name_g,
        address_gaiji_count=addr_g,
        last_address_gaiji_count=last_g,
        gaiji_flag=bool(name_g or addr_g or last_g),
        gaiji_pattern=moji.gaiji_pattern(r.name, r.address, r.last_address),
        name_seion=kana.seion(r.name_kana),
    )
