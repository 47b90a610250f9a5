"""Charts drawn on the server as SVG: bars, a funnel, a month-by-month line and a map of the CCMA
communes. No script, nothing fetched from elsewhere; they print as they show.

A withheld figure is never drawn to scale: its bar is a short hatched stub with a note, its point a
hollow mark on the axis, its circle a dashed ring of fixed size. Every chart has a text title and
sits next to a table with the same figures, for screen readers and for print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from ..services.stats import Figure

GREEN = "#1f6f4a"
GREEN_LIGHT = "#cfe5d8"
BLUE = "#2a5b9c"
INK = "#1d2622"
MUTED = "#5b6660"
LINE = "#d9e0dc"
HIDDEN = "#9aa5a0"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

Format = Callable[[float], str]


def _hatch(pattern_id: str) -> str:
    return (f'<defs><pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eef1ef"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{HIDDEN}" stroke-width="2"/></pattern></defs>')


def _svg(width: float, height: float, title: str, body: str, css_class: str) -> Markup:
    return Markup(
        f'<svg class="chart {css_class}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-family="{FONT}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _text(x: float, y: float, text: str, *, size: float = 13, anchor: str = "start", fill: str = INK,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}">{escape(text)}</text>')


@dataclass(frozen=True)
class Bar:
    label: str
    figure: Figure
    note: str = ""  # shown instead of a value when the figure is withheld


def bars(items: Sequence[Bar], fmt: Format, title: str, *, width: int = 560, color: str = GREEN,
         label_width: int = 250, pattern_id: str = "hatch-bars") -> Markup:
    """Horizontal bars, one per item, longest first as given."""
    row, top, size = 28, 6, 13.5
    height = top + row * max(len(items), 1) + 6
    values = [b.figure.value for b in items if b.figure.value is not None]
    scale_max = max(values) if values else 1.0
    scale_max = scale_max or 1.0
    bar_space = width - label_width - 90
    parts = [_hatch(pattern_id)]
    for i, item in enumerate(items):
        y = top + i * row
        fits = int((label_width - 12) / (size * 0.56))
        parts.append(_text(label_width - 8, y + 18, _clip(item.label, fits), anchor="end", size=size))
        figure = item.figure
        if figure.value is not None:
            length = max(bar_space * figure.value / scale_max, 1.5 if figure.value > 0 else 0)
            parts.append(f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 9}" '
                         f'rx="3" fill="{color}"/>')
            parts.append(_text(label_width + length + 6, y + 18, fmt(figure.value), size=size, weight="600"))
        elif figure.status == "empty":
            parts.append(_text(label_width + 4, y + 18, "—", size=size, fill=MUTED))
        else:
            parts.append(f'<rect x="{label_width}" y="{y + 4}" width="34" height="{row - 9}" rx="3" '
                         f'fill="url(#{pattern_id})" stroke="{HIDDEN}"/>')
            parts.append(_text(label_width + 42, y + 18, item.note, size=size - 1, fill=MUTED))
    return _svg(width, height, title, "".join(parts), "bars")


@dataclass(frozen=True)
class Step:
    label: str
    figure: Figure
    rate: Figure | None
    note: str = ""


def funnel(steps: Sequence[Step], fmt: Format, pct: Format, title: str, *, width: int = 560) -> Markup:
    """One bar per step, narrowing from the matches found to the recurring exchanges; each step's
    name above its bar, with the share of the previous step that got this far."""
    row = 56
    height = row * len(steps) + 4
    first = next((s.figure.value for s in steps if s.figure.value), None) or 1.0
    max_width = width - 70
    parts = [_hatch("hatch-funnel")]
    for i, step in enumerate(steps):
        y = 2 + i * row
        shade = [GREEN, "#2d7d57", "#3b8d66", "#4d9c76", "#62ab88"][min(i, 4)]
        label = _text(0, y + 15, step.label, size=15, weight="600")
        if step.rate is not None:
            rate = pct(step.rate.value) if step.rate.value is not None else "—"
            label = label[:-7] + f'<tspan fill="{MUTED}" font-weight="normal">  {escape(rate)}</tspan></text>'
        parts.append(label)
        bar_y = y + 22
        if step.figure.value is not None:
            w = max(max_width * step.figure.value / first, 3)
            parts.append(f'<rect x="0" y="{bar_y}" width="{w:.1f}" height="26" rx="4" fill="{shade}"/>')
            parts.append(_text(w - 8, bar_y + 19, fmt(step.figure.value), anchor="end", size=16, fill="#fff",
                               weight="700") if w > 60 else _text(w + 6, bar_y + 19, fmt(step.figure.value),
                                                                  size=16, weight="700"))
        elif step.figure.status == "empty":
            parts.append(_text(4, bar_y + 19, "—", size=16, fill=MUTED))
        else:
            parts.append(f'<rect x="0" y="{bar_y}" width="60" height="26" rx="4" fill="url(#hatch-funnel)" '
                         f'stroke="{HIDDEN}"/>')
            parts.append(_text(68, bar_y + 19, step.note, size=13, fill=MUTED))
    return _svg(width, height, title, "".join(parts), "funnel")


@dataclass(frozen=True)
class Point:
    label: str  # "2026-03"
    short: str  # "mars" — the axis label
    figure: Figure


def line(points: Sequence[Point], fmt: Format, title: str, *, width: int = 560, height: int = 250,
         color: str = GREEN) -> Markup:
    """Month by month: a line through the shown months; a withheld month breaks the line and is
    marked by a hollow dot on the axis (its value is not drawn)."""
    left, right, top, bottom = 52, 26, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p.figure.value for p in points if p.figure.value is not None]
    peak = _nice(max(values) if values else 1.0)
    n = max(len(points), 1)
    step = plot_w / max(n - 1, 1)
    parts = []
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{LINE}"/>')
        parts.append(_text(left - 6, y + 4, fmt(value), anchor="end", size=13, fill=MUTED))
    segments: list[list[tuple[float, float]]] = [[]]
    every = max(1, math.ceil(n / 7))
    for i, point in enumerate(points):
        x = left + (step * i if n > 1 else plot_w / 2)
        if (n - 1 - i) % every == 0:
            parts.append(_text(x, height - 12, point.short, anchor="middle", size=13, fill=MUTED))
        if point.figure.value is None:
            if segments[-1]:
                segments.append([])
            if point.figure.status != "empty":
                parts.append(f'<circle cx="{x:.1f}" cy="{top + plot_h:.1f}" r="4" fill="#fff" '
                             f'stroke="{HIDDEN}" stroke-width="2"/>')
            continue
        y = top + plot_h - plot_h * point.figure.value / peak
        segments[-1].append((x, y))
    area = []
    for segment in segments:
        if len(segment) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            base = top + plot_h
            area.append(f'<polygon points="{segment[0][0]:.1f},{base:.1f} {coords} {segment[-1][0]:.1f},{base:.1f}" '
                        f'fill="{GREEN_LIGHT}" opacity="0.7"/>')
            area.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2.5" '
                        f'stroke-linejoin="round"/>')
        for x, y in segment:
            area.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>')
    return _svg(width, height, title, "".join(parts + area), "line")


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float
    figure: Figure


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull (monotone chain), to draw the territory as a soft shape behind the communes."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def commune_map(places: Sequence[Place], fmt: Format, title: str, legend: str, hidden_note: str, *,
                width: int = 560, max_height: int = 620) -> Markup:
    """The CCMA communes at their centroids; circle area proportional to the figure. Names are
    placed beside their point where they overlap no other name."""
    if not places:
        return _svg(width, 40, title, _text(8, 24, title, fill=MUTED), "commune-map")
    side, top, foot = 96, 30, 46
    lat0 = sum(p.lat for p in places) / len(places)
    kx = math.cos(math.radians(lat0))
    xs = [p.lon * kx for p in places]
    ys = [p.lat for p in places]
    x_span, y_span = (max(xs) - min(xs)) or 0.01, (max(ys) - min(ys)) or 0.01
    scale = (width - 2 * side) / x_span
    if y_span * scale + top * 2 + foot > max_height:
        scale = (max_height - top * 2 - foot) / y_span
    height = y_span * scale + top * 2 + foot
    ox = (width - x_span * scale) / 2

    def project(p: Place) -> tuple[float, float]:
        return ox + (p.lon * kx - min(xs)) * scale, top + (max(ys) - p.lat) * scale

    values = [p.figure.value for p in places if p.figure.value]
    peak = max(values) if values else 1.0
    max_r = 32.0
    points = {p.name: project(p) for p in places}
    hull = " ".join(f"{x:.1f},{y:.1f}" for x, y in _hull(list(points.values())))
    parts = [f'<rect x="0" y="0" width="{width}" height="{height:.0f}" fill="#fbfcfb" rx="8"/>',
             f'<polygon points="{hull}" fill="#e3efe8" stroke="#e3efe8" stroke-width="44" stroke-linejoin="round"/>']
    circles, labels = [], []
    placed: list[tuple[float, float, float, float]] = []
    order = sorted(places, key=lambda p: -(p.figure.value or 0))
    for place in order:
        x, y = points[place.name]
        figure = place.figure
        if figure.value:
            r = max(max_r * math.sqrt(figure.value / peak), 3.5)
            circles.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{GREEN}" fill-opacity="0.6" '
                           f'stroke="{GREEN}" stroke-width="1.5"/>')
        elif figure.value is None and figure.status != "empty":
            r = 6.0
            circles.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="#fff" stroke="{HIDDEN}" '
                           f'stroke-width="1.5" stroke-dasharray="3 2"/>')
        else:
            r = 2.5
            circles.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{MUTED}"/>')
        text = place.name + (f" {fmt(figure.value)}" if figure.value else "")
        size = 12.5 if figure.value else 11
        w, h = len(text) * size * (0.62 if figure.value else 0.56), size
        for dx, dy, anchor in ((r + 3, 4, "start"), (-(r + 3), 4, "end"), (0, -(r + 4), "middle"),
                               (0, r + 12, "middle")):
            left = x + dx if anchor == "start" else x + dx - w if anchor == "end" else x + dx - w / 2
            box = (left, y + dy - h, left + w, y + dy + 2)
            if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in placed) \
                    and box[0] >= 0 and box[2] <= width:
                placed.append(box)
                labels.append(_text(x + dx, y + dy, text, size=size, anchor=anchor,
                                    fill=INK if figure.value else MUTED,
                                    weight="700" if figure.value else "normal"))
                break
        else:
            if figure.value:  # a figure is always named, even over another name
                right = x + r + 3 + w <= width
                labels.append(_text(x + r + 3 if right else x - r - 3, y + 4, text, size=size,
                                    anchor="start" if right else "end", weight="700"))
    parts.extend(circles)
    parts.extend(labels)
    bar = 5.0 / 111.32 * scale  # 5 km
    base = height - 16
    parts.append(f'<line x1="14" x2="{14 + bar:.1f}" y1="{base - 12:.1f}" y2="{base - 12:.1f}" stroke="{INK}" '
                 f'stroke-width="2"/>')
    parts.append(_text(14, base + 2, "5 km", size=12, fill=MUTED))
    parts.append(_text(width - 14, base - 14, legend, anchor="end", size=12, fill=MUTED))
    parts.append(f'<circle cx="{width - 20}" cy="{base - 2:.1f}" r="5" fill="#fff" stroke="{HIDDEN}" '
                 f'stroke-dasharray="3 2"/>')
    parts.append(_text(width - 30, base + 2, hidden_note, anchor="end", size=12, fill=MUTED))
    return _svg(width, height, title, "".join(parts), "commune-map")


def _nice(value: float) -> float:
    """A round ceiling for an axis (1, 2, 2.5, 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10 ** exponent >= value:
            return float(m * 10 ** exponent)
    return float(10 ** (exponent + 1))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
