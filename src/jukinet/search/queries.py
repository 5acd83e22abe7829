"""SQL of the 4情報 search, per dialect where the engines differ (ADR 0011).

Prefix matches must use the indexes:

* SQLite compares text byte-wise (BINARY), so ``col >= p AND col < p || U+10FFFF`` is exactly the
  set of values that start with ``p`` and is answered by a range scan of the index on ``col``.
* PostgreSQL: ``col LIKE 'p%'`` with ``%``, ``_`` and the escape character escaped; the prefix
  indexes are built with ``text_pattern_ops`` so the planner turns it into an index range.

>>> escape_like('50%_off\\\\')
'50\\\\%\\\\_off\\\\\\\\'
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from jukinet.store.tables import fuhyo_current, juki_current

TABLES = {"juki": juki_current, "fuhyo": fuhyo_current}
_TOP = "\U0010ffff"


def escape_like(p: str) -> str:
    return p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def prefix(col, p: str, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return col.like(escape_like(p) + "%", escape="\\")
    return and_(col >= p, col < p + _TOP)


def any_of(conds: list[ColumnElement]) -> ColumnElement:
    return conds[0] if len(conds) == 1 else or_(*conds)


def build(register: str, dialect: str, *, name_seion: str | None = None, names: list[str] | None = None,
          name_prefix: bool = False, birth_from=None, birth_to=None, sex: str | None = None,
          addresses: list[str] | None = None, include_removed: bool = False, limit: int = 201):
    t = TABLES[register]
    where = []
    if name_seion is not None:
        where.append(prefix(t.c.name_seion, name_seion, dialect) if name_prefix else t.c.name_seion == name_seion)
    if names:
        where.append(any_of([prefix(t.c.name, n, dialect) for n in names]) if name_prefix
                     else (t.c.name == names[0] if len(names) == 1 else t.c.name.in_(names)))
    if birth_from is not None and birth_from == birth_to:
        where.append(t.c.birth_date == birth_from)
    else:
        if birth_from is not None:
            where.append(t.c.birth_date >= birth_from)
        if birth_to is not None:
            where.append(t.c.birth_date <= birth_to)
    if sex is not None:
        where.append(t.c.sex == sex)
    if addresses:
        where.append(any_of([prefix(t.c.address, a, dialect) for a in addresses]))
    if not include_removed:
        where.append(t.c.deleted.is_(False) if register == "juki" else t.c.status == "現存")
    cols = [t.c.juminhyo_code, t.c.name, t.c.name_kana, t.c.name_seion, t.c.birth_date, t.c.sex, t.c.address,
            t.c.gaiji_flag]
    cols += [t.c.deleted] if register == "juki" else [t.c.status, t.c.last_address]
    return select(*cols).where(*where).limit(limit)
