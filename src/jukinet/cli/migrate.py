"""``jukinet migrate [--check]`` (A7, Q2; ADR 0028) — thin: read the states, print, upgrade.

    jukinet migrate --check     # exit 0: every database at head; 1: some behind (nothing changed)
    jukinet migrate             # upgrade juki, fuhyo, admin in place; jukinet.toml is not touched

Errors: ``CODE: message`` on stderr, exit 2 (e.g. ``SCHEMA_UNKNOWN_REVISION``, ``DB_UNREACHABLE``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from jukinet.config import DEFAULT_DATA_DIR, Config
from jukinet.errors import JukinetError
from jukinet.store import upgrade

console = Console(stderr=True)
out = Console()
DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="データディレクトリ", show_default=True)
NAMES = {"juki": "本人確認情報 (juki)", "fuhyo": "附票本人確認情報 (fuhyo)", "admin": "管理 (admin)"}


def _fail(e: JukinetError) -> None:
    console.print(f"[red]{e.code}[/red]: {e.message}")
    raise typer.Exit(2)


def status_table(states, title: str) -> Table:
    t = Table(title=title)
    for c in ("データベース", "現在の版", "最新の版 (head)", "未適用", "状態"):
        t.add_column(c)
    for s in states:
        state = ("[red]不明な版[/red]" if s.unknown else "[yellow]未適用あり[/yellow]" if s.behind
                 else "[green]最新[/green]")
        t.add_row(NAMES.get(s.store, s.store), s.current or "なし", s.head, str(len(s.pending)), state)
    return t


def migrate_command(data_dir: Path = DataDir,
                    check: bool = typer.Option(False, "--check",
                                               help="確認のみ (変更しない): 未適用があれば終了コード 1")):
    """データベース (juki・fuhyo・admin) を最新の版に移行する (設定ファイルは書き換えない)."""
    try:
        config = Config.load(data_dir)
        states = upgrade.schema_status(config)
    except JukinetError as e:
        _fail(e)
    out.print(status_table(states, "データベースの版"))
    if any(s.unknown for s in states):
        _fail(upgrade.unknown_error(states))
    behind = [s for s in states if s.behind]
    if not behind:
        out.print("すべてのデータベースが最新の版です。")
        raise typer.Exit(0)
    console.print(f"[yellow]注意[/yellow]: 移行の前にバックアップを取ってください: "
                  f"`jukinet backup --data-dir {data_dir}` (移行はバックアップを自動では作りません。"
                  "サーバ (`jukinet serve`) は停止しておいてください)。")
    if check:
        out.print(f"未適用の移行があります ({len(behind)} データベース)。`jukinet migrate --data-dir {data_dir}` で適用します。")
        raise typer.Exit(1)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("移行", total=len(behind))

        def progress(store: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=f"移行: {NAMES.get(store, store)}" if store else "移行 完了")

        try:
            upgrade.upgrade(config, progress=progress)
        except JukinetError as e:
            _fail(e)
    after = upgrade.schema_status(config)
    out.print(status_table(after, "移行後の版"))
    if any(s.behind for s in after):  # pragma: no cover - alembic upgraded to head or raised
        raise typer.Exit(1)
    out.print("移行しました: " + ", ".join(f"{s.store} {s.current or 'なし'} → {s.head}" for s in behind))
