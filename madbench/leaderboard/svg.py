"""Inline SVG line charts (metric vs generation), generated in Python: no JS, no network.

    from madbench.leaderboard.svg import line_chart
    svg = line_chart([{"label": "fully_synthetic", "points": [(0, 30.1), (1, 34.2)]}], title="perplexity")

Every label is escaped; a series may carry a 95% band ``[(x, low, high), ...]`` drawn
under its line (seed intervals).
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d",
           "#4f46e5", "#b45309", "#0f766e", "#be123c"]


def color(i: int, n: int) -> str:
    """The i-th of n colours, no two alike: the palette while it lasts, then hues a golden angle apart."""
    if n <= len(PALETTE):
        return PALETTE[i]
    return f"hsl({(i * 137.508) % 360:.1f}, 70%, {38 + 10 * (i % 3)}%)"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        lo, hi = lo - 1 if lo == hi else hi, hi + 1 if lo == hi else lo
    raw = (hi / max(1, count)) - (lo / max(1, count))  # divided first: hi - lo may overflow to inf
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 0.0
    step = next((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), math.inf)
    if not (math.isfinite(step) and step > 0 and math.isfinite(lo / step)):
        return [lo, hi]  # a span too wide for round ticks: just its ends
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 0.5 and len(ticks) < 20:
        ticks.append(round(t, 10))
        t += step
    return ticks


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def line_chart(series: list[dict], title: str = "", x_label: str = "generation", y_label: str = "",
               width: int = 460, height: int = 280, legend: bool = True) -> str:
    """An SVG string: one polyline with dots per series, axes with ticks, a legend under the plot (``legend=False``:
    none; the page draws one in HTML). A series may set its ``color``; else no two series share one."""
    pts = [(x, y) for s in series for x, y in s["points"]]
    pts += [(x, v) for s in series for x, lo, hi in s.get("band") or [] for v in (lo, hi)]
    longest = max((len(str(s["label"])) for s in series), default=0)
    cols = 2 if longest * 6.3 + 24 <= (width - 58) / 2 else 1  # about 6.3 px per legend character
    # a label is never cut: one legend column wider than the plot widens the picture, not the plot
    full_w = max(width, int(58 + 17 + longest * 6.3 + 8)) if legend else width
    legend_rows = math.ceil(len(series) / cols) if legend else 0
    left, right, top, bottom = 58, 16, 30, 42 + 18 * legend_rows
    full_h = height + 18 * legend_rows
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {full_w} {full_h}" '
           f'width="{full_w}" height="{full_h}" role="img" aria-label="{escape(title)}">',
           f'<text class="chart-title" x="{left}" y="18">{escape(title)}</text>']
    if not pts:
        out.append(f'<text class="chart-empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xt = list(range(int(min(xs)), int(max(xs)) + 1)) if max(xs) - min(xs) <= 12 else nice_ticks(min(xs), max(xs))
    yt = nice_ticks(min(ys), max(ys))
    x0, x1 = min(xt[0], min(xs)), max(xt[-1], max(xs))
    y0, y1 = min(yt[0], min(ys)), max(yt[-1], max(ys))
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    pw, ph = width - left - right, height - top - 42

    def frac(v, lo, hi):  # halved first so that v - lo cannot overflow to inf (inf / inf is nan)
        return (v / 2 - lo / 2) / (hi / 2 - lo / 2)

    def px(x):
        return left + frac(x, x0, x1) * pw

    def py(y):
        return top + ph - frac(y, y0, y1) * ph

    for t in yt:
        out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}"/>'
                   f'<text class="tick" x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>')
    for t in xt:
        out.append(f'<text class="tick" x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{fmt(t)}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}"/>'
               f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}"/>'
               f'<text class="axis-label" x="{left + pw / 2}" y="{top + ph + 32}" text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        out.append(f'<text class="axis-label" transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        colour = s.get("color") or color(i, len(series))
        band = sorted(s.get("band") or [])
        if len(band) > 1 and any(lo != hi for _, lo, hi in band):
            poly = [f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in band] + [f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(band)]
            out.append(f'<polygon class="band" fill="{colour}" points="{" ".join(poly)}"/>')
        points = sorted(s["points"])
        label = escape(str(s["label"]))
        out.append(f'<g class="series" data-label="{label}">')
        if len(points) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for x, y in points:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.2" fill="{colour}">'
                       f'<title>{label}: generation {fmt(x)}, {escape(title)} {fmt(y)}</title></circle>')
        out.append("</g>")
    for i, s in enumerate(series if legend else []):
        colour = s.get("color") or color(i, len(series))
        lx = left + (i % cols) * ((width - left) / cols)
        ly = height + 8 + 18 * (i // cols)
        text = str(s["label"])
        out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="12" height="4" rx="2" fill="{colour}"/>'
                   f'<text class="legend" x="{lx + 17:.1f}" y="{ly - 4}">{escape(text)}<title>{escape(str(s["label"]))}</title></text>')
    out.append("</svg>")
    return "".join(out)
