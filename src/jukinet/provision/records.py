"""提供・移転の記録 — the provision record (P5, PIA III.5 R1; ADR 0015).

One row of ``provision_records`` (in the register's own database) per attempt: provided, not found,
several found, refused with its reason, or failed — and per national query (N1). It is written on
the same connection and in the same transaction as the access and the register's operation-log
entry (the entry's seq is kept in ``oplog_seq``); a refusal is written in a transaction of its own.

No value of personal data is stored:

* the keys the requester sent → ``keys_digest``: the same keyed digests the operation log uses
  (HMAC-SHA256 with the ``search-keys`` key, per key name), so an auditor holding a value can
  check it against both;
* the person found → ``person_digest``: HMAC-SHA256 of the 住民票コード with the
  ``provision-person`` key, 128 bits, indexed with the time. :func:`provisions_for_person` computes
  it for a resident's 住民票コード (and the codes the person had before a 住民票コード変更) and reads
  the index — one B-tree descent per code, whatever the table's size;
* items → their names; 突合 → 一致/不一致 per item.

The keys live in ``DIR/keys/oplog.key`` (:mod:`jukinet.keyring`), outside every database and
in the backup; a reader of the database alone cannot tell whose provisions these are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Optional

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.security.oplog import OperationLog
from jukinet.store.tables import juki_history
from jukinet.store.tables_provision import PROVISION_RECORDS
from pathlib import Path
import hashlib
import hmac
from jukinet.store.repository import JukiRepository
from jukinet.store.tables import fuhyo_history
from jukinet.store.tables import fuhyo_current
from jukinet.store.tables import juki_current

OUTCOMES = {"provided": "提供", "not_found": "該当なし", "ambiguous": "複数該当", "refused": "拒否", "failed": "失敗"}
KINDS = {"provision": "提供", "transfer": "移転", "national_query": "全国サーバ照会"}
CHANNELS = {"terminal": "操作端末", "api": "API", "console": "サーバコンソール"}

#: keyrings bound to an engine URL, so that callers holding only a unit of work can compute digests
_KEYRINGS: dict[str, KeyRing] = {}


def _url_key(conn_or_engine) -> str:
    engine = getattr(conn_or_engine, "engine", conn_or_engine)
    return engine.url.render_as_string(hide_password=True)


def bind_keyring(engines: Iterable, keyring: KeyRing) -> None:
    for e in engines:
        _KEYRINGS[_url_key(e)] = keyring


def keyring_for(conn: Connection) -> KeyRing:
    """The installation's keyring for this connection's database (bound by the services; for SQLite the
    data directory is also found from the file's location)."""
    k = _KEYRINGS.get(_url_key(conn))
    if k is not None:
        return k
    url = conn.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        return KeyRing(Path(url.database).parent)
    raise JukinetError("KEYRING_REQUIRED", "鍵の場所が分かりません。keyring を指定してください。")


class Digests:
    """Keyed digests of the keys and of the person (no value is ever stored)."""

    def __init__(self, keyring: KeyRing):
        self.keyring = keyring
        self.oplog = OperationLog(keyring)
        self._person_key = None
        self._search_key = None

    def keys(self, keys: dict) -> str:
        """JSON of the keyed digest per key — exactly :meth:`OperationLog.digest_keys` (same key, same text)."""
        if self._search_key is None:
            self._search_key = self.keyring.key("search-keys")
        k = self._search_key
        d = {n: hmac.new(k, f"{n}\x1f{v}".encode("utf-8"), hashlib.sha256).hexdigest()[:32]
             for n, v in (keys or {}).items() if v not in (None, "")}
        return json.dumps(d, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def person(self, juminhyo_code: Optional[str]) -> Optional[str]:
        if not juminhyo_code:
            return None

        if self._person_key is None:
            self._person_key = self.keyring.key("provision-person")
        return hmac.new(self._person_key, juminhyo_code.encode("ascii"), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    """What one provision-record row says (no personal data)."""

    at: datetime
    operator_id: Optional[str]
    terminal_id: Optional[str]
    channel: str
    kind: str
    requester_code: Optional[str]
    affair_code: Optional[str]
    purpose_code: Optional[str]
    case_ref: Optional[str]
    key_kind: str
    keys_digest: str
    person_digest: Optional[str]
    source: Optional[str]
    outcome: str
    reason_code: Optional[str]
    items: tuple[str, ...]
    number_included: bool
    match_result: Optional[dict]
    media_id: Optional[str] = None
    row_no: Optional[int] = None
    oplog_seq: Optional[int] = None
    record_id: Optional[int] = None
    register: Optional[str] = None

    def row(self) -> dict:
        return {"at": self.at, "operator_id": self.operator_id, "terminal_id": self.terminal_id,
                "channel": self.channel, "kind": self.kind, "requester_code": self.requester_code,
                "affair_code": self.affair_code, "purpose_code": self.purpose_code, "case_ref": self.case_ref,
                "key_kind": self.key_kind, "keys_digest": self.keys_digest, "person_digest": self.person_digest,
                "source": self.source, "outcome": self.outcome, "reason_code": self.reason_code,
                "items": ",".join(self.items), "number_included": bool(self.number_included),
                "match_result": (json.dumps(self.match_result, ensure_ascii=False, sort_keys=True,
                                            separators=(",", ":")) if self.match_result else None),
                "media_id": self.media_id, "row_no": self.row_no, "oplog_seq": self.oplog_seq}

    @property
    def outcome_label(self) -> str:
        return OUTCOMES.get(self.outcome, self.outcome)

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


def write(conn: Connection, register: str, entry: Entry) -> int:
    res = conn.execute(insert(PROVISION_RECORDS[register]).values(**entry.row()))
    return res.inserted_primary_key[0]


def write_many(conn: Connection, register: str, rows: list[dict]) -> None:
    if rows:
        conn.execute(insert(PROVISION_RECORDS[register]), rows)


def _entry(register: str, r) -> Entry:
    m = r._mapping
    at = m["at"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return Entry(at=at, operator_id=m["operator_id"], terminal_id=m["terminal_id"], channel=m["channel"],
                 kind=m["kind"], requester_code=m["requester_code"], affair_code=m["affair_code"],
                 purpose_code=m["purpose_code"], case_ref=m["case_ref"], key_kind=m["key_kind"],
                 keys_digest=m["keys_digest"], person_digest=m["person_digest"], source=m["source"],
                 outcome=m["outcome"], reason_code=m["reason_code"],
                 items=tuple(x for x in (m["items"] or "").split(",") if x), number_included=bool(m["number_included"]),
                 match_result=json.loads(m["match_result"]) if m["match_result"] else None, media_id=m["media_id"],
                 row_no=m["row_no"], oplog_seq=m["oplog_seq"], record_id=m["record_id"], register=register)


def _register_of(uow) -> str:
    return "juki" if isinstance(uow.repo, JukiRepository) else "fuhyo"


def person_codes(conn: Connection, register: str, juminhyo_code: str) -> list[str]:
    """The person's 住民票コード and every earlier one (住民票コード変更 keeps the old code in the history
    with ``superseded_by_reason`` 住民票コード変更; the new version's 更新順番号 links them)."""
    if register != "juki":
        codes, frontier = [juminhyo_code], [juminhyo_code]
        while frontier:   # D2 keeps 旧住民票コード on the record itself
            rows = conn.execute(select(fuhyo_history.c.old_juminhyo_code).where(
                fuhyo_history.c.juminhyo_code.in_(frontier), fuhyo_history.c.old_juminhyo_code.is_not(None))).all()

            rows += conn.execute(select(fuhyo_current.c.old_juminhyo_code).where(
                fuhyo_current.c.juminhyo_code.in_(frontier), fuhyo_current.c.old_juminhyo_code.is_not(None))).all()
            frontier = sorted({r[0] for r in rows} - set(codes))
            codes += frontier
        return codes

    codes, frontier = [juminhyo_code], [juminhyo_code]
    while frontier:
        seqs = [r[0] for r in conn.execute(select(juki_current.c.update_seq).where(
            juki_current.c.juminhyo_code.in_(frontier)))]
        seqs += [r[0] for r in conn.execute(select(juki_history.c.update_seq).where(
            juki_history.c.juminhyo_code.in_(frontier)))]
        if not seqs:
            break
        rows = conn.execute(select(juki_history.c.juminhyo_code).where(
            juki_history.c.superseded_by_reason == "住民票コード変更", juki_history.c.superseded_by_seq.in_(seqs))).all()
        frontier = sorted({r[0] for r in rows} - set(codes))
        codes += frontier
    return codes


def provisions_for_person(uow, juminhyo_code: str, *, keyring: KeyRing | None = None,
                          provided_only: bool = False, former_codes: bool = True) -> list[Entry]:
    """Every provision-record entry about one person in this unit of work's register, oldest first.

    For 提供状況の開示 (O3): who received the person's data, when, for which affair, which items — and
    the attempts that were refused or found nothing once the person was identified. ``uow`` is a
    unit of work of either register (:meth:`Registers.juki_uow` / ``fuhyo_uow``); the keyring is the
    installation's (bound by the services; pass it explicitly when calling from elsewhere).
    """
    conn = uow.conn
    register = _register_of(uow)
    keyring = keyring or keyring_for(conn)
    d = Digests(keyring)
    codes = person_codes(conn, register, juminhyo_code) if former_codes else [juminhyo_code]
    t = PROVISION_RECORDS[register]
    q = select(t).where(t.c.person_digest.in_([d.person(c) for c in codes]))
    if provided_only:
        q = q.where(t.c.outcome == "provided")
    rows = conn.execute(q.order_by(t.c.at, t.c.record_id)).all()
    return [_entry(register, r) for r in rows]


def recent(conn: Connection, register: str, *, limit: int = 100, media_id: str | None = None) -> list[Entry]:
    t = PROVISION_RECORDS[register]
    q = select(t)
    if media_id:
        q = q.where(t.c.media_id == media_id).order_by(t.c.row_no)
    else:
        q = q.order_by(t.c.record_id.desc())
    return [_entry(register, r) for r in conn.execute(q.limit(limit))]
