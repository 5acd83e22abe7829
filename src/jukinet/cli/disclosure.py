"""``jukinet disclosure …`` (事務3): 利用停止請求 (O4) and the 通報 to the municipalities (O5).

    jukinet disclosure suspension open --operator ID --register juki|fuhyo --request-no R --kind K --grounds G
                                       [--copies N --copy-size A4|B5|B4|A3] [--receipt-out FILE.pdf] < statement.txt
    jukinet disclosure suspension list --operator ID [--register juki|fuhyo]
    jukinet disclosure suspension step --operator ID --id SID --to investigating|closed [--assignee ID]
    jukinet disclosure suspension extend --operator ID --id SID --reason volume|inquiry|other_just
    jukinet disclosure suspension report --operator ID --id SID --municipality CODE --kind correct|add|delete --item I…
    jukinet disclosure suspension decide --operator ID --id SID --decision D --reason R
    jukinet disclosure suspension letter --operator ID --id SID --out FILE.pdf
    jukinet disclosure reports --operator ID [--register juki|fuhyo] [--pending]

The commands run on the server console (操作端末ID ``CONSOLE``) as an operator of the roster with the
affair ``disclosure`` (ADR 0020). The resident's statement is personal data: it comes on standard
input, never on the command line. Output: tab-separated lines, no personal data.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from jukinet.cli.common import DataDir, fail, open_installation
from jukinet.disclosure import reports as R
from jukinet.disclosure import service as S
from jukinet.errors import JukinetError

TERMINAL = "CONSOLE"

disclosure_app = typer.Typer(help="開示・訂正・利用停止 (事務3): 利用停止請求と市町村への通報", no_args_is_help=True)
suspension_app = typer.Typer(help="利用停止請求 (O4)", no_args_is_help=True)
disclosure_app.add_typer(suspension_app, name="suspension")

Register = typer.Option("juki", "--register", help="juki (本人確認情報) | fuhyo (附票本人確認情報)")
OperatorId = typer.Option(..., "--operator", help="操作者ID (事務3の担当)")
SuspensionId = typer.Option(..., "--id", help="利用停止請求番号")


def _line(*cols) -> None:
    sys.stdout.write("\t".join("" if c is None else str(c) for c in cols) + "\n")
    sys.stdout.flush()


class _Ctx:
    def __init__(self, data_dir: Path, operator_id: str):
        self.inst = open_installation(data_dir)
        self.svc = self.inst.disclosure
        op = self.inst.security.get_operator(operator_id) if operator_id else None
        if op is None or op.status != "active":
            self.inst.close()
            fail(JukinetError("OPERATOR_INACTIVE", "有効な操作者IDを --operator で指定してください。"))
        self.op = op

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.inst.close()


def _run(fn):
    try:
        return fn()
    except JukinetError as e:
        fail(e)


def _write(path: Path, issued: S.Issued) -> None:
    path.write_bytes(issued.pdf)
    _line("form", issued.serial, issued.pages, issued.sha256, str(path))


@suspension_app.command("open")
def suspension_open(data_dir: Path = DataDir, operator: str = OperatorId, register: str = Register,
                    request_no: str = typer.Option(..., "--request-no", help="開示請求の請求番号 (開示済み)"),
                    kind: str = typer.Option(..., "--kind", help="stop_use | erase | stop_provision"),
                    grounds: str = typer.Option(..., "--grounds",
                                                help="outside_purpose | unlawful_acquisition | unlawful_provision"),
                    copies: str = typer.Option("0", "--copies", help="写しの枚数 (0: 求めなし)"),
                    copy_size: Optional[str] = typer.Option(None, "--copy-size", help="A4 | B5 | B4 | A3"),
                    receipt_out: Optional[Path] = typer.Option(None, "--receipt-out", help="受付票 (PDF) の出力先")):
    """利用停止請求を受け付ける (請求の内容は標準入力から)。手数料等を表示する."""
    try:
        statement = sys.stdin.read() if not sys.stdin.isatty() else ""
    except UnicodeDecodeError:
        fail(JukinetError("TEXT_NOT_ENCODABLE", "請求の内容は UTF-8 で入力してください。", field="statement"))
    with _Ctx(data_dir, operator) as c:
        sid = _run(lambda: c.svc.open_suspension(register, request_no, kind, grounds, statement, c.op, TERMINAL,
                                                 copy_sheets=copies, copy_size=copy_size))
        [s] = [r for r in c.svc.suspensions(register, c.op, TERMINAL) if r.suspension_id == sid]
        _line("suspension", sid, s.status, f"due={s.due_date.isoformat()}", "手数料=0円",
              f"複写費用={s.copy_sheets}枚×{S.COPY_FEE_YEN}円", f"合計={s.fee_yen}円")
        if receipt_out is not None:
            _write(receipt_out, _run(lambda: c.svc.suspension_receipt(register, sid, c.op, TERMINAL)))


@suspension_app.command("list")
def suspension_list(data_dir: Path = DataDir, operator: str = OperatorId, register: str = Register):
    """利用停止請求の一覧 (番号・状態・期限・決定; 期限超過は overdue)."""
    with _Ctx(data_dir, operator) as c:
        today = S.today_jst()
        for s in _run(lambda: c.svc.suspensions(register, c.op, TERMINAL)):
            late = s.status in ("received", "investigating") and s.due_date < today
            _line(s.suspension_id, s.request_no, s.kind, s.status, s.due_date.isoformat(),
                  "extended" if s.extended else "", "overdue" if late else "", s.decision or "", s.fee_yen)


def _find_register(c: _Ctx, sid: str) -> str:
    """The register of a 利用停止請求 from its number (JS… 本人確認情報, FS… 附票)."""
    return "fuhyo" if sid.startswith("F") else "juki"


@suspension_app.command("step")
def suspension_step(data_dir: Path = DataDir, operator: str = OperatorId, sid: str = SuspensionId,
                    to: str = typer.Option(..., "--to", help="investigating | closed"),
                    assignee: Optional[str] = typer.Option(None, "--assignee")):
    """状態を進める (請求受付 → 調査中, 決定済み → 完了)."""
    with _Ctx(data_dir, operator) as c:
        _run(lambda: c.svc.step_suspension(_find_register(c, sid), sid, to, c.op, TERMINAL, assignee=assignee))
        _line(sid, to)


@suspension_app.command("extend")
def suspension_extend(data_dir: Path = DataDir, operator: str = OperatorId, sid: str = SuspensionId,
                      reason: str = typer.Option(..., "--reason", help="volume | inquiry | other_just")):
    """決定の期限を30日延長する (1回、期限内に)."""
    with _Ctx(data_dir, operator) as c:
        due = _run(lambda: c.svc.extend_suspension(_find_register(c, sid), sid, reason, c.op, TERMINAL))
        _line(sid, f"due={due.isoformat()}")


@suspension_app.command("report")
def suspension_report(data_dir: Path = DataDir, operator: str = OperatorId, sid: str = SuspensionId,
                      municipality: str = typer.Option(..., "--municipality", help="通報先の市町村コード (6桁)"),
                      kind: str = typer.Option(..., "--kind", help="correct | add | delete"),
                      item: list[str] = typer.Option(..., "--item", help="誤りのある項目 (繰り返し指定可)")):
    """調査で判明した記録の誤りを市町村へ通報する (通報書を作成し、市町村CSへ送信)."""
    with _Ctx(data_dir, operator) as c:
        rid = _run(lambda: c.svc.report_suspension_finding(_find_register(c, sid), sid, municipality, kind, item,
                                                           c.op, TERMINAL))
        _line("report", rid, "pending")


@suspension_app.command("decide")
def suspension_decide(data_dir: Path = DataDir, operator: str = OperatorId, sid: str = SuspensionId,
                      decision: str = typer.Option(..., "--decision", help="suspend | partial | not_suspend"),
                      reason: str = typer.Option(..., "--reason",
                                                 help="violation_found | no_violation | affairs_hindrance")):
    """利用停止決定等を記録する."""
    with _Ctx(data_dir, operator) as c:
        _run(lambda: c.svc.decide_suspension(_find_register(c, sid), sid, decision, reason, c.op, TERMINAL))
        _line(sid, "decided", decision)


@suspension_app.command("letter")
def suspension_letter(data_dir: Path = DataDir, operator: str = OperatorId, sid: str = SuspensionId,
                      out: Path = typer.Option(..., "--out", help="決定通知書 (PDF) の出力先")):
    """決定通知書 (PDF) を作成する (帳票管理簿に記録)."""
    with _Ctx(data_dir, operator) as c:
        _write(out, _run(lambda: c.svc.suspension_letter(_find_register(c, sid), sid, c.op, TERMINAL)))


@disclosure_app.command("reports")
def reports_command(data_dir: Path = DataDir, operator: str = OperatorId, register: str = Register,
                    pending: bool = typer.Option(False, "--pending", help="受領確認のないものだけ")):
    """市町村への通報と送達の状態 (送信待ち・送信済み・受領確認済み、送信回数)."""
    with _Ctx(data_dir, operator) as c:
        late = {r.report_id for r in R.overdue(c.inst.registers, register)} if register in ("juki", "fuhyo") else set()
        for r in _run(lambda: c.svc.municipal_reports(register, c.op, TERMINAL)):
            if pending and r.state == "acknowledged":
                continue
            _line(r.report_id, r.source, r.case_id, r.municipality_code, r.state, r.attempts,
                  r.acknowledged_at.isoformat() if r.acknowledged_at else "", r.form_serial or "",
                  "overdue" if r.report_id in late else "")


__all__ = ["disclosure_app"]
