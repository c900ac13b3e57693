"""Every implementation achieves the complexity its catalog entry claims.

Deterministic counts only (FLOPs and peak live-tensor bytes, see ``tools.measure.counters``), so
the check cannot flake. Both are counted on the ``meta`` device, where tensors have shapes
but no data: the same operators run, nothing is computed, so long sequences cost nothing
and constant terms cannot hide the growth. (Every mechanism must therefore run on meta
tensors, without shapes that depend on data, as ``torch.compile`` needs too.) The one
difference from CPU is exact attention, which on meta runs its unfused decomposition, so
``dense`` itself is checked on CPU.

Hyper-parameters the claim names (a window ``w``, ``m`` features, ``k`` landmarks) keep
their defaults as ``n`` grows, as the papers state their claims;
``tools.measure.settings`` scales the ones a claim such as ``O(n sqrt(n))`` assumes grow
with ``n``, and says how its symbols then grow.

FLOPs must match the claim from both sides. Memory must not exceed the claim, but may
beat it: exact attention through ``scaled_dot_product_attention`` never stores the n×n
matrix on CPU, so an O(n^2)-memory claim measured at O(n) is not a failure.
"""

from __future__ import annotations

import pytest
import torch

import implementations
from tools.catalog import load_catalog
from tools.catalog.complexity import Growth, parse
from tools.catalog.measurements import Setup
from tools.measure.counters import count_flops, peak_live_bytes
from tools.measure.fitting import fit_exponent
from tools.measure.settings import symbol_growth
from tools.measure.workload import Variant, make_setup, make_workload

CATALOG = load_catalog()
LENGTHS = (16384, 32768, 65536)
# A feed-forward mechanism is measured bare, as the dense feed-forward layer it replaces
# (tools.measure.reference): its cost per token is fixed, so it grows linearly in n. The
# catalog's claim for it is the layer's, exact attention included: only its bound holds.
FFN_LENGTHS = (4096, 8192, 16384)
# Scans over chunks of 16 positions run n / 16 Python steps, each counted through a dispatch
# mode: at 65536 one count took a minute. Their costs are linear in n with no large constant
# (both fit exponents of 1.00 at these lengths), so shorter lengths show the growth as well.
SCAN_LENGTHS = (2048, 4096, 8192)
SCANS = {"mamba", "rwkv"}
META = make_setup(dim=32, heads=2, device="meta")
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


def measured_exponents(id: str, setup: Setup = META, lengths=LENGTHS) -> tuple[float, float]:
    """Fitted exponents of n of (forward FLOPs, peak live bytes)."""
    flops, peaks = [], []
    for n in lengths:
        run = make_workload(Variant(id, causal=False), n, setup)
        flops.append(count_flops(run))
        with torch.no_grad():
            peaks.append(peak_live_bytes(run))
    return fit_exponent(lengths, flops), fit_exponent(lengths, peaks)


@pytest.mark.parametrize("id", MEASURED)
def test_measured_complexity_agrees_with_the_claim(id: str) -> None:
    complexity = CATALOG.entries[id].complexity
    assert complexity is not None, f"{id}: the catalog claims no complexity"
    if implementations.mechanism(id).kind == "ffn":
        lengths = FFN_LENGTHS
    else:
        lengths = SCAN_LENGTHS if id in SCANS else LENGTHS
    flops, memory = measured_exponents(id, lengths=lengths)
    scaling = symbol_growth(id)
    low, high = flop_bounds(parse(complexity.time, scaling=scaling))
    if implementations.mechanism(id).kind == "ffn":
        low, high = flop_bounds(Growth(1.0))
    assert low <= flops <= high, (
        f"{id}: FLOPs grow as n^{flops}, but the catalog claims {complexity.time} "
        f"(expected an exponent in [{low}, {high}])"
    )
    memory_high = flop_bounds(parse(complexity.memory, scaling=scaling))[1]
    assert memory <= memory_high, (
        f"{id}: peak memory grows as n^{memory}, but the catalog claims "
        f"{complexity.memory} (expected at most {memory_high})"
    )


def test_dense_is_quadratic_in_flops_and_linear_in_memory() -> None:
    """The reference the others are judged against: SDPA's CPU kernel is counted."""
    flops, memory = measured_exponents("dense", make_setup(dim=32, heads=2), (1024, 2048, 4096))
    assert flops >= 1.9
    assert memory <= 1.2
