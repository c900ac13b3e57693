"""LRA's Figure 3 redrawn from the data: accuracy against speed, with memory as area.

Each model is a circle: x is its training speed at 4K tokens (steps per second, Table 2),
y its average accuracy (Table 1), and the circle's area is proportional to its peak
memory at 4K. The SVG is inlined in the page and draws with ``currentColor`` and the
theme's CSS variables only (no background, no fixed text colour), so it reads in the
light and the dark scheme alike. Every label is XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720.0, 440.0
LEFT, RIGHT, TOP, BOTTOM = 64.0, 24.0, 20.0, 56.0
# Radius of the largest circle, in pixels; the others scale by the square root of memory.
MAX_RADIUS = 34.0
FILL = "var(--md-accent-fg-color, currentColor)"


@dataclass(frozen=True)
class Point:
    """One model of the chart."""

    name: str
    href: str  # empty: no page to link (a baseline)
    speed: float
    accuracy: float
    memory: float


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low``..``high``.

    Examples:
        >>> _ticks(0, 10)
        [0, 2, 4, 6, 8, 10]
    """
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    count = math.ceil((high - first) / step - 1e-9) + 1
    return [round(first + i * step, 6) for i in range(count)]


def _label(name: str, cx: float, cy: float, radius: float, *, right: bool) -> str:
    """A circle's label beside it: on its left when the circle is near the right edge."""
    x, anchor = (cx - radius - 3, "end") if right else (cx + radius + 3, "start")
    return (
        f'<text x="{x:.1f}" y="{cy + 4:.1f}" text-anchor="{anchor}" font-size="12" '
        f'fill="currentColor">{escape(name)}</text>'
    )


def lra_chart(points: Sequence[Point], *, title: str) -> str:
    """The accuracy–speed–memory chart of ``points`` as an inline SVG.

    Args:
        points: One per model, with speed (steps/s at 4K), accuracy (average %) and
            memory (GB at 4K).
        title: The chart's accessible name.

    Examples:
        >>> svg = lra_chart([Point("A <b>", "a/", 1.4, 54.39, 9.48),
        ...                  Point("B", "b/", 8.0, 51.41, 1.06)], title="LRA")
        >>> svg.count("<circle"), "A &lt;b&gt;" in svg, "fill=\\"white\\"" in svg
        (2, True, False)
    """
    if not points:
        return ""
    xs = _ticks(0.0, max(p.speed for p in points) * 1.1)
    ys = _ticks(min(p.accuracy for p in points) - 2, max(p.accuracy for p in points) + 2)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return LEFT + (value - xs[0]) / (xs[-1] - xs[0]) * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - (value - ys[0]) / (ys[-1] - ys[0]) * plot_h

    biggest = max(p.memory for p in points)
    body: list[str] = []
    for tick in xs:
        body.append(
            f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{TOP + plot_h}" '
            f'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" '
            f'font-size="12" fill="currentColor">{tick:g}</text>'
        )
    for tick in ys:
        body.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" '
            f'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="currentColor">{tick:g}</text>'
        )
    for p in sorted(points, key=lambda p: -p.memory):  # small circles drawn on top
        radius = MAX_RADIUS * math.sqrt(p.memory / biggest)
        cx, cy = x(p.speed), y(p.accuracy)
        tip = f"{p.name}: {p.accuracy:g}% average, {p.speed:g} steps/s, {p.memory:g} GB at 4K"
        body.append(
            (f'<a href="{escape(p.href)}">' if p.href else "<g>") + f"<title>{escape(tip)}</title>"
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{FILL}" '
            f'fill-opacity="0.35" stroke="currentColor" stroke-width="1"/>'
            + _label(p.name, cx, cy, radius, right=cx > LEFT + 0.7 * plot_w)
            + ("</a>" if p.href else "</g>")
        )
    body.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 12}" text-anchor="middle" font-size="13" '
        f'fill="currentColor">training steps per second at 4K tokens (Table 2)</text>'
        f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'font-size="13" fill="currentColor">average accuracy, % (Table 1)</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" '
        f'width="{WIDTH:g}" height="{HEIGHT:g}" role="img" aria-label="{escape(title)}" '
        f'class="atlas-lra-chart" style="color: var(--md-default-fg-color, currentColor); '
        f'font-family: inherit">' + "".join(body) + "</svg>\n"
    )
