"""Published results (``catalog/results/``): the schema, the check, and the shipped data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.catalog import ROOT, load_catalog
from tools.catalog.results import AVERAGED, BASELINES, printed_average

RESULTS = ROOT / "catalog" / "results" / "long-range-arena.yaml"
CATALOG = load_catalog()
LRA = CATALOG.results["long-range-arena"]


def _catalog_with(tmp_path: Path, old: str, new: str) -> list[str]:
    """Problems of a copy of the catalog whose results file has ``old`` replaced."""
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    path = tmp_path / "catalog" / "results" / "long-range-arena.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return [str(p) for p in load_catalog(tmp_path / "catalog").problems]


def test_shipped_results_load_without_problems() -> None:
    assert CATALOG.problems == []
    assert len(LRA.rows) == 77 + 36 + 36 + 32 + 30
    assert CATALOG.entries["long-range-arena"].kind == "benchmark"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "{model: transformer, task: ListOps",
            "{model: transformr, task: ListOps",
            "results/long-range-arena.yaml:10: blocks.0.rows.0.model: unknown model 'transformr'",
        ),
        (
            "value: 36.37}",
            "value: 136.37}",
            "results/long-range-arena.yaml:10: blocks.0.rows.0.value: 136.37 is outside the range"
            " of accuracy (0 to 100 %)",
        ),
        (
            "value: 0.85, length: 1024}",
            "value: -0.85, length: 1024}",
            "blocks.1.rows.1.value: -0.85 is outside the range of peak-memory-gb",
        ),
        (
            "  - source: long-range-arena\n    table: Table 1\n",
            "  - table: Table 1\n",
            "results/long-range-arena.yaml:6: blocks.0.source: required field is missing",
        ),
        (
            "  - source: nystromformer\n",
            "  - source: nobody2021\n",
            "blocks.2.source: source 'nobody2021' is neither a catalog id nor a citekey",
        ),
        (
            'value: "FAIL"}',
            'value: "DNF"}',
            "results/long-range-arena.yaml:15: blocks.0.rows.5.value",
        ),
        (
            "task: ListOps, metric: accuracy, value: 36.37}",
            "task: ListOps, metric: bleu, value: 36.37}",
            "results/long-range-arena.yaml:10: blocks.0.rows.0.metric:",
        ),
    ],
)
def test_a_bad_results_file_is_reported_at_its_line(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    problems = _catalog_with(tmp_path, old, new)
    assert any(expected in problem for problem in problems), problems


def test_a_bad_results_file_is_not_loaded(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "catalog", tmp_path / "catalog")
    path = tmp_path / "catalog" / "results" / "long-range-arena.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("value: 36.37}", "value: 137}", 1))
    catalog = load_catalog(tmp_path / "catalog")
    assert "long-range-arena" not in catalog.results
    assert len(catalog.problems) == 1


def test_every_model_is_a_catalog_entry_or_a_declared_baseline() -> None:
    models = {row.model for row in LRA.rows}
    assert models - set(CATALOG.entries) == set(BASELINES)


def test_fail_and_not_run_are_kept_apart_from_numbers() -> None:
    path_x = [row for row in LRA.rows if row.task == "Path-X"]
    assert len(path_x) == 11
    assert {row.value for row in path_x} == {"FAIL"}
    assert all(row.number is None for row in path_x)


def test_every_printed_average_matches_its_row_or_carries_a_note() -> None:
    checked, mismatched = 0, []
    for row in LRA.rows:
        if row.task != "Average":
            continue
        same = [
            r
            for r in LRA.rows
            if (r.model, r.source, r.table) == (row.model, row.source, row.table)
        ]
        mean = printed_average(same)
        assert mean is not None, row
        checked += 1
        if abs(round(mean, 2) - row.number) > 0.005 + 1e-9:  # type: ignore[operator]
            mismatched.append(row.model)
            assert row.note is not None and "average" in row.note, row
    assert checked == 16
    assert mismatched == ["sinkhorn-transformer"]


def test_lra_tables_are_complete() -> None:
    table1 = [r for r in LRA.rows if r.table == "Table 1" and r.source == "long-range-arena"]
    assert len(table1) == 11 * 7
    table2 = [r for r in LRA.rows if r.table == "Table 2"]
    assert len([r for r in table2 if r.metric == "steps-per-second"]) == 9 * 4
    assert len([r for r in table2 if r.metric == "peak-memory-gb"]) == 9 * 4
    assert len([r for r in table2 if r.metric == "relative-speed"]) == 8 * 4
    assert LRA.find("transformer", "Text", "peak-memory-gb")[-1].value == 9.48
    assert "Path-X" not in AVERAGED and "Path-X" in LRA.average


def test_printed_relative_speeds_match_steps_or_carry_a_note() -> None:
    def steps(model: str, length: int | None) -> float:
        found = [r for r in LRA.find(model, "Text", "steps-per-second") if r.length == length]
        assert len(found) == 1
        return found[0].number or 0.0

    for row in LRA.rows:
        if row.metric != "relative-speed":
            continue
        ratio = steps(row.model, row.length) / steps("transformer", row.length)
        if round(ratio, 1) != row.value:
            assert row.note is not None, row
