"""``jukinet retention …`` (A8) and ``jukinet stats`` (A9).

    jukinet retention run [--dry-run] [--rule NAME …] [--today YYYY-MM-DD]
    jukinet retention rules            # the registry: rule, file, period, basis
    jukinet retention history          # the last runs (counts only)
    jukinet stats [--from YYYY-MM --to YYYY-MM | --fiscal-year N | --months N] [--csv DIR] [--svg DIR]
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from jukinet import retention
from jukinet.cli.common import DataDir, console, fail, open_installation
from jukinet.errors import JukinetError
from jukinet.ops import stats_report
from jukinet.ops.statistics import Period, collect

out = Console()
retention_app = typer.Typer(help="保存期間を過ぎた情報の自動消去 (A8)", no_args_is_help=True)

STATUS = {"completed": "完了", "failed": "[red]失敗[/red]", "skipped": "対象外 (未実装)"}


def _registers(data_dir: Path):
    """The databases of the installation of ``data_dir`` (:mod:`jukinet.bootstrap`); the caller
    disposes them."""
    return open_installation(data_dir).registers


@retention_app.command("run")
def retention_run(data_dir: Path = DataDir,
                  dry_run: bool = typer.Option(False, "--dry-run", help="消去せず、対象件数 (ルール別・年別) だけを表示・記録"),
                  rule: Optional[list[str]] = typer.Option(None, "--rule", help="このルールだけを実行 (複数可)"),
                  today: Optional[str] = typer.Option(None, "--today", help="基準日 (YYYY-MM-DD, 既定: 今日 JST)"),
                  batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="1トランザクションの件数")):
    """保存期間を過ぎた行を消去する (ルールごとにバッチで; 件数のみ記録)."""
    registers = _registers(data_dir)
    try:
        day = None
        if today is not None:
            try:
                day = date.fromisoformat(today)
            except ValueError:
                raise JukinetError("DATE_FORMAT", "基準日は YYYY-MM-DD で指定してください。") from None
        reports = retention.run(registers, dry_run=dry_run, today=day, only=rule or None, batch_size=batch_size)
    except JukinetError as e:
        fail(e)
    finally:
        registers.dispose()
    t = Table(title="保存期間による消去" + (" (ドライラン: 消去しません)" if dry_run else ""))
    for c in ("ルール", "対象", "保存期間", "基準 (これ以前)", "結果", "対象件数", "消去件数"):
        t.add_column(c, justify="right" if "件数" in c else "left")
    for r in reports:
        t.add_row(r.rule, r.title, r.period, r.cutoff or "—", STATUS.get(r.status, r.status) +
                  (f" ({r.error_code})" if r.error_code else ""), f"{r.eligible:,}", f"{r.erased:,}")
    out.print(t)
    years = [(r.rule, y, n) for r in reports for y, n in sorted(r.by_year.items())]
    if years:
        y = Table(title="対象件数 (年別: 保存期間の起算年)")
        for c in ("ルール", "年", "件数"):
            y.add_column(c, justify="right" if c == "件数" else "left")
        for rule_, yr, n in years:
            y.add_row(rule_, str(yr), f"{n:,}")
        out.print(y)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@retention_app.command("rules")
def retention_rules():
    """登録されている保存期間ルールの一覧."""
    t = Table(title="保存期間ルール")
    for c in ("ルール", "ファイル", "対象", "保存期間", "根拠"):
        t.add_column(c)
    for r in retention.load_rules().values():
        t.add_row(r.name, r.store, r.title, r.period, r.basis)
    out.print(t)


@retention_app.command("history")
def retention_history(data_dir: Path = DataDir, limit: int = typer.Option(30, "--limit", min=1)):
    """最近の実行記録 (件数のみ)."""
    registers = _registers(data_dir)
    try:
        rows = retention.history(registers, limit=limit)
    finally:
        registers.dispose()
    t = Table(title="保存期間による消去の記録")
    for c in ("開始 (UTC)", "ルール", "ドライラン", "結果", "基準", "対象件数", "消去件数"):
        t.add_column(c)
    for r in rows:
        t.add_row(str(r["started_at"])[:19], r["rule"], "はい" if r["dry_run"] else "", r["status"], r["cutoff"],
                  f"{r['eligible_count']:,}", f"{r['erased_count']:,}")
    out.print(t)


def stats_command(data_dir: Path = DataDir,
                  start: Optional[str] = typer.Option(None, "--from", help="開始年月 (YYYY-MM)"),
                  end: Optional[str] = typer.Option(None, "--to", help="終了年月 (YYYY-MM)"),
                  fiscal_year: Optional[int] = typer.Option(None, "--fiscal-year", help="年度 (4月〜翌3月)"),
                  months: int = typer.Option(12, "--months", min=1, max=240, help="直近の月数 (既定 12)"),
                  csv_dir: Optional[Path] = typer.Option(None, "--csv", help="CSV の出力先ディレクトリ"),
                  svg_dir: Optional[Path] = typer.Option(None, "--svg", help="グラフ (SVG) の出力先ディレクトリ")):
    """統計 (A9): 更新件数 (異動事由・市町村・月別)、提供件数、開示件数、整合性確認 — 件数のみ."""
    registers = _registers(data_dir)
    try:
        if fiscal_year is not None:
            period = Period.fiscal_year(fiscal_year)
        elif start or end:
            period = Period(start or end, end or start)
        else:
            period = Period.last_months(months)
        tables = collect(registers, period)
        for v in stats_report.views(tables, period):
            t = Table(title=f"{v.title}  {period.label()}")
            for i, c in enumerate(v.columns):
                t.add_column(c, justify="left" if i == 0 or c in ("市町村", "市町村コード", "ファイル", "異動事由") else "right")
            for r in v.rows:
                t.add_row(*[f"{x:,}" if isinstance(x, int) else str(x) for x in r])
            out.print(t)
            if v.note:
                out.print(f"  {v.title}: {v.note}")
        written = stats_report.write_files(tables, period, csv_dir=csv_dir, svg_dir=svg_dir)
    except JukinetError as e:
        fail(e)
    finally:
        registers.dispose()
    for p in written:
        console.print(f"出力: {p}")
