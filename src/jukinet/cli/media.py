"""``jukinet media …`` — the media register (媒体管理簿) and the virus check of media (G2, G3; ADR 0040).

Every command that changes the register names the acting operator with ``--by`` (registered,
active, with the right role); refusals are printed as ``code: message`` and exit 2, and are in the
operation log.

* ``media list [--status S] [--kind K]`` / ``media show ID`` — the register, a medium's movements
* ``media register-backup FILE --medium lto --label L --location 保管庫 --custodian OP --by OP``
* ``media register-incoming FILE --medium usb --label L --location … --custodian OP [--requester R] --by OP``
* ``media scan FILE [--direction in|out] --by OP`` — a ClamAV check on its own (exit 3: infected)
* ``media move|checkout|checkin ID --location L [--reason R] --by OP``
* ``media handover ID --requester R --file FILE --medium usb --label L [--receiver NAME] --by OP``
* ``media return ID --location L [--from NAME] --by OP``
* ``media approve ID --action retire|destroy --reason R --by MANAGER`` (``--form`` for a 帳票 serial)
* ``media retire ID --approval A --reason R --by OP`` / ``media destroy ID --approval A --method M --by OP``
* ``media check [--found ID …] [--found-file F] [--note N] --by OP`` — the weekly check; ``media check-status``
* ``media scans`` — the virus checks
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from jukinet.audit import media_checks as MC
from jukinet.cli.common import DataDir, fail, installation
from jukinet.errors import JukinetError
from jukinet.media import service as M

media_app = typer.Typer(help="媒体管理簿 (G2) とウイルスチェック (G3): 登録・移動・受渡し・返却・承認・廃棄・週次点検",
                        no_args_is_help=True)
By = typer.Option(..., "--by", help="操作する操作者のID")


def _run(data_dir: Path, fn):
    with installation(data_dir) as inst:
        try:
            return fn(inst.media)
        except JukinetError as e:
            fail(e)


@media_app.command("list")
def media_list(status: Optional[str] = typer.Option(None, "--status", help="in_vault|out|handed_over|retired|destroyed"),
               kind: Optional[str] = typer.Option(None, "--kind", help="backup|result|incoming"),
               data_dir: Path = DataDir):
    """媒体管理簿の一覧."""
    def show(svc):
        for r in svc.items(status=status, kind=kind):
            typer.echo("\t".join([r.media_id, M.KINDS.get(r.kind, r.kind), M.MEDIUMS.get(r.medium, r.medium), r.label,
                                  r.location, r.custodian, M.STATUSES.get(r.status, r.status), r.backup_id or "",
                                  str(r.registered_at)[:19]]))
    _run(data_dir, show)


@media_app.command("show")
def media_show(media_id: str, data_dir: Path = DataDir):
    """一つの媒体と、その移動の記録."""
    def show(svc):
        r = svc.item(media_id)
        if r is None:
            raise JukinetError(*M.UNKNOWN)
        typer.echo(json.dumps({k: (str(v) if v is not None else None) for k, v in r._mapping.items()},
                              ensure_ascii=False, indent=1))
        for m in reversed(svc.movements(media_id)):
            typer.echo("\t".join([str(m.at)[:19], M.MOVEMENTS.get(m.kind, m.kind), m.operator_id,
                                  m.from_location or "", m.to_location or "", m.counterpart or "", m.approval_id or "",
                                  M.METHODS.get(m.method or "", m.method or ""), m.reason or ""]))
    _run(data_dir, show)


@media_app.command("register-backup")
def register_backup(file: Path, medium: str = typer.Option(..., "--medium", help="|".join(M.MEDIUMS)),
                    label: str = typer.Option(..., "--label"), location: str = typer.Option(..., "--location"),
                    custodian: str = typer.Option(..., "--custodian", help="管理者 (操作者ID)"),
                    note: str = typer.Option("", "--note"), by: str = By, data_dir: Path = DataDir):
    """バックアップ媒体を登録する (媒体上のバックアップファイルから)."""
    mid = _run(data_dir, lambda svc: svc.register_backup(svc.operator(by), None, file, medium=medium, label=label,
                                                         location=location, custodian=custodian, note=note))
    typer.echo(f"媒体 {mid} を登録しました。")


@media_app.command("register-incoming")
def register_incoming(file: Path, medium: str = typer.Option(..., "--medium"), label: str = typer.Option(..., "--label"),
                      location: str = typer.Option(..., "--location"), custodian: str = typer.Option(..., "--custodian"),
                      requester: str = typer.Option("", "--requester"), note: str = typer.Option("", "--note"),
                      by: str = By, data_dir: Path = DataDir):
    """持込媒体を登録する (ウイルスチェックの後)."""
    mid = _run(data_dir, lambda svc: svc.register_incoming(svc.operator(by), None, file, medium=medium, label=label,
                                                           location=location, custodian=custodian,
                                                           requester_code=requester, note=note))
    typer.echo(f"ウイルスチェック: 検出なし。媒体 {mid} を登録しました。")


@media_app.command("scan")
def scan(file: Path, direction: str = typer.Option("in", "--direction", help="in (持込) | out (持出)"),
         media_id: Optional[str] = typer.Option(None, "--media"), by: str = By, data_dir: Path = DataDir):
    """ファイルのウイルスチェック (ClamAV). 検出: 終了コード 3."""
    with installation(data_dir) as inst:
        try:
            res = inst.media.scan(inst.media.operator(by), None, file, direction=direction, media_id=media_id)
        except JukinetError as e:
            if e.code == "MEDIA_INFECTED":
                typer.echo(f"{e.code}: {e.message}", err=True)
                raise typer.Exit(3)
            fail(e)
    typer.echo(f"検出なし ({res.engine}) sha256={res.sha256} size={res.size}")


def _movement(kind: str):
    def cmd(media_id: str, location: str = typer.Option(..., "--location"), reason: str = typer.Option("", "--reason"),
            by: str = By, data_dir: Path = DataDir):
        mv = _run(data_dir, lambda svc: svc.move(svc.operator(by), None, media_id, kind, location=location,
                                                 reason=reason))
        typer.echo(f"{M.MOVEMENTS[kind]}を記録しました (記録番号 {mv})。")
    cmd.__doc__ = f"{M.MOVEMENTS[kind]}を記録する."
    return cmd


for _k in ("move", "checkout", "checkin"):
    media_app.command(_k)(_movement(_k))


@media_app.command("handover")
def handover(media_id: str, requester: str = typer.Option(..., "--requester", help="依頼元 (提供先) コード"),
             file: Path = typer.Option(..., "--file", help="媒体上の結果ファイル"),
             medium: str = typer.Option("usb", "--medium"), label: str = typer.Option(..., "--label"),
             receiver: str = typer.Option("", "--receiver", help="受領者"), by: str = By, data_dir: Path = DataDir):
    """一括提供の結果媒体を依頼元に受け渡す (ウイルスチェック・SHA-256 照合の後)."""
    mv = _run(data_dir, lambda svc: svc.handover(svc.operator(by), None, media_id, requester_code=requester, file=file,
                                                 medium=medium, label=label, receiver=receiver))
    typer.echo(f"受渡しを記録しました (記録番号 {mv})。")


@media_app.command("return")
def return_command(media_id: str, location: str = typer.Option(..., "--location"),
                   counterpart: str = typer.Option("", "--from", help="返却者"), by: str = By, data_dir: Path = DataDir):
    """依頼元からの返却を記録する."""
    mv = _run(data_dir, lambda svc: svc.return_(svc.operator(by), None, media_id, location=location,
                                                counterpart=counterpart))
    typer.echo(f"返却を記録しました (記録番号 {mv})。")


@media_app.command("approve")
def approve(target: str, action: str = typer.Option(..., "--action", help="retire | destroy"),
            reason: str = typer.Option(..., "--reason"), form: bool = typer.Option(False, "--form", help="帳票の廃棄"),
            by: str = By, data_dir: Path = DataDir):
    """管理責任者の事前承認 (使用停止・廃棄)."""
    aid = _run(data_dir, lambda svc: svc.approve(svc.operator(by), None, target, action, reason,
                                                 target_kind="form" if form else "media"))
    typer.echo(f"承認番号 {aid}")


@media_app.command("retire")
def retire(media_id: str, approval: str = typer.Option(..., "--approval"), reason: str = typer.Option(..., "--reason"),
           by: str = By, data_dir: Path = DataDir):
    """破損・耐用超過の媒体を使用停止にする (保管庫に保管のまま)."""
    mv = _run(data_dir, lambda svc: svc.retire(svc.operator(by), None, media_id, approval_id=approval, reason=reason))
    typer.echo(f"使用停止を記録しました (記録番号 {mv})。")


@media_app.command("destroy")
def destroy(media_id: str, approval: str = typer.Option(..., "--approval"),
            method: str = typer.Option(..., "--method", help="|".join(M.METHODS)), reason: str = typer.Option("", "--reason"),
            by: str = By, data_dir: Path = DataDir):
    """媒体を廃棄する (管理責任者の事前承認が必要)."""
    mv = _run(data_dir, lambda svc: svc.destroy(svc.operator(by), None, media_id, approval_id=approval, method=method,
                                                reason=reason))
    typer.echo(f"廃棄を記録しました (記録番号 {mv})。")


@media_app.command("check")
def check(found: list[str] = typer.Option([], "--found", help="保管庫で確認した媒体番号またはラベル (複数可)"),
          found_file: Optional[Path] = typer.Option(None, "--found-file", help="1行に1つの媒体番号・ラベル"),
          note: str = typer.Option("", "--note"), by: str = By, data_dir: Path = DataDir):
    """週次点検: 管理簿と保管庫の媒体を照合し、チェックリストとして記録する."""
    items = list(found)
    if found_file is not None:
        try:
            items += found_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            fail(JukinetError("MEDIA_FOUND_FILE_UNREADABLE", "確認した媒体の一覧ファイルを読めません (UTF-8)。"))
    res = _run(data_dir, lambda svc: svc.weekly_check(svc.operator(by), None, items, note=note))
    typer.echo(f"点検 {res.check_id} ({res.week}): 管理簿 {res.expected} / 確認 {res.found} / 差異 {len(res.discrepancies)}")
    for d in res.discrepancies:
        typer.echo(f"  差異\t{d['kind']}\t{d.get('media_id') or d.get('found')}\t{d['detail']}")


@media_app.command("check-status")
def check_status(data_dir: Path = DataDir):
    """最後の週次点検と、期限を過ぎているか (期限超過: 終了コード 1)."""
    st = _run(data_dir, lambda svc: svc.check_status())
    last = st["last_at"].astimezone(MC.JST).strftime("%Y-%m-%d %H:%M") if st["last_at"] else "なし"
    typer.echo(f"最終点検: {last}  保管庫の媒体: {st['in_vault']}  {'期限超過' if st['overdue'] else '期限内'}")
    if st["overdue"]:
        raise typer.Exit(1)


@media_app.command("scans")
def scans(data_dir: Path = DataDir):
    """ウイルスチェックの記録."""
    def show(svc):
        for s in svc.scans():
            typer.echo("\t".join([str(s.at)[:19], s.direction, s.purpose, s.media_id or "", s.engine, s.outcome,
                                  s.signature or "", s.code or "", s.sha256 or ""]))
    _run(data_dir, show)
