"""Bad lengths never reach a measurement file, and a bad stored point does not stop a
resumed run (issue 15, point 15)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tools.catalog.measurements import Result, drop_bad_points, load_measurement_files
from tools.measure.cli import main, parser
from tools.measure.table import print_table

NAME = "measurements/cpu-float32.json"
SMALL = ["--mechanisms", "performer", "--dim", "16", "--heads", "2", "--repeats", "1"]
SMALL += ["--threads", "1"]


@pytest.mark.parametrize(
    "lengths", ["0", "-64", "64,0", "1.5", "1e3", "abc", "", "64,,128", str(2**20 + 1), "0x40"]
)
def test_bad_lengths_are_refused_before_anything_runs(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str], lengths: str
) -> None:
    before = (catalog_copy / NAME).read_bytes()
    with pytest.raises(SystemExit) as stopped:
        main([*SMALL, "--lengths", lengths, "--catalog", str(catalog_copy)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --lengths:" in err
    assert "Traceback" not in err
    assert (catalog_copy / NAME).read_bytes() == before


def test_lengths_are_deduplicated_and_sorted() -> None:
    args = parser().parse_args(["--lengths", " 256,64 ,256,128"])
    assert args.lengths == [64, 128, 256]
    assert parser().parse_args(["--lengths", str(2**20)]).lengths == [2**20]


def test_a_resumed_run_skips_a_bad_stored_point(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*SMALL, "--lengths", "64", "--catalog", str(catalog_copy)]
    assert main(args) == 0
    path = catalog_copy / NAME
    first = load_measurement_files(catalog_copy)[NAME]
    data = json.loads(path.read_text(encoding="utf-8"))
    # What a --lengths 0 run used to leave behind, and a point with a broken figure.
    data["results"]["performer"]["points"].insert(0, {"n": 0, "skipped": "RuntimeError: x"})
    data["results"]["dense"]["points"][0]["forward_s"] = -1.0
    path.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()

    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipping bad stored point results.performer.points n=0" in err
    assert "skipping bad stored point results.dense.points n=64" in err
    again = load_measurement_files(catalog_copy)[NAME]
    assert [p.n for p in again.results["performer"].points] == [64]
    assert again.results["performer"].points == first.results["performer"].points
    # The broken point was measured again.
    dense = again.results["dense"].points
    assert [p.n for p in dense] == [64]
    assert dense[0].forward_s is not None and dense[0].forward_s > 0


def test_drop_bad_points_keeps_what_validates_and_a_malformed_n() -> None:
    data: dict[str, Any] = {
        "results": {
            "a": {"points": [{"n": 0, "skipped": "x"}, {"n": 8, "skipped": "y"}]},
            "b": {"points": [{"n": "long", "skipped": "z"}, {"n": True, "skipped": "z"}]},
            "c": "not a result",
        }
    }
    dropped = drop_bad_points(data)
    assert dropped == ["results.a.points n=0: n: Input should be greater than 0"]
    assert data["results"]["a"]["points"] == [{"n": 8, "skipped": "y"}]
    assert len(data["results"]["b"]["points"]) == 2
    assert drop_bad_points([1, 2]) == [] and drop_bad_points({"results": []}) == []


def test_the_closing_table_shows_control_characters_escaped() -> None:
    stream = io.StringIO()
    hostile = "dense\x1b[2J"
    print_table({hostile: Result(id=hostile, causal=False, kind="attention")}, stream)
    assert "dense\\x1b[2J" in stream.getvalue()
    assert "\x1b" not in stream.getvalue()
