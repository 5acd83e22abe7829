"""The prefecture's backup key pair and the key providers that open a backup (A7; ADR 0024).

The **public** key (RSA-3072, PEM, ``DIR/keys/backup-public.pem`` by default) is all the machine
has: with it, ``jukinet backup`` wraps each backup's random data key (RSA-OAEP, SHA-256, MGF1-SHA-256).
The **private** key is made by ``jukinet backup keygen`` on a machine of the prefecture, encrypted
with a passphrase (or at least mode 0600), and kept offline — never by the operations role
(運用担当者・保守委託). A restore asks a :class:`KeyProvider` to unwrap the data key:

* :class:`PrivateKeyFile` — the PEM file (passphrase from ``JUKINET_BACKUP_PASSPHRASE`` or a prompt);
* :class:`CommandKeyProvider` — the slot for a KMS or HSM: a command that reads the wrapped key on
  standard input and writes the 32-byte data key on standard output, e.g.
  ``openssl pkeyutl -decrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
  -pkeyopt rsa_mgf1_md:sha256`` or a cloud KMS ``decrypt`` with ``RSAES_OAEP_SHA_256``.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> priv, pub = generate_key_pair(d, passphrase="correct horse", bits=2048)
>>> oct(priv.stat().st_mode)[-3:]
'600'
>>> wrap = wrap_key(load_public_key(pub), b"k" * 32)
>>> PrivateKeyFile(priv, "correct horse").unwrap(wrap) == b"k" * 32
True
>>> PrivateKeyFile(priv, "wrong")
Traceback (most recent call last):
...
jukinet.errors.JukinetError: BACKUP_KEY_PASSPHRASE: 秘密鍵を開けません (パスフレーズが違うか、鍵ファイルではありません)。
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Optional, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from jukinet.errors import JukinetError

WRAP_ALG = "RSA-OAEP-SHA256"
KEY_BITS = 3072
PRIVATE_NAME = "jukinet-backup-private.pem"
PUBLIC_NAME = "jukinet-backup-public.pem"
PASSPHRASE_ENV = "JUKINET_BACKUP_PASSPHRASE"


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """SHA-256 of the public key (SubjectPublicKeyInfo, DER), hex — printed by keygen, in every header."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_key_pair(out_dir: Path, *, passphrase: Optional[str], bits: int = KEY_BITS) -> tuple[Path, Path]:
    """Write ``out_dir/jukinet-backup-private.pem`` (0600; PKCS#8, encrypted when a passphrase is
    given) and ``jukinet-backup-public.pem``; refuse to overwrite."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    priv_path, pub_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    if priv_path.exists() or pub_path.exists():
        raise JukinetError("BACKUP_KEY_EXISTS", "鍵ファイルが既にあります。別のディレクトリを指定してください。",
                           field="out")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    enc = (serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase
           else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv_path, pub_path


def load_public_key(path: Path) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError):
        raise JukinetError("BACKUP_PUBLIC_KEY_INVALID", "バックアップ用の公開鍵を読めません。", field="public_key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise JukinetError("BACKUP_PUBLIC_KEY_INVALID", "バックアップ用の公開鍵は RSA (3072 ビット以上推奨) にしてください。",
                           field="public_key")
    return key


def wrap_key(public_key: rsa.RSAPublicKey, data_key: bytes) -> dict:
    """The header's ``key`` object: the data key wrapped for the holder of the private key."""
    return {"alg": WRAP_ALG, "key_id": key_id(public_key), "bits": public_key.key_size,
            "wrapped_key": base64.b64encode(public_key.encrypt(data_key, _oaep())).decode()}


def _wrapped(wrap: dict) -> bytes:
    if wrap.get("alg") != WRAP_ALG:
        raise JukinetError("BACKUP_CORRUPT", "バックアップファイルが壊れているか、改ざんされています。")
    try:
        return base64.b64decode(wrap.get("wrapped_key") or "", validate=True)
    except ValueError:
        raise JukinetError("BACKUP_CORRUPT", "バックアップファイルが壊れているか、改ざんされています。") from None


def _mismatch() -> JukinetError:
    return JukinetError("BACKUP_KEY_MISMATCH", "このバックアップはこの鍵では復号できません (別の鍵で暗号化されています)。")


class KeyProvider(Protocol):
    """Unwraps a backup's data key. ``key_id`` (or None when unknown) lets a reader refuse a wrong
    key before it decrypts anything."""

    key_id: Optional[str]

    def unwrap(self, wrap: dict) -> bytes: ...


class PrivateKeyFile:
    def __init__(self, path: Path, passphrase: Optional[str] = None):
        try:
            data = Path(path).read_bytes()
        except OSError:
            raise JukinetError("BACKUP_KEY_NOT_FOUND", "秘密鍵ファイルが見つかりません。", field="key") from None
        try:
            key = serialization.load_pem_private_key(data, passphrase.encode("utf-8") if passphrase else None)
        except TypeError:
            raise JukinetError("BACKUP_KEY_PASSPHRASE", "秘密鍵のパスフレーズを指定してください"
                               f" (環境変数 {PASSPHRASE_ENV} または入力)。", field="key") from None
        except ValueError:
            raise JukinetError("BACKUP_KEY_PASSPHRASE", "秘密鍵を開けません (パスフレーズが違うか、鍵ファイルではありません)。",
                               field="key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise JukinetError("BACKUP_KEY_PASSPHRASE", "秘密鍵を開けません (パスフレーズが違うか、鍵ファイルではありません)。",
                               field="key")
        self._key = key
        self.key_id = key_id(key.public_key())

    def unwrap(self, wrap: dict) -> bytes:
        try:
            return self._key.decrypt(_wrapped(wrap), _oaep())
        except ValueError:
            raise _mismatch() from None


def private_key_is_encrypted(path: Path) -> bool:
    try:
        return b"ENCRYPTED" in Path(path).read_bytes()[:64]
    except OSError:
        return False


class CommandKeyProvider:
    """The KMS/HSM slot: ``argv`` gets the wrapped key (raw RSA-OAEP-SHA256 ciphertext) on standard
    input and prints the raw 32-byte data key. ``key_id`` comes from the matching public key when
    given; otherwise a wrong key is found when unwrapping fails."""

    def __init__(self, argv: list[str], public_key: Optional[Path] = None, timeout: float = 120.0):
        self.argv = argv
        self.timeout = timeout
        self.key_id = key_id(load_public_key(public_key)) if public_key else None

    def unwrap(self, wrap: dict) -> bytes:
        try:
            p = subprocess.run(self.argv, input=_wrapped(wrap), capture_output=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired):
            raise JukinetError("BACKUP_KEY_COMMAND_FAILED", "鍵コマンドを実行できませんでした。", field="key_command") from None
        if p.returncode != 0 or len(p.stdout) != 32:
            raise _mismatch()
        return p.stdout
