"""The shipped peer run (issue 16): every mechanism with a public implementation is compared
with it at n = 4096, 8192 and 16384, forward and forward+backward, or says why not.

It reads the shipped ``catalog/measurements/cpu-float32.json`` only; it needs no peer
installed (the figures are data).
"""

from __future__ import annotations

import pytest

from tools.catalog.measurements import MeasurementFile, load_measurement_files
from tools.measure.peers import PEERS
from tools.site.pages.ratios import RATIO_LENGTHS

SHIPPED = "measurements/cpu-float32.json"
# (variant key, peer) for every peer and every form of its mechanism the peer has.
EXPECTED = sorted(
    (f"{peer.mechanism}:causal" if causal else peer.mechanism, peer.shown)
    for peer in PEERS
    for causal in peer.causal
)


@pytest.fixture(scope="module")
def shipped() -> MeasurementFile:
    return load_measurement_files()[SHIPPED]


@pytest.mark.parametrize(("key", "peer"), EXPECTED)
def test_every_peer_is_compared_at_the_target_lengths(
    shipped: MeasurementFile, key: str, peer: str
) -> None:
    result = shipped.results[key]
    found = {c.n: c for c in result.peers if c.peer == peer}
    assert set(RATIO_LENGTHS) <= set(found), (key, peer, sorted(found))
    for n in RATIO_LENGTHS:
        comparison = found[n]
        if comparison.skipped is None:
            assert comparison.forward_ratio is not None and comparison.forward_ratio > 0
            assert comparison.forward_backward_ratio is not None
            assert comparison.ours_peak_bytes and comparison.peer_peak_bytes
            assert comparison.version  # which release of the peer was measured
        else:  # a reason a reader can act on, never "not installed" in the shipped run
            assert comparison.skipped != "not installed", (key, peer, n)


def test_the_peer_run_is_in_the_files_command(shipped: MeasurementFile) -> None:
    assert "--peers" in shipped.command


@pytest.mark.parametrize("reference", ["dense", "dense:causal"])
def test_exact_attention_is_measured_at_the_target_lengths(
    shipped: MeasurementFile, reference: str
) -> None:
    """Every ratio over exact attention at 4k, 8k and 16k needs exact attention there."""
    result = shipped.results[reference]
    for n in RATIO_LENGTHS:
        point = result.point(n)
        assert point is not None and point.measured, (reference, n, point)
