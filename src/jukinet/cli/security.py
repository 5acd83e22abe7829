"""``jukinet operator …``, ``jukinet terminal …`` and ``jukinet audit …`` (Typer sub-apps).

Thin: parse, call :class:`jukinet.security.service.Security` or the operation log, print.
"""

from __future__ import annotations

import getpass
import io
from pathlib import Path
from typing import Optional

import segno
import typer

from jukinet.cli.common import DataDir, console, open_installation
from jukinet.config import Config
from jukinet import labels
from jukinet.errors import JukinetError
from jukinet.security import roles as R
from jukinet.security.checkpoints import MISSING
from jukinet.security.oplog import Actor, verify_all

operator_app = typer.Typer(help="操作者 (operators): 初期システム管理者の登録など", no_args_is_help=True)
terminal_app = typer.Typer(help="操作端末 (terminals)", no_args_is_help=True)
audit_app = typer.Typer(help="操作ログの検証 (operation log)", no_args_is_help=True)
training_app = typer.Typer(help="セキュリティ研修の受講記録 (G1; ADR 0034)", no_args_is_help=True)
operator_app.add_typer(training_app, name="training")


def _open(data_dir: Path):
    """The installation's config, registers and operator service (closed with ``registers.dispose()``)."""
    inst = open_installation(data_dir)
    return inst.config, inst.registers, inst.security


def _base(config: Config) -> str:
    origins = list(config.security.origins) if hasattr(config, "security") else []
    return origins[0] if origins else f"http://localhost:{config.server.port}"


@operator_app.command("bootstrap")
def operator_bootstrap(name: str = typer.Option(..., "--name", help="システム管理者の氏名"),
                       operator_id: Optional[str] = typer.Option(None, "--id", help="操作者ID (省略時は自動)"),
                       terminal_name: str = typer.Option("代表端末1", "--terminal-name",
                                                         help="登録に使う操作端末の名前 (端末が未登録のとき作成)"),
                       training_course: str = typer.Option("住基ネット情報セキュリティ研修", "--training-course",
                                                           help="受講した研修名 (G1)"),
                       training_date: Optional[str] = typer.Option(
                           None, "--training-date", help="研修の受講日 YYYY-MM-DD (省略時は猶予期間内のみ利用可、ADR 0034)"),
                       data_dir: Path = DataDir):
    """最初のシステム管理者を登録し、一度だけ使える登録用リンクを表示する."""
    config, registers, sec = _open(data_dir)
    try:
        op, token = sec.bootstrap_admin(display_name=name, operator_id=operator_id, training_course=training_course,
                                        training_date=training_date)
        if training_date is None and config.security.training_required:
            typer.echo(f"注意: 研修の受講記録がありません。{config.security.bootstrap_training_grace_days} 日以内に "
                       f"`jukinet operator training add --operator {op.operator_id} --course … --date …` で記録してください。")
        base = _base(config)
        if not [t for t in sec.list_terminals() if t.status == "active"]:
            t, code = sec.add_terminal(Actor("bootstrap", None), terminal_name)
            typer.echo(f"操作端末 {t.terminal_id} ({t.name}) を登録しました。この端末のブラウザで開いてください:")
            typer.echo(f"  {base}/terminal/activate?code={code}")
        typer.echo(f"システム管理者 {op.operator_id} を登録しました。登録済みの操作端末で開き、指紋を登録してください"
                  f" (有効期限 {config.security.enrollment_hours} 時間、一度限り):")
        typer.echo(f"  {base}/enroll?token={token}")
    except JukinetError as e:
        console.print(f"[red]{e.code}[/red]: {e.message}")
        raise typer.Exit(2)
    finally:
        registers.dispose()


def qr_text(uri: str) -> str:
    """A QR code of ``uri`` drawn with block characters, for an authenticator app to scan from the terminal
    (segno: pure Python, no image library; ADR 0042)."""
    buf = io.StringIO()
    segno.make(uri, error="m").terminal(out=buf, compact=True, border=2)
    return buf.getvalue()


def role_screen_lines() -> list[str]:
    """Which role sees which screen (the same table as ``/help#roles`` and the README)."""
    out = []
    for role, screens in labels.role_screens().items():
        out.append(f"  {R.ROLES[role]} ({role}): " + "、".join(f"{name} {path}" for path, name in screens))
    return out


def signin_lines(operator_id: str, password: str, totp_uri: str, login_url: str, *,
                 terminal_link: Optional[str] = None, qr: bool = True) -> list[str]:
    """How to sign in with the password + one-time-password fallback, as printed by ``make demo`` and
    ``operator recover-admin --password``."""
    lines = []
    step = 1
    if terminal_link:
        lines += [f"{step}. このブラウザを操作端末として有効化する (一度限り・24時間有効):", f"     {terminal_link}"]
        step += 1
    lines += [f"{step}. 認証アプリ (Google Authenticator, FreeOTP, KeePassXC など) に次の QR コードか URI を登録する:"]
    if qr:
        lines += ["     " + row for row in qr_text(totp_uri).rstrip("\n").split("\n")]
    lines += [f"     {totp_uri}", f"{step + 1}. {login_url} を開き「パスワードとワンタイムパスワードでログイン」で入力する:",
              f"     操作者ID: {operator_id}", f"     パスワード: {password}",
              "     ワンタイムパスワード: 認証アプリに表示される6桁 (30秒ごとに変わる)"]
    return lines


@operator_app.command("list")
def operator_list(data_dir: Path = DataDir):
    """操作者名簿を表示する."""
    _, registers, sec = _open(data_dir)
    try:
        for o in sec.list_operators():
            typer.echo(f"{o.operator_id}\t{o.status}\t{'・'.join(R.ROLES[r] for r in o.roles)}\t"
                      f"{','.join(o.registers)}\t{','.join(o.affairs)}")
    finally:
        registers.dispose()


@operator_app.command("recover-admin")
def operator_recover_admin(operator: str = typer.Option(..., "--operator", help="認証手段を失ったシステム管理者のID"),
                           password: bool = typer.Option(False, "--password",
                                                         help="パスワード+ワンタイムパスワードの代替ログインも許可し、新しい組を表示する"),
                           yes: bool = typer.Option(False, "--yes", help="確認を省略する"),
                           data_dir: Path = DataDir):
    """認証手段を失ったシステム管理者を復旧する (サーバ上でのみ・操作ログに記録).

    データディレクトリ (鍵を含む) を読めるサーバ上の担当者だけが実行できる。失われた生体認証の登録を削除し、
    セッションを終了・ロックを解除して、新しい一度限りの登録用リンクを表示する."""
    config, registers, sec = _open(data_dir)
    try:
        if not yes and not typer.confirm(f"システム管理者 {operator} の生体認証の登録を削除し、新しい登録用リンクを発行します。"
                                         "よろしいですか", default=False):
            raise typer.Exit(1)
        op, token, grant = sec.recover_admin(operator, with_password=password, local_user=_local_user())
        base = _base(config)
        typer.echo(f"システム管理者 {op.operator_id} を復旧しました (操作ログ: 管理者の復旧)。"
                   f"登録済みの操作端末で開き、指紋を登録してください (有効期限 {config.security.enrollment_hours} 時間、一度限り):")
        typer.echo(f"  {base}/enroll?token={token}")
        link = None
        if not [t for t in sec.list_terminals() if t.status == "active"]:
            t, code = sec.add_terminal(Actor("recover", None), "代表端末 (復旧)")
            link = f"{base}/terminal/activate?code={code}"
        if grant is not None:
            typer.echo("生体認証を使えない端末では、代替ログインを使えます (この表示は一度限り):")
            for line in signin_lines(op.operator_id, grant.password, grant.totp_uri, f"{base}/login", terminal_link=link):
                typer.echo(line)
        elif link:
            typer.echo(f"有効な操作端末がありません。端末のブラウザで開いてください: {link}")
    except JukinetError as e:
        console.print(f"[red]{e.code}[/red]: {e.message}")
        raise typer.Exit(2)
    finally:
        registers.dispose()


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


@training_app.command("add")
def training_add(operator: str = typer.Option(..., "--operator", help="受講した操作者のID"),
                 course: str = typer.Option(..., "--course", help="研修名"),
                 date: str = typer.Option(..., "--date", help="受講日 YYYY-MM-DD (未来の日付は不可)"),
                 by: Optional[str] = typer.Option(None, "--by", help="記録する操作者のID (システム管理者・管理責任者)"),
                 data_dir: Path = DataDir):
    """研修の受講を記録する (操作ログに記録)."""
    _, registers, sec = _open(data_dir)
    try:
        recorder = None
        if by is not None:
            recorder = sec.get_operator(by)
            if recorder is None:
                raise JukinetError("OPERATOR_NOT_FOUND", "記録する操作者が見つかりません。")
        tid = sec.record_training(Actor(by or "cli", None), operator, course=course, taken_on=date, by=recorder)
        typer.echo(f"操作者 {operator} の研修の受講を記録しました (記録番号 {tid})。")
    except JukinetError as e:
        console.print(f"[red]{e.code}[/red]: {e.message}")
        raise typer.Exit(2)
    finally:
        registers.dispose()


@training_app.command("list")
def training_list(operator: Optional[str] = typer.Option(None, "--operator"), data_dir: Path = DataDir):
    """研修の受講状況 (今年度) と受講記録を表示する."""
    _, registers, sec = _open(data_dir)
    try:
        status = sec.training_status()
        for oid, st in sorted(status.items()):
            if operator and oid != operator:
                continue
            state = "受講済" if st["trained"] else ("猶予中" if st["grace_until"] else "未受講")
            typer.echo(f"{oid}\t{st['fy_label']}\t{state}")
        for r in sec.trainings(operator):
            typer.echo(f"  {r.operator_id}\t{r.taken_on}\t{r.fiscal_year}年度\t{r.course}\t記録 {r.recorded_by}")
    finally:
        registers.dispose()


@terminal_app.command("add")
def terminal_add(name: str = typer.Option(..., "--name", help="端末名 (設置場所など)"),
                 terminal_id: Optional[str] = typer.Option(None, "--id"), data_dir: Path = DataDir):
    """操作端末を登録し、端末登録用リンクを表示する (CLI はサーバ室での初期設定用)."""
    config, registers, sec = _open(data_dir)
    try:
        t, code = sec.add_terminal(Actor("cli", None), name, terminal_id=terminal_id)
        typer.echo(f"操作端末 {t.terminal_id} を登録しました。その端末のブラウザで開いてください (24時間有効):")
        typer.echo(f"  {_base(config)}/terminal/activate?code={code}")
    except JukinetError as e:
        console.print(f"[red]{e.code}[/red]: {e.message}")
        raise typer.Exit(2)
    finally:
        registers.dispose()


@audit_app.command("verify")
def audit_verify(data_dir: Path = DataDir,
                 checkpoint: bool = typer.Option(True, "--checkpoint/--no-checkpoint",
                                                 help="正常なら先頭をチェックポイントとして記録する")):
    """操作ログのハッシュチェーンを検証する (正常: 終了コード 0、異常: 1 と該当項目・コード)."""
    _verify(data_dir, checkpoint=checkpoint, adopt=False)


def _verify(data_dir: Path, *, checkpoint: bool, adopt: bool) -> None:
    _, registers, sec = _open(data_dir)
    try:
        reports = verify_all(sec.oplog, {c: registers.engine(c) for c in ("juki", "fuhyo", "admin")},
                             checkpoint=checkpoint, adopt=adopt)
    finally:
        registers.dispose()
    bad = False
    for rep in reports:
        if rep.ok:
            typer.echo(f"{rep.chain}: 正常 ({rep.count} 件, 先頭 seq {rep.head_seq})")
        else:
            bad = True
            typer.echo(f"{rep.chain}: 異常 ({rep.count} 件を検査)")
            for p in rep.problems:
                typer.echo(f"  {p}")
    if bad and adopt and all(p.code == MISSING for r in reports for p in r.problems):
        typer.echo("チェックポイントのなかったチェーンの現在の先頭を記録しました (次回の検証からはこの状態が基準です)。")
        bad = False
    raise typer.Exit(1 if bad else 0)


@audit_app.command("checkpoint")
def audit_checkpoint(data_dir: Path = DataDir):
    """検証し、各チェーンの先頭をチェックポイントファイルに記録する (チェックポイントのないチェーンも記録する)."""
    _verify(data_dir, checkpoint=True, adopt=True)
