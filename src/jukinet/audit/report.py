"""The monthly report for the 管理責任者 (A4; ADR 0022): a PDF (fpdf2, IPAゴシック, dates in 和暦)
and a CSV (UTF-8 with BOM) of the same analysis.

No resident data: the report shows operators (ID and roster name), counts, and for each flag the
log entries behind it as chain + seq + time + action + outcome + count. The bytes depend only on
the analysis and :class:`Meta` (no "printed at" clock, a fixed PDF creation date), so the SHA-256
of a month's report is stable until its log changes.

The font: IPAゴシック (≈ 12,000 glyphs) parsed by fontTools for every report cost ≈ 13 MiB of
transient objects and most of a second, and left that high-water mark in the malloc arena of
whichever server thread made the report — the resident memory of ``jukinet serve`` grew a step at
each monthly analysis (issue 17 soak; ADR 0046). As the 事務3 forms do, the font file is opened once
per process (HarfBuzz, C) and each report embeds a HarfBuzz subset of it for the characters it can
print (this module's and the analysis' wording, 和暦, ASCII, and the roster names, operator IDs and
reasons of the analysis); fpdf2 parses only that small font. Should a character still be missing
from the subset, the report is made again with the whole font (never a blank glyph).
"""

from __future__ import annotations

import csv
import glob
import io
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Iterable

import uharfbuzz as hb
from fpdf import FPDF
from fpdf.fonts import TTFFont

from jukinet import labels, wareki
from jukinet.audit import analysis as an
from jukinet.audit.casework import OVERDUE_HOURS, Casework
from jukinet.errors import JukinetError
from jukinet import charts as ch
from jukinet.security import outcomes as OUTCOMES

FONT_CANDIDATES = ["/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
                   "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
                   "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf", "/usr/share/fonts/**/ipa*g.ttf"]
CHAIN_LABELS = {"juki": "本人確認情報", "fuhyo": "附票", "admin": "管理"}
OUTCOME_LABELS = OUTCOMES.LABELS   # 許可・拒否・入力誤り
#: the operation names as an operator reads them: the data file ``jukinet/data/labels.toml`` (ADR 0042)
ACTION_LABELS = labels.data()["actions"]


def action_label(a: str) -> str:
    return labels.action(a)


@dataclass(frozen=True)
class MediaSection:
    """G2/G3 in the monthly report (ADR 0040): the weekly checks of the media register of the month's
    weeks (overdue ones raised), retirements and destructions, and the virus checks."""

    weeks: tuple                 # (week key, monday, sunday, state, checks)
    checks: tuple                # (checked_at JST text, checked_by, expected, found, discrepancy_count)
    disposals: tuple             # (at JST text, media_id, kind 使用停止|廃棄, approval_id, operator)
    scans: dict                  # outcome -> count
    infected: tuple = ()         # (at JST text, direction, purpose, signature)

    @property
    def overdue(self) -> int:
        return sum(1 for w in self.weeks if w[3] == "overdue")


@dataclass(frozen=True)
class Meta:
    prefecture_name: str
    month: str                 # YYYY-MM
    first_day: date
    last_day: date
    rules: an.Rules
    partial: bool = False      # the month has not ended: a provisional report (暫定版), not for sign-off
    casework: Casework = Casework()   # 利用停止請求 and 通報 (O4, O5): deadlines and acknowledgements
    media: "MediaSection | None" = None


@dataclass(frozen=True)
class GovernanceMonth:
    """What the month's report says of G4 and G5 (ADR 0041): incidents (opened, closed, still open at
    the month's end, notifications per incident), the contractor's monthly security report(s) with
    their reviews, and the witnessed maintenance sessions."""

    incidents: dict = field(default_factory=lambda: {"opened": [], "closed": [], "open": [], "notifications": {}})
    contractor_reports: list = field(default_factory=list)     # [(row, [reviews])]
    maintenance: list = field(default_factory=list)            # session rows


_JST = timezone(timedelta(hours=9))
INCIDENT_STATUS = {"open": "対応中", "closed": "終結"}
REVIEW_DECISIONS = {"accepted": "確認済", "follow_up": "要対応"}


def _local(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    loc = v.astimezone(_JST)
    return f"{wareki.to_wareki(loc.date(), style='short')} {loc:%H:%M}"


def _governance_rows(gov: GovernanceMonth) -> tuple[list, list, list]:
    inc = gov.incidents
    seen, rows = set(), []
    for label, group in (("発生・登録", inc["opened"]), ("終結", inc["closed"]), ("月末で対応中", inc["open"])):
        for r in group:
            if (r.incident_no, label) in seen:
                continue
            seen.add((r.incident_no, label))
            rows.append([r.incident_no, label, r.title, _local(r.occurred_at), INCIDENT_STATUS.get(r.status, r.status),
                         inc["notifications"].get(r.incident_id, 0)])
    reports = [[r.company, r.month, wareki.to_wareki(r.received_on), f"{r.checks_ng}/{r.checks_total}",
                ("、".join(f"{REVIEW_DECISIONS.get(v.decision, v.decision)} {v.reviewed_by}" for v in revs)
                 or "未確認")] for r, revs in gov.contractor_reports]
    maint = [[m.operator_id, m.witness_id, m.terminal_id, _local(m.created_at), _local(m.ended_at),
              m.end_reason or ""] for m in gov.maintenance]
    return rows, reports, maint


def font_path() -> Path:
    for c in FONT_CANDIDATES:
        for p in sorted(glob.glob(c, recursive=True)):
            return Path(p)
    raise JukinetError("FONT_MISSING", "報告書用フォント (IPAゴシック) が見つかりません。fonts-ipafont-gothic を導入してください。")


_face_lock = threading.Lock()
_faces: dict[str, "hb.Face"] = {}
_fixed: set[str] = set()


def _face(path: Path) -> "hb.Face":
    """The font file, opened once per process (HarfBuzz keeps it as one blob, no Python objects)."""
    with _face_lock:
        f = _faces.get(str(path))
        if f is None:
            f = _faces[str(path)] = hb.Face(hb.Blob.from_file_path(str(path)))
        return f


def _fixed_chars() -> set[str]:
    """Every character of the report's own wording: the sources of this module, of the analysis
    (区分, reasons), of the outcomes (結果) and of the 和暦 conversion, full-width digits, ASCII."""
    with _face_lock:
        if not _fixed:
            for mod in (__file__, an.__file__, OUTCOMES.__file__, wareki.__file__, labels.PATH):
                _fixed.update(Path(mod).read_text(encoding="utf-8"))
            _fixed.update(chr(c) for c in range(0x20, 0x7F))
            _fixed.update("０１２３４５６７８９…〜・、。")
        return _fixed


def _subset_font(doc: FPDF, path: Path, texts: Iterable[str]) -> TTFFont:
    """A TTFFont of ``path`` holding only the characters of the report and of ``texts`` (in memory)."""
    chars = set(_fixed_chars())
    for t in texts:
        chars.update(t or "")
    inp = hb.SubsetInput()
    for c in chars:
        if c not in "\n\r\t":
            inp.unicode_set.add(ord(c))
    data = bytes(hb.subset(_face(path), inp).blob.data)
    return TTFFont(doc, io.BytesIO(data), "gothic", "")


def _texts(a: an.Analysis, names: dict, meta: "Meta", gov: "GovernanceMonth | None" = None) -> list[str]:
    """The variable texts a report prints: roster names, operator IDs, flag reasons, the prefecture,
    and the rows of the casework, media and governance sections (their reprs hold every text)."""
    out = [meta.prefecture_name, *names.values(), *names.keys(), *a.counts.keys()]
    for f in a.flags:
        out += [f.operator_id or "", f.reason]
    out += [repr(meta.casework), repr(meta.media), repr(gov)]
    return out


def _when(e: an.Entry) -> str:
    loc = e.local
    return f"{wareki.to_wareki(loc.date(), style='short')} {loc:%H:%M:%S}"


def _day(d: str | None) -> str:
    return wareki.to_wareki(d) if d else "月間"


def _name(op: str | None, names: dict) -> str:
    if not op or op == "(不明)":
        return "(操作者不明)"
    if labels.is_system_actor(op):                    # init, bootstrap, demo, scheduler …: by role
        return labels.actor(op)
    n = names.get(op)
    return f"{op} {n}" if n else op


# ---- chart ---------------------------------------------------------------------------------------

def flags_chart_png(a: an.Analysis, title: str) -> bytes:
    """Bar chart of the flags per kind (PNG, deterministic: no software/date metadata); drawn on the
    one chart thread (:func:`jukinet.charts.on_chart_thread`)."""
    return ch.on_chart_thread(_flags_chart_png, a, title)


def _flags_chart_png(a: an.Analysis, title: str) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = a.flag_counts()
    labels = [f"({k}) {an.KINDS[k]}" for k in counts]
    with ch._lock, matplotlib.rc_context(ch._rc()):
        fig = Figure(figsize=(7.0, 2.6), dpi=150, layout="constrained")
        ax = fig.add_subplot()
        pos = list(range(len(labels)))
        vals = list(counts.values())
        ax.barh(pos, vals, color=[ch.PALETTE[0] if v == 0 else ch.PALETTE[5] for v in vals])
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.set_xlabel("フラグ件数")
        ax.set_xlim(0, max(vals + [1]) * 1.15)
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for p, v in zip(pos, vals):
            ax.annotate(str(v), (v, p), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_title(title, loc="left")
        buf = io.BytesIO()
        FigureCanvasAgg(fig).print_png(buf, metadata={"Software": None})
    return buf.getvalue()


# ---- PDF -----------------------------------------------------------------------------------------

class _Doc(FPDF):
    footer_text = ""

    def footer(self):
        self.set_y(-12)
        self.set_font("gothic", size=8)
        self.cell(0, 6, f"{self.footer_text}    頁 {self.page_no()} / {{nb}}", align="C")


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """``text`` cut with "…" to fit ``width`` mm (texts that fit even at 1 em per character are not measured)."""
    if len(text) * pdf.font_size_pt * 0.3528 <= width:
        return text
    while len(text) > 1 and pdf.get_string_width(text) > width:
        text = text[:-2] + "…"
    return text


def _table(pdf: FPDF, head: list[str], rows: list[list], widths: list[float], *, size: float = 8.5,
           aligns: list[str] | None = None) -> None:
    aligns = aligns or ["L"] * len(head)
    h = 5.6

    def header():
        pdf.set_font("gothic", size=size)
        pdf.set_fill_color(230, 236, 244)
        for t, w in zip(head, widths):
            pdf.cell(w, h, t, border=1, fill=True, align="C")
        pdf.ln(h)

    header()
    for r in rows:
        if pdf.get_y() + h > pdf.page_break_trigger:
            pdf.add_page()
            header()
        for v, w, al in zip(r, widths, aligns):
            pdf.cell(w, h, _fit(pdf, f"{v:,}" if isinstance(v, int) else str(v), w - 1.5), border=1, align=al)
        pdf.ln(h)


def _heading(doc: FPDF, text: str, room: float = 40) -> None:
    """A section heading, on a new page when fewer than ``room`` mm are left (no orphaned heading)."""
    if doc.get_y() > doc.page_break_trigger - room:
        doc.add_page()
    doc.set_font("gothic", size=11)
    doc.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT", align="L")


def pdf(a: an.Analysis, names: dict, meta: Meta, entries_per_flag: int = 30, flags_max: int = 200,
        gov: GovernanceMonth | None = None) -> bytes:
    path = font_path()
    doc = _pdf(a, names, meta, entries_per_flag, flags_max, lambda d: _subset_font(d, path, _texts(a, names, meta, gov)), gov)
    if _in_font(path, doc.fonts["gothic"].missing_glyphs):   # a character the subset did not foresee
        doc = _pdf(a, names, meta, entries_per_flag, flags_max, lambda d: TTFFont(d, path, "gothic", ""), gov)
    return bytes(doc.output())


def _in_font(path: Path, codepoints: list[int]) -> bool:
    """Whether the whole font has a glyph for any of ``codepoints``."""
    if not codepoints:
        return False
    font = hb.Font(_face(path))
    return any(font.get_nominal_glyph(c) for c in codepoints)


def _pdf(a: an.Analysis, names: dict, meta: Meta, entries_per_flag: int, flags_max: int, font,
         gov: GovernanceMonth | None = None) -> FPDF:
    doc = _Doc(orientation="P", unit="mm", format="A4")
    doc.set_creation_date(datetime.combine(meta.last_day, time(23, 59)))
    doc.set_producer("jukinet")
    doc.set_title(f"操作ログ月次分析報告書 {wareki.to_wareki_month(meta.month)}分")
    doc.fonts["gothic"] = font(doc)
    doc.set_auto_page_break(True, margin=16)
    doc.set_margins(15, 15, 15)
    period = f"{wareki.to_wareki(meta.first_day)}〜{wareki.to_wareki(meta.last_day)}"
    era_month = wareki.to_wareki(meta.first_day).split("月")[0] + "月分"
    doc.footer_text = f"操作ログ月次分析報告書 {era_month}"
    doc.add_page()
    doc.set_font("gothic", size=16)
    doc.cell(0, 10, f"操作ログ月次分析報告書 ({era_month}){' — 月途中の暫定版' if meta.partial else ''}",
             new_x="LMARGIN", new_y="NEXT")
    doc.set_font("gothic", size=10)
    for line in (f"{meta.prefecture_name} 住基ネット 都道府県サーバ・附票都道府県サーバ",
                 f"対象期間: {period} (日本時間)    報告先: 管理責任者",
                 "対象: 操作ログ (本人確認情報・附票・管理の3系列)。住民の個人情報は記載していません "
                 "(検索キーは鍵付きハッシュで照合)。"):
        doc.multi_cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT", align="L", wrapmode="CHAR")
    doc.ln(2)
    total_flags = len(a.flags)
    doc.set_font("gothic", size=11)
    doc.cell(0, 7, f"1. 概要  操作ログ {a.entries:,} 件 / 操作者 {len(a.counts)} 名 / フラグ {total_flags} 件",
             new_x="LMARGIN", new_y="NEXT")
    fc = a.flag_counts()
    _table(doc, ["区分", "内容", "基準", "件数"],
           [[f"({k})", an.KINDS[k], _rule_text(k, meta.rules), fc[k]] for k in an.KINDS],
           [14, 38, 110, 18], aligns=["C", "L", "L", "R"])
    doc.ln(2)
    png = flags_chart_png(a, "フラグ件数 (区分別)")
    doc.image(io.BytesIO(png), w=150)
    doc.ln(2)
    _heading(doc, "2. 操作者別の件数")
    _table(doc, ["操作者", "照会", "照会結果", "提供・開示等", "拒否", "入力誤り", "全操作", "フラグ"],
           [[_name(op, names), c.lookups, c.results, c.business, c.refused, c.invalid, c.total,
             sum(1 for f in a.flags if (f.operator_id or "(不明)") == op)] for op, c in a.counts.items()],
           [50, 16, 20, 24, 14, 18, 18, 20], aligns=["L"] + ["R"] * 7)
    doc.ln(2)
    _heading(doc, "3. 操作者別・操作別の件数")
    rows = [[_name(op, names), action_label(act), OUTCOME_LABELS.get(out, out), n]
            for op, c in a.counts.items() for (act, out), n in sorted(c.by_action.items())]
    _table(doc, ["操作者", "操作", "結果", "件数"], rows, [70, 60, 20, 30], aligns=["L", "L", "C", "R"])
    doc.ln(2)
    _heading(doc, "4. フラグ (確認を要する操作)")
    if not a.flags:
        doc.set_font("gothic", size=10)
        doc.cell(0, 6, "該当なし", new_x="LMARGIN", new_y="NEXT", align="L")
    for f in a.flags[:flags_max]:
        if doc.get_y() > doc.page_break_trigger - 30:
            doc.add_page()
        doc.set_font("gothic", size=10)
        doc.cell(0, 5.5, _fit(doc, f"No.{f.no}  ({f.kind}) {f.label}  操作者: {_name(f.operator_id, names)}  "
                                   f"日: {_day(f.day)}", 180), new_x="LMARGIN", new_y="NEXT")
        doc.set_font("gothic", size=9)
        doc.cell(0, 5, _fit(doc, f"    {f.reason}", 180), new_x="LMARGIN", new_y="NEXT")
        shown = f.entries[:entries_per_flag]
        _table(doc, ["ログ", "seq", "日時", "操作", "結果", "件数"],
               [[CHAIN_LABELS.get(e.chain, e.chain), e.seq, _when(e), action_label(e.action),
                 OUTCOME_LABELS.get(e.outcome, e.outcome), "" if e.result_count is None else e.result_count]
                for e in shown], [26, 20, 40, 50, 16, 18], size=8, aligns=["L", "R", "L", "L", "C", "R"])
        if len(f.entries) > len(shown):
            doc.set_font("gothic", size=8)
            doc.cell(0, 5, f"    ほか {len(f.entries) - len(shown)} 件 (CSV に全件)", new_x="LMARGIN", new_y="NEXT")
        doc.ln(2)
    if len(a.flags) > flags_max:
        doc.set_font("gothic", size=10)
        doc.cell(0, 6, f"ほか {len(a.flags) - flags_max} 件のフラグは CSV に全件を記載しています。",
                 new_x="LMARGIN", new_y="NEXT")
    _casework(doc, meta.casework)
    if meta.media is not None:
        _media_section(doc, meta.media)
    gov = gov or GovernanceMonth()
    inc_rows, rep_rows, maint_rows = _governance_rows(gov)
    doc.ln(2)
    _heading(doc, "7. 事故記録簿 (当月に登録・終結したもの、月末で対応中のもの)")
    if inc_rows:
        _table(doc, ["事故番号", "区分", "件名", "発生日時", "状態", "報告"], inc_rows, [28, 24, 62, 30, 16, 20],
               size=8, aligns=["L", "L", "L", "L", "C", "R"])
    else:
        doc.set_font("gothic", size=10)
        doc.cell(0, 6, "該当なし", new_x="LMARGIN", new_y="NEXT", align="L")
    doc.ln(2)
    _heading(doc, "8. 委託先の月次セキュリティ確認結果報告")
    if rep_rows:
        _table(doc, ["委託先", "対象月", "受領日", "不適合/項目", "管理責任者の確認"], rep_rows, [50, 18, 36, 24, 52],
               size=8, aligns=["L", "C", "L", "R", "L"])
    else:
        doc.set_font("gothic", size=10)
        doc.cell(0, 6, "当月分の報告は未受領です (要確認)。", new_x="LMARGIN", new_y="NEXT", align="L")
    doc.ln(2)
    _heading(doc, "9. 保守作業 (職員立会い) のセッション")
    if maint_rows:
        _table(doc, ["保守作業者", "立会者", "端末", "開始", "終了", "終了理由"], maint_rows, [30, 30, 20, 36, 36, 28],
               size=8, aligns=["L", "L", "L", "L", "L", "L"])
    else:
        doc.set_font("gothic", size=10)
        doc.cell(0, 6, "該当なし", new_x="LMARGIN", new_y="NEXT", align="L")
    if doc.get_y() > doc.page_break_trigger - 40:
        doc.add_page()
    doc.ln(4)
    _heading(doc, "10. 管理責任者の確認")
    doc.set_font("gothic", size=9)
    doc.multi_cell(0, 5, "確認の記録は管理画面 (操作ログ月次分析) で行い、この報告書の SHA-256 とともに管理データベースと"
                         "操作ログに記録されます。", new_x="LMARGIN", new_y="NEXT", align="L", wrapmode="CHAR")
    doc.ln(2)
    doc.set_font("gothic", size=10)
    doc.cell(60, 12, "確認日:", border=1)
    doc.cell(60, 12, "管理責任者:", border=1)
    doc.cell(60, 12, "所見:", border=1, new_x="LMARGIN", new_y="NEXT", align="L")
    return doc


def _casework(doc: FPDF, cw: Casework) -> None:
    """5. 利用停止請求・市町村への通報: deadlines and acknowledgements at the end of the month (O4, O5)."""
    doc.ln(2)
    _heading(doc, f"5. 利用停止請求・市町村への通報 (期限と受領確認)  要確認 {cw.attention} 件")
    _table(doc, ["ファイル", "利用停止請求 受付", "決定", "期限延長", "期限超過 (月末時点)"],
           [list(r) for r in cw.suspensions], [36, 36, 30, 30, 48], aligns=["L", "R", "R", "R", "R"])
    if cw.overdue:
        doc.ln(1)
        _table(doc, ["ファイル", "期限超過の利用停止請求番号", "決定の期限"],
               [[lbl, sid, wareki.to_wareki(due)] for lbl, sid, due in cw.overdue], [36, 90, 54],
               aligns=["L", "L", "L"])
    doc.ln(2)
    _table(doc, ["ファイル", "通報 (住基法第12条の5)", "受領確認済み", f"未確認 ({OVERDUE_HOURS}時間超)"],
           [list(r) for r in cw.reports], [36, 56, 40, 48], aligns=["L", "R", "R", "R"])
    if cw.unacknowledged:
        doc.ln(1)
        _table(doc, ["ファイル", "受領確認のない通報番号", "通報先", "通報日"],
               [[lbl, rid, muni, wareki.to_wareki(at.date())] for lbl, rid, muni, at in cw.unacknowledged],
               [30, 90, 24, 36], aligns=["L", "L", "L", "L"])
    doc.set_font("gothic", size=8.5)
    doc.multi_cell(0, 4.5, "利用停止決定等の期限は請求があった日から30日 (延長は30日以内、1回)。通報は市町村CSの受領確認で"
                           "送達を記録し、受領確認があるまで再送します。件数と番号のみ記載しています。",
                   new_x="LMARGIN", new_y="NEXT", align="L", wrapmode="CHAR")


WEEK_STATES = {"checked": "実施", "overdue": "未実施 (期限超過)", "open": "今週 (未実施)"}


def _media_section(doc: FPDF, m: MediaSection) -> None:
    doc.ln(2)
    _heading(doc, "6. 媒体管理簿 (週次点検・使用停止・廃棄・ウイルスチェック)")
    doc.set_font("gothic", size=9)
    doc.multi_cell(0, 5, f"週次点検: {len(m.weeks)} 週のうち 未実施 {m.overdue} 週。ウイルスチェック: "
                         f"検出なし {m.scans.get('clean', 0)} 件 / 検出 {m.scans.get('infected', 0)} 件 / "
                         f"検査不能 {m.scans.get('failed', 0)} 件 (いずれも受け付けていません)。",
                   new_x="LMARGIN", new_y="NEXT", align="L", wrapmode="CHAR")
    _table(doc, ["週", "期間", "点検", "回数"],
           [[w[0], f"{wareki.to_wareki(w[1])}〜{wareki.to_wareki(w[2])}", WEEK_STATES.get(w[3], w[3]), w[4]]
            for w in m.weeks], [24, 100, 36, 20], aligns=["L", "L", "C", "R"])
    if m.checks:
        doc.ln(1)
        _table(doc, ["点検日時", "点検者", "管理簿", "確認", "差異"], [list(c) for c in m.checks],
               [44, 56, 26, 26, 26], aligns=["L", "L", "R", "R", "R"])
    if m.disposals:
        doc.ln(1)
        _table(doc, ["日時", "媒体", "処理", "承認番号", "実施者"], [list(d) for d in m.disposals],
               [40, 44, 30, 38, 28], size=8)
    if m.infected:
        doc.ln(1)
        _table(doc, ["日時", "方向", "用途", "検出名"], [list(x) for x in m.infected], [40, 20, 40, 80], size=8)
    doc.ln(2)


def _rule_text(kind: str, r: an.Rules) -> str:
    return {
        "a": "照会の当日、同じ操作者による提供・開示等の処理なし",
        "b": f"同一人の照会が月 {r.repeat_lookups} 回超 (同じ操作者)",
        "c": f"執務時間 {r.office_start:%H:%M}〜{r.office_end:%H:%M} 外・土日・祝日・年末年始",
        "d": "操作者と同じ氏、または登録された住所区域の人",
        "e": f"1日 照会 {r.mass_lookups_per_day} 件超・結果 {r.mass_results_per_day} 件超・一括 {r.mass_batch_rows} 人以上",
        "f": "拒否された操作 (画面ロック等・入力誤りを除く)",
    }[kind]


# ---- CSV -----------------------------------------------------------------------------------------

CSV_HEAD = ["区分", "対象月", "操作者ID", "操作者", "フラグNo", "フラグ区分", "日付", "ログ", "seq", "日時(日本時間)", "操作",
            "結果", "件数", "内容"]


def csv_bytes(a: an.Analysis, names: dict, meta: Meta, gov: GovernanceMonth | None = None) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEAD)
    for op, c in a.counts.items():
        for (act, outcome), n in sorted(c.by_action.items()):
            w.writerow(["集計", wareki.to_wareki_month(meta.month), op, _name(op, names) if labels.is_system_actor(op)
                        else names.get(op, ""), "", "", "", "", "", "", act,
                        outcome, n, action_label(act)])
    for f in a.flags:
        for e in f.entries:
            w.writerow(["フラグ", wareki.to_wareki_month(meta.month), f.operator_id or "",
                        names.get(f.operator_id or "", ""), f.no, f"{f.kind} {f.label}", _day(f.day) if f.day else "",
                        e.chain, e.seq, wareki.to_wareki_time(e.local), e.action, OUTCOME_LABELS.get(e.outcome, e.outcome),
                        "" if e.result_count is None else e.result_count, f"{action_label(e.action)}: {f.reason}"])
    cw = meta.casework
    for lbl, sid, due in cw.overdue:
        w.writerow(["期限超過", meta.month, "", "", "", "", due.isoformat(), lbl, "", "", "suspension_open",
                    "overdue", "", f"利用停止請求 {sid} 決定の期限を過ぎて未決定"])
    for lbl, rid, muni, at in cw.unacknowledged:
        w.writerow(["通報未確認", meta.month, "", "", "", "", at.date().isoformat(), lbl, "", "", "municipal_report",
                    "unacknowledged", "", f"通報 {rid} ({muni}) 受領確認なし"])
    inc_rows, rep_rows, maint_rows = _governance_rows(gov or GovernanceMonth())
    for no, label, title, occurred, status, notes in inc_rows:
        w.writerow(["事故", meta.month, "", "", "", label, "", "", "", occurred, no, status, notes, title])
    for company, month, received, ng, review in rep_rows:
        w.writerow(["委託先報告", meta.month, "", "", "", "", received, "", "", "", company, review, ng, month])
    for op, witness, terminal, start, end, reason in maint_rows:
        w.writerow(["保守作業", meta.month, op, "", "", "", "", "", "", start, f"立会 {witness}", reason, "",
                    f"端末 {terminal} 終了 {end}"])
    m = meta.media
    if m is not None:
        for wk in m.weeks:
            w.writerow(["媒体点検", meta.month, "", "", "", "", wk[0], "", "", "", "media_check", wk[3], wk[4],
                        f"{wk[1].isoformat()}〜{wk[2].isoformat()} {WEEK_STATES.get(wk[3], wk[3])}"])
        for d in m.disposals:
            w.writerow(["媒体", meta.month, d[4], names.get(d[4], ""), "", "", "", "", "", d[0], d[2], d[3], "", d[1]])
        for k in ("clean", "infected", "failed"):
            w.writerow(["ウイルスチェック", meta.month, "", "", "", "", "", "", "", "", "media_scan", k,
                        m.scans.get(k, 0), ""])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
