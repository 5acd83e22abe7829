"""一括提供 — batch provision by file, on electronic media (P4, A5; docs/batch-provision-format.md).

A requester's **conditions file** (CSV, UTF-8 or Shift_JIS/cp932, one person per line) becomes a
**result file** in the encrypted container ``jukinet.media/1`` (:mod:`jukinet.provision.media`),
recorded in the media register (媒体管理簿). The run is streamed: the file is read twice (once to
check the header and count the rows — before anything is looked up — and once to process it) in
chunks of ``provision.batch_chunk_rows``; at no time are more than one chunk's rows in memory.

Per chunk, one transaction on the affair's register looks the rows up, writes one provision record
per row and one operation-log entry for the chunk; the chunk's result rows are encrypted into the
output only after that transaction committed (fail closed). Rows not found in the prefecture are
asked of the national server (P3), outside the transaction, and recorded in a second one.

Refused before any lookup (the whole file; nothing provided; the refusal recorded): unknown
requester or affair, affair not granted, items not allowed, an operator without the affair in
scope, a file ClamAV finds infected or cannot check (G3, ``MEDIA_INFECTED`` …; ADR 0040), an
unreadable encoding or header, an empty file, more rows than ``batch_max_rows``, more
rows than ``batch_approval_threshold`` without a valid manager's approval (A5). A bad *row* (a
check digit, a missing key, a bad date) is not a bad file: it is reported in its result row with
a stable code and a Japanese message, and the others are processed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional

from sqlalchemy import insert, update

from jukinet import text, wareki
from jukinet.errors import JukinetError
from jukinet.provision import access, approvals, kojin_bango_link as link, lookup
from jukinet.provision import catalogue as C
from jukinet.provision.items import FOUR, FOUR_LABELS, ITEMS, Keys, check_items, match, national_view, parse_keys
from jukinet.provision.media import FORMAT as MEDIA_FORMAT, MediaWriter, new_password
from jukinet.provision.national import NationalRefused, NationalUnavailable, query_body
from jukinet.provision.records import write_many
from jukinet.provision.service import ProvisionService, _Attempt, _case_ref, check_key_allowed
from jukinet.security.oplog import Actor
from jukinet.store.repository import utcnow
from jukinet.store.tables_provision import provision_media
from jukinet.viruscheck import VirusScanner, scan_and_record

#: column -> accepted header names (Japanese as in the layout, or the English key)
COLUMNS = {
    "request_no": ("依頼番号", "request_no"),
    "juminhyo_code": ("住民票コード", "juminhyo_code"),
    "kojin_bango": ("個人番号", "kojin_bango"),
    "name": ("氏名", "name"),
    "birth_date": ("生年月日", "birth_date"),
    "sex": ("性別", "sex"),
    "address": ("住所", "address"),
}
_HEADER_NAMES = {n: c for c, names in COLUMNS.items() for n in names}
RESULT_LABELS = {"provided": "提供", "not_found": "該当なし", "ambiguous": "複数該当", "error": "エラー",
                 "failed": "照会失敗"}
_REQUEST_NO = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "cp932": "cp932", "shift_jis": "cp932", "sjis": "cp932",
             "auto": "auto"}


def _refuse(code: str, message: str, field: str | None = None) -> JukinetError:
    return JukinetError(code, message, field=field)


#: the command's text fields (from a form, the API or the command line) and how a refusal names them
_COMMAND_TEXT = {"requester_code": "依頼者コード", "affair_code": "事務コード", "encoding": "文字コード",
                 "approval_id": "承認番号", "purpose": "利用目的", "case_ref": "案件番号"}


def check_command_text(cmd: "BatchCommand") -> None:
    """Q2: every text field of the command is storable (no NUL, no lone surrogate) — before any lookup."""
    for name, label in _COMMAND_TEXT.items():
        v = getattr(cmd, name)
        if isinstance(v, str):
            text.check(v, label, field=name)
    for item in cmd.items or ():
        if isinstance(item, str):
            text.check(item, "提供項目", field="items")


# ------------------------------------------------------------------ reading the conditions file

@dataclass
class FileInfo:
    encoding: str            # utf-8 | cp932
    bom: bool
    columns: list[str]       # column names in file order
    rows: int                # data lines (blank lines are not rows)
    digest: str              # keyed digest (HMAC-SHA256) of the file's bytes


def detect_encoding(path: Path, declared: str = "auto") -> tuple[str, bool]:
    enc = ENCODINGS.get((declared or "auto").lower().replace("-", "_").replace("utf_8", "utf-8"))
    if enc is None:
        raise _refuse("ENCODING_UNKNOWN", "文字コードは utf-8・cp932 (Shift_JIS)・auto のいずれかを指定してください。",
                      "encoding")
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    bom = head.startswith(codecs.BOM_UTF8)
    if enc != "auto":
        if bom and enc != "utf-8":
            raise _refuse("FILE_ENCODING", "ファイルが UTF-8 (BOM付き) です。文字コードの指定を確認してください。", "encoding")
        return enc, bom
    if bom:
        return "utf-8", True
    final = len(head) < (1 << 20)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    for enc in ("utf-8", "cp932"):
        try:
            codecs.getincrementaldecoder(enc)().decode(head, final=final)
            return enc, False
        except UnicodeDecodeError:
            pass
        try:   # the header reads in this encoding: bad bytes further down are errors of their rows
            parse_header(first, enc)
            return enc, False
        except JukinetError:
            pass
    raise _refuse("FILE_ENCODING", "ファイルの文字コードを判別できません (UTF-8 または Shift_JIS で作成してください)。",
                  "file")


def _lines(f: BinaryIO, bom: bool) -> Iterator[tuple[int, bytes]]:
    for n, raw in enumerate(f, start=1):
        if n == 1 and bom:
            raw = raw[3:]
        yield n, raw.rstrip(b"\r\n")


def parse_header(line: bytes, encoding: str) -> list[str]:
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError:
        raise _refuse("FILE_ENCODING", "見出し行を指定の文字コードで読み取れません。", "file") from None
    names = [n.strip() for n in next(csv.reader([text]), [])]
    cols = []
    for n in names:
        c = _HEADER_NAMES.get(n)
        if c is None:
            raise _refuse("FILE_HEADER", "見出し行に規定外の列名があります (docs/batch-provision-format.md を参照)。", "file")
        if c in cols:
            raise _refuse("FILE_HEADER", "見出し行に同じ列が2回あります。", "file")
        cols.append(c)
    if "request_no" not in cols:
        raise _refuse("FILE_HEADER", "見出し行に「依頼番号」の列がありません。", "file")
    if not ("juminhyo_code" in cols or "kojin_bango" in cols or ("name" in cols and "birth_date" in cols)):
        raise _refuse("FILE_HEADER", "見出し行に照会キー (住民票コード・個人番号・氏名と生年月日) の列がありません。", "file")
    return cols


def inspect_file(path: Path, declared: str, keyring) -> FileInfo:
    """Pass 1: encoding, header, number of rows and the file's keyed digest — nothing is looked up."""
    encoding, bom = detect_encoding(path, declared)
    mac = hmac.new(keyring.key("search-keys"), b"batch-file\x1f", hashlib.sha256)
    cols, rows = None, 0
    with open(path, "rb") as f:
        for n, line in _lines(_hashing(f, mac), bom):
            if cols is None:
                if not line.strip():
                    raise _refuse("FILE_HEADER", "1行目に見出し行がありません。", "file")
                cols = parse_header(line, encoding)
            elif line.strip():
                rows += 1
    if cols is None:
        raise _refuse("FILE_EMPTY", "ファイルが空です。", "file")
    if rows == 0:
        raise _refuse("FILE_EMPTY", "照会対象の行がありません。", "file")
    return FileInfo(encoding, bom, cols, rows, mac.hexdigest())


def _hashing(f: BinaryIO, mac) -> Iterator[bytes]:
    for line in f:
        mac.update(line)
        yield line


@dataclass
class Row:
    line: int
    request_no: str
    keys: Optional[Keys] = None
    error: Optional[JukinetError] = None


def read_rows(path: Path, info: FileInfo, affair: C.Affair) -> Iterator[Row]:
    """Pass 2: the data rows, each parsed and validated (errors stay with their row)."""
    with open(path, "rb") as f:
        first = True
        for n, raw in _lines(f, info.bom):
            if first:
                first = False
                continue
            if not raw.strip():
                continue
            yield parse_row(n, raw, info, affair)


def parse_row(n: int, raw: bytes, info: FileInfo, affair: C.Affair) -> Row:
    try:
        text = raw.decode(info.encoding)
    except UnicodeDecodeError:
        return Row(n, "", error=_refuse("ROW_ENCODING", "この行を指定の文字コードで読み取れません。"))
    try:
        fields = next(csv.reader([text]))
    except csv.Error:
        return Row(n, "", error=_refuse("ROW_FORMAT", "この行の CSV の形式が正しくありません。"))
    if len(fields) != len(info.columns):
        return Row(n, "", error=_refuse("ROW_COLUMNS", "この行の列の数が見出し行と一致しません。"))
    v = {c: fields[i].strip() for i, c in enumerate(info.columns)}
    rno = v.get("request_no", "")
    if not _REQUEST_NO.match(rno):
        return Row(n, "", error=_refuse("REQUEST_NO_FORMAT", "依頼番号は英数字・-・_ の20文字以内で入力してください。",
                                        "request_no"))
    try:
        keys = parse_keys(juminhyo_code=v.get("juminhyo_code"), kojin_bango=v.get("kojin_bango"), name=v.get("name"),
                          birth_date=v.get("birth_date"), sex=v.get("sex"), address=v.get("address"))
        check_key_allowed(keys, affair)
    except JukinetError as e:
        return Row(n, rno, error=e)
    return Row(n, rno, keys=keys)


# ------------------------------------------------------------------ the run

@dataclass(frozen=True)
class BatchCommand:
    requester_code: str
    affair_code: str
    input_path: Path
    output_path: Optional[Path] = None       # default: DIR/<media_dir>/<media_id>.jkm
    encoding: str = "auto"
    approval_id: Optional[str] = None
    purpose: Optional[str] = None
    items: Optional[list[str]] = None
    case_ref: Optional[str] = None


@dataclass
class BatchResult:
    media_id: str
    register: str
    password: str                      # shown once; never stored
    output_path: Path
    encoding: str
    rows: int = 0
    provided: int = 0
    not_found: int = 0
    ambiguous: int = 0
    errors: int = 0
    failed: int = 0
    national: int = 0
    number_refused: int = 0            # P7: rows provided without the 個人番号 (not a 国外転出者)
    size: int = 0
    sha256: str = ""
    key_id: str = ""
    approval_id: Optional[str] = None
    error_codes: dict = field(default_factory=dict)


@dataclass
class CheckResult:
    rows: int
    encoding: str
    columns: list[str]
    errors: int
    error_codes: dict
    approval_required: bool


class BatchService:
    def __init__(self, svc: ProvisionService):
        self.svc = svc
        self.config, self.registers = svc.config, svc.registers
        self.scanner = VirusScanner(self.config.media, self.config.resolve)

    def scan_input(self, path: Path, actor: Actor) -> None:
        """G3: the conditions file was brought in on media — ClamAV first, fail closed (ADR 0040)."""
        scan_and_record(self.scanner, self.registers.admin_tx, path, direction="in", purpose="batch_conditions",
                        operator_id=actor.operator_id)

    def media_dir(self) -> Path:
        return self.config.resolve(self.config.provision.media_dir)

    def _prepare(self, cmd: BatchCommand, op, att: _Attempt, actor: Actor, channel: str, now: datetime):
        try:
            check_command_text(cmd)
            att.case_ref = _case_ref(cmd.case_ref)
            spec = self.svc.catalogue()
            try:
                requester, affair = self.svc.resolve(cmd.requester_code, cmd.affair_code, spec, att)
            finally:
                access.require(op, "provide", att.register if att.affair_code else None)
            items = check_items(affair.register, affair.items, cmd.items)
            self.scan_input(cmd.input_path, actor)
            info = inspect_file(cmd.input_path, cmd.encoding, self.svc.keyring)
            att.keys = {"batch_file": info.digest}
            if info.rows > self.config.provision.batch_max_rows:
                raise _refuse("FILE_TOO_MANY_ROWS", "一括提供の件数が上限を超えています。ファイルを分けてください。", "file")
            approval = None
            if info.rows > self.config.provision.batch_approval_threshold or cmd.approval_id:
                if not cmd.approval_id:
                    raise _refuse("APPROVAL_REQUIRED",
                                  f"{self.config.provision.batch_approval_threshold:,} 件を超える一括提供には、"
                                  "管理責任者の事前承認が必要です。", "approval_id")
                approval = approvals.get(self.registers, cmd.approval_id)
                approvals.check(approval, requester_code=requester.code, affair_code=affair.code, rows=info.rows,
                                now=now)
            return requester, affair, items, info, approval
        except JukinetError as e:
            self.svc.record_refusal(att, actor, channel, e, action="provision_batch", now=now)
            raise

    def check(self, cmd: BatchCommand, op, terminal_id: Optional[str], *, channel: str = "terminal") -> CheckResult:
        """Screen the file first (A5): header, encoding, rows, per-row format errors — nothing is looked up."""
        now = utcnow()
        actor = Actor(op.operator_id if op else None, terminal_id)
        att = _Attempt(key_kind="file")
        try:
            check_command_text(cmd)
            att.case_ref = _case_ref(cmd.case_ref)
            spec = self.svc.catalogue()
            try:
                _, affair = self.svc.resolve(cmd.requester_code, cmd.affair_code, spec, att)
            finally:
                access.require(op, "provide", att.register if att.affair_code else None)
            check_items(affair.register, affair.items, cmd.items)
            self.scan_input(cmd.input_path, actor)
            info = inspect_file(cmd.input_path, cmd.encoding, self.svc.keyring)
        except JukinetError as e:
            self.svc.record_refusal(att, actor, channel, e, action="provision_batch_check", now=now)
            raise
        errors: dict[str, int] = {}
        for row in read_rows(cmd.input_path, info, affair):
            if row.error:
                errors[row.error.code] = errors.get(row.error.code, 0) + 1
        with self.registers.admin_tx() as conn:
            self.svc.oplog.append(conn, "admin", actor=actor, action="provision_batch_check", now=now,
                                  result_count=info.rows, keys={"batch_file": info.digest},
                                  detail={"requester": att.requester_code, "affair": att.affair_code,
                                          "rows": info.rows, "errors": sum(errors.values())})
        return CheckResult(info.rows, info.encoding, info.columns, sum(errors.values()), errors,
                           info.rows > self.config.provision.batch_approval_threshold)

    def run(self, cmd: BatchCommand, op, terminal_id: Optional[str], *, channel: str = "terminal",
            progress: Optional[Callable[[int, int], None]] = None) -> BatchResult:
        now = utcnow()
        actor = Actor(op.operator_id if op else None, terminal_id)
        att = _Attempt(key_kind="file")
        requester, affair, items, info, approval = self._prepare(cmd, op, att, actor, channel, now)
        register = affair.register
        media_id = f"M{wareki.japan_stamp(now)}-{secrets.token_hex(4).upper()}"   # the day in Japan (ADR 0042)
        out_path = Path(cmd.output_path) if cmd.output_path else self.media_dir() / f"{media_id}.jkm"
        purpose = " ".join((cmd.purpose or (approval.purpose if approval else "") or "").split())[:200] or None
        try:
            self._open_media(media_id, now, actor, channel, requester, affair, approval, purpose, info)
        except JukinetError as e:      # e.g. the approval was taken by a concurrent run: nothing written
            self.svc.record_refusal(att, actor, channel, e, action="provision_batch", now=now)
            raise
        res = BatchResult(media_id, register, new_password(), out_path, info.encoding, rows=info.rows,
                          approval_id=approval.approval_id if approval else None)
        run = _Run(self, res, att, actor, channel, requester, affair, items)
        out_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = out_path.with_name(out_path.name + ".part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw:
                w = MediaWriter(raw, media_id, res.password, created_at=now)
                run.writer = w
                w.write(run.header_line())
                chunk: list[Row] = []
                done = 0
                for row in read_rows(cmd.input_path, info, affair):
                    chunk.append(row)
                    if len(chunk) >= self.config.provision.batch_chunk_rows:
                        run.chunk(chunk)
                        done += len(chunk)
                        chunk = []
                        if progress:
                            progress(done, info.rows)
                if chunk:
                    run.chunk(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, info.rows)
                w.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, out_path)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            code = e.code if isinstance(e, JukinetError) else type(e).__name__
            self._finish(res, "failed", code[:40])
            raise
        res.size, res.sha256, res.key_id = w.size, w.sha256, w.key_id
        self._finish(res, "written", None)
        return res

    def _open_media(self, media_id: str, now: datetime, actor: Actor, channel: str, requester: C.Requester,
                    affair: C.Affair, approval, purpose: Optional[str], info: FileInfo) -> None:
        """The media register entry (status ``writing``) and the approval consumed, in one admin transaction."""
        with self.registers.admin_tx() as conn:
            conn.execute(insert(provision_media).values(
                media_id=media_id, created_at=now, operator_id=actor.operator_id, terminal_id=actor.terminal_id,
                channel=channel, requester_code=requester.code, affair_code=affair.code, register=affair.register,
                approval_id=approval.approval_id if approval else None, purpose=purpose, status="writing",
                input_encoding=info.encoding, input_sha256=info.digest, rows_total=info.rows, rows_provided=0,
                rows_not_found=0, rows_ambiguous=0, rows_error=0, rows_national=0, container=MEDIA_FORMAT,
                downloads=0))
            if approval is not None:
                approvals.consume(conn, approval.approval_id, media_id, now)
            self.svc.oplog.append(conn, "admin", actor=actor, action="media_start", now=now,
                                  detail={"media": media_id, "requester": requester.code, "affair": affair.code,
                                          "rows": info.rows, "approval": approval.approval_id if approval else None})

    def _finish(self, res: BatchResult, status: str, error_code: Optional[str]) -> None:
        now = utcnow()
        with self.registers.admin_tx() as conn:
            conn.execute(update(provision_media).where(provision_media.c.media_id == res.media_id).values(
                status=status, error_code=error_code, finished_at=now, rows_provided=res.provided,
                rows_not_found=res.not_found, rows_ambiguous=res.ambiguous, rows_error=res.errors + res.failed,
                rows_national=res.national, key_id=res.key_id or None, size_bytes=res.size or None,
                sha256=res.sha256 or None))
            self.svc.oplog.append(conn, "admin", actor=Actor(None, None), action="media_" + status, now=now,
                                  result_count=res.provided,
                                  detail={"media": res.media_id, "rows": res.rows, "provided": res.provided,
                                          "not_found": res.not_found, "ambiguous": res.ambiguous,
                                          "errors": res.errors, "failed": res.failed, "national": res.national,
                                          **({"number_refused": res.number_refused} if res.number_refused else {}),
                                          **({"code": error_code} if error_code else {}),
                                          **({"sha256": res.sha256} if res.sha256 else {})})


class _Run:
    """One batch run: turns chunks of rows into records, log entries and encrypted result rows."""

    def __init__(self, batch: BatchService, res: BatchResult, att: _Attempt, actor: Actor, channel: str,
                 requester: C.Requester, affair: C.Affair, items: tuple[str, ...]):
        self.b, self.svc, self.res, self.att, self.actor, self.channel = batch, batch.svc, res, att, actor, channel
        self.requester, self.affair, self.items = requester, affair, items
        self.register = affair.register
        self.writer: Optional[MediaWriter] = None
        self.n_chunk = 0
        self.fallback = batch.config.provision.national_fallback
        self.with_number = self.register == "fuhyo" and "kojin_bango" in items

    def header_line(self) -> bytes:
        labels = ITEMS[self.register]
        cols = (["依頼番号", "行番号", "結果", "結果コード", "メッセージ", "照会先"]
                + [f"突合_{FOUR_LABELS[f]}" for f in FOUR] + ["消除"] + [labels[i] for i in self.items])
        return _csv(cols)

    @staticmethod
    def _view(rec: dict) -> dict:
        return rec

    def chunk(self, rows: list[Row]) -> None:
        self.n_chunk += 1
        now = utcnow()
        out: dict[int, list] = {}
        recs: list[dict] = []
        pending: list[Row] = []
        with self.b.registers.uow(self.register) as uow:
            conn = uow.conn
            valid = [r for r in rows if r.keys is not None]
            by_code = lookup.by_codes(conn, self.register, [r.keys.juminhyo_code for r in valid
                                                            if r.keys.kind == "juminhyo_code"])
            by_bango = (lookup.by_bangos(conn, [r.keys.kojin_bango for r in valid if r.keys.kind == "kojin_bango"])
                        if self.register == "juki" else {})
            four_rows = [r for r in valid if r.keys.kind == "four"]
            by_four = dict(zip((r.line for r in four_rows),
                               lookup.by_fours(conn, self.register, [r.keys.four for r in four_rows])))
            found: dict[int, list] = {}
            for r in valid:
                if r.keys.kind == "juminhyo_code":
                    x = by_code.get(r.keys.juminhyo_code)
                    found[r.line] = [x] if x is not None else []
                elif r.keys.kind == "kojin_bango":
                    found[r.line] = by_bango.get(r.keys.kojin_bango, [])
                else:
                    found[r.line] = by_four[r.line]
            numbers, refused, fetched = {}, {}, None
            if self.with_number:
                codes = [self._view(found[r.line][0])["juminhyo_code"] for r in valid if len(found[r.line]) == 1]
                if codes:
                    fetched = link.fetch(self.b.registers, self.svc.oplog, self.svc.temp, fuhyo_conn=conn,
                                         codes=codes, affair=self.affair, requester_code=self.requester.code,
                                         actor=self.actor, ref=f"{self.res.media_id}-{self.n_chunk}",
                                         window_days=self.b.config.provision.kojin_bango_temp_days, now=now)
                    numbers, refused = fetched.numbers, fetched.refused
            try:
                for r in rows:
                    if r.keys is None:
                        out[r.line] = self._error_row(r, r.error)
                        recs.append(self._rec(r, now, "refused", reason=r.error.code, key_kind="none"))
                        continue
                    cands = found[r.line]
                    if not cands and self.fallback:
                        pending.append(r)
                        continue
                    out[r.line], rec = self._result(r, cands, "local", numbers, now, refused)
                    recs.append(rec)
                provided = sum(1 for x in recs if x["outcome"] == "provided")
                seq = self.svc.oplog.append(
                    conn, self.register, actor=self.actor, action="provision_batch", purpose_code="provision",
                    case_ref=self.att.case_ref, result_count=provided, now=now,
                    detail={"media": self.res.media_id, "chunk": self.n_chunk, "rows": len(recs),
                            "requester": self.requester.code, "affair": self.affair.code, "kind": self.att.kind,
                            "provided": provided, "channel": self.channel})
                for x in recs:
                    x["oplog_seq"] = seq
                write_many(conn, self.register, recs)
                if fetched is not None:
                    link.record_receipt(conn, self.svc.oplog, fetched, affair=self.affair,
                                        requester_code=self.requester.code, actor=self.actor,
                                        provided=sum(1 for x in recs if x["number_included"]), now=now)
            except BaseException:
                if fetched is not None:
                    link.discard(self.svc.temp, fetched)
                raise
        if pending:
            self._national(pending, out, now)
        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\r\n")
        for r in rows:
            wr.writerow(out[r.line])
        self.writer.write(buf.getvalue().encode("utf-8"))

    def _national(self, pending: list[Row], out: dict, now: datetime) -> None:
        recs = []
        for r in pending:
            try:
                answers = self.svc.national.query(self.register, query_body(r.keys))
            except (NationalUnavailable, NationalRefused) as e:
                out[r.line] = self._row(r, "failed", e.code, e.message, None, {}, None)
                recs.append(self._rec(r, now, "failed", reason=e.code, source="national"))
                self.res.failed += 1
                continue
            views = lookup.narrow([national_view(self.register, d) for d in answers], r.keys.four, self.register)
            out[r.line], rec = self._result(r, views, "national", {}, now)
            recs.append(rec)
        with self.b.registers.uow(self.register) as uow:
            provided = sum(1 for x in recs if x["outcome"] == "provided")
            seq = self.svc.oplog.append(
                uow.conn, self.register, actor=self.actor, action="provision_batch", purpose_code="provision",
                case_ref=self.att.case_ref, result_count=provided, now=now,
                detail={"media": self.res.media_id, "chunk": self.n_chunk, "rows": len(recs), "source": "national",
                        "requester": self.requester.code, "affair": self.affair.code, "kind": self.att.kind,
                        "provided": provided, "channel": self.channel})
            for x in recs:
                x["oplog_seq"] = seq
            write_many(uow.conn, self.register, recs)

    def _result(self, r: Row, cands: list, source: str, numbers: dict, now: datetime,
                refused: Optional[dict] = None) -> tuple[list, dict]:
        if not cands:
            self.res.not_found += 1
            return (self._row(r, "not_found", "NOT_FOUND", "該当する本人確認情報はありません。", None, {}, None),
                    self._rec(r, now, "not_found"))
        if len(cands) > 1:
            self.res.ambiguous += 1
            return (self._row(r, "ambiguous", "AMBIGUOUS", "複数の者が該当しました。", source, {}, None),
                    self._rec(r, now, "ambiguous", source=source))
        view = self._view(cands[0])
        values = {i: view.get(i) for i in self.items}
        note, code = None, None
        if self.with_number:
            values["kojin_bango"] = numbers.get(view["juminhyo_code"]) if source == "local" else None
            if source == "local" and view["juminhyo_code"] in (refused or {}):
                refusal = link.refusal(refused[view["juminhyo_code"]])     # P7: not a 国外転出者
                note, code = refusal.message, refusal.code
                self.res.number_refused += 1
            elif values["kojin_bango"] is None:
                note = "個人番号は提供できません (県外の者または記録なし)。" if source == "national" else "個人番号の記録がありません。"
        m = match(view, r.keys.four)
        self.res.provided += 1
        if source == "national":
            self.res.national += 1
        provided_items = tuple(i for i in self.items if values.get(i) not in (None, ""))
        row = self._row(r, "provided", code or "", note or ("全国サーバの回答です。" if source == "national" else ""),
                        source, m, view, values)
        rec = self._rec(r, now, "provided", reason=code, source=source, person=view.get("juminhyo_code"),
                        items=provided_items, number=bool(values.get("kojin_bango")), match_result=m)
        return row, rec

    def _row(self, r: Row, outcome: str, code: str, message: str, source: Optional[str], m: dict,
             view: Optional[dict], values: Optional[dict] = None) -> list:
        values = values or {}
        src = {"local": "県内", "national": "全国サーバ"}.get(source or "", "")
        return ([r.request_no, r.line, RESULT_LABELS[outcome], code, message, src] + [m.get(f, "") for f in FOUR]
                + [("消除" if view and view.get("removed") else "") if view else ""]
                + [_cell(values.get(i)) for i in self.items])

    def _error_row(self, r: Row, e: JukinetError) -> list:
        self.res.errors += 1
        self.res.error_codes[e.code] = self.res.error_codes.get(e.code, 0) + 1
        return self._row(r, "error", e.code, e.message, None, {}, None)

    def _rec(self, r: Row, now: datetime, outcome: str, *, reason: str | None = None, key_kind: str | None = None,
             source: str | None = None, person: str | None = None, items: tuple = (), number: bool = False,
             match_result: dict | None = None) -> dict:
        d = self.svc.digests
        return {"at": now, "operator_id": self.actor.operator_id, "terminal_id": self.actor.terminal_id,
                "channel": self.channel, "kind": self.att.kind, "requester_code": self.requester.code,
                "affair_code": self.affair.code, "purpose_code": "provision", "case_ref": self.att.case_ref,
                "key_kind": key_kind or (r.keys.kind if r.keys else "none"),
                "keys_digest": d.keys(r.keys.digest_keys() if r.keys else {}), "person_digest": d.person(person),
                "source": source, "outcome": outcome, "reason_code": reason, "items": ",".join(items),
                "number_included": number,
                "match_result": (json.dumps(match_result, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                                 if match_result else None),
                "media_id": self.res.media_id, "row_no": r.line, "oplog_seq": None}


def _cell(v) -> str:
    return "" if v is None else str(v)


def _csv(cols: list) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(cols)
    return buf.getvalue().encode("utf-8")
