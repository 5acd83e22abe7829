"""The temporary area of the 附票 provision's 個人番号 (P6; PIA II(2).6②, III(2).7 R2/R3; ADR 0017).

A 個人番号 fetched from D1 for a 附票 provision is kept here — **outside the D2 database**, in
``DIR/tmp-kojin-bango/`` — until the provision is delivered, and erased automatically when its
delivery window (``provision.kojin_bango_temp_days``, under a year) has passed: by the retention
job (rule ``fuhyo_kojin_bango_temp``) and on every use of the area.

Each entry is one file ``<expiry epoch>_<ref>.bin``: AES-256-GCM of the JSON
``{住民票コード: 個人番号}`` under a key derived from the installation key (``DIR/keys/oplog.key``,
purpose ``kojin-bango-temp``), with a random 96-bit nonce and the file name as associated data (a
renamed file — a moved expiry — does not decrypt). The name holds no personal data; files are
written 0600 and fsynced, and erased by unlink.

>>> import tempfile, pathlib, datetime
>>> from jukinet.keyring import KeyRing
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> s = TempStore(d / "tmp", KeyRing(d))
>>> now = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
>>> p = s.put("P1", {"52601815907": "625276018957"}, now + datetime.timedelta(days=14))
>>> b"625276018957" in p.read_bytes(), s.get("P1", now)
(False, {'52601815907': '625276018957'})
>>> s.sweep(now + datetime.timedelta(days=15)), s.get("P1", now)
(1, None)
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jukinet.keyring import KeyRing

_NAME = re.compile(r"^(\d{10})_([A-Za-z0-9-]{1,64})\.bin$")


class TempStore:
    def __init__(self, directory: Path, keyring: KeyRing):
        self.dir = Path(directory)
        self.keyring = keyring

    def _aead(self) -> AESGCM:
        return AESGCM(self.keyring.key("kojin-bango-temp"))

    def _files(self):
        if not self.dir.exists():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m:
                out.append((int(m.group(1)), m.group(2), p))
        return out

    def put(self, ref: str, numbers: dict[str, str], expires_at: datetime) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", ref):
            raise ValueError("ref")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{int(expires_at.timestamp()):010d}_{ref}.bin"
        nonce = secrets.token_bytes(12)
        blob = nonce + self._aead().encrypt(nonce, json.dumps(numbers, separators=(",", ":")).encode(), name.encode())
        path = self.dir / name
        tmp = self.dir / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def get(self, ref: str, now: Optional[datetime] = None) -> Optional[dict[str, str]]:
        """The numbers of an entry still inside its delivery window, or None."""
        now = now or datetime.now(timezone.utc)
        for exp, r, p in self._files():
            if r == ref and exp > now.timestamp():
                blob = p.read_bytes()
                return json.loads(self._aead().decrypt(blob[:12], blob[12:], p.name.encode()))
        return None

    def erase(self, ref: str) -> int:
        n = 0
        for _, r, p in self._files():
            if r == ref:
                p.unlink(missing_ok=True)
                n += 1
        return n

    def expired(self, now: datetime) -> list[tuple[int, Path]]:
        return sorted((exp, p) for exp, _, p in self._files() if exp <= now.timestamp())

    def sweep(self, now: Optional[datetime] = None, limit: Optional[int] = None) -> int:
        """Erase every entry whose delivery window has passed; return how many."""
        now = now or datetime.now(timezone.utc)
        n = 0
        for _, p in self.expired(now)[:limit]:
            p.unlink(missing_ok=True)
            n += 1
        for p in self.dir.glob("*.tmp") if self.dir.exists() else []:
            p.unlink(missing_ok=True)   # a write interrupted by a crash
        return n

    def count(self) -> int:
        return len(self._files())
