"""Synthetic persons for the consistency-check tests (imported by conftest and the tests)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

from jukinet import codes
from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki

TSU, YOKKAICHI = "242012", "242021"
T0 = datetime(2026, 11, 1, 0, 0, tzinfo=timezone.utc)   # when the persons were stored
AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)  # when the CS took its snapshot
NOW = datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)    # when the check runs


def code_for(i: int) -> str:
    first = f"{1000000000 + i * 7919:010d}"
    return first + codes.juminhyo_code_check_digit(first)


def bango_for(i: int) -> str:
    first = f"{30000000000 + i * 104729:011d}"
    return first + codes.kojin_bango_check_digit(first)


def juki(i: int, municipality: str = TSU, **kw) -> JukiRecord:
    rng = random.Random(i)
    base = dict(juminhyo_code=code_for(i), name=f"三重　太郎{i}", name_kana="ミエ　タロウ",
                birth_date=date(1950 + rng.randrange(60), 1 + rng.randrange(12), 1 + rng.randrange(28)),
                sex=rng.choice("12"), address=f"三重県津市広明町{i}番地", kojin_bango=bango_for(i), reason="国内転入",
                change_date=date(2026, 10, 1), municipality_code=municipality, oaza_code="0012",
                timestamp=T0, notified_date=date(2026, 11, 1), update_seq=i + 1)
    base.update(kw)
    return derive_juki(JukiRecord(**base))


def fuhyo(i: int, municipality: str = TSU, **kw) -> FuhyoRecord:
    base = dict(juminhyo_code=code_for(i), name=f"三重　花子{i}", name_kana="ミエ　ハナコ", birth_date=date(1980, 4, 1),
                sex="2", address_municipality_code="231061", address=f"愛知県名古屋市中区栄{i}丁目",
                change_date=date(2026, 10, 1), fuhyo_municipality_code=municipality, timestamp=T0,
                notified_date=date(2026, 11, 1), update_seq=i + 1)
    base.update(kw)
    return derive_fuhyo(FuhyoRecord(**base))


