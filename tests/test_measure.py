"""The measurement command: figures written as data, resumed runs, dry runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools.catalog import CATALOG_DIR
from tools.measure import main

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


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR / "papers", root / "papers")
    shutil.copy(CATALOG_DIR / "taxonomy.yaml", root / "taxonomy.yaml")
    return root


def test_measures_resumes_and_summarises(catalog: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*ARGS, "--catalog", str(catalog)]) == 0
    path = catalog / "measurements" / "cpu-float32.json"
    data = json.loads(path.read_text())
    assert data["setup"] == {
        "dim": 16,
        "heads": 2,
        "batch": 1,
        "device": "cpu",
        "dtype": "float32",
        "threads": 1,
    }
    assert data["command"].startswith("python -m tools.measure --mechanisms performer")
    assert set(data["results"]) == {"dense", "dense:causal", "performer", "performer:causal"}
    performer = data["results"]["performer"]
    assert [p["n"] for p in performer["points"]] == [64, 128, 256]
    for point in performer["points"]:
        assert point["flops"] > 0 and point["peak_bytes"] > 0
        assert point["forward_s"] > 0 and point["forward_backward_s"] > 0
        assert point["flop_rate_fraction"] > 0
    assert performer["exponents"]["flops"] == pytest.approx(1.0, abs=0.1)
    assert performer["claimed"]["time"] == "O(n m d)"
    assert "performer" in capsys.readouterr().out  # the closing table

    # A second run finds every point done: it measures nothing and keeps the first date.
    before = data
    assert main([*ARGS, "--catalog", str(catalog)]) == 0
    after = json.loads(path.read_text())
    assert after["date"] == before["date"] and after["last_resumed"] is not None
    assert after["results"]["performer"]["points"] == before["results"]["performer"]["points"]


def test_dry_run_writes_nothing(catalog: Path) -> None:
    assert main([*ARGS, "--lengths", "64,128", "--catalog", str(catalog), "--dry-run"]) == 0
    assert not (catalog / "measurements").exists()


def test_unknown_mechanism_fails_before_measuring(catalog: Path) -> None:
    with pytest.raises(KeyError, match="did you mean performer"):
        main(["--mechanisms", "performr", "--catalog", str(catalog)])
