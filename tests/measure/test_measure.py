"""The measurement command: figures written as typed data, resumed runs, dry runs, and
files it cannot resume refused with ``path: field: message``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.catalog import load_catalog
from tools.catalog.measurements import Point, Result, load_measurement_files
from tools.measure.cli import main
from tools.measure.run import Plan, skip_reason
from tools.measure.summary import REPORT_LENGTH, summarise
from tools.measure.workload import make_setup

ARGS = [
    "--mechanisms",
    "performer",
    "--lengths",
    "64,128,256",
    "--dim",
    "16",
    "--heads",
    "2",
    "--repeats",
    "1",
    "--threads",
    "1",
]
NAME = "measurements/cpu-float32.json"


def test_measures_resumes_and_summarises(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ARGS, "--catalog", str(catalog_copy)]) == 0
    path = catalog_copy / NAME
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    measured = load_measurement_files(catalog_copy)[NAME]
    assert measured.setup == make_setup(dim=16, heads=2, threads=1)
    assert measured.command.startswith("python -m tools.measure --mechanisms performer")
    assert set(measured.results) == {"dense", "dense:causal", "performer", "performer:causal"}
    performer = measured.results["performer"]
    assert [p.n for p in performer.points] == [64, 128, 256]
    for point in performer.points:
        assert point.figure("flops") > 0 and point.figure("peak_bytes") > 0
        assert point.figure("forward_s") > 0 and point.figure("forward_backward_s") > 0
        assert point.flop_rate_fraction is not None and point.flop_rate_fraction > 0
    assert performer.exponents is not None
    assert performer.exponents.flops == pytest.approx(1.0, abs=0.1)
    assert performer.claimed is not None and performer.claimed.time == "O(n m d)"
    assert "performer" in capsys.readouterr().out  # the closing table

    # A second run finds every point done: it measures nothing and keeps the first date.
    assert main([*ARGS, "--catalog", str(catalog_copy)]) == 0
    again = load_measurement_files(catalog_copy)[NAME]
    assert again.date == measured.date and again.last_resumed is not None
    assert again.results["performer"].points == performer.points
    assert again.command == measured.command  # the same command is not repeated

    # A run of another mechanism into the same file adds its command to the file's.
    assert main([*ARGS[2:], "--mechanisms", "linformer", "--catalog", str(catalog_copy)]) == 0
    more = load_measurement_files(catalog_copy)[NAME]
    first, then = more.command.split("  # then: ")
    assert first == measured.command and "--mechanisms linformer" in then
    assert more.results["performer"].points == performer.points and "linformer" in more.results


def test_remeasure_replaces_the_chosen_results_and_keeps_the_rest(catalog_copy: Path) -> None:
    assert main([*ARGS, "--lengths", "64", "--catalog", str(catalog_copy)]) == 0
    assert main([*ARGS[2:], "--lengths", "64", "--mechanisms", "linformer",
                 "--catalog", str(catalog_copy)]) == 0  # fmt: skip
    path = catalog_copy / NAME
    data = json.loads(path.read_text())
    for key in ("performer", "linformer", "dense"):  # figures no machine could measure
        data["results"][key]["points"][0]["forward_s"] = 1e6
    path.write_text(json.dumps(data))

    assert main([*ARGS, "--lengths", "64", "--remeasure", "--catalog", str(catalog_copy)]) == 0
    after = load_measurement_files(catalog_copy)[NAME]
    assert after.results["performer"].points[0].figure("forward_s") < 1e6  # measured afresh
    assert after.results["linformer"].points[0].figure("forward_s") == 1e6  # not chosen: kept
    assert after.results["dense"].points[0].figure("forward_s") == 1e6  # a reference: kept
    assert "--remeasure" in after.command.split("  # then: ")[-1]


def test_dry_run_writes_nothing(catalog_copy: Path) -> None:
    folder = catalog_copy / "measurements"
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert main([*ARGS, "--lengths", "64,128", "--catalog", str(catalog_copy), "--dry-run"]) == 0
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_unknown_mechanism_fails_before_measuring(catalog_copy: Path) -> None:
    with pytest.raises(KeyError, match="did you mean performer"):
        main(["--mechanisms", "performr", "--catalog", str(catalog_copy)])


def _break_the_shipped_file(catalog: Path, change: str) -> None:
    path = catalog / NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    if change == "old":
        del data["schema_version"]
    else:
        data["results"]["dense"]["points"][0]["n"] = "long"
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("old", f"{NAME}: schema_version: missing; "),
        ("malformed", f"{NAME}: results.dense.points.0.n: "),
    ],
)
def test_a_file_it_cannot_resume_stops_the_run(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str], change: str, message: str
) -> None:
    _break_the_shipped_file(catalog_copy, change)
    before = (catalog_copy / NAME).read_bytes()
    # The file is refused whatever its setup: a run never silently replaces figures.
    assert main([*ARGS, "--catalog", str(catalog_copy)]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert (catalog_copy / NAME).read_bytes() == before


def _point(n: int, seconds: float, peak: int = 1000, flops: int = 10**6) -> Point:
    return Point(
        n=n,
        flops=flops,
        peak_bytes=peak,
        forward_s=seconds,
        forward_backward_s=3 * seconds,
        tokens_per_s=n / seconds,
    )


def test_the_summary_compares_with_dense_at_the_report_length() -> None:
    lengths = (1024, 2048, REPORT_LENGTH)
    dense = Result(
        id="dense",
        causal=False,
        kind="attention",
        points=[_point(n, (n / 1024) ** 2, peak=n, flops=n * n) for n in lengths],
    )
    mine = Result(
        id="performer",
        causal=False,
        kind="attention",
        points=[
            *[_point(n, 2 * n / 1024, peak=4 * n, flops=64 * n) for n in lengths],
            Point(n=8192, skipped="predicted 99.0 s a pass"),
        ],
    )
    setup = make_setup(dim=16, heads=2)
    flop_rate = 1e9
    summary = summarise({"dense": dense, "performer": mine}, load_catalog(), flop_rate, setup)
    performer = summary["performer"]
    assert performer.exponents is not None
    assert (performer.exponents.flops, performer.exponents.forward_s) == (1.0, 1.0)
    assert performer.crossover_n is not None and performer.crossover_n.forward_s == 2048.0
    assert performer.relative_to_dense is not None
    assert performer.relative_to_dense.forward_s == 0.5  # 8 s against dense's 16 s
    assert performer.relative_to_dense.peak_bytes == 4.0
    # 4 n bytes against 2 heads × n² × 4 bytes of float32.
    assert performer.memory_vs_materialised_softmax == round(4 / (2 * REPORT_LENGTH * 4), 4)
    last = performer.point(REPORT_LENGTH)
    assert last is not None
    assert last.flop_rate_fraction == round(64 * REPORT_LENGTH / 8.0 / flop_rate, 4)
    assert performer.points[-1] == Point(n=8192, skipped="predicted 99.0 s a pass")
    assert performer.claimed is not None and performer.claimed.time == "O(n m d)"
    assert summary["dense"].crossover_n is not None
    assert summary["dense"].crossover_n.forward_s is None  # never faster than itself


def test_a_length_predicted_too_slow_is_skipped() -> None:
    catalog = load_catalog()
    plan = Plan(["performer"], [256], make_setup(), repeats=3, max_seconds=10.0, command="")
    measured = [_point(256, 0.25)]  # 0.75 s a forward+backward pass
    performer = Result(id="performer", causal=False, kind="attention", points=measured)
    # Claimed O(n m d): linear, so 1.5 s at 512 (6 s for 4 passes) and 3 s at 1024.
    assert skip_reason(performer, 512, catalog, plan) is None
    assert skip_reason(performer, 1024, catalog, plan) == "predicted 3.0 s a pass"
    # Nothing claimed: quadratic, so 3 s at 512 already.
    unclaimed = performer.model_copy(update={"id": "not-in-the-catalog"})
    assert skip_reason(unclaimed, 512, catalog, plan) == "predicted 3.0 s a pass"
    # Nothing measured yet: nothing to predict from.
    empty = performer.model_copy(update={"points": [Point(n=128, skipped="why")]})
    assert skip_reason(empty, 1024, catalog, plan) is None
