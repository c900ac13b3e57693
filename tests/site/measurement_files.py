"""Measurement files built by tests with figures chosen by hand, so every ratio a page prints
can be checked against arithmetic done by hand."""

from __future__ import annotations

from tools.catalog.measurements import Machine, MeasurementFile, Point, Result
from tools.measure.workload import make_setup


def point(n: int, seconds: float, backward_factor: float = 3.0) -> Point:
    """A measured point at ``n``: forward ``seconds``, forward+backward ``backward_factor``
    times that, ``n`` FLOPs and bytes."""
    return Point(
        n=n,
        forward_s=seconds,
        forward_backward_s=backward_factor * seconds,
        flops=n,
        peak_bytes=n,
        tokens_per_s=n / seconds,
    )


def measurement_file(results: dict[str, Result], device: str = "cpu") -> MeasurementFile:
    """A file of ``results`` from a test machine, measured on ``device``."""
    return MeasurementFile(
        schema_version=1,
        command="python -m tools.measure --peers",
        date="2026-12-05T00:00:00+00:00",
        machine=Machine(processor="test CPU", python="3.11", system="Linux"),
        torch="2.13.0",
        setup=make_setup(device=device),
        matmul_flop_rate=1e9,
        memory_method="test",
        results=results,
    )
