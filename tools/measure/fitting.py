"""How a figure grows with ``n``: the fitted exponent, and the crossover length with dense.

Both read measured points only. The exponent is a least-squares slope on log–log over the
largest lengths, where constant terms matter least; the crossover is interpolated on
log–log between the two measured lengths around which a mechanism becomes (and stays)
faster than exact attention.

Examples:
    >>> fit_exponent([256, 512, 1024], [1.0, 4.0, 16.0])
    2.0
    >>> crossover({256: 2.0, 512: 2.0, 1024: 2.0}, {256: 1.0, 512: 2.0, 1024: 4.0})
    512.0
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

from tools.catalog.measurements import Exponents, Figure, Point

# Fits use the largest lengths measured, where constant terms matter least.
UPPER_COUNT = 3


def fit_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``log value`` against ``log n``, rounded to 3 decimals."""
    xs = [math.log(n) for n in lengths]
    ys = [math.log(max(v, 1e-30)) for v in values]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return round(numerator / denominator, 3)


def by_length(points: Iterable[Point], figure: Figure) -> dict[int, float]:
    """One figure of every measured point, by length."""
    return {point.n: point.figure(figure) for point in points if point.measured}


def upper_range(points: Iterable[Point], figure: Figure, count: int = UPPER_COUNT) -> list[Point]:
    """The largest ``count`` lengths at which ``figure`` was measured."""
    measured = [point for point in points if point.measured and getattr(point, figure) is not None]
    return sorted(measured, key=lambda point: point.n)[-count:]


def fitted_exponent(points: Iterable[Point], figure: Figure) -> float | None:
    """The exponent of ``n`` of one figure; None with fewer than two measured lengths."""
    upper = upper_range(points, figure)
    if len(upper) < 2:
        return None
    return fit_exponent([point.n for point in upper], [point.figure(figure) for point in upper])


def exponents(points: Sequence[Point]) -> Exponents:
    """The fitted exponent of n of each figure."""
    return Exponents(
        flops=fitted_exponent(points, "flops"),
        peak_bytes=fitted_exponent(points, "peak_bytes"),
        forward_s=fitted_exponent(points, "forward_s"),
        forward_backward_s=fitted_exponent(points, "forward_backward_s"),
    )


def crossover(mine: Mapping[int, float], dense: Mapping[int, float]) -> float | None:
    """The length from which the mechanism is faster than ``dense``, interpolated on
    log–log between the measured lengths; None when it never gets (and stays) faster.

    Both arguments give one figure (a time) by length; only lengths in both count.
    """
    ratios = sorted((n, value / dense[n]) for n, value in mine.items() if n in dense)
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
