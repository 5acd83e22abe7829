"""``jukinet serve`` and ``jukinet demo``: the running system on one installation.

``serve`` assembles the installation once (:mod:`jukinet.bootstrap`) and hands it to the server
process (HTTPS + intake + outbox worker), the daily scheduler and — in the demo — the simulated
national servers and municipal CS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from jukinet.backup.demo import demo_backup
from jukinet.bootstrap import Installation
from jukinet.cli.common import DataDir, console, fail, installation, load_config
from jukinet.cli.install import init, run_seed
from jukinet.cli.security import role_screen_lines, signin_lines
from jukinet.config import CONFIG_NAME, DEFAULT_PORT_BASE
from jukinet.errors import JukinetError
from jukinet.observability.logs import configure as configure_logs
from jukinet.observability.logs import configure_demo, server_log
from jukinet.scheduler import OpsScheduler
from jukinet.security import demo_signin
from jukinet.server import PrefectureServer, ensure_pki
from jukinet.sim.demo import DemoPeers
from jukinet.store.seed_state import require_seed_complete
from jukinet.store.upgrade import require_current
from jukinet.store.upgrade import upgrade as upgrade_databases


def serve(data_dir: Path = DataDir):
    """都道府県サーバ・附票都道府県サーバを起動する (HTTPS, CS は相互認証; 全国サーバへの送信も行う)."""
    config = load_config(data_dir)
    try:
        require_current(config, str(data_dir))    # ADR 0028: never serve a database behind its head
    except JukinetError as e:
        fail(e)
    with installation(config) as inst:
        run_server(inst)


def run_server(inst: Installation, demo_log: Optional[Path] = None) -> None:
    """The server, its outbox worker and the daily scheduler on one installation, until Ctrl-C.
    ``demo_log``: every log line to that file, only warnings and errors on the console (demo)."""
    config = inst.config
    try:
        server = PrefectureServer(inst)
    except JukinetError as e:
        fail(e)

    try:
        configure_logs(config) if demo_log is None else configure_demo(config, demo_log)
    except JukinetError as e:
        fail(e)
    server_log("起動", url=f"{server.base_url}/health", ca=str(config.resolve(config.tls.ca_cert)))

    ops = OpsScheduler(inst).start()
    server.app.state.ops_scheduler = ops  # A7: shown on /ops and in /metrics (ADR 0026)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        ops.stop()
    server_log("停止しました")


def demo(data_dir: Path = DataDir,
         residents: int = typer.Option(20_000, "--residents", min=1, help="住民数 (初回のみ投入)"),
         prefecture: str = typer.Option("24", "--prefecture", help="都道府県 (初回のみ; 既定 24 三重県)")):
    """デモ: 初期化・合成データ投入 (初回のみ)・起動し、確認先を表示する."""
    if not (data_dir / CONFIG_NAME).exists():
        init(data_dir=data_dir, db_url=None, port_base=DEFAULT_PORT_BASE, prefecture=prefecture)
    config = load_config(data_dir)
    with installation(config) as inst:
        with inst.registers.juki_uow(write=False) as uow:
            empty = uow.repo.count() == 0
    if empty:
        run_seed(data_dir, residents)
    with installation(config) as inst:    # issue 16: an interrupted seed is resumed by `jukinet seed`, not served
        try:
            require_seed_complete(inst.registers, str(data_dir))
        except JukinetError as e:
            fail(e)
    ensure_pki(config)

    try:
        upgrade_databases(config)
    except JukinetError as e:
        fail(e)

    with console.status("バックアップ (デモ用の鍵) を作成しています…"):
        shot = demo_backup(config)
    demo_log = data_dir / "logs" / "demo-serve.jsonl"
    login_base = f"http://localhost:{config.server.port}"       # WebAuthn and the cookies need a host name
    with installation(config) as inst:
        signin = demo_signin.ensure(inst.security, data_dir, login_base)
    base = f"http://{config.server.host}:{config.server.port}"
    tls_base = f"https://{config.server.host}:{config.server.port}"
    ca = config.resolve(config.tls.ca_cert)
    console.rule("jukinet デモ")
    console.print(f"データ: {data_dir.resolve()} (SQLite: juki.sqlite3, fuhyo.sqlite3)")
    console.print(f"ヘルスチェック: {base}/health  (HTTPS: curl --cacert {ca} {tls_base}/health)")
    console.print(f"API 仕様 (OpenAPI): {base}/docs")
    console.print(f"操作者画面: {login_base}/login — デモ専用のシステム管理者 {signin.operator_id} でログインできます"
                  "\n(生体認証のない Linux デスクトップ向けに、デモに限りパスワード+ワンタイムパスワードを許可):")
    for line in signin_lines(signin.operator_id, signin.password, signin.totp_uri, f"{login_base}/login",
                             terminal_link=signin.terminal_link):
        console.print(line, markup=False, highlight=False, soft_wrap=True)   # a URI or QR row must not wrap
    console.print(f"   (この内容は {demo_signin.info_path(data_dir)} にもあります — デモ専用)")
    console.print("役割ごとに使える画面 (ログイン後 /help にも表示):")
    for line in role_screen_lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)   # a URI or QR row must not wrap
    console.print("ほかの操作者はシステム管理者が /roster で登録します。管理者が認証手段を失ったら: "
                  f"jukinet operator recover-admin --data-dir {data_dir} --operator ID [--password]")
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
    with installation(config) as inst:
        peers = DemoPeers(inst).start()
        try:
            run_server(inst, demo_log=demo_log)
        finally:
            peers.stop()
