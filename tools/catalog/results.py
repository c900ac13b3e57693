"""Published results as data: ``catalog/results/<benchmark>.yaml``, typed and checked.

A results file transcribes the tables of papers: each block is one table of one paper
(``source`` and ``table``), run in one ``setting``; each row of a block is one printed
value. A value is a number, ``FAIL`` where the paper prints FAIL (the model was run
and learned nothing), or ``not run`` where it prints a dash. A model is a catalog id
or one of :data:`BASELINES`, the models a benchmark runs that are not papers of the
catalog (the vanilla Transformer, LRA's local attention). A printed value that does
not agree with the rest of its table keeps its printed value and says why in ``note``.

Structure is checked by pydantic; what needs the catalog (model ids, sources) and the
range of each metric is checked by :func:`check_results`, so that every problem is a
:class:`~tools.catalog.yamlio.Problem` at its line, like the entries' problems.

Examples:
    >>> from tools.catalog import load_catalog
    >>> results = load_catalog().results["long-range-arena"]
    >>> row = results.find("big-bird", "Average")[0]
    >>> row.value, row.source, row.table
    (55.01, 'long-range-arena', 'Table 1')
    >>> METRICS["accuracy"].allows(101.0)
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from tools.catalog.model import FORMATS, Id, Line, _Strict
from tools.catalog.yamlio import Problem, line_of

RESULTS_FOLDER = "results"
# Models a benchmark runs that are not papers of the catalog: id -> name shown.
BASELINES: dict[str, str] = {
    "transformer": "Transformer (vanilla)",
    "local-attention": "Local Attention",
}
# The tasks of LRA; "Average" is the benchmark's own average as printed.
TASKS: tuple[str, ...] = (
    "ListOps",
    "Text",
    "Retrieval",
    "Image",
    "Pathfinder",
    "Path-X",
    "Average",
)
# The tasks LRA averages: Path-X is left out (every model FAILs it).
AVERAGED: tuple[str, ...] = ("ListOps", "Text", "Retrieval", "Image", "Pathfinder")
FAIL = "FAIL"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Metric:
    """What a metric measures, its unit and the values it can take."""

    label: str
    unit: str
    low: float
    high: float | None

    def allows(self, value: float) -> bool:
        """Whether ``value`` lies in the metric's range (``low`` excluded when it is 0
        and the metric is a rate)."""
        above = value >= self.low if self.low > 0 or self.unit == "%" else value > self.low
        return above and (self.high is None or value <= self.high)

    @property
    def range_text(self) -> str:
        if self.high is not None:
            return f"{self.low:g} to {self.high:g}"
        return f"above {self.low:g}"


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy", "%", 0.0, 100.0),
    "steps-per-second": Metric("training steps per second", "steps/s", 0.0, None),
    "relative-speed": Metric("speed relative to the Transformer", "×", 0.0, None),
    "peak-memory-gb": Metric("peak memory per device", "GB", 0.0, None),
}
MetricName = Literal["accuracy", "steps-per-second", "relative-speed", "peak-memory-gb"]
TaskName = Literal["ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X", "Average"]


class Row(_Strict):
    """One printed value of a table."""

    model: Id = Field(description="A catalog id, or one of the declared baselines")
    task: TaskName
    metric: MetricName
    value: float | Literal["FAIL", "not run"] = Field(
        description='The number as printed; "FAIL" where printed FAIL, "not run" for a dash'
    )
    length: int | None = Field(
        default=None, ge=1, description="Sequence length of an efficiency figure, e.g. 4096"
    )
    note: Line | None = Field(
        default=None, description="Why a value is odd: re-run by others, inconsistent"
    )


class Block(_Strict):
    """One table of one paper, run in one setting."""

    source: Annotated[str, Field(pattern=FORMATS["citekey"][0])] = Field(
        description="Catalog id or citekey of the paper that prints it"
    )
    table: Line = Field(min_length=1, description='Where in it, e.g. "Table 1"')
    setting: Line = Field(min_length=1, description='e.g. "LRA rules, no pretraining"')
    rows: list[Row] = Field(min_length=1)


class ResultsFile(_Strict):
    """``catalog/results/<benchmark>.yaml``."""

    benchmark: Id = Field(description="The catalog id of the benchmark's paper")
    average: Line = Field(min_length=1, description="How the benchmark's average is taken")
    blocks: list[Block] = Field(min_length=1)


@dataclass(frozen=True)
class Result:
    """One value with its provenance, as the site reads it."""

    model: str
    task: str
    metric: str
    value: float | str
    length: int | None
    source: str
    table: str
    setting: str
    note: str | None

    @property
    def number(self) -> float | None:
        """The value when it is a number, else None (FAIL, not run)."""
        return self.value if isinstance(self.value, float | int) else None


@dataclass(frozen=True)
class Results:
    """A loaded results file: its benchmark, the average's convention and every value."""

    benchmark: str
    average: str
    rows: tuple[Result, ...]

    def find(self, model: str, task: str, metric: str = "accuracy") -> list[Result]:
        """The values of ``model`` on ``task`` for ``metric``, in file order."""
        return [r for r in self.rows if (r.model, r.task, r.metric) == (model, task, metric)]

    def of_model(self, model: str) -> list[Result]:
        return [r for r in self.rows if r.model == model]

    def sources(self) -> list[str]:
        return list(dict.fromkeys(r.source for r in self.rows))


def flatten(parsed: ResultsFile) -> Results:
    """Every row of ``parsed`` with its block's provenance."""
    rows = tuple(
        Result(
            row.model,
            row.task,
            row.metric,
            row.value,
            row.length,
            block.source,
            block.table,
            block.setting,
            row.note,
        )
        for block in parsed.blocks
        for row in block.rows
    )
    return Results(parsed.benchmark, parsed.average, rows)


def check_results(
    data: Any, path: Path, ids: Iterable[str], citekeys: Mapping[str, str]
) -> list[Problem]:
    """Problems of a parsed results file that need the catalog or the metric's range.

    Args:
        data: The file as read (ruamel's round-trip tree, for line numbers).
        path: Where it was read from.
        ids: The catalog's entry ids.
        citekeys: citekey -> entry id of every entry.

    Examples:
        >>> from tools.catalog.yamlio import read_yaml_text
        >>> text = ("benchmark: b\\nblocks:\\n  - source: b\\n    rows:\\n"
        ...         "      - {model: nobody, metric: accuracy, value: 140}\\n")
        >>> data = read_yaml_text(text, Path("r.yaml"), [])
        >>> for problem in check_results(data, Path("r.yaml"), ["b"], {}):
        ...     print(problem.line, problem.field, problem.message[:40])
        5 blocks.0.rows.0.model unknown model 'nobody': not a catalog id
        5 blocks.0.rows.0.value 140 is outside the range of accuracy (0
    """
    known = set(ids)
    problems: list[Problem] = []

    def report(loc: list[Any], message: str) -> None:
        problems.append(Problem(path, line_of(data, loc), ".".join(map(str, loc)), message))

    if not isinstance(data, Mapping):
        return problems
    benchmark = data.get("benchmark")
    if isinstance(benchmark, str) and benchmark not in known:
        report(["benchmark"], f"benchmark {benchmark!r} is not a catalog id")
    blocks = data.get("blocks")
    for b, block in enumerate(blocks if isinstance(blocks, list) else []):
        if not isinstance(block, Mapping):
            continue
        source = block.get("source")
        if isinstance(source, str) and source not in known and source not in citekeys:
            report(
                ["blocks", b, "source"], f"source {source!r} is neither a catalog id nor a citekey"
            )
        rows = block.get("rows")
        for r, row in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(row, Mapping):
                for loc, message in _row_problems(row, known):
                    report(["blocks", b, "rows", r, loc], message)
    return problems


def _row_problems(row: Mapping[str, Any], known: set[str]) -> list[tuple[str, str]]:
    found = []
    model = row.get("model")
    if isinstance(model, str) and model not in known and model not in BASELINES:
        baselines = ", ".join(BASELINES)
        found.append(
            ("model", f"unknown model {model!r}: not a catalog id nor a baseline ({baselines})")
        )
    metric, value = METRICS.get(str(row.get("metric"))), row.get("value")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if metric and number and not metric.allows(float(value or 0)):
        found.append(
            (
                "value",
                f"{value:g} is outside the range of {row.get('metric')} "
                f"({metric.range_text} {metric.unit})",
            )
        )
    return found


def printed_average(rows: Iterable[Result]) -> float | None:
    """The mean of the :data:`AVERAGED` tasks' accuracies of one model in one table, or
    None when one of them is not a number.

    Examples:
        >>> def row(task, value):
        ...     return Result("m", task, "accuracy", value, None, "s", "T", "x", None)
        >>> printed_average([row(t, v) for t, v in zip(AVERAGED, (10, 20, 30, 40, 50))])
        30.0
    """
    by_task = {r.task: r.number for r in rows if r.metric == "accuracy"}
    values = [by_task.get(task) for task in AVERAGED]
    if any(value is None for value in values):
        return None
    return sum(v for v in values if v is not None) / len(values)
