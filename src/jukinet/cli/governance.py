"""``jukinet incident …``, ``jukinet inspection …``, ``jukinet contractor …`` — the governance records
(G4, G5; ADR 0041) for an administrator who scripts them. Thin: parse, call the service, print.

    jukinet incident open --title "帳票の誤送付" --category loss --severity serious \\
        --occurred 2026-11-30T09:15 --discovered 2026-11-30T10:00 --summary "…" --by OP0002
    jukinet incident step INC-2026-0001 --at 2026-11-30T10:30 --text "送付先に回収を依頼" --by OP0002
    jukinet incident notify INC-2026-0001 --party municipality --name "津市市民課" --at 2026-11-30T11:00 --by OP0002
    jukinet incident link INC-2026-0001 --chain juki --seq 1234 --by OP0002
    jukinet incident close INC-2026-0001 --at 2026-12-01T17:00 --cause "…" --prevention "…" --by OP0003
    jukinet incident list | show INC-2026-0001
    jukinet inspection record --kind self --unit 市町村課 --date 2026-10-15 --inspector "課長 三重一郎" \\
        --answers ok,ok,ok,ok,ok,ok,ok,ok,ok,ok --by OP0002
    jukinet inspection review 3 --decision accepted --by OP0003
    jukinet inspection list [--year 2026]
    jukinet contractor worker-add --company "…" --name "…" --duty "端末保守" --from 2026-04-01 [--operator MNT01]
    jukinet contractor worker-end 2 --to 2026-11-30
    jukinet contractor report --month 2026-11 --company "…" --received 2026-12-03 --checks 40 --ng 0
    jukinet contractor review report 5 --decision accepted --by OP0003  |  review roster --by OP0003
    jukinet contractor list

``--by``: the operator recorded as acting (the 管理責任者 for ``close`` and ``review``: required;
a refusal ``APPROVAL_NOT_MANAGER`` otherwise). Errors: ``CODE: message`` on stderr, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from jukinet.audit import governance as GV
from jukinet.audit import incidents as IN
from jukinet.audit.records import today_jst
from jukinet.cli.common import DataDir, fail, installation
from jukinet.errors import JukinetError
from jukinet.security import training as TR
from jukinet.security.oplog import Actor

incident_app = typer.Typer(help="事故記録簿 (G4: 事故発生時手順)", no_args_is_help=True)
inspection_app = typer.Typer(help="自己点検・内部監査 (G5: PIA IV.1)", no_args_is_help=True)
contractor_app = typer.Typer(help="委託先の作業従事者名簿・月次報告 (G5: PIA III.4)", no_args_is_help=True)

By = typer.Option(None, "--by", help="記録する操作者のID (終結・確認は管理責任者)")


def _by(inst, by: Optional[str]):
    """(actor, operator) of ``--by``; an unknown ID is refused (and logged by the caller)."""
    if by is None:
        return Actor("cli", None), None
    op = inst.security.get_operator(by)
    if op is None:
        raise JukinetError("OPERATOR_NOT_FOUND", "記録する操作者が見つかりません。", field="by")
    return Actor(by, None), op


def _call(data_dir: Path, by: Optional[str], action: str, fn):
    with installation(data_dir) as inst:
        try:
            actor, op = _by(inst, by)
            return fn(inst, actor, op)
        except JukinetError as e:
            if e.code == "OPERATOR_NOT_FOUND" and e.field == "by":
                inst.security.log_refusal(Actor("cli", None), action, e)
            fail(e)


# ---- incident ---------------------------------------------------------------------------------------------

@incident_app.command("open")
def incident_open(title: str = typer.Option(..., "--title"),
                  category: str = typer.Option(..., "--category", help="/".join(IN.CATEGORIES)),
                  severity: str = typer.Option("minor", "--severity", help="minor/serious"),
                  occurred: str = typer.Option(..., "--occurred", help="発生日時 YYYY-MM-DDTHH:MM (日本時間)"),
                  discovered: str = typer.Option(..., "--discovered", help="発見日時"),
                  summary: str = typer.Option(..., "--summary", help="概要 (個人情報を書かない)"),
                  by: Optional[str] = By, data_dir: Path = DataDir):
    """事故を登録し、事故番号を表示する."""
    no = _call(data_dir, by, "incident_open", lambda inst, a, op: inst.incidents.open(
        a, title=title, category=category, severity=severity, occurred_at=occurred, discovered_at=discovered,
        summary=summary, by=op))
    typer.echo(f"事故 {no} を登録しました。")


@incident_app.command("step")
def incident_step(incident_no: str = typer.Argument(...), at: str = typer.Option(..., "--at"),
                  text: str = typer.Option(..., "--text"), by: Optional[str] = By, data_dir: Path = DataDir):
    """対応を記録する."""
    _call(data_dir, by, "incident_step", lambda inst, a, op: inst.incidents.add_step(a, incident_no, at=at, text=text,
                                                                                   by=op))
    typer.echo(f"事故 {incident_no} の対応を記録しました。")


@incident_app.command("notify")
def incident_notify(incident_no: str = typer.Argument(...),
                    party: str = typer.Option(..., "--party", help="/".join(IN.PARTIES)),
                    name: str = typer.Option(..., "--name", help="担当者・部署"), at: str = typer.Option(..., "--at"),
                    text: str = typer.Option("", "--text"), by: Optional[str] = By, data_dir: Path = DataDir):
    """報告・連絡 (誰に、いつ) を記録する."""
    _call(data_dir, by, "incident_notify", lambda inst, a, op: inst.incidents.notify(
        a, incident_no, party=party, party_name=name, at=at, text=text, by=op))
    typer.echo(f"事故 {incident_no} の報告・連絡を記録しました。")


@incident_app.command("link")
def incident_link(incident_no: str = typer.Argument(...), chain: str = typer.Option(..., "--chain", help="juki/fuhyo/admin"),
                  seq: str = typer.Option(..., "--seq"), by: Optional[str] = By, data_dir: Path = DataDir):
    """操作ログの項目 (系列 + seq) を事故に関連付ける."""
    _call(data_dir, by, "incident_link", lambda inst, a, op: inst.incidents.link(a, incident_no, chain, seq, by=op))
    typer.echo(f"事故 {incident_no} に {chain} seq {seq} を関連付けました。")


@incident_app.command("close")
def incident_close(incident_no: str = typer.Argument(...), at: str = typer.Option(..., "--at"),
                   cause: str = typer.Option(..., "--cause"), prevention: str = typer.Option(..., "--prevention"),
                   by: Optional[str] = By, data_dir: Path = DataDir):
    """事故を終結する (管理責任者: --by 必須)."""
    _call(data_dir, by, "incident_close", lambda inst, a, op: inst.incidents.close(
        a, incident_no, at=at, cause=cause, prevention=prevention, by=op))
    typer.echo(f"事故 {incident_no} を終結しました。")


@incident_app.command("list")
def incident_list(status: Optional[str] = typer.Option(None, "--status", help="open/closed"), data_dir: Path = DataDir):
    """事故記録簿の一覧."""
    rows = _call(data_dir, None, "incident_view", lambda inst, a, op: inst.incidents.list(status=status))
    for r in rows:
        typer.echo(f"{r.incident_no}\t{IN.STATUSES[r.status]}\t{IN.CATEGORIES[r.category]}\t{IN.SEVERITIES[r.severity]}\t{r.title}")


@incident_app.command("show")
def incident_show(incident_no: str = typer.Argument(...), data_dir: Path = DataDir):
    """事故の経過と関連する操作ログ."""
    v = _call(data_dir, None, "incident_view", lambda inst, a, op: inst.incidents.get(incident_no))
    r = v.row
    typer.echo(f"{r.incident_no} {IN.STATUSES[r.status]} {r.title} ({IN.CATEGORIES[r.category]}, {IN.SEVERITIES[r.severity]})")
    for e in v.events:
        party = f" → {IN.PARTIES[e.party]} ({e.party_name})" if e.party else ""
        typer.echo(f"  {e.at}\t{IN.EVENT_KINDS[e.kind]}{party}\t{e.text}")
    for chain, seq, e in v.links:
        typer.echo(f"  操作ログ {chain} seq {seq}\t{e.action if e else '(見つかりません)'}")


# ---- inspection -------------------------------------------------------------------------------------------

@inspection_app.command("record")
def inspection_record(kind: str = typer.Option("self", "--kind", help="self/internal_audit"),
                      unit: str = typer.Option(..., "--unit", help="所属"),
                      date: str = typer.Option(..., "--date", help="実施日 YYYY-MM-DD"),
                      inspector: str = typer.Option(..., "--inspector", help="点検者"),
                      answers: str = typer.Option(..., "--answers",
                                                  help=f"{len(GV.CHECKLIST)} 項目の回答 ok/ng/na をカンマ区切りで"),
                      findings: str = typer.Option("", "--findings"), by: Optional[str] = By, data_dir: Path = DataDir):
    """自己点検・内部監査の結果を記録する."""
    values = [a.strip() for a in answers.split(",")]
    got = dict(zip(GV.CHECKLIST, values))
    iid = _call(data_dir, by, "inspection_record", lambda inst, a, op: inst.governance.record_inspection(
        a, kind=kind, unit=unit, conducted_on=date, inspector=inspector, answers=got, findings=findings, by=op))
    typer.echo(f"点検の結果を記録しました (番号 {iid})。")


@inspection_app.command("review")
def inspection_review(inspection_id: str = typer.Argument(...),
                      decision: str = typer.Option(..., "--decision", help="accepted/follow_up"),
                      note: str = typer.Option("", "--note"), by: Optional[str] = By, data_dir: Path = DataDir):
    """管理責任者が点検結果を確認する."""
    _call(data_dir, by, "governance_review", lambda inst, a, op: inst.governance.review(
        a, "inspection", inspection_id, decision=decision, note=note, by=op))
    typer.echo(f"点検 {inspection_id} の確認を記録しました。")


@inspection_app.command("list")
def inspection_list(year: Optional[int] = typer.Option(None, "--year", help="年度 (西暦の開始年)"),
                    data_dir: Path = DataDir):
    """自己点検・内部監査の記録と、今年度の未実施の所属."""
    def work(inst, a, op):
        g = inst.governance
        fy = year if year is not None else TR.fiscal_year(today_jst())
        return g.inspections(fiscal_year=fy), g.year(fy)
    rows, y = _call(data_dir, None, "inspection_view", work)
    for r in rows:
        typer.echo(f"{r.inspection_id}\t{r.fiscal_year}\t{GV.KINDS[r.kind]}\t{r.unit}\t{r.conducted_on}\t否 {r.items_ng}"
                   f"\t{'確認済' if y['reviews'].get(r.inspection_id) else '未確認'}")
    for u in y["missing"]:
        typer.echo(f"未実施\t{y['label']}\t{u}")


# ---- contractor -------------------------------------------------------------------------------------------

@contractor_app.command("worker-add")
def worker_add(company: str = typer.Option(..., "--company"), name: str = typer.Option(..., "--name"),
               duty: str = typer.Option(..., "--duty"), from_date: str = typer.Option(..., "--from", help="従事開始日"),
               operator: str = typer.Option("", "--operator", help="保守作業者の操作者ID"),
               by: Optional[str] = By, data_dir: Path = DataDir):
    """作業従事者を名簿に記録する."""
    wid = _call(data_dir, by, "contractor_worker_add", lambda inst, a, op: inst.governance.add_worker(
        a, company=company, name=name, duty=duty, from_date=from_date, operator_id=operator, by=op))
    typer.echo(f"作業従事者を記録しました (番号 {wid})。")


@contractor_app.command("worker-end")
def worker_end(worker_id: str = typer.Argument(...), to_date: str = typer.Option(..., "--to", help="従事終了日"),
               by: Optional[str] = By, data_dir: Path = DataDir):
    """作業従事者の従事終了を記録する."""
    _call(data_dir, by, "contractor_worker_end", lambda inst, a, op: inst.governance.end_worker(
        a, worker_id, to_date=to_date, by=op))
    typer.echo(f"作業従事者 {worker_id} の従事終了を記録しました。")


@contractor_app.command("report")
def contractor_report(month: str = typer.Option(..., "--month", help="対象月 YYYY-MM"),
                      company: str = typer.Option(..., "--company"),
                      received: str = typer.Option(..., "--received", help="受領日"),
                      checks: str = typer.Option(..., "--checks", help="確認項目数"),
                      ng: str = typer.Option("0", "--ng", help="不適合数"), summary: str = typer.Option("", "--summary"),
                      by: Optional[str] = By, data_dir: Path = DataDir):
    """月次のセキュリティ確認結果報告の受領を記録する."""
    rid = _call(data_dir, by, "contractor_report", lambda inst, a, op: inst.governance.record_report(
        a, month=month, company=company, received_on=received, checks_total=checks, checks_ng=ng, summary=summary,
        by=op))
    typer.echo(f"月次報告を記録しました (番号 {rid})。")


@contractor_app.command("review")
def contractor_review(what: str = typer.Argument(..., help="report / roster"),
                      report_id: Optional[str] = typer.Argument(None, help="report のとき: 報告の番号"),
                      decision: str = typer.Option(..., "--decision", help="accepted/follow_up"),
                      note: str = typer.Option("", "--note"), by: Optional[str] = By, data_dir: Path = DataDir):
    """管理責任者が月次報告 (report) または作業従事者名簿 (roster) を確認する."""
    target = {"report": "contractor_report", "roster": "worker_roster"}.get(what, what)
    _call(data_dir, by, "governance_review", lambda inst, a, op: inst.governance.review(
        a, target, report_id, decision=decision, note=note, by=op))
    typer.echo("確認を記録しました。")


@contractor_app.command("list")
def contractor_list(data_dir: Path = DataDir):
    """作業従事者名簿と月次報告."""
    def work(inst, a, op):
        g = inst.governance
        return g.workers(), g.reports(), g.reviewed("contractor_report")
    workers, reports, reviewed = _call(data_dir, None, "contractor_view", work)
    for w in workers:
        typer.echo(f"従事者\t{w.worker_id}\t{w.company}\t{w.name}\t{w.duty}\t{w.operator_id or ''}\t{w.from_date}〜{w.to_date or ''}")
    for r in reports:
        typer.echo(f"月次報告\t{r.report_id}\t{r.month}\t{r.company}\t{r.checks_ng}/{r.checks_total}"
                   f"\t{'確認済' if reviewed.get(r.report_id) else '未確認'}")
