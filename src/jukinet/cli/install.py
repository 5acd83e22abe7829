"""``jukinet init`` and ``jukinet seed``: create an installation, fill it with synthetic residents."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jukinet import geo
from jukinet.cli.common import DataDir, console, fail, installation, open_installation
from jukinet.config import CONFIG_NAME, DEFAULT_PORT_BASE, Config, NationalConfig, ServerConfig
from jukinet.errors import JukinetError
from jukinet.security.checkpoints import genesis as genesis_checkpoints
from jukinet.seed import populate
from jukinet.server import ensure_pki
from jukinet.store import provision


def init(data_dir: Path = DataDir,
         db_url: Optional[str] = typer.Option(None, "--db-url", help="PostgreSQL の管理者URL (省略時は SQLite)"),
         port_base: int = typer.Option(DEFAULT_PORT_BASE, "--port-base", help="サーバN, 全国サーバN+1, 附票全国サーバN+2"),
         prefecture: str = typer.Option(str(geo.DEFAULT_PREFECTURE), "--prefecture",
                                        help="都道府県 (番号 01〜47・6桁の団体コード・名称; 既定 24 三重県)")):
    """データベース・設定を作成する (databases, migrations, config)."""
    try:
        pref = geo.prefecture(prefecture)
    except JukinetError as e:
        fail(e)
    if (data_dir / CONFIG_NAME).exists():  # ADR 0028: an installation is upgraded, never initialised again
        fail(JukinetError("INIT_ALREADY_INITIALISED",
                           f"このデータディレクトリは初期化済みです (設定ファイルは変更していません)。アップグレードは "
                           f"`jukinet migrate --data-dir {data_dir}` で行ってください。"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = provision.database_config(data_dir, db_url)
        provision.migrate_all(db, data_dir)
    except JukinetError as e:
        fail(e)
    config = Config(data_dir=data_dir, database=db, prefecture_code=pref.code, prefecture_name=pref.name,
                    server=ServerConfig(port=port_base),
                    national=NationalConfig(port=port_base + 1, fuhyo_port=port_base + 2))
    config.save()
    genesis_checkpoints(data_dir)              # A4: the empty chains, MAC'd, before any history (ADR 0031)
    try:
        ensure_pki(config)                     # 事務1: dev CA and certificates (ADR 0005)
    except JukinetError as e:
        fail(e)

    with installation(config) as inst:
        try:
            inst.ensure_default_catalogue()    # 事務2: the shipped requester/affair catalogue (P1)
        except JukinetError as e:
            fail(e)
    console.print(f"初期化しました: {config.path}")


def seed(data_dir: Path = DataDir,
         residents: int = typer.Option(20_000, "--residents", min=1, help="住民数 (現存者)"),
         seed_: int = typer.Option(0, "--seed", help="乱数シード (同じシードで同じデータ)"),
         prefecture: Optional[str] = typer.Option(None, "--prefecture",
                                                  help="都道府県 (省略時は init で指定した都道府県; 異なれば拒否)"),
         batch_size: int = typer.Option(5000, "--batch-size", min=1,
                                        help="1トランザクションの人数 (中断後の再実行では最初の値を使う)"),
         slow: bool = typer.Option(False, "--slow", help="高速投入 (COPY 等) を使わない (比較・検証用)"),
         workers: Optional[int] = typer.Option(None, "--workers", min=0,
                                               help="生成を行うプロセス数 (0: 投入と同じプロセス; 省略時は自動。データは同じ)")):
    """合成の住民データ (この都道府県の実在の市区町村・町域) を両ファイルに投入する (synthetic population).

    中断 (kill を含む) した投入は、同じ --residents と --seed で再実行すると続きから投入する。"""
    run_seed(data_dir, residents, seed_, prefecture=prefecture, batch_size=batch_size, fast=not slow, workers=workers)


def run_seed(data_dir: Path, residents: int, seed_: int = 0, *, prefecture: Optional[str] = None,
             batch_size: int = 5000, fast: bool = True, workers: Optional[int] = None) -> None:
    """The seed with a progress bar (``jukinet seed``; ``jukinet demo`` calls it with its defaults)."""
    inst = open_installation(data_dir)
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("住民データ投入", total=residents)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = populate(inst.registers, residents, seed_, progress=progress, prefecture=prefecture,
                              batch_size=batch_size, fast=fast, workers=workers)
        except JukinetError as e:
            fail(e)
        finally:
            inst.close()
    r = report
    console.print(f"投入しました ({geo.prefecture(r.prefecture_code).name}, {time.monotonic() - started:.1f} 秒): 本人確認情報 現存 {r.residents:,} 人・消除 {r.removed:,} 人・"
                  f"履歴 {r.history:,} 件 / 附票 現存 {r.fuhyo_current:,} 件 (うち国外 {r.fuhyo_abroad:,}・県外 "
                  f"{r.fuhyo_other_prefecture:,})・消除 {r.fuhyo_removed:,} 件・履歴 {r.fuhyo_history:,} 件")
