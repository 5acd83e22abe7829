"""事務1 intake: check a notification from a 市町村CS and apply it in one transaction (U1–U4, U6).

:meth:`IntakeService.submit` takes the notifications of one request (one, or a batch) from a
sender whose identity came from its verified client certificate, and returns one answer per
notification. Per register, all of a request's notifications are handled in **one write
transaction**:

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
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Iterable, Optional

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection

from jukinet.config import Config
from jukinet.domain.reasons import JUKI_REASONS, ChangeRefused, check_fuhyo, check_juki
from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.errors import JukinetError
from jukinet.intake import wire
from jukinet.pki import PeerIdentity
from jukinet.store.engine import is_sqlite
from jukinet.store.registers import Registers
from jukinet.store.repository import JST, fuhyo_to_row, juki_to_row, row_to_fuhyo, row_to_juki, utcnow
from jukinet.store.tables import (fuhyo_counters, fuhyo_current, fuhyo_history, juki_counters, juki_current,
                                  juki_history)
from jukinet.store.tables_intake import INTAKE_TABLES

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
    import hashlib

    return Item(obj, hashlib.sha256(body).hexdigest(), wire.notification_id_of(obj), wire.register_of(obj),
                size if size is not None else len(body))


def answer(nid: Optional[str], status: str, error: Optional[JukinetError] = None) -> dict:
    return {"notification_id": nid, "status": status, "error": error.as_dict() if error else None}


def _short(e: JukinetError) -> JukinetError:
    """The refusal as answered: code + message (+ item name), nothing else."""
    return JukinetError(e.code, e.message, field=getattr(e, "field", None))


def lock_register(conn: Connection) -> None:
    """Serialise writers of one register on its 更新順番号 counter row (see module docstring)."""
    if is_sqlite(str(conn.engine.url)):
        return  # BEGIN IMMEDIATE already holds the database's write lock
    if conn.execute(text("SELECT value FROM counters WHERE name = 'update_seq' FOR UPDATE")).first() is None:
        # created by migration 0002; recreated here only if someone removed it
        conn.execute(text("INSERT INTO counters (name, value) VALUES ('update_seq', 0) ON CONFLICT (name) DO NOTHING"))
        conn.execute(text("SELECT value FROM counters WHERE name = 'update_seq' FOR UPDATE"))


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
        from jukinet.geo.mie import BY_CODE

        self._prefix = {code: m.address_prefix for code, m in BY_CODE.items()}

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

    # --- the intake ---------------------------------------------------------------------------

    def submit(self, sender: PeerIdentity, items: list[Item], *, fingerprint: Optional[str] = None,
               envelope_digest: Optional[str] = None) -> list[dict]:
        """Check and apply each notification; one answer per item, in order, after commit."""
        answers: list[Optional[dict]] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item.register or "juki", []).append(i)
        for register, idx in groups.items():
            sub = [items[i] for i in idx]
            try:
                got = self._submit_register(register, sender, sub, fingerprint, envelope_digest)
            except JukinetError:
                raise
            except Exception:
                if len(sub) == 1:
                    raise
                # an unexpected database error in a batch: take the notifications one by one so
                # that one bad apple does not cost the others (each still atomic on its own)
                log.warning("intake batch fell back to single notifications (register=%s, n=%d)",
                            register, len(sub))
                got = []
                for it in sub:
                    got.extend(self._submit_register(register, sender, [it], fingerprint, envelope_digest))
            for i, a in zip(idx, got):
                answers[i] = a
        return answers  # type: ignore[return-value]

    def _submit_register(self, register: str, sender: PeerIdentity, items: list[Item],
                         fingerprint: Optional[str], envelope_digest: Optional[str]) -> list[dict]:
        """One write transaction for a request's notifications of one register (set-based: what is
        on file is read once for the whole request, the writes go out as ``executemany``)."""
        processed, outbox, comm = INTAKE_TABLES[register]
        current_t, history_t, counters_t, to_row, from_row = _REGISTER_TABLES[register]
        now = utcnow()
        today = today_jst(now)
        notified = now.astimezone(JST).date()
        peer = sender.label
        answers: list[dict] = []
        comm_rows: list[dict] = []
        processed_rows: list[dict] = []
        outbox_rows: list[dict] = []
        history_rows: list[dict] = []
        parsed: list = []
        for item in items:
            try:
                parsed.append(wire.parse(item.obj))
            except JukinetError as e:
                parsed.append(e)
        wanted = set()
        for n in parsed:
            if isinstance(n, wire.Notification):
                wanted.add(n.juminhyo_code)
                if n.new_juminhyo_code:
                    wanted.add(n.new_juminhyo_code)
        with self.registers.uow(register, write=True) as uow:
            conn = uow.conn
            lock_register(conn)
            on_file = _fetch_versions(conn, current_t, from_row, wanted)          # code -> latest version
            in_history = _fetch_history_codes(conn, history_t, wanted)            # codes with a history
            nids = [i.notification_id for i in items if i.notification_id is not None]
            digests = _fetch_digests(conn, processed, sender.code, nids)         # accepted earlier
            seq = _counter(conn, counters_t)
            first_seq = seq
            overlay: dict[str, object] = {}   # code -> version after this request so far (None: moved away)
            for item, n in zip(items, parsed):
                nid = item.notification_id
                status, error = REJECTED, None
                try:
                    prior = digests.get(nid) if nid is not None else None
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
                        digests[nid] = item.digest
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
                answers.append(answer(nid, status, error))
                comm_rows.append(comm_row(at=now, channel="cs", direction="in", peer=peer, result=status,
                                          code=error.code if error else None, peer_cert_sha256=fingerprint,
                                          message_id=nid, digest=item.digest, envelope_digest=envelope_digest,
                                          size=item.size))
            if processed_rows:
                # what the repository's apply() does, for the whole request at once: earlier versions
                # to history, the current rows replaced, the 更新順番号 counter advanced
                gone = [c for c in overlay if c in on_file]
                for k in range(0, len(gone), 500):
                    conn.execute(current_t.delete().where(current_t.c.juminhyo_code.in_(gone[k:k + 500])))
                if history_rows:
                    conn.execute(history_t.insert(), history_rows)
                conn.execute(current_t.insert(), [to_row(v) for v in overlay.values() if v is not None])
                conn.execute(counters_t.update().where(counters_t.c.name == "update_seq").values(value=seq))
                conn.execute(processed.insert(), processed_rows)
                conn.execute(outbox.insert(), outbox_rows)
            conn.execute(comm.insert(), comm_rows)
        if seq > first_seq and self.on_applied is not None:
            self.on_applied(register)
        return answers

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


# --- set-based reads --------------------------------------------------------------------------------

_REGISTER_TABLES = {
    "juki": (juki_current, juki_history, juki_counters, juki_to_row, row_to_juki),
    "fuhyo": (fuhyo_current, fuhyo_history, fuhyo_counters, fuhyo_to_row, row_to_fuhyo),
}


def _chunks(values, n=500):
    values = list(values)
    for k in range(0, len(values), n):
        yield values[k:k + n]


def _fetch_versions(conn: Connection, table, from_row, codes) -> dict:
    out = {}
    for chunk in _chunks(codes):
        for row in conn.execute(select(table).where(table.c.juminhyo_code.in_(chunk))):
            out[row.juminhyo_code] = from_row(row)
    return out


def _fetch_history_codes(conn: Connection, table, codes) -> set:
    out = set()
    for chunk in _chunks(codes):
        out.update(r[0] for r in conn.execute(select(table.c.juminhyo_code).distinct()
                                              .where(table.c.juminhyo_code.in_(chunk))))
    return out


def _fetch_digests(conn: Connection, processed, sender_code: str, nids) -> dict:
    out = {}
    for chunk in _chunks(set(nids)):
        out.update((r[0], r[1]) for r in conn.execute(
            select(processed.c.notification_id, processed.c.digest)
            .where(processed.c.sender_code == sender_code, processed.c.notification_id.in_(chunk))))
    return out


def _counter(conn: Connection, counters) -> int:
    value = conn.execute(select(counters.c.value).where(counters.c.name == "update_seq")).scalar()
    if value is None:
        conn.execute(counters.insert().values(name="update_seq", value=0))
        return 0
    return value
