"""A measuring run: plan the points, resume a stopped run, skip hopeless lengths, write.

The run's state is the :class:`~tools.catalog.measurements.MeasurementFile` it writes:
it is staged and committed through :class:`~tools.catalog.Store` after every point, so an
interrupted run resumes where it stopped. A file with another setup is replaced; a
malformed or outdated one stops the run with its
:class:`~tools.catalog.MeasurementError` (``path: field: message``). A single bad point
in it (``n = 0`` from an older run) is skipped with a warning and measured again if
planned, rather than stopping every later run.

Examples:
    >>> from tools.measure.workload import make_setup
    >>> results_name(make_setup(device="cuda:0", dtype="bfloat16"))
    'measurements/gpu-bfloat16.json'
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

import implementations
from tools.catalog import Catalog, MeasurementError, Store
from tools.catalog.commands import commands_so_far
from tools.catalog.complexity import parse
from tools.catalog.console import printable
from tools.catalog.measurements import (
    SCHEMA_VERSION,
    Machine,
    MeasurementFile,
    Point,
    Result,
    Setup,
    drop_bad_points,
    parse_measurements,
)
from tools.measure.figures import matmul_flop_rate, measure_point
from tools.measure.peer_timing import compare, planned, with_comparison
from tools.measure.reference import DENSE_FFN
from tools.measure.summary import summarise
from tools.measure.workload import Variant, variants

MEMORY_METHOD = (
    "peak bytes of live tensors created during the forward pass "
    "(tools.measure.counters.LiveTensorBytes); parameters and input excluded"
)


@dataclass(frozen=True)
class Plan:
    """What a run measures and how hard it tries."""

    ids: Sequence[str]
    lengths: Sequence[int]
    setup: Setup
    repeats: int
    max_seconds: float
    command: str
    peers: bool = False
    # The mechanisms to measure afresh (their stored points and peer comparisons dropped).
    remeasure: tuple[str, ...] = ()


def machine_description(device: str = "cpu") -> Machine:
    """The processor (the GPU's name on CUDA, with its host CPU), OS and Python of this machine."""
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if device.startswith("cuda"):
        processor = f"{torch.cuda.get_device_name(device)} (host: {processor})"
    return Machine(
        processor=processor, system=platform.platform(), python=platform.python_version()
    )


def results_name(setup: Setup) -> str:
    """The measurement file of a setup, relative to the catalog folder."""
    device = "gpu" if setup.device.startswith("cuda") else setup.device
    return f"measurements/{device}-{setup.dtype}.json"


def read_resumable(store: Store, name: str) -> MeasurementFile | None:
    """The measurement file ``name`` to resume, without its bad points (each one warned
    about on stderr); None when there is none.

    Raises:
        MeasurementError: the file is malformed or predates the versioned format.
    """
    try:
        data = store.read_data(name)
    except ValueError as error:  # not JSON at all
        raise MeasurementError(str(error)) from None
    if data is None:
        return None
    for dropped in drop_bad_points(data):
        print(f"warning: skipping bad stored point {printable(dropped)}", file=sys.stderr)
    return parse_measurements(json.dumps(data), store.root / name)


def start(saved: MeasurementFile | None, plan: Plan) -> MeasurementFile:
    """The file this run writes: the saved one continued when its setup is this run's.

    A resumed run continues the first one: same reference rate, same start date, same
    machine, same results; the torch version is this run's, and its command is added to
    the file's (:func:`commands_so_far`), so the file says every command that made it. A result
    measured on another machine than the file's records that machine
    (:func:`mark_machine`).
    """
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    resumed = saved if saved is not None and saved.setup == plan.setup else None
    return MeasurementFile(
        schema_version=SCHEMA_VERSION,
        command=commands_so_far(resumed.command if resumed else None, plan.command),
        date=resumed.date if resumed is not None else now,
        last_resumed=now if resumed is not None else None,
        machine=resumed.machine if resumed is not None else machine_description(plan.setup.device),
        torch=torch.__version__,
        setup=plan.setup,
        matmul_flop_rate=(
            resumed.matmul_flop_rate if resumed is not None else matmul_flop_rate(plan.setup)
        ),
        memory_method=MEMORY_METHOD,
        results=dict(resumed.results) if resumed is not None else {},
    )


def skip_reason(result: Result, n: int, catalog: Catalog, plan: Plan) -> str | None:
    """Why length ``n`` is not worth measuring, or None.

    The time of a pass is predicted from the longest measured length, with the claimed
    growth (quadratic when nothing is claimed, at least linear).
    """
    previous = [point for point in result.points if point.forward_backward_s is not None]
    if not previous:
        return None
    last = max(previous, key=lambda point: point.n)
    entry = catalog.entries.get(result.id)
    exponent = parse(entry.complexity.time).exponent if entry and entry.complexity else 2.0
    predicted = last.figure("forward_backward_s") * (n / last.n) ** max(exponent, 1.0)
    if predicted * (plan.repeats + 1) > plan.max_seconds:
        return f"predicted {predicted:.1f} s a pass"
    return None


def new_result(variant: Variant) -> Result:
    """An empty result for a variant not measured before."""
    kind = "ffn" if variant.id == DENSE_FFN else implementations.mechanism(variant.id).kind
    return Result(id=variant.id, causal=variant.causal, kind=kind, points=[])


def mark_machine(result: Result, file: MeasurementFile, machine: Machine) -> Result:
    """``result`` with ``machine`` recorded when it is not the file's (points from two
    machines are never compared as one platform's)."""
    if machine == file.machine or result.machine == machine:
        return result
    return result.model_copy(update={"machine": machine})


def measure_variant_at(
    variant: Variant, n: int, result: Result, catalog: Catalog, plan: Plan
) -> Point:
    """The point of ``variant`` at ``n``: measured, or skipped with the reason."""
    reason = skip_reason(result, n, catalog, plan)
    if reason is not None:
        return Point(n=n, skipped=reason)
    try:
        return measure_point(variant, n, plan.setup, plan.repeats)
    except (RuntimeError, MemoryError) as error:  # out of memory, unsupported length
        return Point(n=n, skipped=f"{type(error).__name__}: {error}"[:200])


def measure(plan: Plan, catalog: Catalog, store: Store) -> MeasurementFile:
    """Measure every planned point not already in the file, then summarise it.

    Each point is committed as soon as it is measured; the summarised file is staged in
    ``store`` and left for the caller to commit.

    Raises:
        MeasurementError: the file to resume is malformed or predates the versioned format.
    """
    from tqdm import tqdm

    name = results_name(plan.setup)
    measurements = start(read_resumable(store, name), plan)
    for variant in variants(list(plan.remeasure), catalog):
        measurements.results.pop(variant.key, None)
    points = [(variant, n) for variant in variants(plan.ids, catalog) for n in plan.lengths]
    progress = tqdm(
        points, desc="measuring", unit="point", file=sys.stderr, disable=not sys.stderr.isatty()
    )
    here = machine_description(plan.setup.device)
    for variant, n in progress:
        progress.set_postfix_str(f"{variant.key} n={n}")
        result = measurements.results.setdefault(variant.key, new_result(variant))
        if result.point(n) is not None:
            continue
        result = measurements.results[variant.key] = mark_machine(result, measurements, here)
        result.points.append(measure_variant_at(variant, n, result, catalog, plan))
        result.points.sort(key=lambda point: point.n)
        store.write_measurements(name, measurements)
        store.commit()
    if plan.peers:
        measure_peers(plan, catalog, measurements, store)
    measurements.results = summarise(
        measurements.results, catalog, measurements.matmul_flop_rate, plan.setup
    )
    store.write_measurements(name, measurements)
    return measurements


def measure_peers(
    plan: Plan, catalog: Catalog, measurements: MeasurementFile, store: Store
) -> None:
    """Compare every planned variant with each of its peers at every planned length.

    A comparison already measured is kept (resume); one that was skipped is tried again,
    so installing the extra and re-running fills it in. Each is committed when made.
    """
    name = results_name(plan.setup)
    for variant, peer in planned(variants(plan.ids, catalog)):
        for n in plan.lengths:
            result = measurements.results.setdefault(variant.key, new_result(variant))
            done = [c for c in result.peers if (c.peer, c.n) == (peer.shown, n) and c.measured]
            if done:
                continue
            comparison = compare(peer, variant, n, plan.setup, plan.repeats)
            measurements.results[variant.key] = with_comparison(result, comparison)
            store.write_measurements(name, measurements)
            store.commit()
