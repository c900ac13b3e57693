"""Building the site for the tests from a copy of the shipped catalog.

The copy adds what the shipped catalog may not have yet, so that every part of the site
is exercised: each entry whose module registers it names its ``implementation``, a
small synthetic measurement file stands in for ``tools.measure``'s output, and one
extra entry carries markup in every text field to prove it is escaped.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from tools.catalog import ROOT, load_catalog
from tools.catalog.complexity import parse
from tools.catalog.measurements import Result, load_measurement_files
from tools.catalog.mechanisms import declared_mechanisms
from tools.catalog.model import SCHEMA_COMMENT
from tools.catalog.yamledit import edit_fields
from tools.site.generate import GENERATED

LENGTHS = (256, 512, 1024, 2048, 4096)
HOSTILE_ID = "hostile-markup"
HOSTILE_TITLE = "<script>window.atlasPwned = 1</script> & $x$ *not bold* [not](a-link)"
HOSTILE_ENTRY = f"""{SCHEMA_COMMENT}
id: {HOSTILE_ID}
name: "Hostile <b>Model</b> | pipe </title><script>window.atlasPwned = 4</script>"
kind: model
title: {json.dumps(HOSTILE_TITLE)}
authors:
  - "<img src=x onerror=window.atlasPwned=2> Mallory"
  - Łukasz Kaiser
year: 2021
venue: "ICLR 2021 <i>"
url: https://example.org/paper
citekey: mallory2021hostile
taxonomy:
  - LR
complexity:
  time: O(n k)
  memory: O(n k)
  symbols:
    k: "projected <length>"
decode: false
summary: "Summary with <script>window.atlasPwned = 3</script>, **stars** and `ticks` ```."
notes: |-
  --8<-- "index.md"
  # not a heading
"""


@dataclass(frozen=True)
class BuiltSite:
    """The temporary project the site was built in, and what the build printed."""

    project: Path
    catalog: Path
    output: str

    @property
    def docs(self) -> Path:
        return self.project / "docs"

    @property
    def site(self) -> Path:
        return self.project / "site"


def _point(n: int, time_growth: float, memory_growth: float, scale: float, options: dict) -> dict:
    forward = scale * 1e-7 * n**time_growth
    return {
        "n": n,
        "flops": int(scale * 1e3 * n**time_growth),
        "peak_bytes": int(scale * 4e3 * n**memory_growth),
        "forward_s": forward,
        "forward_backward_s": 3 * forward,
        "tokens_per_s": n / forward,
        "flop_rate_fraction": 0.5,
        "options": options,
    }


def _options(result: Result | None, n: int) -> dict:
    point = result.point(n) if result else None
    return dict(point.options) if point else {}


def fixture_measurement(ids: list[str], catalog_root: Path) -> dict:
    """A measurement file in ``tools.measure``'s format, with growths as claimed."""
    catalog = load_catalog(catalog_root)
    # The options each mechanism was measured with, as the shipped measurement records
    # them: the pages' usage snippets take theirs from here.
    shipped = load_measurement_files().get("measurements/cpu-float32.json")
    results: dict[str, dict] = {}
    for key in ["dense", "dense:causal", *ids, *(f"{i}:causal" for i in ids[:1])]:
        id, causal = key.split(":")[0], key.endswith(":causal")
        entry = catalog.entries.get(id)
        time_growth = parse(entry.complexity.time).exponent if entry and entry.complexity else 2.0
        memory_growth = (
            parse(entry.complexity.memory).exponent if entry and entry.complexity else 1.0
        )
        scale = 1.0 if id == "dense" else 20.0
        measured = shipped.results.get(key) if shipped else None
        points = [
            _point(n, time_growth, memory_growth, scale, _options(measured, n)) for n in LENGTHS
        ]
        points.append({"n": 8192, "skipped": "predicted 99.0 s a pass"})
        results[key] = {
            "id": id,
            "causal": causal,
            "kind": "attention",
            "points": points,
            "exponents": dict.fromkeys(("flops", "forward_s", "forward_backward_s"), time_growth)
            | {"peak_bytes": memory_growth},
            "crossover_n": {"forward_s": 1024.0, "forward_backward_s": None},
            "relative_to_dense": None
            if id == "dense"
            else {"forward_s": 0.25, "forward_backward_s": 0.3, "peak_bytes": 0.5, "flops": 0.2},
            "claimed": {"time": entry.complexity.time, "memory": entry.complexity.memory}
            if entry and entry.complexity
            else {"time": "O(n^2)", "memory": "O(n)"},
        }
    return {
        "schema_version": 1,
        "memory_method": "fixture",
        "setup": {
            "batch": 1,
            "device": "cpu",
            "dim": 512,
            "dtype": "float32",
            "heads": 8,
            "threads": 1,
        },
        "machine": {"processor": "Fixture CPU <b>", "system": "Linux", "python": "3.11"},
        "torch": "2.13.0",
        "date": "2026-01-01T00:00:00+00:00",
        "command": "python -m tools.measure --quick",
        "matmul_flop_rate": 1e11,
        "results": results,
    }


def make_catalog(target: Path) -> list[str]:
    """Copy the shipped catalog to ``target`` with implementations, a measurement and the
    hostile entry; returns the ids given an implementation."""
    shutil.copytree(ROOT / "catalog", target, ignore=shutil.ignore_patterns("measurements"))
    implemented = []
    for path in sorted((target / "papers").glob("*.yaml")):
        id = path.stem
        declared = declared_mechanisms().get(id)
        module = f"implementations.{id.replace('-', '_')}"
        if declared is None or declared.module != module:
            continue
        text = path.read_text(encoding="utf-8")
        if "\nimplementation:" not in text:
            path.write_text(edit_fields(text, {"implementation": module}), encoding="utf-8")
        implemented.append(id)
    (target / "papers" / f"{HOSTILE_ID}.yaml").write_text(HOSTILE_ENTRY, encoding="utf-8")
    # A module that another engineer is rewriting may not import right now: leave its
    # entry unimplemented here (its own tests report it) rather than fail the whole site.
    for problem in load_catalog(target).problems:
        id = problem.path.stem
        if problem.field == "implementation" and id in implemented:
            warnings.warn(f"site fixture: {problem}", stacklevel=1)
            text = problem.path.read_text(encoding="utf-8")
            problem.path.write_text(edit_fields(text, {"implementation": None}), encoding="utf-8")
            implemented.remove(id)
    (target / "measurements").mkdir()
    (target / "measurements" / "cpu-float32.json").write_text(
        json.dumps(fixture_measurement(implemented, target), indent=2), encoding="utf-8"
    )
    return implemented


def make_project(target: Path) -> None:
    """mkdocs.yml, the hand-written docs and a link to the implementations' sources."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "mkdocs.yml", target / "mkdocs.yml")
    shutil.copytree(
        ROOT / "docs",
        target / "docs",
        ignore=lambda folder, names: [
            name for name in names if Path(folder) == ROOT / "docs" and name in GENERATED
        ],
    )
    (target / "implementations").symlink_to(ROOT / "implementations")
