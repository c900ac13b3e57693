"""Accuracy against speed, with memory as area: LRA's Figure 3, and ours.

Each model is a circle: x is its training speed, y its accuracy (in %), and the circle's
area is proportional to its peak memory. The Long Range Arena page draws LRA's Figure 3
from the data (speed at 4K tokens from Table 2, the average of Table 1, memory at 4K);
the quality page draws the same chart from our own runs (:mod:`tools.site.pages.quality`),
where the Pareto frontier of accuracy against speed is joined by a line and a task's
chance level is a dotted line.

The SVG is inlined in the page and draws with ``currentColor`` and the theme's CSS
variables only (no background, no fixed text colour), so it reads in the light and the
dark scheme alike. Every label is XML-escaped.
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
    """One model of the chart.

    ``tip`` is the circle's tooltip; empty, it reads as LRA's figures (% average,
    steps/s and GB at 4K).
    """

    name: str
    href: str  # empty: no page to link (a baseline)
    speed: float
    accuracy: float
    memory: float
    tip: str = ""


@dataclass(frozen=True)
class Axes:
    """What the two axes of a chart measure, as their labels say it."""

    x: str
    y: str


LRA_AXES = Axes("training steps per second at 4K tokens (Table 2)", "average accuracy, % (Table 1)")


def frontier(points: Sequence[Point]) -> list[Point]:
    """The Pareto frontier of accuracy against speed, slowest first.

    A point is on it when no other point is at least as fast and at least as accurate,
    and strictly better in one of the two: nothing beats it on both. Memory is not
    weighed (it is the circles' area, for the reader to judge).

    Examples:
        >>> names = lambda ps: [p.name for p in frontier(ps)]
        >>> names([Point("slow, exact", "", 1.0, 99.0, 4.0),
        ...        Point("fast, rough", "", 9.0, 60.0, 1.0),
        ...        Point("beaten", "", 0.5, 90.0, 1.0),
        ...        Point("middle", "", 5.0, 80.0, 2.0)])
        ['slow, exact', 'middle', 'fast, rough']
        >>> names([Point("a", "", 1.0, 50.0, 1.0), Point("b", "", 1.0, 50.0, 2.0)])
        ['a', 'b']
    """

    def beaten(p: Point) -> bool:
        return any(
            q.speed >= p.speed
            and q.accuracy >= p.accuracy
            and (q.speed > p.speed or q.accuracy > p.accuracy)
            for q in points
        )

    return sorted((p for p in points if not beaten(p)), key=lambda p: (p.speed, -p.accuracy))


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


def _tick_text(value: float) -> str:
    """A tick's label: thousands as ``k`` so that tokens per second stay short.

    Examples:
        >>> _tick_text(2.5), _tick_text(40000), _tick_text(1500)
        ('2.5', '40k', '1500')
    """
    return f"{value / 1000:g}k" if abs(value) >= 10_000 else f"{value:g}"


def _label(name: str, cx: float, cy: float, radius: float, *, right: bool) -> str:
    """A circle's label beside it: on its left when the circle is near the right edge."""
    x, anchor = (cx - radius - 3, "end") if right else (cx + radius + 3, "start")
    return (
        f'<text x="{x:.1f}" y="{cy + 4:.1f}" text-anchor="{anchor}" font-size="12" '
        f'fill="currentColor">{escape(name)}</text>'
    )


def accuracy_chart(
    points: Sequence[Point],
    *,
    title: str,
    axes: Axes,
    show_frontier: bool = False,
    chance: float | None = None,
) -> str:
    """The accuracy–speed–memory chart of ``points`` as an inline SVG.

    Args:
        points: One per model: speed (x), accuracy in % (y) and memory (the area).
        title: The chart's accessible name.
        axes: The axes' labels.
        show_frontier: Join the points of the Pareto frontier (:func:`frontier`) by a
            dashed line (class ``atlas-frontier``) and draw their circles bolder.
        chance: An accuracy in % to draw as a dotted line labelled "chance".

    Examples:
        >>> svg = accuracy_chart([Point("A", "", 1.0, 90.0, 2.0), Point("B", "", 3.0, 60.0, 1.0)],
        ...                      title="t", axes=Axes("x", "y"), show_frontier=True, chance=10)
        >>> svg.count("<circle"), svg.count('class="atlas-frontier"'), "chance" in svg
        (2, 1, True)
    """
    if not points:
        return ""
    xs = _ticks(0.0, max(p.speed for p in points) * 1.1)
    accuracies = [p.accuracy for p in points] + ([chance] if chance is not None else [])
    # Accuracy is in %: the axis never runs below 0 or above 100.
    ys = _ticks(max(0.0, min(accuracies) - 2), min(100.0, max(accuracies) + 2))
    biggest = max(p.memory for p in points)

    def radius(p: Point) -> float:
        return MAX_RADIUS * math.sqrt(p.memory / biggest)

    # A circle near the top of the axis would be cut by the chart's edge: lower the plot
    # until the largest such circle fits (the plot's height shrinks with it, so repeat).
    top = TOP
    for _ in range(3):
        plot_h = HEIGHT - top - BOTTOM
        below_top = [
            (ys[-1] - p.accuracy) / (ys[-1] - ys[0]) * plot_h + top - radius(p) for p in points
        ]
        top += max(0.0, 2.0 - min(below_top))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - top - BOTTOM

    def x(value: float) -> float:
        return LEFT + (value - xs[0]) / (xs[-1] - xs[0]) * plot_w

    def y(value: float) -> float:
        return top + plot_h - (value - ys[0]) / (ys[-1] - ys[0]) * plot_h

    best = frontier(points) if show_frontier else []
    body: list[str] = []
    for tick in xs:
        body.append(
            f'<line x1="{x(tick):.1f}" y1="{top:.1f}" x2="{x(tick):.1f}" y2="{top + plot_h:.1f}" '
            f'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{x(tick):.1f}" y="{top + plot_h + 18:.1f}" text-anchor="middle" '
            f'font-size="12" fill="currentColor">{_tick_text(tick)}</text>'
        )
    for tick in ys:
        body.append(
            f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" '
            f'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="currentColor">{_tick_text(tick)}</text>'
        )
    if chance is not None:
        body.append(
            f'<line class="atlas-chance" x1="{LEFT}" y1="{y(chance):.1f}" x2="{LEFT + plot_w}" '
            f'y2="{y(chance):.1f}" stroke="currentColor" stroke-opacity="0.6" '
            f'stroke-dasharray="2 3"/>'
            f'<text x="{LEFT + plot_w - 4}" y="{y(chance) - 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="currentColor">chance</text>'
        )
    if best:
        line = " ".join(f"{x(p.speed):.1f},{y(p.accuracy):.1f}" for p in best)
        body.append(
            f'<polyline class="atlas-frontier" points="{line}" fill="none" '
            f'stroke="currentColor" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
    for p in sorted(points, key=lambda p: -p.memory):  # small circles drawn on top
        r = radius(p)
        cx, cy = x(p.speed), y(p.accuracy)
        tip = p.tip or (
            f"{p.name}: {p.accuracy:g}% average, {p.speed:g} steps/s, {p.memory:g} GB at 4K"
        )
        width = "2.5" if p in best else "1"
        body.append(
            (f'<a href="{escape(p.href)}">' if p.href else "<g>") + f"<title>{escape(tip)}</title>"
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{FILL}" '
            f'fill-opacity="0.35" stroke="currentColor" stroke-width="{width}"/>'
            + _label(p.name, cx, cy, r, right=cx > LEFT + 0.7 * plot_w)
            + ("</a>" if p.href else "</g>")
        )
    body.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 12}" text-anchor="middle" font-size="13" '
        f'fill="currentColor">{escape(axes.x)}</text>'
        f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
        f'font-size="13" fill="currentColor">{escape(axes.y)}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" '
        f'width="{WIDTH:g}" height="{HEIGHT:g}" role="img" aria-label="{escape(title)}" '
        f'class="atlas-lra-chart" style="color: var(--md-default-fg-color, currentColor); '
        f'font-family: inherit">' + "".join(body) + "</svg>\n"
    )


def lra_chart(points: Sequence[Point], *, title: str) -> str:
    """LRA's Figure 3: :func:`accuracy_chart` with the benchmark's axes.

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
    return accuracy_chart(points, title=title, axes=LRA_AXES)
