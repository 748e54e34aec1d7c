"""Inline SVG figures for the dashboard, drawn in Python (no JavaScript, no npm): a level x condition
heatmap of kappa, confusion matrices, Bland-Altman plots and forest plots of kappa with CIs.

Each function returns one ``<svg>`` element as text, with every label escaped and every number
formatted to a fixed precision, so the same data always give the same bytes. Colours follow the site's
dark theme; the kappa scale is a single-hue ramp from -0.2 (or below, red) to 1 (bright blue), and each
cell prints its value so the figure does not depend on colour vision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

TEXT = "#e6e9ee"
MUTED = "#98a2b0"
LINE = "#2a313b"
ACCENT = "#4aa3ff"
WARN = "#f0b429"
FONT = 'font-family="system-ui, sans-serif"'


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


def _text(x: float, y: float, label: str, *, size: int = 12, anchor: str = "middle", fill: str = TEXT, extra: str = "") -> str:
    return f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" {FONT}{extra}>{escape(label)}</text>'


def kappa_colour(value: float | None) -> str:
    """Cell colour of a kappa: grey when undefined, red below 0, dark to bright blue from 0 to 1."""
    if value is None or not math.isfinite(value):
        return "#333a44"
    if value < 0:
        return "#8a2d2b"
    t = min(value, 1.0)
    r, g, b = (int(round(a + (c - a) * t)) for a, c in zip((24, 32, 44), (52, 140, 235), strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(rows: Sequence[str], columns: Sequence[str], values: Mapping[tuple[str, str], float | None], *, title: str, column_labels: Mapping[str, str] | None = None) -> str:
    """Rows x columns grid, each cell coloured by its kappa and printing it (``-`` when undefined)."""
    cell_w, cell_h, left, top = 150, 34, 90, 56
    width, height = max(left + cell_w * len(columns) + 10, 330), top + cell_h * len(rows) + 48
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="figure heatmap" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    parts.append(_text(4, 16, title, size=13, anchor="start"))
    labels = column_labels or {}
    for j, column in enumerate(columns):
        name = labels.get(column, column)
        parts.append(_text(left + cell_w * (j + 0.5), top - 10, name if len(name) <= 23 else name[:22] + "…", size=11, fill=MUTED))
    for i, row in enumerate(rows):
        y = top + cell_h * i
        parts.append(_text(left - 8, y + cell_h / 2 + 4, row, size=12, anchor="end", fill=MUTED))
        for j, column in enumerate(columns):
            value = values.get((row, column))
            x = left + cell_w * j
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{kappa_colour(value)}" rx="3"><title>{escape(row)} · {escape(column)}: {"undefined" if value is None else f"{value:.3f}"}</title></rect>')
            parts.append(_text(x + cell_w / 2 - 1, y + cell_h / 2 + 4, "–" if value is None else f"{value:.2f}", size=13))
    legend_y = top + cell_h * len(rows) + 14
    parts.append(_text(left - 8, legend_y + 11, "scale", size=10, anchor="end", fill=MUTED))
    for k, (value, label) in enumerate(((-0.1, "<0"), (0.0, "0"), (0.2, ".2"), (0.4, ".4"), (0.6, ".6"), (0.8, ".8"), (1.0, "1"))):
        parts.append(f'<rect x="{left + 30 * k}" y="{legend_y}" width="28" height="14" fill="{kappa_colour(value)}"/>')
        parts.append(_text(left + 30 * k + 14, legend_y + 26, label, size=9, fill=MUTED))
    parts.append("</svg>")
    return "".join(parts)


def confusion_svg(matrix: Sequence[Sequence[int]], categories: Sequence[str], *, rows_label: str, columns_label: str, title: str) -> str:
    """A k x k table of counts, rows ``rows_label``, columns ``columns_label``; the diagonal is outlined."""
    k = len(categories)
    cell, left, top = 34, 70, 58
    width, height = left + cell * k + 12, top + cell * k + 12
    peak = max((max(row) for row in matrix), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="figure confusion" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    parts.append(_text(4, 14, title, size=12, anchor="start"))
    parts.append(_text(left + cell * k / 2, 32, f"{columns_label} →", size=11, fill=MUTED))
    parts.append(_text(12, top + cell * k / 2, f"{rows_label} →", size=11, fill=MUTED, extra=f' transform="rotate(-90 12 {_fmt(top + cell * k / 2)})"'))
    for j, category in enumerate(categories):
        parts.append(_text(left + cell * (j + 0.5), top - 6, category, size=11, fill=MUTED))
        parts.append(_text(left - 6, top + cell * (j + 0.5) + 4, category, size=11, anchor="end", fill=MUTED))
    for i in range(k):
        for j in range(k):
            count = int(matrix[i][j])
            shade = kappa_colour(count / peak if count else None) if count else "#1f252d"
            stroke = f' stroke="{ACCENT}" stroke-width="1.5"' if i == j else ""
            parts.append(f'<rect x="{left + cell * j}" y="{top + cell * i}" width="{cell - 2}" height="{cell - 2}" fill="{shade}"{stroke} rx="2"/>')
            parts.append(_text(left + cell * j + cell / 2 - 1, top + cell * i + cell / 2 + 4, str(count), size=11))
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _frame(width: int, height: int, left: int, top: int, right: int, bottom: int, x_range: tuple[float, float], y_range: tuple[float, float], x_label: str, y_label: str, *, y_ticks: bool = True) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    (x0, x1), (y0, y1) = x_range, y_range

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    def sy(v: float) -> float:
        return height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="{LINE}"/>']
    for t in _ticks(x0, x1):
        parts.append(f'<line x1="{_fmt(sx(t))}" x2="{_fmt(sx(t))}" y1="{height - bottom}" y2="{height - bottom + 4}" stroke="{MUTED}"/>')
        parts.append(_text(sx(t), height - bottom + 16, f"{t:g}", size=10, fill=MUTED))
    for t in _ticks(y0, y1) if y_ticks else []:
        parts.append(f'<line x1="{left - 4}" x2="{left}" y1="{_fmt(sy(t))}" y2="{_fmt(sy(t))}" stroke="{MUTED}"/>')
        parts.append(_text(left - 6, sy(t) + 3, f"{t:g}", size=10, anchor="end", fill=MUTED))
    parts.append(_text(left + (width - left - right) / 2, height - 4, x_label, size=11, fill=MUTED))
    if y_label:
        parts.append(_text(12, top + (height - top - bottom) / 2, y_label, size=11, fill=MUTED, extra=f' transform="rotate(-90 12 {_fmt(top + (height - top - bottom) / 2)})"'))
    return parts, sx, sy


def bland_altman_svg(a: Sequence[float], b: Sequence[float], *, bias: float | None, loa_lower: float | None, loa_upper: float | None, unit: str, title: str) -> str:
    """Difference ``a - b`` against the mean of ``a`` and ``b``, with the bias and the limits of agreement."""
    width, height, left, top, right, bottom = 420, 280, 52, 28, 70, 36
    means = [(x + y) / 2 for x, y in zip(a, b, strict=True)]
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    lines = [v for v in (bias, loa_lower, loa_upper) if v is not None]
    if not means:
        return f'<svg xmlns="http://www.w3.org/2000/svg" class="figure" width="{width}" height="40">{_text(4, 20, title + ": no pairs", anchor="start")}</svg>'
    x0, x1 = min(means), max(means)
    y0, y1 = min(diffs + lines), max(diffs + lines)
    pad_x, pad_y = (x1 - x0) * 0.08 or 1.0, (y1 - y0) * 0.12 or 1.0
    parts, sx, sy = _frame(width, height, left, top, right, bottom, (x0 - pad_x, x1 + pad_x), (y0 - pad_y, y1 + pad_y), f"mean ({unit})", f"difference ({unit})")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="figure bland-altman" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    out.append(_text(4, 16, title, size=12, anchor="start"))
    out += parts
    for value, name, colour, dash in ((bias, "bias", ACCENT, ""), (loa_lower, "−LoA", WARN, ' stroke-dasharray="5 4"'), (loa_upper, "+LoA", WARN, ' stroke-dasharray="5 4"')):
        if value is None:
            continue
        y = sy(value)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{colour}"{dash}/>')
        out.append(_text(width - right + 4, y + 4, f"{name} {value:.2f}", size=10, anchor="start", fill=colour))
    for m, d in zip(means, diffs, strict=True):
        out.append(f'<circle cx="{_fmt(sx(m))}" cy="{_fmt(sy(d))}" r="3" fill="{TEXT}" fill-opacity="0.75"/>')
    out.append("</svg>")
    return "".join(out)


def forest_svg(rows: Sequence[tuple[str, float | None, float | None, float | None]], *, title: str, x_label: str = "kappa") -> str:
    """One line per comparison: the estimate as a square and its CI as a bar, on a -0.2..1 axis
    (widened when an interval reaches further); rows without an estimate say so."""
    row_h, left, top, right, bottom = 24, 150, 30, 110, 36
    width, height = 620, top + row_h * max(len(rows), 1) + bottom
    values = [v for _, e, lo, hi in rows for v in (e, lo, hi) if v is not None]
    x0, x1 = min([-0.2, *values]), max([1.0, *values])
    parts, sx, _ = _frame(width, height, left, top, right, bottom, (x0, x1), (0.0, 1.0), x_label, "", y_ticks=False)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="figure forest" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">']
    out.append(_text(4, 16, title, size=12, anchor="start"))
    out += parts
    zero = sx(0.0)
    out.append(f'<line x1="{_fmt(zero)}" x2="{_fmt(zero)}" y1="{top}" y2="{height - bottom}" stroke="{MUTED}" stroke-dasharray="3 3"/>')
    for i, (label, estimate, low, high) in enumerate(rows):
        y = top + row_h * (i + 0.5)
        out.append(_text(left - 8, y + 4, label, size=11, anchor="end"))
        if estimate is None:
            out.append(_text(width - right + 6, y + 4, "undefined", size=10, anchor="start", fill=MUTED))
            continue
        if low is not None and high is not None:
            out.append(f'<line x1="{_fmt(sx(low))}" x2="{_fmt(sx(high))}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{ACCENT}" stroke-width="2"/>')
        x = sx(estimate)
        out.append(f'<rect x="{_fmt(x - 4)}" y="{_fmt(y - 4)}" width="8" height="8" fill="{TEXT}"/>')
        ci = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
        out.append(_text(width - right + 6, y + 4, f"{estimate:.2f}{ci}", size=10, anchor="start", fill=MUTED))
    out.append("</svg>")
    return "".join(out)
