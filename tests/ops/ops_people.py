"""Synthetic versions with chosen dates, for the retention and statistics tests."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import insert

from jukinet import codes
from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.store.repository import JST, JukiRepository, fuhyo_to_row
from jukinet.store.tables import fuhyo_current, fuhyo_history, juki_current, juki_history

TSU, YOKKAICHI = "242012", "242021"


def code_for(i: int) -> str:
    first = f"{2000000000 + i * 7919:010d}"
    return first + codes.juminhyo_code_check_digit(first)


def jst(d: date, hour: int = 12) -> datetime:
    """An instant on day ``d`` in Japan (UTC-aware)."""
    return datetime(d.year, d.month, d.day, hour, tzinfo=JST).astimezone(timezone.utc)


def juki(i: int, *, notified: date, municipality: str = TSU, reason: str = "国内転入", deleted: bool = False,
         seq: int | None = None) -> JukiRecord:
    return derive_juki(JukiRecord(
        juminhyo_code=code_for(i), name=f"三重　太郎{i}", name_kana="ミエ　タロウ", birth_date=date(1850, 1, 1),
        sex="1", address=f"三重県津市広明町{i}番地", kojin_bango=None, reason=reason, change_date=notified,
        municipality_code=municipality, timestamp=jst(notified), notified_date=notified, deleted=deleted,
        retention_flag=deleted, update_seq=seq if seq is not None else i + 1))


def fuhyo(i: int, *, notified: date, municipality: str = TSU, reason: str = "記載", status: str = "現存",
          seq: int | None = None) -> FuhyoRecord:
    return derive_fuhyo(FuhyoRecord(
        juminhyo_code=code_for(i), name=f"三重　花子{i}", name_kana="ミエ　ハナコ", birth_date=date(1850, 1, 1), sex="2",
        address_municipality_code="231061", address="愛知県名古屋市中区栄1丁目", change_date=notified,
        fuhyo_municipality_code=municipality, status=status, reason=reason,
        notification_kind={"記載": "記載", "消除": "消除"}.get(reason, "修正"), timestamp=jst(notified),
        notified_date=notified, update_seq=seq if seq is not None else i + 1))


def _juki_to_row(conn):
    return JukiRepository.codec(conn)[0]       # the 個人番号 sealed, as the repository stores it (ADR 0025)


def put_current(conn, rec) -> None:
    table, to_row = (juki_current, _juki_to_row(conn)) if isinstance(rec, JukiRecord) else (fuhyo_current, fuhyo_to_row)
    conn.execute(insert(table).values(**to_row(rec)))


def put_history(conn, rec, *, superseded: datetime, by_seq: int, by_reason: str = "転居") -> None:
    table, to_row = (juki_history, _juki_to_row(conn)) if isinstance(rec, JukiRecord) else (fuhyo_history, fuhyo_to_row)
    row = to_row(rec)
    row.update(superseded_at=superseded, superseded_by_seq=by_seq, superseded_by_reason=by_reason)
    conn.execute(insert(table).values(**row))
