"""The consistency check (本人確認情報整合, 事務6, C1): compare a CS snapshot with our file.

:func:`run_check` reads a ``jukinet.snapshot/1`` stream (see :mod:`jukinet.reconcile.snapshot`)
and our current persons of the same municipality, both in 住民票コード order, in one streaming
sort-merge:

* a code in both → the compared items are equal (*matched*) or not (*differs*, with the names of
  the items that differ);
* a code only in the snapshot → *only_in_snapshot* (``items`` is ``"removed"`` when our file holds
  the person as removed by this municipality);
* a code only in our file → *only_on_server*;
* a difference of any kind where our version (or, for only_in_snapshot, our record of the code
  anywhere) was stored **after** the snapshot's ``as_of`` → *pending*: a notification in flight
  explains it, and the next check will tell.

Memory stays bounded: the snapshot is read one line at a time, our file through a server-side
cursor, and the differences go to an anonymous temporary file until the trailer has been verified.
Only then is anything stored — the run (counts) and its differences, in one transaction. A snapshot
that is refused (malformed, truncated, wrong municipality, unsorted, …) stores a *refusal record*
only: the run with ``status = "refused"``, the error code, the line number, no differences.

Nothing here logs or raises a value: results name 住民票コード and item names, never the items'
contents, and errors name the line and the item.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
import logging
import queue
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Callable, Iterator, Optional

from sqlalchemy import String, and_, case, cast, func, insert, literal, null, select, update

from jukinet import codes
from jukinet.errors import JukinetError
from jukinet.reconcile.snapshot import ITEMS, VALUE_ITEMS, SnapshotReader, SnapshotRefused
from jukinet.store.atrest import cipher_of
from jukinet.store.repository import _as_utc, utcnow
from jukinet.store.tables import fuhyo_current, juki_current
from jukinet.store.tables_reconcile import RECONCILE
from jukinet import geo

log = logging.getLogger("jukinet.reconcile")

RESULT_SCHEMA = "jukinet.consistency-result/1"
TRIGGERS = ("cs", "cli", "scheduled")
_FETCH = 5_000
_INSERT = 5_000


@dataclass
class CheckResult:
    """The outcome of one check: counts only (the differences are in the database)."""

    run_id: int
    register: str
    municipality_code: str
    status: str
    snapshot_id: Optional[str]
    as_of: Optional[datetime]
    started_at: datetime
    finished_at: datetime
    snapshot_count: int = 0
    server_count: int = 0
    matched: int = 0
    only_in_snapshot: int = 0
    only_on_server: int = 0
    differs: int = 0
    pending: int = 0
    item_counts: dict = field(default_factory=dict)
    snapshot_sha256: Optional[str] = None
    error: Optional[dict] = None

    @property
    def differences(self) -> int:
        return self.only_in_snapshot + self.only_on_server + self.differs + self.pending

    def counts(self) -> dict:
        return {"snapshot": self.snapshot_count, "server": self.server_count, "matched": self.matched,
                "only_in_snapshot": self.only_in_snapshot, "only_on_server": self.only_on_server,
                "differs": self.differs, "pending": self.pending}

    def header(self) -> dict:
        return {"schema": RESULT_SCHEMA, "run_id": self.run_id, "register": self.register,
                "municipality_code": self.municipality_code, "snapshot_id": self.snapshot_id,
                "as_of": self.as_of.isoformat() if self.as_of else None, "status": self.status,
                "checked_at": self.finished_at.isoformat(), "counts": self.counts(),
                "item_counts": self.item_counts, "error": self.error}


def check_sender(config, municipality_code: str) -> str:
    """The sender must be a valid 全国地方公共団体コード of this prefecture."""
    if not isinstance(municipality_code, str) or not codes.is_valid_lg_code(municipality_code) \
            or codes.compact(municipality_code) != municipality_code:
        raise JukinetError("RECONCILE_SENDER_INVALID", "市町村コードが正しくありません。", field="municipality_code")
    if municipality_code[:2] != config.prefecture_code[:2] or municipality_code == config.prefecture_code:
        raise JukinetError("RECONCILE_SENDER_INVALID", "この都道府県の市町村コードではありません。",
                           field="municipality_code")
    return municipality_code


def _check_register(register: str) -> str:
    if register not in RECONCILE:
        raise JukinetError("RECONCILE_REGISTER_INVALID", "ファイルの指定（juki または fuhyo）が正しくありません。",
                           field="register")
    return register


# ------------------------------------------------------------------ our side of the merge

def _server_query(register: str, municipality_code: str, as_of: Optional[datetime] = None, *, sealed: bool = False):
    """One municipality's current persons in 住民票コード order: the code, the compared items in the
    order of :data:`VALUE_ITEMS` (生年月日 as ISO text, straight from the database) and whether the
    version was stored after ``as_of`` (computed by the database, so no timestamp is converted per
    row).

    juki's 個人番号 is its keyed blind index (ADR 0058: what the check compares, no AES-GCM open per
    row) — or, with ``sealed``, the sealed (ct, key id) for :func:`_opened` (the simulated CS and the
    bench need the number itself). A row whose number is sealed but has no blind index (never
    written so: :meth:`KojinBangoCipher.seal_row` writes the three together) reads as ``""``, which
    no snapshot's index equals: it is reported, never matched. 旧氏's ふりがな is null when 旧氏 is.
    """
    if register == "juki":
        t = juki_current
        if sealed:
            number = [t.c.kojin_bango_ct, t.c.kojin_bango_key]
        else:
            number = [func.coalesce(t.c.kojin_bango_bi, case((t.c.kojin_bango_ct.is_not(None), literal(""))))
                      .label("kojin_bango_bi")]
        items = [t.c.name, t.c.name_kana, cast(t.c.birth_date, String).label("birth_date"), t.c.sex, t.c.address,
                 t.c.oaza_code, *number, t.c.former_surname,
                 case((t.c.former_surname.is_(None), null()), else_=t.c.former_surname_kana)
                 .label("former_surname_kana")]
        where = and_(t.c.municipality_code == municipality_code, t.c.deleted.is_(False))
    else:
        t = fuhyo_current
        items = [cast(t.c[k], String).label(k) if k == "birth_date" else t.c[k] for k in ITEMS["fuhyo"]]
        where = and_(t.c.fuhyo_municipality_code == municipality_code, t.c.status == "現存")
    late = (t.c.timestamp > as_of) if as_of is not None else literal(False)
    return select(t.c.juminhyo_code, *items, late.label("late")).where(where).order_by(t.c.juminhyo_code)


def _opened(register: str, row, cipher) -> tuple:
    """A row of :func:`_server_query` (``sealed``) with the 個人番号 (ct, key id) opened (ADR 0025)."""
    if register != "juki":
        return row
    code, name, kana_, birth, sex, addr, oaza, ct, kid, fs, fsk, late = row
    return (code, name, kana_, birth, sex, addr, oaza, None if ct is None else cipher.open(code, ct, kid), fs, fsk,
            late)


def _server_values(register: str, row) -> tuple:
    """Our row as the same tuple of values a snapshot record carries (:data:`VALUE_ITEMS`)."""
    return tuple(row[1:-1])


def _lookup(conn, register: str, batch: list[str]) -> dict:
    """For codes only in the snapshot: our record of each code anywhere → (manager, removed, ts)."""
    if register == "juki":
        t = juki_current
        cols = (t.c.juminhyo_code, t.c.municipality_code, t.c.deleted, t.c.timestamp)
    else:
        t = fuhyo_current
        cols = (t.c.juminhyo_code, t.c.fuhyo_municipality_code, t.c.status == "消除", t.c.timestamp)
    rows = conn.execute(select(*cols).where(t.c.juminhyo_code.in_(batch))).all()
    return {r[0]: (r[1], bool(r[2]), _as_utc(r[3])) for r in rows}


# ------------------------------------------------------------------ the check

#: SQLite: read the register through a memory map during a check. Our rows are fetched in
#: 住民票コード order through the municipality index, i.e. scattered over the table; mapped pages
#: cost half of what a read through SQLite's page cache does (measured, bench/reconcile_bench.py).
#: The mapped pages are the OS's file cache, shared and reclaimable, but they count in the
#: process's RSS: the map is capped so that a check stays under 1 GB of RSS.
SQLITE_MMAP_BYTES = 768 << 20


@contextmanager
def _mapped(conn):
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA mmap_size=0")  # the pooled connection goes back as it came
        conn.commit()


_END = object()


@contextmanager
def _fetched_ahead(rows, depth: int = 2, *, ahead: bool = True):
    """Our rows, one partition of :data:`_FETCH` ahead, fetched by a thread: the database works
    on the next rows (and the driver waits for them without the GIL) while this thread reads and
    compares the snapshot. The thread has finished when the block is left, whatever happened, so
    the connection is never used by two threads at once after it. ``ahead=False`` (SQLite: the
    engine runs in this process, there is no server to overlap with): read in line."""
    if not ahead:
        yield (row for part in rows.partitions() for row in part)
        return
    parts: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                parts.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for part in rows.partitions():
                if not put(part):
                    return
            put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put(e)

    def consume():
        while True:
            part = parts.get()
            if part is _END:
                return
            if isinstance(part, BaseException):
                raise part
            yield from part

    worker = threading.Thread(target=fetch, name="jukinet-reconcile-fetch", daemon=True)
    worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        worker.join()


def run_check(registers, register: str, municipality_code: str, stream: IO[bytes], *, trigger: str = "cli",
              clock: Callable[[], datetime] = utcnow) -> CheckResult:
    """Compare the snapshot in ``stream`` with our file; store and return the result.

    ``municipality_code`` is the sender as the *channel* established it (certificate or CLI),
    never the payload. Raises :class:`SnapshotRefused` (after storing a refusal record, whose id
    is ``error.run_id``) when the snapshot cannot be compared.
    """
    _check_register(register)
    check_sender(registers.config, municipality_code)
    if trigger not in TRIGGERS:
        raise ValueError(trigger)
    started = clock()
    reader = SnapshotReader(stream, register=register, municipality_code=municipality_code, now=started)
    res = CheckResult(run_id=0, register=register, municipality_code=municipality_code, status="completed",
                      snapshot_id=None, as_of=None, started_at=started, finished_at=started)
    item_counts: dict[str, int] = {}
    spool = tempfile.TemporaryFile(mode="w+b")  # anonymous: gone with the process; codes and item names only
    try:
        try:
            header = reader.read_header()
            as_of = header.as_of.astimezone(timezone.utc)  # stored in UTC, like every timestamp
            res.snapshot_id, res.as_of = header.snapshot_id, as_of
            engine = registers.engine(register)
            with engine.connect() as conn, _mapped(conn), conn.begin():
                rows = conn.execution_options(stream_results=True, yield_per=_FETCH).execute(
                    _server_query(register, municipality_code, as_of))
                unknown = tempfile.TemporaryFile(mode="w+b")
                try:
                    if register == "juki":  # 個人番号 compared through the blind index (ADR 0058)
                        reader.number_index = cipher_of(conn).blind_index
                    with _fetched_ahead(rows, ahead=conn.dialect.name != "sqlite") as ours:
                        _merge(register, reader, ours, res, item_counts, spool, unknown)
                    _resolve_unknown(conn, register, municipality_code, as_of, unknown, spool, res)
                finally:
                    unknown.close()
                    rows.close()
            res.snapshot_count = reader.records_read
            res.snapshot_sha256 = reader.sha256.hexdigest()
        except SnapshotRefused as e:
            res.status = "refused"
            res.error = e.as_dict()
            res.snapshot_count = reader.records_read
            res.finished_at = clock()
            res.matched = res.only_in_snapshot = res.only_on_server = res.differs = res.pending = 0
            res.server_count = 0
            res.item_counts = {}
            res.run_id = _store(registers, register, res, trigger, None)
            e.run_id = res.run_id
            log.warning("consistency check refused: register=%s municipality=%s run=%s code=%s line=%s",
                        register, municipality_code, res.run_id, e.code, e.line)
            raise
        res.item_counts = dict(sorted(item_counts.items()))
        res.finished_at = clock()
        spool.seek(0)
        res.run_id = _store(registers, register, res, trigger, spool)
    finally:
        spool.close()
    log.info("consistency check: register=%s municipality=%s run=%s snapshot=%d server=%d matched=%d "
             "only_in_snapshot=%d only_on_server=%d differs=%d pending=%d", register, municipality_code,
             res.run_id, res.snapshot_count, res.server_count, res.matched, res.only_in_snapshot,
             res.only_on_server, res.differs, res.pending)
    return res


def _merge(register, reader, rows, res: CheckResult, item_counts, spool, unknown) -> None:
    """The sort-merge proper. Both inputs ascend by 住民票コード (the reader enforces it for the
    snapshot; we assert it for our side). A row of ours is ``(code, *values, late)``: its values
    compare with a record's as one tuple (``late``: stored after ``as_of``)."""
    names = VALUE_ITEMS[register]
    snap = iter(reader)
    ours = iter(rows)
    s = next(snap, None)
    o = next(ours, None)
    last_ours = ""
    write, note_unknown = spool.write, unknown.write
    server = matched = only_on_server = differs = pending = 0
    while s is not None or o is not None:
        if o is not None:
            oc = o[0]
            if oc <= last_ours:
                raise RuntimeError("register cursor is not in 住民票コード order")
            if s is None or oc < s[0]:
                server += 1
                last_ours = oc
                if o[-1]:  # stored after as_of
                    pending += 1
                    write(f"{oc}\tpending\t\n".encode())
                else:
                    only_on_server += 1
                    write(f"{oc}\tonly_on_server\t\n".encode())
                o = next(ours, None)
                continue
            if oc == s[0]:
                server += 1
                last_ours = oc
                mine = o[1:-1]
                theirs = s[1]
                if mine == theirs:
                    matched += 1
                else:
                    diff: list[str] = []
                    for n, a, b in zip(names, mine, theirs):
                        if a != b and n not in diff:
                            diff.append(n)
                    if o[-1]:
                        pending += 1
                        write(f"{oc}\tpending\t{','.join(diff)}\n".encode())
                    else:
                        differs += 1
                        for n in diff:
                            item_counts[n] = item_counts.get(n, 0) + 1
                        write(f"{oc}\tdiffers\t{','.join(diff)}\n".encode())
                s = next(snap, None)
                o = next(ours, None)
                continue
        note_unknown(f"{s[0]}\n".encode())  # only in the snapshot: resolved afterwards
        s = next(snap, None)
    res.server_count += server
    res.matched += matched
    res.only_on_server += only_on_server
    res.differs += differs
    res.pending += pending


def _resolve_unknown(conn, register, municipality_code, as_of, unknown, spool, res: CheckResult) -> None:
    """Codes only in the snapshot: pending if our record of the code changed after ``as_of``
    (wherever it is now — which municipality is never said), ``removed`` if we hold it as removed
    by this municipality."""
    unknown.seek(0)
    while True:
        batch = [ln.decode().rstrip("\n") for ln in _take(unknown, 900)]
        if not batch:
            break
        found = _lookup(conn, register, batch)
        for code in batch:
            f = found.get(code)
            if f is not None and f[2] is not None and f[2] > as_of:
                res.pending += 1
                spool.write(f"{code}\tpending\t\n".encode())
            else:
                res.only_in_snapshot += 1
                note = "removed" if f is not None and f[1] and f[0] == municipality_code else ""
                spool.write(f"{code}\tonly_in_snapshot\t{note}\n".encode())


def _take(f, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        ln = f.readline()
        if not ln:
            break
        out.append(ln)
    return out


def _store(registers, register: str, res: CheckResult, trigger: str, spool) -> int:
    runs, diffs = RECONCILE[register]
    err = res.error or {}
    with registers.uow(register) as uow:
        run_id = uow.conn.execute(insert(runs).values(
            municipality_code=res.municipality_code, register=register, trigger=trigger,
            snapshot_id=res.snapshot_id, as_of=res.as_of, started_at=res.started_at, finished_at=res.finished_at,
            status=res.status, error_code=err.get("code"), error_message=err.get("message"),
            error_line=err.get("line"), snapshot_count=res.snapshot_count, server_count=res.server_count,
            matched_count=res.matched, only_in_snapshot_count=res.only_in_snapshot,
            only_on_server_count=res.only_on_server, differs_count=res.differs, pending_count=res.pending,
            item_counts=json.dumps(res.item_counts, ensure_ascii=False), snapshot_sha256=res.snapshot_sha256,
        ).returning(runs.c.run_id)).scalar_one()
        if spool is not None:
            while True:
                chunk = _take(spool, _INSERT)
                if not chunk:
                    break
                rows = []
                for ln in chunk:
                    code, kind, items = ln.decode().rstrip("\n").split("\t")
                    rows.append({"run_id": run_id, "juminhyo_code": code, "kind": kind, "items": items or None})
                uow.conn.execute(insert(diffs), rows)
    return run_id


def record_refusal(registers, register: str, municipality_code: str, error: dict, *, trigger: str = "cs",
                   clock: Callable[[], datetime] = utcnow) -> int:
    """Store a refusal record for a snapshot refused before it could be read (e.g. too large)."""
    now = clock()
    res = CheckResult(run_id=0, register=_check_register(register), municipality_code=municipality_code,
                      status="refused", snapshot_id=None, as_of=None, started_at=now, finished_at=now, error=error)
    return _store(registers, register, res, trigger, None)


# ------------------------------------------------------------------ reading results

def _row_to_result(r) -> CheckResult:
    err = None
    if r.error_code:
        err = {"code": r.error_code, "message": r.error_message}
        if r.error_line is not None:
            err["line"] = r.error_line
    return CheckResult(
        run_id=r.run_id, register=r.register, municipality_code=r.municipality_code, status=r.status,
        snapshot_id=r.snapshot_id, as_of=_as_utc(r.as_of), started_at=_as_utc(r.started_at),
        finished_at=_as_utc(r.finished_at), snapshot_count=r.snapshot_count, server_count=r.server_count,
        matched=r.matched_count, only_in_snapshot=r.only_in_snapshot_count, only_on_server=r.only_on_server_count,
        differs=r.differs_count, pending=r.pending_count, item_counts=json.loads(r.item_counts or "{}"),
        snapshot_sha256=r.snapshot_sha256, error=err)


def get_run(registers, register: str, run_id: int) -> Optional[CheckResult]:
    runs, _ = RECONCILE[_check_register(register)]
    with registers.uow(register, write=False) as uow:
        r = uow.conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
    return _row_to_result(r) if r else None


def list_runs(registers, register: str, *, municipality_code: Optional[str] = None, limit: int = 50) -> list[CheckResult]:
    runs, _ = RECONCILE[_check_register(register)]
    q = select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    if municipality_code:
        q = q.where(runs.c.municipality_code == municipality_code)
    with registers.uow(register, write=False) as uow:
        return [_row_to_result(r) for r in uow.conn.execute(q)]


def result_lines(registers, register: str, run_id: int) -> Iterator[bytes]:
    """The result document of a run, JSON Lines: header (counts), one line per difference in
    住民票コード order ``{"juminhyo_code", "kind", "items"}``, trailer with count and SHA-256 of the
    difference lines — the same framing as the snapshot. Read in pages, so it streams."""
    res = get_run(registers, register, run_id)
    if res is None:
        raise JukinetError("RECONCILE_RUN_NOT_FOUND", "整合性確認の結果がありません。")
    yield (json.dumps(res.header(), ensure_ascii=False) + "\n").encode()
    _, diffs = RECONCILE[register]
    h = hashlib.sha256()
    n = 0
    after = ""
    while True:
        with registers.uow(register, write=False) as uow:
            page = uow.conn.execute(
                select(diffs.c.juminhyo_code, diffs.c.kind, diffs.c["items"])
                .where(diffs.c.run_id == run_id, diffs.c.juminhyo_code > after)
                .order_by(diffs.c.juminhyo_code).limit(_FETCH)).all()
        if not page:
            break
        for code, kind, items in page:
            line = (json.dumps({"juminhyo_code": code, "kind": kind,
                                "items": items.split(",") if items else []}) + "\n").encode()
            h.update(line)
            n += 1
            yield line
        after = page[-1][0]
    yield (json.dumps({"trailer": True, "count": n, "sha256": h.hexdigest()}) + "\n").encode()


def differences(registers, register: str, run_id: int, *, limit: int = 100, after: str = "") -> list[dict]:
    _, diffs = RECONCILE[_check_register(register)]
    with registers.uow(register, write=False) as uow:
        page = uow.conn.execute(select(diffs.c.juminhyo_code, diffs.c.kind, diffs.c["items"])
                                .where(diffs.c.run_id == run_id, diffs.c.juminhyo_code > after)
                                .order_by(diffs.c.juminhyo_code).limit(limit)).all()
    return [{"juminhyo_code": c, "kind": k, "items": i.split(",") if i else []} for c, k, i in page]


# ------------------------------------------------------------------ periodic: who is due

@dataclass
class Due:
    municipality_code: str
    last_completed: Optional[datetime]
    last_run_id: Optional[int]
    due: bool


def due_status(registers, register: str, municipalities: list[str], *, interval_days: int,
               now: Optional[datetime] = None) -> list[Due]:
    """Per municipality: the last *completed* check and whether a new one is due (older than
    ``interval_days``, or never). The CS initiates a check (PIA 6-①); the server tracks the period."""
    runs, _ = RECONCILE[_check_register(register)]
    now = now or utcnow()
    q = (select(runs.c.municipality_code, func.max(runs.c.finished_at), func.max(runs.c.run_id))
         .where(runs.c.status == "completed").group_by(runs.c.municipality_code))
    with registers.uow(register, write=False) as uow:
        last = {m: (_as_utc(t), rid) for m, t, rid in uow.conn.execute(q)}
    out = []
    for m in municipalities:
        t, rid = last.get(m, (None, None))
        out.append(Due(m, t, rid, t is None or now - t >= timedelta(days=interval_days)))
    return out


def mark_details_erased(conn, register: str, run_ids: list[int], at: datetime) -> None:
    runs, _ = RECONCILE[register]
    conn.execute(update(runs).where(runs.c.run_id.in_(run_ids)).values(details_erased_at=at))


def known_municipalities(registers, register: str) -> list[str]:
    """The municipalities of this prefecture: all of them from :mod:`jukinet.geo` (ADR 0035) when
    the configured code is a prefecture's, otherwise those our file manages; plus any that ever
    sent a check."""
    runs, _ = RECONCILE[_check_register(register)]
    codes_: set[str] = set()
    pref = next((p for p in geo.prefectures() if p.code == registers.config.prefecture_code), None)
    if pref is not None:
        codes_ |= set(pref.by_code)
    else:
        t = juki_current if register == "juki" else fuhyo_current
        col = t.c.municipality_code if register == "juki" else t.c.fuhyo_municipality_code
        with registers.uow(register, write=False) as uow:
            codes_ |= {c for (c,) in uow.conn.execute(select(col).distinct())}
    with registers.uow(register, write=False) as uow:
        codes_ |= {c for (c,) in uow.conn.execute(select(runs.c.municipality_code).distinct())}
    return sorted(codes_)
