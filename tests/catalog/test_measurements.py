"""Measurement files are typed data: the shipped one reads back as written, and a
malformed or outdated one is refused with ``path: field: message``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.catalog import CATALOG_DIR, MeasurementError, Store
from tools.catalog.measurements import SCHEMA_VERSION, load_measurement_files, parse_measurements

SHIPPED = CATALOG_DIR / "measurements" / "cpu-float32.json"


def test_the_shipped_file_round_trips_byte_for_byte() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert parse_measurements(text, SHIPPED).to_json() == text


def test_the_shipped_file_is_current_and_typed() -> None:
    cpu = load_measurement_files()["measurements/cpu-float32.json"]
    assert cpu.schema_version == SCHEMA_VERSION
    dense = cpu.results["dense"]
    assert [point.n for point in dense.measured_points][:3] == [256, 512, 1024]
    assert all(point.forward_s and point.forward_s > 0 for point in dense.measured_points)


def test_a_file_without_a_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    del data["schema_version"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(MeasurementError, match=r"old\.json: schema_version: missing;.*measure"):
        parse_measurements(path.read_text(encoding="utf-8"), path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["results"]["dense"]["points"][0].pop("forward_s"), "results.dense.points.0"),
        (lambda d: d["results"]["dense"]["points"][0].update(n=-4), "results.dense.points.0.n"),
        (lambda d: d["setup"].update(dim="wide"), "setup.dim"),
        (lambda d: d.update(schema_version=99), "schema_version"),
    ],
)
def test_a_malformed_file_names_the_field(tmp_path: Path, change: object, field: str) -> None:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(MeasurementError) as raised:
        parse_measurements(path.read_text(encoding="utf-8"), path)
    assert f"bad.json: {field}: " in str(raised.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "schema_version": 1,\n  oops\n}\n', encoding="utf-8")
    with pytest.raises(MeasurementError, match=r"broken\.json:3: \(json\): "):
        parse_measurements(path.read_text(encoding="utf-8"), path)


def test_the_store_stages_and_reads_back_a_measurement_file(catalog_copy: Path) -> None:
    store = Store(catalog_copy)
    measured = store.read_measurements("measurements/cpu-float32.json")
    assert measured is not None
    measured.command = "python -m tools.measure --quick"
    store.write_measurements("measurements/cpu-float32.json", measured)
    assert store.read_measurements("measurements/cpu-float32.json") == measured
    store.commit()
    again = load_measurement_files(catalog_copy)["measurements/cpu-float32.json"]
    assert again.command == "python -m tools.measure --quick"
