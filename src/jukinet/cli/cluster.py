"""``jukinet cluster up | down | status | failover | switchover | backup | restore``: the local replicated
PostgreSQL for development and tests (issue 15, ADR 0037; :mod:`jukinet.cluster.local`).

etcd, three PostgreSQL 15 nodes under Patroni (one synchronous standby) and pgBackRest, on 127.0.0.1
ports from ``--base-port`` in ``--dir``. No personal data: names of nodes, roles, ports, LSN lags.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from jukinet.backup.pitr import restore_installation
from jukinet.cli.common import fail
from jukinet.cluster.local import DEFAULT_BASE_PORT, LocalCluster, Status
from jukinet.errors import JukinetError

console = Console()
ClusterDir = typer.Option(Path("./jukinet-cluster"), "--dir", help="クラスタのディレクトリ (postgres ユーザに渡す)")
cluster_app = typer.Typer(help="ローカルの冗長構成 PostgreSQL (etcd + Patroni + pgBackRest; 開発・試験用)",
                          no_args_is_help=True)


def _print(status: Status, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(status.as_dict(), ensure_ascii=False))
        return
    t = Table(title=f"leader: {status.leader or '-'}   sync standby: {status.sync_standby or '-'}")
    for col in ("member", "role", "state", "host:port", "timeline", "lag (bytes)"):
        t.add_column(col)
    for m in status.members:
        t.add_row(m.name, m.role, m.state, f"{m.host}:{m.port}", str(m.timeline if m.timeline is not None else "-"),
                  "-" if m.role == "leader" else ("unknown" if m.lag is None else str(m.lag)))
    console.print(t)


@cluster_app.command("up")
def up(directory: Path = ClusterDir,
       base_port: int = typer.Option(DEFAULT_BASE_PORT, "--base-port", help="etcd B..B+5, PostgreSQL B+10.., REST B+20.."),
       etcd_members: int = typer.Option(1, "--etcd-members", min=1, max=3, help="etcd のメンバ数 (本番は 3)"),
       timeout: float = typer.Option(240.0, "--timeout", help="起動待ちの秒数"),
       database: str = typer.Option("jukinet", "--database", help="作成する空のデータベース (jukinet init 用)"),
       as_json: bool = typer.Option(False, "--json")):
    """etcd と 3 ノードの PostgreSQL (Patroni, 同期スタンバイ 1) を起動し、pgBackRest の完全バックアップを取る。"""
    c = LocalCluster(directory, base_port=base_port, etcd_members=etcd_members)
    try:
        status = c.up(timeout)
        c.create_database(database)
    except JukinetError as e:
        fail(e)
    _print(status, as_json)
    if not as_json:
        console.print(f"jukinet init --db-url '{c.admin_url(database)}'")


@cluster_app.command("status")
def status(directory: Path = ClusterDir, as_json: bool = typer.Option(False, "--json")):
    """リーダー、メンバ、役割、遅延 (バイト)、タイムライン (Patroni REST API から)。"""
    try:
        _print(LocalCluster(directory).status(), as_json)
    except JukinetError as e:
        fail(e)


@cluster_app.command("url")
def url(directory: Path = ClusterDir, database: str = typer.Option("postgres", "--database")):
    """全ノードを列挙した管理者URL (target_session_attrs=read-write)。`jukinet init --db-url` に渡す。"""
    typer.echo(LocalCluster(directory).admin_url(database))


@cluster_app.command("failover")
def failover(directory: Path = ClusterDir, rejoin: bool = typer.Option(True, "--rejoin/--no-rejoin"),
             timeout: float = typer.Option(120.0, "--timeout")):
    """切替訓練: プライマリの Patroni と postmaster を kill -9 し、同期スタンバイの昇格までの秒数を測る。"""
    try:
        typer.echo(json.dumps(LocalCluster(directory).failover(timeout, rejoin=rejoin)))
    except JukinetError as e:
        fail(e)


@cluster_app.command("switchover")
def switchover(directory: Path = ClusterDir, candidate: str = typer.Option(None, "--candidate"),
               timeout: float = typer.Option(120.0, "--timeout")):
    """計画切替 (Patroni REST API): プライマリを正常停止し、同期スタンバイに引き継ぐ。"""
    try:
        typer.echo(json.dumps(LocalCluster(directory).switchover(candidate, timeout)))
    except JukinetError as e:
        fail(e)


@cluster_app.command("backup")
def backup(directory: Path = ClusterDir, kind: str = typer.Option("diff", "--type", help="full | diff | incr")):
    """pgBackRest のバックアップ (現在のプライマリから)。"""
    if kind not in ("full", "diff", "incr"):
        fail(JukinetError("CLUSTER_BACKUP_TYPE", "--type は full, diff, incr のいずれかです。"))
    try:
        c = LocalCluster(directory)
        c.backup(kind)
        info = c.backup_info()
        typer.echo(json.dumps({"backups": [b["type"] for b in info.get("backup", [])],
                               "wal_max": (info.get("archive") or [{}])[0].get("max")}))
    except JukinetError as e:
        fail(e)


@cluster_app.command("restore")
def restore(directory: Path = typer.Option(..., "--dir", help="復旧先の新しいクラスタのディレクトリ (空)"),
            source: Path = typer.Option(..., "--from", help="復旧元クラスタのディレクトリ (pgBackRest のリポジトリ)"),
            to_time: str = typer.Option(..., "--to-time", help="復旧時点 (ISO 8601、タイムゾーン付き: 2026-12-07T21:30:00+09:00)"),
            base_port: int = typer.Option(DEFAULT_BASE_PORT + 100, "--base-port", help="復旧先のポート (復旧元と重ならないこと)"),
            nodes: int = typer.Option(3, "--nodes", min=1, max=3, help="復旧先のノード数"),
            timeout: float = typer.Option(600.0, "--timeout"),
            data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="復旧元の設置 (jukinet.toml のあるディレクトリ)"),
            restored_data_dir: Optional[Path] = typer.Option(None, "--restored-data-dir",
                                                             help="復旧後の設置を作るディレクトリ (空; --data-dir と共に)"),
            operator: str = typer.Option("cli", "--operator", help="復旧を行う操作者ID (操作ログに記録)")):
    """時点復旧 (PITR): 復旧元の pgBackRest リポジトリから、指定時刻までに確定した更新だけを持つ新しいクラスタを作る。

    --data-dir と --restored-data-dir を付けると、その設置を新しいクラスタ上に作り、操作ログのハッシュ連鎖を検証し、
    復旧（誰が・いつ・復旧時点・復旧元）を復旧後の設置の操作ログに記録する。"""
    try:
        when = datetime.fromisoformat(to_time.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(JukinetError("PITR_TIME_FORMAT", "復旧時点は ISO 8601 (例: 2026-12-07T21:30:00+09:00) で指定してください。"))
    if (data_dir is None) != (restored_data_dir is None):
        fail(JukinetError("PITR_DATA_DIR_PAIR", "--data-dir と --restored-data-dir は両方指定してください。"))
    src = LocalCluster(source)
    if not src.state:
        fail(JukinetError("CLUSTER_NOT_FOUND", f"復旧元のクラスタがありません: {source}"))
    try:
        target = LocalCluster(directory, base_port=base_port, nodes=nodes)
        if data_dir is not None:
            record = restore_installation(src, target, when, data_dir=data_dir, restored_dir=restored_data_dir,
                                          operator_id=operator, timeout=timeout)
        else:
            record = target.restore_from(src, when, timeout=timeout)
    except JukinetError as e:
        fail(e)
    typer.echo(json.dumps(record, ensure_ascii=False))


@cluster_app.command("down")
def down(directory: Path = ClusterDir, remove: bool = typer.Option(False, "--remove", help="ディレクトリも削除する")):
    """すべて停止する (Patroni が PostgreSQL を停止、次に etcd)。何も残らない。"""
    c = LocalCluster(directory)
    killed = c.down(remove=remove)
    still = [k for k, v in c.running().items() if v] if not remove else []
    if still:
        fail(JukinetError("CLUSTER_STILL_RUNNING", f"停止できないプロセスがあります: {still}"))
    typer.echo(json.dumps({"stopped": True, "killed_after_timeout": killed}))
