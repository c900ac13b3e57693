"""Every implementation achieves the complexity its catalog entry claims.

Deterministic counts only (FLOPs and peak live-tensor bytes, see ``tools.counters``) at
small sizes, so the check is fast and cannot flake. Hyper-parameters the claim names
(a window ``w``, ``m`` features, ``k`` landmarks) keep their defaults as ``n`` grows, as
the papers state their claims; ``tools.measure_settings`` scales the ones a claim such as
``O(n sqrt(n))`` assumes grow with ``n``.

FLOPs must match the claim from both sides. Memory must not exceed the claim, but may
beat it: exact attention through ``scaled_dot_product_attention`` never stores the n×n
matrix on CPU, so an O(n^2)-memory claim measured at O(n) is not a failure.
"""

from __future__ import annotations

import pytest
import torch

import implementations
from tools.catalog import load_catalog
from tools.complexity import Growth, parse
from tools.counters import count_flops, peak_live_bytes
from tools.measure import Setup, Variant, fit_exponent, make_workload

CATALOG = load_catalog()
LENGTHS = (1024, 2048, 4096)
SETUP = Setup(dim=64, heads=4)
MEASURED = [id for id in implementations.available() if id in CATALOG.entries]


def flop_bounds(claim: Growth) -> tuple[float, float]:
    """The range of measured FLOP exponents that agrees with a claimed growth.

    Examples:
        >>> flop_bounds(Growth(1.0, 0)), flop_bounds(Growth(1.5, 0)), flop_bounds(Growth(2.0, 0))
        ((0.0, 1.2), (1.3, 1.7), (1.8, 2.2))
        >>> flop_bounds(Growth(1.0, 1))
        (0.0, 1.3)
    """
    upper = claim.exponent + 0.2 + 0.1 * claim.log_power
    lower = claim.exponent - 0.2 if claim.exponent > 1 else 0.0
    return round(lower, 2), round(upper, 2)


def measured_exponents(id: str) -> tuple[float, float]:
    flops, peaks = [], []
    for n in LENGTHS:
        run = make_workload(Variant(id, causal=False), n, SETUP)
        with torch.no_grad():
            flops.append(count_flops(run))
            peaks.append(peak_live_bytes(run))
    return fit_exponent(LENGTHS, flops), fit_exponent(LENGTHS, peaks)


@pytest.mark.parametrize("id", MEASURED)
def test_measured_complexity_agrees_with_the_claim(id: str) -> None:
    complexity = CATALOG.entries[id].complexity
    assert complexity is not None, f"{id}: the catalog claims no complexity"
    flop_exponent, memory_exponent = measured_exponents(id)
    low, high = flop_bounds(parse(complexity.time))
    assert low <= flop_exponent <= high, (
        f"{id}: FLOPs grow as n^{flop_exponent}, but the catalog claims {complexity.time} "
        f"(expected an exponent in [{low}, {high}])"
    )
    memory_high = flop_bounds(parse(complexity.memory))[1]
    assert memory_exponent <= memory_high, (
        f"{id}: peak memory grows as n^{memory_exponent}, but the catalog claims "
        f"{complexity.memory} (expected at most {memory_high})"
    )


def test_dense_is_quadratic_in_flops_and_linear_in_memory() -> None:
    """The reference the others are judged against: SDPA's CPU kernel is counted."""
    flops, peaks = [], []
    for n in LENGTHS:
        run = make_workload(Variant("dense", causal=False), n, SETUP)
        with torch.no_grad():
            flops.append(count_flops(run))
            peaks.append(peak_live_bytes(run))
    assert fit_exponent(LENGTHS, flops) >= 1.8
    assert fit_exponent(LENGTHS, peaks) <= 1.2
