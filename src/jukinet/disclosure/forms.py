"""PDF forms (帳票) of 事務3, typeset with fpdf2 + HarfBuzz in IPAmj明朝 (D4).

Every form carries the prefecture, the form title, the request number, the issue date in 和暦, the
form serial number (帳票管理簿, A5) and "頁 x / y" on every page. The font is embedded (subset) and
text is shaped by HarfBuzz, so an Ideographic Variation Sequence such as 葛 U+E0102 selects its own
glyph (the font's ``cmap`` format 14) and survives text extraction.

Parsing and subsetting IPAmj明朝 (≈ 60,000 glyphs, 40 MB) with fontTools costs about half a second
per document. Instead, each document first takes a HarfBuzz subset (C, a few ms) of the font for the
characters it will print — the form's fixed wording (this module's text), ASCII, and the data — with
the variation selectors, so the ``cmap`` format 14 entries of the IVS survive; fpdf2 then parses and
embeds that small font, in memory (no temporary file: the characters used are close to personal data).

Shaping costs: fpdf2 measures a line character by character through HarfBuzz, which made a table of
25 provision records ≈ 0.5 s (issue 16: "who received my data" p95 ≤ 500 ms). Table cells are shaped
only when their text needs it (:func:`needs_shaping`: a variation selector, a joiner or a combining
mark); the rest are measured and drawn from the font's own advances — the same glyphs, as HarfBuzz does
not change plain CJK, kana or ASCII in horizontal text without optional features.
"""

from __future__ import annotations

import glob
import threading
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Optional, Sequence

from io import BytesIO

import uharfbuzz as hb
from fpdf import FPDF
from fpdf.fonts import HarfBuzzFont, TTFFont

from jukinet import wareki
from jukinet.moji import is_variation_selector
from jukinet.errors import JukinetError

FONT_CANDIDATES = ["/usr/share/fonts/truetype/ipamj/ipamjm.ttf", "/usr/share/fonts/**/ipamjm.ttf"]
FAMILY = "ipamj"

_lock = threading.Lock()
_proto: dict[str, object] = {}


def font_path(configured: Optional[str] = None) -> Path:
    for c in ([configured] if configured else []) + FONT_CANDIDATES:
        for p in glob.glob(c, recursive=True):
            if p.endswith(".ttf"):
                return Path(p)
    raise JukinetError("FONT_MISSING", "帳票用フォント (IPAmj明朝) が見つかりません。fonts-ipamj-mincho を導入してください。")


def _face(path: Path):
    with _lock:
        f = _proto.get(str(path))
        if f is None:
            f = _proto[str(path)] = hb.Face(hb.Blob.from_file_path(str(path)))
        return f


_FIXED = None


def _fixed_chars() -> set[str]:
    global _FIXED
    if _FIXED is None:
        _FIXED = set(Path(__file__).read_text(encoding="utf-8")) | {chr(c) for c in range(0x20, 0x7F)} | set(
            "０１２３４５６７８９　、。（）「」・：元年月日明治大正昭和平成令和様")
    return _FIXED


def _subset_font(pdf: FPDF, path: Path, text: Iterable[str]) -> TTFFont:
    chars = set(_fixed_chars())
    for t in text:
        chars.update(t or "")
    inp = hb.SubsetInput()
    for c in chars:
        if c not in "\n\r\t":
            inp.unicode_set.add(ord(c))
    data = bytes(hb.subset(_face(path), inp).blob.data)
    f = TTFFont(pdf, BytesIO(data), FAMILY, "")
    f._hbfont = HarfBuzzFont(hb.Face(hb.Blob(data)))
    return f


def needs_shaping(text: str) -> bool:
    """Whether ``text`` needs HarfBuzz to be drawn right: a variation selector (IVS U+E0100–E01EF,
    U+FE00–FE0F), a joiner (U+200C/U+200D) or a combining mark (e.g. U+3099 combining 濁点).

    >>> needs_shaping("令和7年12月1日"), needs_shaping("葛\U000E0102城"), needs_shaping("か\u3099")
    (False, True, True)
    """
    return any(is_variation_selector(c) or c in "\u200c\u200d" or unicodedata.combining(c) for c in text)


def wa(d) -> str:
    """和暦 for forms ('' for None)."""
    if d in (None, ""):
        return ""
    if isinstance(d, datetime):
        d = d.date()
    return wareki.to_wareki(d)


class Form(FPDF):
    """A4 portrait, header and footer with serial and page x / y."""

    def __init__(self, *, title: str, serial: str, prefecture: str, request_no: Optional[str], issued: date,
                 font: Optional[Path] = None, text: Iterable[str] = ()):
        super().__init__(orientation="P", unit="mm", format="A4")
        path = font_path(str(font) if font else None)
        self.fonts[FAMILY] = _subset_font(self, path, [title, serial, prefecture, request_no or "", *text])
        self.set_text_shaping(True)
        self.form_title, self.serial, self.prefecture = title, serial, prefecture
        self.request_no, self.issued = request_no, issued
        self.set_auto_page_break(True, margin=22)
        self.set_margins(18, 18, 18)
        self.alias_nb_pages("{nb}")
        self.set_title(title)
        self.set_creator("jukinet")
        self.set_creation_date(datetime.combine(issued, datetime.min.time()).astimezone())

    def header(self):
        self.set_font(FAMILY, size=9)
        self.cell(0, 5, f"{self.prefecture}知事　都道府県サーバ", new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 5, f"帳票番号 {self.serial}", align="R", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FAMILY, size=15)
        self.cell(0, 10, self.form_title, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FAMILY, size=9.5)
        left = f"請求番号 {self.request_no}" if self.request_no else ""
        self.cell(90, 6, left)
        self.cell(0, 6, f"交付日 {wa(self.issued)}", align="R", new_x="LMARGIN", new_y="NEXT")
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.ln(4)

    def footer(self):
        self.set_y(-15)
        self.set_font(FAMILY, size=8.5)
        self.cell(0, 5, f"{self.serial}　　頁 {self.page_no()} / {{nb}}", align="C")

    # --- building blocks ---------------------------------------------------------------------------

    def para(self, text: str, size: float = 10.5, h: float = 6):
        self.set_font(FAMILY, size=size)
        self.multi_cell(0, h, text, new_x="LMARGIN", new_y="NEXT")

    def heading(self, text: str):
        self.ln(2)
        self.set_font(FAMILY, size=12)
        self.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")

    def items(self, rows: Sequence[tuple[str, str]], label_w: float = 42):
        self.set_font(FAMILY, size=10.5)
        for label, value in rows:
            y = self.get_y()
            if y > self.h - 32:
                self.add_page()
            self.set_fill_color(238, 238, 238)
            self.cell(label_w, 8, label, border=1, fill=True)
            self.multi_cell(0, 8, value or "", border=1, new_x="LMARGIN", new_y="NEXT")

    def table(self, head: Sequence[str], widths: Sequence[float], rows: Iterable[Sequence[str]], size: float = 9):
        self.set_font(FAMILY, size=size)

        def _head():
            self.set_fill_color(230, 230, 230)
            for h, w in zip(head, widths):
                self.cell(w, 7, h, border=1, fill=True, align="C")
            self.ln(7)

        _head()
        for row in rows:
            texts = [str(v or "") for v in row]
            shaped = [needs_shaping(t) for t in texts]
            lines = []
            for t, w, sh in zip(texts, widths, shaped):
                self._shaping(sh)
                lines.append(self._lines(t, w))
            hgt = 5 * max(*lines, 1) + 1
            if self.get_y() + hgt > self.h - 22:
                self.add_page()
                _head()
            x, y = self.get_x(), self.get_y()
            for t, w, sh, n in zip(texts, widths, shaped, lines):
                self.rect(x, y, w, hgt)
                self.set_xy(x, y + 0.5)
                self._shaping(sh)
                if n == 1:          # a one-line multi_cell is a cell (its one line is not justified)
                    self.cell(w, 5, t)
                else:
                    self.multi_cell(w, 5, t)
                x += w
            self.set_xy(self.l_margin, y + hgt)
        self._shaping(True)

    def _lines(self, text: str, w: float) -> int:
        """How many lines ``multi_cell(w, …, text)`` takes (one width measure when it fits on one)."""
        if "\n" not in text and self.get_string_width(text) <= w - 2 * self.c_margin:
            return 1
        return len(self.multi_cell(w, 5, text, dry_run=True, output="LINES"))

    def _shaping(self, on: bool) -> None:
        if bool(self.text_shaping) != on:
            self.set_text_shaping(on)


@dataclass
class Rendered:
    data: bytes
    pages: int


def _done(pdf: Form) -> Rendered:
    data = bytes(pdf.output())
    return Rendered(data, pdf.pages_count)


SEX = {"1": "男", "2": "女"}
JUKI_TITLE = "本人確認情報開示書"
FUHYO_TITLE = "附票本人確認情報開示書"


def _juki_rows(r) -> list[tuple[str, str]]:
    rows = [("住民票コード", r.juminhyo_code), ("氏名", r.name), ("ふりがな", r.name_kana),
            ("生年月日", wa(r.birth_date)), ("性別", SEX.get(r.sex, r.sex)), ("住所", r.address),
            ("個人番号", r.kojin_bango or "（記録なし）")]
    if r.former_surname:
        rows.append(("旧氏", f"{r.former_surname.name}（{r.former_surname.name_kana}）"))
    rows += [("異動事由", r.reason), ("異動年月日", wa(r.change_date)),
             ("通知を受けた年月日", wa(r.notified_date)), ("状態", "消除" if r.deleted else "現存")]
    return rows


def _fuhyo_rows(r) -> list[tuple[str, str]]:
    return [("住民票コード", r.juminhyo_code), ("氏名", r.name), ("ふりがな", r.name_kana),
            ("生年月日", wa(r.birth_date)), ("性別", SEX.get(r.sex, r.sex)), ("住所", r.address or "（国外）"),
            ("最終住所", r.last_address or ""), ("附票管理市町村コード", r.fuhyo_municipality_code),
            ("異動事由", r.reason), ("異動年月日", wa(r.change_date)), ("状態", r.status)]


def disclosure_form(register: str, current, history: Sequence = (), *, serial: str, prefecture: str,
                    request_no: str, issued: date, font: Optional[Path] = None) -> Rendered:
    """開示書: the person's current record and, when asked, the earlier versions (within retention)."""
    rows = _juki_rows if register == "juki" else _fuhyo_rows
    text = [v for _k, v in rows(current)] + [str(getattr(h, a, "") or "") for h in history
                                             for a in ("name", "address", "last_address", "reason")]
    pdf = Form(title=JUKI_TITLE if register == "juki" else FUHYO_TITLE, serial=serial, prefecture=prefecture,
               request_no=request_no, issued=issued, font=font, text=text)
    pdf.add_page()
    pdf.para(f"住民基本台帳法第30条の32の規定による開示の請求に対し、{prefecture}知事が保存する"
             f"{'本人確認情報' if register == 'juki' else '附票本人確認情報'}を次のとおり開示します。")
    pdf.heading("現在の記録")
    pdf.items(rows(current))
    if history:
        pdf.heading(f"履歴（保存期間内、{len(history)}件、古い順）")
        if register == "juki":
            pdf.table(["異動年月日", "異動事由", "氏名", "住所"], [28, 26, 44, 76],
                      [(wa(h.change_date), h.reason, h.name, h.address) for h in history])
        else:
            pdf.table(["異動年月日", "異動事由", "氏名", "住所"], [28, 26, 44, 76],
                      [(wa(h.change_date), h.reason, h.name, h.address or h.last_address or "") for h in history])
    pdf.ln(4)
    pdf.para("この帳票は請求者本人にのみ交付します。記載事項に誤りがあるときは、訂正等の申出をすることができます。", size=9)
    return _done(pdf)


def provisions_form(name: str, rows: Sequence[tuple[str, str, str, str, str]], *, serial: str, prefecture: str,
                    request_no: str, issued: date, font: Optional[Path] = None) -> Rendered:
    """提供状況開示書 (O3): every provision of the person's data — date, recipient, affair, items."""
    pdf = Form(title="本人確認情報の提供状況開示書", serial=serial, prefecture=prefecture, request_no=request_no,
               issued=issued, font=font, text=[name, *(str(v) for r in rows for v in r)])
    pdf.add_page()
    pdf.para(f"{name} 様")
    pdf.para(f"あなたの本人確認情報・附票本人確認情報について、提供・移転の記録（保存期間7年）に"
             f"記録された提供の状況は次のとおりです（{len(rows)}件、古い順）。")
    pdf.ln(2)
    if rows:
        pdf.table(["提供日", "提供先", "事務（根拠）", "区分", "提供した項目"], [30, 34, 52, 12, 46], rows, size=8.5)
    else:
        pdf.para("記録された提供はありません。")
    return _done(pdf)


def correction_letter(name: str, *, kind: str, items: str, result: str, municipality: Optional[str],
                      received: date, serial: str, prefecture: str, request_no: str, issued: date,
                      font: Optional[Path] = None) -> Rendered:
    """訂正等の申出に対する調査結果通知書 (O2)."""
    pdf = Form(title="訂正等の申出に対する調査結果通知書", serial=serial, prefecture=prefecture,
               request_no=request_no, issued=issued, font=font, text=[name, kind, items, municipality or ""])
    pdf.add_page()
    pdf.para(f"{name} 様")
    pdf.ln(2)
    pdf.para(f"{wa(received)}に受け付けた本人確認情報の{kind}の申出（項目：{items}）について、調査の結果を次のとおり通知します。")
    pdf.heading("調査の結果")
    if result == "corrected":
        pdf.para(f"記録に誤りがありました。住民基本台帳法第30条の35の規定により{municipality or '住所地の市町村'}長"
                 "に通報し、その修正の通知を受けて記録を訂正しました。")
    else:
        pdf.para("調査の結果、記録に誤りは認められませんでした。記録は訂正しません。")
    return _done(pdf)


def _yen(n: int) -> str:
    return f"{int(n):,}円"


def suspension_receipt(name: str, *, suspension_id: str, kind: str, grounds: str, received: date, due: date,
                       copy_sheets: int, copy_size: Optional[str], unit_yen: int, fee_yen: int, serial: str,
                       prefecture: str, request_no: str, issued: date, font: Optional[Path] = None,
                       register_label: str = "本人確認情報") -> Rendered:
    """利用停止請求受付票 (O4): what was asked, the legal deadline and the fees (PIA V.1③)."""
    copies = (f"{copy_sheets}枚（{copy_size}）× {unit_yen}円 = {_yen(copy_sheets * unit_yen)}" if copy_sheets
              else "写しの交付の求めなし　0円")
    pdf = Form(title="保有個人情報利用停止請求受付票", serial=serial, prefecture=prefecture, request_no=request_no,
               issued=issued, font=font, text=[name, kind, grounds, copies, suspension_id, register_label])
    pdf.add_page()
    pdf.para(f"{name} 様")
    pdf.ln(2)
    pdf.para(f"あなたの保有個人情報（{register_label}）の利用停止請求を、次のとおり受け付けました。")
    pdf.items([("利用停止請求番号", suspension_id), ("受付日", wa(received)), ("請求の種類", kind),
               ("請求の理由", grounds), ("決定の期限", f"{wa(due)}（請求があった日から30日以内）")])
    pdf.heading("手数料等")
    pdf.items([("手数料", "無料　0円"), ("複写費用", f"{copies}（A3まで1枚{unit_yen}円）"),
               ("お支払いいただく額", _yen(fee_yen))])
    pdf.ln(3)
    pdf.para("事務処理上の困難その他正当な理由があるときは、決定の期限を30日以内に限り延長することがあります。", size=9)
    pdf.para("その場合は、延長後の期間と理由を書面でお知らせします。", size=9)
    return _done(pdf)


def suspension_letter(name: str, *, suspension_id: str, kind: str, decision: str, decision_label: str, reason: str,
                      received: date, reported_to: Sequence[str], serial: str, prefecture: str, request_no: str,
                      issued: date, font: Optional[Path] = None) -> Rendered:
    """利用停止決定通知書 / 保有個人情報の利用停止をしない旨の決定通知書 (O4)."""
    title = "保有個人情報利用停止決定通知書" if decision != "not_suspend" else "保有個人情報の利用停止をしない旨の決定通知書"
    pdf = Form(title=title, serial=serial, prefecture=prefecture, request_no=request_no, issued=issued, font=font,
               text=[name, kind, decision_label, reason, suspension_id, *reported_to])
    pdf.add_page()
    pdf.para(f"{name} 様")
    pdf.ln(2)
    pdf.para(f"{wa(received)}に受け付けた保有個人情報の{kind}の請求（利用停止請求番号 {suspension_id}）について、"
             "次のとおり決定したので通知します。")
    pdf.items([("決定", decision_label), ("理由", reason)])
    if reported_to:
        pdf.ln(2)
        pdf.para("調査の過程で記録の誤りが判明したため、住民基本台帳法第12条の5の規定により"
                 f"{'、'.join(reported_to)}長に通報しました。住民票の修正の通知を受けて記録を訂正します。")
    pdf.ln(3)
    pdf.para("この決定に不服があるときは、行政不服審査法の規定により、この決定があったことを知った日の翌日から起算して"
             "3か月以内に審査請求をすることができます。", size=9)
    return _done(pdf)


def municipal_report(name: str, *, report_id: str, juminhyo_code: str, municipality: Optional[str], source: str,
                     case_id: str, kind: str, held: Sequence[tuple[str, str]], statement: str, register_label: str,
                     serial: str, prefecture: str, request_no: str, issued: date,
                     font: Optional[Path] = None) -> Rendered:
    """通報書 (O5): the prefecture tells the municipality that the record it sent is wrong."""
    held_rows = [(label, value or "（記録なし）") for label, value in held]
    pdf = Form(title="本人確認情報の誤りに関する通報書", serial=serial, prefecture=prefecture, request_no=request_no,
               issued=issued, font=font,
               text=[name, municipality or "", source, kind, statement, report_id, juminhyo_code,
                     register_label, *(v for _l, v in held_rows), *(label for label, _v in held_rows)])
    pdf.add_page()
    pdf.para(f"{municipality or ''}長　様")
    pdf.para(f"{prefecture}知事", size=10)
    pdf.ln(2)
    pdf.para(f"住民基本台帳法第30条の35の規定による調査（{source}）の結果、当都道府県サーバが保存する{register_label}に"
             "誤りがあることが判明したので、同法第12条の5の規定により通報します。事実を確認のうえ、住民票の記載の修正等を行い、"
             "市町村CSから修正の通知を送信してください。")
    pdf.items([("通報番号", report_id), ("端緒", f"{source}（{case_id}）"), ("住民票コード", juminhyo_code),
               ("氏名", name), ("誤りの種類", kind)], label_w=36)
    pdf.heading("誤りのある項目と当方の記録")
    pdf.table(["項目", "都道府県サーバの記録"], [44, 130], held_rows, size=10)
    if statement:
        pdf.heading("本人の申出の内容")
        pdf.para(statement, size=10)
    pdf.ln(3)
    pdf.para(f"この通報は、市町村CSとの相互認証による通信路でも送信します（通報番号 {report_id}）。"
             "市町村CSの受領確認をもって送達を記録します。", size=9)
    return _done(pdf)
