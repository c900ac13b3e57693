"""The summary of a run: what each result's points say once every length is measured.

For every result it adds the fitted exponents, the crossover lengths with ``dense``, each
figure at :data:`REPORT_LENGTH` relative to ``dense``, the peak memory against the n×n
matrix a textbook softmax materialises, each point's achieved FLOP rate as a fraction of
the machine's matmul rate, and the catalog's claimed complexity.

Memory is compared twice: with ``dense``, whose fused CPU kernel never stores the n×n
matrix, and with that n×n matrix itself. Feed-forward mechanisms are compared with the
dense feed-forward layer (:mod:`tools.measure.reference`) instead, and have no n×n figure.

Examples:
    >>> from tools.measure.workload import make_setup
    >>> materialised_softmax_bytes(4096, make_setup(heads=8))  # 8 heads × 4096² × 4 bytes
    536870912
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from tools.catalog import Catalog
from tools.catalog.measurements import (
    Claimed,
    Crossovers,
    Figure,
    Point,
    Relative,
    Result,
    Setup,
    Timing,
)
from tools.measure.fitting import by_length, crossover, exponents
from tools.measure.reference import reference_key
from tools.measure.workload import torch_dtype

REPORT_LENGTH = 4096
RELATIVE_FIGURES: tuple[Figure, ...] = ("forward_s", "forward_backward_s", "peak_bytes", "flops")


def materialised_softmax_bytes(n: int, setup: Setup) -> int:
    """Bytes of the n×n attention matrix of every head, the memory fused kernels avoid."""
    element = torch.empty((), dtype=torch_dtype(setup)).element_size()
    return setup.batch * setup.heads * n * n * element


def dense_key(result: Result, results: Mapping[str, Result]) -> str:
    """The reference a result is compared with: the dense feed-forward layer for a
    feed-forward mechanism, else ``dense``, causal with causal when measured."""
    key = reference_key(result.kind, result.causal)
    return key if key in results else "dense"


def crossovers(points: list[Point], dense: list[Point]) -> Crossovers:
    """The crossover length with ``dense`` of each timing."""

    def at(figure: Timing) -> float | None:
        return crossover(by_length(points, figure), by_length(dense, figure))

    return Crossovers(forward_s=at("forward_s"), forward_backward_s=at("forward_backward_s"))


def relative_to_dense(mine: Point | None, dense: Point | None) -> Relative | None:
    """Each figure of ``mine`` divided by dense's at the same length (None: not both)."""
    if mine is None or dense is None:
        return None
    # A zero figure of dense has no ratio; it stays None, as a missing key did.
    ratios = {
        figure: round(mine.figure(figure) / dense.figure(figure), 4)
        for figure in RELATIVE_FIGURES
        if dense.figure(figure)
    }
    return Relative.model_validate(ratios)


def with_flop_rate(point: Point, flop_rate: float) -> Point:
    """A measured point with its achieved FLOP rate as a fraction of ``flop_rate``."""
    if not point.measured:
        return point
    fraction = point.figure("flops") / point.figure("forward_s") / flop_rate
    return point.model_copy(update={"flop_rate_fraction": round(fraction, 4)})


def summarise_result(
    result: Result, dense: Result | None, catalog: Catalog, flop_rate: float, setup: Setup
) -> Result:
    """One result with its summary figures (see the module's docstring)."""
    points = result.measured_points
    dense_points = dense.points if dense is not None else []
    mine_at = result.point(REPORT_LENGTH)
    mine_at = mine_at if mine_at is not None and mine_at.measured else None
    dense_at = next((p for p in dense_points if p.n == REPORT_LENGTH and p.measured), None)
    attention = result.kind != "ffn"  # a feed-forward layer has no n×n scores to store
    update: dict[str, object] = {
        "exponents": exponents(points),
        "crossover_n": crossovers(points, dense_points),
        "relative_to_dense": relative_to_dense(mine_at, dense_at),
        "memory_vs_materialised_softmax": (
            round(
                mine_at.figure("peak_bytes") / materialised_softmax_bytes(REPORT_LENGTH, setup), 4
            )
            if mine_at is not None and attention
            else None
        ),
        "points": [with_flop_rate(point, flop_rate) for point in result.points],
        "reference": (dense.id + (":causal" if dense.causal else "")) if dense else None,
    }
    entry = catalog.entries.get(result.id)
    if entry is not None and entry.complexity is not None:
        update["claimed"] = Claimed(time=entry.complexity.time, memory=entry.complexity.memory)
    return result.model_copy(update=update)


def summarise(
    results: Mapping[str, Result], catalog: Catalog, flop_rate: float, setup: Setup
) -> dict[str, Result]:
    """Every result with its summary figures, by the same keys."""
    return {
        key: summarise_result(
            result, results.get(dense_key(result, results)), catalog, flop_rate, setup
        )
        for key, result in results.items()
    }
