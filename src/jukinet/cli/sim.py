"""``jukinet sim …`` (the simulated peers) and ``jukinet outbox`` (the standalone outbox worker)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from jukinet import codes
from jukinet import geo
from jukinet.cli.common import DataDir, console, fail, installation, load_config, open_installation
from jukinet.errors import JukinetError
from jukinet.outbox.worker import outbox_counts
from jukinet.server import ensure_pki
from jukinet.sim.cs import CsClient, EventGenerator, ReportInbox, read_jsonl, receive_reports
from jukinet.sim.national import dump, start_national

sim_app = typer.Typer(help="模擬装置: 全国サーバ・附票全国サーバ・市町村CS", no_args_is_help=True)


def _out(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@sim_app.command("national")
def national(data_dir: Path = DataDir,
             synthetic: int = typer.Option(2000, "--synthetic", min=0, help="他都道府県の合成住民数 (照会用)")):
    """全国サーバ・附票全国サーバの模擬装置を起動する (mTLS; Ctrl-C で終了)."""
    config = load_config(data_dir)
    ensure_pki(config)
    running = start_national(config, synthetic=synthetic)
    h = config.national.host
    console.print(f"全国サーバ (模擬): https://{h}:{config.national.port}/national/v1/health")
    console.print(f"附票全国サーバ (模擬): https://{h}:{config.national.fuhyo_port}/national/v1/health")
    console.print(f"受信内容: jukinet sim national-dump --data-dir {data_dir}   終了: Ctrl-C")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):   # also when started in the background (SIGINT ignored)
        signal.signal(sig, lambda *_: stop.set())
    try:
        while all(t.thread.is_alive() for t, _ in running) and not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for t, store in running:
            t.stop()
            store.close()
    console.print("停止しました。")


@sim_app.command("national-dump")
def national_dump(data_dir: Path = DataDir,
                  register: Optional[str] = typer.Option(None, "--register", help="juki | fuhyo (省略時は両方)")):
    """全国サーバ模擬装置が受信した通知を受信順に1行1 JSON で出力する."""
    if register not in (None, "juki", "fuhyo"):
        console.print("[red]REGISTER_UNKNOWN[/red]: --register は juki または fuhyo を指定してください。")
        raise typer.Exit(2)
    config = load_config(data_dir)
    for row in dump(config, register):
        _out(row)


@sim_app.command("cs")
def cs(data_dir: Path = DataDir,
       municipality: str = typer.Option(..., "--municipality", help="市町村コード (6桁)"),
       send: Optional[Path] = typer.Option(None, "--send", help="送信する通知 (JSON Lines)"),
       events: Optional[int] = typer.Option(None, "--events", min=1, help="生成して送信する異動の件数"),
       rate: float = typer.Option(0.0, "--rate", min=0.0, help="毎秒の送信件数 (0: 制限なし)"),
       batch: int = typer.Option(1, "--batch", min=1, max=1000, help="一括送信の件数 (--events のとき)"),
       seed: Optional[int] = typer.Option(None, "--seed", help="乱数シード")):
    """市町村CSの模擬装置: 通知を実際の CS 通信路 (mTLS) で送り、1通知1行の結果を出力する."""
    config = load_config(data_dir)
    pref = geo.prefecture(config.prefecture_code)
    if not codes.is_valid_lg_code(municipality) or municipality not in pref:
        console.print(f"[red]MUNICIPALITY_UNKNOWN[/red]: {pref.name}の市区町村コードを指定してください。")
        raise typer.Exit(2)
    if (send is None) == (events is None):
        console.print("[red]USAGE[/red]: --send FILE か --events N のどちらか一方を指定してください。")
        raise typer.Exit(2)
    client = CsClient(config, municipality)
    interval = 1.0 / rate if rate > 0 else 0.0
    answered = total = 0
    try:
        if send is not None:
            if not send.exists():
                console.print("[red]FILE_NOT_FOUND[/red]: 送信ファイルがありません。")
                raise typer.Exit(2)
            if not send.is_file():
                console.print("[red]FILE_UNREADABLE[/red]: 送信ファイルを読み取れません (権限・種類を確認してください)。")
                raise typer.Exit(2)
            try:
                for n in read_jsonl(send):
                    total += 1
                    try:
                        _out(client.send(n))
                        answered += 1
                    except Exception as e:  # noqa: BLE001 - the line is not answered
                        _out({"notification_id": n.get("notification_id") if isinstance(n, dict) else None,
                              "status": "rejected",
                              "error": {"code": "NO_ANSWER", "message": f"応答がありません ({type(e).__name__})。"}})
                    if interval:
                        time.sleep(interval)
            except JukinetError as e:   # the file itself (unreadable): a coded exit
                fail(e)
        else:
            with installation(config) as inst:
                gen = EventGenerator.from_registers(inst.registers, municipality, seed=seed)
            left = events
            while left > 0:
                chunk = gen.take(min(batch, left))
                left -= len(chunk)
                total += len(chunk)
                try:
                    lines = client.send_batch(chunk) if batch > 1 else [client.send(chunk[0])]
                    answered += len(lines)
                except Exception as e:  # noqa: BLE001
                    lines = [{"notification_id": c["notification_id"], "status": "rejected",
                              "error": {"code": "NO_ANSWER", "message": f"応答がありません ({type(e).__name__})。"}}
                             for c in chunk]
                for line in lines:
                    _out(line)
                if interval:
                    time.sleep(interval * len(chunk))
    finally:
        client.close()
    raise typer.Exit(0 if answered == total else 1)


@sim_app.command("cs-reports")
def cs_reports(data_dir: Path = DataDir,
               municipality: str = typer.Option(..., "--municipality", help="市町村コード (6桁)"),
               no_ack: bool = typer.Option(False, "--no-ack", help="受領確認を送らない (再送の確認用)"),
               show: bool = typer.Option(False, "--show", help="受信済みの通報を表示するだけ (通信しない)")):
    """市町村CSの模擬装置: 都道府県からの通報 (住基法第12条の5) を CS 通信路 (mTLS) で受け取り、受領確認する.

    1通報1行: ``{"report_id", "received": "new"|"again", "ack": "acknowledged"|"duplicate"|"rejected"|null}``;
    受信した通報は ``DIR/sim/cs-reports/CODE.jsonl`` に保存される (report_id で重複排除)."""
    config = load_config(data_dir)
    pref = geo.prefecture(config.prefecture_code)
    if not codes.is_valid_lg_code(municipality) or municipality not in pref:
        console.print(f"[red]MUNICIPALITY_UNKNOWN[/red]: {pref.name}の市区町村コードを指定してください。")
        raise typer.Exit(2)
    inbox = ReportInbox(config, municipality)
    if show:
        for rep in inbox.reports():
            _out(rep)
        raise typer.Exit(0)
    client = CsClient(config, municipality)
    try:
        try:
            lines = receive_reports(client, inbox, ack=not no_ack)
        except JukinetError as e:
            fail(e)
        except Exception as e:  # noqa: BLE001 - no answer: nothing is lost, the prefecture keeps the 通報
            console.print(f"[red]NO_ANSWER[/red]: 都道府県サーバから応答がありません ({type(e).__name__})。")
            raise typer.Exit(1)
    finally:
        client.close()
    for line in lines:
        _out(line)
    raise typer.Exit(0 if all(no_ack or line["ack"] in ("acknowledged", "duplicate") for line in lines) else 1)


def outbox(data_dir: Path = DataDir,
           once: bool = typer.Option(False, "--once", help="未送信分を送り終えたら終了する")):
    """送信待ち (outbox) を全国サーバ・附票全国サーバへ送る (serve の外で単独実行)."""
    inst = open_installation(data_dir)
    worker = inst.outbox_worker()
    try:
        if once:
            worker.drain(timeout=3600)
        else:
            worker.run()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        for reg in ("juki", "fuhyo"):
            console.print(f"{reg}: {outbox_counts(inst.registers, reg)}")
        inst.close()
