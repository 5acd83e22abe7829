"""The encrypted result file of a batch provision: container ``jukinet.media/1`` (P4, A5; ADR 0016).

PIA III.5 その他: files handed over on electronic media are encrypted / password protected. A
batch result is written **streaming** into this container and never exists in clear on disk:

``magic`` 8 bytes ``JKNMEDIA`` · ``version`` 1 byte ``0x01`` · ``header_len`` 4 bytes big-endian ·
``header`` (UTF-8 JSON, ``header_len`` bytes) · ``chunks``.

The header (no personal data) names the format, the media id, the cipher (``AES-256-GCM``), the
key derivation (``scrypt``, its salt and parameters), the ``key_id`` (a fingerprint of the derived
key, so a wrong password is reported before anything is decrypted), the ``chunk_size`` and the
``nonce_prefix`` (7 random bytes, base64), the content type and the creation time.

The plaintext is cut into chunks of ``chunk_size`` bytes (the last one shorter, possibly empty).
Chunk *i* (from 0) is sealed with AES-256-GCM under

* nonce = ``nonce_prefix`` (7 bytes) ‖ *i* (4 bytes, big-endian) ‖ ``0x01`` for the last chunk,
  ``0x00`` otherwise — the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): chunks
  cannot be reordered, dropped, or the file cut at a chunk boundary without failing;
* associated data = SHA-256 of magic ‖ version ‖ header_len ‖ header — the header cannot be changed;

and stored as ciphertext ‖ 16-byte tag. A reader authenticates each chunk before releasing it.

**Key.** A random password (25 characters of Crockford base32 in five groups, 125 bits) is made
for each media; the key is ``scrypt(password, salt, n=2**15, r=8, p=1, 32 bytes)``. The password is
shown once to the operator to hand over separately from the media (on paper, to the requester's
person in charge) and is never stored. ``jukinet provision decrypt FILE`` opens the file.

>>> import io
>>> out = io.BytesIO()
>>> w = MediaWriter(out, "M-TEST", "ABCDE-FGHJK-MNPQR-STVWX-YZ012", chunk_size=16)
>>> w.write("住民票コード,氏名\\n".encode()); w.write(b"x" * 40); w.close()
>>> data = out.getvalue()
>>> b"x" * 16 in data
False
>>> b"".join(read_chunks(io.BytesIO(data), "ABCDE-FGHJK-MNPQR-STVWX-YZ012")).endswith(b"x" * 40)
True
>>> list(read_chunks(io.BytesIO(data[:-20]), "ABCDE-FGHJK-MNPQR-STVWX-YZ012"))
Traceback (most recent call last):
...
jukinet.errors.JukinetError: MEDIA_CORRUPT: 媒体ファイルが壊れているか、改ざんされています。
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
from datetime import datetime, timezone
from typing import BinaryIO, Iterator, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from jukinet.errors import JukinetError

MAGIC = b"JKNMEDIA"
VERSION = 1
FORMAT = "jukinet.media/1"
CHUNK_SIZE = 64 * 1024
TAG = 16
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # Crockford base32: no I L O U


def new_password() -> str:
    s = "".join(secrets.choice(_ALPHABET) for _ in range(25))
    return "-".join(s[i:i + 5] for i in range(0, 25, 5))


def _normalize_password(pw: str) -> bytes:
    return "".join(pw.split()).upper().replace("-", "").encode("ascii", "replace")


def derive_key(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(_normalize_password(password))


def key_id(key: bytes) -> str:
    return hmac.new(key, b"jukinet.media/1 key id", hashlib.sha256).hexdigest()[:16]


def _nonce(prefix: bytes, i: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", i) + (b"\x01" if last else b"\x00")


def _corrupt() -> JukinetError:
    return JukinetError("MEDIA_CORRUPT", "媒体ファイルが壊れているか、改ざんされています。")


class MediaWriter:
    """Write the container to ``out`` (a binary file), streaming; :attr:`sha256` and :attr:`size` of the
    bytes written are known after :meth:`close`."""

    def __init__(self, out: BinaryIO, media_id: str, password: str, *, chunk_size: int = CHUNK_SIZE,
                 content_type: str = "text/csv; charset=utf-8", created_at: Optional[datetime] = None,
                 kdf: Optional[dict] = None):
        self.out = out
        self.chunk_size = chunk_size
        salt = secrets.token_bytes(16)
        params = dict(kdf or SCRYPT)
        key = derive_key(password, salt, **params)
        self.key_id = key_id(key)
        self.prefix = secrets.token_bytes(7)
        header = {"format": FORMAT, "media_id": media_id, "cipher": "AES-256-GCM",
                  "kdf": {"name": "scrypt", "salt": base64.b64encode(salt).decode(), **params},
                  "key_id": self.key_id, "chunk_size": chunk_size,
                  "nonce_prefix": base64.b64encode(self.prefix).decode(),
                  "nonce_scheme": "prefix7 || counter32be || last8", "content_type": content_type,
                  "created_at": (created_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        hb = json.dumps(header, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        head = MAGIC + bytes([VERSION]) + struct.pack(">I", len(hb)) + hb
        self.aad = hashlib.sha256(head).digest()
        self.aead = AESGCM(key)
        self.buf = bytearray()
        self.i = 0
        self.size = 0
        self._hash = hashlib.sha256()
        self._emit(head)
        self.closed = False

    def _emit(self, b: bytes) -> None:
        self.out.write(b)
        self._hash.update(b)
        self.size += len(b)

    def _seal(self, chunk: bytes, last: bool) -> None:
        self._emit(self.aead.encrypt(_nonce(self.prefix, self.i, last), chunk, self.aad))
        self.i += 1

    def write(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) > self.chunk_size:   # keep at least one byte back: the last chunk is flagged
            self._seal(bytes(self.buf[:self.chunk_size]), False)
            del self.buf[:self.chunk_size]

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self.buf), True)
            self.buf.clear()
            self.closed = True

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def read_header(f: BinaryIO) -> tuple[dict, bytes]:
    head = f.read(13)
    if len(head) != 13 or head[:8] != MAGIC:
        raise JukinetError("MEDIA_FORMAT", "jukinet の媒体ファイルではありません。")
    if head[8] != VERSION:
        raise JukinetError("MEDIA_VERSION", "対応していない媒体ファイルの版です。")
    (n,) = struct.unpack(">I", head[9:13])
    if n > 64 * 1024:
        raise _corrupt()
    hb = f.read(n)
    if len(hb) != n:
        raise _corrupt()
    try:
        header = json.loads(hb)
    except ValueError:
        raise _corrupt() from None
    if header.get("format") != FORMAT or header.get("cipher") != "AES-256-GCM":
        raise JukinetError("MEDIA_FORMAT", "jukinet の媒体ファイルではありません。")
    return header, hashlib.sha256(head + hb).digest()


def read_chunks(f: BinaryIO, password: str) -> Iterator[bytes]:
    """The plaintext, chunk by chunk, each authenticated before it is released."""
    header, aad = read_header(f)
    kdf = header["kdf"]
    key = derive_key(password, base64.b64decode(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    if not hmac.compare_digest(key_id(key), str(header.get("key_id"))):
        raise JukinetError("MEDIA_PASSWORD", "パスワードが正しくありません。")
    aead = AESGCM(key)
    prefix = base64.b64decode(header["nonce_prefix"])
    size = int(header["chunk_size"]) + TAG
    i = 0
    cur = f.read(size)
    while True:
        if len(cur) < TAG:
            raise _corrupt()
        nxt = f.read(size)
        last = not nxt
        if not last and len(cur) != size:
            raise _corrupt()
        try:
            yield aead.decrypt(_nonce(prefix, i, last), cur, aad)
        except InvalidTag:
            raise _corrupt() from None
        if last:
            return
        i += 1
        cur = nxt


def decrypt_file(src: BinaryIO, dst: BinaryIO, password: str) -> int:
    n = 0
    for chunk in read_chunks(src, password):
        dst.write(chunk)
        n += len(chunk)
    return n
