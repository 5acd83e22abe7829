"""操作ログ — the tamper-evident operation log (A4; ADR 0009).

Every request that reads or changes personal data, every login and roster change, and every
refusal appends one entry: who (操作者ID), where (操作端末ID), when, what (action, outcome), the
stated purpose (a code from :data:`jukinet.security.roles.PURPOSES` and an optional case number),
the search keys as **keyed digests** (never the values) and the result count.

Three chains: one in each register database (``juki``, ``fuhyo``), written by :meth:`OperationLog.append`
on the *same connection, in the same transaction* as the access it records — if the entry cannot
be written, the transaction fails and the access is refused (fail closed); and one in the ``admin``
database for logins, roster changes and refusals not tied to a register.

Chain: ``entry_hash = HMAC(chain key, canonical(entry) incl. prev_hash)``; the key lives outside the
databases (:mod:`jukinet.keyring`). Anchor: ``oplog_head`` holds the last (seq, hash) with a
MAC and is updated in the same transaction, so deleting the tail is detected; MAC'd checkpoints in
``DIR/audit/checkpoints.jsonl`` (:mod:`jukinet.security.checkpoints`: written at init, at the start
of ``jukinet serve``, daily, on every ``audit report`` and by each successful verify) detect a
roll-back or the deletion of log *and* anchor. :func:`verify` reports the first entry that was
altered, deleted, reordered or cut off, and a chain shorter than or different from a checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Optional

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.keyring import KeyRing
from jukinet.observability import metrics
from jukinet.security import checkpoints as cpf
from jukinet.store import faults
from jukinet.store.faults import StorageUnavailable
from jukinet.store.tables_security import OPLOG

GENESIS = "0" * 64
CHAINS = ("juki", "fuhyo", "admin")
CHECKPOINTS = cpf.CHECKPOINTS


class OplogUnavailable(JukinetError):
    code = "OPLOG_UNAVAILABLE"
    message = "操作ログを記録できないため、処理を中止しました。"


@dataclass(frozen=True)
class Actor:
    """Who acts, from where: 操作者ID and 操作端末ID (None when unknown, e.g. an anonymous request).

    ``witness_id``: in a witnessed maintenance session (G5; ADR 0041) the staff member who
    co-authenticated; every entry written for such an actor names them too (``detail.witness_id``,
    covered by the entry hash)."""

    operator_id: Optional[str] = None
    terminal_id: Optional[str] = None
    witness_id: Optional[str] = None


def _utc(v) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return v.astimezone(timezone.utc)


def _iso(v) -> str:
    return _utc(v).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(d: dict | None) -> str:
    return json.dumps(d or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical(chain: str, row) -> str:
    """The text the entry hash covers: every column but the hash itself, unambiguously joined."""
    m = row if isinstance(row, dict) else row._mapping
    return json.dumps([1, chain, int(m["seq"]), _iso(m["at"]), m["operator_id"], m["terminal_id"], m["action"],
                       m["outcome"], m["purpose_code"], m["case_ref"], m["keys"], m["result_count"], m["detail"],
                       m["prev_hash"]], ensure_ascii=False, separators=(",", ":"))


@dataclass
class Problem:
    seq: Optional[int]
    kind: str          # altered | deleted | reordered | truncated | anchor | rolled_back | checkpoint
    message: str
    code: str = ""     # stable code of a checkpoint finding (jukinet.security.checkpoints)

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "末尾"
        return f"{where}: {self.code + ' ' if self.code else ''}{self.message}"


@dataclass
class VerifyReport:
    chain: str
    count: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Statements:
    """The four statements of an append, built once per chain and dialect with bind parameters, so
    that each append only binds values (SQLAlchemy compiles each once; no statement is rebuilt and
    re-keyed per entry)."""

    head: object       # the anchor, locked for this transaction (SELECT … FOR UPDATE)
    genesis: object    # the anchor of a chain's first entry (INSERT … ON CONFLICT DO NOTHING)
    insert: object     # the entry
    advance: object    # the anchor moved to the entry


@functools.lru_cache(maxsize=None)
def _statements(chain: str, dialect: str) -> _Statements:
    log, head = OPLOG[chain]
    upsert = postgresql.insert(head) if dialect == "postgresql" else sqlite.insert(head)
    where = head.c.chain == bindparam("h_chain")
    return _Statements(
        head=select(head).where(where).with_for_update(),
        genesis=upsert.on_conflict_do_nothing(index_elements=["chain"]),
        insert=insert(log),
        advance=update(head).where(where),
    )


class OperationLog:
    def __init__(self, keyring: KeyRing, data_dir: Path | str | None = None):
        self.keys = keyring
        self.data_dir = Path(data_dir) if data_dir is not None else keyring.path.parent.parent

    # ---- writing -------------------------------------------------------------------------------

    def digest(self, name: str, value) -> str:
        """Keyed digest of one search key (the name is part of the message: 生年月日 ≠ 氏名)."""
        return self.keys.mac("search-keys", f"{name}\x1f{value}")[:32]

    def digester(self, name: str):
        """:meth:`digest` of many values of one key: the HMAC with the key and ``name`` already fed
        (copied for each value), the same digests at a third of the cost.

        >>> import tempfile; from jukinet.keyring import KeyRing
        >>> d = tempfile.mkdtemp(); log = OperationLog(KeyRing(d), d)
        >>> log.digester("name")("山田") == log.digest("name", "山田")
        True
        """
        base = hmac.new(self.keys.key("search-keys"), f"{name}\x1f".encode("utf-8"), hashlib.sha256)

        def digest(value) -> str:
            h = base.copy()
            h.update(f"{value}".encode("utf-8"))
            return h.hexdigest()[:32]
        return digest

    def digest_keys(self, keys: dict | None) -> dict:
        return {k: self.digest(k, v) for k, v in (keys or {}).items() if v not in (None, "")}

    def _head_mac(self, chain: str, seq: int, entry_hash: str) -> str:
        return cpf.head_mac(self.keys, chain, seq, entry_hash)

    def append(self, conn: Connection, chain: str, *, actor: Actor, action: str, outcome: str = "granted",
               purpose_code: str | None = None, case_ref: str | None = None, keys: dict | None = None,
               result_count: int | None = None, detail: dict | None = None,
               now: datetime | None = None) -> int:
        """Append one entry on ``conn`` (the caller's transaction); return its seq.

        ``keys`` are raw search keys: only their keyed digests are stored. ``detail`` must hold no
        personal data (codes, modes, counts). Any failure raises :class:`OplogUnavailable` — but a full
        disk or a read-only database (:func:`jukinet.store.faults.is_storage_fault`, not a lost
        connection) raises :class:`StorageUnavailable`: the doors answer it 503 and the request may be
        sent again once the storage takes writes (ADR 0038, 0051). Either way nothing is shown.
        """
        if actor.witness_id:
            detail = {**(detail or {}), "witness_id": actor.witness_id}
        try:
            st = _statements(chain, conn.dialect.name)
            h = conn.execute(st.head, {"h_chain": chain}).one_or_none()
            if h is None:      # the chain's first entry: its anchor starts at the genesis
                conn.execute(st.genesis, {"chain": chain, "seq": 0, "entry_hash": GENESIS,
                                          "mac": self._head_mac(chain, 0, GENESIS)})
                h = conn.execute(st.head, {"h_chain": chain}).one()
            row = {
                "seq": h.seq + 1, "at": _utc(now or datetime.now(timezone.utc)),
                "operator_id": actor.operator_id, "terminal_id": actor.terminal_id,
                "action": action, "outcome": outcome, "purpose_code": purpose_code, "case_ref": case_ref,
                "keys": _json(self.digest_keys(keys)), "result_count": result_count, "detail": _json(detail),
                "prev_hash": h.entry_hash,
            }
            row["entry_hash"] = self.keys.mac("chain", canonical(chain, row))
            conn.execute(st.insert, row)
            conn.execute(st.advance, {"h_chain": chain, "seq": row["seq"], "entry_hash": row["entry_hash"],
                                      "mac": self._head_mac(chain, row["seq"], row["entry_hash"])})
            metrics.oplog_appended(chain, action, outcome)   # A7 (ADR 0027): by action and outcome only
            return row["seq"]
        except JukinetError:
            raise
        except Exception as e:  # noqa: BLE001 - any storage failure refuses the request
            if faults.is_storage_fault(e) and not faults.connection_lost(e):
                raise StorageUnavailable() from e
            raise OplogUnavailable() from e

    # ---- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.data_dir / CHECKPOINTS

    def write_checkpoint(self, chain: str, seq: int, entry_hash: str, source: str = "verify") -> dict:
        return cpf.CheckpointFile(self.keys, self.data_dir).append(chain, seq, entry_hash, source)

    # ---- verification --------------------------------------------------------------------------

    def verify(self, conn: Connection, chain: str) -> VerifyReport:
        """Walk the chain in seq order; report altered, deleted, reordered or truncated entries."""
        log, head = OPLOG[chain]
        rep = VerifyReport(chain)
        expected_seq, prev = 1, GENESIS
        seen: dict[int, str] = {}
        for row in conn.execution_options(yield_per=2000).execute(select(log).order_by(log.c.seq)):
            rep.count += 1
            if row.seq != expected_seq:
                rep.problems.append(Problem(expected_seq, "deleted",
                                            f"項目が欠落しています (seq {expected_seq}〜{row.seq - 1} が削除されました)"))
            elif row.prev_hash != prev:
                rep.problems.append(Problem(row.seq, "reordered",
                                            "直前の項目とのつながりが切れています (削除・入れ替えの疑い)"))
            if self.keys.mac("chain", canonical(chain, row)) != row.entry_hash:
                rep.problems.append(Problem(row.seq, "altered", "内容が改ざんされています (ハッシュ不一致)"))
            seen[row.seq] = row.entry_hash
            expected_seq, prev = row.seq + 1, row.entry_hash
            if len(rep.problems) >= 20:
                break
        last_seq = expected_seq - 1
        rep.head_seq, rep.head_hash = last_seq, prev
        h = conn.execute(select(head).where(head.c.chain == chain)).first()
        if h is None:
            if rep.count:
                rep.problems.append(Problem(None, "anchor", "アンカー (先頭情報) がありません"))
        else:
            if h.mac != self._head_mac(chain, h.seq, h.entry_hash):
                rep.problems.append(Problem(None, "anchor", "アンカー (先頭情報) が改ざんされています"))
            elif h.seq > last_seq:
                rep.problems.append(Problem(last_seq + 1, "truncated",
                                            f"末尾の項目が削除されています (アンカーは seq {h.seq}、ログは seq {last_seq} まで)"))
            elif h.seq < last_seq or h.entry_hash != prev:
                rep.problems.append(Problem(h.seq, "anchor", "アンカーとログの末尾が一致しません"))
        kinds = {cpf.FORGED: "anchor", cpf.SHORTER: "rolled_back", cpf.DIFFERS: "rolled_back", cpf.MISSING: "checkpoint"}
        for f in cpf.check(self.keys, self.data_dir, conn, chain, count=rep.count, last_seq=last_seq, seen=seen,
                           head_present=h is not None):
            rep.problems.append(Problem(f.seq, kinds[f.code], f.message, f.code))
        return rep


def verify_all(log: OperationLog, engines: dict, *, checkpoint: bool = False, adopt: bool = False) -> list[VerifyReport]:
    """Verify every chain; with ``checkpoint``, record the head of each intact chain. ``adopt``
    (``jukinet audit checkpoint``: a person has decided) also records a chain whose only finding is
    a missing checkpoint."""
    reports = []
    for chain in CHAINS:
        with engines[chain].connect() as conn:
            rep = log.verify(conn, chain)
        missing_only = rep.problems and all(p.code == cpf.MISSING for p in rep.problems)
        if checkpoint and (rep.ok or (adopt and missing_only)):
            log.write_checkpoint(chain, rep.head_seq, rep.head_hash)
        reports.append(rep)
    return reports


def entry(conn: Connection, chain: str, seq: int):
    """One entry of a chain, or None."""
    log, _ = OPLOG[chain]
    return conn.execute(select(log).where(log.c.seq == seq)).first()


def recent(conn: Connection, chain: str, *, limit: int = 50, operator_id: str | None = None) -> Iterable:
    log, _ = OPLOG[chain]
    q = select(log).order_by(log.c.seq.desc()).limit(limit)
    if operator_id:
        q = q.where(log.c.operator_id == operator_id)
    return conn.execute(q).all()
