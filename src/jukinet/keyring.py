"""Secret keys of the operator side, kept in the data directory outside every database.

One master key (``DIR/keys/oplog.key``, 32 random bytes, mode 0600) from which purpose keys are
derived with HMAC-SHA256 (a one-step KDF; each purpose gets an independent key):

* ``chain``: MACs the operation-log hash chain and its anchors (someone who can write the database
  but not read this file cannot rebuild a chain after editing it);
* ``search-keys``: keyed digests of the search keys written to the log (a digest can be matched
  against a known value by whoever holds the key — e.g. to answer a resident's "who looked at my
  data" — but reveals nothing to a reader of the log alone).

The file is created on first use. Losing it makes every existing chain unverifiable, so it is part
of the backup (ADR 0009).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> k = KeyRing(d)
>>> len(k.key("chain")), k.key("chain") != k.key("search-keys")
(32, True)
>>> KeyRing(d).key("chain") == k.key("chain")
True
>>> oct((d / "keys" / "oplog.key").stat().st_mode)[-3:]
'600'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = Path("keys") / "oplog.key"


class KeyRing:
    def __init__(self, data_dir: Path | str):
        self.path = Path(data_dir) / KEY_FILE
        self._master: bytes | None = None

    def _load(self) -> bytes:
        if self._master is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            self._master = bytes.fromhex(self.path.read_text().strip())
        return self._master

    def key(self, purpose: str) -> bytes:
        return hmac.new(self._load(), b"jukinet/" + purpose.encode(), hashlib.sha256).digest()

    def mac(self, purpose: str, message: str) -> str:
        return hmac.new(self.key(purpose), message.encode("utf-8"), hashlib.sha256).hexdigest()
