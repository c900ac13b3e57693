"""The complexity of a model's page: claimed, as the survey prints it, and as measured.

Also the page's plot: time and memory against n beside dense, from the first
measurement file that has the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup

from tools.catalog import Complexity, Entry
from tools.catalog.measurements import Figure, Relative
from tools.site.context import SiteContext, growth, growth_text, power
from tools.site.plots import DENSE_COLOUR, FIGURE_LABELS, PALETTE, Series, panels_svg

NONE = Markup("—")


@dataclass(frozen=True)
class SurveyRow:
    """The survey's printed complexity, when it is written differently from the paper's."""

    row: int
    complexity: str
    remark: str


@dataclass(frozen=True)
class MeasuredRow:
    """One measured variant: fitted exponents (as markup) and the ratios to dense."""

    label: str
    causal: bool
    forward: Markup
    forward_backward: Markup
    flops: Markup
    peak_bytes: Markup
    relative: Relative | None


@dataclass(frozen=True)
class ComplexityData:
    claimed: Complexity | None
    time_growth: Markup = NONE
    memory_growth: Markup = NONE
    survey: SurveyRow | None = None
    measured: list[MeasuredRow] = field(default_factory=list)
    plot: str | None = None
    crossings: list[tuple[str, str]] = field(default_factory=list)


def _survey_row(entry: Entry, complexity: Complexity) -> SurveyRow | None:
    survey = entry.survey
    if survey is None:
        return None
    printed = re.sub(r"\s+", "", survey.complexity.replace("N", "n")).lower()
    if printed == re.sub(r"\s+", "", complexity.time).lower():
        return None
    symbol = "N" if re.search(r"\bN\b", survey.complexity) else "n"
    survey_growth = growth(survey.complexity, symbol)
    same = survey_growth is not None and survey_growth == growth(complexity.time)
    remark = "same growth in n" if same else "differs from the paper"
    return SurveyRow(survey.row, survey.complexity, remark)


def complexity_data(entry: Entry, context: SiteContext, plot_path: str | None) -> ComplexityData:
    complexity = entry.complexity
    if complexity is None:
        return ComplexityData(None)
    measured = context.measured(entry.id)
    time_growth, memory_growth = growth(complexity.time), growth(complexity.memory)
    rows = []
    for measurement, result in measured:
        exponents = result.exponents
        rows.append(
            MeasuredRow(
                label=measurement.label,
                causal=result.causal,
                forward=power(exponents.forward_s if exponents else None),
                forward_backward=power(exponents.forward_backward_s if exponents else None),
                flops=power(exponents.flops if exponents else None),
                peak_bytes=power(exponents.peak_bytes if exponents else None),
                relative=result.relative_to_dense,
            )
        )
    crossings = [
        (m.label, f"{r.crossover_n.forward_s:.0f}")
        for m, r in measured
        if r.crossover_n and r.crossover_n.forward_s and not r.causal
    ]
    return ComplexityData(
        claimed=complexity,
        time_growth=growth_text(time_growth) if time_growth else NONE,
        memory_growth=growth_text(memory_growth) if memory_growth else NONE,
        survey=_survey_row(entry, complexity),
        measured=rows,
        plot=plot_path,
        crossings=crossings,
    )


def paper_plot(entry: Entry, context: SiteContext) -> str | None:
    """Time and memory of the entry beside dense, from its first measurement file."""
    measured = context.measured(entry.id)
    if not measured:
        return None
    measurement = measured[0][0]
    panels = []
    figures: tuple[tuple[Figure, str], ...] = (
        ("forward_s", "forward time"),
        ("peak_bytes", "peak memory"),
    )
    for figure, ylabel in figures:
        label, formatter = FIGURE_LABELS[figure]
        series = []
        for index, causal in enumerate((False, True)):
            suffix = ":causal" if causal else ""
            points = measurement.points(entry.id + suffix, figure)
            if points:
                name = entry.name + (" (causal)" if causal else "")
                series.append(Series(name, points, PALETTE[index], dashed=causal))
                dense = measurement.points("dense" + suffix, figure)
                if dense:
                    dense_name = "dense" + (" (causal)" if causal else "")
                    series.append(Series(dense_name, dense, DENSE_COLOUR, dashed=causal))
        panels.append((f"{label.capitalize()} ({measurement.label})", ylabel, formatter, series))
    return panels_svg(panels, label=f"{entry.name}: time and memory against n beside dense")
