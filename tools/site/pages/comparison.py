"""The comparison table of every model (``comparison/index.md``): sortable and filterable.

The table is an HTML fragment (``comparison.html.j2``, autoescaped) inside the page's
Markdown, because sorting reads each cell's ``data-sort``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.catalog import Catalog, Entry
from tools.catalog.complexity import Growth
from tools.site.context import SiteContext, by_name, growth, models, number
from tools.site.escaping import render

HEADERS = (
    ("Model", ""),
    ("Class", ""),
    ("Year", "number"),
    ("Time<br>claimed", "number"),
    ("Memory<br>claimed", "number"),
    ("Time exp.<br>measured", "number"),
    ("Memory exp.<br>measured", "number"),
    ("Decode", ""),
    ("Time at 4k<br>/ dense", "number"),
    ("Memory at 4k<br>/ dense", "number"),
)
_DECODE = {True: "yes", False: "no", None: "—"}


@dataclass(frozen=True)
class Cell:
    """A numeric cell: what it sorts on (None: missing, sorts last) and what it shows."""

    sort: str | None
    text: str = ""


def _cell(value: float | None, text: str) -> Cell:
    return Cell(None) if value is None else Cell(f"{value:g}", text)


def _growth_key(value: Growth | None) -> float | None:
    # Claimed complexities sort by their growth in n; a log factor ranks just above.
    return None if value is None else value.exponent + 0.01 * value.log_power


@dataclass(frozen=True)
class Row:
    entry: Entry
    classes: str
    cells: tuple[Cell, ...]
    decode: str


def _row(entry: Entry, context: SiteContext) -> Row:
    result = context.primary(entry.id)
    exponents = result.exponents if result else None
    relative = result.relative_to_dense if result else None
    complexity = entry.complexity
    forward = exponents.forward_s if exponents else None
    peak = exponents.peak_bytes if exponents else None
    relative_forward = relative.forward_s if relative else None
    relative_peak = relative.peak_bytes if relative else None
    return Row(
        entry=entry,
        classes=" ".join(entry.taxonomy),
        cells=(
            _cell(
                _growth_key(growth(complexity.time)) if complexity else None,
                complexity.time if complexity else "",
            ),
            _cell(
                _growth_key(growth(complexity.memory)) if complexity else None,
                complexity.memory if complexity else "",
            ),
            _cell(forward, number(forward)),
            _cell(peak, number(peak)),
            _cell(relative_forward, number(relative_forward) + "×"),
            _cell(relative_peak, number(relative_peak) + "×"),
        ),
        decode=_DECODE[entry.decode],
    )


def comparison_page(catalog: Catalog, context: SiteContext) -> str:
    """The comparison of every model, sortable by clicking a header and filterable."""
    return render(
        "comparison.md.j2",
        headers=HEADERS,
        rows=[_row(e, context) for e in by_name(models(catalog))],
        classes=catalog.taxonomy,
        source=context.measurements[0].label if context.measurements else None,
    )
