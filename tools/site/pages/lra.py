"""The Long Range Arena page (``lra/index.md``) and each paper's published results.

Reads ``catalog/results/long-range-arena.yaml`` through :mod:`tools.catalog` and shows
every accuracy table (which paper reported each row, with its table number), LRA's
Table 2 (speed and memory at 1K to 4K) and its Figure 3 redrawn from the data
(:mod:`tools.site.lra_chart`). A value whose source is internally inconsistent carries
its note as a footnote mark.

Examples:
    >>> from tools.catalog import load_catalog
    >>> catalog = load_catalog()
    >>> rows = accuracy_rows(catalog, catalog.results["long-range-arena"])
    >>> first = rows[0]
    >>> first.name, first.cells[-1].text, first.source
    ('Transformer (vanilla)', '54.39', 'Long Range Arena, Table 1')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog
from tools.catalog.results import AVERAGED, BASELINES, METRICS, TASKS, Result, Results
from tools.site.escaping import front_matter, render
from tools.site.lra_chart import Point, lra_chart

BENCHMARK = "long-range-arena"
LENGTHS = (1024, 2048, 3072, 4096)
# Search ranks this page above the LRA paper's own page, which links here.
LRA_BOOST = 8
KEYWORDS = ["Long Range Arena", "LRA", "Long-Range Arena", "ListOps", "Path-X", "Pathfinder"]


@dataclass(frozen=True)
class Cell:
    """A value as shown: its text, what it sorts on and the note behind it, if any."""

    text: str
    sort: str
    note: str | None = None


@dataclass(frozen=True)
class TableRow:
    """One model in one source's table."""

    model: str
    name: str
    href: str
    source: str
    source_href: str
    cells: tuple[Cell, ...]
    notes: tuple[str, ...]


def model_name(catalog: Catalog, model: str) -> str:
    entry = catalog.entries.get(model)
    return entry.name if entry is not None else BASELINES.get(model, model)


def _cell(result: Result | None) -> Cell:
    if result is None:
        return Cell("", "-1")
    number = result.number
    digits = 1 if result.metric in ("steps-per-second", "relative-speed") else 2  # as printed
    shown = f"{number:.{digits}f}" if number is not None else str(result.value)
    return Cell(shown, f"{number:g}" if number is not None else "-1", result.note)


def _rows(
    catalog: Catalog, results: Results, columns: Sequence[tuple[str, str, int | None]]
) -> list[TableRow]:
    """One row per (source table, model), columns as (task, metric, length)."""
    rows: list[TableRow] = []
    keys = {(r.source, r.table, r.model): None for r in results.rows}
    for source, table, model in keys:
        found = [r for r in results.rows if (r.source, r.table, r.model) == (source, table, model)]
        by_key = {(r.task, r.metric, r.length): r for r in found}
        if not any(column in by_key for column in columns):
            continue
        cells = tuple(_cell(by_key.get(column)) for column in columns)
        notes = tuple(dict.fromkeys(c.note for c in cells if c.note))
        rows.append(
            TableRow(
                model=model,
                name=model_name(catalog, model),
                href=f"../papers/{model}/" if model in catalog.entries else "",
                source=f"{model_name(catalog, source)}, {table}",
                source_href=f"../papers/{source}/" if source in catalog.entries else "",
                cells=cells,
                notes=notes,
            )
        )
    return rows


def accuracy_rows(catalog: Catalog, results: Results) -> list[TableRow]:
    """Every accuracy row (the six tasks and the average), in file order."""
    return _rows(catalog, results, [(task, "accuracy", None) for task in TASKS])


def efficiency_rows(catalog: Catalog, results: Results) -> list[TableRow]:
    """Every speed and memory row at 1K to 4K tokens."""
    columns = [("Text", "steps-per-second", n) for n in LENGTHS]
    columns += [("Text", "peak-memory-gb", n) for n in LENGTHS]
    return _rows(catalog, results, columns)


def chart_points(catalog: Catalog, results: Results) -> list[Point]:
    """Figure 3's points: the benchmark's own average, speed and memory at 4K."""
    points = []
    for model in dict.fromkeys(r.model for r in results.rows if r.source == results.benchmark):

        def own(task: str, metric: str, length: int | None, model: str = model) -> float | None:
            return next(
                (
                    r.number
                    for r in results.rows
                    if (r.model, r.task, r.metric, r.length, r.source)
                    == (model, task, metric, length, results.benchmark)
                ),
                None,
            )

        average = own("Average", "accuracy", None)
        speed = own("Text", "steps-per-second", 4096)
        memory = own("Text", "peak-memory-gb", 4096)
        if average is not None and speed is not None and memory is not None:
            href = f"../papers/{model}/" if model in catalog.entries else ""
            points.append(Point(model_name(catalog, model), href, speed, average, memory))
    return points


def lra_page(catalog: Catalog) -> str:
    """The Long Range Arena page: every published accuracy, Table 2 and Figure 3."""
    results = catalog.results.get(BENCHMARK)
    points = chart_points(catalog, results) if results else []
    head = front_matter("Long Range Arena", boost=LRA_BOOST, keywords=KEYWORDS)
    return render(
        "lra.md.j2",
        front_matter=head,
        entry=catalog.entries.get(BENCHMARK),
        results=results,
        accuracy=accuracy_rows(catalog, results) if results else [],
        efficiency=efficiency_rows(catalog, results) if results else [],
        tasks=TASKS,
        averaged=", ".join(AVERAGED),
        lengths=LENGTHS,
        chart=Markup(lra_chart(points, title="Long Range Arena: accuracy, speed and memory")),
        sources=[model_name(catalog, s) for s in results.sources()] if results else [],
    )


@dataclass(frozen=True)
class PaperResult:
    """One published value about a paper's model, for its page."""

    benchmark: str
    task: str
    metric: str
    value: Markup  # our own formatted number (or FAIL): never escaped
    source: str
    source_id: str | None
    note: str | None


def paper_results(catalog: Catalog, model: str) -> list[PaperResult]:
    """Every published value of ``model`` across the results files."""
    found = []
    for results in catalog.results.values():
        for r in results.of_model(model):
            metric = METRICS[r.metric]
            task = r.task + (f" at {r.length // 1024}K" if r.length else "")
            found.append(
                PaperResult(
                    benchmark=model_name(catalog, results.benchmark),
                    task=task,
                    metric=f"{metric.label} ({metric.unit})",
                    value=Markup(_cell(r).text),
                    source=f"{model_name(catalog, r.source)}, {r.table}",
                    source_id=r.source if r.source in catalog.entries else None,
                    note=r.note,
                )
            )
    return found
