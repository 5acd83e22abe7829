"""``jukinet reconcile`` — run a consistency check from a file, list checks, write a result document.

    jukinet reconcile --municipality 242012 --register juki SNAPSHOT.jsonl [--out RESULT.jsonl]
    jukinet reconcile --status [--register juki]          # last check per municipality, due or not
    jukinet reconcile --result RUN_ID [--register juki] [--out RESULT.jsonl]

The file is read as the CS's snapshot (``jukinet.snapshot/1``, ADR 0012); the municipality given
on the command line plays the part the client certificate plays on the CS channel. Exit 0 when the
check completed (differences or not), 2 when the snapshot was refused.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Optional

import httpx
import typer
from rich.table import Table

from jukinet.cli.common import DataDir, console, open_installation
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet import geo
from jukinet.reconcile import service
from jukinet.reconcile.service import due_status, known_municipalities
from jukinet.reconcile.simulate import build_snapshot
from jukinet.reconcile.snapshot import ITEM_LABELS
from jukinet.sim.cs import CsClient

KIND_LABELS = {"matched": "一致", "only_in_snapshot": "CSのみに存在", "only_on_server": "都道府県サーバのみに存在",
               "differs": "項目相違", "pending": "確認保留（基準時刻後の更新）"}


def _fail(e: JukinetError) -> None:
    """``code: message (N行目)``: a refused snapshot names the line (never its content)."""
    extra = f" ({e.line}行目)" if getattr(e, "line", None) and f"{e.line}行目" not in e.message else ""
    console.print(f"[red]{e.code}[/red]: {e.message}{extra}")
    raise typer.Exit(2)


def _summary(res) -> None:
    t = Table(title=f"整合性確認 #{res.run_id} {res.register} {res.municipality_code} ({res.status})")
    t.add_column("区分")
    t.add_column("件数", justify="right")
    t.add_row("CS 送信件数", f"{res.snapshot_count:,}")
    t.add_row("都道府県サーバ件数", f"{res.server_count:,}")
    for k in ("matched", "only_in_snapshot", "only_on_server", "differs", "pending"):
        t.add_row(KIND_LABELS[k], f"{getattr(res, k):,}")
    for item, n in res.item_counts.items():
        t.add_row(f"  相違項目: {ITEM_LABELS.get(item, item)}", f"{n:,}")
    console.print(t)


def reconcile_command(
        file: Optional[Path] = typer.Argument(None, help="整合性確認用データ (jukinet.snapshot/1, JSON Lines)"),
        municipality: Optional[str] = typer.Option(None, "--municipality", help="送信元の市町村コード (6桁)"),
        register: str = typer.Option("juki", "--register", help="juki (本人確認情報) | fuhyo (附票本人確認情報)"),
        out: Optional[Path] = typer.Option(None, "--out", help="結果文書 (JSON Lines) の出力先 (- は標準出力)"),
        status: bool = typer.Option(False, "--status", help="市町村ごとの最終確認日と要否を表示"),
        result: Optional[int] = typer.Option(None, "--result", help="指定した確認番号の結果文書を出力"),
        data_dir: Path = DataDir):
    """整合性確認 (事務6): 市町村CSの整合性確認用データと都道府県のファイルを照合する."""
    inst = open_installation(data_dir)
    config, registers = inst.config, inst.registers
    try:
        if status:
            _status(registers, config, register)
            return
        if result is not None:
            _write(service.result_lines(registers, register, result), out or Path("-"))
            return
        if file is None or municipality is None:
            console.print("[red]USAGE[/red]: FILE と --municipality を指定してください (または --status / --result)。")
            raise typer.Exit(2)
        if not file.is_file():
            console.print("[red]FILE_NOT_FOUND[/red]: 整合性確認用データのファイルがありません。")
            raise typer.Exit(2)
        with open(file, "rb") as f:
            res = service.run_check(registers, register, municipality, f, trigger="cli")
        _summary(res)
        if out is not None:
            _write(service.result_lines(registers, register, res.run_id), out)
    except JukinetError as e:
        _fail(e)
    finally:
        inst.close()


def _write(lines, out: Path) -> None:
    if str(out) == "-":
        for ln in lines:
            sys.stdout.buffer.write(ln)
        sys.stdout.flush()
        return
    with open(out, "wb") as f:
        for ln in lines:
            f.write(ln)
    console.print(f"結果文書: {out}")


def _status(registers, config: Config, register: str) -> None:
    rows = due_status(registers, register, known_municipalities(registers, register),
                      interval_days=config.reconcile.interval_days)
    t = Table(title=f"整合性確認の実施状況 ({register}; 周期 {config.reconcile.interval_days} 日)")
    for c in ("市町村コード", "市町村", "最終確認 (UTC)", "確認番号", "要否"):
        t.add_column(c)
    for d in rows:
        t.add_row(d.municipality_code, municipality_name(d.municipality_code),
                  d.last_completed.strftime("%Y-%m-%d %H:%M") if d.last_completed else "—",
                  str(d.last_run_id or "—"), "[yellow]要[/yellow]" if d.due else "済")
    console.print(t)


def municipality_name(code: str) -> str:
    m = geo.find(code)
    return m.name if m else code


def cs_snapshot_command(
        municipality: str = typer.Option(..., "--municipality", help="模擬する市町村CSの市町村コード"),
        register: str = typer.Option("juki", "--register", help="juki | fuhyo"),
        inject_differences: int = typer.Option(0, "--inject-differences", min=0, help="相違を N 件混ぜる"),
        seed: int = typer.Option(0, "--seed", help="相違の選び方の乱数シード"),
        out: Optional[Path] = typer.Option(None, "--out", help="送信せず、整合性確認用データをこのファイルに書く"),
        result_out: Optional[Path] = typer.Option(None, "--result-out", help="受け取った結果文書の保存先"),
        data_dir: Path = DataDir):
    """市町村CS (模擬) として整合性確認用データを作り、相互認証の CS 回線で送信する (事務6).

    データは都道府県のファイルから作る (模擬: 一致するはずの CS のファイル) — 相違を混ぜる場合は
    住所の変更・欠落・架空の人を順に混ぜる。結果文書のヘッダ (件数) を JSON で標準出力に書く。"""
    inst = open_installation(data_dir)
    config, registers = inst.config, inst.registers
    try:
        with tempfile.TemporaryFile() as f:
            injected = build_snapshot(registers, register, municipality, f, inject=inject_differences, seed=seed,
                                      snapshot_id=f"{municipality}-sim-{seed}")
            console.print(f"整合性確認用データ: {injected['count']:,} 人 (混ぜた相違: 項目相違 {injected['differs']}, "
                          f"CSに無い {injected['only_on_server']}, CSのみ {injected['only_in_snapshot']})")
            if out is not None:
                f.seek(0)
                with open(out, "wb") as o:
                    while b := f.read(1 << 20):
                        o.write(b)
                console.print(f"書き出しました: {out}")
                return
            f.seek(0)
            _send(config, municipality, register, f, result_out)
    except JukinetError as e:
        _fail(e)
    finally:
        inst.close()


def _send(config: Config, municipality: str, register: str, f, result_out: Optional[Path]) -> None:
    client = CsClient(config, municipality, timeout=900.0)

    def body():
        while b := f.read(1 << 20):
            yield b

    try:
        with client.http.stream("POST", f"/cs/v1/consistency/{register}", content=body(),
                                headers={"content-type": "application/x-ndjson"}) as r:
            if r.status_code != 200:
                r.read()
                try:
                    err = r.json().get("error") or {}
                except ValueError:
                    err = {"code": f"HTTP_{r.status_code}", "message": "応答を解釈できません。"}
                sys.stdout.write(json.dumps({"status": "refused", "error": err}, ensure_ascii=False) + "\n")
                raise typer.Exit(2)
            lines = r.iter_lines()
            header = json.loads(next(lines))
            sink = open(result_out, "w", encoding="utf-8") if result_out else None
            try:
                if sink:
                    sink.write(json.dumps(header, ensure_ascii=False) + "\n")
                for ln in lines:
                    if sink:
                        sink.write(ln + "\n")
            finally:
                if sink:
                    sink.close()
    except httpx.TransportError:
        console.print("[red]CS_CHANNEL_UNAVAILABLE[/red]: 都道府県サーバに接続できません (jukinet serve は起動していますか)。")
        raise typer.Exit(2)
    finally:
        client.close()
    sys.stdout.write(json.dumps(header, ensure_ascii=False) + "\n")
