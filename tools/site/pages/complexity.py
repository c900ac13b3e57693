"""The complexity of a model's page: claimed, as the survey prints it, and as measured.

The claimed growth lets the symbols defined from n (``n_b = n/b``) grow with it; the
others are held fixed, and the page says which is which. Also the page's plot: time and
memory against n beside the references (exact attention through the fused kernel and, for
memory, its n×n scores; the dense feed-forward layer for feed-forward mechanisms), from
the first measurement file that has the model, with the platform it was measured on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup

from tools.catalog import Complexity, Entry
from tools.catalog.complexity import Growth
from tools.catalog.measurements import Figure, Relative, Result
from tools.site.context import (
    FFN_REFERENCE,
    NO_FIT,
    SiteContext,
    claimed_growth,
    dash,
    fit_note,
    grows_with_n,
    growth,
    growth_text,
    reference_series,
)
from tools.site.pages.ratios import PeerLine, peer_lines, peer_points
from tools.site.plots import FIGURE_LABELS, PALETTE, Series, panels_svg

NONE = Markup("—")


@dataclass(frozen=True)
class SurveyRow:
    """The survey's printed complexity, when it is written differently from the paper's."""

    row: int
    complexity: str
    remark: str


@dataclass(frozen=True)
class MeasuredRow:
    """One measured variant: fitted exponents (as markup) and the ratios to its
    reference (dense attention's fused kernel, or the dense feed-forward layer)."""

    label: str
    causal: bool
    forward: Markup
    forward_backward: Markup
    flops: Markup
    peak_bytes: Markup
    relative: Relative | None
    platform: str = ""
    ffn: bool = False
    scores: float | None = None


def _power(result: Result, figure: Figure, claimed: Growth | None) -> Markup:
    """A fitted exponent as n with a superscript, its range and mark visible."""
    value = getattr(result.exponents, figure, None) if result.exponents else None
    if value is None:
        return dash(NO_FIT)
    mark, text = fit_note(result, figure, claimed)
    shown = Markup("n<sup>{}</sup>").format(f"{value:.2f}")
    if not mark:
        return Markup('<span title="{}">{}</span>').format(text, shown)
    return Markup('{}<sup class="atlas-fit-note" title="{}">{}</sup> ({})').format(
        shown, text, mark, text
    )


@dataclass(frozen=True)
class ComplexityData:
    claimed: Complexity | None
    time_growth: Markup = NONE
    memory_growth: Markup = NONE
    survey: SurveyRow | None = None
    measured: list[MeasuredRow] = field(default_factory=list)
    plot: str | None = None
    crossings: list[tuple[str, str]] = field(default_factory=list)
    fixed: dict[str, str] = field(default_factory=dict)
    grows: dict[str, str] = field(default_factory=dict)
    ffn_reference: str = FFN_REFERENCE
    peers: list[PeerLine] = field(default_factory=list)


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


def _growth_label(value: Growth | None, growing: dict[str, float]) -> Markup:
    """The claimed growth in n, naming the symbols that grow with n in it."""
    if value is None:
        return NONE
    if not growing:
        return growth_text(value)
    grown = ", ".join(f"{name} ∝ n^{power:g}" for name, power in sorted(growing.items()))
    return Markup("{} (with {})").format(growth_text(value), grown)


def complexity_data(entry: Entry, context: SiteContext, plot_path: str | None) -> ComplexityData:
    complexity = entry.complexity
    if complexity is None:
        return ComplexityData(None)
    measured = context.measured(entry.id)
    time_growth = claimed_growth(complexity, "time")
    memory_growth = claimed_growth(complexity, "memory")
    rows = []
    for measurement, result in measured:
        rows.append(
            MeasuredRow(
                label=measurement.label,
                causal=result.causal,
                forward=_power(result, "forward_s", time_growth),
                forward_backward=_power(result, "forward_backward_s", time_growth),
                flops=_power(result, "flops", time_growth),
                peak_bytes=_power(result, "peak_bytes", memory_growth),
                relative=result.relative_to_dense,
                platform=measurement.platform(result),
                ffn=result.kind == "ffn",
                scores=result.memory_vs_materialised_softmax,
            )
        )
    crossings = [
        (m.platform(r), f"{r.crossover_n.forward_s:.0f}")
        for m, r in measured
        if r.crossover_n and r.crossover_n.forward_s and not r.causal
    ]
    growing = grows_with_n(complexity.symbols)
    return ComplexityData(
        claimed=complexity,
        time_growth=_growth_label(time_growth, growing),
        memory_growth=_growth_label(memory_growth, growing),
        survey=_survey_row(entry, complexity),
        measured=rows,
        plot=plot_path,
        crossings=crossings,
        fixed={k: v for k, v in complexity.symbols.items() if k not in growing},
        grows={k: v for k, v in complexity.symbols.items() if k in growing},
        peers=[line for m, r in measured for line in peer_lines(m, r)],
    )


def paper_plot(entry: Entry, context: SiteContext) -> str | None:
    """Time and memory of the entry beside its references, from its first measurement file."""
    measured = context.measured(entry.id)
    if not measured:
        return None
    measurement = measured[0][0]
    ffn = measured[0][1].kind == "ffn"
    panels = []
    figures: tuple[tuple[Figure, str], ...] = (
        ("forward_s", "forward time"),
        ("peak_bytes", "peak memory"),
    )
    legend: list[Series] = []
    peer_colours: dict[str, str] = {}  # one colour per public implementation, in both panels
    for figure, ylabel in figures:
        label, formatter = FIGURE_LABELS[figure]
        series: list[Series] = []
        for index, causal in enumerate((False, True)):
            suffix = ":causal" if causal else ""
            points = measurement.points(entry.id + suffix, figure)
            if not points:
                continue
            name = entry.name + (" (causal)" if causal else "")
            series.append(Series(name, points, PALETTE[index], dashed=causal))
            result = measurement.result(entry.id + suffix)
            peers = peer_points(result, figure) if result is not None else {}
            for peer, peer_line in peers.items():
                # PALETTE[0] and [1] are ours (non-causal, causal); peers take the rest.
                next_colour = PALETTE[2 + len(peer_colours) % (len(PALETTE) - 2)]
                colour = peer_colours.setdefault(peer, next_colour)
                shown = peer + (" (causal)" if causal else "")
                series.append(Series(shown, peer_line, colour, dotted=True))
            if ffn and causal:
                continue  # one dense feed-forward layer serves both
            lengths = [n for n, _ in points]
            for line in reference_series(
                measurement, figure, lengths, attention=not ffn, ffn=ffn, causal=causal
            ):
                if line.label not in {s.label for s in series}:
                    series.append(line)
        panels.append((label.capitalize(), ylabel, formatter, series))
        legend += [s for s in series if s.label not in {line.label for line in legend}]
    platforms = "; ".join(sorted({measurement.platform(r) for _, r in measured}))
    caption = f"{measurement.label}, measured on {platforms}"
    if peer_colours:
        caption += ". Dotted: public implementations, at ours ÷ the measured ours/peer ratio"
    return panels_svg(
        panels,
        label=f"{entry.name}: time and memory against n beside its references",
        caption=caption,
        legend=legend,
    )
