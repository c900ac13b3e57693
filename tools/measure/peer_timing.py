"""Ours beside a peer: pairs stepped alternately in one process, the median per-pair ratio.

Timing two layers in separate runs compares two states of the machine (clock, cache,
other load); stepping them alternately and taking the median of the ratio of each pair
cancels most of that. :func:`compare` does so for the forward and for forward+backward,
and counts the peak live-tensor bytes of each forward (CPU) or the allocator's peak (CUDA).

Examples:
    >>> median_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 2.0])
    2.0
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

import torch
from torch import Tensor

import implementations
from tools.catalog.measurements import PeerComparison, Result, Setup
from tools.measure.figures import peak_bytes
from tools.measure.peers import INSTALL, Peer, build_peer, peers_of
from tools.measure.settings import options_for
from tools.measure.workload import Variant, torch_dtype

Step = Callable[[], object]


def median_ratio(ours: Sequence[float], peer: Sequence[float]) -> float:
    """The median over pairs of ours / peer (< 1: ours faster)."""
    if len(ours) != len(peer) or not ours:
        raise ValueError("need as many peer times as ours, at least one")
    return statistics.median(a / b for a, b in zip(ours, peer, strict=True))


def _seconds(step: Step, device: str) -> float:
    start = time.perf_counter()
    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def paired_times(
    ours: Step, peer: Step, repeats: int, device: str, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Times of ``ours`` and ``peer`` stepped alternately, ``repeats`` pairs after warm-up.

    Examples:
        >>> a, b = paired_times(lambda: None, lambda: None, repeats=3, device="cpu")
        >>> len(a), len(b)
        (3, 3)
    """
    for _ in range(warmup):
        ours()
        peer()
    first, second = [], []
    for _ in range(repeats):
        first.append(_seconds(ours, device))
        second.append(_seconds(peer, device))
    return first, second


def _ours(peer: Peer, variant: Variant, n: int, setup: Setup) -> Callable[[], Tensor]:
    torch.manual_seed(0)
    options = {**options_for(variant.id, n), **peer.ours(n)}
    module = implementations.build(
        variant.id, dim=setup.dim, heads=setup.heads, causal=variant.causal, **options
    )
    module = module.to(device=setup.device, dtype=torch_dtype(setup))
    kind = implementations.mechanism(variant.id).kind
    x = torch.randn(setup.batch, n, setup.dim, device=setup.device, dtype=torch_dtype(setup))

    def run() -> Tensor:
        out = implementations.apply(module, x, kind=kind)
        return out.y.float().sum() + out.aux_loss

    return run


def _theirs(peer: Peer, variant: Variant, n: int, setup: Setup) -> Callable[[], Tensor]:
    forward = build_peer(peer, setup, n, variant.causal)
    x = torch.randn(setup.batch, n, setup.dim, device=setup.device, dtype=torch_dtype(setup))
    return lambda: forward(x).float().sum()


def compare(peer: Peer, variant: Variant, n: int, setup: Setup, repeats: int) -> PeerComparison:
    """Ours beside ``peer`` at length ``n``: ratios and peak bytes, or why it did not run."""
    base = PeerComparison(
        peer=peer.shown, version=peer.version(), n=n, settings=peer.settings,
        notes=list(peer.notes),
    )  # fmt: skip
    if not peer.installed():
        return base.model_copy(update={"skipped": "not installed"})
    if variant.causal not in peer.causal:
        return base.model_copy(update={"skipped": "the peer has no causal form"})
    reason = peer.lengths_ok(n)
    if reason is not None:
        return base.model_copy(update={"skipped": reason})
    try:
        ours, theirs = _ours(peer, variant, n, setup), _theirs(peer, variant, n, setup)
        ours_peak, peer_peak = peak_bytes(ours, setup.device), peak_bytes(theirs, setup.device)
        with torch.no_grad():
            forward = median_ratio(*paired_times(ours, theirs, repeats, setup.device))
        backward = median_ratio(
            *paired_times(
                lambda: ours().backward(), lambda: theirs().backward(), repeats, setup.device
            )
        )
    except (RuntimeError, MemoryError, AssertionError, ValueError, TypeError) as error:
        return base.model_copy(update={"skipped": f"{type(error).__name__}: {error}"[:200]})
    return base.model_copy(
        update={
            "forward_ratio": forward,
            "forward_backward_ratio": backward,
            "ours_peak_bytes": ours_peak,
            "peer_peak_bytes": peer_peak,
        }
    )


def with_comparison(result: Result, comparison: PeerComparison) -> Result:
    """``result`` with ``comparison`` in place of any earlier one of that peer and length."""
    kept = [c for c in result.peers if (c.peer, c.n) != (comparison.peer, comparison.n)]
    peers = sorted([*kept, comparison], key=lambda c: (c.peer, c.n))
    return result.model_copy(update={"peers": peers})


def planned(variants: Iterable[Variant]) -> list[tuple[Variant, Peer]]:
    """Every (variant, peer) pair to compare: each peer of each variant's mechanism."""
    return [(variant, peer) for variant in variants for peer in peers_of(variant.id)]


def _ratio(value: float | None) -> str:
    return f"{value:6.2f}" if value is not None else "     —"


def _mib(value: int | None) -> str:
    return f"{value / 2**20:8.1f}" if value is not None else "       —"


def print_peers(results: dict[str, Result], stream: TextIO | None = None) -> None:
    """The closing table of peer comparisons: one row per variant, peer and length.

    Examples:
        >>> r = Result(id="linformer", causal=False, kind="attention", peers=[
        ...     PeerComparison(peer="linformer", n=8, skipped="not installed")])
        >>> print_peers({"linformer": r})  # doctest: +NORMALIZE_WHITESPACE
        variant peer n fwd ours/peer fwd+bwd ours/peer ours MiB peer MiB
        linformer linformer 8 not installed
        peers not installed: pip install -e '.[peers]' -c tools/measure/peer-constraints.txt
    """
    import sys

    out = stream or sys.stdout
    print(
        f"{'variant':<24} {'peer':<30} {'n':>6} {'fwd ours/peer':>14} "
        f"{'fwd+bwd ours/peer':>18} {'ours MiB':>9} {'peer MiB':>9}",
        file=out,
    )
    notes: dict[str, list[str]] = {}
    for key, result in sorted(results.items()):
        for c in result.peers:
            notes.setdefault(c.peer, c.notes)
            head = f"{key:<24} {c.peer:<30} {c.n:>6}"
            if c.skipped is not None:
                print(f"{head} {c.skipped}", file=out)
                continue
            print(
                f"{head} {_ratio(c.forward_ratio):>14} {_ratio(c.forward_backward_ratio):>18} "
                f"{_mib(c.ours_peak_bytes):>9} {_mib(c.peer_peak_bytes):>9}",
                file=out,
            )
    for peer, lines in notes.items():
        for line in lines:
            print(f"note: {peer}: {line}", file=out)
    if any(c.skipped == "not installed" for r in results.values() for c in r.peers):
        print(f"peers not installed: {INSTALL}", file=out)
