"""Charts of the statistics, rendered on the server as SVG with matplotlib (A9; ADR 0014).

matplotlib's object API (``Figure`` + the SVG canvas) is used, never ``pyplot``, so no global
backend is switched and charts can be drawn from any thread. Text is embedded as glyph outlines
(``svg.fonttype = "path"``): the SVG looks the same on every screen and on paper, with no
Japanese font needed by the viewer. The server needs one: the first of :data:`FONT_FAMILIES`
that is installed (Debian ``fonts-ipafont-gothic``, else ``fonts-noto-cjk``, else IPAmj明朝).
Each SVG carries a ``<title>`` and ``role="img"`` for screen readers; the numbers are always
also shown as a table beside it.

Output is deterministic (fixed ids, no date), so the same counts give the same bytes.

Every drawing runs on **one** thread of its own (:func:`on_chart_thread`), whichever request
thread asks for it. matplotlib keeps its FreeType fonts per thread (``font_manager._get_font`` is
cached by thread id, up to 64 entries) and glibc gives each thread its own malloc arena, which keeps
the high-water mark of whatever was drawn there: drawn on the server's worker threads, each chart
left a font and an arena behind in every thread it happened to land on, and the resident memory of
``jukinet serve`` grew a step with each (issue 17 soak; ADR 0046). Drawing was already serialised
by a lock, so nothing runs slower.
"""

from __future__ import annotations

import html
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Optional, Sequence

FONT_FAMILIES = ("IPAexGothic", "IPAGothic", "IPAPGothic", "Noto Sans CJK JP", "Noto Sans JP", "IPAmjMincho")
#: a calm, colour-blind-safe palette (Okabe–Ito)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_lock = threading.Lock()  # matplotlib's font cache and rcParams are shared state
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jukinet-charts")
_on_thread = threading.local()


def on_chart_thread(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` run on the one chart thread (directly when already on it); its result
    or its exception."""
    if getattr(_on_thread, "yes", False):
        return fn(*args, **kwargs)
    return _executor.submit(_run_marked, fn, args, kwargs).result()


def _run_marked(fn, args, kwargs):
    _on_thread.yes = True
    return fn(*args, **kwargs)


@lru_cache(maxsize=1)
def japanese_font() -> Optional[str]:
    """The family used for Japanese text, or None when no Japanese font is installed."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for fam in FONT_FAMILIES:
        if fam in installed:
            return fam
    return None


def _rc() -> dict:
    fam = japanese_font()
    return {"svg.fonttype": "path", "svg.hashsalt": "jukinet", "font.family": [fam] if fam else ["sans-serif"],
            "font.size": 10, "axes.spines.top": False, "axes.spines.right": False, "axes.titleweight": "normal",
            "axes.titlesize": 12, "axes.axisbelow": True}


def _svg(fig, title: str) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": "jukinet"})
    svg = buf.getvalue()
    # accessible name; drop the XML prolog/doctype so the SVG can be inlined in HTML
    start = svg.index("<svg")
    svg = svg[start:]
    head_end = svg.index(">") + 1
    t = html.escape(title)
    return (svg[:head_end - 1] + f' role="img" aria-label="{t}">' + f"<title>{t}</title>" + svg[head_end:])


def _fmt(n: float) -> str:
    return f"{int(n):,}"


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[int]], *, horizontal: bool = False,
              stacked: bool = True, value_label: str = "件数", width: float = 8.0, height: Optional[float] = None,
              annotate: bool = True) -> str:
    """Bars per label; several series are stacked (or side by side). Returns the SVG text."""
    return on_chart_thread(_bar_chart, title, labels, series, horizontal=horizontal, stacked=stacked,
                           value_label=value_label, width=width, height=height, annotate=annotate)


def _bar_chart(title, labels, series, *, horizontal, stacked, value_label, width, height, annotate) -> str:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    import matplotlib

    n = len(labels)
    if height is None:
        height = max(3.0, 0.32 * n + 1.4) if horizontal else 4.2
    with _lock, matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(width, height), dpi=96, layout="constrained")
        ax = fig.add_subplot()
        pos = list(range(n))
        base = [0] * n
        k = len(series) or 1
        w = 0.8 if stacked else 0.8 / k
        for i, (name, values) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            off = [p + (i - (k - 1) / 2) * w for p in pos] if not stacked else pos
            if horizontal:
                ax.barh(off, values, height=w, left=base if stacked else None, label=name, color=color)
            else:
                ax.bar(off, values, width=w, bottom=base if stacked else None, label=name, color=color)
            if stacked:
                base = [b + v for b, v in zip(base, values)]
        totals = base if stacked else [max(vs) for vs in zip(*series.values())] if series else []
        if horizontal:
            ax.set_yticks(pos, labels)
            ax.invert_yaxis()
            ax.set_xlabel(value_label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt(v)))
            ax.grid(axis="x", color="#dddddd")
        else:
            ax.set_xticks(pos, labels, rotation=45 if n > 8 else 0, ha="right" if n > 8 else "center")
            ax.set_ylabel(value_label)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt(v)))
            ax.grid(axis="y", color="#dddddd")
        if annotate and stacked and n <= 40 and any(totals):
            for p, tot in zip(pos, totals):
                if tot:
                    if horizontal:
                        ax.annotate(_fmt(tot), (tot, p), xytext=(3, 0), textcoords="offset points", va="center",
                                    fontsize=8)
                    else:
                        ax.annotate(_fmt(tot), (p, tot), xytext=(0, 2), textcoords="offset points", ha="center",
                                    va="bottom", fontsize=8)
        if not any(totals):
            (ax.set_xlim if horizontal else ax.set_ylim)(0, 1)
        ax.set_title(title, loc="left")
        if len(series) > 1:
            ax.legend(frameon=False, fontsize=9, loc="best")
        return _svg(fig, title)


def message_chart(title: str, message: str, *, width: float = 8.0, height: float = 2.2) -> str:
    """A panel with a title and a message instead of bars ("no data yet")."""
    return on_chart_thread(_message_chart, title, message, width=width, height=height)


def _message_chart(title: str, message: str, *, width: float, height: float) -> str:
    from matplotlib.figure import Figure
    import matplotlib

    with _lock, matplotlib.rc_context(_rc()):
        fig = Figure(figsize=(width, height), dpi=96)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.text(0.02, 0.85, title, fontsize=12, va="top")
        ax.text(0.5, 0.42, message, fontsize=11, ha="center", va="center", color="#555555")
        return _svg(fig, f"{title}: {message}")
