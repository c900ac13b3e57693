"""The benchmarks page (``benchmarks/index.md``) and its plots, per measurement file and class.

Every plot and table names the platform it was measured on. Memory is drawn and
tabulated against both forms of exact attention (the fused kernel, the n×n scores of the
textbook form); feed-forward mechanisms are compared with the dense feed-forward layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog, TaxonomyClass
from tools.catalog.measurements import Figure, Result
from tools.site.context import (
    BELOW_CLAIM,
    BELOW_CLAIM_TEXT,
    FEW_LENGTHS,
    FEW_LENGTHS_TEXT,
    FFN_REFERENCE,
    FOOTNOTES,
    NO_SCORES,
    Measurement,
    SiteContext,
    Why,
    by_name,
    claimed_growth,
    dash,
    exponent,
    models,
    reference_series,
    skipped_at,
)
from tools.site.escaping import render
from tools.site.pages.misses import EXACT_TARGET_LENGTH, Miss, misses
from tools.site.pages.ratios import (
    NO_PEER,
    NO_POINT,
    RATIO_LENGTHS,
    RatioRow,
    exact_rows,
    peer_notes,
    peer_rows,
)
from tools.site.plots import FIGURE_LABELS, PALETTE, Series, format_count, loglog_svg

# The figures plotted per class, and the tab that shows each.
PLOTTED: tuple[tuple[Figure, str], ...] = (
    ("forward_s", "Time"),
    ("peak_bytes", "Memory"),
    ("flops", "FLOPs"),
)
REPORT_LENGTH = 4096
NEVER = Why("g", "never faster than its reference at the measured lengths")


def class_plot(measurement: Measurement, catalog: Catalog, code: str, figure: Figure) -> str | None:
    """The plot of one figure of every measured member of class ``code``, with references."""
    members = [
        (e, result)
        for e in by_name(models(catalog))
        if code in e.taxonomy and (result := measurement.result(e.id)) is not None
    ]
    if not members:
        return None
    label, formatter = FIGURE_LABELS[figure]
    # Past the palette's colours, lines are dotted so that none look alike.
    series = [
        Series(e.name, measurement.points(e.id, figure), PALETTE[i % len(PALETTE)], dotted=i >= 8)
        for i, (e, _) in enumerate(members)
    ]
    kinds = {result.kind for _, result in members}
    lengths = [n for line in series for n, _ in line.points]
    series += reference_series(
        measurement, figure, lengths, attention=kinds != {"ffn"}, ffn="ffn" in kinds
    )
    platforms = sorted({measurement.platform(result) for _, result in members})
    return loglog_svg(
        series,
        title=f"{catalog.taxonomy_class(code).name}: {label}",
        ylabel=label,
        y_format=formatter,
        caption="Measured on " + "; ".join(platforms),
    )


def benchmark_plots(catalog: Catalog, context: SiteContext) -> dict[str, str]:
    """``{file name: svg}``: per measurement file, class and figure, every mechanism."""
    plots: dict[str, str] = {}
    for measurement in context.measurements:
        for c in catalog.taxonomy:
            for figure, _ in PLOTTED:
                svg = class_plot(measurement, catalog, c.code, figure)
                if svg is not None:
                    plots[f"{measurement.name}-{c.code}-{figure}.svg"] = svg
    return plots


@dataclass(frozen=True)
class ResultRow:
    """One measured variant in the tables of every mechanism; figures are markup."""

    id: str
    name: str | None
    causal: bool
    ffn: bool
    claimed: tuple[str | None, str | None]
    time: list[Markup]
    memory: list[Markup]


@dataclass(frozen=True)
class Run:
    """One measurement file: its settings, its plots per class, its tables."""

    measurement: Measurement
    rate: Markup
    setup: str
    platform: str
    others: list[str]
    classes: list[tuple[TaxonomyClass, list[tuple[str, str]]]]
    rows: list[ResultRow]
    exact: list[RatioRow]
    peers: list[RatioRow]
    peer_notes: list[tuple[str, str, list[str]]]
    misses: list[Miss]


def _ratio(value: float | None, why: Markup, suffix: str = "") -> Markup:
    return Markup(f"{value:.2f}×{suffix}") if value is not None else why


def _row(result: Result, catalog: Catalog) -> ResultRow:
    relative = result.relative_to_dense
    crossover = result.crossover_n.forward_s if result.crossover_n else None
    at_report = next(
        (p for p in result.points if p.n == REPORT_LENGTH and p.flops is not None), None
    )
    fraction = at_report.flop_rate_fraction if at_report else None
    entry = catalog.entries.get(result.id)
    complexity = entry.complexity if entry else None
    time, memory = claimed_growth(complexity, "time"), claimed_growth(complexity, "memory")
    missing = dash(skipped_at(result, REPORT_LENGTH))
    ffn = result.kind == "ffn"
    suffix = " vs FFN" if ffn and result.reference else ""
    scores = result.memory_vs_materialised_softmax
    return ResultRow(
        id=result.id,
        name=entry.name if entry else None,
        causal=result.causal,
        ffn=ffn,
        claimed=(complexity.time, complexity.memory) if complexity else (None, None),
        time=[
            exponent(result, "forward_s", time),
            exponent(result, "forward_backward_s", time),
            exponent(result, "flops", time),
            _ratio(relative.forward_s if relative else None, missing, suffix),
            _ratio(relative.forward_backward_s if relative else None, missing, suffix),
            Markup(f"{100 * fraction:.1f}") if fraction is not None else missing,
            Markup(f"{crossover:.0f}") if crossover is not None else dash(NEVER),
        ],
        memory=[
            exponent(result, "peak_bytes", memory),
            _ratio(relative.peak_bytes if relative else None, missing, suffix),
            _ratio(scores, dash(NO_SCORES) if ffn else missing),
        ],
    )


def _run(
    measurement: Measurement, catalog: Catalog, available: set[str], profiles: dict[str, str]
) -> Run:
    file = measurement.file
    classes = []
    for c in catalog.taxonomy:
        plots = [(tab, f"{measurement.name}-{c.code}-{f}.svg") for f, tab in PLOTTED]
        if all(name in available for _, name in plots):
            classes.append((c, plots))
    others = sorted(
        {measurement.platform(r) for r in file.results.values() if r.machine is not None}
    )
    return Run(
        measurement=measurement,
        rate=Markup(format_count(file.matmul_flop_rate)),
        setup=", ".join(f"{k} {v}" for k, v in sorted(file.setup.model_dump().items())),
        platform=measurement.platform(),
        others=others,
        classes=classes,
        rows=[_row(result, catalog) for _, result in sorted(file.results.items())],
        exact=exact_rows(measurement, catalog),
        peers=peer_rows(measurement, catalog),
        peer_notes=peer_notes(measurement),
        misses=misses(measurement, catalog, profiles),
    )


def benchmarks_page(catalog: Catalog, context: SiteContext, plots: Iterable[str]) -> str:
    """Time, memory and FLOPs plots per family, and the run's machine and command."""
    available = set(plots)
    runs = [_run(m, catalog, available, context.profiles) for m in context.measurements]
    return render(
        "benchmarks.md.j2",
        runs=runs,
        footnotes=(*FOOTNOTES, NEVER, NO_PEER, NO_POINT),
        ratio_lengths=RATIO_LENGTHS,
        target_length=EXACT_TARGET_LENGTH,
        marks=((FEW_LENGTHS, FEW_LENGTHS_TEXT), (BELOW_CLAIM, BELOW_CLAIM_TEXT)),
        ffn_reference=FFN_REFERENCE,
    )
