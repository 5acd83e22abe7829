"""TOTP secrets of the password fallback encrypted at rest (A1, A7; ADR 0029).

``operators.totp_secret`` (plaintext) is replaced by ``totp_secret_ct`` (AES-256-GCM: nonce ‖
ciphertext ‖ tag; the associated data binds it to the operator_id and the key id, so a ciphertext
copied to another operator's row does not decrypt) and ``totp_secret_key`` (the key id). The key
file is ``DIR/keys/totp.json`` — the machinery of :mod:`jukinet.store.atrest` (ADR 0025) with
its own file and purpose, so 個人番号 key rotation never touches the operators' secrets. It is
created on first use while the admin database holds no sealed secret; otherwise a missing file
stops with ``ATREST_KEY_MISSING`` (restore it from the backup, which carries ``keys/``).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> c = TotpSecretCipher.for_installation(d)
>>> ct, kid = c.encrypt("OP0001", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
>>> kid, b"JBSWY3DP" in ct, c.open("OP0001", ct, kid)
(1, False, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
>>> c.open("OP0002", ct, kid)        # moved to another operator's row
Traceback (most recent call last):
...
jukinet.errors.JukinetError: ATREST_DECRYPT_FAILED: TOTP秘密鍵を復号できません（暗号文が改ざんされたか、別の行から移されています）。
>>> sorted(p.name for p in (d / "keys").iterdir())
['totp.json']
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from jukinet.errors import JukinetError
from jukinet.store.atrest import SealingCipher, SealingKeys
from jukinet.store.tables_security import operators

#: the columns that replace ``totp_secret`` in ``operators``
COLUMNS = ("totp_secret_ct", "totp_secret_key")


class TotpKeys(SealingKeys):
    """``DIR/keys/totp.json``: the data keys of the operators' TOTP secrets."""

    KEY_FILE = Path("keys") / "totp.json"
    LABEL = "TOTP秘密鍵"


class TotpSecretCipher(SealingCipher):
    KEYS = TotpKeys
    PURPOSE = "totp_secret"

    def seal(self, operator_id: str, secret: Optional[str]) -> dict:
        """The column values of ``secret`` on the row of ``operator_id`` (both None for no secret)."""
        ct, kid = self.encrypt(operator_id, secret) if secret else (None, None)
        return dict(zip(COLUMNS, (ct, kid)))


def has_sealed(conn: Connection) -> bool:
    return conn.execute(select(operators.c.operator_id).where(operators.c.totp_secret_ct.is_not(None))
                        .limit(1)).first() is not None


def cipher_for(data_dir: Path | str, conn: Connection) -> TotpSecretCipher:
    """The installation's cipher; a missing key file is created only while no secret is sealed."""
    if not TotpKeys.exists(data_dir) and not has_sealed(conn):
        try:
            return TotpSecretCipher.for_installation(data_dir)
        except JukinetError as e:      # created meanwhile by another process
            if e.code != "ATREST_KEY_EXISTS":
                raise
    return TotpSecretCipher(TotpKeys.load(data_dir), data_dir)
