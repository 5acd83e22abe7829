"""The statistics report: the standard views of the counts, as tables, CSV files and SVG charts.

One function per output, shared by ``jukinet stats`` and the statistics screen, so both show the
same numbers: :func:`views` (small summary tables), :func:`charts` (SVG text per chart) and
:func:`write_files` (CSV of every source, UTF-8 with BOM so that Excel reads the Japanese; SVG
of every chart).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jukinet import charts as ch
from jukinet import wareki
from jukinet.ops.statistics import REGISTER_LABELS, Period, StatTable, municipality_name, with_names

STATUS_LABELS = {"completed": "完了", "refused": "拒否"}
KIND_LABELS = {"provision": "提供", "transfer": "移転", "national_query": "全国サーバ照会"}
SCOPE_LABELS = {"identity": "本人確認情報", "history": "履歴", "provisions": "提供状況"}
DISCLOSURE_OUTCOMES = {"matched": "一致", "partial": "一部一致", "unmatched": "不一致"}
CORRECTION_KINDS = {"correct": "訂正", "add": "追加", "delete": "削除"}
CORRECTION_STATUS = {"received": "受付", "investigating": "調査中", "no_correction": "訂正不要", "reported": "通報済",
                     "closed": "完了"}
_DIMS = {"disclosures": (SCOPE_LABELS, DISCLOSURE_OUTCOMES, ("開示の範囲", "突合結果")),
         "corrections": (CORRECTION_KINDS, CORRECTION_STATUS, ("種別", "状況"))}
OUTCOME_LABELS = {"provided": "提供済", "not_found": "該当なし", "ambiguous": "複数該当", "refused": "拒否",
                  "failed": "失敗"}


@dataclass
class View:
    """A summary table for people: title, column labels, rows (label, count, …)."""

    name: str
    title: str
    columns: tuple
    rows: list
    note: str = ""


def axis_months(months: list[str]) -> list[str]:
    """Chart axis labels in 和暦: 令和8年1月 (R8.1 when more than twelve months share the axis).

    >>> axis_months(["2026-01", "2026-02"]), axis_months([f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01"])[-1]
    (['令和8年1月', '令和8年2月'], 'R8.1')
    """
    if len(months) > 12:
        return [wareki.to_wareki(f"{m}-01", style="short").rsplit(".", 1)[0] for m in months]
    return [wareki.to_wareki_month(m) for m in months]


def _updates(tables: dict) -> dict[str, StatTable]:
    return {r: tables[f"updates_{r}"] for r in ("juki", "fuhyo") if f"updates_{r}" in tables}


def views(tables: dict[str, StatTable], period: Period) -> list[View]:
    out = []
    ups = _updates(tables)
    if ups:
        months = period.months()
        by = {r: t.sum_by(0) for r, t in ups.items()}
        rows = [(wareki.to_wareki_month(m), *[by[r].get(m, 0) for r in ups]) for m in months]
        rows.append(("合計", *[sum(by[r].values()) for r in ups]))
        out.append(View("updates_by_month", "更新件数 (月別)", ("年月", *[REGISTER_LABELS[r] for r in ups]), rows))
        for r, t in ups.items():
            reasons = sorted(t.sum_by(2).items(), key=lambda kv: (-kv[1], kv[0]))
            out.append(View(f"updates_by_reason_{r}", f"更新件数 (異動事由別, {REGISTER_LABELS[r]})", ("異動事由", "件数"),
                            reasons))
        codes = sorted(set().union(*[t.sum_by(1).keys() for t in ups.values()]))
        bym = {r: t.sum_by(1) for r, t in ups.items()}
        out.append(View("updates_by_municipality", "更新件数 (市町村別)",
                        ("市町村コード", "市町村", *[REGISTER_LABELS[r] for r in ups]),
                        [(c, municipality_name(c), *[bym[r].get(c, 0) for r in ups]) for c in codes]))
    t = tables.get("provisions")
    if t is not None and t.available:
        agg: dict = {}
        for _m, reg, _req, req_name, _aff, aff_name, kind, outcome, n in t.rows:
            a = agg.setdefault((req_name, aff_name, KIND_LABELS.get(kind, kind), REGISTER_LABELS.get(reg, reg)),
                               [0, 0, 0])
            a[0] += n
            a[1] += n if outcome == "refused" else 0
            a[2] += n if outcome == "provided" else 0
        out.append(View("provisions", "提供・移転件数 (提供先・事務別)",
                        ("提供先", "事務", "種別", "ファイル", "件数", "うち拒否", "うち提供済"),
                        [(*k, *v) for k, v in sorted(agg.items())],
                        "" if t.rows else "期間内の提供・移転はありません。"))
    elif t is not None:
        out.append(View("provisions", t.title, (), [], t.note))
    for name, (l1, l2, heads) in _DIMS.items():
        t = tables.get(name)
        if t is None:
            continue
        if not t.available:
            out.append(View(name, t.title, (), [], t.note))
            continue
        agg: dict = {}
        for _m, reg, a, b, n in t.rows:
            k = (REGISTER_LABELS.get(reg, reg), l1.get(a, a), l2.get(b, b))
            agg[k] = agg.get(k, 0) + n
        out.append(View(name, t.title, ("ファイル", *heads, "件数"), [(*k, v) for k, v in sorted(agg.items())],
                        "" if t.rows else "期間内の記録はありません。"))
    t = tables.get("consistency")
    if t is not None:
        agg: dict = {}
        for m, mc, reg, st, n, comp, d, p in t.rows:
            a = agg.setdefault((mc, reg), [0, 0, 0, 0, 0])
            a[0] += n if st == "completed" else 0
            a[1] += n if st == "refused" else 0
            a[2] += comp
            a[3] += d
            a[4] += p
        out.append(View("consistency", "整合性確認 (市町村別)",
                        ("市町村コード", "市町村", "ファイル", "完了", "拒否", "照合人数", "相違件数", "確認保留"),
                        [(mc, municipality_name(mc), REGISTER_LABELS[reg], *a) for (mc, reg), a in sorted(agg.items())],
                        "" if t.rows else "期間内の整合性確認はありません。"))
    return out


def charts(tables: dict[str, StatTable], period: Period) -> dict[str, tuple[str, str]]:
    """``{name: (title, svg)}`` for the standard charts."""
    out = {}
    ups = _updates(tables)
    months = period.months()
    if ups:
        title = f"更新件数 (月別) {period.label()}"
        series = {REGISTER_LABELS[r]: [t.sum_by(0).get(m, 0) for m in months] for r, t in ups.items()}
        out["updates_by_month"] = (title, ch.bar_chart(title, axis_months(months),
                                                       series, stacked=False if len(ups) > 1 else True,
                                                       annotate=False))
        for r, t in ups.items():
            reasons = sorted(t.sum_by(2).items(), key=lambda kv: (-kv[1], kv[0]))
            title = f"更新件数 (異動事由別, {REGISTER_LABELS[r]})"
            if reasons:
                out[f"updates_by_reason_{r}"] = (title, ch.bar_chart(title, [k for k, _ in reasons],
                                                                     {"件数": [v for _, v in reasons]},
                                                                     horizontal=True))
            else:
                out[f"updates_by_reason_{r}"] = (title, ch.message_chart(title, "期間内の更新はありません。"))
        codes = sorted(set().union(*[t.sum_by(1).keys() for t in ups.values()]))
        title = "更新件数 (市町村別)"
        if codes:
            out["updates_by_municipality"] = (title, ch.bar_chart(
                title, [municipality_name(c) for c in codes],
                {REGISTER_LABELS[r]: [t.sum_by(1).get(c, 0) for c in codes] for r, t in ups.items()},
                horizontal=True))
        else:
            out["updates_by_municipality"] = (title, ch.message_chart(title, "期間内の更新はありません。"))
    short = axis_months(months)
    t = tables.get("provisions")
    if t is not None and not t.available:
        out["provisions"] = (t.title, ch.message_chart(t.title, t.note))
    elif t is not None:
        title = f"{t.title} (月別・種別)"
        if t.rows:
            by: dict = {}
            for m, _reg, _req, _rn, _aff, _an, kind, _outcome, n in t.rows:
                by.setdefault(kind, {})[m] = by.setdefault(kind, {}).get(m, 0) + n
            out["provisions"] = (title, ch.bar_chart(
                title, short, {KIND_LABELS.get(k, k): [v.get(m, 0) for m in months] for k, v in sorted(by.items())},
                annotate=False))
        else:
            out["provisions"] = (title, ch.message_chart(title, "期間内の提供・移転はありません。"))
    for name, (l1, _l2, _heads) in _DIMS.items():
        t = tables.get(name)
        if t is None:
            continue
        if not t.available:
            out[name] = (t.title, ch.message_chart(t.title, t.note))
            continue
        title = f"{t.title} (月別)"
        if not t.rows:
            out[name] = (title, ch.message_chart(title, "期間内の記録はありません。"))
            continue
        by: dict = {}
        for m, _reg, a, _b, n in t.rows:
            by.setdefault(a, {})[m] = by.setdefault(a, {}).get(m, 0) + n
        out[name] = (title, ch.bar_chart(title, short, {l1.get(a, a): [v.get(m, 0) for m in months]
                                                        for a, v in sorted(by.items())}, annotate=False))
    t = tables.get("consistency")
    if t is not None:
        title = "整合性確認 (月別の確認回数)"
        if t.rows:
            by = {st: {} for st in ("completed", "refused")}
            for m, _mc, _reg, st, n, *_ in t.rows:
                by.setdefault(st, {})[m] = by.setdefault(st, {}).get(m, 0) + n
            out["consistency"] = (title, ch.bar_chart(
                title, axis_months(months),
                {STATUS_LABELS.get(st, st): [by[st].get(m, 0) for m in months] for st in by}, annotate=False))
        else:
            out["consistency"] = (title, ch.message_chart(title, "期間内の整合性確認はありません。"))
    return out


def write_files(tables: dict[str, StatTable], period: Period, *, csv_dir: Path | None = None,
                svg_dir: Path | None = None) -> list[Path]:
    written = []
    if csv_dir is not None:
        csv_dir.mkdir(parents=True, exist_ok=True)
        for name, t in tables.items():
            p = csv_dir / f"{name}_{period.start}_{period.end}.csv"
            p.write_text(with_names(t).to_csv(), encoding="utf-8-sig", newline="")
            written.append(p)
    if svg_dir is not None:
        svg_dir.mkdir(parents=True, exist_ok=True)
        for name, (_title, svg) in charts(tables, period).items():
            p = svg_dir / f"{name}_{period.start}_{period.end}.svg"
            p.write_text(svg, encoding="utf-8")
            written.append(p)
    return written
