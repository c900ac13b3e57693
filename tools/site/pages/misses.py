"""The performance targets a CPU run misses, each beside the profile that says why.

The targets are set for this processor (float32, batch 1, dim 512, 8 heads):

* a variant whose claimed time grows slower than $n^2$ is faster than exact attention at
  $n = 8192$, forward and forward+backward (a variant with no point there misses it too);
* a variant with public implementations is no slower than the fastest of them, forward and
  forward+backward, and no larger in peak memory, at each of ``RATIO_LENGTHS``.

Where a target cannot be met without changing the paper's algorithm, the implementation's
module docstring says why in a paragraph that starts with ``**Where the time goes**``: what
dominates its time, from ``torch.profiler``. The benchmarks page lists every miss with that
paragraph, read from the source with :mod:`ast` (never imported).

Examples:
    >>> doc = "Title.\\n\\n**Where the time goes**: the gathers,\\nthen the exp.\\n\\nMore."
    >>> time_profile(f'\"\"\"{doc}\"\"\"')
    '**Where the time goes**: the gathers, then the exp.'
    >>> time_profile('\"\"\"No profile here.\"\"\"') is None
    True
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog
from tools.catalog.complexity import Growth
from tools.catalog.measurements import Result
from tools.site.context import Measurement, claimed_growth
from tools.site.pages.ratios import (
    PEER_FIGURES,
    RATIO_LENGTHS,
    TIMES,
    against_best_peer,
    exact_ratio,
    peer_label,
)

MARKER = "**Where the time goes**"
EXACT_TARGET_LENGTH = 8192
QUADRATIC = Growth(2.0)
_TIME_LABELS = {"forward_s": "forward", "forward_backward_s": "forward+backward"}
_PEER_LABELS = ("forward", "forward+backward", "peak memory")


def time_profile(code: str) -> str | None:
    """The paragraphs of a module docstring that start with ``MARKER``, or None.

    Each paragraph is joined into one line (the page indents it under a list item);
    several are separated by a blank line.
    """
    docstring = ast.get_docstring(ast.parse(code))
    if not docstring:
        return None
    found = [
        " ".join(line.strip() for line in paragraph.strip().splitlines())
        for paragraph in docstring.split("\n\n")
        if paragraph.strip().startswith(MARKER)
    ]
    return "\n\n".join(found) or None


@dataclass(frozen=True)
class Miss:
    """One variant that misses a target: what it misses, and its profile if written.

    The profile is our own Markdown (a docstring of the implementations), so it is markup.
    """

    id: str
    name: str | None
    causal: bool
    missed: list[str]
    profile: Markup | None


def held_to_exact_target(catalog: Catalog, result: Result) -> bool:
    """Whether ``result``'s claimed time grows slower than ``n^2`` (an attention variant)."""
    entry = catalog.entries.get(result.id)
    growth = claimed_growth(entry.complexity if entry else None, "time")
    return result.kind != "ffn" and growth is not None and growth < QUADRATIC


def exact_misses(measurement: Measurement, result: Result) -> list[str]:
    """How ``result`` misses the exact-attention target: each ratio above 1, or no point."""
    point = result.point(EXACT_TARGET_LENGTH)
    if point is None or not point.measured:
        reason = point.skipped if point is not None and point.skipped else "not measured"
        return [f"no point at n = {EXACT_TARGET_LENGTH} ({reason})"]
    missed = []
    for figure in TIMES:
        value = exact_ratio(measurement, result, EXACT_TARGET_LENGTH, figure)
        if value is not None and value > 1:
            missed.append(
                f"{_TIME_LABELS[figure]} {value:.2f}× exact attention at n = {EXACT_TARGET_LENGTH}"
            )
    return missed


def peer_misses(result: Result) -> list[str]:
    """How ``result`` misses the peer target: per figure and peer, the lengths above 1."""
    missed = []
    for value, label in zip(PEER_FIGURES, _PEER_LABELS, strict=True):
        above: dict[str, list[str]] = {}
        for n in RATIO_LENGTHS:
            best = against_best_peer(result, n, value)
            if best is not None and best[0] > 1:
                above.setdefault(peer_label(best[1]), []).append(f"{best[0]:.2f}× at {n}")
        missed += [f"{label} {', '.join(cells)} against {peer}" for peer, cells in above.items()]
    return missed


def misses(
    measurement: Measurement,
    catalog: Catalog,
    profiles: Mapping[str, str],
) -> list[Miss]:
    """Every variant of a CPU ``measurement`` that misses a target, with its profile.

    Args:
        measurement: The run.
        catalog: For names and claimed complexities.
        profiles: ``time_profile`` of each mechanism's module, by mechanism id.
    """
    if measurement.file.setup.device != "cpu":
        return []
    found = []
    for key, result in sorted(measurement.file.results.items()):
        if result.kind == "ffn" or key == measurement.reference(result):
            continue
        missed = exact_misses(measurement, result) if held_to_exact_target(catalog, result) else []
        missed += peer_misses(result)
        if missed:
            entry = catalog.entries.get(result.id)
            name = entry.name if entry else None
            profile = profiles.get(result.id)
            markup = Markup(profile) if profile else None
            found.append(Miss(result.id, name, result.causal, missed, markup))
    return found
