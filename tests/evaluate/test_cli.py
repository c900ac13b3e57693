"""The command: a smoke run of two mechanisms, resume, dry run, skips, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.catalog.evaluations import dumps, parse_evaluations, read_evaluations
from tools.evaluate.cli import main

SMOKE = ["--mechanisms", "dense,linear-transformer", "--lengths", "48", "--steps", "3"]


def progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[")]


def test_smoke_run_writes_a_valid_file_and_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cpu.json"
    assert main([*SMOKE, "--jobs", "2", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    file = parse_evaluations(output.read_text(encoding="utf-8"), output)
    assert len(file.runs) == 2 * 3 * 2 and file.skipped == []
    assert {run.mechanism for run in file.runs} == {"dense", "linear-transformer"}
    assert all(run.steps == 3 and run.length == 48 for run in file.runs)
    assert set(file.tasks) == {"associative-recall", "listops", "long-distance"}
    assert file.command == "python -m tools.evaluate " + " ".join(
        [*SMOKE, "--jobs", "2", "--output", str(output)]
    )
    assert len(progress_lines(out)) == 12 and "ETA" in progress_lines(out)[0]
    header = next(line for line in out.splitlines() if line.startswith("mechanism"))
    assert header.split() == [
        "mechanism",
        "associative-recall",
        "48",
        "listops",
        "48",
        "long-distance",
        "48",
    ]
    assert output.read_text(encoding="utf-8") == dumps(file)  # byte-stable
    assert f"wrote {output}" in out


def test_resume_runs_only_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cpu.json"
    args = [*SMOKE, "--tasks", "long-distance", "--seeds", "0,1", "--output", str(output)]
    assert main(args) == 0
    first = read_evaluations(output)
    assert first is not None and len(first.runs) == 4
    capsys.readouterr()
    assert main(args) == 0
    assert progress_lines(capsys.readouterr().out) == []
    data = json.loads(output.read_text(encoding="utf-8"))
    data["runs"] = data["runs"][1:]  # as if interrupted before the last run
    output.write_text(json.dumps(data), encoding="utf-8")
    assert main(args) == 0
    assert len(progress_lines(capsys.readouterr().out)) == 1
    again = read_evaluations(output)
    assert again is not None
    assert [(r.key, r.accuracy, r.final_loss) for r in again.runs] == [
        (r.key, r.accuracy, r.final_loss) for r in first.runs
    ]
    assert again.command == first.command  # the same command is recorded once
    # Another seed into the same file: the file keeps both commands, in order.
    assert main([*args[:-4], "--seeds", "2", "--output", str(output)]) == 0
    more = read_evaluations(output)
    assert more is not None and len(more.runs) == 6
    assert more.command.startswith(first.command + "  # then: ")
    assert more.command.endswith("--seeds 2 --output " + str(output))


def test_rerun_replaces_only_the_planned_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cpu.json"
    args = [*SMOKE, "--tasks", "long-distance", "--output", str(output)]
    assert main(args) == 0
    data = json.loads(output.read_text(encoding="utf-8"))
    for run in data["runs"]:
        run["wall_seconds"] = 1234.5  # a marker: which records a rerun replaced
    output.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    rerun = [*args, "--mechanisms", "linear-transformer", "--rerun"]
    assert main(rerun) == 0
    assert len(progress_lines(capsys.readouterr().out)) == 2  # its two seeds
    again = read_evaluations(output)
    assert again is not None and len(again.runs) == 4
    replaced = {run.key: run.wall_seconds != 1234.5 for run in again.runs}
    assert replaced == {
        (mechanism, "long-distance", 48, seed): mechanism == "linear-transformer"
        for mechanism in ("dense", "linear-transformer")
        for seed in (0, 1)
    }
    assert again.command.endswith("--mechanisms linear-transformer --rerun")


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "cpu.json"
    args = ["--mechanisms", "dense", "--tasks", "listops", "--lengths", "16", "--steps", "2"]
    assert main([*args, "--seeds", "0", "--dry-run", "--output", str(output)]) == 0
    assert not output.exists()
    assert f"would write {output}" in capsys.readouterr().out


def test_a_downsample_mechanism_is_skipped_where_queries_have_no_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cpu.json"
    args = ["--mechanisms", "perceiver", "--tasks", "associative-recall", "--lengths", "64"]
    assert main([*args, "--output", str(output)]) == 0
    file = read_evaluations(output)
    assert file is not None and file.runs == []
    assert [(s.mechanism, s.task, s.length) for s in file.skipped] == [
        ("perceiver", "associative-recall", 64)
    ]
    assert "query positions" in file.skipped[0].reason
    assert "skip" in capsys.readouterr().out


def test_a_run_predicted_too_slow_is_skipped_with_the_reason(tmp_path: Path) -> None:
    output = tmp_path / "cpu.json"
    args = ["--mechanisms", "dense", "--tasks", "listops", "--lengths", "64", "--seeds", "0"]
    assert main([*args, "--steps", "10", "--max-seconds", "1e-9", "--output", str(output)]) == 0
    file = read_evaluations(output)
    assert file is not None and file.runs == []
    (skip,) = file.skipped
    assert (skip.mechanism, skip.length) == ("dense", 64)
    assert skip.reason.startswith("TooSlow: too slow here: 10 steps predicted to take")
    assert main([*args, "--steps", "10", "--output", str(output)]) == 0  # tried again
    again = read_evaluations(output)
    assert again is not None and again.skipped == [] and len(again.runs) == 1


def test_a_file_made_under_another_setting_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cpu.json"
    args = ["--mechanisms", "dense", "--tasks", "listops", "--lengths", "16", "--seeds", "0"]
    assert main([*args, "--steps", "2", "--output", str(output)]) == 0
    before = output.read_bytes()
    assert main([*args, "--steps", "3", "--output", str(output)]) == 1
    assert "setting: made under another setting" in capsys.readouterr().err
    assert output.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [
        ["--mechanisms", "performr"],
        ["--tasks", "pathfinder"],
        ["--lengths", "0"],
        ["--seeds", "-1"],
        ["--steps", "0"],
        ["--max-seconds", "0"],
    ],
)
def test_bad_arguments_exit_with_status_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
