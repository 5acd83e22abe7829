"""Finding the person a requester means, in one register (P2), one key at a time or in bulk.

* 住民票コード: the primary key of ``*_current`` (current and removed persons).
* 個人番号: ``ix_juki_current_kojin_bango_bi``, the keyed blind index (D1 only; D2 has no 個人番号;
  the number itself is sealed at rest, ADR 0025).
* 4情報: 氏名 + 生年月日 through ``ix_*_current_seion_birth`` (kana, on the 清音化 key) or
  ``ix_*_current_name_birth`` (kanji, as written, with either width of space between surname and
  given name); a kanji name typed without a space is matched on ``ix_*_current_birth`` and compared
  with spaces ignored. Several candidates are narrowed by 性別, then by 住所 — what remains is the
  answer (one: found; more: 複数該当, nothing is provided).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Iterable

from sqlalchemy import Date, Text, bindparam, select, text
from sqlalchemy.engine import Connection

from jukinet import kana
from jukinet.provision.items import Four, Keys, normalize_name, row_view, same_address
from jukinet.store.atrest import cipher_of
from jukinet.store.tables import fuhyo_current, juki_current

TABLES = {"juki": juki_current, "fuhyo": fuhyo_current}


@lru_cache(maxsize=None)
def _stmt(register: str, kind: str):
    """The few statements, built once (bound parameters; SQLAlchemy caches their compiled form)."""
    t = TABLES[register]
    if kind == "codes":
        return select(t).where(t.c.juminhyo_code.in_(bindparam("codes", expanding=True)))
    if kind == "bangos":
        return select(t).where(t.c.kojin_bango_bi.in_(bindparam("bangos", expanding=True)))
    if kind == "seion":
        return select(t).where(t.c.name_seion == bindparam("seion"), t.c.birth_date == bindparam("birth"))
    if kind == "names":
        return select(t).where(t.c.name.in_(bindparam("names", expanding=True)), t.c.birth_date == bindparam("birth"))
    return select(t).where(t.c.birth_date == bindparam("birth"))


def by_codes(conn: Connection, register: str, codes: Iterable[str]) -> dict[str, dict]:
    codes = sorted(set(codes))
    out = {}
    for i in range(0, len(codes), 500):
        for r in conn.execute(_stmt(register, "codes"), {"codes": codes[i:i + 500]}):
            out[r.juminhyo_code] = row_view(register, r, _cipher(conn, register))
    return out


def by_bangos(conn: Connection, bangos: Iterable[str]) -> dict[str, list[dict]]:
    bangos = sorted(set(bangos))
    out: dict[str, list] = {}
    cipher = cipher_of(conn)
    wanted = set(bangos)
    for i in range(0, len(bangos), 500):
        digests = [cipher.blind_index(b) for b in bangos[i:i + 500]]
        for r in conn.execute(_stmt("juki", "bangos"), {"bangos": digests}):
            view = row_view("juki", r, cipher)
            if view["kojin_bango"] in wanted:     # the opened number confirms the index match
                out.setdefault(view["kojin_bango"], []).append(view)
    return out


def _cipher(conn: Connection, register: str):
    return cipher_of(conn) if register == "juki" else None


def by_four(conn: Connection, register: str, four: Four) -> list[dict]:
    name = four.name
    if kana.is_kana(name):
        rows = [row_view(register, r, _cipher(conn, register)) for r in conn.execute(
            _stmt(register, "seion"), {"seion": kana.seion(name), "birth": four.birth_date})]
    elif " " in name or "\u3000" in name:
        variants = sorted({name.replace(" ", "\u3000"), name.replace("\u3000", " ")})
        rows = [row_view(register, r, _cipher(conn, register)) for r in conn.execute(
            _stmt(register, "names"), {"names": variants, "birth": four.birth_date})]
    else:
        want = normalize_name(name)
        rows = [row_view(register, r, _cipher(conn, register))
                for r in conn.execute(_stmt(register, "birth"), {"birth": four.birth_date})
                if normalize_name(r.name) == want]
    return narrow(rows, four, register)


def _join_keys(conn: Connection, register: str, column: str, keys: list[tuple[str, date]]):
    """``WITH k(v, d) AS (VALUES …) SELECT t.* FROM k JOIN <current> t ON t.<column> = k.v AND
    t.birth_date = k.d``: one statement for many keys, each probed through the (name, 生年月日)
    index (a row-value ``IN`` is not; checked with EXPLAIN on SQLite, and the same on PostgreSQL)."""
    table = TABLES[register].name
    parts, binds, params = [], [], {}
    for i, (v, d) in enumerate(keys):
        parts.append(f"(:v{i}, :d{i})")
        binds += [bindparam(f"v{i}", type_=Text), bindparam(f"d{i}", type_=Date)]
        params[f"v{i}"], params[f"d{i}"] = v, d
    sql = text(f"WITH k(v, d) AS (VALUES {', '.join(parts)}) SELECT t.* FROM k JOIN {table} t "
               f"ON t.{column} = k.v AND t.birth_date = k.d").bindparams(*binds)
    return conn.execute(sql, params)


def by_fours(conn: Connection, register: str, fours: list[Four]) -> list[list[dict]]:
    """Many 4情報 keys at once (a batch chunk): a join with the keys, per kind of name — the 清音化 key
    for kana, 漢字氏名 as written (either width of space) for kanji — through the same indexes as
    :func:`by_four`. A kanji name typed without a space falls back to :func:`by_four`."""
    seion_keys: dict = {}
    name_keys: dict = {}
    for i, f in enumerate(fours):
        if kana.is_kana(f.name):
            seion_keys.setdefault((kana.seion(f.name), f.birth_date), []).append(i)
        elif " " in f.name or "\u3000" in f.name:
            for v in {f.name.replace(" ", "\u3000"), f.name.replace("\u3000", " ")}:
                name_keys.setdefault((v, f.birth_date), []).append(i)
    found: list[list[dict]] = [[] for _ in fours]
    for column, keys in (("name_seion", seion_keys), ("name", name_keys)):
        items = list(keys)
        for j in range(0, len(items), 400):
            for r in _join_keys(conn, register, column, items[j:j + 400]):
                bd = r.birth_date if isinstance(r.birth_date, date) else date.fromisoformat(str(r.birth_date))
                for i in keys.get((getattr(r, column), bd), ()):
                    view = row_view(register, r, _cipher(conn, register))
                    if all(v["juminhyo_code"] != view["juminhyo_code"] for v in found[i]):
                        found[i].append(view)
    out = []
    for i, f in enumerate(fours):
        if not kana.is_kana(f.name) and " " not in f.name and "\u3000" not in f.name:
            out.append(by_four(conn, register, f))
        else:
            out.append(narrow(found[i], f, register))
    return out


def narrow(candidates: list, four: Four, register: str) -> list:
    """Several candidates: keep those of the 性別, then those at the 住所, when that leaves some."""
    if len(candidates) > 1 and four.sex:
        same = [c for c in candidates if c.get("sex") == four.sex]
        candidates = same or candidates
    if len(candidates) > 1 and four.address:
        same = [c for c in candidates if same_address(c.get("address") or c.get("last_address"), four.address)]
        candidates = same or candidates
    return candidates


def find(conn: Connection, register: str, keys: Keys) -> list[dict]:
    """The person(s) the keys designate, as views (dicts of the register's items)."""
    if keys.kind == "juminhyo_code":
        r = by_codes(conn, register, [keys.juminhyo_code]).get(keys.juminhyo_code)
        return [r] if r is not None else []
    if keys.kind == "kojin_bango":
        return by_bangos(conn, [keys.kojin_bango]).get(keys.kojin_bango, [])
    return by_four(conn, register, keys.four)
