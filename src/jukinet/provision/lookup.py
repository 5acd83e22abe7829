"""Finding the person a requester means, in one register (P2), one key at a time or in bulk.

* 住民票コード: the primary key of ``*_current`` (current and removed persons).
* 個人番号: ``ix_juki_current_kojin_bango`` (D1 only; D2 has no 個人番号).
* 4情報: 氏名 + 生年月日 through ``ix_*_current_seion_birth`` (kana, on the 清音化 key) or
  ``ix_*_current_name_birth`` (kanji, as written, with either width of space between surname and
  given name); a kanji name typed without a space is matched on ``ix_*_current_birth`` and compared
  with spaces ignored. Several candidates are narrowed by 性別, then by 住所 — what remains is the
  answer (one: found; more: 複数該当, nothing is provided).
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from jukinet import kana
from jukinet.provision.items import Four, Keys, normalize_name, same_address
from jukinet.store.repository import row_to_fuhyo, row_to_juki
from jukinet.store.tables import fuhyo_current, juki_current

TABLES = {"juki": juki_current, "fuhyo": fuhyo_current}
CONVERT = {"juki": row_to_juki, "fuhyo": row_to_fuhyo}


def by_codes(conn: Connection, register: str, codes: Iterable[str]) -> dict:
    t, conv = TABLES[register], CONVERT[register]
    codes = sorted(set(codes))
    out = {}
    for i in range(0, len(codes), 500):
        for r in conn.execute(select(t).where(t.c.juminhyo_code.in_(codes[i:i + 500]))):
            out[r.juminhyo_code] = conv(r)
    return out


def by_bangos(conn: Connection, bangos: Iterable[str]) -> dict[str, list]:
    bangos = sorted(set(bangos))
    out: dict[str, list] = {}
    for i in range(0, len(bangos), 500):
        for r in conn.execute(select(juki_current).where(juki_current.c.kojin_bango.in_(bangos[i:i + 500]))):
            out.setdefault(r.kojin_bango, []).append(row_to_juki(r))
    return out


def by_four(conn: Connection, register: str, four: Four) -> list:
    t, conv = TABLES[register], CONVERT[register]
    name = four.name
    if kana.is_kana(name):
        q = select(t).where(t.c.name_seion == kana.seion(name), t.c.birth_date == four.birth_date)
        rows = [conv(r) for r in conn.execute(q)]
    elif " " in name or "\u3000" in name:
        variants = sorted({name.replace(" ", "\u3000"), name.replace("\u3000", " ")})
        q = select(t).where(t.c.name.in_(variants), t.c.birth_date == four.birth_date)
        rows = [conv(r) for r in conn.execute(q)]
    else:
        want = normalize_name(name)
        q = select(t).where(t.c.birth_date == four.birth_date)
        rows = [conv(r) for r in conn.execute(q) if normalize_name(r.name) == want]
    return narrow(rows, four, register)


def narrow(candidates: list, four: Four, register: str) -> list:
    """Several candidates: keep those of the 性別, then those at the 住所, when that leaves some."""
    if len(candidates) > 1 and four.sex:
        same = [c for c in candidates if _get(c, "sex") == four.sex]
        candidates = same or candidates
    if len(candidates) > 1 and four.address:
        same = [c for c in candidates if same_address(_get(c, "address") or _get(c, "last_address"), four.address)]
        candidates = same or candidates
    return candidates


def _get(c, k):
    return c.get(k) if isinstance(c, dict) else getattr(c, k, None)


def find(conn: Connection, register: str, keys: Keys) -> list:
    if keys.kind == "juminhyo_code":
        r = by_codes(conn, register, [keys.juminhyo_code]).get(keys.juminhyo_code)
        return [r] if r is not None else []
    if keys.kind == "kojin_bango":
        return by_bangos(conn, [keys.kojin_bango]).get(keys.kojin_bango, [])
    return by_four(conn, register, keys.four)
