"""``jukinet keys status`` and ``jukinet keys rotate-kojin-bango`` (ADR 0025). Counts only."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from jukinet.cli.common import DataDir, console, open_installation
from jukinet.errors import JukinetError
from jukinet.security import atrest_rotation

keys_app = typer.Typer(help="暗号鍵 (個人番号の保存時暗号化)", no_args_is_help=True)

STATES = {"active": "使用中", "decrypt-only": "切替中 (復号のみ)", "retired": "廃止", "unknown": "不明"}


def _registers(data_dir: Path):
    """The databases of the installation of ``data_dir`` (:mod:`jukinet.bootstrap`); the caller
    disposes them."""
    return open_installation(data_dir).registers


@keys_app.command("status")
def keys_status(data_dir: Path = DataDir):
    """個人番号の暗号鍵の一覧と、鍵ごとの行数 (件数のみ) を表示する."""
    registers = _registers(data_dir)
    try:
        rows = atrest_rotation.status(registers)
    finally:
        registers.dispose()
    table = Table(title="個人番号の暗号鍵 (keys/kojin_bango.json)")
    for col in ("鍵ID", "状態", "作成", "現在 (行)", "履歴 (行)"):
        table.add_column(col)
    for s in rows:
        table.add_row(str(s.key_id), STATES.get(s.state, s.state), s.created,
                      str(s.rows.get("juki_current", 0)), str(s.rows.get("juki_history", 0)))
    Console().print(table)


@keys_app.command("rotate-kojin-bango")
def rotate_kojin_bango(data_dir: Path = DataDir,
                       batch: int = typer.Option(5000, "--batch", min=100, help="1トランザクションの行数")):
    """個人番号の暗号鍵を更新し、全行 (現在・履歴) を新しい鍵で暗号化し直す (中断後は再実行で再開)."""
    registers = _registers(data_dir)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("個人番号の再暗号化", total=None)
            report = atrest_rotation.rotate(
                registers, batch=batch, progress=lambda done, total: bar.update(task, completed=done, total=total))
    except JukinetError as e:
        console.print(f"[red]{e.code}[/red]: {e.message}")
        raise typer.Exit(2)
    finally:
        registers.dispose()
    console.print(f"鍵 {','.join(map(str, report.from_keys))} → {report.to_key}: {report.rows} 行を再暗号化しました"
                  f"{' (再開)' if report.resumed else ''} ({report.seconds:.1f} 秒)。旧鍵は廃止しました。")
