"""The closing table of a run: claimed complexity, fitted exponents, ratios at 4k, crossover.

Examples:
    >>> from tools.catalog.measurements import Result
    >>> print_table({"dense": Result(id="dense", causal=False, kind="attention")})
    ... # doctest: +NORMALIZE_WHITESPACE
    mechanism  claimed time  FLOP exp  mem exp  fwd exp  t@4k/dense  m@4k/dense  crossover
    ---...
    dense      -             -         -        -        -           -           -
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from tools.catalog.console import printable
from tools.catalog.measurements import Exponents, Relative, Result


def _number(value: float | None, width: int, digits: int = 2) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def table_row(key: str, result: Result) -> str:
    """One result's line of the table; the key and claim come from a file: made printable."""
    fitted = result.exponents or Exponents()
    relative = result.relative_to_dense or Relative()
    cross = result.crossover_n.forward_s if result.crossover_n is not None else None
    claimed = printable(result.claimed.time) if result.claimed is not None else "-"
    return (
        f"{printable(key):<34} {claimed:<26} "
        f"{_number(fitted.flops, 8)} {_number(fitted.peak_bytes, 8)} "
        f"{_number(fitted.forward_s, 8)} {_number(relative.forward_s, 10)} "
        f"{_number(relative.peak_bytes, 10)} "
        f"{(f'{cross:.0f}' if cross else '-'):>9}"
    )


def print_table(results: Mapping[str, Result], stream: TextIO | None = None) -> None:
    """Print one line per result, sorted by key, under a header."""
    stream = stream or sys.stdout  # looked up now, so redirected output is honoured
    header = (
        f"{'mechanism':<34} {'claimed time':<26} {'FLOP exp':>8} {'mem exp':>8} "
        f"{'fwd exp':>8} {'t@4k/dense':>10} {'m@4k/dense':>10} {'crossover':>9}"
    )
    print(header, file=stream)
    print("-" * len(header), file=stream)
    for key in sorted(results):
        print(table_row(key, results[key]), file=stream)
