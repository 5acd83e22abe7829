"""``jukinet catalogue …``, ``jukinet provision …`` and ``jukinet query …`` (事務2, 事務4).

    jukinet catalogue load FILE [--operator ID]      # replace the catalogue by a file (P1), every change logged
    jukinet catalogue show | export [--out FILE]
    jukinet provision batch --operator ID --requester R --affair A --in FILE [--out FILE.jkm]
                            [--encoding auto|utf-8|cp932] [--approval AP…] [--purpose TEXT] [--check]
    jukinet provision decrypt FILE.jkm --out FILE.csv     # password: $JUKINET_MEDIA_PASSWORD or prompt
    jukinet provision approval request|decide|list …      # A5
    jukinet provision media | records
    jukinet query national --operator ID --register juki|fuhyo --purpose P < keys.json   # N1

The commands run on the server console (操作端末ID ``CONSOLE``) as an operator of the roster, who
must hold the rights the screen would ask for (ADR 0018). Personal data never goes on the command
line: conditions come in a file, query keys on standard input.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from jukinet.cli.common import DataDir, console, fail, installation, open_installation
from jukinet import text as textrule
from jukinet import wareki
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.provision import access, approvals
from jukinet.provision import catalogue as C
from jukinet.provision.batch import BatchCommand, BatchService
from jukinet.provision.media import decrypt_file
from jukinet.provision.records import recent
from jukinet.provision.service import NationalQueryCommand
from jukinet.security.oplog import Actor
from jukinet.store.tables_provision import provision_media as t

TERMINAL = "CONSOLE"

catalogue_app = typer.Typer(help="提供先・移転先と事務のカタログ (事務2)", no_args_is_help=True)
provision_app = typer.Typer(help="提供・移転 (事務2): 一括提供・媒体・承認・記録", no_args_is_help=True)
approval_app = typer.Typer(help="一括提供の事前承認 (管理責任者)", no_args_is_help=True)
query_app = typer.Typer(help="全国サーバ・附票全国サーバへの照会 (事務4)", no_args_is_help=True)
provision_app.add_typer(approval_app, name="approval")


def _line(text: str) -> None:
    """Plain output lines (tab-separated where tabular), for people and scripts alike."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Ctx:
    """The installation of the data directory (:mod:`jukinet.bootstrap`) and its services."""

    def __init__(self, data_dir: Path):
        self.inst = open_installation(data_dir)
        self.config = self.inst.config
        self.registers = self.inst.registers
        self.sec = self.inst.security
        self.svc = self.inst.provision

    def operator(self, operator_id: Optional[str]):
        op = self.sec.get_operator(operator_id) if operator_id else None
        if op is None or op.status != "active":
            self.close()
            fail(JukinetError("OPERATOR_INACTIVE", "有効な操作者IDを --operator で指定してください。"))
        return op

    def close(self) -> None:
        self.inst.close()


# ------------------------------------------------------------------ catalogue

def load_default_catalogue(config: Config) -> int:
    """The shipped catalogue unless the installation has one (returns changes; ``jukinet init``)."""
    with installation(config) as inst:
        return inst.ensure_default_catalogue()


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise JukinetError("FILE_UNREADABLE", "ファイルを読み取れません (権限・種類を確認してください)。",
                           field="file") from None


@catalogue_app.command("load")
def catalogue_load(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="カタログ (TOML)"),
                   operator: Optional[str] = typer.Option(None, "--operator", help="システム管理者の操作者ID"),
                   data_dir: Path = DataDir):
    """カタログファイルを読み込み、登録内容を置き換える (ないものは廃止)。変更はすべて記録する."""
    ctx = _Ctx(data_dir)
    try:
        if operator:
            op = ctx.operator(operator)
            if not access.can(op, "catalogue"):
                fail(JukinetError("FORBIDDEN", "この操作を行う権限がありません。"))
            actor = Actor(op.operator_id, TERMINAL)
        else:
            actor = Actor(f"console:{getpass.getuser()}"[:32], TERMINAL)
        changes = C.load_file(ctx.registers, ctx.svc.oplog, _read_file(file), actor=actor)
    except JukinetError as e:
        fail(e)
    finally:
        ctx.close()
    for ch in changes:
        _line(f"{ch.action}\t{ch.entity}\t{ch.code}")
    console.print(f"カタログを読み込みました: 変更 {len(changes)} 件")


@catalogue_app.command("show")
def catalogue_show(data_dir: Path = DataDir):
    """登録されている提供先・移転先と事務を表示する."""
    ctx = _Ctx(data_dir)
    try:
        spec = ctx.svc.catalogue()
    finally:
        ctx.close()
    _line("# 提供先・移転先: コード, 名称, 区分, 状態")
    for r in sorted(spec.requesters.values(), key=lambda r: r.code):
        _line(f"{r.code}\t{r.name}\t{r.kind_label}\t{'有効' if r.status == 'active' else '廃止'}")
    _line("# 事務: コード, 名称, 根拠区分, ファイル, 個人番号, 提供先・移転先, 状態")
    for a in sorted(spec.affairs.values(), key=lambda a: a.code):
        _line(f"{a.code}\t{a.name}\t{a.source}\t{a.register}\t{'可' if a.kojin_bango_allowed else '不可'}\t"
                  f"{','.join(spec.requesters_of(a.code))}\t{'有効' if a.status == 'active' else '廃止'}")


@catalogue_app.command("export")
def catalogue_export(out_file: Optional[Path] = typer.Option(None, "--out", help="出力先 (省略時は標準出力)"),
                     data_dir: Path = DataDir):
    """登録されているカタログをファイル (TOML) に書き出す (編集して load で戻せる)."""
    ctx = _Ctx(data_dir)
    try:
        text = C.to_toml(ctx.svc.catalogue())
    finally:
        ctx.close()
    if out_file:
        out_file.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


# ------------------------------------------------------------------ batch provision

@provision_app.command("batch")
def provision_batch(operator: str = typer.Option(..., "--operator", help="操作者ID"),
                    requester: str = typer.Option(..., "--requester", help="提供先・移転先コード"),
                    affair: str = typer.Option(..., "--affair", help="事務コード"),
                    input_file: Path = typer.Option(..., "--in", exists=True, dir_okay=False, help="照会条件ファイル (CSV)"),
                    out_file: Optional[Path] = typer.Option(None, "--out", help="結果ファイル (省略時は DIR/media/)"),
                    encoding: str = typer.Option("auto", "--encoding", help="auto | utf-8 | cp932"),
                    approval: Optional[str] = typer.Option(None, "--approval", help="管理責任者の承認番号"),
                    purpose: Optional[str] = typer.Option(None, "--purpose", help="利用目的 (個人情報を書かない)"),
                    case_ref: Optional[str] = typer.Option(None, "--case-ref", help="案件番号"),
                    check: bool = typer.Option(False, "--check", help="確認のみ (照会しない)"),
                    data_dir: Path = DataDir):
    """一括提供: 照会条件ファイルから暗号化した結果ファイルを作成し、媒体管理簿に記録する."""
    ctx = _Ctx(data_dir)
    op = ctx.operator(operator)
    cmd = BatchCommand(requester, affair, input_file, out_file, encoding, approval, purpose, case_ref=case_ref)
    b = BatchService(ctx.svc)
    try:
        if check:
            r = b.check(cmd, op, TERMINAL, channel="console")
            _line(f"件数 {r.rows:,} / 文字コード {r.encoding} / 列 {','.join(r.columns)} / 形式エラー {r.errors:,}"
                      + (" / 管理責任者の事前承認が必要" if r.approval_required else ""))
            for code, n in sorted(r.error_codes.items()):
                _line(f"  {code}: {n:,}")
            return
        with Progress(TextColumn("一括提供"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("", total=None)
            res = b.run(cmd, op, TERMINAL, channel="console",
                        progress=lambda done, total: bar.update(task, completed=done, total=total))
    except JukinetError as e:
        fail(e)
    finally:
        ctx.close()
    _line(f"媒体ID: {res.media_id}")
    _line(f"結果ファイル: {res.output_path} ({res.size:,} バイト, SHA-256 {res.sha256})")
    _line(f"件数: {res.rows:,} (提供 {res.provided:,} / 該当なし {res.not_found:,} / 複数該当 {res.ambiguous:,} / "
              f"エラー {res.errors:,} / 照会失敗 {res.failed:,}; うち全国サーバ {res.national:,})")
    if res.number_refused:
        _line(f"個人番号を提供しなかった行 (国外転出者でない者, KOJIN_BANGO_NOT_ABROAD): {res.number_refused:,}")
    _line(f"パスワード (この場限り表示。媒体とは別に手渡すこと): {res.password}")


@provision_app.command("decrypt")
def provision_decrypt(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="結果ファイル (.jkm)"),
                      out_file: Path = typer.Option(..., "--out", help="復号した CSV の出力先")):
    """結果ファイルを復号する (パスワードは環境変数 JUKINET_MEDIA_PASSWORD か入力)."""
    password = os.environ.get("JUKINET_MEDIA_PASSWORD") or typer.prompt("パスワード", hide_input=True)
    tmp = out_file.with_name(out_file.name + ".part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(file, "rb") as src, os.fdopen(fd, "wb") as dst:
            n = decrypt_file(src, dst, password)
        os.replace(tmp, out_file)
    except JukinetError as e:
        tmp.unlink(missing_ok=True)
        fail(e)
    console.print(f"復号しました: {out_file} ({n:,} バイト)")


@provision_app.command("media")
def provision_media(limit: int = typer.Option(50, "--limit"), data_dir: Path = DataDir):
    """媒体管理簿 (一括提供の出力記録) を表示する."""
    ctx = _Ctx(data_dir)
    try:
        with ctx.registers.admin_tx(write=False) as conn:
            rows = conn.execute(select(t).order_by(t.c.created_at.desc()).limit(limit)).all()
    finally:
        ctx.close()
    for r in rows:
        _line(f"{r.media_id}\t{r.created_at}\t{r.operator_id}\t{r.requester_code}\t{r.affair_code}\t{r.status}\t"
                  f"{r.rows_total}\t{r.rows_provided}\t{r.sha256 or ''}")


@provision_app.command("records")
def provision_records(register: str = typer.Option("juki", "--register"), limit: int = typer.Option(50, "--limit"),
                      data_dir: Path = DataDir):
    """提供・移転の記録 (直近) を表示する (個人情報は含まない)."""
    ctx = _Ctx(data_dir)
    try:
        with ctx.registers.uow(register, write=False) as uow:
            rows = recent(uow.conn, register, limit=limit)
    finally:
        ctx.close()
    for e in rows:
        _line(f"{e.record_id}\t{e.at:%Y-%m-%d %H:%M:%S}\t{e.operator_id}\t{e.kind_label}\t{e.requester_code or ''}\t"
                  f"{e.affair_code or ''}\t{e.outcome_label}\t{e.reason_code or ''}\t{','.join(e.items)}")


@approval_app.command("request")
def approval_request(operator: str = typer.Option(..., "--operator"), requester: str = typer.Option(..., "--requester"),
                     affair: str = typer.Option(..., "--affair"), rows: int = typer.Option(..., "--rows"),
                     purpose: str = typer.Option(..., "--purpose"), days: Optional[int] = typer.Option(None, "--days"),
                     data_dir: Path = DataDir):
    """一括提供の事前承認を申請する (業務担当者)."""
    ctx = _Ctx(data_dir)
    op = ctx.operator(operator)
    try:
        a = approvals.request(ctx.registers, ctx.svc.oplog, ctx.config, op, TERMINAL, requester_code=requester,
                              affair_code=affair, max_rows=rows, purpose=purpose, days=days)
    except JukinetError as e:
        fail(e)
    finally:
        ctx.close()
    _line(f"申請しました: {a.approval_id} (有効期限 {wareki.to_wareki_time(a.expires_at, seconds=False)} 日本時間)")


@approval_app.command("decide")
def approval_decide(operator: str = typer.Option(..., "--operator"), approval_id: str = typer.Option(..., "--id"),
                    approve: bool = typer.Option(..., "--approve/--reject"), data_dir: Path = DataDir):
    """事前承認の申請を承認・却下する (管理責任者)."""
    ctx = _Ctx(data_dir)
    op = ctx.operator(operator)
    try:
        a = approvals.decide(ctx.registers, ctx.svc.oplog, op, TERMINAL, approval_id, approve=approve)
    except JukinetError as e:
        fail(e)
    finally:
        ctx.close()
    _line(f"{a.approval_id}: {approvals.STATUS[a.status]}")


@approval_app.command("list")
def approval_list(data_dir: Path = DataDir):
    """事前承認の一覧."""
    ctx = _Ctx(data_dir)
    try:
        items = approvals.listing(ctx.registers)
    finally:
        ctx.close()
    now = datetime.now(timezone.utc)
    for a in items:
        _line(f"{a.approval_id}\t{a.status_label(now)}\t{a.requester_code}\t{a.affair_code}\t{a.max_rows}\t"
                  f"{a.requested_by}\t{a.decided_by or ''}\t{a.expires_at:%Y-%m-%d}")


# ------------------------------------------------------------------ national query (事務4)

def _stdin_keys() -> dict:
    """The query keys on standard input: a UTF-8 JSON object of strings (or numbers), every string
    storable (Q2) — else a coded exit, never a traceback."""
    stream = getattr(sys.stdin, "buffer", None)
    raw = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    form = JukinetError("QUERY_FORMAT", "照会キーを JSON オブジェクトで標準入力に与えてください。")
    try:
        keys = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError, RecursionError):
        fail(form)
    if not isinstance(keys, dict) or not all(v is None or isinstance(v, (str, int)) and not isinstance(v, bool)
                                             for v in keys.values()):
        fail(form)
    if textrule.find(keys) is not None:
        fail(textrule.TextNotEncodable(textrule.CODE, textrule.message("照会キー"), field="keys"))
    return keys


@query_app.command("national")
def query_national(operator: str = typer.Option(..., "--operator", help="操作者ID"),
                   register: str = typer.Option("juki", "--register", help="juki (全国サーバ) | fuhyo (附票全国サーバ)"),
                   purpose: str = typer.Option(..., "--purpose", help="照会の目的 (コード)"),
                   case_ref: Optional[str] = typer.Option(None, "--case-ref"),
                   reveal_kojin_bango: bool = typer.Option(
                       False, "--reveal-kojin-bango",
                       help="個人番号を全桁で出力する (目的が個人番号を必要とする場合のみ・記録される)。既定は下4桁のみ"),
                   data_dir: Path = DataDir):
    """全国サーバへ照会する。照会キーは標準入力の JSON ({"juminhyo_code": …} | {"kojin_bango": …} |
    {"name": …, "birth_date": …[, "sex", "address"]}); 結果は1行1 JSON で出力する."""
    keys = _stdin_keys()
    allowed = {"juminhyo_code", "kojin_bango", "name", "birth_date", "sex", "address"}
    if set(keys) - allowed:
        fail(JukinetError("QUERY_FORMAT", "照会キーに規定外の項目があります。"))
    ctx = _Ctx(data_dir)
    op = ctx.operator(operator)
    try:
        res = ctx.svc.national_query(NationalQueryCommand(register=register, purpose_code=purpose, case_ref=case_ref,
                                                          reveal_kojin_bango=reveal_kojin_bango,
                                                          **{k: (str(v) if v is not None else None)
                                                             for k, v in keys.items()}),
                                     op, TERMINAL, channel="console")
    except JukinetError as e:
        fail(e)
    finally:
        ctx.close()
    for r in res.results:
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    console.print(res.message)
    if res.outcome == "failed":
        raise typer.Exit(3)
