"""The one path from D1 to the 附票 side: 個人番号 by 住民票コード for a 附票 provision (P6; ADR 0017).

PIA III.3 R1 allows the two servers to talk along two paths only; this module is the provision
one. A 附票 provision for an affair for which 番号法 allows the 個人番号 (``kojin_bango_allowed``,
with its basis in the catalogue) may add the person's 個人番号, fetched **from
都道府県知事保存本人確認情報ファイル (D1) by 住民票コード** — never by anything else, never from
elsewhere. It is the only module that opens the juki register on behalf of the fuhyo side (a static
test and a run-time test check this), and it:

1. refuses unless the affair is a 附票 affair allowing the 個人番号;
2. in one transaction on D1, reads ``kojin_bango`` of the given 住民票コード from ``juki_current``
   and appends a ``kojin_bango_link`` entry to the **juki** operation log (who, terminal, affair,
   requester, the codes as a keyed digest, how many asked and found, the reference);
3. writes the numbers to the temporary area outside the D2 database
   (:class:`jukinet.provision.tempstore.TempStore`), erased after the delivery window;
4. :func:`record_receipt` appends the matching ``kojin_bango_link`` entry to the **fuhyo**
   operation log, in the fuhyo provision's own transaction.

Nothing here writes to the D2 database: a 個人番号 never lands in D2 (PIA II(2).2④; tested by
scanning every table and column of D2 after a provision with number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.provision.tempstore import TempStore
from jukinet.store.atrest import cipher_of
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.tables import juki_current

ACTION = "kojin_bango_link"


@dataclass(frozen=True)
class Fetched:
    ref: str
    numbers: dict[str, str]       # 住民票コード -> 個人番号 (those D1 has)
    requested: int
    expires_at: datetime


def temp_store(config, keyring) -> TempStore:
    return TempStore(config.resolve(config.provision.kojin_bango_temp_dir), keyring)


def _check(affair) -> None:
    if affair.register != "fuhyo" or not affair.kojin_bango_allowed:
        raise JukinetError("KOJIN_BANGO_NOT_ALLOWED", "この事務では個人番号を提供できません。", field="items")


def fetch(registers, oplog: OperationLog, store: TempStore, *, codes: list[str], affair, requester_code: str,
          actor: Actor, ref: str, window_days: int, now: datetime | None = None) -> Fetched:
    """Fetch the 個人番号 of ``codes`` from D1 into the temporary area (logged in the juki chain)."""
    _check(affair)
    if not (0 < window_days < 365):
        raise JukinetError("CONFIG_INVALID", "個人番号一時領域の保存期間は1年未満で設定してください。")
    now = now or datetime.now(timezone.utc)
    wanted = sorted(set(codes))
    numbers: dict[str, str] = {}
    t = juki_current
    with registers.juki_uow() as uow:
        cipher = cipher_of(uow.conn)       # sealed at rest (ADR 0025): opened here, for the temporary area only
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            for row in uow.conn.execute(select(t.c.juminhyo_code, t.c.kojin_bango_ct, t.c.kojin_bango_key)
                                        .where(t.c.juminhyo_code.in_(part), t.c.kojin_bango_ct.is_not(None))):
                numbers[row.juminhyo_code] = cipher.open_value(row._mapping)
        oplog.append(uow.conn, "juki", actor=actor, action=ACTION, purpose_code="provision", now=now,
                     keys={"juminhyo_codes": ",".join(wanted)}, result_count=len(numbers),
                     detail={"ref": ref, "affair": affair.code, "requester": requester_code, "to": "fuhyo",
                             "requested": len(wanted), "found": len(numbers)})
        expires = now + timedelta(days=window_days)
        store.sweep(now)
        if numbers:
            store.put(ref, numbers, expires)   # inside the D1 transaction: no log entry without the area
    return Fetched(ref, numbers, len(wanted), expires)


def record_receipt(conn: Connection, oplog: OperationLog, fetched: Fetched, *, affair, requester_code: str,
                   actor: Actor, provided: int, now: datetime | None = None) -> int:
    """The fuhyo side's log entry of the same link, on the fuhyo provision's connection."""
    return oplog.append(conn, "fuhyo", actor=actor, action=ACTION, purpose_code="provision", now=now,
                        keys={"juminhyo_codes": ",".join(sorted(fetched.numbers))}, result_count=provided,
                        detail={"ref": fetched.ref, "affair": affair.code, "requester": requester_code,
                                "from": "juki", "received": len(fetched.numbers), "provided": provided})


def discard(store: TempStore, fetched: Fetched) -> None:
    """The provision failed after the fetch: erase the entry now rather than at the window's end."""
    store.erase(fetched.ref)
