"""The backup file: container ``jukinet.backup/1`` (A7; ADR 0024).

Envelope encryption: a random 256-bit data key per backup encrypts the content with AES-256-GCM in
chunks; the data key is wrapped with the prefecture's **public** key (RSA-OAEP-SHA256, see
:mod:`jukinet.backup.keys`). The machine that writes a backup cannot read one: only the holder of
the private key can.

Layout (integers big-endian)::

    magic "JKNBACKP" (8) | version 0x01 (1) | header_len (4) | header (UTF-8 JSON)
    chunk*:  ct_len (4) | AES-256-GCM ciphertext ‖ tag (ct_len bytes)
    trailer: "JKNBEND1" (8) | chunk count (8) | SHA-256 of every byte before the trailer (32)

The header (no personal data) names the format, backup id, creation time, source engine, schema
heads, cipher, chunk size, nonce prefix and the wrapped key (algorithm, ``key_id`` = SHA-256 of the
public key, ``wrapped_key``). Chunk *i* (from 0) is sealed under nonce = prefix (7 bytes) ‖ *i*
(4 bytes) ‖ ``0x01`` for the last chunk else ``0x00`` (the STREAM construction, as in
``jukinet.media/1``), with the SHA-256 of magic‖version‖header_len‖header as associated data: the
header cannot change, chunks cannot be reordered, dropped or cut off without failing.

Each chunk's plaintext is a kind byte and a payload: ``F`` a file begins (JSON: path, kind,
compression), ``D`` file data (zlib-compressed when the file entry says so), ``M`` the manifest
(JSON: every file's size and SHA-256 of its plaintext, the chunk count) — always the last chunk.
A reader authenticates every chunk before it releases its content and checks the manifest at the
end; the trailer lets anyone (without the key) check that a file is complete and unaltered.

>>> import io
>>> key, out = b"k" * 32, io.BytesIO()
>>> w = BackupWriter(out, {"backup_id": "B1"}, {"alg": "none", "key_id": "x", "wrapped_key": ""}, key,
...                  chunk_size=8)
>>> w.add_bytes("keys/a.key", "file", b"0123456789abcdef-secret")
>>> manifest = w.close()
>>> b"secret" in out.getvalue(), manifest["files"][0]["size"]
(False, 23)
>>> r = BackupReader(io.BytesIO(out.getvalue()), StaticKey(key))
>>> [e[0] for e in r.events()]
['file', 'data', 'data', 'data', 'manifest']
>>> list(BackupReader(io.BytesIO(out.getvalue()[:-60]), StaticKey(key)).events())
Traceback (most recent call last):
...
jukinet.errors.JukinetError: BACKUP_TRUNCATED: バックアップファイルが途中で切れています。
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import zlib
from typing import BinaryIO, Iterator, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jukinet.errors import JukinetError

MAGIC = b"JKNBACKP"
END = b"JKNBEND1"
VERSION = 1
FORMAT = "jukinet.backup/1"
CHUNK_SIZE = 1 << 20
TAG = 16
MAX_HEADER = 1 << 20
MAX_CHUNK = 64 << 20
TRAILER = len(END) + 8 + 32

FILE, DATA, MANIFEST = b"F", b"D", b"M"


def corrupt() -> JukinetError:
    return JukinetError("BACKUP_CORRUPT", "バックアップファイルが壊れているか、改ざんされています。")


def truncated() -> JukinetError:
    return JukinetError("BACKUP_TRUNCATED", "バックアップファイルが途中で切れています。")


def key_mismatch() -> JukinetError:
    return JukinetError("BACKUP_KEY_MISMATCH", "このバックアップはこの鍵では復号できません (別の鍵で暗号化されています)。")


def _nonce(prefix: bytes, i: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", i) + (b"\x01" if last else b"\x00")


def _json(d: dict) -> bytes:
    return json.dumps(d, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


class BackupWriter:
    """Write a backup to ``out`` streaming: :meth:`begin_file` / :meth:`write` / :meth:`end_file` per
    file (or :meth:`add_bytes`), then :meth:`close`, which returns the manifest. ``size`` and
    ``chunks`` are known as it goes."""

    def __init__(self, out: BinaryIO, meta: dict, wrap: dict, data_key: bytes, *, chunk_size: int = CHUNK_SIZE,
                 compress_level: int = 0):
        self.out = out
        self.chunk_size = chunk_size
        self.compress_level = compress_level
        self.prefix = secrets.token_bytes(7)
        header = {**meta, "format": FORMAT, "cipher": "AES-256-GCM", "chunk_size": chunk_size,
                  "nonce_prefix": base64.b64encode(self.prefix).decode(),
                  "nonce_scheme": "prefix7 || counter32be || last8", "key": wrap}
        hb = _json(header)
        head = MAGIC + bytes([VERSION]) + struct.pack(">I", len(hb)) + hb
        self.header = header
        self.aad = hashlib.sha256(head).digest()
        self.aead = AESGCM(data_key)
        self._hash = hashlib.sha256()
        self.size = 0
        self.chunks = 0
        self.files: list[dict] = []
        self._cur: Optional[dict] = None
        self._buf = bytearray()
        self._emit(head)

    def _emit(self, b: bytes) -> None:
        self.out.write(b)
        self._hash.update(b)
        self.size += len(b)

    def _seal(self, kind: bytes, payload: bytes, last: bool = False) -> None:
        ct = self.aead.encrypt(_nonce(self.prefix, self.chunks, last), kind + payload, self.aad)
        self._emit(struct.pack(">I", len(ct)))
        self._emit(ct)
        self.chunks += 1

    def begin_file(self, path: str, kind: str, *, compress: bool = True, **meta) -> None:
        """Start a file; ``compress=False`` for content that is compressed already (pg_dump)."""
        if self._cur is not None:
            self.end_file()
        level = self.compress_level if compress else 0
        entry = {"path": path, "kind": kind, **meta}
        if level:
            entry["compression"] = "zlib"
        self._seal(FILE, _json(entry))
        self._cur = {"entry": entry, "hash": hashlib.sha256(), "size": 0,
                     "z": zlib.compressobj(level) if level else None}

    def write(self, data: bytes) -> None:
        cur = self._cur
        cur["hash"].update(data)
        cur["size"] += len(data)
        self._buffer(cur["z"].compress(data) if cur["z"] else data)

    def _buffer(self, data: bytes) -> None:
        if not self._buf and len(data) == self.chunk_size:
            self._seal(DATA, data)
            return
        self._buf += data
        while len(self._buf) >= self.chunk_size:
            self._seal(DATA, bytes(self._buf[:self.chunk_size]))
            del self._buf[:self.chunk_size]

    def end_file(self) -> dict:
        cur, self._cur = self._cur, None
        if cur["z"] is not None:
            self._buffer(cur["z"].flush())
        if self._buf:
            self._seal(DATA, bytes(self._buf))
            self._buf.clear()
        rec = {"path": cur["entry"]["path"], "kind": cur["entry"]["kind"], "size": cur["size"],
               "sha256": cur["hash"].hexdigest()}
        self.files.append(rec)
        return rec

    def add_bytes(self, path: str, kind: str, data: bytes, **meta) -> None:
        self.begin_file(path, kind, **meta)
        self.write(data)
        self.end_file()

    def close(self, **extra) -> dict:
        if self._cur is not None:
            self.end_file()
        manifest = {"backup_id": self.header.get("backup_id"), "files": self.files, "chunks": self.chunks + 1,
                    **extra}
        self._seal(MANIFEST, _json(manifest), last=True)
        trailer_hash = self._hash.digest()
        self._emit(END + struct.pack(">Q", self.chunks) + trailer_hash)
        return manifest


def read_header(f: BinaryIO) -> tuple[dict, bytes, bytes]:
    """The header (no key needed), the associated data of the chunks, and the raw head bytes."""
    head = f.read(13)
    if len(head) < 13 and MAGIC.startswith(head[:8]) and head:
        raise truncated()
    if len(head) != 13 or head[:8] != MAGIC:
        raise JukinetError("BACKUP_FORMAT", "jukinet のバックアップファイルではありません。")
    if head[8] != VERSION:
        raise JukinetError("BACKUP_VERSION", "対応していないバックアップファイルの版です。")
    (n,) = struct.unpack(">I", head[9:13])
    if n > MAX_HEADER:
        raise corrupt()
    hb = f.read(n)
    if len(hb) != n:
        raise truncated()
    try:
        header = json.loads(hb)
    except ValueError:
        raise corrupt() from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("cipher") != "AES-256-GCM":
        raise corrupt()
    raw = head + hb
    return header, hashlib.sha256(raw).digest(), raw


class StaticKey:
    """A key provider that already holds the data key (tests, doctests)."""

    key_id = None

    def __init__(self, key: bytes):
        self._key = key

    def unwrap(self, wrap: dict) -> bytes:
        return self._key


class BackupReader:
    """Read and authenticate a backup: :meth:`events` yields ``("file", entry)``, ``("data", bytes)``
    (decompressed) and finally ``("manifest", manifest)`` once every check has passed. Any failure
    raises :class:`~jukinet.errors.JukinetError` (BACKUP_CORRUPT, BACKUP_TRUNCATED, BACKUP_KEY_MISMATCH, …)."""

    def __init__(self, f: BinaryIO, provider):
        self.f = f
        self.header, self.aad, raw = read_header(f)
        self._hash = hashlib.sha256(raw)
        wrap = self.header.get("key") or {}
        if provider.key_id is not None and provider.key_id != wrap.get("key_id"):
            raise key_mismatch()
        key = provider.unwrap(wrap)
        if not isinstance(key, bytes) or len(key) != 32:
            raise key_mismatch()
        self.aead = AESGCM(key)
        try:
            self.prefix = base64.b64decode(self.header["nonce_prefix"], validate=True)
            self.chunk_size = int(self.header["chunk_size"])
        except (KeyError, ValueError, TypeError):
            raise corrupt() from None
        if len(self.prefix) != 7:
            raise corrupt()

    def _read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise truncated()
        self._hash.update(b)
        return b

    def _length(self, four: bytes) -> int:
        (n,) = struct.unpack(">I", four)
        if n < TAG + 1 or n > MAX_CHUNK + 1 + TAG:
            raise corrupt()
        return n

    def events(self) -> Iterator[tuple[str, object]]:
        i = 0
        files: list[dict] = []
        cur: Optional[dict] = None
        cur_len = self._length(self._read(4))
        while True:
            ct = self._read(cur_len)
            nxt = self.f.read(4)
            if len(nxt) < 4:
                raise truncated()
            last = nxt == END[:4]
            try:
                plain = self.aead.decrypt(_nonce(self.prefix, i, last), ct, self.aad)
            except InvalidTag:
                raise corrupt() from None
            i += 1
            kind, payload = plain[:1], plain[1:]
            if kind == FILE:
                if cur is not None:
                    files.append(self._finish(cur))
                try:
                    entry = json.loads(payload)
                except ValueError:
                    raise corrupt() from None
                comp = entry.get("compression")
                if comp not in (None, "zlib"):
                    raise corrupt()
                cur = {"entry": entry, "hash": hashlib.sha256(), "size": 0,
                       "z": zlib.decompressobj() if comp == "zlib" else None}
                yield "file", entry
            elif kind == DATA and cur is not None:
                data = payload
                if cur["z"] is not None:
                    try:
                        data = cur["z"].decompress(payload)
                    except zlib.error:
                        raise corrupt() from None
                cur["hash"].update(data)
                cur["size"] += len(data)
                if data:
                    yield "data", data
            elif kind == MANIFEST and last:
                if cur is not None:
                    files.append(self._finish(cur))
                manifest = self._check_end(payload, files, i)
                yield "manifest", manifest
                return
            else:
                raise corrupt()
            if last:
                raise corrupt()
            self._hash.update(nxt)
            cur_len = self._length(nxt)

    @staticmethod
    def _finish(cur: dict) -> dict:
        if cur["z"] is not None and (cur["z"].unused_data or not cur["z"].eof):
            raise corrupt()
        return {"path": cur["entry"].get("path"), "kind": cur["entry"].get("kind"), "size": cur["size"],
                "sha256": cur["hash"].hexdigest()}

    def _check_end(self, payload: bytes, files: list[dict], chunks: int) -> dict:
        expected_hash = self._hash.digest()
        rest = self.f.read(TRAILER - 4)
        if len(rest) != TRAILER - 4:
            raise truncated()
        if rest[:4] != END[4:]:
            raise corrupt()
        (count,) = struct.unpack(">Q", rest[4:12])
        if count != chunks or rest[12:] != expected_hash or self.f.read(1):
            raise corrupt()
        try:
            manifest = json.loads(payload)
        except ValueError:
            raise corrupt() from None
        if manifest.get("chunks") != chunks or manifest.get("files") != files \
                or manifest.get("backup_id") != self.header.get("backup_id"):
            raise corrupt()
        return manifest


def check_file(f: BinaryIO) -> dict:
    """Without the key: the header, and whether the file is complete and its trailer hash matches
    (framing and SHA-256 only — authenticity needs the key, :class:`BackupReader`)."""
    header, _, raw = read_header(f)
    h = hashlib.sha256(raw)
    chunks = 0
    while True:
        four = f.read(4)
        if len(four) < 4:
            raise truncated()
        if four == END[:4]:
            rest = f.read(TRAILER - 4)
            if len(rest) != TRAILER - 4:
                raise truncated()
            (count,) = struct.unpack(">Q", rest[4:12])
            if rest[:4] != END[4:] or count != chunks or rest[12:] != h.digest() or f.read(1):
                raise corrupt()
            return {"header": header, "chunks": chunks}
        h.update(four)
        (n,) = struct.unpack(">I", four)
        if n < TAG + 1 or n > MAX_CHUNK + 1 + TAG:
            raise corrupt()
        remaining = n
        while remaining:
            b = f.read(min(remaining, 1 << 20))
            if not b:
                raise truncated()
            h.update(b)
            remaining -= len(b)
        chunks += 1
