"""Ours against exact attention and against the public implementations, at long lengths.

Two tables of the benchmarks page, per measurement file: every attention variant's time as
a multiple of exact attention's (its own causal form for a causal variant), and every
variant that has public implementations (peers) against the fastest of them. A ratio above
1 means ours is slower; it is set in bold so that the misses stand out. Both come from the
file only (the site never runs a model): exact-attention ratios from the points, peer
ratios from the comparisons ``python -m tools.measure --peers`` stored beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog
from tools.catalog.measurements import Figure, PeerComparison, Result
from tools.site.context import Measurement, Why, dash, skipped_at

# The lengths the performance targets are set at.
RATIO_LENGTHS = (4096, 8192, 16384)
TIMES: tuple[Figure, ...] = ("forward_s", "forward_backward_s")
NO_PEER = Why("p", "no peer measured at this length (the tooltip says why)")
NO_POINT = Why("q", "exact attention was not measured at this length")


def exact_ratio(measurement: Measurement, result: Result, n: int, figure: Figure) -> float | None:
    """``result``'s ``figure`` at ``n`` over its reference's (exact attention), or None.

    Examples:
        >>> from tools.catalog.measurements import MeasurementFile, Point
        >>> p = lambda s: Point(n=8, forward_s=s, forward_backward_s=3 * s, flops=1,
        ...                     peak_bytes=1, tokens_per_s=1.0)
        >>> dense = Result(id="dense", causal=False, kind="attention", points=[p(2.0)])
        >>> fast = Result(id="fast", causal=False, kind="attention", points=[p(1.0)])
        >>> file = MeasurementFile.model_construct(results={"dense": dense, "fast": fast})
        >>> exact_ratio(Measurement("cpu", file), fast, 8, "forward_backward_s")
        0.5
    """
    reference = measurement.result(measurement.reference(result))
    ours = result.point(n)
    theirs = reference.point(n) if reference is not None else None
    if ours is None or theirs is None:
        return None
    a, b = getattr(ours, figure), getattr(theirs, figure)
    return a / b if a is not None and b else None


def peer_label(comparison: PeerComparison) -> str:
    """The peer as pages name it: ``linformer 0.2.3``, or the bare name without a version."""
    if comparison.version:
        return f"{comparison.peer} {comparison.version}"
    return comparison.peer


def memory_ratio(comparison: PeerComparison) -> float | None:
    """Ours / the peer's peak bytes of a forward pass, or None."""
    ours, theirs = comparison.ours_peak_bytes, comparison.peer_peak_bytes
    return ours / theirs if ours is not None and theirs else None


PEER_FIGURES: tuple[Callable[[PeerComparison], float | None], ...] = (
    lambda c: c.forward_ratio,
    lambda c: c.forward_backward_ratio,
    memory_ratio,
)


def against_best_peer(
    result: Result, n: int, value: Callable[[PeerComparison], float | None]
) -> tuple[float, PeerComparison] | None:
    """The largest ours / peer ``value`` at ``n`` and its peer, or None when none measured.

    The best peer is the fastest (or leanest) public implementation: the one ours compares
    worst with, figure by figure.

    Examples:
        >>> r = Result(id="x", causal=False, kind="attention", peers=[
        ...     PeerComparison(peer="a", n=8, forward_ratio=0.9, forward_backward_ratio=1.0),
        ...     PeerComparison(peer="b", n=8, forward_ratio=1.2, forward_backward_ratio=0.8),
        ...     PeerComparison(peer="c", n=8, skipped="not installed")])
        >>> value, peer = against_best_peer(r, 8, lambda c: c.forward_backward_ratio)
        >>> value, peer.peer, against_best_peer(r, 16, lambda c: c.forward_ratio)
        (1.0, 'a', None)
    """
    found = [(v, c) for c in result.peers if c.n == n and (v := value(c)) is not None]
    return max(found, key=lambda pair: pair[0], default=None)


def ratio(value: float | None, why: Why, title: str = "") -> Markup:
    """``0.83×``, bold above 1 (ours slower), with ``title`` as its tooltip; or a dash."""
    if value is None:
        return dash(why)
    text = f"{value:.2f}×"
    shown = Markup("<strong>{}</strong>").format(text) if value > 1 else Markup(text)
    return Markup('<span title="{}">{}</span>').format(title, shown) if title else shown


def _skips(result: Result, n: int) -> str:
    reasons = [f"{c.peer}: {c.skipped}" for c in result.peers if c.n == n and c.skipped]
    return "; ".join(reasons) or "no peer in the run at this length"


@dataclass(frozen=True)
class RatioRow:
    """One variant: its name and the ratio cells, markup."""

    id: str
    name: str | None
    causal: bool
    peers: str
    cells: list[Markup]


def _name(catalog: Catalog, result: Result) -> str | None:
    entry = catalog.entries.get(result.id)
    return entry.name if entry else None


def exact_rows(measurement: Measurement, catalog: Catalog) -> list[RatioRow]:
    """Forward, then forward+backward, over exact attention at each of ``RATIO_LENGTHS``."""
    rows = []
    for key, result in sorted(measurement.file.results.items()):
        if result.kind == "ffn" or key == measurement.reference(result):
            continue
        cells = [
            ratio(exact_ratio(measurement, result, n, figure), NO_POINT)
            if (point := result.point(n)) is not None and point.measured
            else dash(skipped_at(result, n))
            for figure in TIMES
            for n in RATIO_LENGTHS
        ]
        rows.append(RatioRow(result.id, _name(catalog, result), result.causal, "", cells))
    return rows


def peer_rows(measurement: Measurement, catalog: Catalog) -> list[RatioRow]:
    """Per variant with peers: forward, forward+backward and peak memory against the fastest
    peer at each of ``RATIO_LENGTHS``."""
    rows = []
    for _, result in sorted(measurement.file.results.items()):
        if not result.peers:
            continue
        cells = []
        for n in RATIO_LENGTHS:
            why = Why(NO_PEER.mark, _skips(result, n))
            for value in PEER_FIGURES:
                best = against_best_peer(result, n, value)
                if best is None:
                    cells.append(dash(why))
                    continue
                shown, peer = best
                cells.append(ratio(shown, why, f"against {peer_label(peer)}"))
        peers = ", ".join(sorted({c.peer for c in result.peers}))
        rows.append(RatioRow(result.id, _name(catalog, result), result.causal, peers, cells))
    return rows


def peer_notes(measurement: Measurement) -> list[tuple[str, str, list[str]]]:
    """``(peer, settings, notes)`` of every peer in the file, once each, by name: how it was
    matched to ours and where it could not be (or has a known defect)."""
    found: dict[str, tuple[str, str, list[str]]] = {}
    comparisons = [c for result in measurement.file.results.values() for c in result.peers]
    # A comparison that ran names the peer's version; one skipped may not.
    for c in sorted(comparisons, key=lambda c: c.version is None):
        found.setdefault(c.peer, (peer_label(c), c.settings or "", c.notes))
    return [found[name] for name in sorted(found)]


@dataclass(frozen=True)
class PeerLine:
    """One stored comparison, as a paper page lists it."""

    label: str
    causal: bool
    peer: str
    n: int
    cells: list[Markup]


def peer_lines(measurement: Measurement, result: Result) -> list[PeerLine]:
    """Every comparison of ``result`` with a peer: forward, forward+backward and memory
    ratios, or the reason it did not run."""
    lines = []
    for c in sorted(result.peers, key=lambda c: (c.peer, c.n)):
        if c.skipped is not None:
            cells = [dash(Why(NO_PEER.mark, c.skipped))] * len(PEER_FIGURES)
        else:
            cells = [ratio(value(c), NO_PEER) for value in PEER_FIGURES]
        lines.append(PeerLine(measurement.label, result.causal, peer_label(c), c.n, cells))
    return lines


# Ours / the peer for each figure a paper plot draws (forward time and peak memory).
PLOTTED_RATIOS: dict[Figure, Callable[[PeerComparison], float | None]] = {
    "forward_s": lambda c: c.forward_ratio,
    "peak_bytes": memory_ratio,
}


def peer_points(result: Result, figure: Figure) -> dict[str, list[tuple[int, float]]]:
    """Each peer's ``figure`` against n, as ours at that n divided by the stored ratio.

    The peer run stores ours / the peer (the median over alternated pairs), not the peer's
    own figure; dividing our point by it places the peer on the same axes, and the line
    sits exactly as far from ours as the ratio says.

    Examples:
        >>> from tools.catalog.measurements import Point
        >>> p = Point(n=8, forward_s=2.0, forward_backward_s=6.0, flops=1, peak_bytes=100,
        ...           tokens_per_s=1.0)
        >>> r = Result(id="x", causal=False, kind="attention", points=[p], peers=[
        ...     PeerComparison(peer="a", version="1.0", n=8, forward_ratio=0.5,
        ...                    ours_peak_bytes=50, peer_peak_bytes=100),
        ...     PeerComparison(peer="b", n=8, skipped="not installed")])
        >>> peer_points(r, "forward_s"), peer_points(r, "peak_bytes")
        ({'a 1.0': [(8, 4.0)]}, {'a 1.0': [(8, 200.0)]})
    """
    value = PLOTTED_RATIOS[figure]
    lines: dict[str, list[tuple[int, float]]] = {}
    for c in sorted(result.peers, key=lambda c: (c.peer, c.n)):
        ours = result.point(c.n)
        shown = value(c) if c.measured else None
        mine = getattr(ours, figure) if ours is not None and ours.measured else None
        if shown is None or not mine:
            continue
        lines.setdefault(peer_label(c), []).append((c.n, mine / shown))
    return lines
