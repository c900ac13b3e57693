"""The comparison table of every model (``comparison/index.md``): sortable and filterable.

The table is an HTML fragment (``comparison.html.j2``, autoescaped) inside the page's
Markdown, because sorting reads each cell's ``data-sort``. Memory at 4k is shown against
both references of exact attention: the fused kernel (which never stores the n×n scores)
and the n×n scores that the textbook form materialises. Feed-forward mechanisms are
compared with the dense feed-forward layer they replace instead. Every "—" says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog, Entry
from tools.catalog.complexity import Growth
from tools.catalog.names import fold
from tools.site.context import (
    BELOW_CLAIM,
    BELOW_CLAIM_TEXT,
    DENSE_FFN,
    FEW_LENGTHS,
    FEW_LENGTHS_TEXT,
    FFN_REFERENCE,
    FOOTNOTES,
    NO_CLAIM,
    NO_DECODE,
    NO_SCORES,
    NOT_MEASURED,
    Measurement,
    SiteContext,
    by_name,
    claimed_growth,
    dash,
    exponent,
    models,
    skipped_at,
)
from tools.site.escaping import render

REPORT_LENGTH = 4096
HEADERS = (
    ("Model", ""),
    ("Class", ""),
    ("Year", "number"),
    ("Time<br>claimed", "number"),
    ("Memory<br>claimed", "number"),
    ("Time exp.<br>measured", "number"),
    ("Memory exp.<br>measured", "number"),
    ("Decode", ""),
    ("Time at 4k<br>/ exact attention,<br>fused kernel", "number"),
    ("Memory at 4k<br>/ exact attention,<br>fused kernel", "number"),
    ("Memory at 4k<br>/ exact attention,<br>n×n scores", "number"),
)
_DECODE = {True: "yes", False: "no"}
# What a feed-forward row's ratios are against, shown in its cells.
FFN_SUFFIX = " vs FFN"


@dataclass(frozen=True)
class Cell:
    """A numeric cell: what it sorts on (None: missing, sorts last) and what it shows."""

    sort: str | None
    text: Markup


def _cell(value: float | None, text: Markup) -> Cell:
    return Cell(None if value is None else f"{value:g}", text)


def _growth_key(value: Growth | None) -> float | None:
    # Claimed complexities sort by their growth in n; a log factor ranks just above.
    return None if value is None else value.exponent + 0.01 * value.log_power


@dataclass(frozen=True)
class Row:
    entry: Entry
    classes: str
    folded: str
    cells: tuple[Cell, ...]
    decode: Markup


def _ratio(value: float | None, why: Markup, suffix: str = "") -> Cell:
    return _cell(value, Markup(f"{value:.2f}×{suffix}") if value is not None else why)


def _row(entry: Entry, context: SiteContext) -> Row:
    result = context.primary(entry.id)
    complexity = entry.complexity
    time_growth = claimed_growth(complexity, "time")
    memory_growth = claimed_growth(complexity, "memory")
    relative = result.relative_to_dense if result else None
    ffn = result is not None and result.kind == "ffn"
    missing = dash(NOT_MEASURED) if result is None else dash(skipped_at(result, REPORT_LENGTH))
    suffix = FFN_SUFFIX if ffn else ""
    scores = result.memory_vs_materialised_softmax if result else None
    return Row(
        entry=entry,
        classes=" ".join(entry.taxonomy),
        folded=fold(entry.name + " " + " ".join(entry.aliases)).lower(),
        cells=(
            _cell(_growth_key(time_growth), Markup("{}").format(complexity.time))
            if complexity
            else Cell(None, dash(NO_CLAIM)),
            _cell(_growth_key(memory_growth), Markup("{}").format(complexity.memory))
            if complexity
            else Cell(None, dash(NO_CLAIM)),
            _cell(
                result.exponents.forward_s if result and result.exponents else None,
                exponent(result, "forward_s", time_growth),
            ),
            _cell(
                result.exponents.peak_bytes if result and result.exponents else None,
                exponent(result, "peak_bytes", memory_growth),
            ),
            _ratio(relative.forward_s if relative else None, missing, suffix),
            _ratio(relative.peak_bytes if relative else None, missing, suffix),
            _ratio(scores, dash(NO_SCORES) if ffn else missing),
        ),
        decode=Markup(_DECODE[entry.decode]) if entry.decode is not None else dash(NO_DECODE),
    )


def comparison_page(catalog: Catalog, context: SiteContext) -> str:
    """The comparison of every model, sortable by clicking a header and filterable."""
    measurement: Measurement | None = context.measurements[0] if context.measurements else None
    rows = [_row(e, context) for e in by_name(models(catalog))]
    ffn = measurement.result(DENSE_FFN) if measurement else None
    return render(
        "comparison.md.j2",
        headers=HEADERS,
        rows=rows,
        classes=catalog.taxonomy,
        years=sorted({row.entry.year for row in rows}),
        source=measurement.label if measurement else None,
        platform=measurement.platform() if measurement else None,
        footnotes=FOOTNOTES,
        marks=((FEW_LENGTHS, FEW_LENGTHS_TEXT), (BELOW_CLAIM, BELOW_CLAIM_TEXT)),
        ffn_platform=measurement.platform(ffn) if measurement and ffn else None,
        ffn_reference=FFN_REFERENCE,
    )
