"""Measured figures as typed data: the format of ``catalog/measurements/<device>-<dtype>.json``.

``python -m tools.measure`` writes these files and the site reads them; both go through
the models below, so a figure is read by attribute (``point.forward_s``), never by a
string key, and a malformed or outdated file is refused with ``path: field: message``
instead of failing later on a page.

The format is versioned by ``schema_version``; a file without it predates versioning
and is refused with the command that rewrites it.

Examples:
    >>> files = load_measurement_files()
    >>> cpu = files["measurements/cpu-float32.json"]
    >>> cpu.setup.dim, cpu.results["dense"].kind
    (512, 'attention')
    >>> cpu.results["performer"].point(1024).forward_s > 0
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from tools.catalog.model import Line
from tools.catalog.paths import CATALOG_DIR, display

SCHEMA_VERSION: Final = 1
MEASUREMENTS_FOLDER = "measurements"
# The figures of a point, in the order tables show them.
FIGURES = ("flops", "peak_bytes", "forward_s", "forward_backward_s")
Figure = Literal["flops", "peak_bytes", "forward_s", "forward_backward_s"]
Timing = Literal["forward_s", "forward_backward_s"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Setup(_Record):
    """The fixed conditions of a run; points are comparable only under equal setups."""

    dim: int = Field(gt=0)
    heads: int = Field(gt=0)
    batch: int = Field(gt=0)
    device: str
    dtype: str
    threads: int = Field(gt=0)


class Machine(_Record):
    """Where a run was made."""

    processor: str
    system: str
    python: str


class Point(_Record):
    """Every figure of one mechanism at one length, or why the length was skipped."""

    n: int = Field(gt=0)
    skipped: str | None = Field(default=None, description="Why this length was not measured")
    flops: int | None = Field(default=None, ge=0, description="Forward FLOPs (counted)")
    peak_bytes: int | None = Field(default=None, ge=0, description="Peak live tensor bytes")
    forward_s: float | None = Field(default=None, gt=0, description="Median forward seconds")
    forward_backward_s: float | None = Field(default=None, gt=0)
    tokens_per_s: float | None = Field(default=None, gt=0)
    flop_rate_fraction: float | None = Field(
        default=None, ge=0, description="Achieved FLOP rate / this machine's matmul rate"
    )
    options: dict[str, int | float | str | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _measured_or_skipped(self) -> Point:
        missing = [figure for figure in FIGURES if getattr(self, figure) is None]
        if self.skipped is None and missing:
            raise ValueError(f"a measured point needs {', '.join(missing)} (or skipped: why)")
        return self

    @property
    def measured(self) -> bool:
        return self.skipped is None

    @model_serializer(mode="wrap")
    def _only_what_is_known(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A skipped point has no figures: write its length and reason, not eight nulls.
        data: dict[str, Any] = handler(self)
        if self.skipped is None:
            return {key: value for key, value in data.items() if key != "skipped"}
        return {"n": self.n, "skipped": self.skipped}

    def figure(self, name: Figure) -> float:
        """One figure of a measured point, as a number."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"n = {self.n} was skipped: {self.skipped}")
        return float(value)


class Exponents(_Record):
    """The fitted exponent of ``n`` of each figure (None: too few measured lengths)."""

    flops: float | None = None
    peak_bytes: float | None = None
    forward_s: float | None = None
    forward_backward_s: float | None = None


class Crossovers(_Record):
    """The length from which the mechanism is faster than dense (None: never, or unknown)."""

    forward_s: float | None = None
    forward_backward_s: float | None = None


class Relative(_Record):
    """Each figure at the report length divided by dense's."""

    flops: float | None = None
    peak_bytes: float | None = None
    forward_s: float | None = None
    forward_backward_s: float | None = None


class Claimed(_Record):
    """The catalog's claimed complexity when the run was summarised."""

    time: str
    memory: str


class PeerComparison(_Record):
    """Ours beside one public implementation at one length (``python -m tools.measure --peers``).

    Ratios are the median, over pairs stepped alternately in one process, of ours / the
    peer's wall time (< 1: ours faster). A peer that could not run has ``skipped`` instead.

    Examples:
        >>> PeerComparison(peer="linformer", n=1024, skipped="not installed").measured
        False
    """

    peer: str = Field(description="The public package (distribution name)")
    version: str | None = Field(default=None, description="The peer's installed version")
    n: int = Field(gt=0)
    skipped: str | None = Field(default=None, description="Why the peer did not run")
    forward_ratio: float | None = Field(default=None, gt=0, description="Ours / peer, forward")
    forward_backward_ratio: float | None = Field(default=None, gt=0)
    ours_peak_bytes: int | None = Field(default=None, ge=0)
    peer_peak_bytes: int | None = Field(default=None, ge=0)
    settings: str | None = Field(default=None, description="The peer's matched settings")
    notes: list[str] = Field(
        default_factory=list, description="Unmatched settings and known peer defects"
    )

    @property
    def measured(self) -> bool:
        return self.skipped is None


class Result(_Record):
    """Everything measured of one variant (``performer`` or ``performer:causal``)."""

    id: str
    causal: bool
    kind: str
    points: list[Point] = Field(default_factory=list)
    exponents: Exponents | None = None
    crossover_n: Crossovers | None = None
    relative_to_dense: Relative | None = None
    memory_vs_materialised_softmax: float | None = None
    claimed: Claimed | None = None
    reference: str | None = Field(
        default=None, description="The result the ratios compare with (None: dense)"
    )
    machine: Machine | None = Field(
        default=None, description="Where this result was measured, when not the file's machine"
    )
    peers: list[PeerComparison] = Field(
        default_factory=list, description="Public implementations measured beside this one"
    )

    @model_serializer(mode="wrap")
    def _peers_when_any(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A file measured without --peers is written exactly as before the field existed.
        data: dict[str, Any] = handler(self)
        if not self.peers:
            data.pop("peers", None)
        return data

    @property
    def measured_points(self) -> list[Point]:
        """The measured points, shortest first."""
        return sorted((p for p in self.points if p.measured), key=lambda p: p.n)

    def point(self, n: int) -> Point | None:
        """The point at length ``n``, measured or skipped, or None."""
        return next((p for p in self.points if p.n == n), None)


class MeasurementFile(_Record):
    """One run of ``python -m tools.measure`` (possibly resumed), on one device and dtype."""

    schema_version: Literal[1] = Field(description="The version of this format")
    command: Line
    date: str = Field(description="When the run started (ISO 8601, UTC)")
    last_resumed: str | None = None
    machine: Machine
    torch: str
    setup: Setup
    matmul_flop_rate: float = Field(gt=0, description="This machine's dense matmul FLOP/s")
    memory_method: str
    results: dict[str, Result] = Field(default_factory=dict)

    def to_json(self) -> str:
        """The file's text: sorted keys, indented, a final newline."""
        data = self.model_dump(mode="json")
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


class MeasurementError(ValueError):
    """A measurement file that cannot be used; the message is ``path: field: message``."""


def parse_measurements(text: str, path: Path) -> MeasurementFile:
    """The measurement file read from ``text``; ``MeasurementError`` names what is wrong.

    Examples:
        >>> parse_measurements('{"command": "x"}', Path("old.json"))
        Traceback (most recent call last):
        ...
        tools.catalog.measurements.MeasurementError: old.json: schema_version: missing; \
this file predates the versioned format: measure again with python -m tools.measure
    """
    where = display(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MeasurementError(f"{where}:{error.lineno}: (json): {error.msg}") from None
    if isinstance(data, dict) and "schema_version" not in data:
        raise MeasurementError(
            f"{where}: schema_version: missing; this file predates the versioned format: "
            "measure again with python -m tools.measure"
        )
    try:
        return MeasurementFile.model_validate(data)
    except ValidationError as error:
        lines = [
            f"{where}: {'.'.join(map(str, detail['loc'])) or '(file)'}: {detail['msg']}"
            for detail in error.errors()
        ]
        raise MeasurementError("\n".join(lines)) from None


def drop_bad_points(data: Any) -> list[str]:
    """Remove from a measurement file's JSON the points at a whole-number length that fail
    validation; one ``where n=N: field: message`` line for each.

    A resumed run uses it: a point an older run recorded wrongly (``n = 0``, a broken
    figure) is dropped, and measured again if it is planned, instead of refusing the whole
    file. A point whose ``n`` is not a whole number is left: the file is malformed, and
    :func:`parse_measurements` refuses it.

    Examples:
        >>> points = [{"n": 0, "skipped": "x"}, {"n": 8, "skipped": "y"}]
        >>> data = {"results": {"dense": {"points": points}}}
        >>> drop_bad_points(data)
        ['results.dense.points n=0: n: Input should be greater than 0']
        >>> data["results"]["dense"]["points"]
        [{'n': 8, 'skipped': 'y'}]
    """
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        return []
    dropped = []
    for key, result in results.items():
        points = result.get("points") if isinstance(result, dict) else None
        if not isinstance(points, list):
            continue
        kept = []
        for point in points:
            n = point.get("n") if isinstance(point, dict) else None
            if not isinstance(n, int) or isinstance(n, bool):
                kept.append(point)
                continue
            try:
                Point.model_validate(point)
            except ValidationError as error:
                detail = error.errors()[0]
                field = ".".join(map(str, detail["loc"])) or "(point)"
                dropped.append(f"results.{key}.points n={n}: {field}: {detail['msg']}")
                continue
            kept.append(point)
        result["points"] = kept
    return dropped


def load_measurement_files(root: Path | None = None) -> dict[str, MeasurementFile]:
    """Every measurement file under a catalog folder, by name relative to it."""
    catalog_root = (root or CATALOG_DIR).resolve()
    folder = catalog_root / MEASUREMENTS_FOLDER
    files: dict[str, MeasurementFile] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        relative = path.relative_to(catalog_root).as_posix()
        files[relative] = parse_measurements(path.read_text(encoding="utf-8"), path)
    return files
