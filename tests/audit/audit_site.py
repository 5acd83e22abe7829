"""The operator-side fixtures (``site``: app, terminal, one operator per role, sessions, a few
persons) reused from tests/web, loaded by path like tests/provision does; and small helpers."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from jukinet.store.tables_security import OPLOG

_spec = importlib.util.spec_from_file_location("jukinet_web_fixtures", Path(__file__).parent.parent / "web" / "conftest.py")
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)
site = W.site
ADMIN = W.ADMIN
PEOPLE = W.PEOPLE


def last_seq(registers, chain: str) -> int:
    log, _ = OPLOG[chain]
    with registers.engine(chain).connect() as conn:
        return conn.execute(select(func.max(log.c.seq))).scalar_one() or 0


def last_entry(registers, chain: str, action: str):
    log, _ = OPLOG[chain]
    with registers.engine(chain).connect() as conn:
        return conn.execute(select(log).where(log.c.action == action).order_by(log.c.seq.desc())).first()


def resident_data() -> list[str]:
    """Every personal item of the seeded residents that must never appear in a report."""
    out = []
    for p in PEOPLE:
        from jukinet import wareki

        given = p.name.split("\u3000")[1]
        out += [p.name, p.name.replace("\u3000", " "), p.name_kana, p.juminhyo_code, p.address,
                p.birth_date.isoformat(), wareki.to_wareki(p.birth_date)] + ([given] if len(given) > 1 else [])
    return out


def utc(y, m, d, hh=0, mm=0, jst=True) -> datetime:
    from jukinet.audit.analysis import JST

    return datetime(y, m, d, hh, mm, tzinfo=JST if jst else timezone.utc).astimezone(timezone.utc)
