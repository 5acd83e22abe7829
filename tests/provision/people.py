"""Synthetic persons and operators of the 事務2/事務4 tests (all invented)."""

from __future__ import annotations

from datetime import date

from jukinet import codes
from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.security.model import Operator


def jcode(n: int) -> str:
    first = f"{3000000000 + n:010d}"
    return first + codes.juminhyo_code_check_digit(first)


def kbango(n: int) -> str:
    first = f"{40000000000 + n:011d}"
    return first + codes.kojin_bango_check_digit(first)


TARO, HANAKO, ICHIRO_TSU, ICHIRO_YOK, HAJIME, JIRO, ABROAD_ONLY = (jcode(i) for i in range(1, 8))
TARO_NO = kbango(1)


def juki(code, name, kana, birth, sex="1", address="三重県津市広明町13番地", kojin=None, **kw) -> JukiRecord:
    return derive_juki(JukiRecord(juminhyo_code=code, name=name, name_kana=kana, birth_date=birth, sex=sex,
                                  address=address, kojin_bango=kojin, reason=kw.pop("reason", "国内転入"),
                                  change_date=date(2020, 4, 1), municipality_code="242012", **kw))


JUKI = [
    juki(TARO, "山田　太郎", "ヤマダ　タロウ", date(1980, 4, 1), kojin=TARO_NO),
    juki(HANAKO, "山田　花子", "ヤマダ　ハナコ", date(1982, 7, 7), sex="2", kojin=kbango(2)),
    juki(ICHIRO_TSU, "佐藤　一郎", "サトウ　イチロウ", date(1970, 1, 1), kojin=kbango(3)),
    juki(ICHIRO_YOK, "佐藤　一郎", "サトウ　イチロウ", date(1970, 1, 1), address="三重県四日市市諏訪町1番5号",
         kojin=kbango(4)),
    juki(HAJIME, "山田　一", "ヤマダ　ハジメ", date(1930, 5, 5), kojin=kbango(5), deleted=True, retention_flag=True,
         reason="死亡"),
    juki(JIRO, "𠮷田　次郎", "ヨシダ　ジロウ", date(2001, 3, 3), kojin=None),
]


def fuhyo(code, name, kana, birth, sex="1", last="三重県津市広明町13番地") -> FuhyoRecord:
    return derive_fuhyo(FuhyoRecord(juminhyo_code=code, name=name, name_kana=kana, birth_date=birth, sex=sex,
                                    address_municipality_code=None, address=None, last_address=last,
                                    change_date=date(2024, 1, 5), fuhyo_municipality_code="242012",
                                    reason="国外転出", notification_kind="修正"))


FUHYO = [
    fuhyo(TARO, "山田　太郎", "ヤマダ　タロウ", date(1980, 4, 1)),
    fuhyo(ABROAD_ONLY, "鈴木　三郎", "スズキ　サブロウ", date(1975, 9, 9)),   # not in D1: no 個人番号 to add
]


def seed(registers) -> None:
    with registers.juki_uow() as uow:
        for p in JUKI:
            uow.repo.apply(p)
    with registers.fuhyo_uow() as uow:
        for p in FUHYO:
            uow.repo.apply(p)


def operator(oid="OP-PROV", roles=("operator",), registers=("juki", "fuhyo"), affairs=("provision", "national"),
             status="active") -> Operator:
    return Operator(oid, f"{oid} 担当", "地域連携・交通部", tuple(roles), tuple(registers), tuple(affairs), status, False)


OPERATOR = operator()
JUKI_ONLY = operator("OP-JUKI", registers=("juki",))
SEARCHER = operator("OP-SEARCH", affairs=("search",))
MANAGER = operator("MGR-1", roles=("manager",), affairs=())
ADMIN = operator("ADM-1", roles=("admin",), registers=(), affairs=())
