"""``jukinet center …``: the consolidated center (issue 14, Q1; ADR 0036). Thin: parse, call
:mod:`jukinet.center`, print.

* ``center init --center-dir C`` — ``C/center.toml`` and the center's server certificate;
* ``center add --prefecture 23 [--db-url URL] [--backup-public-key PEM]`` — a tenant: an ordinary
  installation in ``C/tenants/23`` (its own databases, keys, chains, CA and CS certificates);
* ``center list``, ``center status [--json]`` — tenants; health, queue lengths, last backup,
  certificate expiry, disk use (no personal data);
* ``center remove --prefecture 23 --confirm`` — encrypted export for the governor, then detach;
* ``center backup --prefecture 23`` — that prefecture's encrypted backup under its own key, in its own
  backup directory (``center status --prefecture 23``: that prefecture's row only);
* ``center serve`` — one HTTPS server for every tenant, with each tenant's outbox worker and daily jobs;
* ``center demo [--prefectures 24,23,21] [--residents N]`` — ``make demo CENTER=1``: a center with
  synthetic residents in each prefecture, simulated national servers and CS (ADR 0045);
* ``center adopt --data-dir D --prefecture N`` — an existing single-prefecture installation becomes a
  tenant, in place, keys, history and operation-log chains kept and verified (ADR 0045).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer

from jukinet import geo
from jukinet.backup.demo import demo_backup
from jukinet.bootstrap import bootstrap
from jukinet.backup.service import run_and_record
from jukinet.center.move import abort_move, confirm_move, move_tenant
from jukinet.center.registry import CENTER_NAME, DEFAULT_CENTER_PORT, Center, TenantEntry, init_center
from jukinet.center.status import center_status
from jukinet.center.tenants import add_tenant, adopt_tenant, open_tenants, remove_tenant
from jukinet.center_server import CenterServer
from jukinet.cli.common import console, fail
from jukinet.cli.install import run_seed
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.observability.logs import configure as configure_logs
from jukinet.observability.logs import configure_demo, server_log
from jukinet.sim.demo import DemoPeers
from jukinet.store.connpool import ConnectionGovernor
from jukinet.store.seed_state import require_seed_complete

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


@center_app.command("adopt")
def adopt_command(center_dir: Path = CenterDir,
                  data_dir: Path = typer.Option(..., "--data-dir", help="既存の (単独の都道府県サーバの) データディレクトリ"),
                  prefecture: str = typer.Option(..., "--prefecture", help="その都道府県 (番号・団体コード・名称)")):
    """既存の都道府県サーバをその場で収容する (鍵・履歴・操作ログの連鎖を検証して保持; 先に停止とバックアップ)."""
    c = _load(center_dir)
    try:
        t = adopt_tenant(c, data_dir, prefecture)
    except JukinetError as e:
        fail(e)
    console.print(f"収容しました: {t.prefecture:02d} {t.name} ({c.tenant_dir(t)}; 鍵・履歴・操作ログの連鎖を検証済み。"
                  f"以後は `jukinet center serve --center-dir {c.dir}` で提供します)")


@center_app.command("list")
def list_command(center_dir: Path = CenterDir):
    """収容している都道府県の一覧."""
    c = _load(center_dir)
    typer.echo("番号\t団体コード\t名称\tデータディレクトリ\t収容日時 (UTC)")
    for t in sorted(c.tenants, key=lambda t: t.prefecture):
        typer.echo(f"{t.prefecture:02d}\t{t.code}\t{t.name}\t{t.data_dir}\t{t.added_at}")


@center_app.command("status")
def status_command(center_dir: Path = CenterDir, as_json: bool = typer.Option(False, "--json"),
                  prefecture: Optional[str] = typer.Option(None, "--prefecture", help="この都道府県だけ")):
    """都道府県ごとの稼働状況 (個人情報なし): 状態・送信待ち・最終バックアップ・証明書期限・使用容量."""
    c = _load(center_dir)
    try:
        if prefecture is not None:
            c.tenants = [_hosted(c, prefecture)]
        with ExitStack() as stack:      # one tenant's register at a time: a few connections, not 3 per tenant (ADR 0055)
            rows = [s.as_dict() for s in center_status(c, open_tenants(c, stack, ConnectionGovernor(idle_seconds=0, limit=2)))]
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


def _hosted(c: Center, prefecture: str) -> TenantEntry:
    pref = geo.prefecture(prefecture)
    t = c.tenant(pref.number)
    if t is None:
        raise JukinetError("TENANT_UNKNOWN", f"{pref.name} はこのセンターに収容されていません。")
    return t


@center_app.command("backup")
def backup_command(center_dir: Path = CenterDir, prefecture: str = typer.Option(..., "--prefecture")):
    """その都道府県だけの暗号化バックアップを、その県の公開鍵で、その県のバックアップ先に作成する."""
    c = _load(center_dir)
    try:
        t = _hosted(c, prefecture)
        result = run_and_record(Config.load(c.tenant_dir(t)), actor="center")
    except JukinetError as e:
        c.log_event("tenant_backup_failed", code=e.code)
        fail(e)
    c.log_event("tenant_backup", prefecture=t.prefecture, bytes=result.bytes)
    console.print(f"{t.prefecture:02d} {t.name}: バックアップ {result.path} ({result.bytes:,} バイト; {t.name}の公開鍵で暗号化)")


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


@center_app.command("move")
def move_command(center_dir: Path = CenterDir,
                 prefecture: str = typer.Option(..., "--prefecture"),
                 db_url: Optional[str] = typer.Option(None, "--db-url",
                                                      help="移行先の空の PostgreSQL データベース (管理者URL; 別のクラスタ可)"),
                 confirm: bool = typer.Option(False, "--confirm", help="確定待ちの移行を確定する (移行元を切り離す)"),
                 abort: bool = typer.Option(False, "--abort", help="確定待ちの移行を取り消し、移行元に戻す")):
    """都道府県のデータベースを別のクラスタへ移す: 複写・検証 (行数・操作ログの連鎖)・切替え。移行元は確定まで保持."""
    c = _load(center_dir)
    if sum(bool(x) for x in (db_url, confirm, abort)) != 1:
        fail(JukinetError("CENTER_MOVE_USAGE", "--db-url (移行)、--confirm (確定)、--abort (取消し) のどれか一つを指定してください。"))
    try:
        if db_url:
            r = move_tenant(c, prefecture, db_url)
            console.print(f"{r['prefecture']:02d}: {r['from']} → {r['to']} へ移し、行数と操作ログの連鎖を検証して切り替えました。"
                          f"移行元は保持しています。確認後 `jukinet center move --prefecture {r['prefecture']} --confirm` で確定"
                          " (戻すには --abort)。")
        elif confirm:
            r = confirm_move(c, prefecture)
            console.print(f"{r['prefecture']:02d}: 移行を確定しました ({r['to']})。"
                          + (f"移行元のファイル: {r['detached']}" if r["detached"] else
                             f"移行元のデータベース {r['from']} は DBA が削除してください。"))
        else:
            r = abort_move(c, prefecture)
            console.print(f"{r['prefecture']:02d}: 移行を取り消し、{r['from']} に戻しました。")
    except JukinetError as e:
        fail(e)


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
    if srv.tenants:     # the log lines of every tenant, in the format `jukinet serve` writes (one process, one handler)
        try:
            configure_logs(srv.tenants[min(srv.tenants)].installation.config)
        except JukinetError as e:
            fail(e)
    server_log("集約センター起動", url=f"{srv.base_url}/health", tenants=len(srv.tenants))
    try:
        srv.run()
    except KeyboardInterrupt:
        pass
    server_log("停止しました")


#: ``make demo CENTER=1``: 三重県, 愛知県 and 岐阜県 (issue 14)
DEMO_PREFECTURES = "24,23,21"


def _demo_tenants(c: Center, prefectures: str) -> list[int]:
    numbers = []
    for part in prefectures.split(","):
        if part.strip():
            numbers.append(geo.prefecture(part.strip()).number)
    return numbers


def prepare_demo(c: Center, numbers: list[int], residents: int) -> None:
    """Add the tenants not hosted yet, each with its own simulated national servers on ports of its
    own (``center.port + 1 + 2i``, ``+ 2 + 2i``), synthetic residents and a demo backup key."""
    for i, n in enumerate(numbers):
        if c.tenant(n) is None:
            with console.status(f"{geo.prefecture(n).name} を収容しています (データベース・鍵・証明書)…"):
                add_tenant(c, n)
        data_dir = c.tenant_dir(c.tenant(n))
        config = Config.load(data_dir)
        config.national.port, config.national.fuhyo_port = c.port + 1 + 2 * i, c.port + 2 + 2 * i
        config.save()
        with bootstrap(config) as inst:
            with inst.registers.juki_uow(write=False) as uow:
                empty = uow.repo.count() == 0
        if empty:
            run_seed(data_dir, residents)
        with bootstrap(config) as inst:    # issue 16: an interrupted seed is resumed by `jukinet seed`, not served
            require_seed_complete(inst.registers, str(data_dir), f"{config.prefecture_name}: ")
        with console.status(f"{config.prefecture_name}: バックアップ (デモ用の鍵) を作成しています…"):
            demo_backup(config)


@center_app.command("demo")
def demo_command(center_dir: Path = CenterDir,
                 prefectures: str = typer.Option(DEMO_PREFECTURES, "--prefectures",
                                                 help="収容する都道府県 (番号をカンマ区切り; 初回のみ追加)"),
                 residents: int = typer.Option(5_000, "--residents", min=1, help="都道府県ごとの住民数 (初回のみ投入)"),
                 port: int = typer.Option(DEFAULT_CENTER_PORT, "--port", help="センターのポート (初回のみ)")):
    """デモ: 集約センター (既定 三重県・愛知県・岐阜県) を作成・合成データ投入 (初回のみ)・起動する."""
    try:
        c = Center.load(center_dir) if (center_dir / CENTER_NAME).exists() else init_center(center_dir, port=port)
        numbers = _demo_tenants(c, prefectures)
        prepare_demo(c, numbers, residents)
        c = Center.load(center_dir)
        srv = CenterServer(c, schedulers=True, log_level="info")
    except JukinetError as e:
        fail(e)
    demo_log = c.dir / "logs" / "demo-serve.jsonl"
    first = srv.tenants[min(srv.tenants)].installation.config
    try:
        configure_demo(first, demo_log)
    except JukinetError as e:
        fail(e)
    base = f"http://{c.host}:{c.port}"
    console.rule("jukinet 集約センター デモ")
    console.print(f"センター: {c.dir} — HTTPS {srv.base_url} (CS は相互TLS; センターのCA {c.ca_cert})", soft_wrap=True)
    console.print(f"センター運用画面 (運用委託; 個人情報なし): {base}/center/ops  "
                  f"(JSON {base}/center/api/status, CLI `jukinet center status --center-dir {c.dir}`)", soft_wrap=True)
    for n, rt in sorted(srv.tenants.items()):
        cfg = rt.installation.config
        console.print(f"[bold]{n:02d} {cfg.prefecture_name}[/bold] ({cfg.data_dir}): 操作者の登録は別のシェルで "
                      f"`jukinet operator bootstrap --data-dir {cfg.data_dir} --name 氏名` — 表示されたリンクを開くと "
                      f"{cfg.prefecture_name}の端末になり、{base}/login から{cfg.prefecture_name}の業務だけが見えます",
                      soft_wrap=True)   # commands are copied: never broken at the terminal width
        console.print(f"    全国サーバ (模擬) :{cfg.national.port}/:{cfg.national.fuhyo_port}; 届いた通知 "
                      f"`jukinet sim national-dump --data-dir {cfg.data_dir}`", soft_wrap=True)
    console.print(f"ログ (JSON, 1行1件): {demo_log} — この画面には警告・エラーのみ表示。終了: Ctrl-C", soft_wrap=True)
    peers = [DemoPeers(rt.installation, server_ca=c.ca_cert) for _, rt in sorted(srv.tenants.items())]
    server_log("集約センター起動", url=f"{base}/health", tenants=len(srv.tenants))
    try:
        for p in peers:
            p.start()
        srv.run()
    except KeyboardInterrupt:
        pass
    finally:
        for p in peers:
            p.stop()
    server_log("停止しました")
