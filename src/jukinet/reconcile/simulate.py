"""A 市町村CS's side of a consistency check, simulated: its snapshot, built from our register.

A real CS sends its own file. The simulator (``jukinet sim cs-snapshot``), the tests and the
benchmarks need one that agrees with ours except where they say: :func:`build_snapshot` streams
the municipality's current persons out of the register (in 住民票コード order, bounded memory) in
the ``jukinet.snapshot/1`` format and injects ``inject`` differences, deterministically from
``seed``, in turn:

* ``differs`` — a person whose 住所 (or, without one, 氏名) is altered;
* ``only_on_server`` — a person left out;
* ``only_in_snapshot`` — an invented person with a fresh, valid 住民票コード not in our file.

It returns what it injected (counts per kind), so a test can check the result against it.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import IO, Optional

from sqlalchemy import func, select

from jukinet import codes
from jukinet.reconcile.service import _lookup, _opened, _server_query
from jukinet.store.atrest import cipher_of
from jukinet.reconcile.snapshot import ITEMS, record_line, write_snapshot_to

KINDS = ("differs", "only_on_server", "only_in_snapshot")


def _row_to_record(register: str, municipality_code: str, row) -> dict:
    if register == "juki":
        code, name, kana, birth, sex, addr, oaza, kb, fs, fsk, _ts = row
        rec = {"juminhyo_code": code, "municipality_code": municipality_code, "name": name, "name_kana": kana,
               "birth_date": birth.isoformat() if hasattr(birth, "isoformat") else birth, "sex": sex,
               "address": addr, "oaza_code": oaza, "kojin_bango": kb,
               "former_surname": {"name": fs, "name_kana": fsk} if fs is not None else None}
        return rec
    rec = {"juminhyo_code": row[0]}
    for k, v in zip(ITEMS["fuhyo"], row[1:-1]):
        rec[k] = v.isoformat() if k == "birth_date" and hasattr(v, "isoformat") else v
    return rec


def _fresh_code(rng: random.Random) -> str:
    first = f"{rng.randrange(10**9, 10**10):010d}"
    return first + codes.juminhyo_code_check_digit(first)


def _fresh_kojin_bango(rng: random.Random) -> str:
    first = f"{rng.randrange(10**10, 10**11):011d}"
    return first + codes.kojin_bango_check_digit(first)


def build_snapshot(registers, register: str, municipality_code: str, out: IO[bytes], *, inject: int = 0,
                   seed: int = 0, as_of: Optional[datetime] = None, snapshot_id: Optional[str] = None) -> dict:
    """Write the municipality's snapshot to ``out``; return ``{"count": n, kind: injected, …}``."""
    rng = random.Random(seed)
    as_of = as_of or datetime.now(timezone.utc)
    engine = registers.engine(register)
    with engine.connect() as conn, conn.begin():
        q = _server_query(register, municipality_code, sealed=True)
        n = conn.execute(select(func.count()).select_from(q.order_by(None).subquery())).scalar_one()
        inject = min(inject, n)
        chosen = sorted(rng.sample(range(n), inject)) if inject else []
        kind_of = {i: KINDS[k % 3] for k, i in enumerate(chosen)}
        # invented persons: fresh codes not in the register at all
        invented: list[str] = []
        wanted = sum(1 for k in kind_of.values() if k == "only_in_snapshot")
        while len(invented) < wanted:
            batch = {_fresh_code(rng) for _ in range(wanted - len(invented))} - set(invented)
            taken = _lookup(conn, register, sorted(batch))
            invented += [c for c in sorted(batch) if c not in taken]
        invented.sort()
        counts = {k: 0 for k in KINDS}
        dropped = sum(1 for k in kind_of.values() if k == "only_on_server")
        total = n - dropped + len(invented)
        rows = conn.execution_options(stream_results=True, yield_per=5000).execute(q)

        def lines():
            pending_invented = list(invented)
            inv_template = None
            cipher = cipher_of(conn) if register == "juki" else None
            for i, row in enumerate(rows):
                rec = _row_to_record(register, municipality_code, _opened(register, row, cipher))
                inv_template = inv_template or rec
                while pending_invented and pending_invented[0] < rec["juminhyo_code"]:
                    yield _invented(register, pending_invented.pop(0), rec, rng)
                    counts["only_in_snapshot"] += 1
                kind = kind_of.get(i)
                if kind == "only_on_server":
                    counts["only_on_server"] += 1
                    continue
                if kind == "differs":
                    counts["differs"] += 1
                    if rec.get("address"):
                        rec["address"] = rec["address"] + "の2"
                    else:
                        rec["name"] = rec["name"] + "子"
                elif kind == "only_in_snapshot":  # the invented person is modelled on this one
                    pass
                yield record_line(register, rec)
            for code in pending_invented:
                yield _invented(register, code, inv_template, rng)
                counts["only_in_snapshot"] += 1

        write_snapshot_to(out, register, municipality_code, lines(), total, as_of=as_of.isoformat(),
                          snapshot_id=snapshot_id)
        rows.close()
    counts["count"] = total
    return counts


def _invented(register: str, code: str, template: dict, rng: random.Random) -> bytes:
    rec = dict(template)
    rec["juminhyo_code"] = code
    if register == "juki":
        rec["kojin_bango"] = _fresh_kojin_bango(rng)
    else:
        rec["old_juminhyo_code"] = None
    return record_line(register, rec)
