"""The one path from D1 to the 附票 side: 個人番号 by 住民票コード for a 附票 provision (P6; ADR 0017).

PIA III.3 R1 allows the two servers to talk along two paths only; this module is the provision
one. A 附票 provision for an affair for which 番号法 allows the 個人番号 (``kojin_bango_allowed``,
with its basis in the catalogue) may add the person's 個人番号, fetched **from
都道府県知事保存本人確認情報ファイル (D1) by 住民票コード** — never by anything else, never from
elsewhere. It is the only module that opens the juki register on behalf of the fuhyo side (a static
test and a run-time test check this), and it:

1. refuses unless the affair is a 附票 affair allowing the 個人番号;
2. (P7) reads, on the fuhyo provision's own connection, the 附票本人確認情報 of the given
   住民票コード and keeps only the persons it shows as **国外転出者** (:func:`abroad`): PIA III(2).3
   R1 allows the number 「国外転出者に係る事務処理に関し、番号法で認められた場合に限り」. Every other
   person is refused with :data:`NOT_ABROAD` — D1 is not read for them;
3. in one transaction on D1, reads ``kojin_bango`` of the 国外転出者 from ``juki_current`` and
   appends a ``kojin_bango_link`` entry to the **juki** operation log (who, terminal, affair,
   requester, the codes as a keyed digest, how many asked and found, the reference), and a
   ``refused`` entry with the code for the persons refused;
4. writes the numbers to the temporary area outside the D2 database
   (:class:`jukinet.provision.tempstore.TempStore`), erased after the delivery window;
5. :func:`record_receipt` appends the matching ``kojin_bango_link`` entries (granted and refused)
   to the **fuhyo** operation log, in the fuhyo provision's own transaction.

Nothing here writes to the D2 database: a 個人番号 never lands in D2 (PIA II(2).2④; tested by
scanning every table and column of D2 after a provision with number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.provision.tempstore import TempStore, for_config
from jukinet.store.atrest import cipher_of
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.tables import fuhyo_current, juki_current

ACTION = "kojin_bango_link"

#: P7: the person's 附票本人確認情報 does not show a 国外転出 — no 個人番号 (PIA III(2).3 R1)
NOT_ABROAD = "KOJIN_BANGO_NOT_ABROAD"
MESSAGES = {
    NOT_ABROAD: "附票本人確認情報に国外転出の記載がないため、個人番号は提供できません。"
                "個人番号は国外転出者に係る事務に限り提供します (番号法)。",
}


def refusal(code: str) -> JukinetError:
    """The per-person refusal of the number (P7): a stable code and its Japanese message."""
    return JukinetError(code, MESSAGES[code], field="kojin_bango")


@dataclass(frozen=True)
class Fetched:
    ref: str
    numbers: dict[str, str]       # 住民票コード -> 個人番号 (those D1 has)
    requested: int
    expires_at: datetime
    refused: dict[str, str] = field(default_factory=dict)   # 住民票コード -> reason code (P7)


def temp_store(config, keyring) -> TempStore:
    return for_config(config, keyring)


def _check(affair) -> None:
    if affair.register != "fuhyo" or not affair.kojin_bango_allowed:
        raise JukinetError("KOJIN_BANGO_NOT_ALLOWED", "この事務では個人番号を提供できません。", field="items")


def abroad(fuhyo_conn: Connection, codes: list[str]) -> set[str]:
    """The 住民票コード among ``codes`` whose 附票本人確認情報 (D2) shows a 国外転出 (P7).

    What a 国外転出 notification leaves in the file (``domain.reasons.check_fuhyo``, the seed and the
    CS simulator alike): 状態区分 現存, no 住所 in Japan (住所・住所市町村コード empty) and a 最終住所. A
    later 職権修正 keeps that state; a 住所変更 (back in Japan) clears the 最終住所; 消除 ends it.
    """
    t = fuhyo_current
    out: set[str] = set()
    wanted = sorted(set(codes))
    for i in range(0, len(wanted), 500):
        out.update(fuhyo_conn.execute(
            select(t.c.juminhyo_code).where(t.c.juminhyo_code.in_(wanted[i:i + 500]), t.c.status == "現存",
                                            t.c.address.is_(None), t.c.address_municipality_code.is_(None),
                                            t.c.last_address.is_not(None), t.c.last_address != "")).scalars())
    return out


def fetch(registers, oplog: OperationLog, store: TempStore, *, fuhyo_conn: Connection, codes: list[str], affair,
          requester_code: str, actor: Actor, ref: str, window_days: int, now: datetime | None = None) -> Fetched:
    """Fetch the 個人番号 of the 国外転出者 among ``codes`` from D1 into the temporary area.

    ``fuhyo_conn`` is the fuhyo provision's connection: the 附票本人確認情報 of ``codes`` is read on it
    (P7). Both the link and the refusals are logged in the juki chain.
    """
    _check(affair)
    if not (0 < window_days < 365):
        raise JukinetError("CONFIG_INVALID", "個人番号一時領域の保存期間は1年未満で設定してください。")
    now = now or datetime.now(timezone.utc)
    wanted = sorted(set(codes))
    eligible = sorted(abroad(fuhyo_conn, wanted))
    refused = {c: NOT_ABROAD for c in wanted if c not in set(eligible)}
    numbers: dict[str, str] = {}
    t = juki_current
    with registers.juki_uow() as uow:
        if eligible:
            cipher = cipher_of(uow.conn)    # sealed at rest (ADR 0025): opened here, for the temporary area only
            for i in range(0, len(eligible), 500):
                part = eligible[i:i + 500]
                for row in uow.conn.execute(select(t.c.juminhyo_code, t.c.kojin_bango_ct, t.c.kojin_bango_key)
                                            .where(t.c.juminhyo_code.in_(part), t.c.kojin_bango_ct.is_not(None))):
                    numbers[row.juminhyo_code] = cipher.open_value(row._mapping)
            oplog.append(uow.conn, "juki", actor=actor, action=ACTION, purpose_code="provision", now=now,
                         keys={"juminhyo_codes": ",".join(eligible)}, result_count=len(numbers),
                         detail={"ref": ref, "affair": affair.code, "requester": requester_code, "to": "fuhyo",
                                 "requested": len(eligible), "found": len(numbers)})
        if refused:
            _log_refused(uow.conn, oplog, "juki", refused, ref=ref, affair=affair, requester_code=requester_code,
                         actor=actor, now=now, direction={"to": "fuhyo"})
        expires = now + timedelta(days=window_days)
        store.sweep(now)
        if numbers:
            store.put(ref, numbers, expires)   # inside the D1 transaction: no log entry without the area
    return Fetched(ref, numbers, len(eligible), expires, refused)


def _log_refused(conn: Connection, oplog: OperationLog, chain: str, refused: dict[str, str], *, ref: str, affair,
                 requester_code: str, actor: Actor, now: datetime | None, direction: dict) -> None:
    for code in sorted(set(refused.values())):
        persons = sorted(c for c, r in refused.items() if r == code)
        oplog.append(conn, chain, actor=actor, action=ACTION, outcome="refused", purpose_code="provision", now=now,
                     keys={"juminhyo_codes": ",".join(persons)}, result_count=0,
                     detail={"ref": ref, "affair": affair.code, "requester": requester_code, **direction,
                             "code": code, "refused": len(persons)})


def record_receipt(conn: Connection, oplog: OperationLog, fetched: Fetched, *, affair, requester_code: str,
                   actor: Actor, provided: int, now: datetime | None = None) -> int | None:
    """The fuhyo side's log entries of the same link (granted, refused), on the fuhyo provision's connection."""
    seq = None
    if fetched.requested:
        seq = oplog.append(conn, "fuhyo", actor=actor, action=ACTION, purpose_code="provision", now=now,
                           keys={"juminhyo_codes": ",".join(sorted(fetched.numbers))}, result_count=provided,
                           detail={"ref": fetched.ref, "affair": affair.code, "requester": requester_code,
                                   "from": "juki", "received": len(fetched.numbers), "provided": provided})
    if fetched.refused:
        _log_refused(conn, oplog, "fuhyo", fetched.refused, ref=fetched.ref, affair=affair,
                     requester_code=requester_code, actor=actor, now=now, direction={"from": "juki"})
    return seq


def discard(store: TempStore, fetched: Fetched) -> None:
    """The provision failed after the fetch: erase the entry now rather than at the window's end."""
    store.erase(fetched.ref)
