"""Accuracies we measured ourselves: the format of ``catalog/evaluations/<device>.json``.

``python -m tools.evaluate`` trains every attention mechanism in the same small model on
the same generated tasks and writes one of these files; the site reads it. Both go
through the models below, and ``python -m tools.catalog check`` validates every file:
a malformed one is refused with ``path: field: message`` (every problem at once), as
is a run of an unknown mechanism, a run of a task the file does not describe, and the
same (mechanism, task, length, seed) twice.

Examples:
    >>> machine = Machine(cpu="x86_64", threads=1, platform="Linux")
    >>> task = Task(name="ListOps", description="d", causal=False, chance=0.1)
    >>> run = EvaluationRun(mechanism="dense", task="listops", length=512, seed=0,
    ...     accuracy=0.5, tokens_per_second=1e4, peak_bytes=10, wall_seconds=3.0,
    ...     steps=10, final_loss=1.2)
    >>> file = Evaluations(schema_version=1, command="c", machine=machine, torch="2.13.0",
    ...     date="2026-12-05", setting="s", tasks={"listops": task},
    ...     runs=[run, run.model_copy(update={"seed": 1, "accuracy": 0.7})])
    >>> point = file.points()[0]
    >>> point.accuracy_mean, round(point.accuracy_spread, 3), point.seeds
    (0.6, 0.1, [0, 1])
    >>> parse_evaluations(dumps(file), Path("e.json")) == file
    True
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.catalog.files import atomic_write
from tools.catalog.mechanisms import declared_mechanisms
from tools.catalog.paths import CATALOG_DIR, display
from tools.catalog.yamlio import Problem

SCHEMA_VERSION: Final = 1
EVALUATIONS_FOLDER = "evaluations"
TASK_IDS = ("associative-recall", "listops", "long-distance")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Machine(_Record):
    """Where the runs were made."""

    cpu: str
    threads: int = Field(gt=0, description="Torch threads of each worker")
    platform: str


class Task(_Record):
    """One generated task (``tools/evaluate/tasks.py`` defines them)."""

    name: str
    description: str
    causal: bool = Field(description="Causal mechanisms ran in their causal form on it")
    chance: float = Field(ge=0, le=1, description="Accuracy of guessing")
    metric: Literal["accuracy"] = "accuracy"


class EvaluationRun(_Record):
    """One mechanism trained on one task at one length from one seed."""

    mechanism: str
    task: str
    length: int = Field(gt=0)
    seed: int = Field(ge=0)
    accuracy: float = Field(ge=0, le=1, description="On the held-out set")
    tokens_per_second: float = Field(gt=0, description="Training tokens per second")
    peak_bytes: int = Field(gt=0, description="Peak live tensor bytes of a training step")
    wall_seconds: float = Field(gt=0, description="The whole run: training and scoring")
    steps: int = Field(gt=0)
    final_loss: float = Field(description="Mean training loss of the last tenth of steps")

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.mechanism, self.task, self.length, self.seed)


class Skipped(_Record):
    """A (mechanism, task, length) that was not run, and why."""

    mechanism: str
    task: str
    length: int = Field(gt=0)
    reason: str = Field(min_length=1)


@dataclass(frozen=True)
class Point:
    """The seeds of one (task, length, mechanism) summarised.

    Attributes:
        accuracy_spread: Half the range (max - min) of the seeds' accuracies.
        tokens_per_second: The mean over seeds.
        peak_bytes: The largest over seeds.
    """

    task: str
    length: int
    mechanism: str
    accuracy_mean: float
    accuracy_spread: float
    seeds: list[int]
    tokens_per_second: float
    peak_bytes: int


class Evaluations(_Record):
    """One run of ``python -m tools.evaluate`` (possibly resumed), on one device."""

    schema_version: Literal[1] = Field(description="The version of this format")
    command: str
    machine: Machine
    torch: str
    date: str = Field(description="When the run started (ISO date)")
    setting: str = Field(description="One paragraph: the model, the budget, the caveat")
    tasks: dict[str, Task]
    runs: list[EvaluationRun] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)

    @field_validator("date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        dt.date.fromisoformat(value[:10])
        return value

    def done(self) -> set[tuple[str, str, int, int]]:
        """The (mechanism, task, length, seed) already run."""
        return {run.key for run in self.runs}

    def points(self) -> list[Point]:
        """Every (task, length, mechanism) run, its seeds summarised, sorted."""
        groups: dict[tuple[str, int, str], list[EvaluationRun]] = defaultdict(list)
        for run in self.runs:
            groups[(run.task, run.length, run.mechanism)].append(run)
        points = []
        for (task, length, mechanism), runs in sorted(groups.items()):
            accuracies = [run.accuracy for run in runs]
            points.append(
                Point(
                    task=task,
                    length=length,
                    mechanism=mechanism,
                    accuracy_mean=sum(accuracies) / len(accuracies),
                    accuracy_spread=(max(accuracies) - min(accuracies)) / 2,
                    seeds=sorted(run.seed for run in runs),
                    tokens_per_second=sum(r.tokens_per_second for r in runs) / len(runs),
                    peak_bytes=max(run.peak_bytes for run in runs),
                )
            )
        return points


class EvaluationError(ValueError):
    """An evaluations file that cannot be used; one ``path: field: message`` a line."""


def dumps(evaluations: Evaluations) -> str:
    """The file's text: runs and skips sorted, keys sorted, indented, a final newline."""
    data = evaluations.model_dump(mode="json")
    data["runs"].sort(key=lambda r: (r["mechanism"], r["task"], r["length"], r["seed"]))
    data["skipped"].sort(key=lambda s: (s["mechanism"], s["task"], s["length"]))
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _semantic_problems(file: Evaluations) -> list[tuple[str, str]]:
    """(field, message) of what the types cannot say: ids, tasks, duplicates."""
    known = declared_mechanisms()
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str, int, int]] = set()
    records: list[tuple[str, EvaluationRun | Skipped]] = [
        *((f"runs.{i}", run) for i, run in enumerate(file.runs)),
        *((f"skipped.{i}", skip) for i, skip in enumerate(file.skipped)),
    ]
    for where, record in records:
        if record.mechanism not in known:
            found.append((f"{where}.mechanism", f"unknown mechanism {record.mechanism!r}"))
        if record.task not in file.tasks:
            found.append((f"{where}.task", f"task {record.task!r} is not in tasks"))
        if isinstance(record, EvaluationRun):
            if record.key in seen:
                found.append((where, f"duplicate run {record.key}"))
            seen.add(record.key)
    ran = {(run.mechanism, run.task, run.length) for run in file.runs}
    for index, skip in enumerate(file.skipped):
        if (skip.mechanism, skip.task, skip.length) in ran:
            found.append((f"skipped.{index}", "this mechanism, task and length also has runs"))
    return found


def evaluation_problems(text: str, path: Path) -> tuple[Evaluations | None, list[Problem]]:
    """The file read from ``text`` (None when it is not valid) and every problem of it."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        return None, [Problem(path, error.lineno, "(json)", error.msg)]
    if isinstance(data, dict) and "schema_version" not in data:
        message = "missing; write the file with python -m tools.evaluate"
        return None, [Problem(path, 1, "schema_version", message)]
    try:
        file = Evaluations.model_validate(data)
    except ValidationError as error:
        return None, [
            Problem(path, 1, ".".join(map(str, d["loc"])) or "(file)", d["msg"])
            for d in error.errors()
        ]
    found = _semantic_problems(file)
    return (None if found else file), [Problem(path, 1, f, m) for f, m in found]


def parse_evaluations(text: str, path: Path) -> Evaluations:
    """The evaluations file read from ``text``; ``EvaluationError`` lists what is wrong.

    Examples:
        >>> parse_evaluations('{"schema_version": 1}', Path("bad.json"))
        Traceback (most recent call last):
        ...
        tools.catalog.evaluations.EvaluationError: bad.json: command: Field required
        bad.json: machine: Field required
        bad.json: torch: Field required
        bad.json: date: Field required
        bad.json: setting: Field required
        bad.json: tasks: Field required
    """
    file, problems = evaluation_problems(text, path)
    if file is None:
        where = display(path)
        lines = [f"{where}: {p.field}: {p.message}" for p in problems]
        raise EvaluationError("\n".join(lines))
    return file


def read_evaluations(path: Path) -> Evaluations | None:
    """The evaluations file at ``path``, or None when there is none.

    Raises:
        EvaluationError: the file is malformed.
    """
    if not path.exists():
        return None
    return parse_evaluations(path.read_text(encoding="utf-8"), path)


def write_evaluations(path: Path, evaluations: Evaluations) -> None:
    """Write ``evaluations`` to ``path`` atomically (a reader sees the old file or the new)."""
    atomic_write(path, dumps(evaluations))


def evaluation_files(root: Path | None = None) -> list[Path]:
    """The evaluations files under a catalog folder."""
    folder = (root or CATALOG_DIR).resolve() / EVALUATIONS_FOLDER
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def check_evaluations(root: Path | None = None) -> list[Problem]:
    """Every problem of every evaluations file under a catalog folder (for the check)."""
    problems: list[Problem] = []
    for path in evaluation_files(root):
        problems += evaluation_problems(path.read_text(encoding="utf-8"), path)[1]
    return problems


def load_evaluations(root: Path | None = None) -> dict[str, Evaluations]:
    """Every evaluations file under a catalog folder, by name relative to it.

    Raises:
        EvaluationError: a file is malformed.
    """
    catalog_root = (root or CATALOG_DIR).resolve()
    return {
        path.relative_to(catalog_root).as_posix(): parse_evaluations(
            path.read_text(encoding="utf-8"), path
        )
        for path in evaluation_files(catalog_root)
    }
