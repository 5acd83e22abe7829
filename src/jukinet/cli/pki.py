"""``jukinet pki revoke | reissue | crl``: revocation with the development CA (U1, U6; ADR 0030).

Serials, dates, reasons and peer identities (市町村コード, roles) only — no personal data.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from jukinet import wareki
from jukinet.config import DEFAULT_DATA_DIR, Config
from jukinet.errors import JukinetError
from jukinet.pki.crl import REASON_JA, DevCa

JST = timezone(timedelta(hours=9))
console = Console(stderr=True)
DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="データディレクトリ", show_default=True)
Municipality = typer.Option(None, "--municipality", help="市町村CSの全国地方公共団体コード")
National = typer.Option(False, "--national", help="全国サーバの証明書")
NationalFuhyo = typer.Option(False, "--national-fuhyo", help="附票全国サーバの証明書")
pki_app = typer.Typer(help="証明書の失効・再発行と証明書失効リスト (開発用認証局)", no_args_is_help=True)


def _ca(data_dir: Path):
    try:
        return DevCa(Config.load(data_dir))
    except JukinetError as e:
        _fail(e)


def _fail(e: JukinetError):
    console.print(f"[red]{e.code}[/red]: {e.message}")
    raise typer.Exit(2)


def _target(municipality: Optional[str], national: bool, national_fuhyo: bool) -> str:
    chosen = [t for t, on in ((municipality, municipality is not None), ("national", national),
                              ("national-fuhyo", national_fuhyo)) if on]
    if len(chosen) != 1:
        _fail(JukinetError("TARGET_REQUIRED", "--municipality / --national / --national-fuhyo のいずれか一つを指定してください。"))
    return chosen[0]


def _when(d) -> str:
    local = d.astimezone(JST)
    return f"{wareki.to_wareki(local.date())} {local:%H:%M} ({d:%Y-%m-%dT%H:%MZ})"


@pki_app.command("revoke")
def revoke(data_dir: Path = DataDir, municipality: Optional[str] = Municipality,
           serial: Optional[str] = typer.Option(None, "--serial", help="証明書のシリアル番号 (16進)"),
           national: bool = National, national_fuhyo: bool = NationalFuhyo,
           reason: str = typer.Option("unspecified", "--reason",
                                      help="key_compromise | affiliation_changed | superseded | "
                                           "cessation_of_operation | unspecified")):
    """証明書を失効させ、署名した証明書失効リスト (pki/crl.pem) を発行する (稼働中のサーバは数秒で読み直す)."""
    ca = _ca(data_dir)
    try:
        if serial is not None:
            if municipality or national or national_fuhyo:
                _fail(JukinetError("TARGET_REQUIRED", "--serial は単独で指定してください。"))
            try:
                n = int(serial.replace(":", ""), 16)
            except ValueError:
                _fail(JukinetError("SERIAL_INVALID", "シリアル番号は16進数で指定してください。", field="serial"))
            entry = ca.revoke_serial(n, reason)
        else:
            entry = ca.revoke(_target(municipality, national, national_fuhyo), reason)
    except JukinetError as e:
        _fail(e)
    console.print(f"失効: シリアル {entry.serial_hex} ({entry.identity or '不明'}) 理由 {REASON_JA[entry.reason]} — "
                  f"{ca.crl_path}")


@pki_app.command("reissue")
def reissue(data_dir: Path = DataDir, municipality: Optional[str] = Municipality, national: bool = National,
            national_fuhyo: bool = NationalFuhyo):
    """新しい鍵と証明書を発行する (旧証明書は未失効なら「証明書の更新」で失効させる)."""
    ca = _ca(data_dir)
    target = _target(municipality, national, national_fuhyo)
    config = ca.config
    try:
        cert = ca.reissue(target, hosts=sorted({config.national.host, "127.0.0.1", "localhost"}))
    except JukinetError as e:
        _fail(e)
    console.print(f"再発行: {target} シリアル {format(cert.serial_number, 'X')} 有効期限 "
                  f"{_when(cert.not_valid_after_utc)} — {ca.cert_path(target)}")


@pki_app.command("crl")
def show_crl(data_dir: Path = DataDir,
             renew: bool = typer.Option(False, "--renew", help="内容を変えずに署名し直す (次回更新日を延ばす)")):
    """証明書失効リストを表示する (シリアル・失効日時・理由。個人情報は含まない)."""
    ca = _ca(data_dir)
    try:
        crl = ca.publish() if renew else ca.current()
        entries = ca.entries()
    except JukinetError as e:
        _fail(e)
    if crl is None:
        _fail(JukinetError("CRL_MISSING", "証明書失効リストがありません。"))
    out = Console()
    out.print(f"発行者: {crl.issuer.rfc4514_string()}")
    out.print(f"発行日時: {_when(crl.last_update_utc)}  次回更新: {_when(crl.next_update_utc)}")
    table = Table(title=f"失効した証明書 ({len(entries)} 件) — {ca.crl_path}")
    for col in ("シリアル番号", "通信相手", "失効日時", "理由"):
        table.add_column(col, no_wrap=col == "シリアル番号")
    for e in entries:
        table.add_row(e.serial_hex, e.identity or "-", _when(e.revoked_at), REASON_JA[e.reason])
    out.print(table)
