"""Measure every registered mechanism against exact attention, and keep the figures.

For each mechanism (causal and non-causal where both exist) and each length ``n`` it
records forward FLOPs and the peak bytes of live tensors (deterministic, see
:mod:`tools.counters`), the median wall time of the forward and of forward+backward
after warm-up at a fixed thread count, and tokens per second. From these it fits the
exponent of ``n`` (least squares on log–log over the upper lengths), finds the
crossover length from which the mechanism is faster than ``dense``, and reports the
achieved FLOP rate as a fraction of this machine's dense matrix-multiply rate, measured
in the same run.

Results are data: ``catalog/measurements/<device>-<dtype>.json``, written through
:class:`tools.catalog.Store` after every point, so an interrupted run resumes where it
stopped. The site reads them and never runs a model.

Usage::

    python -m tools.measure                      # everything, n = 256 ... 16384 (long)
    python -m tools.measure --quick              # n = 256 ... 2048, fewer repeats
    python -m tools.measure --mechanisms performer,linformer --lengths 1024,2048

Examples:
    >>> fit_exponent([256, 512, 1024], [1.0, 4.0, 16.0])
    2.0
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import implementations
from tools.catalog import Catalog, Store, load_catalog
from tools.complexity import parse
from tools.counters import count_flops, peak_live_bytes
from tools.measure_settings import options_for

DEFAULT_LENGTHS = tuple(2**k for k in range(8, 15))  # 256 ... 16384
QUICK_LENGTHS = tuple(2**k for k in range(8, 12))  # 256 ... 2048
REPORT_LENGTH = 4096


@dataclass(frozen=True)
class Setup:
    """The fixed conditions of a run; points are comparable only under equal setups."""

    dim: int = 512
    heads: int = 8
    batch: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 1

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


@dataclass(frozen=True)
class Variant:
    """One mechanism measured one way (non-causal or causal)."""

    id: str
    causal: bool

    @property
    def key(self) -> str:
        return f"{self.id}:causal" if self.causal else self.id


def variants(ids: Iterable[str], catalog: Catalog) -> list[Variant]:
    """Non-causal for every mechanism; causal too where it is supported and claimed."""
    chosen: list[Variant] = []
    for id in ids:
        record = implementations.mechanism(id)
        entry = catalog.entries.get(id)
        decodes = entry.decode if entry is not None and entry.decode is not None else True
        if record.kind != "memory":  # segment recurrence is inherently causal-agnostic here
            chosen.append(Variant(id, False))
        if record.supports_causal and decodes:
            chosen.append(Variant(id, True))
    return chosen


class _FfnBlock(nn.Module):
    """Exact attention followed by a feed-forward mechanism: the layer MoE papers change."""

    def __init__(self, ffn: nn.Module, dim: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.attention = implementations.build("dense", dim=dim, heads=heads, causal=causal)
        self.ffn = ffn

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.attention(x)
        y, aux = self.ffn(x)
        return x + y, aux


def make_workload(variant: Variant, n: int, setup: Setup) -> Callable[[], torch.Tensor]:
    """A closure running one forward pass at length ``n`` and returning a scalar loss.

    Feed-forward mechanisms run inside a layer with exact attention, since the claim of
    a mixture-of-experts paper is about the whole layer; segment-recurrent mechanisms
    run one warm segment (their memory filled by a previous segment).
    """
    torch.manual_seed(0)
    record = implementations.mechanism(variant.id)
    module = implementations.build(
        variant.id,
        dim=setup.dim,
        heads=setup.heads,
        causal=variant.causal,
        **options_for(variant.id, n),
    )
    if record.kind == "ffn":
        module = _FfnBlock(module, setup.dim, setup.heads, variant.causal)
    module = module.to(device=setup.device, dtype=setup.torch_dtype)
    x = torch.randn(setup.batch, n, setup.dim, device=setup.device, dtype=setup.torch_dtype)

    if record.kind == "memory":
        with torch.no_grad():
            _, memory = module(x)

        def run() -> torch.Tensor:
            y, _ = module(x, memory=memory)
            return y.float().sum()
    elif record.kind == "ffn":

        def run() -> torch.Tensor:
            y, aux = module(x)
            return y.float().sum() + aux.float()
    else:

        def run() -> torch.Tensor:
            return module(x).float().sum()

    return run


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
    a = torch.randn(size, size, device=setup.device, dtype=setup.torch_dtype)
    seconds = median_seconds(lambda: a @ a, repeats, setup.device)
    return 2 * size**3 / seconds


def count_forward_flops(variant: Variant, n: int, setup: Setup) -> int:
    """Forward FLOPs, counted on shape-only ``meta`` tensors where the mechanism allows.

    The same operators run as on a real device, but nothing is computed, so counting
    costs no time at any length. Autograd stays on: torch's module tracker needs it.
    """
    try:
        meta = Setup(setup.dim, setup.heads, setup.batch, "meta", setup.dtype, setup.threads)
        return count_flops(make_workload(variant, n, meta))
    except (NotImplementedError, RuntimeError):  # an operator with data-dependent shapes
        return count_flops(make_workload(variant, n, setup))


def measure_point(variant: Variant, n: int, setup: Setup, repeats: int) -> dict[str, Any]:
    """Every figure of one mechanism at one length."""
    flops = count_forward_flops(variant, n, setup)
    run = make_workload(variant, n, setup)
    with torch.no_grad():
        # The counted pass doubles as the warm-up of the timed ones.
        peak = peak_live_bytes(run) if setup.device == "cpu" else _cuda_peak(run)
        forward = median_seconds(run, repeats, setup.device, warmup=0)
    backward = median_seconds(lambda: run().backward(), repeats, setup.device)
    return {
        "n": n,
        "flops": flops,
        "peak_bytes": peak,
        "forward_s": forward,
        "forward_backward_s": backward,
        "tokens_per_s": setup.batch * n / forward,
        "options": {k: v for k, v in options_for(variant.id, n).items()},
    }


def _cuda_peak(run: Callable[[], Any]) -> int:
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def fit_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``log value`` against ``log n``, rounded to 3 decimals."""
    xs = [math.log(n) for n in lengths]
    ys = [math.log(max(v, 1e-30)) for v in values]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return round(numerator / denominator, 3)


def upper_range(points: Sequence[dict[str, Any]], figure: str, count: int = 3) -> list[dict]:
    """The largest ``count`` measured lengths, where constant terms matter least."""
    measured = [p for p in points if figure in p]
    return sorted(measured, key=lambda p: p["n"])[-count:]


def exponents(points: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The fitted exponent of n of each figure."""
    fitted: dict[str, float | None] = {}
    for figure in ("flops", "peak_bytes", "forward_s", "forward_backward_s"):
        upper = upper_range(points, figure)
        fitted[figure] = (
            fit_exponent([p["n"] for p in upper], [p[figure] for p in upper])
            if len(upper) >= 2
            else None
        )
    return fitted


def crossover(points: Sequence[dict], dense: Sequence[dict], figure: str) -> float | None:
    """The length from which the mechanism is faster than ``dense``, interpolated on
    log–log between the measured lengths; None when it never gets (and stays) faster.

    Examples:
        >>> mine = [{"n": 256, "t": 2.0}, {"n": 512, "t": 2.0}, {"n": 1024, "t": 2.0}]
        >>> theirs = [{"n": 256, "t": 1.0}, {"n": 512, "t": 2.0}, {"n": 1024, "t": 4.0}]
        >>> crossover(mine, theirs, "t")
        512.0
    """
    reference = {p["n"]: p[figure] for p in dense if figure in p}
    ratios = [
        (p["n"], p[figure] / reference[p["n"]])
        for p in points
        if figure in p and p["n"] in reference
    ]
    ratios.sort()
    if not ratios or ratios[-1][1] >= 1:
        return None
    # Walk down from the largest length while the mechanism stays faster.
    index = len(ratios) - 1
    while index > 0 and ratios[index - 1][1] < 1:
        index -= 1
    if index == 0:
        return float(ratios[0][0])
    (n0, r0), (n1, r1) = ratios[index - 1], ratios[index]
    fraction = math.log(r0) / (math.log(r0) - math.log(r1))
    return round(math.exp(math.log(n0) + fraction * (math.log(n1) - math.log(n0))), 1)


def materialised_softmax_bytes(n: int, setup: Setup) -> int:
    """Bytes of the n×n attention matrix of every head, the memory fused kernels avoid.

    Examples:
        >>> materialised_softmax_bytes(4096, Setup(heads=8))  # 8 heads × 4096² × 4 bytes
        536870912
    """
    element = torch.empty((), dtype=setup.torch_dtype).element_size()
    return setup.batch * setup.heads * n * n * element


def summarise(results: dict[str, Any], catalog: Catalog, flop_rate: float, setup: Setup) -> None:
    """Add exponents, crossovers and ratios at :data:`REPORT_LENGTH` to every result.

    Memory is compared twice: with ``dense``, whose fused CPU kernel never stores the
    n×n matrix, and with that n×n matrix itself, which a textbook softmax materialises.
    """
    for result in results.values():
        points = [p for p in result["points"] if "flops" in p]
        result["exponents"] = exponents(points)
        dense_key = "dense:causal" if result["causal"] and "dense:causal" in results else "dense"
        dense_points = results.get(dense_key, {}).get("points", [])
        result["crossover_n"] = {
            figure: crossover(points, dense_points, figure)
            for figure in ("forward_s", "forward_backward_s")
        }
        at = {p["n"]: p for p in points}
        dense_at = {p["n"]: p for p in dense_points if "flops" in p}
        result["relative_to_dense"] = (
            {
                figure: round(at[REPORT_LENGTH][figure] / dense_at[REPORT_LENGTH][figure], 4)
                for figure in ("forward_s", "forward_backward_s", "peak_bytes", "flops")
                if dense_at[REPORT_LENGTH][figure]
            }
            if REPORT_LENGTH in at and REPORT_LENGTH in dense_at
            else None
        )
        result["memory_vs_materialised_softmax"] = (
            round(
                at[REPORT_LENGTH]["peak_bytes"] / materialised_softmax_bytes(REPORT_LENGTH, setup),
                4,
            )
            if REPORT_LENGTH in at
            else None
        )
        for point in points:
            point["flop_rate_fraction"] = round(point["flops"] / point["forward_s"] / flop_rate, 4)
        entry = catalog.entries.get(result["id"])
        if entry is not None and entry.complexity is not None:
            result["claimed"] = {"time": entry.complexity.time, "memory": entry.complexity.memory}


def machine_description() -> dict[str, Any]:
    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "processor": processor,
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def results_name(setup: Setup) -> str:
    device = "gpu" if setup.device.startswith("cuda") else setup.device
    return f"measurements/{device}-{setup.dtype}.json"


def print_table(results: dict[str, Any], stream: Any = None) -> None:
    """The closing table: claimed complexity, measured exponents, 4k ratios, crossover."""
    stream = stream or sys.stdout  # looked up now, so redirected output is honoured
    header = (
        f"{'mechanism':<34} {'claimed time':<26} {'FLOP exp':>8} {'mem exp':>8} "
        f"{'fwd exp':>8} {'t@4k/dense':>10} {'m@4k/dense':>10} {'crossover':>9}"
    )
    print(header, file=stream)
    print("-" * len(header), file=stream)
    for key in sorted(results):
        result = results[key]
        fitted = result.get("exponents", {})
        relative = result.get("relative_to_dense") or {}
        cross = (result.get("crossover_n") or {}).get("forward_s")

        def number(value: float | None, width: int, digits: int = 2) -> str:
            return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

        print(
            f"{key:<34} {(result.get('claimed') or {}).get('time', '-'):<26} "
            f"{number(fitted.get('flops'), 8)} {number(fitted.get('peak_bytes'), 8)} "
            f"{number(fitted.get('forward_s'), 8)} {number(relative.get('forward_s'), 10)} "
            f"{number(relative.get('peak_bytes'), 10)} "
            f"{(f'{cross:.0f}' if cross else '-'):>9}",
            file=stream,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.measure", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--mechanisms", help="comma-separated ids (default: every registered one)")
    parser.add_argument("--lengths", help="comma-separated n (default: 256 ... 16384)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="n = 256 ... 2048 and 3 repeats")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="skip a length whose forward+backward is predicted to take longer",
    )
    parser.add_argument("--dry-run", action="store_true", help="measure but write nothing")
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: catalog/)")
    args = parser.parse_args(argv)

    catalog = load_catalog(args.catalog)
    ids = args.mechanisms.split(",") if args.mechanisms else implementations.available()
    for id in ids:
        implementations.mechanism(id)  # fail early on a typo
    if "dense" not in ids:
        ids = ["dense", *ids]
    lengths = (
        [int(n) for n in args.lengths.split(",")]
        if args.lengths
        else (list(QUICK_LENGTHS) if args.quick else list(DEFAULT_LENGTHS))
    )
    repeats = 3 if args.quick else args.repeats
    setup = Setup(args.dim, args.heads, 1, args.device, args.dtype, args.threads)
    torch.set_num_threads(setup.threads)

    store = Store(args.catalog, dry_run=args.dry_run)
    name = results_name(setup)
    saved = store.read_data(name) or {}
    resumable = saved.get("setup") == asdict(setup)
    results: dict[str, Any] = saved.get("results", {}) if resumable else {}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    # A resumed run continues the first one: same reference rate, same start date.
    flop_rate = saved["matmul_flop_rate"] if resumable else matmul_flop_rate(setup)
    meta = {
        "setup": asdict(setup),
        "machine": machine_description(),
        "torch": torch.__version__,
        "date": saved.get("date", now) if resumable else now,
        "last_resumed": now if resumable else None,
        "command": "python -m tools.measure "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "matmul_flop_rate": flop_rate,
        "memory_method": "peak bytes of live tensors created during the forward pass "
        "(tools.counters.LiveTensorBytes); parameters and input excluded",
    }

    from tqdm import tqdm

    plan = [(variant, n) for variant in variants(ids, catalog) for n in lengths]
    progress = tqdm(
        plan, desc="measuring", unit="point", file=sys.stderr, disable=not sys.stderr.isatty()
    )
    for variant, n in progress:
        progress.set_postfix_str(f"{variant.key} n={n}")
        result = results.setdefault(
            variant.key,
            {
                "id": variant.id,
                "causal": variant.causal,
                "kind": implementations.mechanism(variant.id).kind,
                "points": [],
            },
        )
        done = {p["n"] for p in result["points"]}
        if n in done:
            continue
        previous = [p for p in result["points"] if "forward_backward_s" in p]
        if previous:
            last = max(previous, key=lambda p: p["n"])
            # Predict with the claimed growth, or quadratic when nothing is claimed.
            entry = catalog.entries.get(variant.id)
            exponent = parse(entry.complexity.time).exponent if entry and entry.complexity else 2.0
            predicted = last["forward_backward_s"] * (n / last["n"]) ** max(exponent, 1.0)
            if predicted * (repeats + 1) > args.max_seconds:
                result["points"].append({"n": n, "skipped": f"predicted {predicted:.1f} s a pass"})
                continue
        try:
            result["points"].append(measure_point(variant, n, setup, repeats))
        except (RuntimeError, MemoryError) as error:  # out of memory, unsupported length
            result["points"].append({"n": n, "skipped": f"{type(error).__name__}: {error}"[:200]})
        result["points"].sort(key=lambda p: p["n"])
        store.write_data(name, {**meta, "results": results})
        store.commit()
    summarise(results, catalog, flop_rate, setup)
    store.write_data(name, {**meta, "results": results})
    written = store.commit()
    print_table(results)
    print(f"{'would write' if args.dry_run else 'wrote'} {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
