"""The evaluations file format: a round trip, and a bad file of each kind refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tools.catalog import load_catalog
from tools.catalog.check import check
from tools.catalog.cli import main as catalog_main
from tools.catalog.evaluations import (
    EvaluationError,
    Evaluations,
    dumps,
    load_evaluations,
    parse_evaluations,
)
from tools.catalog.paths import CATALOG_DIR

RUN = {
    "mechanism": "dense",
    "task": "listops",
    "length": 512,
    "seed": 0,
    "accuracy": 0.25,
    "tokens_per_second": 1000.0,
    "peak_bytes": 1024,
    "wall_seconds": 2.5,
    "steps": 10,
    "final_loss": 2.0,
}


def good() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "command": "python -m tools.evaluate",
        "machine": {"cpu": "x", "threads": 1, "platform": "Linux"},
        "torch": "2.13.0",
        "date": "2026-12-05",
        "setting": "small models on synthetic tasks",
        "tasks": {
            "listops": {
                "name": "ListOps",
                "description": "d",
                "causal": False,
                "chance": 0.1,
                "metric": "accuracy",
            }
        },
        "runs": [{**RUN, "seed": 1, "accuracy": 0.35}, dict(RUN)],
        "skipped": [{"mechanism": "perceiver", "task": "listops", "length": 64, "reason": "why"}],
    }


def test_a_good_file_round_trips_byte_stable_and_summarises() -> None:
    file = parse_evaluations(json.dumps(good()), Path("e.json"))
    text = dumps(file)
    assert dumps(parse_evaluations(text, Path("e.json"))) == text and text.endswith("}\n")
    assert [run["seed"] for run in json.loads(text)["runs"]] == [0, 1]  # sorted
    (point,) = file.points()
    assert (point.task, point.length, point.mechanism, point.seeds) == (
        "listops",
        512,
        "dense",
        [0, 1],
    )
    assert point.accuracy_mean == pytest.approx(0.3)
    assert point.accuracy_spread == pytest.approx(0.05)


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown mechanism": (_set(["runs", 1, "mechanism"], "performr"), "runs.1.mechanism: unknown"),
    "task not described": (_set(["runs", 0, "task"], "pathfinder"), "runs.0.task: task 'path"),
    "duplicate run": (_set(["runs", 0, "seed"], 0), "runs.1: duplicate run"),
    "accuracy out of range": (_set(["runs", 0, "accuracy"], 1.5), "runs.0.accuracy: Input"),
    "zero tokens per second": (
        _set(["runs", 0, "tokens_per_second"], 0),
        "runs.0.tokens_per_second: Input",
    ),
    "unknown field": (_set(["runs", 0, "loss"], 1.0), "runs.0.loss: Extra inputs"),
    "chance out of range": (_set(["tasks", "listops", "chance"], 2), "tasks.listops.chance: Input"),
    "metric": (_set(["tasks", "listops", "metric"], "f1"), "tasks.listops.metric: Input"),
    "not a date": (_set(["date"], "yesterday"), "date: Value error"),
    "missing machine": (lambda data: data.pop("machine"), "machine: Field required"),
    "skipped and run": (
        _set(
            ["skipped", 0], {"mechanism": "dense", "task": "listops", "length": 512, "reason": "x"}
        ),
        "skipped.0: this mechanism, task and length also has runs",
    ),
    "skip of an unknown task": (
        _set(["skipped", 0, "task"], "text"),
        "skipped.0.task: task 'text'",
    ),
    "no version": (lambda data: data.pop("schema_version"), "schema_version: missing"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_file_is_refused_with_path_field_message(kind: str) -> None:
    change, expected = BAD[kind]
    data = good()
    change(data)
    with pytest.raises(EvaluationError) as error:
        parse_evaluations(json.dumps(data), Path("bad.json"))
    assert f"bad.json: {expected}" in str(error.value)


def test_malformed_json_is_refused_at_its_line() -> None:
    with pytest.raises(EvaluationError, match=r"bad.json: \(json\): Expecting"):
        parse_evaluations('{\n  "runs": [,]\n}', Path("bad.json"))


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, root, ignore=shutil.ignore_patterns("measurements", "schema"))
    return root


def test_the_catalog_check_validates_evaluation_files(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = catalog_copy / "evaluations"
    folder.mkdir(exist_ok=True)
    (folder / "cpu.json").write_text(json.dumps(good()), encoding="utf-8")
    assert check(load_catalog(catalog_copy)).ok
    assert isinstance(load_evaluations(catalog_copy)["evaluations/cpu.json"], Evaluations)
    data = good()
    data["runs"][0]["mechanism"] = "performr"
    (folder / "cpu.json").write_text(json.dumps(data), encoding="utf-8")
    result = check(load_catalog(catalog_copy))
    assert [(p.field, p.message) for p in result.problems] == [
        ("runs.0.mechanism", "unknown mechanism 'performr'")
    ]
    assert catalog_main(["--root", str(catalog_copy), "check"]) == 1
    assert "cpu.json:1: runs.0.mechanism: unknown mechanism 'performr'" in capsys.readouterr().err
