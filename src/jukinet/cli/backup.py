"""``jukinet backup …`` and ``jukinet restore`` (A7; ADR 0024). Thin: parse, call the service, print.

* ``jukinet backup keygen --out DIR`` — the prefecture's key pair (on the prefecture's machine);
* ``jukinet backup [--data-dir DIR] [--out FILE]`` — an encrypted backup, needs only the public key;
* ``jukinet backup list [--check]`` — the backups in ``[backup].dir`` (no key needed);
* ``jukinet backup verify FILE --key PRIVATE`` — authenticate everything, write nothing;
* ``jukinet restore FILE --key PRIVATE --data-dir NEWDIR [--db-url URL]``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from jukinet.backup.keys import (
    PASSPHRASE_ENV,
    CommandKeyProvider,
    PrivateKeyFile,
    generate_key_pair,
    key_id,
    load_public_key,
    private_key_is_encrypted,
)
from jukinet.backup.service import backup_dir, list_backups, restore, run_and_record, verify_backup
from jukinet.config import DEFAULT_DATA_DIR, Config
from jukinet.errors import JukinetError

console = Console(stderr=True)
DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="データディレクトリ", show_default=True)
backup_app = typer.Typer(help="暗号化バックアップ (A7): サブコマンドなしで作成 (県の公開鍵で暗号化)。一覧・検証・鍵の作成",
                         invoke_without_command=True)

STAGES = {"files": "設定・鍵ファイル", "snapshot": "スナップショット", "encrypt": "暗号化", "dump": "pg_dump",
          "verify": "検証", "decrypt": "復号", "load": "pg_restore"}


def _fail(e: JukinetError) -> None:
    console.print(f"[red]{e.code}[/red]: {e.message}")
    raise typer.Exit(2)


class _Bars:
    """Rich progress bars, one per stage (``encrypt:juki`` …), fed by the services' callbacks."""

    def __init__(self):
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeElapsedColumn(), console=console)
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: Optional[int]) -> None:
        if stage not in self.tasks:
            head, _, store = stage.partition(":")
            label = STAGES.get(head, head) + (f" ({store})" if store else "")
            self.tasks[stage] = self.bar.add_task(label, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


def _passphrase(confirm: bool) -> Optional[str]:
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    return typer.prompt("秘密鍵のパスフレーズ", hide_input=True, confirmation_prompt=confirm)


def _provider(key: Optional[Path], key_command: Optional[str], public_key: Optional[Path]):
    if key_command:
        return CommandKeyProvider(shlex.split(key_command), public_key)
    if key is None:
        raise JukinetError("BACKUP_KEY_REQUIRED", "復号には県の秘密鍵 (--key) または鍵コマンド (--key-command) が必要です。",
                           field="key")
    return PrivateKeyFile(key, _passphrase(False) if private_key_is_encrypted(key) else None)


KeyOpt = typer.Option(None, "--key", help="県の秘密鍵 (PEM)。パスフレーズは環境変数 JUKINET_BACKUP_PASSPHRASE か入力")
KeyCommandOpt = typer.Option(None, "--key-command",
                             help="秘密鍵の代わりに鍵を開くコマンド (KMS・HSM): 標準入力の包まれた鍵を復号して出力する")
PublicKeyOpt = typer.Option(None, "--public-key", help="公開鍵 (--key-command と使うと鍵の取り違えを事前に検出)")


@backup_app.callback()
def backup(ctx: typer.Context, data_dir: Path = DataDir,
           out: Optional[Path] = typer.Option(None, "--out", help="出力ファイル (省略時は設定 backup.dir に世代管理して作成)"),
           public_key: Optional[Path] = typer.Option(None, "--public-key", help="公開鍵 (省略時は設定 backup.public_key)")):
    """暗号化バックアップを作成する (両ファイル・管理DB・設定・鍵; 県の公開鍵で暗号化)."""
    if ctx.invoked_subcommand is not None:
        return

    try:
        config = Config.load(data_dir)
        with _Bars() as bars:
            result = run_and_record(config, out=out, public_key=public_key, progress=bars)
    except JukinetError as e:
        _fail(e)
    typer.echo(f"{result.path}\t{result.bytes} bytes\t{result.seconds:.1f} s\t{result.backup_id}")


@backup_app.command("keygen")
def keygen(out: Path = typer.Option(..., "--out", help="鍵の出力先 (県の端末・オフラインの媒体)"),
           no_passphrase: bool = typer.Option(False, "--no-passphrase", help="秘密鍵を暗号化しない (0600 のみ)"),
           bits: int = typer.Option(3072, "--bits", min=3072, max=8192)):
    """県のバックアップ鍵ペアを作成する (秘密鍵は県が保管し、運用担当者・保守委託には渡さない)."""
    try:
        passphrase = None if no_passphrase else _passphrase(True)
        priv, pub = generate_key_pair(out, passphrase=passphrase, bits=bits)
    except JukinetError as e:
        _fail(e)
    typer.echo(f"秘密鍵: {priv} (パスフレーズ{'なし' if not passphrase else 'で暗号化'}, 0600)")
    typer.echo(f"公開鍵: {pub}")
    typer.echo(f"鍵ID: {key_id(load_public_key(pub))}")
    typer.echo("手順: 1) 公開鍵をサーバの DIR/keys/backup-public.pem に置く ([backup].public_key)。"
               " 2) 秘密鍵とパスフレーズは県の管理責任者が別々にオフラインで保管し、サーバ・運用担当者・保守委託には置かない。"
               " 3) 復元・検証の時だけ `jukinet backup verify FILE --key 秘密鍵` / `jukinet restore` に渡す。")


@backup_app.command("list")
def list_command(data_dir: Path = DataDir,
                 check: bool = typer.Option(False, "--check", help="各ファイルの完全性 (末尾のハッシュ) も確認する (鍵不要)")):
    """バックアップの一覧 (設定 backup.dir; 鍵もデータベースも不要)."""
    try:
        config = Config.load(data_dir)
    except JukinetError as e:
        _fail(e)
    rows = list_backups(backup_dir(config), check=check)
    typer.echo("ファイル\t作成 (UTC)\tDB\tバイト\t鍵ID\t状態")
    for r in rows:
        typer.echo(f"{r['file']}\t{r.get('created_at') or ''}\t{r.get('engine') or ''}\t{r['bytes']}\t"
                   f"{(r.get('key_id') or '')[:16]}\t{r['status']}")
    raise typer.Exit(1 if any(r["status"] not in ("ok", "unchecked") for r in rows) else 0)


@backup_app.command("verify")
def verify_command(file: Path = typer.Argument(..., help="バックアップファイル"), key: Optional[Path] = KeyOpt,
                   key_command: Optional[str] = KeyCommandOpt, public_key: Optional[Path] = PublicKeyOpt):
    """バックアップ全体を復号・検証する (何も書き込まない)."""
    try:
        provider = _provider(key, key_command, public_key)
        with _Bars() as bars:
            res = verify_backup(file, provider, progress=bars)
    except JukinetError as e:
        _fail(e)
    h, m = res["header"], res["manifest"]
    typer.echo(f"正常: {h['backup_id']} ({h['engine']}, 作成 {h['created_at']}) — {len(m['files'])} ファイル, "
               f"{sum(x['size'] for x in m['files'])} バイト, {m['chunks']} チャンク")


def restore_command(file: Path = typer.Argument(..., help="バックアップファイル"), key: Optional[Path] = KeyOpt,
                    data_dir: Path = typer.Option(..., "--data-dir", help="復元先 (新しい・空のデータディレクトリ)"),
                    db_url: Optional[str] = typer.Option(None, "--db-url", help="PostgreSQL: 復元先の空のデータベース (管理者URL)"),
                    key_command: Optional[str] = KeyCommandOpt, public_key: Optional[Path] = PublicKeyOpt):
    """バックアップを新しいデータディレクトリ (とデータベース) に復元する."""
    try:
        provider = _provider(key, key_command, public_key)
        with _Bars() as bars:
            res = restore(file, provider, data_dir, db_url=db_url, progress=bars)
    except JukinetError as e:
        _fail(e)
    typer.echo(f"復元しました: {res.data_dir} ({res.engine}, {res.files} ファイル, {res.bytes} バイト, {res.seconds:.1f} s)。"
               f" 確認: jukinet audit verify --data-dir {res.data_dir}")
