"""The closing table: mechanisms as rows, (task, length) as columns, accuracy mean ± spread.

Examples:
    >>> from tools.catalog.evaluations import Point
    >>> point = Point("listops", 512, "dense", 0.5, 0.02, [0, 1], 1e4, 10)
    >>> print(table([point], {}))
    mechanism  listops 512
    ---------  -----------
    dense      50.0±2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tools.catalog.console import printable
from tools.catalog.evaluations import Evaluations, Point


def table(points: Iterable[Point], skipped: Mapping[tuple[str, str, int], str]) -> str:
    """The text of the table: accuracy in percent, ``skip`` where a cell was skipped."""
    cells: dict[tuple[str, str, int], str] = {
        (
            p.mechanism,
            p.task,
            p.length,
        ): f"{100 * p.accuracy_mean:.1f}±{100 * p.accuracy_spread:.1f}"
        for p in points
    }
    cells.update({key: "skip" for key in skipped if key not in cells})
    columns = sorted({(task, length) for _, task, length in cells})
    mechanisms = sorted({mechanism for mechanism, _, _ in cells}, key=lambda m: (m != "dense", m))
    header = ["mechanism", *(f"{task} {length}" for task, length in columns)]
    rows = [
        [printable(m), *(cells.get((m, task, length), "") for task, length in columns)]
        for m in mechanisms
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_table(evaluations: Evaluations) -> None:
    """Print the table of a whole evaluations file."""
    skipped = {(s.mechanism, s.task, s.length): s.reason for s in evaluations.skipped}
    print(table(evaluations.points(), skipped))
