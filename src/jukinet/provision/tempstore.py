"""The temporary area of the 附票 provision's 個人番号 (P6, P8; PIA II(2).6②, III(2).7 R2/R3; ADR 0017, 0034).

A 個人番号 fetched from D1 for a 附票 provision is kept here — **outside the D2 database**, in
``DIR/tmp-kojin-bango/`` — until the provision is delivered, and erased automatically when its
delivery window (``provision.kojin_bango_temp_days``, under a year) has passed: by the retention
job (rule ``fuhyo_kojin_bango_temp``) and on every use of the area.

**Crypto-erasure (P8, PIA III(2).7 R3 「復元できないように消去」).** Each entry is sealed under a key
of its own (32 random bytes, not derived from anything), and that key is kept in a **key store
apart from the entries** (``DIR/tmp-kojin-bango-keys/``, ``provision.kojin_bango_key_dir``; not in
the backups). Erasing an entry destroys its key first — the key file is overwritten with random
bytes, fsynced, then unlinked — and then overwrites and unlinks the entry. Once the key is gone,
nothing the installation holds (its master key included) opens the entry, nor any copy of the entry
file taken earlier. What a copy of the *key store* taken before the erasure can do is ADR 0034's.

Files (names hold no personal data; 0600, fsynced; directories 0700):

* entry ``<expiry epoch>_<ref>.bin``: nonce ‖ AES-256-GCM(entry key, JSON ``{住民票コード: 個人番号}``),
  the file name as associated data (a renamed file — a moved expiry — does not decrypt);
* key ``<expiry epoch>_<ref>.key`` in the key store: nonce ‖ AES-256-GCM(wrap key, entry key), the
  wrap key derived from the installation key (``kojin-bango-temp-wrap``) and the entry's name as
  associated data: a key file alone (a stolen key store) opens nothing without the master key.

>>> import tempfile, pathlib, datetime
>>> from jukinet.keyring import KeyRing
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> s = TempStore(d / "tmp", KeyRing(d))
>>> now = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
>>> p = s.put("P1", {"52601815907": "625276018957"}, now + datetime.timedelta(days=14))
>>> b"625276018957" in p.read_bytes(), s.get("P1", now), s.key_dir.name
(False, {'52601815907': '625276018957'}, 'tmp-keys')
>>> s.sweep(now + datetime.timedelta(days=15)), s.get("P1", now), list(s.key_dir.iterdir())
(1, None, [])
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jukinet.keyring import KeyRing

_NAME = re.compile(r"^(\d{10})_([A-Za-z0-9-]{1,64})\.bin$")
_KEY = re.compile(r"^(\d{10})_([A-Za-z0-9-]{1,64})\.key$")
#: the purpose of the installation-derived key that wraps the per-entry keys
WRAP = "kojin-bango-temp-wrap"


def _write(path: Path, blob: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def shred(path: Path) -> bool:
    """Overwrite a file in place with random bytes (fsynced), then unlink it; False if it was not there.

    The overwrite reaches the same blocks on a conventional file system; on a copy-on-write or
    log-structured one, or an SSD remapping blocks, it may not (ADR 0034) — which is why the
    guarantee rests on the destroyed *key*, never on the overwrite of the entry.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, secrets.token_bytes(size), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    _sync_dir(path.parent)
    return True


def for_config(config, keyring: KeyRing) -> "TempStore":
    """The installation's temporary area and its key store, where the config puts them."""
    p = config.provision
    return TempStore(config.resolve(p.kojin_bango_temp_dir), keyring,
                     config.resolve(p.kojin_bango_key_dir) if getattr(p, "kojin_bango_key_dir", "") else None)


class TempStore:
    def __init__(self, directory: Path, keyring: KeyRing, key_dir: Path | None = None):
        self.dir = Path(directory)
        self.key_dir = Path(key_dir) if key_dir else self.dir.with_name(self.dir.name + "-keys")
        self.keyring = keyring

    def _wrap(self) -> AESGCM:
        return AESGCM(self.keyring.key(WRAP))

    def _files(self):
        if not self.dir.exists():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m:
                out.append((int(m.group(1)), m.group(2), p))
        return out

    def key_path(self, entry: Path) -> Path:
        """Where the key of an entry file is kept (in the key store)."""
        return self.key_dir / (entry.name[:-len(".bin")] + ".key")

    def put(self, ref: str, numbers: dict[str, str], expires_at: datetime) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", ref):
            raise ValueError("ref")
        for d in (self.dir, self.key_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{int(expires_at.timestamp()):010d}_{ref}.bin"
        path = self.dir / name
        entry_key = AESGCM.generate_key(bit_length=256)     # random: derived from nothing the installation keeps
        kn = secrets.token_bytes(12)
        _write(self.key_path(path), kn + self._wrap().encrypt(kn, entry_key, name.encode()))   # the key first:
        nonce = secrets.token_bytes(12)                      # an entry never exists without its key
        _write(path, nonce + AESGCM(entry_key).encrypt(
            nonce, json.dumps(numbers, separators=(",", ":")).encode(), name.encode()))
        return path

    def open_entry(self, entry: Path, blob: bytes) -> Optional[dict[str, str]]:
        """Decrypt the bytes of an entry with the key the key store holds for it now; None if destroyed."""
        try:
            kb = self.key_path(entry).read_bytes()
        except FileNotFoundError:
            return None
        try:
            key = self._wrap().decrypt(kb[:12], kb[12:], entry.name.encode())
            return json.loads(AESGCM(key).decrypt(blob[:12], blob[12:], entry.name.encode()))
        except InvalidTag:
            return None

    def get(self, ref: str, now: Optional[datetime] = None) -> Optional[dict[str, str]]:
        """The numbers of an entry still inside its delivery window, or None."""
        now = now or datetime.now(timezone.utc)
        for exp, r, p in self._files():
            if r == ref and exp > now.timestamp():
                return self.open_entry(p, p.read_bytes())
        return None

    def destroy(self, entry: Path) -> None:
        """Crypto-erase one entry: its key is overwritten and unlinked, then the entry itself."""
        shred(self.key_path(entry))
        shred(entry)

    def erase(self, ref: str) -> int:
        n = 0
        for _, r, p in self._files():
            if r == ref:
                self.destroy(p)
                n += 1
        return n

    def expired(self, now: datetime) -> list[tuple[int, Path]]:
        return sorted((exp, p) for exp, _, p in self._files() if exp <= now.timestamp())

    def sweep(self, now: Optional[datetime] = None, limit: Optional[int] = None) -> int:
        """Erase every entry whose delivery window has passed; return how many."""
        now = now or datetime.now(timezone.utc)
        n = 0
        for _, p in self.expired(now)[:limit]:
            self.destroy(p)
            n += 1
        self._sweep_leftovers(now)
        return n

    def _sweep_leftovers(self, now: datetime) -> None:
        """Writes interrupted by a crash, and keys past their expiry whose entry was never written."""
        for d in (self.dir, self.key_dir):
            for p in d.glob("*.tmp") if d.exists() else []:
                shred(p)
        if self.key_dir.exists():
            for p in self.key_dir.iterdir():
                m = _KEY.match(p.name)
                if m and int(m.group(1)) <= now.timestamp():
                    shred(p)

    def count(self) -> int:
        return len(self._files())

    def key_count(self) -> int:
        return len([p for p in self.key_dir.iterdir() if _KEY.match(p.name)]) if self.key_dir.exists() else 0
