"""事務1 intake: check a notification from a 市町村CS and apply it in one transaction (U1–U4, U6).

:meth:`IntakeService.submit` takes the notifications of one request (one, or a batch) from a
sender whose identity came from its verified client certificate, and returns one answer per
notification. Per register, all of a request's notifications — and those of the other requests
waiting at the same moment (group commit: one fsync for many CS) — are handled in **one write
transaction**, in arrival order, each checked against what the ones before it left:

1. The register's 更新順番号 counter row is locked first (SQLite: the transaction is
   ``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT … FOR UPDATE`` on the counter), so writers are
   serialised, every read sees the latest committed version of a person, and 更新順番号 are
   committed in their own order — which the outbox relies on (ADR 0007).
2. Idempotency: (sender, notification_id) already accepted with the same digest → "duplicate",
   nothing changes; with another digest → refused ``NOTIFICATION_ID_REUSED``.
3. Form (:mod:`jukinet.intake.wire`), the sender (the payload's municipality_code must be the
   certificate's), then the reason table (:func:`jukinet.domain.reasons.check_juki` /
   :func:`~jukinet.domain.reasons.check_fuhyo`) against what is on file.
4. Accepted: the repository's ``apply`` (current + history + 更新順番号), the outbox entry, the
   idempotency row and the communication-log row. Refused: only the communication-log row.

All checks happen before the first write of a notification, so a refused notification leaves no
trace but its log row, even inside a batch. The answers are returned only after the commit.
Nothing here logs or raises personal data: refusals carry a code and a Japanese message naming the
item, never its value.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Iterable, Optional

from psycopg.rows import dict_row
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from jukinet.config import Config
from jukinet.domain.reasons import JUKI_REASONS, check_fuhyo, check_juki
from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.errors import JukinetError
from jukinet.intake import wire
from jukinet.pki import PeerIdentity
from jukinet.store import faults
from jukinet.store.registers import Registers
from jukinet.store.repository import JST, FuhyoRepository, JukiRepository, utcnow
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, juki_counters, juki_current,
                                  juki_history)
from jukinet.observability import metrics
from jukinet.store.tables_intake import INTAKE_TABLES
import hashlib
from jukinet import geo

log = logging.getLogger("jukinet.intake")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


def today_jst(now: Optional[datetime] = None) -> date:
    """The date in Japan: 異動年月日 may not be after it."""
    return (now or utcnow()).astimezone(JST).date()


def message_id(prefecture_code: str, register: str, update_seq: int) -> str:
    """The id of the message that forwards update ``update_seq`` (the national side dedupes on it).

    >>> message_id("240001", "juki", 42)
    '240001-juki-42'
    """
    return f"{prefecture_code}-{register}-{update_seq}"


@dataclass
class Item:
    """One notification of a request, as received."""

    obj: Any
    digest: str
    notification_id: Optional[str]
    register: Optional[str]
    size: int


def make_item(obj: Any, size: Optional[int] = None) -> Item:
    body = wire.canonical(obj)

    return Item(obj, hashlib.sha256(body).hexdigest(), wire.notification_id_of(obj), wire.register_of(obj),
                size if size is not None else len(body))


def answer(nid: Optional[str], status: str, error: Optional[JukinetError] = None) -> dict:
    return {"notification_id": nid, "status": status, "error": error.as_dict() if error else None}


def _short(e: JukinetError) -> JukinetError:
    """The refusal as answered: code + message (+ item name), nothing else."""
    return JukinetError(e.code, e.message, field=getattr(e, "field", None))


def lock_register(conn: Connection, counters) -> int:
    """Serialise writers of one register on its 更新順番号 counter row (see module docstring) and
    return the counter's value: one statement (SQLite: ``BEGIN IMMEDIATE`` already holds the write
    lock, the row is only read; PostgreSQL: ``SELECT … FOR UPDATE``)."""
    sqlite = conn.dialect.name == "sqlite"
    value = conn.execute(_statements(counters).count_read if sqlite else _statements(counters).count_lock).scalar()
    if value is None:
        # created by migration 0002; recreated here only if someone removed it
        if sqlite:
            conn.execute(counters.insert().values(name="update_seq", value=0))
            return 0
        conn.execute(text("INSERT INTO counters (name, value) VALUES ('update_seq', 0) ON CONFLICT (name) DO NOTHING"))
        value = conn.execute(_statements(counters).count_lock).scalar()
    return value


def comm_row(*, at: datetime, channel: str, direction: str, peer: str, result: str, code: Optional[str] = None,
             peer_cert_sha256: Optional[str] = None, message_id: Optional[str] = None, digest: Optional[str] = None,
             envelope_digest: Optional[str] = None, size: Optional[int] = None) -> dict:
    return dict(at=at, channel=channel, direction=direction, peer=peer, peer_cert_sha256=peer_cert_sha256,
                message_id=message_id, digest=digest, envelope_digest=envelope_digest, size=size,
                result=result, code=code)


class IntakeService:
    """The intake of both registers (one instance per server process)."""

    def __init__(self, registers: Registers, config: Config,
                 on_applied: Optional[Callable[[str], None]] = None):
        self.registers = registers
        self.config = config
        self.on_applied = on_applied

        #: the address prefix of each municipality of the installation's prefecture (ADR 0035)
        self._prefix = {m.code: m.address_prefix for m in geo.municipalities(config.prefecture_code)}
        self._groups = {"juki": _Group(), "fuhyo": _Group()}

    # --- logging of refusals that never reach a register ------------------------------------

    def record_refusal(self, *, peer: str, code: str, fingerprint: Optional[str] = None,
                       items: Iterable[Item] = (), envelope_digest: Optional[str] = None,
                       size: Optional[int] = None, register: str = "juki") -> None:
        """Write communication-log rows for a request refused as a whole (no certificate, a body
        that is not JSON, …). Each notification that could be told apart gets its own row."""
        now = utcnow()
        rows = [comm_row(at=now, channel="cs", direction="in", peer=peer, result=REJECTED, code=code,
                         peer_cert_sha256=fingerprint, message_id=i.notification_id, digest=i.digest,
                         envelope_digest=envelope_digest, size=i.size) for i in items]
        if not rows:
            rows = [comm_row(at=now, channel="cs", direction="in", peer=peer, result=REJECTED, code=code,
                             peer_cert_sha256=fingerprint, digest=envelope_digest, envelope_digest=envelope_digest,
                             size=size)]
        by_register: dict[str, list] = {}
        for item, row in zip(list(items) or [None], rows):
            reg = (item.register if item is not None and item.register else register)
            by_register.setdefault(reg, []).append(row)
        for reg, rs in by_register.items():
            comm = INTAKE_TABLES[reg][2]
            with self.registers.engine(reg).begin() as conn:
                conn.execute(insert(comm), rs)
            metrics.intake_refused(reg, code, len(rs))   # A7: counted by code (ADR 0027)

    # --- the intake ---------------------------------------------------------------------------

    def submit(self, sender: PeerIdentity, items: list[Item], *, fingerprint: Optional[str] = None,
               envelope_digest: Optional[str] = None) -> list[dict]:
        """Check and apply each notification; one answer per item, in order, after commit.

        Concurrent requests to one register are committed together (group commit): the first
        caller to find the register idle becomes the leader and applies every request waiting at
        that moment in one transaction, then hands the lead to a waiting caller. Each request is
        checked as if it came alone, in arrival order, and every caller gets its answers only
        after the shared commit. One fsync serves many CS at once.
        """
        answers: list[Optional[dict]] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item.register or "juki", []).append(i)
        for register, idx in groups.items():
            req = _Request(sender, [items[i] for i in idx], fingerprint, envelope_digest)
            got = self._grouped(register, req)
            metrics.intake_answers(register, got)
            for i, a in zip(idx, got):
                answers[i] = a
        return answers  # type: ignore[return-value]

    def _grouped(self, register: str, req: "_Request") -> list[dict]:
        g = self._groups[register]
        me = _Waiter(req)
        with g.lock:
            g.waiting.append(me)
            lead = not g.busy
            if lead:
                g.busy = True
        if not lead:
            me.event.wait()
            if not me.lead:
                return me.result()
        # the leader: apply what is waiting (including our own request), then hand over
        while True:
            with g.lock:
                batch, size = [], 0
                while g.waiting and (not batch or size + len(g.waiting[0].req.items) <= GROUP_MAX_ITEMS):
                    w = g.waiting.pop(0)
                    batch.append(w)
                    size += len(w.req.items)
            self._apply_group(register, batch)
            for w in batch:
                if w is not me:
                    w.event.set()
            with g.lock:
                if me.done:
                    if g.waiting:
                        nxt = g.waiting[0]   # it waits for its answer: it leads the next round
                        nxt.lead = True
                        nxt.event.set()
                    else:
                        g.busy = False
                    return me.result()

    def _apply_group(self, register: str, batch: list["_Waiter"]) -> None:
        try:
            results = self._apply_requests(register, [w.req for w in batch])
            for w, r in zip(batch, results):
                w.answers = r
        except Exception as e:
            if faults.is_storage_fault(e):
                # a full disk or a read-only database (ADR 0038): no request can be applied now, and
                # splitting would only repeat the failure per notification — all are answered 503
                for w in batch:
                    w.error = e
                    w.done = True
                return
            # something unexpected (a database error): each request on its own, and within a request
            # each notification on its own, so that one bad apple does not cost the others
            if len(batch) > 1 or len(batch[0].req.items) > 1:
                log.warning("intake group fell back to single requests (register=%s, requests=%d)",
                            register, len(batch))
            for w in batch:
                try:
                    w.answers = self._apply_requests(register, [w.req])[0]
                except Exception as e:  # noqa: BLE001
                    if len(w.req.items) == 1:
                        w.error = e
                        continue
                    try:
                        w.answers = [self._apply_requests(register, [_Request(w.req.sender, [it], w.req.fingerprint,
                                                                              w.req.envelope_digest)])[0][0]
                                     for it in w.req.items]
                    except Exception as e2:  # noqa: BLE001
                        w.error = e2
        for w in batch:
            w.done = True

    def _apply_requests(self, register: str, requests: list["_Request"]) -> list[list[dict]]:
        """One write transaction for the notifications of one or more requests of one register
        (set-based: what is on file is read once, the writes go out as ``executemany``)."""
        processed, outbox, comm = INTAKE_TABLES[register]
        current_t, history_t, counters_t, codec = _REGISTER_TABLES[register]
        now = utcnow()
        today = today_jst(now)
        notified = now.astimezone(JST).date()
        results: list[list[dict]] = [[] for _ in requests]
        comm_rows: list[dict] = []
        processed_rows: list[dict] = []
        outbox_rows: list[dict] = []
        history_rows: list[dict] = []
        entries = []      # (request index, request, item, parsed notification or error)
        wanted = set()
        nids_by_sender: dict[str, set] = {}
        for r, req in enumerate(requests):
            for item in req.items:
                try:
                    n = wire.parse(item.obj)
                    wanted.add(n.juminhyo_code)
                    if n.new_juminhyo_code:
                        wanted.add(n.new_juminhyo_code)
                except JukinetError as e:
                    n = e
                entries.append((r, req, item, n))
                if item.notification_id is not None:
                    nids_by_sender.setdefault(req.sender.code, set()).add(item.notification_id)
        with self.registers.uow(register, write=True) as uow:
            conn = uow.conn
            to_row, from_row = codec(conn)
            read = _read_pipelined(conn, register, from_row, wanted, nids_by_sender)
            if read is None:    # SQLite, or a register without its counter row (recreated here)
                seq = lock_register(conn, counters_t)
                on_file = _fetch_versions(conn, current_t, from_row, wanted)      # code -> latest version
                in_history = _fetch_history_codes(conn, history_t, wanted)        # codes with a history
                digests = {(code, nid): d for code, nids in nids_by_sender.items()  # accepted earlier
                           for nid, d in _fetch_digests(conn, processed, code, nids).items()}
            else:
                seq, on_file, in_history, digests = read
            first_seq = seq
            overlay: dict[str, object] = {}   # code -> version after this request so far (None: moved away)
            for r, req, item, n in entries:
                sender, fingerprint, envelope_digest = req.sender, req.fingerprint, req.envelope_digest
                peer = sender.label
                nid = item.notification_id
                status, error = REJECTED, None
                try:
                    prior = digests.get((sender.code, nid)) if nid is not None else None
                    if prior is not None:
                        if prior != item.digest:
                            raise JukinetError("NOTIFICATION_ID_REUSED",
                                               "この通知IDは別の内容の通知で使用済みです。", field="notification_id")
                        status = DUPLICATE
                    else:
                        if isinstance(n, JukinetError):
                            raise n
                        if n.municipality_code != sender.code:
                            raise JukinetError("MUNICIPALITY_MISMATCH",
                                               "市町村コードが送信元の市町村CSの証明書と一致しません。",
                                               field="municipality_code")

                        def version(code):
                            return overlay[code] if code in overlay else on_file.get(code)

                        prev = version(n.juminhyo_code)
                        check = self._check_juki if register == "juki" else self._check_fuhyo
                        stored = check(sender.code, n, today, prev, version, in_history)
                        seq += 1
                        new = stored.replace(update_seq=seq, timestamp=now, notified_date=notified)
                        if prev is not None:
                            h = to_row(prev)
                            h.update(superseded_at=now, superseded_by_seq=seq, superseded_by_reason=new.reason)
                            history_rows.append(h)
                            in_history.add(prev.juminhyo_code)
                            if prev.juminhyo_code != new.juminhyo_code:
                                overlay[prev.juminhyo_code] = None
                        overlay[new.juminhyo_code] = new
                        status = ACCEPTED
                        digests[(sender.code, nid)] = item.digest
                        processed_rows.append(dict(sender_code=sender.code, notification_id=nid,
                                                   digest=item.digest, update_seq=seq, received_at=now))
                        prior_code = prev.juminhyo_code if (
                            prev is not None and prev.juminhyo_code != new.juminhyo_code) else None
                        outbox_rows.append(dict(update_seq=seq,
                                                message_id=message_id(self.config.prefecture_code, register, seq),
                                                juminhyo_code=new.juminhyo_code, prior_code=prior_code,
                                                state="pending", attempts=0, last_error=None, created_at=now,
                                                delivered_at=None))
                except JukinetError as e:
                    error = _short(e)
                    status = REJECTED
                results[r].append(answer(nid, status, error))
                comm_rows.append(comm_row(at=now, channel="cs", direction="in", peer=peer, result=status,
                                          code=error.code if error else None, peer_cert_sha256=fingerprint,
                                          message_id=nid, digest=item.digest, envelope_digest=envelope_digest,
                                          size=item.size))
            with _pipeline(conn):
                if processed_rows:
                    # what the repository's apply() does, for the whole request at once: earlier versions
                    # to history, the current rows replaced, the 更新順番号 counter advanced
                    gone = [c for c in overlay if c in on_file]
                    for chunk in _chunks(gone):
                        conn.execute(_statements(current_t).delete, {"codes": chunk})
                    if history_rows:
                        conn.execute(_statements(history_t).insert, history_rows)
                    conn.execute(_statements(current_t).insert,
                                 [to_row(v) for v in overlay.values() if v is not None])
                    conn.execute(_statements(counters_t).count_set, {"value": seq})
                    conn.execute(_statements(processed).insert, processed_rows)
                    conn.execute(_statements(outbox).insert, outbox_rows)
                conn.execute(_statements(comm).insert, comm_rows)
        if seq > first_seq and self.on_applied is not None:
            self.on_applied(register)
        return results

    # --- the logical checks: what is on file + the reason table -------------------------------

    def _check_address(self, sender: str, address: Optional[str]) -> None:
        prefix = self._prefix.get(sender)
        if prefix and address is not None and not address.startswith(prefix):
            raise JukinetError("ADDRESS_OUTSIDE_MUNICIPALITY", "住所が送信元の市町村の区域にありません。", field="address")

    def _check_juki(self, sender: str, n: wire.Notification, today: date, prev: Optional[JukiRecord],
                    version, in_history: set) -> JukiRecord:
        """What is on file (``prev``: the latest version, current or removed) + the reason table."""
        it: wire.JukiItems = n.record
        current = prev if prev is not None and not prev.deleted else None
        reason = JUKI_REASONS.get(n.reason)
        any_record = prev is not None or n.juminhyo_code in in_history
        new_in_use = False
        if n.new_juminhyo_code is not None:
            new_in_use = version(n.new_juminhyo_code) is not None or n.new_juminhyo_code in in_history
        proposed = derive_juki(JukiRecord(
            juminhyo_code=n.juminhyo_code, name=it.name, name_kana=it.name_kana, birth_date=it.birth_date,
            sex=it.sex, address=it.address, kojin_bango=it.kojin_bango, reason=n.reason, change_date=n.change_date,
            municipality_code=sender, oaza_code=it.oaza_code, former_surname=it.former_surname))
        stored = check_juki(n.reason, sender=sender, current=current, any_record=any_record, proposed=proposed,
                            today=today, new_juminhyo_code=n.new_juminhyo_code, new_code_in_use=new_in_use)
        if reason is not None and (reason.category == "記載" or (current is not None and stored.address != current.address)):
            self._check_address(sender, stored.address)
        if current is not None:
            # 外字変更連番: carried over, advanced when a field with 外字 changes
            stored = stored.replace(
                name_gaiji_change_seq=current.name_gaiji_change_seq
                + int(stored.name != current.name and stored.name_gaiji_count > 0),
                address_gaiji_change_seq=current.address_gaiji_change_seq
                + int(stored.address != current.address and stored.address_gaiji_count > 0),
                former_surname_gaiji_change_seq=current.former_surname_gaiji_change_seq
                + int(stored.former_surname != current.former_surname and stored.former_surname_gaiji_count > 0))
        return stored

    def _check_fuhyo(self, sender: str, n: wire.Notification, today: date, prev: Optional[FuhyoRecord],
                     version, in_history: set) -> FuhyoRecord:
        it: wire.FuhyoItems = n.record
        current = prev if prev is not None and prev.status == "現存" else None
        new_in_use = False
        if n.new_juminhyo_code is not None:
            new_in_use = version(n.new_juminhyo_code) is not None or n.new_juminhyo_code in in_history
        proposed = derive_fuhyo(FuhyoRecord(
            juminhyo_code=n.juminhyo_code, name=it.name, name_kana=it.name_kana, birth_date=it.birth_date,
            sex=it.sex, address_municipality_code=it.address_municipality_code, address=it.address,
            change_date=n.change_date, fuhyo_municipality_code=it.fuhyo_municipality_code, status=it.status,
            last_address=it.last_address, old_juminhyo_code=it.old_juminhyo_code, reason=n.reason))
        return check_fuhyo(n.reason, sender=sender, current=current, any_record=prev is not None, proposed=proposed,
                           today=today, new_juminhyo_code=n.new_juminhyo_code, new_code_in_use=new_in_use)


# --- group commit ------------------------------------------------------------------------------------

#: at most this many notifications in one group transaction (a batch request of 1,000 goes alone)
GROUP_MAX_ITEMS = 2000


@dataclass
class _Request:
    sender: PeerIdentity
    items: list
    fingerprint: Optional[str]
    envelope_digest: Optional[str]


class _Waiter:
    def __init__(self, req: _Request):
        self.req = req
        self.event = threading.Event()
        self.lead = False
        self.done = False
        self.answers: Optional[list[dict]] = None
        self.error: Optional[BaseException] = None

    def result(self) -> list[dict]:
        if self.error is not None:
            raise self.error
        return self.answers  # type: ignore[return-value]


class _Group:
    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: list[_Waiter] = []
        self.busy = False


# --- set-based reads --------------------------------------------------------------------------------

_REGISTER_TABLES = {
    "juki": (juki_current, juki_history, juki_counters, JukiRepository.codec),     # 個人番号 sealed (ADR 0025)
    "fuhyo": (fuhyo_current, fuhyo_history, fuhyo_counters, FuhyoRepository.codec),
}


def _chunks(values, n=500):
    values = list(values)
    for k in range(0, len(values), n):
        yield values[k:k + n]


class _Statements:
    """The intake's statements on one table, built once (ADR 0063): a statement object made per
    notification was ≈ 20 % of an intake transaction (construction, cache key, compile lookup);
    reused objects keep their cache key and the IN lists are expanding bind parameters."""

    def __init__(self, table):
        c = table.c
        self.insert = table.insert().inline()   # no implicit RETURNING: nothing is read back (pipeline)
        # the same reads for the driver's own cursors on PostgreSQL (``_read_pipelined``): one array
        # parameter for each IN list (``= ANY(%s)``)
        if "juminhyo_code" in c:
            codes = bindparam("codes", expanding=True)
            self.versions = select(table).where(c.juminhyo_code.in_(codes))
            self.history_codes = select(c.juminhyo_code).distinct().where(c.juminhyo_code.in_(codes))
            self.delete = table.delete().where(c.juminhyo_code.in_(codes))
            self.pg_versions = (f"SELECT {', '.join(col.name for col in table.columns)} FROM {table.name} "
                                "WHERE juminhyo_code = ANY(%s)")
            self.pg_history_codes = f"SELECT DISTINCT juminhyo_code FROM {table.name} WHERE juminhyo_code = ANY(%s)"
        if "notification_id" in c and "digest" in c:
            self.digests = select(c.notification_id, c.digest).where(
                c.sender_code == bindparam("sender"), c.notification_id.in_(bindparam("nids", expanding=True)))
            self.pg_digests = (f"SELECT notification_id, digest FROM {table.name} "
                               "WHERE sender_code = %s AND notification_id = ANY(%s)")
        if "name" in c and "value" in c:
            self.count_read = select(c.value).where(c.name == "update_seq")
            self.count_lock = self.count_read.with_for_update()
            self.count_set = table.update().where(c.name == "update_seq").values(value=bindparam("value"))
            self.pg_count_lock = f"SELECT value FROM {table.name} WHERE name = 'update_seq' FOR UPDATE"


@contextmanager
def _pipeline(conn: Connection):
    """PostgreSQL: the writes of a transaction sent as one psycopg pipeline — one round trip for
    the deletes and inserts instead of one each (ADR 0063). Their errors surface when it ends, from
    psycopg itself: they are raised as SQLAlchemy raises a statement's (``IntegrityError``, …; a lost
    connection invalidated), inside the transaction, which then rolls back. SQLite: nothing."""
    if conn.dialect.name != "postgresql":
        yield
        return
    dbapi = conn.dialect.loaded_dbapi
    try:
        with conn.connection.driver_connection.pipeline():
            yield
    except dbapi.Error as e:
        lost = conn.dialect.is_disconnect(e, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(e)
        raise DBAPIError.instance(None, None, e, dbapi.Error, connection_invalidated=lost,
                                  dialect=conn.dialect) from e


@lru_cache(maxsize=None)
def _statements(table) -> _Statements:
    return _Statements(table)


def _read_pipelined(conn: Connection, register: str, from_row, codes: set, nids_by_sender: dict):
    """PostgreSQL: the counter locked and read, the versions on file, the codes with a history and the
    digests accepted earlier — one round trip (with the transaction's BEGIN) instead of five, as one
    psycopg pipeline on the driver's own cursors (ADR 0063). ``None`` on SQLite, or when the counter
    row is missing (the caller's slower path recreates it)."""
    if conn.dialect.name != "postgresql":
        return None
    processed, _outbox, _comm = INTAKE_TABLES[register]
    current_t, history_t, counters_t, _codec = _REGISTER_TABLES[register]
    raw = conn.connection.driver_connection
    wanted = list(codes)
    with _pipeline(conn):
        lock = raw.cursor()
        lock.execute(_statements(counters_t).pg_count_lock)
        versions = raw.cursor(row_factory=dict_row)
        versions.execute(_statements(current_t).pg_versions, [wanted])
        history = raw.cursor()
        history.execute(_statements(history_t).pg_history_codes, [wanted])
        accepted = []
        for sender, nids in nids_by_sender.items():
            cur = raw.cursor()
            cur.execute(_statements(processed).pg_digests, [sender, list(nids)])
            accepted.append((sender, cur))
    row = lock.fetchone()
    if row is None:
        return None
    on_file = {}
    for r in versions.fetchall():
        on_file[r["juminhyo_code"]] = from_row(r)
    in_history = {r[0] for r in history.fetchall()}
    digests = {(sender, nid): d for sender, cur in accepted for nid, d in cur.fetchall()}
    return row[0], on_file, in_history, digests


def _fetch_versions(conn: Connection, table, from_row, codes) -> dict:
    out = {}
    for chunk in _chunks(codes):
        for row in conn.execute(_statements(table).versions, {"codes": chunk}):
            out[row.juminhyo_code] = from_row(row)
    return out


def _fetch_history_codes(conn: Connection, table, codes) -> set:
    out = set()
    for chunk in _chunks(codes):
        out.update(r[0] for r in conn.execute(_statements(table).history_codes, {"codes": chunk}))
    return out


def _fetch_digests(conn: Connection, processed, sender_code: str, nids) -> dict:
    out = {}
    for chunk in _chunks(set(nids)):
        out.update((r[0], r[1]) for r in conn.execute(_statements(processed).digests,
                                                      {"sender": sender_code, "nids": chunk}))
    return out
