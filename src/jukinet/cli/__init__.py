"""The ``jukinet`` command (Typer). Every command takes ``--data-dir`` (default ./jukinet-data);
everything else is in ``DIR/jukinet.toml``, written by ``init``.

Commands are thin: they parse, call a service, and print. Errors are printed as
``code: message`` (Japanese) and exit non-zero.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jukinet.config import DEFAULT_DATA_DIR, DEFAULT_PORT_BASE, Config, NationalConfig, ServerConfig
from jukinet.errors import JukinetError
from jukinet.config import CONFIG_NAME
from jukinet.store import provision
from jukinet.server import ensure_pki
from jukinet.cli.provision import load_default_catalogue
from jukinet.seed import populate
from jukinet.store.registers import Registers
from jukinet.server import PrefectureServer
from jukinet.store.upgrade import require_current
from jukinet.observability.logs import configure as configure_logs, configure_demo, server_log
from jukinet.scheduler import OpsScheduler
from jukinet.cli.sim import DemoPeers
from jukinet.store.upgrade import upgrade as upgrade_databases
from jukinet.backup.demo import demo_backup

app = typer.Typer(help="jukinet — 都道府県サーバ・附票都道府県サーバ", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)

DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="データディレクトリ", show_default=True)


def _fail(e: JukinetError) -> None:
    console.print(f"[red]{e.code}[/red]: {e.message}")
    raise typer.Exit(2)


def _load(data_dir: Path) -> Config:
    try:
        return Config.load(data_dir)
    except JukinetError as e:
        _fail(e)


@app.command()
def init(data_dir: Path = DataDir,
         db_url: Optional[str] = typer.Option(None, "--db-url", help="PostgreSQL の管理者URL (省略時は SQLite)"),
         port_base: int = typer.Option(DEFAULT_PORT_BASE, "--port-base", help="サーバN, 全国サーバN+1, 附票全国サーバN+2")):
    """データベース・設定を作成する (databases, migrations, config)."""
    if (data_dir / CONFIG_NAME).exists():  # ADR 0028: an installation is upgraded, never initialised again
        _fail(JukinetError("INIT_ALREADY_INITIALISED",
                           f"このデータディレクトリは初期化済みです (設定ファイルは変更していません)。アップグレードは "
                           f"`jukinet migrate --data-dir {data_dir}` で行ってください。"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = provision.database_config(data_dir, db_url)
        provision.migrate_all(db, data_dir)
    except JukinetError as e:
        _fail(e)
    config = Config(data_dir=data_dir, database=db, server=ServerConfig(port=port_base),
                    national=NationalConfig(port=port_base + 1, fuhyo_port=port_base + 2))
    config.save()

    try:
        ensure_pki(config)
    except JukinetError as e:
        _fail(e)

    try:
        load_default_catalogue(config)
    except JukinetError as e:
        _fail(e)
    console.print(f"初期化しました: {config.path}")


@app.command()
def seed(data_dir: Path = DataDir,
         residents: int = typer.Option(20_000, "--residents", min=1, help="住民数 (現存者)"),
         seed_: int = typer.Option(0, "--seed", help="乱数シード (同じシードで同じデータ)")):
    """合成の三重県住民データを両ファイルに投入する (synthetic population, both registers)."""
    config = _load(data_dir)
    registers = Registers(config)
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("住民データ投入", total=residents)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = populate(registers, residents, seed_, progress=progress)
        except JukinetError as e:
            _fail(e)
    registers.dispose()
    r = report
    console.print(f"投入しました ({time.monotonic() - started:.1f} 秒): 本人確認情報 現存 {r.residents:,} 人・消除 {r.removed:,} 人・"
                  f"履歴 {r.history:,} 件 / 附票 現存 {r.fuhyo_current:,} 件 (うち国外 {r.fuhyo_abroad:,}・県外 "
                  f"{r.fuhyo_other_prefecture:,})・消除 {r.fuhyo_removed:,} 件・履歴 {r.fuhyo_history:,} 件")


@app.command()
def serve(data_dir: Path = DataDir):
    """都道府県サーバ・附票都道府県サーバを起動する (HTTPS, CS は相互認証; 全国サーバへの送信も行う)."""
    _serve(data_dir)


def _serve(data_dir: Path, demo_log: Optional[Path] = None) -> None:
    """``demo_log``: every log line to that file, only warnings and errors on the console (demo)."""
    config = _load(data_dir)

    try:
        require_current(config, str(data_dir))
        server = PrefectureServer(config)
    except JukinetError as e:
        _fail(e)

    try:
        configure_logs(config) if demo_log is None else configure_demo(config, demo_log)
    except JukinetError as e:
        _fail(e)
    server_log("起動", url=f"{server.base_url}/health", ca=str(config.resolve(config.tls.ca_cert)))

    ops = OpsScheduler(config).start()
    server.app.state.ops_scheduler = ops  # A7: shown on /ops and in /metrics (ADR 0026)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
    server_log("停止しました")


@app.command()
def demo(data_dir: Path = DataDir,
         residents: int = typer.Option(20_000, "--residents", min=1, help="住民数 (初回のみ投入)")):
    """デモ: 初期化・合成データ投入 (初回のみ)・起動し、確認先を表示する."""
    if not (data_dir / CONFIG_NAME).exists():
        init(data_dir=data_dir, db_url=None, port_base=DEFAULT_PORT_BASE)
    config = _load(data_dir)
    registers = Registers(config)
    with registers.juki_uow(write=False) as uow:
        empty = uow.repo.count() == 0
    registers.dispose()
    if empty:
        seed(data_dir=data_dir, residents=residents, seed_=0)

    ensure_pki(config)

    try:
        upgrade_databases(config)
    except JukinetError as e:
        _fail(e)

    with console.status("バックアップ (デモ用の鍵) を作成しています…"):
        shot = demo_backup(config)
    demo_log = data_dir / "logs" / "demo-serve.jsonl"
    base = f"http://{config.server.host}:{config.server.port}"
    tls_base = f"https://{config.server.host}:{config.server.port}"
    ca = config.resolve(config.tls.ca_cert)
    console.rule("jukinet デモ")
    console.print(f"データ: {data_dir.resolve()} (SQLite: juki.sqlite3, fuhyo.sqlite3)")
    console.print(f"ヘルスチェック: {base}/health  (HTTPS: curl --cacert {ca} {tls_base}/health)")
    console.print(f"API 仕様 (OpenAPI): {base}/docs")
    console.print(f"操作者画面: http://localhost:{config.server.port}/login "
                  "(初回は別のシェルで `jukinet operator bootstrap --name 氏名` を実行し、表示されたリンクを開く)")
    console.print(f"全国サーバ・附票全国サーバ (模擬): https://{config.national.host}:{config.national.port}, "
                  f":{config.national.fuhyo_port} — 市町村CS 4団体 (模擬) が数秒ごとに異動を送信")
    console.print(f"全国サーバへ届いた通知: jukinet sim national-dump --data-dir {data_dir}")
    if shot.error_code:
        console.print(f"バックアップ: [red]{shot.error_code}[/red] (運用状況 /ops に表示されます)")
    else:
        console.print(f"バックアップ: {shot.backup_file} ({shot.backup_bytes / 1048576:.1f} MiB, {shot.seconds:.1f} 秒) — "
                      f"運用状況 /ops・{base}/metrics に表示。毎日 {config.backup.daily_at} (日本時間) にも作成")
    console.print(f"[yellow]デモ専用の鍵[/yellow]: {shot.key_dir} (秘密鍵がパスフレーズなしでここにあります。本番では県が"
                  "オフラインで保管し、サーバには公開鍵だけを置きます — README.txt)")
    console.print(f"ログ (JSON, 1行1件): {demo_log} — この画面には警告・エラーのみ表示")
    console.print("終了: Ctrl-C")
    peers = DemoPeers(config).start()
    try:
        _serve(data_dir, demo_log=demo_log)
    finally:
        peers.stop()


from jukinet.cli.security import audit_app, operator_app, terminal_app  # noqa: E402

app.add_typer(operator_app, name="operator")
app.add_typer(terminal_app, name="terminal")
app.add_typer(audit_app, name="audit")
from jukinet.cli.audit import inventory_command, report_command, watch_command  # noqa: E402  (A4, A2)

audit_app.command("report")(report_command)
audit_app.command("watch")(watch_command)
operator_app.command("inventory")(inventory_command)

from jukinet.cli.sim import outbox as _outbox_command, sim_app  # noqa: E402  (事務1: simulators, outbox)

app.add_typer(sim_app, name="sim")
app.command("outbox")(_outbox_command)

from jukinet.cli.ops import retention_app, stats_command  # noqa: E402  (A8 retention, A9 statistics)
from jukinet.cli.reconcile import cs_snapshot_command, reconcile_command  # noqa: E402  (事務6, C1)

app.command("reconcile")(reconcile_command)
sim_app.command("cs-snapshot")(cs_snapshot_command)
app.add_typer(retention_app, name="retention")
app.command("stats")(stats_command)

from jukinet.cli.provision import catalogue_app, provision_app, query_app  # noqa: E402  (事務2, 事務4)

app.add_typer(catalogue_app, name="catalogue")
app.add_typer(provision_app, name="provision")
app.add_typer(query_app, name="query")

from jukinet.cli.backup import backup_app, restore_command  # noqa: E402  (A7 encrypted backups, ADR 0024)

app.add_typer(backup_app, name="backup")
app.command("restore")(restore_command)
from jukinet.cli.keys import keys_app  # noqa: E402  (A7: 個人番号 at rest, key rotation; ADR 0025)

app.add_typer(keys_app, name="keys")
from jukinet.cli.pki import pki_app  # noqa: E402  (U1, U6: revocation, CRL; ADR 0030)

app.add_typer(pki_app, name="pki")
from jukinet.cli.migrate import migrate_command  # noqa: E402  (A7, Q2: upgrade in place; ADR 0028)

app.command("migrate")(migrate_command)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
