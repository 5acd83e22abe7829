"""``jukinet center …``: the consolidated center (issue 14, Q1; ADR 0036). Thin: parse, call
:mod:`jukinet.center`, print.

* ``center init --center-dir C`` — ``C/center.toml`` and the center's server certificate;
* ``center add --prefecture 23 [--db-url URL] [--backup-public-key PEM]`` — a tenant: an ordinary
  installation in ``C/tenants/23`` (its own databases, keys, chains, CA and CS certificates);
* ``center list``, ``center status [--json]`` — tenants; health, queue lengths, last backup,
  certificate expiry, disk use (no personal data);
* ``center remove --prefecture 23 --confirm`` — encrypted export for the governor, then detach;
* ``center serve`` — one HTTPS server for every tenant.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer

from jukinet.center.registry import DEFAULT_CENTER_PORT, Center, init_center
from jukinet.center.status import center_status
from jukinet.center.tenants import add_tenant, open_tenants, remove_tenant
from jukinet.center_server import CenterServer
from jukinet.cli.common import console, fail
from jukinet.errors import JukinetError

center_app = typer.Typer(help="集約センター (Q1): 複数の都道府県を1つのシステムで、厳格に分離して収容する", no_args_is_help=True)
CenterDir = typer.Option(Path("./jukinet-center"), "--center-dir", help="集約センターのディレクトリ", show_default=True)


def _load(center_dir: Path) -> Center:
    try:
        return Center.load(center_dir)
    except JukinetError as e:
        fail(e)


@center_app.command("init")
def init_command(center_dir: Path = CenterDir,
                 host: str = typer.Option("127.0.0.1", "--host"),
                 port: int = typer.Option(DEFAULT_CENTER_PORT, "--port")):
    """集約センターを作成する (center.toml・センターのサーバ証明書)."""
    try:
        c = init_center(center_dir, host=host, port=port)
    except JukinetError as e:
        fail(e)
    console.print(f"集約センターを作成しました: {c.path}")


@center_app.command("add")
def add_command(center_dir: Path = CenterDir,
                prefecture: str = typer.Option(..., "--prefecture", help="都道府県 (番号 01〜47・団体コード・名称)"),
                db_url: Optional[str] = typer.Option(None, "--db-url",
                                                     help="この都道府県専用の PostgreSQL データベース (管理者URL; クラスタは都道府県ごとに選べる)。省略時は SQLite"),
                backup_public_key: Optional[Path] = typer.Option(None, "--backup-public-key",
                                                                 help="都道府県のバックアップ用公開鍵 (省略時は開発用の鍵ペアを作成)")):
    """都道府県を収容する (専用のデータベース・鍵・証明書・操作ログ)."""
    c = _load(center_dir)
    try:
        t = add_tenant(c, prefecture, db_url=db_url, backup_public_key=backup_public_key)
    except JukinetError as e:
        fail(e)
    console.print(f"収容しました: {t.prefecture:02d} {t.name} ({c.tenant_dir(t)})")


@center_app.command("list")
def list_command(center_dir: Path = CenterDir):
    """収容している都道府県の一覧."""
    c = _load(center_dir)
    typer.echo("番号\t団体コード\t名称\tデータディレクトリ\t収容日時 (UTC)")
    for t in sorted(c.tenants, key=lambda t: t.prefecture):
        typer.echo(f"{t.prefecture:02d}\t{t.code}\t{t.name}\t{t.data_dir}\t{t.added_at}")


@center_app.command("status")
def status_command(center_dir: Path = CenterDir, as_json: bool = typer.Option(False, "--json")):
    """都道府県ごとの稼働状況 (個人情報なし): 状態・送信待ち・最終バックアップ・証明書期限・使用容量."""
    c = _load(center_dir)
    try:
        with ExitStack() as stack:
            rows = [s.as_dict() for s in center_status(c, open_tenants(c, stack))]
    except JukinetError as e:
        fail(e)
    if as_json:
        typer.echo(json.dumps({"tenants": rows}, ensure_ascii=False, indent=1))
    else:
        typer.echo("番号\t名称\t状態\t送信待ち(本人確認情報/附票)\t最終バックアップ\t証明書期限\t使用容量(バイト)")
        for r in rows:
            typer.echo(f"{r['prefecture']:02d}\t{r['name']}\t{r['health']}{' ' + r['error_code'] if r['error_code'] else ''}\t"
                       f"{r['outbox_depth'].get('juki')}/{r['outbox_depth'].get('fuhyo')}\t{r['last_backup_at'] or '-'}\t"
                       f"{r['cert_expires_at'] or '-'}\t{r['disk_bytes']}")
    raise typer.Exit(0 if all(r["health"] == "ok" for r in rows) else 1)


@center_app.command("remove")
def remove_command(center_dir: Path = CenterDir,
                   prefecture: str = typer.Option(..., "--prefecture"),
                   confirm: bool = typer.Option(False, "--confirm", help="切り離しを確認する (これがなければ何もしない)")):
    """都道府県を切り離す: 県の公開鍵で暗号化して書き出し、センターから外す (削除はしない)."""
    c = _load(center_dir)
    try:
        archive, moved = remove_tenant(c, prefecture, confirm=confirm)
    except JukinetError as e:
        fail(e)
    console.print(f"切り離しました。暗号化した書き出し: {archive} / 元のディレクトリ: {moved} "
                  "(県が書き出しを検証するまで保管; データベースは削除していません)")


@center_app.command("serve")
def serve_command(center_dir: Path = CenterDir,
                  no_outbox: bool = typer.Option(False, "--no-outbox", help="全国サーバへの送信を止める (試験用)")):
    """集約センターを起動する: 1つの HTTPS サーバ (相互TLS) で全都道府県を収容."""
    c = _load(center_dir)
    try:
        srv = CenterServer(c, outbox=False if no_outbox else None, schedulers=True, log_level="info")
    except JukinetError as e:
        fail(e)
    console.print(f"集約センター: {srv.base_url} ({len(srv.tenants)} 都道府県); 運用画面 {srv.base_url}/center/ops")
    srv.run()
