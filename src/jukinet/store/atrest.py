"""個人番号 encrypted at rest in D1 (A7, A3; PIA: 個人番号 is 特定個人情報; ADR 0025).

D1 never holds a 個人番号 in the clear. Each row carries three columns instead:

* ``kojin_bango_ct``  — AES-256-GCM: random 96-bit nonce ‖ ciphertext ‖ tag. The associated data
  binds it to the row's 住民票コード and the key id, so a ciphertext copied to another row (or
  relabelled with another key id) does not decrypt;
* ``kojin_bango_key`` — the id of the data key that sealed it (rotation re-encrypts row by row and
  can resume after a kill: the rows say which key they use);
* ``kojin_bango_bi``  — the keyed blind index: HMAC-SHA256 of the number under a separate index
  key, first 128 bits in hex. Exact lookups go through its index; the blind-index key is not
  rotated with the data keys (ADR 0025), so lookups work throughout a rotation.

The keys live outside the database in ``DIR/keys/kojin_bango.json`` (0600, written atomically),
created on first use of an installation that holds no sealed row yet. Retired data keys keep
their id (never reused) but lose their material.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> c = KojinBangoCipher(KojinBangoKeys.load_or_create(d))
>>> ct, kid, bi = c.seal("52601815907", "625276018957")
>>> kid, len(ct), len(bi), b"625276018957" in ct
(1, 40, 32, False)
>>> c.open("52601815907", ct, kid)
'625276018957'
>>> bi == c.blind_index("625276018957") != c.blind_index("625276018958")
True
>>> c.open("52601815908", ct, kid)      # the same ciphertext on another row
Traceback (most recent call last):
...
jukinet.errors.JukinetError: ATREST_DECRYPT_FAILED: 個人番号を復号できません（暗号文が改ざんされたか、別の行から移されています）。
>>> oct((d / "keys" / "kojin_bango.json").stat().st_mode)[-3:]
'600'
>>> row = c.seal_row({"juminhyo_code": "52601815907", "kojin_bango": "625276018957"})
>>> sorted(row), c.open_row(row)["kojin_bango"]
(['juminhyo_code', 'kojin_bango_bi', 'kojin_bango_ct', 'kojin_bango_key'], '625276018957')
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jukinet.errors import JukinetError
from jukinet.store.tables import juki_current, juki_history
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

KEY_FILE = Path("keys") / "kojin_bango.json"
#: the columns that replace ``kojin_bango`` in ``juki_current`` and ``juki_history``
COLUMNS = ("kojin_bango_ct", "kojin_bango_key", "kojin_bango_bi")
#: the execution option under which a juki engine carries its cipher (see :func:`cipher_of`)
OPTION = "jukinet_atrest"
BLIND_INDEX_HEX = 32
ACTIVE, DECRYPT_ONLY, RETIRED = "active", "decrypt-only", "retired"
_REFRESH_SECONDS = 1.0


def _error(code: str, message: str) -> JukinetError:
    return JukinetError(code, message)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SealingKeys:
    """A key file under ``DIR/keys/``: data keys by id (one active), and an index key.

    Subclasses name the file and what it protects (``KEY_FILE``, ``LABEL``): 個人番号 here, the
    operators' TOTP secrets in :mod:`jukinet.security.totp_secret` (ADR 0029).
    """

    KEY_FILE = KEY_FILE
    LABEL = "個人番号"

    path: Path
    active: int
    index_key: bytes
    keys: dict[int, dict] = field(default_factory=dict)   # id -> {"key": hex | None, "state", "created", …}

    # ------------------------------------------------------------------ file
    @classmethod
    def file(cls, data_dir: Path | str) -> Path:
        return Path(data_dir) / cls.KEY_FILE

    @classmethod
    def exists(cls, data_dir: Path | str) -> bool:
        return cls.file(data_dir).exists()

    @classmethod
    def load(cls, data_dir: Path | str) -> "SealingKeys":
        path = cls.file(data_dir)
        if not path.exists():
            raise _error("ATREST_KEY_MISSING", f"{cls.LABEL}の暗号鍵ファイル ({cls.KEY_FILE.as_posix()}) がありません。"
                         "バックアップから鍵ファイルを戻してください。")
        try:
            d = json.loads(path.read_text())
            keys = {int(k): dict(v) for k, v in d["keys"].items()}
            index_key = bytes.fromhex(d["index_key"])
            active = int(d["active"])
            if len(index_key) != 32 or len(bytes.fromhex(keys[active]["key"])) != 32:
                raise ValueError
        except (OSError, ValueError, KeyError, TypeError):
            raise _error("ATREST_KEY_INVALID", f"{cls.LABEL}の暗号鍵ファイルを読み取れません（形式が正しくありません）。") from None
        return cls(path, active, index_key, keys)

    @classmethod
    def load_or_create(cls, data_dir: Path | str) -> "SealingKeys":
        if cls.exists(data_dir):
            return cls.load(data_dir)
        keys = cls(cls.file(data_dir), 1, secrets.token_bytes(32),
                   {1: {"key": secrets.token_hex(32), "state": ACTIVE, "created": _now()}})
        keys.save(create=True)
        return keys

    def save(self, *, create: bool = False) -> None:
        """Write the file atomically (temporary file 0600, fsync, rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {"format": 1, "active": self.active, "index_key": self.index_key.hex(),
                "keys": {str(k): v for k, v in sorted(self.keys.items())}}
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if create:
            try:
                os.link(tmp, self.path)      # never overwrite a key file that appeared meanwhile
            except FileExistsError:
                os.unlink(tmp)
                raise _error("ATREST_KEY_EXISTS", f"{self.LABEL}の暗号鍵ファイルは既にあります。") from None
            os.unlink(tmp)
        else:
            os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # ------------------------------------------------------------------ rotation states
    def material(self, key_id: int) -> Optional[bytes]:
        k = self.keys.get(key_id)
        return bytes.fromhex(k["key"]) if k and k.get("key") else None

    def readable(self) -> list[int]:
        return sorted(k for k, v in self.keys.items() if v["state"] != RETIRED)

    def pending(self) -> list[int]:
        """Keys still readable but no longer sealing (a rotation in progress)."""
        return sorted(k for k, v in self.keys.items() if v["state"] == DECRYPT_ONLY)

    def add_active(self) -> int:
        new = max(self.keys) + 1
        for v in self.keys.values():
            if v["state"] == ACTIVE:
                v["state"] = DECRYPT_ONLY
        self.keys[new] = {"key": secrets.token_hex(32), "state": ACTIVE, "created": _now()}
        self.active = new
        return new

    def retire(self, key_id: int) -> None:
        v = self.keys[key_id]
        if v["state"] == ACTIVE:
            raise ValueError("the active key cannot be retired")
        v.update(state=RETIRED, key=None, retired=_now())


class KojinBangoKeys(SealingKeys):
    """``DIR/keys/kojin_bango.json``: the data keys of 個人番号 and the blind-index key."""


class SealingCipher:
    """AES-256-GCM under the keys of one key file; the AAD binds a ciphertext to its subject (the row
    it belongs to) and key id. Subclasses set ``KEYS`` and ``PURPOSE`` (thread-safe)."""

    KEYS: type[SealingKeys] = KojinBangoKeys
    PURPOSE = "kojin_bango"

    def __init__(self, keys: SealingKeys, data_dir: Path | str | None = None):
        self._lock = threading.Lock()
        self._data_dir = data_dir
        self._set(keys)

    def _set(self, keys: SealingKeys) -> None:
        self.keys = keys
        self._aead = {k: AESGCM(m) for k in keys.readable() if (m := keys.material(k))}
        self._index_key = keys.index_key
        self._checked = time.monotonic()
        try:
            self._mtime = keys.path.stat().st_mtime_ns
        except OSError:
            self._mtime = None

    def refresh(self, force: bool = False) -> None:
        """Pick up a rotation done by another process (the key file changed)."""
        if self._data_dir is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < _REFRESH_SECONDS:
            return
        with self._lock:
            self._checked = now
            try:
                mtime = self.keys.path.stat().st_mtime_ns
            except OSError:
                return
            if force or mtime != self._mtime:
                keys = self.KEYS.load(self._data_dir)
                if keys.index_key != self._index_key:
                    raise _error("ATREST_KEY_MISMATCH", f"{keys.LABEL}の索引鍵が変わっています。鍵ファイルを確認してください。")
                self._set(keys)

    @classmethod
    def for_installation(cls, data_dir: Path | str) -> "SealingCipher":
        return cls(cls.KEYS.load_or_create(data_dir), data_dir)

    @property
    def active(self) -> int:
        return self.keys.active

    def _aad(self, subject: str, key_id: int) -> bytes:
        return f"jukinet/{self.PURPOSE}/v1/{key_id}/{subject}".encode()

    def encrypt(self, subject: str, plaintext: str, key_id: int | None = None) -> tuple[bytes, int]:
        """(nonce ‖ ciphertext ‖ tag, key id) of ``plaintext`` on the row of ``subject``."""
        self.refresh()
        key_id = self.active if key_id is None else key_id
        nonce = secrets.token_bytes(12)
        return nonce + self._aead[key_id].encrypt(nonce, plaintext.encode(), self._aad(subject, key_id)), key_id

    def open(self, subject: str, ct: bytes, key_id: int) -> str:
        label = self.KEYS.LABEL
        aead = self._aead.get(key_id)
        if aead is None:
            self.refresh(force=True)
            aead = self._aead.get(key_id)
            if aead is None:
                raise _error("ATREST_KEY_UNKNOWN", f"{label}の暗号鍵が見つかりません（廃止済みまたは別の鍵ファイルです）。")
        try:
            return aead.decrypt(bytes(ct[:12]), bytes(ct[12:]), self._aad(subject, key_id)).decode()
        except InvalidTag:
            raise _error("ATREST_DECRYPT_FAILED",
                         f"{label}を復号できません（暗号文が改ざんされたか、別の行から移されています）。") from None


class KojinBangoCipher(SealingCipher):
    """seal / open / blind_index of the 個人番号 of one installation (thread-safe)."""

    def _set(self, keys: SealingKeys) -> None:
        super()._set(keys)
        # HMAC-SHA256 (RFC 2104) with the index key's inner and outer states hashed once: a blind
        # index then costs two SHA-256 blocks, not four (the consistency check takes one per person)
        block = keys.index_key.ljust(64, b"\0")            # a 32-byte key: shorter than SHA-256's block
        self._hmac_inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._hmac_outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def blind_index(self, kojin_bango: str) -> str:
        """HMAC-SHA256 of the number under the index key, first 128 bits in hex.

        >>> import hmac, tempfile
        >>> c = KojinBangoCipher(KojinBangoKeys.load_or_create(tempfile.mkdtemp()))
        >>> c.blind_index("625276018957") == hmac.new(c.keys.index_key, b"625276018957", "sha256").hexdigest()[:32]
        True
        """
        inner = self._hmac_inner.copy()
        inner.update(kojin_bango.encode())
        outer = self._hmac_outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:BLIND_INDEX_HEX // 2].hex()

    def seal(self, juminhyo_code: str, kojin_bango: str, key_id: int | None = None) -> tuple[bytes, int, str]:
        """(ciphertext, key id, blind index) of a 個人番号 on the row of ``juminhyo_code``."""
        ct, key_id = self.encrypt(juminhyo_code, kojin_bango, key_id)
        return ct, key_id, self.blind_index(kojin_bango)

    # ------------------------------------------------------------------ rows
    def seal_row(self, row: dict) -> dict:
        """A row dict with plaintext ``kojin_bango`` → the same dict with the three sealed columns."""
        number = row.pop("kojin_bango", None)
        sealed = self.seal(row["juminhyo_code"], number) if number else (None, None, None)
        row.update(zip(COLUMNS, sealed))
        return row

    def open_value(self, m) -> Optional[str]:
        """The 個人番号 of a row mapping (None when the person has none)."""
        ct = m["kojin_bango_ct"]
        return None if ct is None else self.open(m["juminhyo_code"], ct, m["kojin_bango_key"])

    def open_row(self, m) -> dict:
        """A row (mapping) as a dict with plaintext ``kojin_bango`` and without the sealed columns."""
        d = dict(m._mapping) if hasattr(m, "_mapping") else dict(m)
        d["kojin_bango"] = self.open_value(d)
        for c in COLUMNS:
            d.pop(c, None)
        return d


def cipher_of(conn) -> KojinBangoCipher:
    """The cipher of the juki connection's installation (set on the engine by ``Registers``)."""
    cipher = conn.get_execution_options().get(OPTION)
    if cipher is None:
        raise _error("ATREST_KEY_UNAVAILABLE", "個人番号の暗号鍵が読み込まれていません。")
    return cipher


def attach(engine, cipher: KojinBangoCipher) -> None:
    engine.update_execution_options(**{OPTION: cipher})


def sample_row(conn):
    """One sealed row of D1 (current or history), or None (also before the migration to juki_0007)."""
    for t in (juki_current, juki_history):
        try:
            row = conn.execute(select(t.c.juminhyo_code, *(t.c[c] for c in COLUMNS))
                               .where(t.c.kojin_bango_bi.is_not(None)).limit(1)).first()   # through its index
        except DBAPIError:   # not migrated yet: no sealed column
            conn.rollback()
            return None
        if row is not None:
            return row
    return None


def load_for(data_dir: Path | str, engine) -> KojinBangoCipher:
    """The cipher of an installation, checked against its D1 at startup.

    A missing key file is created only while D1 holds no sealed row; otherwise startup stops with
    ``ATREST_KEY_MISSING``. A key file that does not open a sealed row stops it with
    ``ATREST_KEY_MISMATCH`` (wrong or replaced file).
    """
    try:
        with engine.connect() as conn:
            row = sample_row(conn)
            conn.rollback()
    except DBAPIError:        # D1 unreachable: the key file must exist (checked when D1 answers again)
        cipher = KojinBangoCipher(KojinBangoKeys.load(data_dir), data_dir)
        attach(engine, cipher)
        return cipher
    if row is None:
        cipher = KojinBangoCipher.for_installation(data_dir)
    else:
        cipher = KojinBangoCipher(KojinBangoKeys.load(data_dir), data_dir)
        try:
            cipher.open_value(row._mapping)
        except JukinetError:
            raise _error("ATREST_KEY_MISMATCH", "個人番号の暗号鍵ファイルが登録データと一致しません。"
                         "正しい鍵ファイルを戻してください。") from None
    attach(engine, cipher)
    return cipher
