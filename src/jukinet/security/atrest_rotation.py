"""Rotation of the 個人番号 data key, and the key status (``jukinet keys …``; A7; ADR 0025).

:func:`rotate`:

1. adds a new data key as *active* and turns the old one *decrypt-only* (the key file is written
   first, so a kill at any later point resumes: the file says a rotation is in progress);
2. waits one refresh interval, so running servers seal new rows with the new key (they reread the
   key file when it changes);
3. re-encrypts every row of ``juki_current`` and ``juki_history`` still under an old key, in
   batches of one transaction each (each row says its key id, so a killed run simply resumes), and
   repeats until no row uses an old key;
4. retires the old key (its material is erased; its id is never reused);
5. records the rotation in the admin operation log.

The blind index does not change (its key is not rotated), so lookups by 個人番号 work throughout.
:func:`status` counts the rows per key id — counts only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from sqlalchemy import bindparam, func, literal_column, select, update

from jukinet.store.atrest import _REFRESH_SECONDS, KojinBangoCipher, KojinBangoKeys
from jukinet.keyring import KeyRing
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.engine import writer
from jukinet.store.tables import juki_current, juki_history

#: each sealed table and its key column (keyset pagination)
TABLES = ((juki_current, "juminhyo_code"), (juki_history, "history_id"))


@dataclass
class KeyStatus:
    key_id: int
    state: str
    created: str
    rows: dict = field(default_factory=dict)    # table name -> rows sealed with this key


def status(registers) -> list[KeyStatus]:
    keys = KojinBangoKeys.load(registers.config.data_dir)
    out = {k: KeyStatus(k, v["state"], v.get("created", "")) for k, v in sorted(keys.keys.items())}
    with registers.engine("juki").connect() as conn:
        for t, _ in TABLES:
            for kid, n in conn.execute(select(t.c.kojin_bango_key, func.count()).where(
                    t.c.kojin_bango_key.is_not(None)).group_by(t.c.kojin_bango_key)):
                out.setdefault(kid, KeyStatus(kid, "unknown", "")).rows[t.name] = n
    return list(out.values())


@dataclass
class RotationReport:
    from_keys: list
    to_key: int
    rows: int
    passes: int
    resumed: bool
    seconds: float


def _pending_rows(conn, old: list[int]) -> int:
    return sum(conn.execute(select(func.count()).select_from(t).where(t.c.kojin_bango_key.in_(old))).scalar_one()
               for t, _ in TABLES)


def _reseal_table(engine, cipher: KojinBangoCipher, t, key: str, old: list[int], batch: int,
                  step: Callable[[int], None]) -> int:
    # SQLite: rowid order is the table's physical order (住民票コード order would touch pages at random)
    pk = literal_column("rowid") if engine.dialect.name == "sqlite" else t.c[key]
    stmt = (update(t).where(pk == bindparam("k"), t.c.kojin_bango_key == bindparam("old"))
            .values(kojin_bango_ct=bindparam("ct"), kojin_bango_key=bindparam("kid")))
    done, last = 0, None
    while True:
        with writer(engine).begin() as conn:      # one transaction per batch: a kill loses one batch at most
            q = select(pk, t.c.juminhyo_code, t.c.kojin_bango_ct, t.c.kojin_bango_key).where(
                t.c.kojin_bango_key.in_(old))
            if last is not None:
                q = q.where(pk > last)
            rows = conn.execute(q.order_by(pk).limit(batch)).all()
            if not rows:
                return done
            params = []
            for r in rows:
                number = cipher.open(r.juminhyo_code, r.kojin_bango_ct, r.kojin_bango_key)
                ct, kid, _bi = cipher.seal(r.juminhyo_code, number)
                params.append({"k": r[0], "old": r.kojin_bango_key, "ct": ct, "kid": kid})
            conn.execute(stmt, params)
        last = rows[-1][0]
        done += len(rows)
        step(len(rows))


def rotate(registers, *, actor: Actor = Actor("cli", None), batch: int = 5000,
           progress: Optional[Callable[[int, int], None]] = None, wait: float = _REFRESH_SECONDS + 0.5,
           stop_after: Optional[int] = None) -> RotationReport:
    """Rotate the data key (or resume an interrupted rotation). ``stop_after`` (tests) stops after
    that many re-encrypted rows, as a kill would."""
    started = time.perf_counter()
    data_dir = registers.config.data_dir
    keys = KojinBangoKeys.load(data_dir)
    resumed = bool(keys.pending())
    if not resumed:
        keys.add_active()
        keys.save()
        time.sleep(wait)           # running processes reread the key file within this interval
    keys = KojinBangoKeys.load(data_dir)
    old = keys.pending()
    cipher = KojinBangoCipher(keys, data_dir)
    registers.kojin_bango_cipher.refresh(force=True)
    engine = registers.engine("juki")
    with engine.connect() as conn:
        total = _pending_rows(conn, old)
    done, passes = 0, 0

    class _Stop(Exception):
        pass

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, max(total, done))
        if stop_after is not None and done >= stop_after:
            raise _Stop

    try:
        while True:
            passes += 1
            for t, key in TABLES:
                _reseal_table(engine, cipher, t, key, old, batch, step)
            with engine.connect() as conn:
                left = _pending_rows(conn, old)
            if left == 0:
                break
            total = done + left     # rows written meanwhile by a process still on the old key
    except _Stop:
        return RotationReport(old, keys.active, done, passes, resumed, time.perf_counter() - started)
    for k in old:
        keys.retire(k)
    keys.save()
    registers.kojin_bango_cipher.refresh(force=True)
    report = RotationReport(old, keys.active, done, passes, resumed, time.perf_counter() - started)
    oplog = OperationLog(KeyRing(data_dir), data_dir)
    with registers.admin_tx() as conn:
        oplog.append(conn, "admin", actor=actor, action="kojin_bango_key_rotation", result_count=done,
                     detail={"retired": ",".join(map(str, old)), "active": keys.active, "passes": passes,
                             "resumed": resumed, "seconds": round(report.seconds, 1)})
    return report
