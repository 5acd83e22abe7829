"""MAC'd checkpoints of the operation-log chains, written by the running system (A4; ADR 0031).

A checkpoint records, for one chain (``juki``, ``fuhyo``, ``admin``), its length (the head's seq)
and head digest, with a MAC under the installation's key ring (purpose ``chain``,
:mod:`jukinet.keyring`). They are appended to ``DIR/audit/checkpoints.jsonl``, a file in the
data directory, outside the databases they protect — someone who can write a database can delete
a whole chain *and* its head row, but cannot remove a line from this file nor forge one.

The file format is the one ``jukinet audit checkpoint`` always wrote (one JSON object a line:
``chain``, ``seq``, ``entry_hash``, ``at``, ``mac``); a line may also carry ``source`` (``init``,
``start``, ``daily``, ``report``, ``verify``), which is informational and not covered by the MAC.

Written:

* at ``jukinet init`` (:func:`genesis`: every chain empty, seq 0), so an installation has a
  checkpoint from its first day;
* by the running system (:func:`take`): at the start of ``jukinet serve`` and daily (the ops
  scheduler), and on every ``audit report`` (CLI, screen, scheduled). It reads only each chain's
  head row and two entries (cheap), and never writes over a chain that is shorter than, or differs
  from, its last checkpoint, whose head does not verify, or that has history but no checkpoint yet
  (then a person decides: ``jukinet audit checkpoint`` verifies the whole chain and records it);
* by ``jukinet audit verify`` / ``jukinet audit checkpoint`` (:func:`jukinet.security.oplog.verify_all`).

:func:`check` is what ``audit verify`` adds to the walk of a chain: each checkpoint's MAC, the chain
not shorter than and equal to every checkpoint, and a checkpoint present whenever the chain has
history (for ``admin``, a roster with operators is history too: registering one is logged there).

This module reads the databases with SQLAlchemy Core only and does not import
:mod:`jukinet.security.oplog` (which imports it), so the operations status can read the file too.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from jukinet.keyring import KEY_FILE, KeyRing
from jukinet.store.tables_security import OPLOG, operators

log = logging.getLogger("jukinet.audit")

GENESIS = "0" * 64
CHAINS = tuple(OPLOG)
CHECKPOINTS = Path("audit") / "checkpoints.jsonl"

#: stable codes of what ``audit verify`` reports against the checkpoints
MISSING = "OPLOG_CHECKPOINT_MISSING"
FORGED = "OPLOG_CHECKPOINT_FORGED"
SHORTER = "OPLOG_SHORTER_THAN_CHECKPOINT"
DIFFERS = "OPLOG_DIFFERS_FROM_CHECKPOINT"
#: and when the running system declines to record a head
ANCHOR = "OPLOG_ANCHOR_INVALID"

MESSAGES = {
    MISSING: "操作ログの履歴があるのにチェックポイントがありません (ログ全体の削除、またはチェックポイントファイルの削除の疑い)。"
             "ログを確認のうえ `jukinet audit checkpoint` で記録してください",
    FORGED: "チェックポイントの MAC が一致しません (チェックポイントファイルの改ざん)",
    SHORTER: "操作ログがチェックポイント (seq {seq}) より短くなっています (削除・巻き戻しの疑い)",
    DIFFERS: "操作ログの seq {seq} がチェックポイントと一致しません (差し替え・巻き戻しの疑い)",
    ANCHOR: "アンカー (先頭情報) がログの末尾と一致しないため、チェックポイントを記録しませんでした",
}


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def head_mac(keys: KeyRing, chain: str, seq: int, entry_hash: str) -> str:
    """The MAC of a chain's anchor row (``oplog_head``)."""
    return keys.mac("chain", f"head\x1f{chain}\x1f{seq}\x1f{entry_hash}")


def checkpoint_mac(keys: KeyRing, chain: str, seq, entry_hash, at) -> str:
    return keys.mac("chain", f"checkpoint\x1f{chain}\x1f{seq}\x1f{entry_hash}\x1f{at}")


@dataclass(frozen=True)
class Checkpoint:
    chain: Optional[str]
    seq: Optional[int]
    entry_hash: Optional[str]
    at: Optional[str]
    source: Optional[str]
    valid: bool           # the MAC verifies (an unreadable line is not valid, for every chain)


@dataclass
class Finding:
    """One problem of a chain against its checkpoints (code, Japanese message, seq or None)."""

    code: str
    message: str
    seq: Optional[int] = None


class CheckpointFile:
    def __init__(self, keys: KeyRing, data_dir: Path | str):
        self.keys = keys
        self.path = Path(data_dir) / CHECKPOINTS

    def read(self) -> list[Checkpoint]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                chain, seq, eh, at = d["chain"], d["seq"], d["entry_hash"], d["at"]
                valid = isinstance(seq, int) and d.get("mac") == checkpoint_mac(self.keys, chain, seq, eh, at)
                out.append(Checkpoint(chain, seq, eh, at, d.get("source"), valid))
            except (ValueError, KeyError, TypeError, AttributeError):
                out.append(Checkpoint(None, None, None, None, None, False))
        return out

    def for_chain(self, chain: str, cps: list[Checkpoint] | None = None) -> list[Checkpoint]:
        """The lines of ``chain``; a line that cannot be read counts for every chain (as forged)."""
        return [c for c in (self.read() if cps is None else cps) if c.chain in (chain, None)]

    def append(self, chain: str, seq: int, entry_hash: str, source: str) -> dict:
        at = _now_iso()
        cp = {"chain": chain, "seq": seq, "entry_hash": entry_hash, "at": at,
              "mac": checkpoint_mac(self.keys, chain, seq, entry_hash, at), "source": source}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(cp, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return cp


def has_roster(conn: Connection, chain: str) -> bool:
    """``admin`` only: registering an operator is logged in the admin chain, so a roster is history."""
    return chain == "admin" and bool(conn.execute(select(func.count()).select_from(operators)).scalar_one())


def check(keys: KeyRing, data_dir: Path | str, conn: Connection, chain: str, *, count: int, last_seq: int,
          seen: dict[int, str], head_present: bool) -> list[Finding]:
    """The chain as walked by ``audit verify`` (``count`` entries up to ``last_seq``, ``seen``: seq →
    entry hash) against its checkpoints."""
    out: list[Finding] = []
    cps = CheckpointFile(keys, data_dir).for_chain(chain)
    for cp in cps:
        if not cp.valid:
            out.append(Finding(FORGED, MESSAGES[FORGED]))
        elif cp.seq > last_seq:
            out.append(Finding(SHORTER, MESSAGES[SHORTER].format(seq=cp.seq), last_seq + 1))
        elif cp.seq and cp.seq in seen and seen[cp.seq] != cp.entry_hash:
            out.append(Finding(DIFFERS, MESSAGES[DIFFERS].format(seq=cp.seq), cp.seq))
    if not cps and (count or head_present or has_roster(conn, chain)):
        out.append(Finding(MISSING, MESSAGES[MISSING]))
    return out


@dataclass
class Taken:
    """What the running system did for one chain: recorded (seq) or declined (code)."""

    chain: str
    seq: Optional[int] = None
    code: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.code is None


def _entry_hash(conn: Connection, chain: str, seq: int) -> Optional[str]:
    log_t, _ = OPLOG[chain]
    return conn.execute(select(log_t.c.entry_hash).where(log_t.c.seq == seq)).scalar()


def current_head(keys: KeyRing, conn: Connection, chain: str, cps: list[Checkpoint]) -> tuple[Optional[str], int, str]:
    """(code or None, seq, entry_hash) of the chain's head, as far as it can be told cheaply."""
    log_t, head = OPLOG[chain]
    h = conn.execute(select(head).where(head.c.chain == chain)).first()
    max_seq = conn.execute(select(func.max(log_t.c.seq))).scalar() or 0
    if h is None:
        seq, eh = 0, GENESIS
        if max_seq:
            return ANCHOR, max_seq, GENESIS
    else:
        seq, eh = int(h.seq), h.entry_hash
        if h.mac != head_mac(keys, chain, seq, eh) or max_seq != seq or (seq and _entry_hash(conn, chain, seq) != eh):
            return ANCHOR, seq, eh
    if any(not c.valid for c in cps):
        return FORGED, seq, eh
    if not cps:
        if seq or has_roster(conn, chain):
            return MISSING, seq, eh
        return None, seq, eh
    for c in cps:
        if c.seq > seq:
            return SHORTER, seq, eh
        if c.seq and _entry_hash(conn, chain, c.seq) != c.entry_hash:
            return DIFFERS, seq, eh
    return None, seq, eh


def take(keys: KeyRing, data_dir: Path | str, engines: dict, *, source: str) -> list[Taken]:
    """Record the head of every chain (the running system: start, daily, ``audit report``).

    Never raises: a chain that is shorter than or differs from a checkpoint, has a bad head, or has
    history without a checkpoint is not recorded; it is logged by code (no personal data) and
    ``audit verify`` reports it."""
    f = CheckpointFile(keys, data_dir)
    out = []
    try:
        cps = f.read()
    except OSError as e:
        log.error("operation-log checkpoints unreadable: %s", type(e).__name__)
        return [Taken(c, code="OPLOG_CHECKPOINT_UNREADABLE") for c in CHAINS]
    for chain in CHAINS:
        t = Taken(chain)
        try:
            with engines[chain].connect() as conn:
                code, seq, eh = current_head(keys, conn, chain, f.for_chain(chain, cps))
            t.seq = seq
            if code is None:
                f.append(chain, seq, eh, source)
            else:
                t.code = code
                log.error("operation-log checkpoint not recorded: chain=%s code=%s", chain, code)
        except Exception as e:  # noqa: BLE001 - reported by code; the caller carries on
            t.code = getattr(e, "code", None) or type(e).__name__
            log.error("operation-log checkpoint failed: chain=%s code=%s", chain, t.code)
        out.append(t)
    return out


def take_for(config, registers, *, source: str) -> list[Taken]:
    """:func:`take` for an installation (its key ring and data directory, its three databases)."""
    return take(KeyRing(config.data_dir), config.data_dir, {c: registers.engine(c) for c in CHAINS}, source=source)


def genesis(data_dir: Path | str) -> None:
    """At ``jukinet init``: every chain is empty; record that (only when there is no file yet)."""
    f = CheckpointFile(KeyRing(data_dir), data_dir)
    if not f.path.exists():
        for chain in CHAINS:
            f.append(chain, 0, GENESIS, "init")


@dataclass
class ChainCheckpoint:
    """The last checkpoint of a chain, for the operations status (seq, time, source — no content)."""

    chain: str
    seq: Optional[int] = None
    at: Optional[str] = None
    source: Optional[str] = None
    error_code: Optional[str] = None


def latest(data_dir: Path | str) -> list[ChainCheckpoint]:
    """The last valid checkpoint of each chain (``error_code``: none, a forged line, unreadable)."""
    data_dir = Path(data_dir)
    out = [ChainCheckpoint(c) for c in CHAINS]
    try:
        if not (data_dir / KEY_FILE).exists():
            raise FileNotFoundError(KEY_FILE)
        cps = CheckpointFile(KeyRing(data_dir), data_dir).read()
    except (OSError, ValueError):
        for st in out:
            st.error_code = "OPLOG_CHECKPOINT_UNREADABLE"
        return out
    for st in out:
        mine = [c for c in cps if c.chain in (st.chain, None)]
        if any(not c.valid for c in mine):
            st.error_code = FORGED
        good = [c for c in mine if c.valid]
        if good:
            st.seq, st.at, st.source = good[-1].seq, good[-1].at, good[-1].source
        elif st.error_code is None:
            st.error_code = MISSING
    return out
