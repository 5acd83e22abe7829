"""``jukinet audit report`` (A4) and ``jukinet operator inventory`` (A2) — thin: parse, call, print.

    jukinet audit report --month 2026-10 [--out DIR]     # PDF + CSV, digest fixed in the admin DB
    jukinet audit watch --operator OP0003 --address-prefix 三重県津市広明町   # flag (d)
    jukinet operator inventory [--csv FILE]              # findings of the annual inventory

Errors: ``CODE: message`` on stderr, exit 2 (e.g. ``AUDIT_MONTH_INVALID``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from jukinet.audit.analysis import KINDS
from jukinet.audit.inventory import InventoryService, csv_text
from jukinet.audit.service import parse_month, previous_month
from jukinet.cli.common import DataDir, console, fail, open_installation
from jukinet.errors import JukinetError
from jukinet.security.oplog import Actor

out = Console()
CLI_ACTOR = "cli"


def _open(data_dir: Path):
    """The installation of ``data_dir`` (:mod:`jukinet.bootstrap`)."""
    return open_installation(data_dir)


def report_command(month: Optional[str] = typer.Option(None, "--month", help="対象月 YYYY-MM (日本時間; 既定: 前月)"),
                   out_dir: Path = typer.Option(Path("."), "--out", help="PDF・CSV の出力先ディレクトリ"),
                   data_dir: Path = DataDir):
    """操作ログ月次分析 (A4): 管理責任者への報告書 (PDF・CSV) を作成し、SHA-256 を記録する."""
    try:
        m = parse_month(month) if month is not None else previous_month()
    except JukinetError as e:
        fail(e)
    inst = _open(data_dir)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task(f"{m.key}: 操作ログの読み込み・分析", total=None)

            def stage(done: int, total: int, name: str) -> None:     # the same stages as the screen's display
                bar.update(task, completed=done, total=total, description=f"{m.key}: {name}")

            g = inst.audit.generate(Actor(CLI_ACTOR, None), m, progress=stage)
    except JukinetError as e:
        fail(e)
    finally:
        inst.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path, csv_path = out_dir / f"audit-{m.key}.pdf", out_dir / f"audit-{m.key}.csv"
    pdf_path.write_bytes(g.pdf)
    csv_path.write_bytes(g.csv)
    t = Table(title=f"操作ログ月次分析 {m.key}: ログ {g.analysis.entries} 件、フラグ {len(g.analysis.flags)} 件")
    for c in ("区分", "内容", "件数"):
        t.add_column(c)

    for k, n in g.analysis.flag_counts().items():
        t.add_row(f"({k})", KINDS[k], str(n))
    out.print(t)
    out.print(f"PDF: {pdf_path}\nCSV: {csv_path}\nSHA-256 (PDF): {g.pdf_sha256} (記録番号 {g.report_id})")


def watch_command(operator: str = typer.Option(..., "--operator", help="操作者ID"),
                  address_prefix: str = typer.Option(..., "--address-prefix", help="操作者の住所区域 (空で解除)"),
                  data_dir: Path = DataDir):
    """操作者の住所区域を記録する (月次分析のフラグ d: 同じ区域に住む人の照会)."""
    inst = _open(data_dir)
    try:
        inst.audit.set_watch(Actor(CLI_ACTOR, None), operator, address_prefix)
    except JukinetError as e:
        fail(e)
    finally:
        inst.close()
    out.print(f"操作者 {operator} の住所区域を{'記録' if address_prefix.strip() else '解除'}しました。")


def inventory_command(csv_file: Optional[Path] = typer.Option(None, "--csv", help="指摘を CSV に出力"),
                      data_dir: Path = DataDir):
    """名簿の棚卸し (A2): 直近12か月の操作ログと名簿を照合し、指摘を表示する (確認の記録は画面で)."""
    inst = _open(data_dir)
    try:
        oplog = inst.oplog
        inv = InventoryService(inst.config, inst.registers, oplog).take()
        with inst.registers.admin_tx() as conn:
            oplog.append(conn, "admin", actor=Actor(CLI_ACTOR, None), action="roster_inventory_view",
                         result_count=len(inv.findings), detail={"sha256": inv.sha256, "csv": csv_file is not None})
    except JukinetError as e:
        fail(e)
    finally:
        inst.close()
    t = Table(title=f"名簿の棚卸し: {len(inv.accounts)} 名、指摘 {len(inv.findings)} 件")
    for c in ("操作者ID", "区分", "内容"):
        t.add_column(c)
    for f in inv.findings:
        t.add_row(f.operator_id, f.label, f.text)
    out.print(t)
    if inv.last is None:
        out.print("[red]棚卸しの確認記録がありません。[/red]")
    else:
        out.print(f"前回の確認: {inv.last.confirmed_at} ({inv.last.confirmed_by})"
                  + (" [red]— 1年を超えています[/red]" if inv.overdue else ""))
    if csv_file is not None:
        csv_file.write_text(csv_text(inv), encoding="utf-8", newline="")
        out.print(f"CSV: {csv_file}")
