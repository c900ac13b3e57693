"""The benchmarks page (``benchmarks/index.md``) and its plots, per measurement file and class."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog, TaxonomyClass
from tools.catalog.measurements import Figure, Result
from tools.site.context import Measurement, SiteContext, by_name, models, number
from tools.site.escaping import render
from tools.site.plots import DENSE_COLOUR, FIGURE_LABELS, PALETTE, Series, format_count, loglog_svg

# The figures plotted per class, and the tab that shows each.
PLOTTED: tuple[tuple[Figure, str], ...] = (
    ("forward_s", "Time"),
    ("peak_bytes", "Memory"),
    ("flops", "FLOPs"),
)
REPORT_LENGTH = 4096


def benchmark_plots(catalog: Catalog, context: SiteContext) -> dict[str, str]:
    """``{file name: svg}``: per measurement file, class and figure, every mechanism."""
    plots: dict[str, str] = {}
    for measurement in context.measurements:
        for c in catalog.taxonomy:
            members = [
                e
                for e in by_name(models(catalog))
                if c.code in e.taxonomy and measurement.result(e.id)
            ]
            if not members:
                continue
            for figure, _ in PLOTTED:
                label, formatter = FIGURE_LABELS[figure]
                # Past the palette's colours, lines are dotted so that none look alike.
                series = [
                    Series(
                        e.name,
                        measurement.points(e.id, figure),
                        PALETTE[i % len(PALETTE)],
                        dotted=i >= len(PALETTE),
                    )
                    for i, e in enumerate(members)
                ]
                series.append(
                    Series("dense", measurement.points("dense", figure), DENSE_COLOUR, dashed=True)
                )
                plots[f"{measurement.name}-{c.code}-{figure}.svg"] = loglog_svg(
                    series, title=f"{c.name}: {label}", ylabel=label, y_format=formatter
                )
    return plots


@dataclass(frozen=True)
class ResultRow:
    """One measured variant in the table of every mechanism; ``figures`` are markup."""

    id: str
    name: str | None
    causal: bool
    claimed: str | None
    figures: list[Markup]


@dataclass(frozen=True)
class Run:
    """One measurement file: its settings, its plots per class, its table."""

    measurement: Measurement
    rate: Markup
    setup: str
    classes: list[tuple[TaxonomyClass, list[tuple[str, str]]]]
    rows: list[ResultRow]


def _row(result: Result, catalog: Catalog) -> ResultRow:
    exponents, relative = result.exponents, result.relative_to_dense
    crossover = result.crossover_n.forward_s if result.crossover_n else None
    at_report = next(
        (p for p in result.points if p.n == REPORT_LENGTH and p.flops is not None), None
    )
    fraction = at_report.flop_rate_fraction if at_report else None
    figures = [
        number(exponents.forward_s if exponents else None),
        number(exponents.forward_backward_s if exponents else None),
        number(exponents.peak_bytes if exponents else None),
        number(exponents.flops if exponents else None),
        number(relative.forward_s if relative else None),
        number(relative.forward_backward_s if relative else None),
        number(relative.peak_bytes if relative else None),
        number(result.memory_vs_materialised_softmax),
        Markup(f"{100 * fraction:.1f}" if fraction is not None else "—"),
        Markup(f"{crossover:.0f}" if crossover is not None else "—"),
    ]
    entry = catalog.entries.get(result.id)
    return ResultRow(
        id=result.id,
        name=entry.name if entry else None,
        causal=result.causal,
        claimed=result.claimed.time if result.claimed else None,
        figures=figures,
    )


def _run(measurement: Measurement, catalog: Catalog, available: set[str]) -> Run:
    file = measurement.file
    classes = []
    for c in catalog.taxonomy:
        plots = [(tab, f"{measurement.name}-{c.code}-{f}.svg") for f, tab in PLOTTED]
        if all(name in available for _, name in plots):
            classes.append((c, plots))
    return Run(
        measurement=measurement,
        rate=Markup(format_count(file.matmul_flop_rate)),
        setup=", ".join(f"{k} {v}" for k, v in sorted(file.setup.model_dump().items())),
        classes=classes,
        rows=[_row(result, catalog) for _, result in sorted(file.results.items())],
    )


def benchmarks_page(catalog: Catalog, context: SiteContext, plots: Iterable[str]) -> str:
    """Time, memory and FLOPs plots per family, and the run's machine and command."""
    available = set(plots)
    runs = [_run(m, catalog, available) for m in context.measurements]
    return render("benchmarks.md.j2", runs=runs)
