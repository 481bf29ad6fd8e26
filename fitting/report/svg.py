"""Small inline-SVG charts for the static dashboard (no matplotlib, no external assets).

Each function returns one ``<svg class="fig">`` element as text, with a ``<title>`` for
screen readers and a ``<title>`` tooltip on every mark. Coordinates are rounded to 0.1 px.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_MARGIN = (48, 16, 28, 56)  # top, right, bottom (+ labels), left


def _e(s) -> str:
    return escape(str(s), quote=True)


def _r(v) -> str:
    return f"{v:.1f}"


class _Scale:
    def __init__(self, lo, hi, a, b, log=False):
        if log:
            lo, hi = math.log(lo), math.log(hi)
        if hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi, self.a, self.b, self.log = lo, hi, a, b, log

    def __call__(self, v):
        v = math.log(v) if self.log else v
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _log_ticks(lo, hi, base2=False):
    if base2:
        k0, k1 = math.floor(math.log2(lo)), math.ceil(math.log2(hi))
        step = max(1, math.ceil((k1 - k0 + 1) / 10))
        return [2.0**k for k in range(k0, k1 + 1, step) if lo <= 2.0**k <= hi]
    out = []
    for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**k
            if lo <= v <= hi:
                out.append(v)
    return out


def _lin_ticks(lo, hi, n=5):
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    out, v = [], start
    while v <= hi + 1e-12:
        out.append(round(v, 10))
        v += step
    return out


def _fmt_tick(v, pct=False):
    if pct:
        return f"{100 * v:.3g}%"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def _frame(width, height, title, desc):
    return [f'<svg class="fig" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
            f"<title>{_e(title)}</title>", f"<desc>{_e(desc)}</desc>",
            f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" class="fig-title">{_e(title)}</text>']


def _legend_layout(items, x, width):
    """(label, color, x, row) of each legend entry, wrapped at ``width``."""
    out, xx, row = [], x, 0
    for label, color in items:
        w = 26 + 6.0 * len(str(label))
        if xx > x and xx + w > width:
            xx, row = x, row + 1
        out.append((label, color, xx, row))
        xx += w
    return out


def _legend_rows(items, x, width):
    return (max(r for *_, r in _legend_layout(items, x, width)) + 1) if items else 0


def _legend(items, x, y, width):
    out = []
    for label, color, xx, row in _legend_layout(items, x, width):
        yy = y + row * 14
        out.append(f'<rect x="{_r(xx)}" y="{_r(yy - 8)}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{_r(xx + 14)}" y="{_r(yy + 1)}" class="fig-legend">{_e(label)}</text>')
    return out


def scatter(points, *, title, xlabel, ylabel, xlog=True, ylog=True, base2_x=False, diagonal=False,
            ypct=False, groups=None, width=520, height=400, desc="") -> str:
    """Scatter plot.

    Parameters
    ----------
    points : list of dict
        ``x``, ``y`` (> 0 on log axes), optional ``lo``/``hi`` (vertical interval),
        ``group`` (legend entry) and ``tip`` (tooltip text). Non-finite points are dropped.
    groups : list of str, optional
        Legend order (default: order of appearance).
    """
    pts = [p for p in points if all(isinstance(p.get(k), (int, float)) and math.isfinite(p[k]) for k in ("x", "y"))
           and (not xlog or p["x"] > 0) and (not ylog or p["y"] > 0)]
    groups = groups or list(dict.fromkeys(p.get("group", "") for p in pts))
    color = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    top, right, bottom, left = _MARGIN
    legend = [(g, color[g]) for g in groups] if len(groups) > 1 else []
    n_leg_rows = _legend_rows(legend, left, width - right)
    top += 14 * n_leg_rows
    height += 14 * n_leg_rows
    out = _frame(width, height, title, desc or f"{len(pts)} points")
    if not pts:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(out)
    xs = [p["x"] for p in pts]
    ys = [p["y"] for p in pts] + [p[k] for p in pts for k in ("lo", "hi")
                                  if isinstance(p.get(k), (int, float)) and math.isfinite(p[k]) and (not ylog or p[k] > 0)]
    xlo, xhi = min(xs), max(xs)
    ylo, yhi = min(ys), max(ys)
    if diagonal:
        xlo = ylo = min(xlo, ylo)
        xhi = yhi = max(xhi, yhi)
    if xlog:
        xlo, xhi = xlo / 1.3, xhi * 1.3
    else:
        pad = 0.05 * (xhi - xlo or 1.0)
        xlo, xhi = xlo - pad, xhi + pad
    if ylog:
        ylo, yhi = ylo / 1.3, yhi * 1.3
    else:
        ylo, yhi = min(0.0, ylo), yhi * 1.08 + 1e-12
    sx = _Scale(xlo, xhi, left, width - right, xlog)
    sy = _Scale(ylo, yhi, height - bottom - 18, top, ylog)
    out += _legend(legend, left, 34, width - right)
    out.append(f'<g class="axes"><line x1="{left}" y1="{_r(sy.a)}" x2="{width - right}" y2="{_r(sy.a)}"/>'
               f'<line x1="{left}" y1="{_r(sy.a)}" x2="{left}" y2="{top}"/></g>')
    xt = _log_ticks(xlo, xhi, base2_x) if xlog else _lin_ticks(xlo, xhi)
    yt = _log_ticks(ylo, yhi) if ylog else _lin_ticks(ylo, yhi)
    for v in xt:
        out.append(f'<line class="grid" x1="{_r(sx(v))}" y1="{top}" x2="{_r(sx(v))}" y2="{_r(sy.a)}"/>'
                   f'<text x="{_r(sx(v))}" y="{_r(sy.a + 14)}" text-anchor="middle" class="tick">'
                   f"{_e(_fmt_tick(v))}</text>")
    for v in yt:
        out.append(f'<line class="grid" x1="{left}" y1="{_r(sy(v))}" x2="{width - right}" y2="{_r(sy(v))}"/>'
                   f'<text x="{left - 4}" y="{_r(sy(v) + 4)}" text-anchor="end" class="tick">'
                   f"{_e(_fmt_tick(v, ypct))}</text>")
    if diagonal:
        out.append(f'<line class="diag" x1="{_r(sx(xlo))}" y1="{_r(sy(xlo))}" x2="{_r(sx(xhi))}" '
                   f'y2="{_r(sy(xhi))}"><title>predicted = measured</title></line>')
    for p in pts:
        c = color[p.get("group", "")]
        tip = f"<title>{_e(p.get('tip', ''))}</title>" if p.get("tip") else ""
        lo, hi = p.get("lo"), p.get("hi")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and math.isfinite(lo) and math.isfinite(hi) \
                and (not ylog or lo > 0):
            out.append(f'<line x1="{_r(sx(p["x"]))}" y1="{_r(sy(lo))}" x2="{_r(sx(p["x"]))}" y2="{_r(sy(hi))}" '
                       f'stroke="{c}" stroke-opacity="0.35"/>')
        out.append(f'<circle class="mark" cx="{_r(sx(p["x"]))}" cy="{_r(sy(p["y"]))}" r="3.5" fill="{c}" '
                   f'fill-opacity="0.8">{tip}</circle>')
    out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" text-anchor="middle" class="label">'
               f"{_e(xlabel)}</text>")
    out.append(f'<text transform="translate(14,{(top + sy.a) / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'class="label">{_e(ylabel)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def grouped_bars(categories, series, *, title, ylabel, targets=None, ymax=None, width=640, height=380,
                 desc="") -> str:
    """Grouped bar chart of fractions (shown as percent).

    Parameters
    ----------
    categories : list of str
    series : list of (label, list of float or None)
        One value per category (None/NaN: no bar).
    targets : dict, optional
        ``{category: fraction}`` drawn as a dashed line across the group.
    ymax : float, optional
        Axis limit; taller bars are clipped and labelled with their value.
    """
    top, right, bottom, left = _MARGIN
    legend = [(lab, PALETTE[i % len(PALETTE)]) for i, (lab, _) in enumerate(series)]
    n_leg_rows = _legend_rows(legend, left, width - right)
    top += 14 * n_leg_rows
    height += 14 * n_leg_rows
    out = _frame(width, height, title, desc or f"{len(categories)} groups, {len(series)} series")
    vals = [v for _, vs in series for v in vs if isinstance(v, (int, float)) and math.isfinite(v)]
    vals += [v for v in (targets or {}).values() if v is not None]
    if not vals or not categories:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(out)
    top_v = ymax if ymax is not None else max(vals) * 1.1
    sy = _Scale(0.0, top_v, height - bottom - 18, top)
    out += _legend(legend, left, 34, width - right)
    out.append(f'<g class="axes"><line x1="{left}" y1="{_r(sy.a)}" x2="{width - right}" y2="{_r(sy.a)}"/>'
               f'<line x1="{left}" y1="{_r(sy.a)}" x2="{left}" y2="{top}"/></g>')
    for v in _lin_ticks(0.0, top_v):
        out.append(f'<line class="grid" x1="{left}" y1="{_r(sy(v))}" x2="{width - right}" y2="{_r(sy(v))}"/>'
                   f'<text x="{left - 4}" y="{_r(sy(v) + 4)}" text-anchor="end" class="tick">'
                   f"{_e(_fmt_tick(v, True))}</text>")
    gw = (width - right - left) / len(categories)
    bw = gw * 0.8 / max(len(series), 1)
    for ci, cat in enumerate(categories):
        x0 = left + ci * gw + gw * 0.1
        for si, (lab, vs) in enumerate(series):
            v = vs[ci] if ci < len(vs) else None
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            shown = min(v, top_v)
            y = sy(shown)
            c = PALETTE[si % len(PALETTE)]
            out.append(f'<rect class="mark" x="{_r(x0 + si * bw)}" y="{_r(y)}" width="{_r(bw * 0.92)}" '
                       f'height="{_r(sy.a - y)}" fill="{c}"><title>{_e(cat)}, {_e(lab)}: {100 * v:.1f}%</title></rect>')
            if v > top_v:
                out.append(f'<text x="{_r(x0 + si * bw + bw / 2)}" y="{_r(y + 10)}" text-anchor="middle" '
                           f'class="clip">{100 * v:.0f}%</text>')
        t = (targets or {}).get(cat)
        if t is not None:
            out.append(f'<line class="target" x1="{_r(x0 - gw * 0.05)}" y1="{_r(sy(t))}" x2="{_r(x0 + gw * 0.85)}" '
                       f'y2="{_r(sy(t))}"><title>{_e(cat)} target: MAPE &lt; {100 * t:.0f}%</title></line>')
        out.append(f'<text x="{_r(left + ci * gw + gw / 2)}" y="{_r(sy.a + 14)}" text-anchor="middle" class="tick">'
                   f"{_e(cat)}</text>")
    out.append(f'<text transform="translate(14,{(top + sy.a) / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'class="label">{_e(ylabel)}</text>')
    out.append("</svg>")
    return "\n".join(out)
