"""The figures of one point: counted FLOPs and peak bytes, median times, tokens per second.

FLOPs and memory are deterministic counts (:mod:`tools.measure.counters`); times are the
median wall time after warm-up, synchronised on CUDA. :func:`matmul_flop_rate` measures
the machine's dense matrix-multiply rate, the reference of each point's achieved FLOP rate.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from tools.catalog.measurements import Point, Setup
from tools.measure.counters import count_flops, peak_live_bytes
from tools.measure.settings import options_for
from tools.measure.workload import Variant, make_workload, torch_dtype


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(step: Callable[[], Any], repeats: int, device: str, warmup: int = 1) -> float:
    """Median wall time of ``step`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_flop_rate(setup: Setup, size: int = 2048, repeats: int = 5) -> float:
    """This machine's dense matrix-multiply rate in FLOP/s, under the run's setup."""
    a = torch.randn(size, size, device=setup.device, dtype=torch_dtype(setup))
    seconds = median_seconds(lambda: a @ a, repeats, setup.device)
    return 2 * size**3 / seconds


def count_forward_flops(variant: Variant, n: int, setup: Setup) -> int:
    """Forward FLOPs, counted on shape-only ``meta`` tensors where the mechanism allows.

    The same operators run as on a real device, but nothing is computed, so counting
    costs no time at any length. Autograd stays on: torch's module tracker needs it.
    """
    try:
        meta = setup.model_copy(update={"device": "meta"})
        return count_flops(make_workload(variant, n, meta))
    except (NotImplementedError, RuntimeError):  # an operator with data-dependent shapes
        return count_flops(make_workload(variant, n, setup))


def peak_bytes(run: Callable[[], Any], device: str) -> int:
    """Peak bytes one forward of ``run`` allocates: live tensors counted on the CPU, the
    allocator's peak on CUDA (parameters and input excluded either way)."""
    with torch.no_grad():
        if not device.startswith("cuda"):
            return peak_live_bytes(run)
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before


def measure_point(variant: Variant, n: int, setup: Setup, repeats: int) -> Point:
    """Every figure of one mechanism at one length (its FLOP rate comes with the summary)."""
    flops = count_forward_flops(variant, n, setup)
    run = make_workload(variant, n, setup)
    with torch.no_grad():
        # The counted pass doubles as the warm-up of the timed ones.
        peak = peak_bytes(run, setup.device)
        forward = median_seconds(run, repeats, setup.device, warmup=0)
    backward = median_seconds(lambda: run().backward(), repeats, setup.device)
    return Point(
        n=n,
        flops=flops,
        peak_bytes=peak,
        forward_s=forward,
        forward_backward_s=backward,
        tokens_per_s=setup.batch * n / forward,
        options=options_for(variant.id, n),
    )
