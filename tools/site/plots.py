"""Static SVG figures for the site, drawn by our own code at generate time.

The site must build offline and quickly, so plots are plain SVG text written from the
measurement files: no plotting library, no JavaScript. Every label that comes from the
catalog is XML-escaped here.

Examples:
    >>> svg = loglog_svg([Series("dense", [(256, 1e-3), (512, 4e-3)])], ylabel="time")
    >>> svg.startswith("<svg") and "dense" in svg
    True

The taxonomy diagram is drawn by :mod:`tools.site.diagram` with the same helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from tools.catalog.measurements import Figure

# Colour-blind-safe palette (Okabe–Ito); dense is always drawn in black.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#8C564B",
)
DENSE_COLOUR = "#222222"
# The other references: the n×n scores of textbook attention, the dense feed-forward layer.
SCORES_COLOUR = "#888888"
FFN_COLOUR = "#6A3D9A"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


@dataclass(frozen=True)
class Series:
    """One line of a plot: a label and its (n, value) points."""

    label: str
    points: Sequence[tuple[float, float]]
    colour: str = PALETTE[0]
    dashed: bool = False
    dotted: bool = False

    @property
    def dash(self) -> str:
        """The stroke-dasharray attribute of the line (empty when solid)."""
        if self.dashed:
            return ' stroke-dasharray="6 4"'
        return ' stroke-dasharray="2 3"' if self.dotted else ""


def xml_text(text: object) -> str:
    """XML-escape text for an SVG element or attribute.

    The SVG sits in a Markdown page, whose extensions read it line by line before any
    HTML parsing (pymdownx.snippets): line breaks become references, so the text is one
    line and no line syntax can start in it.

    Examples:
        >>> xml_text('a <b>\\n--8<-- "index.md"')
        'a &lt;b&gt;&#10;--8&lt;-- &quot;index.md&quot;'
    """
    escaped = escape(str(text), quote=True)
    return escaped.replace("\r", "&#13;").replace("\n", "&#10;")


def format_length(n: float) -> str:
    """A sequence length as the axis shows it.

    Examples:
        >>> format_length(256), format_length(4096), format_length(16384)
        ('256', '4k', '16k')
    """
    return f"{n / 1024:g}k" if n >= 1024 else f"{n:g}"


def format_seconds(value: float) -> str:
    """Seconds with a readable unit.

    Examples:
        >>> format_seconds(0.002), format_seconds(3.0), format_seconds(2e-6)
        ('2 ms', '3 s', '2 µs')
    """
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(value) >= scale or unit == "ns":
            return f"{value / scale:.3g} {unit}"
    raise AssertionError("unreachable")


def format_bytes(value: float) -> str:
    """Bytes with a binary unit.

    Examples:
        >>> format_bytes(3 * 2**20), format_bytes(512)
        ('3 MiB', '512 B')
    """
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} B"


def format_count(value: float) -> str:
    """A large count (FLOPs) with an SI prefix.

    Examples:
        >>> format_count(2.5e9), format_count(12)
        ('2.5 G', '12')
    """
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


# Figures of a measurement point, as the site names and formats them.
FIGURE_LABELS: dict[Figure, tuple[str, Callable[[float], str]]] = {
    "forward_s": ("forward time", format_seconds),
    "forward_backward_s": ("forward + backward time", format_seconds),
    "peak_bytes": ("peak memory", format_bytes),
    "flops": ("forward FLOPs", format_count),
}


def _decades(low: float, high: float) -> list[float]:
    """Powers of ten covering [low, high], at least two of them."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    if first == last:
        last += 1
    return [10.0**k for k in range(first, last + 1)]


def _doublings(low: float, high: float) -> list[float]:
    """Powers of two covering [low, high], thinned to at most seven ticks.

    Examples:
        >>> _doublings(256, 4096)
        [256.0, 512.0, 1024.0, 2048.0, 4096.0]
        >>> [int(t).bit_length() - 1 for t in _doublings(2**20, 2**30)]
        [20, 22, 24, 26, 28, 30]
    """
    first, last = math.floor(math.log2(low)), math.ceil(math.log2(high))
    if first == last:
        last += 1
    step = max(1, math.ceil((last - first + 1) / 7))
    # Whole multiples of the step, so that ticks land on round powers (1 MiB, 4 MiB, ...).
    first -= first % step
    last += -last % step
    return [2.0**k for k in range(first, last + 1, step)]


@dataclass
class _Axes:
    """Maps log-scaled data coordinates into a rectangle of the SVG."""

    left: float
    top: float
    width: float
    height: float
    x_ticks: list[float] = field(default_factory=list)
    y_ticks: list[float] = field(default_factory=list)

    def x(self, n: float) -> float:
        low, high = math.log2(self.x_ticks[0]), math.log2(self.x_ticks[-1])
        return self.left + (math.log2(n) - low) / (high - low) * self.width

    def y(self, value: float) -> float:
        low, high = math.log10(self.y_ticks[0]), math.log10(self.y_ticks[-1])
        return self.top + self.height - (math.log10(value) - low) / (high - low) * self.height


def _y_ticks(low: float, high: float, y_format: Callable[[float], str]) -> list[float]:
    # Bytes read best at powers of two (1 MiB, 4 MiB), everything else at decades.
    return _doublings(low, high) if y_format is format_bytes else _decades(low, high)


def _panel(
    series: Sequence[Series],
    *,
    left: float,
    top: float,
    width: float,
    height: float,
    title: str,
    ylabel: str,
    y_format: Callable[[float], str],
) -> list[str]:
    """The SVG elements of one log–log panel."""
    points = [(n, v) for s in series for n, v in s.points if n > 0 and v > 0]
    parts: list[str] = [
        f'<text x="{left + width / 2:.1f}" y="{top - 10:.1f}" text-anchor="middle" '
        f'font-size="13" font-weight="600">{xml_text(title)}</text>'
    ]
    if not points:
        parts.append(
            f'<text x="{left + width / 2:.1f}" y="{top + height / 2:.1f}" text-anchor="middle" '
            f'font-size="12" fill="#777">no data</text>'
        )
        return parts
    axes = _Axes(
        left,
        top,
        width,
        height,
        _doublings(min(n for n, _ in points), max(n for n, _ in points)),
        _y_ticks(min(v for _, v in points), max(v for _, v in points), y_format),
    )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" '
        f'stroke="#999" stroke-width="1"/>'
    )
    for tick in axes.x_ticks:
        x = axes.x(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" stroke="#e5e5e5"/>'
            f'<text x="{x:.1f}" y="{top + height + 15:.1f}" text-anchor="middle" '
            f'font-size="11">{xml_text(format_length(tick))}</text>'
        )
    for tick in axes.y_ticks:
        y = axes.y(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{xml_text(y_format(tick))}</text>'
        )
    parts.append(
        f'<text x="{left + width / 2:.1f}" y="{top + height + 32:.1f}" text-anchor="middle" '
        f'font-size="12">sequence length n (log scale)</text>'
        f'<text transform="translate({left - 62:.1f},{top + height / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" font-size="12">{xml_text(ylabel)}</text>'
    )
    for line in series:
        drawn = sorted((n, v) for n, v in line.points if n > 0 and v > 0)
        if not drawn:
            continue
        path = " ".join(f"{axes.x(n):.1f},{axes.y(v):.1f}" for n, v in drawn)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{line.colour}" '
            f'stroke-width="2"{line.dash}><title>{xml_text(line.label)}</title></polyline>'
        )
        for n, v in drawn:
            parts.append(
                f'<circle cx="{axes.x(n):.1f}" cy="{axes.y(v):.1f}" r="3" fill="{line.colour}">'
                f"<title>{xml_text(line.label)}: n = {n:g}, "
                f"{xml_text(y_format(v))}</title></circle>"
            )
    return parts


def _legend(
    series: Sequence[Series], *, left: float, top: float, columns: int, column_width: float
) -> list[str]:
    parts: list[str] = []
    # Long labels are cut to their column; the full label is in each line's tooltip.
    room = int((column_width - 36) / 6.5)
    for index, line in enumerate(series):
        x = left + (index % columns) * column_width
        y = top + (index // columns) * 18
        label = line.label if len(line.label) <= room else line.label[: room - 1] + "…"
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{line.colour}" '
            f'stroke-width="2"{line.dash}/>'
            f'<text x="{x + 30}" y="{y + 4}" font-size="12">{xml_text(label)}</text>'
        )
    return parts


def _caption(text: str, *, left: float, top: float) -> list[str]:
    """A small line of text under the legend (the platform the figures were measured on)."""
    return [
        f'<text x="{left}" y="{top + 14 * i}" font-size="11" fill="#555">{xml_text(line)}</text>'
        for i, line in enumerate(text.split("; ") if text else [])
    ]


def _caption_height(text: str) -> float:
    return 20.0 + 14 * text.count("; ") if text else 0.0


def svg_document(width: float, height: float, body: list[str], label: str) -> str:
    """A standalone SVG with a transparent background, so that it sits on the page's own
    colour in light and dark mode (the site's CSS inverts plots on the dark palette)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" aria-label="{xml_text(label)}" '
        f'style="{FONT}">' + "".join(body) + "</svg>\n"
    )


def loglog_svg(
    series: Sequence[Series],
    *,
    title: str = "",
    ylabel: str = "",
    y_format: Callable[[float], str] = format_count,
    caption: str = "",
) -> str:
    """One log–log plot of some figure against the sequence length; ``caption`` (the
    platform) is written under the legend."""
    legend_height = 18 * math.ceil(len(series) / 2)
    width, height = 520.0, 300.0 + legend_height + _caption_height(caption)
    body = _panel(
        series,
        left=80,
        top=30,
        width=350,
        height=210,
        title=title,
        ylabel=ylabel,
        y_format=y_format,
    )
    body += _legend(series, left=20, top=300, columns=2, column_width=250)
    body += _caption(caption, left=20, top=300 + legend_height + 6)
    return svg_document(width, height, body, title or ylabel)


def panels_svg(
    panels: Sequence[tuple[str, str, Callable[[float], str], Sequence[Series]]],
    *,
    label: str,
    caption: str = "",
    legend: Sequence[Series] | None = None,
) -> str:
    """Several log–log panels side by side sharing one legend.

    Args:
        panels: ``(title, ylabel, y_format, series)`` per panel; the legend is taken
            from the first panel's series.
        label: The accessible name of the figure.
        caption: A line under the legend (the platform the figures were measured on).
        legend: The legend's lines, when not the first panel's.
    """
    panel_width, gap = 330.0, 100.0
    width = 80 + len(panels) * panel_width + (len(panels) - 1) * gap + 20
    if legend is None:
        legend = panels[0][3] if panels else []
    legend_height = 18 * math.ceil(len(legend) / 3)
    height = 300.0 + legend_height + _caption_height(caption)
    body: list[str] = []
    for index, (title, ylabel, y_format, series) in enumerate(panels):
        body += _panel(
            series,
            left=80 + index * (panel_width + gap),
            top=30,
            width=panel_width,
            height=210,
            title=title,
            ylabel=ylabel,
            y_format=y_format,
        )
    body += _legend(legend, left=20, top=300, columns=3, column_width=(width - 40) / 3)
    body += _caption(caption, left=20, top=300 + legend_height + 6)
    return svg_document(width, height, body, label)
