"""Repositories of both registers: read the current record, apply a new version, bulk-load.

:meth:`JukiRepository.apply` is the one way a version enters the register: the previous version
(if any) is copied to the history table with who/when/why it was superseded, the current row is
replaced, and the register's 更新順番号 counter advances — all on the caller's connection, so in
the caller's transaction (the unit of work).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Optional

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from jukinet.domain.records import FormerSurname, FuhyoRecord, JukiRecord
from jukinet.store.atrest import cipher_of
from jukinet.store.bulk import write_rows
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, juki_counters, juki_current,
                                  juki_history)


#: 日本標準時: 通知を受けた年月日 is the date in Japan, not in UTC.
JST = timezone(timedelta(hours=9), "JST")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_date(v) -> date:
    return date.fromisoformat(v) if isinstance(v, str) else v


def _as_utc(v: Optional[datetime]) -> Optional[datetime]:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v.replace(tzinfo=timezone.utc) if v is not None and v.tzinfo is None else v


def juki_to_row(r: JukiRecord) -> dict:
    """The record as a row dict with the 個人番号 in the clear (seal it before it is stored:
    :func:`juki_row_codec`)."""
    fs = r.former_surname
    return {
        "juminhyo_code": r.juminhyo_code, "name": r.name, "name_gaiji_count": r.name_gaiji_count,
        "name_kana": r.name_kana, "birth_date": r.birth_date, "sex": r.sex, "address": r.address,
        "address_gaiji_count": r.address_gaiji_count, "kojin_bango": r.kojin_bango, "reason": r.reason,
        "change_date": r.change_date, "retention_flag": r.retention_flag, "name_seion": r.name_seion,
        "municipality_code": r.municipality_code, "oaza_code": r.oaza_code, "operator_id": r.operator_id,
        "terminal_id": r.terminal_id, "timestamp": r.timestamp, "notified_date": r.notified_date,
        "gaiji_flag": r.gaiji_flag, "deleted": r.deleted, "update_seq": r.update_seq,
        "name_gaiji_change_seq": r.name_gaiji_change_seq, "address_gaiji_change_seq": r.address_gaiji_change_seq,
        "former_surname": fs.name if fs else None, "former_surname_kana": fs.name_kana if fs else None,
        "former_surname_gaiji_count": r.former_surname_gaiji_count,
        "former_surname_gaiji_change_seq": r.former_surname_gaiji_change_seq,
    }


def row_to_juki(m) -> JukiRecord:
    m = dict(m._mapping) if hasattr(m, "_mapping") else dict(m)
    fs = FormerSurname(m["former_surname"], m["former_surname_kana"]) if m["former_surname"] is not None else None
    for k in ("former_surname", "former_surname_kana", "history_id", "superseded_at", "superseded_by_seq",
              "superseded_by_reason"):
        m.pop(k, None)
    m["birth_date"] = _as_date(m["birth_date"])
    m["change_date"] = _as_date(m["change_date"])
    m["notified_date"] = _as_date(m["notified_date"])
    m["timestamp"] = _as_utc(m["timestamp"])
    return JukiRecord(former_surname=fs, **m)


def juki_row_codec(conn: Connection):
    """(to_row, from_row) of D1 on ``conn``: the 個人番号 is sealed on write and opened on read, so
    records stay plaintext in memory and rows never hold it in the clear (ADR 0025)."""
    cipher = cipher_of(conn)
    return (lambda r: cipher.seal_row(juki_to_row(r))), (lambda m: row_to_juki(cipher.open_row(m)))


def fuhyo_to_row(r: FuhyoRecord) -> dict:
    return {c.name: getattr(r, c.name) for c in fuhyo_current.columns}


def row_to_fuhyo(m) -> FuhyoRecord:
    m = dict(m._mapping) if hasattr(m, "_mapping") else dict(m)
    for k in ("history_id", "superseded_at", "superseded_by_seq", "superseded_by_reason"):
        m.pop(k, None)
    for k in ("birth_date", "change_date", "notified_date"):
        m[k] = _as_date(m[k])
    m["timestamp"] = _as_utc(m["timestamp"])
    return FuhyoRecord(**m)


class _Repository:
    current = history = counters = None
    to_row = from_row = None

    def __init__(self, conn: Connection):
        self.conn = conn
        self._to_row, self._from_row = self.codec(conn)

    @classmethod
    def codec(cls, conn: Connection):
        return cls.to_row, cls.from_row

    def get(self, juminhyo_code: str):
        """The latest version for the code (current or removed), or None."""
        row = self.conn.execute(select(self.current).where(self.current.c.juminhyo_code == juminhyo_code)).first()
        return self._from_row(row) if row else None

    def history_of(self, juminhyo_code: str) -> list:
        rows = self.conn.execute(select(self.history).where(self.history.c.juminhyo_code == juminhyo_code)
                                 .order_by(self.history.c.update_seq)).all()
        return [self._from_row(r) for r in rows]

    def count(self) -> int:
        return self.conn.execute(select(func.count()).select_from(self.current)).scalar_one()

    def next_seq(self, n: int = 1) -> int:
        """Reserve ``n`` 更新順番号 and return the first. The counter row serialises writers."""
        c = self.counters
        row = self.conn.execute(select(c.c.value).where(c.c.name == "update_seq")).first()
        if row is None:
            self.conn.execute(insert(c).values(name="update_seq", value=n))
            return 1
        self.conn.execute(update(c).where(c.c.name == "update_seq").values(value=c.c.value + n))
        return row.value + 1

    def apply(self, new, *, previous=None, now: Optional[datetime] = None):
        """Store ``new`` as the current version; move ``previous`` (as read) into history.

        ``new.juminhyo_code`` may differ from ``previous.juminhyo_code`` (住民票コード変更): the old
        code's row goes to history and the current row moves to the new code.
        """
        now = now or utcnow()
        seq = self.next_seq()
        new = new.replace(update_seq=seq, timestamp=now, notified_date=now.astimezone(JST).date())
        if previous is not None:
            hist = self._to_row(previous)
            hist.update(superseded_at=now, superseded_by_seq=seq, superseded_by_reason=new.reason)
            self.conn.execute(insert(self.history).values(**hist))
            self.conn.execute(self.current.delete().where(self.current.c.juminhyo_code == previous.juminhyo_code))
        elif self.get(new.juminhyo_code) is not None:
            raise RuntimeError("apply() without previous over an existing record")
        self.conn.execute(insert(self.current).values(**self._to_row(new)))
        return new

    def bulk_load(self, records: Iterable, history: Iterable = (), *, fast: bool = False) -> int:
        """Insert many versions at once (seeding, migration from another system).

        ``fast``: through the engine's own bulk path (:func:`jukinet.store.bulk.write_rows`: COPY on
        PostgreSQL, the driver's executemany on SQLite) instead of SQLAlchemy's ``insert``; the same rows.
        """
        rows = [self._to_row(r) for r in records]
        hrows = [self._history_row(dict(h)) for h in history]
        if fast:
            write_rows(self.conn, self.current, rows)
            write_rows(self.conn, self.history, hrows)
            return len(rows)
        if rows:
            self.conn.execute(insert(self.current), rows)
        if hrows:
            self.conn.execute(insert(self.history), hrows)
        return len(rows)

    def bulk_load_rows(self, rows: list, history: list = (), *, fast: bool = False) -> int:
        """:meth:`bulk_load` of row dicts (the seed's: :func:`juki_to_row` / :func:`fuhyo_to_row` values, D1 with
        its 個人番号 in the clear, history rows with their ``superseded_*`` and ``history_id``). The dicts are
        sealed in place (D1): the caller hands them over."""
        seal = self._history_row
        rows = [seal(r) for r in rows]
        hrows = [seal(h) for h in history]
        if fast:
            write_rows(self.conn, self.current, rows)
            write_rows(self.conn, self.history, hrows)
        else:
            if rows:
                self.conn.execute(insert(self.current), rows)
            if hrows:
                self.conn.execute(insert(self.history), hrows)
        return len(rows)

    def _history_row(self, row: dict) -> dict:
        return row

    def set_seq_at_least(self, value: int) -> None:
        c = self.counters
        row = self.conn.execute(select(c.c.value).where(c.c.name == "update_seq")).first()
        if row is None:
            self.conn.execute(insert(c).values(name="update_seq", value=value))
        elif row.value < value:
            self.conn.execute(update(c).where(c.c.name == "update_seq").values(value=value))


class JukiRepository(_Repository):
    """都道府県知事保存本人確認情報ファイル (D1)."""

    current, history, counters = juki_current, juki_history, juki_counters

    @classmethod
    def codec(cls, conn: Connection):
        return juki_row_codec(conn)

    def _history_row(self, row: dict) -> dict:
        """History rows of a bulk load come as plaintext row dicts (seed): seal them."""
        return cipher_of(self.conn).seal_row(row) if "kojin_bango" in row else row

    def by_kojin_bango(self, kojin_bango: str) -> list[JukiRecord]:
        """Current records with this 個人番号: through the blind index, confirmed on the opened value."""
        bi = cipher_of(self.conn).blind_index(kojin_bango)
        rows = self.conn.execute(select(juki_current).where(juki_current.c.kojin_bango_bi == bi)).all()
        return [r for r in map(self._from_row, rows) if r.kojin_bango == kojin_bango]


class FuhyoRepository(_Repository):
    """都道府県知事保存附票本人確認情報ファイル (D2). There is no 個人番号 here."""

    current, history, counters = fuhyo_current, fuhyo_history, fuhyo_counters
    to_row = staticmethod(fuhyo_to_row)
    from_row = staticmethod(row_to_fuhyo)
