"""Feed-forward mechanisms are measured bare and compared with the dense feed-forward
layer they replace (issue 12, point 2), and a result measured on another machine than
its file's says so."""

from __future__ import annotations

import torch

from tools.catalog import load_catalog
from tools.catalog.measurements import Machine, MeasurementFile, Point, Result
from tools.measure.cli import parser, plan_from
from tools.measure.reference import DENSE_FFN, DenseFeedForward
from tools.measure.run import mark_machine
from tools.measure.summary import REPORT_LENGTH, summarise
from tools.measure.workload import Variant, make_setup, make_workload, variants


def _point(n: int, seconds: float, peak: int) -> Point:
    return Point(
        n=n,
        flops=10**6,
        peak_bytes=peak,
        forward_s=seconds,
        forward_backward_s=3 * seconds,
        tokens_per_s=n / seconds,
    )


def test_feed_forward_results_are_compared_with_the_dense_feed_forward_layer() -> None:
    lengths = (1024, 2048, REPORT_LENGTH)
    dense = Result(
        id="dense", causal=False, kind="attention", points=[_point(n, n * n, n) for n in lengths]
    )
    ffn = Result(
        id=DENSE_FFN, causal=False, kind="ffn", points=[_point(n, n, 10 * n) for n in lengths]
    )
    switch = Result(
        id="switch-transformer",
        causal=True,
        kind="ffn",
        points=[_point(n, 2 * n, 30 * n) for n in lengths],
    )
    results = {"dense": dense, DENSE_FFN: ffn, "switch-transformer:causal": switch}
    summary = summarise(results, load_catalog(), 1e9, make_setup(dim=16, heads=2))
    mine = summary["switch-transformer:causal"]
    assert mine.reference == DENSE_FFN
    assert mine.relative_to_dense is not None
    assert (mine.relative_to_dense.forward_s, mine.relative_to_dense.peak_bytes) == (2.0, 3.0)
    assert mine.memory_vs_materialised_softmax is None  # a feed-forward layer has no n×n
    assert summary[DENSE_FFN].reference == DENSE_FFN
    assert summary["dense"].reference == "dense"


def test_the_reference_is_planned_with_feed_forward_mechanisms_and_runs_bare() -> None:
    catalog = load_catalog()
    args = ["--mechanisms", "switch-transformer", "--lengths", "8"]
    plan = plan_from(parser().parse_args(args), args)
    assert list(plan.ids) == [DENSE_FFN, "switch-transformer"]  # no attention to compare
    assert Variant(DENSE_FFN, False) in variants(plan.ids, catalog)
    run = make_workload(Variant(DENSE_FFN, False), 8, make_setup(dim=16, heads=2))
    assert torch.isfinite(run())
    layer = DenseFeedForward(16)
    assert sum(p.numel() for p in layer.parameters()) == 16 * 64 + 64 + 64 * 16 + 16


def test_a_result_measured_elsewhere_records_its_machine() -> None:
    here = Machine(processor="Other CPU", system="Linux", python="3.11")
    file = MeasurementFile.model_validate(
        {
            "schema_version": 1,
            "command": "python -m tools.measure",
            "date": "2026-01-01T00:00:00+00:00",
            "machine": {"processor": "First CPU", "system": "Linux", "python": "3.11"},
            "torch": "2",
            "setup": make_setup().model_dump(),
            "matmul_flop_rate": 1e9,
            "memory_method": "x",
        }
    )
    result = Result(id="glam", causal=False, kind="ffn")
    assert mark_machine(result, file, here).machine == here
    assert mark_machine(result, file, file.machine).machine is None
