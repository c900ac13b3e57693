"""What every page family reads besides the catalog: measurements, mechanisms, source links.

Also the few helpers that several families share (the models in name order, the
authors' anchors, the measured results of an entry) and the formatting of figures as
our own markup (``n<sup>1.50</sup>``, ``0.25``, ``—``).

Examples:
    >>> number(0.254), number(None), power(1.5)
    (Markup('0.25'), Markup('—'), Markup('n<sup>1.50</sup>'))
    >>> growth_text(Growth(1.5, 0)), growth_text(Growth(1.0, 1)), growth_text(Growth(2.0))
    (Markup('n^1.5'), Markup('n log n'), Markup('n^2'))
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from markupsafe import Markup

from tools.catalog import Catalog, Complexity, Entry, MeasurementFile
from tools.catalog.addresses import pinned_source_url
from tools.catalog.citations import split_name
from tools.catalog.complexity import ComplexityError, Growth, parse
from tools.catalog.evaluations import Evaluations
from tools.catalog.measurements import Figure, Result
from tools.catalog.mechanisms import DeclaredMechanism
from tools.catalog.names import slug
from tools.site.plots import DENSE_COLOUR, FFN_COLOUR, SCORES_COLOUR, Series

# Bytes of one element of each dtype a measurement may use.
ELEMENT_BYTES = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}
# The labels of the reference lines in every plot.
FUSED_LABEL = "exact attention, fused kernel"
SCORES_LABEL = "exact attention, n×n scores"
FFN_LABEL = "dense feed-forward layer"
# The usage snippet's sequence length; its options are the measurement's at this length.
SNIPPET_LENGTH = 256


@dataclass(frozen=True)
class Measurement:
    """One measurement file (``catalog/measurements/<device>-<dtype>.json``)."""

    name: str
    file: MeasurementFile

    @property
    def label(self) -> str:
        return f"{self.file.setup.device.upper()} · {self.file.setup.dtype}"

    def platform(self, result: Result | None = None) -> str:
        """Where the figures of ``result`` (default: the file's) were measured, as the pages
        name it beside every table and plot: processor, threads, dtype, batch."""
        machine = result.machine if result is not None and result.machine else self.file.machine
        setup = self.file.setup
        return f"{machine.processor}, {setup.threads} threads, {setup.dtype}, batch {setup.batch}"

    def scores_points(self, lengths: Iterable[float]) -> list[tuple[float, float]]:
        """``(n, bytes)`` of the n×n scores of every head that textbook attention stores:
        batch · heads · n² · element size, in this file's setup."""
        setup = self.file.setup
        size = ELEMENT_BYTES.get(setup.dtype, 4)
        return [(n, float(setup.batch * setup.heads * n * n * size)) for n in lengths]

    def reference(self, result: Result) -> str:
        """The key of the result ``result`` is compared with (``dense``, ``dense-ffn``)."""
        if result.reference:
            return result.reference
        return "dense:causal" if result.causal and self.result("dense:causal") else "dense"

    def result(self, key: str) -> Result | None:
        return self.file.results.get(key)

    def points(self, key: str, figure: Figure) -> list[tuple[float, float]]:
        """``(n, value)`` of each measured point of ``key``, in the file's order."""
        result = self.result(key)
        found = []
        for point in result.points if result else []:
            value = getattr(point, figure)
            if value is not None:
                found.append((float(point.n), float(value)))
        return found


@dataclass
class SiteContext:
    """Everything the pages need besides the catalog."""

    measurements: list[Measurement] = field(default_factory=list)
    # The quality benchmark's files (catalog/evaluations/<name>.json), by name.
    evaluations: dict[str, Evaluations] = field(default_factory=dict)
    mechanisms: dict[str, DeclaredMechanism] = field(default_factory=dict)
    # Each mechanism's "Where the time goes" paragraphs, by id (tools.site.pages.misses).
    profiles: dict[str, str] = field(default_factory=dict)
    repo_url: str | None = None
    commit: str | None = None

    def source_link(self, info: DeclaredMechanism) -> str | None:
        """The implementation's source in the repository, pinned to the commit, when the
        repository's address is configured (the site's own source pages are always there)."""
        if self.repo_url and self.commit:
            return pinned_source_url(info, self.commit, self.repo_url)
        return None

    def measured(self, id: str) -> list[tuple[Measurement, Result]]:
        """The measurements of ``id``, non-causal first, in measurement-file order."""
        found = []
        for measurement in self.measurements:
            for key in (id, f"{id}:causal"):
                result = measurement.result(key)
                if result is not None:
                    found.append((measurement, result))
        return found

    def primary(self, id: str) -> Result | None:
        measured = self.measured(id)
        return measured[0][1] if measured else None

    def snippet_options(self, id: str) -> dict[str, int | float | str | bool]:
        """The options ``id`` was measured with at the snippet's length (none if unmeasured)."""
        for _, result in self.measured(id):
            point = result.point(SNIPPET_LENGTH)
            if point is not None:
                return dict(point.options)
        return {}


def reference_series(
    measurement: Measurement,
    figure: Figure,
    lengths: Iterable[float],
    *,
    attention: bool = True,
    ffn: bool = False,
    causal: bool = False,
) -> list[Series]:
    """The reference lines of a plot: exact attention through the fused kernel and, for
    memory, the n×n scores that textbook attention stores (both when ``attention``), and
    the dense feed-forward layer (when ``ffn``)."""
    lines = []
    if attention:
        key = "dense:causal" if causal and measurement.result("dense:causal") else "dense"
        name = FUSED_LABEL + (" (causal)" if key.endswith(":causal") else "")
        lines.append(Series(name, measurement.points(key, figure), DENSE_COLOUR, dashed=True))
        if figure == "peak_bytes":
            scores = measurement.scores_points(sorted(set(lengths)))
            lines.append(Series(SCORES_LABEL, scores, SCORES_COLOUR, dotted=True))
    if ffn:
        points = measurement.points(DENSE_FFN, figure)
        lines.append(Series(FFN_LABEL, points, FFN_COLOUR, dashed=True))
    return [line for line in lines if line.points]


def models(catalog: Catalog) -> list[Entry]:
    return [e for e in catalog.models() if not e.draft]


def by_name(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.name.lower(), e.id))


def author_slugs(catalog: Catalog) -> dict[str, str]:
    """A unique anchor per author name, stable under the catalog's order."""
    slugs: dict[str, str] = {}
    used: set[str] = set()
    for name in sorted({a for e in catalog.entries.values() for a in e.authors}):
        base = candidate = slug(name) or "author"
        counter = 2
        while candidate in used:
            candidate, counter = f"{base}-{counter}", counter + 1
        used.add(candidate)
        slugs[name] = candidate
    return slugs


def family_sort_key(name: str) -> tuple[str, str]:
    given, family = split_name(name)
    return (slug(family), slug(given))


def growth_text(growth: Growth) -> Markup:
    """An exponent of n as people write it (``n^1.5``: our markup, not escaped)."""
    power = "n" if growth.exponent == 1 else f"n^{growth.exponent:g}"
    if growth.exponent == 0:
        power = "1"
    logs = {0: "", 1: " log n"}.get(growth.log_power, f" log^{growth.log_power} n")
    return Markup(power + logs)


def growth(text: str, symbol: str = "n") -> Growth | None:
    """The growth in n of a big-O expression, or None when it does not parse."""
    try:
        return parse(text, length_symbol=symbol)
    except ComplexityError:
        return None


def grows_with_n(symbols: dict[str, str]) -> dict[str, float]:
    """The exponent of n at which each symbol defined from n grows (``n_b``: "(n/b)").

    A symbol explained as a fraction of n grows with n when the others are held fixed.

    Examples:
        >>> grows_with_n({"b": "block size", "n_b": "number of blocks (n/b)"})
        {'n_b': 1.0}
        >>> grows_with_n({"k": "blocks of sqrt(n) tokens"})
        {'k': 0.5}
    """
    found: dict[str, float] = {}
    for name, meaning in symbols.items():
        if re.search(r"\bn\s*/", meaning):
            found[name] = 1.0
        elif re.search(r"sqrt\(\s*n\s*\)|√n", meaning):
            found[name] = 0.5
    return found


def claimed_growth(complexity: Complexity | None, which: str = "time") -> Growth | None:
    """The growth in n a claim makes once the symbols defined from n grow with it."""
    if complexity is None:
        return None
    text = complexity.time if which == "time" else complexity.memory
    try:
        return parse(text, scaling=grows_with_n(complexity.symbols))
    except ComplexityError:
        return None


@dataclass(frozen=True)
class Why:
    """Why a cell shows "—": a footnote mark shown beside it and the text of its tooltip."""

    mark: str
    text: str


NOT_MEASURED = Why("a", "not measured: no run of this mechanism in the measurement file")
NO_FIT = Why("c", "too few measured lengths to fit an exponent")
NO_SCORES = Why("d", "a feed-forward layer: it has no n×n attention scores to compare with")
NO_CLAIM = Why("e", "no complexity is recorded for this entry")
NO_DECODE = Why("f", "the catalog does not say whether it decodes")
SKIPPED = Why("b", "not measured at n = 4096: the run skipped that length (the tooltip says why)")
FOOTNOTES = (NOT_MEASURED, SKIPPED, NO_FIT, NO_SCORES, NO_CLAIM, NO_DECODE)
# Fitted exponents that need a second look carry one of these marks.
FEW_LENGTHS, BELOW_CLAIM = "*", "†"
FEW_LENGTHS_TEXT = "fitted on fewer than 3 lengths, or longer lengths were skipped"
BELOW_CLAIM_TEXT = "well below the claimed growth: fixed costs still dominate at these lengths"
# The reference of feed-forward mechanisms (tools.measure.reference), as the pages say it.
DENSE_FFN = "dense-ffn"
FFN_REFERENCE = (
    "the dense feed-forward layer they replace, d_model → 4·d_model → d_model with ReLU "
    "(one expert's width: the parameters a top-1 mixture activates per token), both measured "
    "bare, without attention"
)
# The number of largest measured lengths each exponent is fitted on (tools.measure's).
FIT_COUNT = 3


def skipped_at(result: Result, n: int) -> Why:
    """Why ``result`` has no figure at length ``n``."""
    point = result.point(n)
    reason = point.skipped if point is not None and point.skipped else "not in the run"
    return Why("b", f"not measured at n = {n}: {reason}")


def dash(why: Why) -> Markup:
    """ "—" with its reason as a tooltip and its footnote mark."""
    return Markup('<span class="atlas-dash" title="{}">—<sup>{}</sup></span>').format(
        why.text, why.mark
    )


def fit_note(result: Result, figure: Figure, claimed: Growth | None) -> tuple[str, str]:
    """``(mark, text)`` of a fitted exponent: the lengths it was fitted on, and a mark when
    it rests on few lengths, when longer ones were skipped, or when it falls well below
    the claimed growth (fixed costs still dominate); the mark is "" when none applies."""
    measured = [p for p in result.measured_points if getattr(p, figure) is not None]
    fitted = measured[-FIT_COUNT:]
    if not fitted:
        return "", ""
    low, high = fitted[0].n, fitted[-1].n
    text = f"fitted on n = {low}–{high} ({len(fitted)} lengths)"
    skipped = [p for p in result.points if p.n > high and not p.measured]
    exponent = getattr(result.exponents, figure, None) if result.exponents else None
    if skipped or len(fitted) < FIT_COUNT:
        reason = f"; n = {skipped[0].n} and longer skipped: {skipped[0].skipped}" if skipped else ""
        return FEW_LENGTHS, text + reason
    # Options that change with n (a block of sqrt(n)) measure another claim than the one
    # with every symbol fixed: no comparison with it then.
    # A feed-forward mechanism is measured bare: the claim of its layer (attention
    # included) is not what was measured.
    scaled = len({tuple(sorted(p.options.items())) for p in measured}) > 1 or result.kind == "ffn"
    below = claimed is not None and exponent is not None and exponent < claimed.exponent - 0.3
    if below and not scaled and claimed is not None:
        return BELOW_CLAIM, (
            f"{text}; below the claimed n^{claimed.exponent:g}: fixed costs still dominate "
            "at these lengths"
        )
    return "", text


def exponent(result: Result | None, figure: Figure, claimed: Growth | None = None) -> Markup:
    """A fitted exponent with its range as a tooltip and its mark, or "—" saying why."""
    if result is None:
        return dash(NOT_MEASURED)
    value = getattr(result.exponents, figure, None) if result.exponents else None
    if value is None:
        return dash(NO_FIT)
    mark, text = fit_note(result, figure, claimed)
    if not mark:
        return Markup('<span title="{}">{}</span>').format(text, f"{value:.2f}")
    return Markup('<span title="{}">{}<sup class="atlas-fit-note">{}</sup></span>').format(
        text, f"{value:.2f}", mark
    )


def number(value: float | None, digits: int = 2) -> Markup:
    return Markup(f"{value:.{digits}f}" if value is not None else "—")


def power(value: float | None) -> Markup:
    """A measured exponent of n, as n with a superscript (Markdown with inline HTML)."""
    return Markup(f"n<sup>{value:.2f}</sup>" if value is not None else "—")
