"""The catalog's only writer: changes are staged, validated, then written all or nothing.

Every tool that changes catalog files (the Zotero sync, the measurements, the schema)
stages its changes in a :class:`Store` and commits them at once; ``dry_run`` reports
what would be written and writes nothing.

Examples:
    >>> store = Store(dry_run=True)
    >>> store.update_entry("performer", {"title": store.load().entries["performer"].title})
    []
    >>> store.pending
    []
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tools.catalog.journal import commit_files
from tools.catalog.loader import Catalog, load_catalog
from tools.catalog.lock import DEFAULT_WAIT, catalog_lock
from tools.catalog.measurements import MeasurementFile, parse_measurements
from tools.catalog.model import CITATION_FIELDS, Entry
from tools.catalog.paths import CATALOG_DIR, display
from tools.catalog.yamledit import FieldChange, edit_fields, render_entry
from tools.catalog.yamlio import Problem, plain, validate, yaml_reader


class Store:
    """Reads and writes one catalog folder; the tools change files only through it.

    Args:
        root: The catalog folder (``catalog/`` of the repository by default).
        dry_run: Plan changes and report them, but write nothing.
    """

    def __init__(self, root: Path | None = None, *, dry_run: bool = False) -> None:
        self.root = (root or CATALOG_DIR).resolve()
        self.dry_run = dry_run
        self._pending: dict[Path, str | None] = {}
        self._locked = False

    @contextlib.contextmanager
    def locked(self, wait: float = DEFAULT_WAIT) -> Iterator[str | None]:
        """Hold the catalog lock for a whole run (read, decide, write), so that no other
        tool writes in between; yields what recovering an interrupted write did.

        Raises:
            tools.catalog.lock.CatalogLockedError: another tool held it for ``wait`` s.
        """
        if self._locked:
            yield None
            return
        with catalog_lock(self.root, wait) as recovered:
            self._locked = True
            try:
                yield recovered
            finally:
                self._locked = False

    def load(self) -> Catalog:
        return load_catalog(self.root)

    def entry_path(self, id: str) -> Path:
        return self.root / "papers" / f"{id}.yaml"

    def _current_text(self, path: Path) -> str:
        pending = self._pending.get(path)
        # Bytes, not read_text: universal newlines would turn a CRLF file into LF on write.
        return pending if pending is not None else path.read_bytes().decode("utf-8")

    def update_entry(self, id: str, changes: Mapping[str, Any]) -> list[FieldChange]:
        """Stage changes of citation fields of entry ``id``; returns what actually changes."""
        forbidden = sorted(set(changes) - set(CITATION_FIELDS))
        if forbidden:
            raise ValueError(f"only citation fields may be written, not {forbidden}")
        path = self.entry_path(id)
        text = self._current_text(path)
        current = plain(yaml_reader().load(text))
        effective = {k: v for k, v in changes.items() if plain(current.get(k)) != plain(v)}
        if not effective:
            return []
        new_text = edit_fields(text, effective)
        data = yaml_reader().load(new_text)
        problems: list[Problem] = []
        validate(Entry, data, path, problems)
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        self._pending[path] = new_text
        return [FieldChange(id, key, current.get(key), value) for key, value in effective.items()]

    def create_entry(self, data: Mapping[str, Any]) -> Path:
        """Stage a new entry file (e.g. a draft from Zotero); refuses to overwrite one."""
        path = self.entry_path(str(data["id"]))
        if path.exists() or path in self._pending:
            raise FileExistsError(f"{display(path)} already exists")
        text = render_entry(data)
        problems: list[Problem] = []
        validate(Entry, yaml_reader().load(text), path, problems)
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        self._pending[path] = text
        return path

    def read_data(self, relative: str) -> Any:
        """A JSON data file under the catalog folder, or None when it does not exist."""
        path = self.root / relative
        if path in self._pending:
            pending = self._pending[path]
            return None if pending is None else json.loads(pending)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            where = f"{display(path)}:{error.lineno}"
            raise ValueError(f"{where}: malformed JSON: {error.msg}") from None

    def write_data(self, relative: str, data: Any) -> None:
        """Stage a JSON data file (measurements, sync watermarks) under the catalog folder."""
        path = self.root / relative
        self._pending[path] = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    def list_data(self, folder: str) -> list[str]:
        """Relative names of the JSON files in ``folder`` under the catalog folder."""
        directory = self.root / folder
        return (
            sorted(str(path.relative_to(self.root)) for path in directory.glob("*.json"))
            if directory.exists()
            else []
        )

    def read_measurements(self, relative: str) -> MeasurementFile | None:
        """A measurement file (staged or on disk), or None when there is none.

        Raises:
            MeasurementError: the file is malformed or predates the versioned format.
        """
        path = self.root / relative
        if path in self._pending:
            text = self._pending[path]
        else:
            text = path.read_text(encoding="utf-8") if path.exists() else None
        return None if text is None else parse_measurements(text, path)

    def write_measurements(self, relative: str, measurements: MeasurementFile) -> None:
        """Stage a measurement file under the catalog folder."""
        self._pending[self.root / relative] = measurements.to_json()

    @property
    def pending(self) -> list[Path]:
        return sorted(self._pending)

    def commit(self) -> list[Path]:
        """Write every staged file, all or nothing; in dry-run mode write nothing."""
        written = self.pending
        if not self.dry_run:
            with self.locked():
                commit_files(self.root, self._pending)
        self._pending = {}
        return written

    def discard(self) -> None:
        self._pending = {}
