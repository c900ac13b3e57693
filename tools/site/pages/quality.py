"""The quality benchmark page (``quality/index.md``) and each paper's own results.

Shows what ``python -m tools.evaluate`` recorded in ``catalog/evaluations/*.json`` (read
through :func:`tools.catalog.evaluations.load_evaluations`; the site never runs a
model): the setting (small models on synthetic tasks, comparable with each other and not
with Long Range Arena's numbers), one sortable table per task (accuracy mean ± spread,
training tokens per second and peak memory at each length; a skipped run shows its
reason), and per task and length the accuracy–speed–memory chart of LRA's Figure 3
drawn from our numbers (:func:`tools.site.lra_chart.accuracy_chart`), with the Pareto
frontier of accuracy against speed joined by a line and listed under it.

Accuracy is shown in %: a run's accuracy $a \\in [0, 1]$ is shown as $100\\,a$.

Examples:
    >>> memory_text(3 * 2**20), speed_text(12345.6)
    ('3.0', '12,346')
    >>> accuracy_text(0.9731, 0.004)
    '97.3 ± 0.4'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog
from tools.catalog.evaluations import Evaluations
from tools.catalog.evaluations import Point as Evaluated
from tools.catalog.names import slug
from tools.site.escaping import front_matter, render
from tools.site.lra_chart import Axes, Point, accuracy_chart, frontier

KEYWORDS = ["quality benchmark", "associative recall", "ListOps", "accuracy", "Pareto frontier"]
# Mechanisms of the registry that are no paper of the catalog, as the pages name them.
OWN_NAMES = {"dense": "Exact attention (dense)"}
MEBIBYTE = 2**20
# How the spread of accuracy over seeds is computed (tools.catalog.evaluations).
SPREAD = "half the range (max − min) over seeds"
AXES = Axes("training tokens per second", "accuracy, % (mean over seeds)")


@dataclass(frozen=True)
class Cell:
    """A value as shown: its text, what it sorts on and its tooltip ("" for none)."""

    text: str
    sort: str
    title: str = ""


@dataclass(frozen=True)
class Row:
    """One mechanism in one task's table: three cells (accuracy, speed, memory) a length."""

    mechanism: str
    name: str
    href: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Chart:
    """The chart of one task at one length, and its frontier as listed under it."""

    id: Markup  # a slug: letters, digits and dashes only
    length: int
    svg: Markup  # our own SVG, its labels escaped by the drawer
    frontier: tuple[Point, ...]
    texts: tuple[str, ...]  # one line per frontier point, for the list under the chart


@dataclass(frozen=True)
class TaskSection:
    """One task of one evaluation file: its table and its charts."""

    id: str
    name: str
    description: str
    causal: bool
    chance: str
    lengths: tuple[int, ...]
    rows: tuple[Row, ...]
    skipped: tuple[str, ...]
    charts: tuple[Chart, ...]


@dataclass(frozen=True)
class RunSection:
    """One evaluation file (``catalog/evaluations/<name>.json``)."""

    name: str
    file: Evaluations
    machine: str
    tasks: tuple[TaskSection, ...]


@dataclass(frozen=True)
class OwnResult:
    """One row of a paper page's own results: a task at a length."""

    task: str
    length: int
    accuracy: Markup  # our own formatted numbers (or "skipped", "—"): never escaped
    seeds: Markup
    speed: Markup
    note: str  # a skipped run's reason, "" otherwise


@dataclass(frozen=True)
class OwnResults:
    """A paper's own results in one evaluation file."""

    machine: str
    rows: tuple[OwnResult, ...]
    spread: str = SPREAD


def accuracy_text(mean: float, spread: float) -> str:
    """Mean ± spread, in %."""
    return f"{100 * mean:.1f} ± {100 * spread:.1f}"


def speed_text(tokens_per_second: float) -> str:
    return f"{tokens_per_second:,.0f}"


def memory_text(peak_bytes: int) -> str:
    """Peak memory in MiB."""
    return f"{peak_bytes / MEBIBYTE:.1f}"


def seed_count(point: Evaluated) -> int:
    """How many seeds a point averages."""
    return len(point.seeds)


def mechanism_name(catalog: Catalog, mechanism: str) -> tuple[str, str]:
    """``(name, href)`` of a mechanism: its paper's name and page, else its own name."""
    entry = catalog.entries.get(mechanism)
    if entry is not None:
        return entry.name, f"../papers/{mechanism}/"
    return OWN_NAMES.get(mechanism, mechanism), ""


def machine_text(file: Evaluations) -> str:
    machine = file.machine
    return f"{machine.cpu}, {machine.threads} thread(s), {machine.platform}"


def _tip(name: str, point: Evaluated) -> str:
    return (
        f"{name}: {accuracy_text(point.accuracy_mean, point.accuracy_spread)}% accuracy "
        f"({seed_count(point)} seeds), {speed_text(point.tokens_per_second)} tokens/s, "
        f"{memory_text(point.peak_bytes)} MiB peak"
    )


def chart_points(catalog: Catalog, points: Iterable[Evaluated]) -> list[Point]:
    """The circles of one chart: x tokens/s, y mean accuracy in %, area peak memory."""
    found = []
    for p in points:
        name, href = mechanism_name(catalog, p.mechanism)
        found.append(
            Point(
                name,
                href,
                p.tokens_per_second,
                100 * p.accuracy_mean,
                float(p.peak_bytes),
                tip=_tip(name, p),
            )
        )
    return found


def _cells(point: Evaluated | None, skipped: str | None, length: int) -> tuple[Cell, ...]:
    if point is not None:
        return (
            Cell(
                accuracy_text(point.accuracy_mean, point.accuracy_spread),
                f"{100 * point.accuracy_mean:.4f}",
                f"mean ± spread over {seed_count(point)} seed(s)",
            ),
            Cell(speed_text(point.tokens_per_second), f"{point.tokens_per_second:.4f}"),
            Cell(memory_text(point.peak_bytes), str(point.peak_bytes)),
        )
    if skipped is not None:
        why = f"skipped at n = {length}: {skipped}"
        return (Cell("skipped", "-1", why), Cell("—", "-1", why), Cell("—", "-1", why))
    gone = f"not run at n = {length}"
    return (Cell("—", "-1", gone), Cell("—", "-1", gone), Cell("—", "-1", gone))


def task_section(
    catalog: Catalog, name: str, file: Evaluations, task: str, points: list[Evaluated]
) -> TaskSection:
    """The table and charts of ``task`` in ``file`` (``points``: the file's points)."""
    spec = file.tasks[task]
    mine = [p for p in points if p.task == task]
    skips = {(s.mechanism, s.length): s.reason for s in file.skipped if s.task == task}
    lengths = tuple(sorted({p.length for p in mine} | {n for _, n in skips}))
    mechanisms = {p.mechanism for p in mine} | {m for m, _ in skips}
    by_key = {(p.mechanism, p.length): p for p in mine}
    rows = []
    for mechanism in mechanisms:
        shown, href = mechanism_name(catalog, mechanism)
        cells: tuple[Cell, ...] = ()
        for n in lengths:
            cells += _cells(by_key.get((mechanism, n)), skips.get((mechanism, n)), n)
        rows.append(Row(mechanism, shown, href, cells))
    rows.sort(key=lambda r: (r.name.lower(), r.mechanism))
    skipped = tuple(
        f"{mechanism_name(catalog, m)[0]} at n = {n}: {reason}"
        for (m, n), reason in sorted(skips.items(), key=lambda item: (item[0][1], item[0][0]))
    )
    charts = []
    for n in lengths:
        circles = chart_points(
            catalog, sorted((p for p in mine if p.length == n), key=lambda p: p.mechanism)
        )
        best = tuple(frontier(circles))
        title = f"{spec.name} at n = {n}: accuracy, speed and memory"
        charts.append(
            Chart(
                id=Markup(slug(f"quality {name} {task} {n}")),
                length=n,
                svg=Markup(
                    accuracy_chart(
                        circles,
                        title=title,
                        axes=AXES,
                        show_frontier=True,
                        chance=100 * spec.chance,
                    )
                ),
                frontier=best,
                texts=tuple(
                    f"{p.name}: {p.accuracy:.1f}% at {speed_text(p.speed)} tokens/s" for p in best
                ),
            )
        )
    return TaskSection(
        id=slug(f"quality {name} {task}"),
        name=spec.name,
        description=spec.description,
        causal=spec.causal,
        chance=f"{100 * spec.chance:.1f}",
        lengths=lengths,
        rows=tuple(rows),
        skipped=skipped,
        charts=tuple(charts),
    )


def run_section(catalog: Catalog, name: str, file: Evaluations) -> RunSection:
    points = list(file.points())
    return RunSection(
        name=name,
        file=file,
        machine=machine_text(file),
        tasks=tuple(task_section(catalog, name, file, task, points) for task in file.tasks),
    )


def ordered(evaluations: Mapping[str, Evaluations]) -> list[tuple[str, Evaluations]]:
    """The evaluation files by name, CPU first (the run every contributor can reproduce)."""
    return sorted(evaluations.items(), key=lambda item: (not item[0].startswith("cpu"), item[0]))


def quality_page(catalog: Catalog, evaluations: Mapping[str, Evaluations]) -> str:
    """The quality benchmark page: the setting, a table per task and the frontier charts."""
    head = front_matter("Quality benchmark", keywords=KEYWORDS)
    runs = [run_section(catalog, name, file) for name, file in ordered(evaluations)]
    return render("quality.md.j2", front_matter=head, runs=runs, spread=SPREAD)


def _own_row(name: str, n: int, point: Evaluated | None, reason: str) -> OwnResult:
    if point is None:
        dash = Markup("—")
        return OwnResult(name, n, Markup("skipped"), dash, dash, reason)
    return OwnResult(
        name,
        n,
        Markup(accuracy_text(point.accuracy_mean, point.accuracy_spread)),
        Markup(seed_count(point)),
        Markup(speed_text(point.tokens_per_second)),
        "",
    )


def own_results(evaluations: Mapping[str, Evaluations], mechanism: str) -> list[OwnResults]:
    """The results of ``mechanism`` in every evaluation file, for its paper's page: one row
    per task and length, a skipped run with its reason."""
    found = []
    for _, file in ordered(evaluations):
        points = {(p.task, p.length): p for p in file.points() if p.mechanism == mechanism}
        skips = {(s.task, s.length): s.reason for s in file.skipped if s.mechanism == mechanism}
        rows = [
            _own_row(spec.name, n, points.get((task, n)), skips.get((task, n), ""))
            for task, spec in file.tasks.items()
            for n in sorted({n for t, n in [*points, *skips] if t == task})
        ]
        if rows:
            found.append(OwnResults(machine_text(file), tuple(rows)))
    return found
