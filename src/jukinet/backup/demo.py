"""Backups in ``jukinet demo`` (A7; ADR 0028): a **demo-only** prefecture key pair and one backup.

A real installation never holds the private key (ADR 0024): the prefecture makes the pair with
``jukinet backup keygen`` on its own machine and hands over the public key only. The demo has no
prefecture, so it makes a pair under ``DIR/demo-backup-key/`` (outside ``keys/`` and ``pki/``, so
the private key is never inside a backup), unencrypted so a visitor can try ``backup verify`` and
``restore`` without a passphrase, with a ``README.txt`` saying so; installs the public key where
``[backup].public_key`` expects it; and takes one backup at startup so ``/ops`` and ``/metrics``
show a last backup.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from jukinet.backup import keys
from jukinet.config import Config
from jukinet.backup.service import run_and_record

DEMO_KEY_DIR = "demo-backup-key"
README = """デモ専用のバックアップ鍵 (DEMO ONLY — never use in production)
=================================================================

この鍵ペアは `jukinet demo` が作成した、デモ専用の「県の鍵」です。
本番では、秘密鍵は県が `jukinet backup keygen` で自分の端末に作成し、パスフレーズで保護して
オフラインで保管します。サーバには公開鍵だけを置きます (ADR 0024)。ここでは確認しやすいように
秘密鍵をパスフレーズなしでサーバと同じディレクトリに置いています。本番では絶対にこうしないこと。

This key pair was made by `jukinet demo` for the demo only. The private key is NOT protected by a
passphrase and sits next to the data: in production the prefecture keeps its private key offline.

  {private}   秘密鍵 (デモ専用・パスフレーズなし)
  {public}    公開鍵 (複製: {installed})

試す (try):
  jukinet backup list --data-dir {data_dir} --check
  jukinet backup verify <FILE.jkb> --key {private_path}
  jukinet restore <FILE.jkb> --key {private_path} --data-dir /tmp/jukinet-restored
"""


@dataclass
class DemoBackup:
    key_dir: Path
    private_key: Path
    created_key: bool
    backup_file: Optional[Path]
    backup_bytes: int = 0
    seconds: float = 0.0
    error_code: Optional[str] = None


def ensure_demo_key(config: Config, *, bits: int = keys.KEY_BITS) -> tuple[Path, bool]:
    """The demo key pair and README under ``DIR/demo-backup-key``; the public key installed at
    ``[backup].public_key`` when nothing is there yet. Returns (key directory, created now)."""
    key_dir = config.data_dir / DEMO_KEY_DIR
    priv, pub = key_dir / keys.PRIVATE_NAME, key_dir / keys.PUBLIC_NAME
    created = not priv.exists()
    if created:
        keys.generate_key_pair(key_dir, passphrase=None, bits=bits)
    installed = config.resolve(config.backup.public_key)
    if not installed.exists():
        installed.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(pub, installed)
    (key_dir / "README.txt").write_text(README.format(
        private=priv.name, public=pub.name, installed=installed, data_dir=config.data_dir,
        private_path=priv), encoding="utf-8")
    return key_dir, created


def demo_backup(config: Config, *, bits: int = keys.KEY_BITS) -> DemoBackup:
    """Key pair (first time) and one backup now; a failure is reported by code, never raised."""
    key_dir, created = ensure_demo_key(config, bits=bits)
    out = DemoBackup(key_dir, key_dir / keys.PRIVATE_NAME, created, None)
    try:
        result = run_and_record(config, actor="demo")
    except Exception as e:  # noqa: BLE001 - the demo goes on without a backup
        out.error_code = getattr(e, "code", None) or type(e).__name__
        return out
    out.backup_file, out.backup_bytes, out.seconds = result.path, result.bytes, result.seconds
    return out
