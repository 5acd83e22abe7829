"""The outbox worker: deliver every applied update to the national servers (U5, U6; ADR 0007).

Each register database has an ``outbox`` table filled by the intake in the same transaction as the
update. The worker, per register:

1. reads the oldest pending entries in 更新順番号 order (at most ``intake.outbox_batch``), leaving
   out those of a person who has an undelivered *failed* entry, and taking at most one entry per
   person per request (a person's later change never overtakes an earlier one, even when the
   national side refuses the earlier one);
2. rebuilds each message from the register version with that 更新順番号
   (:mod:`jukinet.outbox.messages`) and POSTs them, in order, in one request over mutual TLS to
   ``/national/v1/updates`` of the national server (juki) or national fuhyo server (fuhyo);
3. on an answer, marks each entry ``delivered`` (stored or duplicate at the national side) or
   ``failed`` (refused: kept for an operator, the person's later entries wait), and writes one
   communication-log row per message; on no answer (network, 5xx, timeout) it writes a log row per
   message with the error, and retries the same entries after an exponential backoff
   (``outbox_backoff_initial`` doubling up to ``outbox_backoff_max``).

Everything is in the database: a restart resumes with the pending entries. A message sent whose
confirmation was lost is sent again; the national side dedupes on ``message_id``, so it is stored
once. The worker runs as a thread inside ``jukinet serve`` and standalone as ``jukinet outbox``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Callable, Optional

import httpx
from sqlalchemy import select, update

from jukinet.pki import crl
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.intake.service import comm_row
from jukinet.intake.wire import canonical
from jukinet.outbox.messages import fuhyo_message, juki_message
from jukinet.store.registers import Registers
from jukinet.store.repository import FuhyoRepository, JukiRepository, utcnow
from jukinet.store.tables import fuhyo_current, fuhyo_history, juki_current, juki_history
from jukinet.store.tables_intake import INTAKE_TABLES
from sqlalchemy import func

log = logging.getLogger("jukinet.outbox")

REGISTERS = ("juki", "fuhyo")
PEERS = {"juki": "national", "fuhyo": "national-fuhyo"}
_VERSION_TABLES = {"juki": (juki_current, juki_history, JukiRepository.codec, juki_message),   # opens 個人番号
                   "fuhyo": (fuhyo_current, fuhyo_history, FuhyoRepository.codec, fuhyo_message)}


class DeliveryError(Exception):
    """The national side did not answer usably; the code is logged (no personal data)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class NationalClient:
    """HTTPS with mutual TLS to one national server, presenting the prefecture's certificate."""

    def __init__(self, base_url: str, ssl_context, timeout: float = 30.0):
        """``ssl_context``: an ``ssl.SSLContext``, or a :class:`jukinet.pki.crl.OutboundContexts` whose
        context (with the CRLs in force) is taken before each request (ADR 0030)."""
        self.base_url, self.timeout = base_url, timeout
        self.contexts = ssl_context if isinstance(ssl_context, crl.OutboundContexts) else None
        self._ctx = None if self.contexts else ssl_context
        self.http = None if self.contexts else self._client(ssl_context)

    def _client(self, ctx) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, verify=ctx, timeout=self.timeout,
                            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2))

    def send(self, messages: list[dict]) -> list[dict]:
        if self.contexts is not None:
            try:
                ctx = self.contexts.current()
            except JukinetError as e:     # no valid CRL: nothing is sent, the messages wait
                raise DeliveryError(e.code) from None
            if ctx is not self._ctx:
                if self.http is not None:
                    self.http.close()
                self._ctx, self.http = ctx, self._client(ctx)
        try:
            r = self.http.post("/national/v1/updates", json={"messages": messages})
        except httpx.TimeoutException:
            raise DeliveryError("TIMEOUT") from None
        except httpx.HTTPError as e:   # a revoked national certificate fails the handshake: CERT_REVOKED
            raise DeliveryError(crl.outbound_code(e) or "CONNECT_ERROR") from None
        if r.status_code != 200:
            raise DeliveryError(f"HTTP_{r.status_code}")
        try:
            results = r.json()["results"]
        except Exception:  # noqa: BLE001
            raise DeliveryError("BAD_ANSWER") from None
        if len(results) != len(messages):
            raise DeliveryError("BAD_ANSWER")
        return results

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


def national_clients(config: Config) -> dict[str, NationalClient]:
    ctx = crl.OutboundContexts(config)
    host = config.national.host
    return {"juki": NationalClient(f"https://{host}:{config.national.port}", ctx),
            "fuhyo": NationalClient(f"https://{host}:{config.national.fuhyo_port}", ctx)}


class OutboxWorker:
    def __init__(self, registers: Registers, config: Config,
                 clients: Optional[dict[str, NationalClient]] = None,
                 on_delivered: Optional[Callable[[str, int], None]] = None):
        self.registers = registers
        self.config = config
        self.clients = clients if clients is not None else national_clients(config)
        self.on_delivered = on_delivered
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._backoff = {r: 0.0 for r in REGISTERS}
        self._next_try = {r: 0.0 for r in REGISTERS}
        #: seconds between looks at the outbox when nothing woke the worker (the intake wakes it after
        #: each commit). A center sets it long, so that an idle tenant's connections can be released
        #: (ADR 0055)
        self.poll = 0.5

    # --- control ----------------------------------------------------------------------------

    def wake(self, register: Optional[str] = None) -> None:
        """Called by the intake after a commit: deliver without waiting for the next poll."""
        self._wake.set()

    def start(self) -> "OutboxWorker":
        self._thread = threading.Thread(target=self.run, name="jukinet-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for c in self.clients.values():
            c.close()

    def run(self, poll: Optional[float] = None, linger: float = 0.05) -> None:
        while not self._stop.is_set():
            poll_s = self.poll if poll is None else poll
            self._wake.clear()
            # let a burst of commits gather: one request and one write transaction for many updates
            # instead of one per notification (the intake shares the register's write lock)
            if linger and self._stop.wait(linger):
                break
            busy = False
            for register in REGISTERS:
                if time.monotonic() < self._next_try[register]:
                    continue
                try:
                    busy |= self.drain_once(register) > 0
                except Exception as e:  # noqa: BLE001 - keep running; the type only (no personal data)
                    log.error("outbox %s: %s", register, type(e).__name__)
                    self._fail_backoff(register)
            if not busy:
                waits = [t - time.monotonic() for t in self._next_try.values() if t > time.monotonic()]
                self._wake.wait(min([poll_s] + waits))

    def _fail_backoff(self, register: str) -> None:
        ic = self.config.intake
        b = self._backoff[register]
        b = ic.outbox_backoff_initial if b == 0 else min(b * 2, ic.outbox_backoff_max)
        self._backoff[register] = b
        self._next_try[register] = time.monotonic() + b

    # --- one round --------------------------------------------------------------------------

    def pending(self, register: str, limit: int) -> list:
        """The next entries to send: oldest first, none of a person with a failed entry before it."""
        outbox = INTAKE_TABLES[register][1]
        with self.registers.engine(register).connect() as conn:
            rows = conn.execute(select(outbox).where(outbox.c.state == "pending")
                                .order_by(outbox.c.update_seq).limit(limit)).all()
            if not rows:
                return []
            failed = conn.execute(select(outbox.c.juminhyo_code, outbox.c.prior_code, outbox.c.update_seq)
                                  .where(outbox.c.state == "failed")).all()
        blocked: dict[str, int] = {}
        for f in failed:
            for code in (f.juminhyo_code, f.prior_code):
                if code:
                    blocked[code] = min(blocked.get(code, f.update_seq), f.update_seq)
        out, in_batch = [], set()
        for r in rows:
            codes = [c for c in (r.juminhyo_code, r.prior_code) if c]
            if any(c in blocked and blocked[c] < r.update_seq for c in codes):
                for c in codes:  # a code change carries the block to the new code
                    blocked.setdefault(c, r.update_seq)
                continue
            if any(c in in_batch for c in codes):
                # one message per person per request: should the national side refuse the first, a
                # later one of the same person in the same request would overtake it
                for c in codes:
                    blocked.setdefault(c, r.update_seq)
                continue
            in_batch.update(codes)
            out.append(r)
        return out

    def build(self, register: str, rows: list) -> list[dict]:
        current, history, codec, make = _VERSION_TABLES[register]
        seqs = [r.update_seq for r in rows]
        with self.registers.engine(register).connect() as conn:
            from_row = codec(conn)[1]
            found = {row.update_seq: row for row in conn.execute(select(current).where(current.c.update_seq.in_(seqs)))}
            missing = [r for r in rows if r.update_seq not in found]
            if missing:   # superseded since: in history (index on 住民票コード, 更新順番号)
                for row in conn.execute(select(history).where(
                        history.c.juminhyo_code.in_({r.juminhyo_code for r in missing}),
                        history.c.update_seq.in_([r.update_seq for r in missing]))):
                    found[row.update_seq] = row
        pc = self.config.prefecture_code
        msgs = []
        for r in rows:
            version = found.get(r.update_seq)
            if version is None:  # cannot happen unless the register was edited by hand
                raise RuntimeError("outbox entry without its version")
            msgs.append(make(from_row(version), message_id=r.message_id, prefecture_code=pc, prior_code=r.prior_code))
        return msgs

    def drain_once(self, register: str) -> int:
        """Send one batch; return the number of entries settled (delivered or failed)."""
        rows = self.pending(register, self.config.intake.outbox_batch)
        if not rows:
            self._backoff[register] = 0.0
            return 0
        msgs = self.build(register, rows)
        digests = [hashlib.sha256(canonical(m)).hexdigest() for m in msgs]
        envelope = hashlib.sha256(canonical({"messages": msgs})).hexdigest()
        peer = PEERS[register]
        _, outbox, comm = INTAKE_TABLES[register]
        try:
            results = self.clients[register].send(msgs)
        except DeliveryError as e:
            now = utcnow()
            with self.registers.uow(register, write=True) as uow:
                uow.conn.execute(update(outbox).where(outbox.c.update_seq.in_([r.update_seq for r in rows]))
                                 .values(attempts=outbox.c.attempts + 1, last_error=e.code))
                uow.conn.execute(comm.insert(), [comm_row(at=now, channel="national", direction="out", peer=peer,
                                                          result="failed", code=e.code, message_id=r.message_id,
                                                          digest=d, envelope_digest=envelope)
                                                 for r, d in zip(rows, digests)])
            log.warning("outbox %s: delivery failed (%s), %d waiting; retry in %.1fs", register, e.code, len(rows),
                        self._backoff[register] * 2 or self.config.intake.outbox_backoff_initial)
            self._fail_backoff(register)
            return 0
        now = utcnow()
        delivered, failed, log_rows = [], [], []
        for r, d, res in zip(rows, digests, results):
            status = res.get("status") if isinstance(res, dict) else None
            if status in ("stored", "duplicate"):
                delivered.append(r.update_seq)
                log_rows.append(comm_row(at=now, channel="national", direction="out", peer=peer, result=status,
                                         message_id=r.message_id, digest=d, envelope_digest=envelope))
            else:
                err = (res.get("error") or {}) if isinstance(res, dict) else {}
                code = str(err.get("code") or "REFUSED")[:40]
                failed.append((r.update_seq, code))
                log_rows.append(comm_row(at=now, channel="national", direction="out", peer=peer, result="refused",
                                         code=code, message_id=r.message_id, digest=d, envelope_digest=envelope))
        with self.registers.uow(register, write=True) as uow:
            if delivered:
                uow.conn.execute(update(outbox).where(outbox.c.update_seq.in_(delivered))
                                 .values(state="delivered", delivered_at=now, attempts=outbox.c.attempts + 1,
                                         last_error=None))
            for seq, code in failed:
                uow.conn.execute(update(outbox).where(outbox.c.update_seq == seq)
                                 .values(state="failed", attempts=outbox.c.attempts + 1, last_error=code))
            uow.conn.execute(comm.insert(), log_rows)
        if failed:
            log.error("outbox %s: %d message(s) refused by the national server; the persons' later updates wait",
                      register, len(failed))
        self._backoff[register] = 0.0
        if self.on_delivered is not None:
            self.on_delivered(register, len(delivered))
        return len(rows)

    def drain(self, register: Optional[str] = None, timeout: float = 60.0) -> None:
        """Deliver until nothing is pending (tests, the standalone command). Raises on timeout."""
        deadline = time.monotonic() + timeout
        for reg in ([register] if register else REGISTERS):
            while self.pending(reg, 1):
                if time.monotonic() > deadline:
                    raise TimeoutError("outbox not drained")
                if self.drain_once(reg) == 0:
                    time.sleep(0.05)


def outbox_counts(registers: Registers, register: str) -> dict[str, int]:
    """Entries per state (for health and monitoring)."""
    outbox = INTAKE_TABLES[register][1]
    with registers.engine(register).connect() as conn:
        return {s: n for s, n in conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))}
