"""``generate``: the catalog and its measurements, rendered into ``docs/``.

Only what changed is written, and generated files that no longer belong are removed,
so that ``mkdocs serve`` sees real edits only. While it reads the catalog and writes
``docs/`` it holds the catalog's lock (:mod:`tools.catalog.lock`), so it never renders a
catalog that a sync is halfway through writing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tools.catalog import CATALOG_DIR, ROOT, Catalog, MeasurementError, atomic_write, load_catalog
from tools.catalog import project as project_identity
from tools.catalog.console import printable
from tools.catalog.evaluations import Evaluations, load_evaluations
from tools.catalog.lock import DEFAULT_WAIT, catalog_lock
from tools.catalog.measurements import MEASUREMENTS_FOLDER, parse_measurements
from tools.catalog.mechanisms import declared_mechanisms
from tools.site.context import Measurement, SiteContext
from tools.site.pages import render_pages
from tools.site.pages.misses import time_profile
from tools.site.pages.source import ZIP_PATH, implementations_zip, source_files

# Folders (and files) of docs/ that `generate` owns entirely; .gitignore lists them.
GENERATED: tuple[str, ...] = (
    "papers",
    "taxonomy",
    "comparison",
    "authors",
    "timeline",
    "benchmarks",
    "downloads",
    "reference",
    "generated",
    "survey",
    "lra",
    "quality",
)


@dataclass(frozen=True)
class Changes:
    """What a generation wrote and removed, relative to ``docs/``."""

    written: list[str]
    removed: list[str]
    unchanged: int

    def summary(self, dry_run: bool = False) -> str:
        """One line for the terminal.

        Examples:
            >>> Changes(["a.md"], [], 3).summary()
            'wrote 1 file(s), removed 0, 3 unchanged'
        """
        verb = "would write" if dry_run else "wrote"
        gone = "would remove" if dry_run else "removed"
        return (
            f"{verb} {len(self.written)} file(s), {gone} {len(self.removed)}, "
            f"{self.unchanged} unchanged"
        )


def load_measurements(catalog_root: Path) -> list[Measurement]:
    """The measurement files of the catalog, CPU first; malformed ones are skipped."""
    folder = catalog_root / MEASUREMENTS_FOLDER
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            file = parse_measurements(path.read_text(encoding="utf-8"), path)
        except MeasurementError as error:  # a malformed file must not take the site down
            print(f"site: skipping {printable(str(error))}", file=sys.stderr)
            continue
        found.append(Measurement(path.stem, file))
    # CPU first: it is the reference run every contributor can reproduce.
    return sorted(found, key=lambda m: (not m.name.startswith("cpu"), m.name))


def load_evaluation_files(catalog_root: Path) -> dict[str, Evaluations]:
    """The quality benchmark's files by name (``cpu``); none when they do not load, so
    that a malformed file never takes the site down (``catalog check`` reports it)."""
    try:
        found = load_evaluations(catalog_root)
    except ValueError as error:  # pydantic's ValidationError is one too
        print(f"site: skipping the evaluations: {printable(str(error))}", file=sys.stderr)
        return {}
    return {Path(name).stem: file for name, file in found.items()}


def _commit_or_none() -> str | None:
    """The commit to pin source links to; None outside a git checkout (links a copy)."""
    try:
        return project_identity.commit()
    except project_identity.NotACheckoutError:
        return None


def site_context(catalog: Catalog) -> SiteContext:
    """Measurements, the implemented mechanisms and the source-link settings."""
    declared = declared_mechanisms()
    mechanisms = {
        entry.id: declared[entry.id]
        for entry in catalog.entries.values()
        if entry.implementation
        and entry.id in declared
        and declared[entry.id].module == entry.implementation
    }
    profiles = {
        id: profile
        for id, info in mechanisms.items()
        if (profile := time_profile((ROOT / info.path).read_text(encoding="utf-8")))
    }
    return SiteContext(
        measurements=load_measurements(catalog.root),
        evaluations=load_evaluation_files(catalog.root),
        mechanisms=mechanisms,
        profiles=profiles,
        repo_url=project_identity.configured("repo_url"),
        commit=_commit_or_none(),
    )


def render_all(
    catalog: Catalog, context: SiteContext, source_root: Path = ROOT
) -> dict[str, str | bytes]:
    """Every generated file of ``docs/``, including the implementations as one zip
    (their highlighted pages are among the pages)."""
    files: dict[str, str | bytes] = dict(render_pages(catalog, context))
    files[ZIP_PATH] = implementations_zip(source_files(source_root))
    return files


def write_generated(
    docs: Path, files: Mapping[str, str | bytes], *, dry_run: bool = False
) -> Changes:
    """Write what changed and remove stale generated files.

    Unchanged files are left alone so that ``mkdocs serve`` only sees real edits.
    """
    written, removed, unchanged = [], [], 0
    for relative, content in sorted(files.items()):
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = docs / relative
        if path.exists() and path.read_bytes() == data:
            unchanged += 1
            continue
        written.append(relative)
        if not dry_run:
            atomic_write(path, data)
    for folder in GENERATED:
        base = docs / folder
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(docs).as_posix()
            if path.is_file() and relative not in files:
                removed.append(relative)
                if not dry_run:
                    path.unlink()
    return Changes(written, removed, unchanged)


def generate(
    catalog_root: Path | None = None,
    project: Path = ROOT,
    *,
    dry_run: bool = False,
    quiet: bool = False,
    wait: float = DEFAULT_WAIT,
) -> tuple[Catalog, Changes | None]:
    """Load the catalog and write the generated pages into ``project/docs``.

    Returns the catalog and the changes; the changes are None when the catalog has
    problems, in which case nothing is written (the previous pages stay). Unless
    ``dry_run``, the catalog's lock is held throughout.

    Raises:
        CatalogLockedError: another tool held the lock for longer than ``wait`` seconds.
    """
    root = catalog_root or CATALOG_DIR
    if dry_run or not root.is_dir():
        # Writes nothing, not even the lock file (nor a catalog folder for a mistyped path).
        return _generate(root, project, dry_run=dry_run, quiet=quiet)
    with catalog_lock(root, wait=wait) as recovered:
        if recovered is not None:
            print(f"site: {printable(recovered)}", file=sys.stderr)
        return _generate(root, project, dry_run=False, quiet=quiet)


def _generate(
    root: Path, project: Path, *, dry_run: bool, quiet: bool
) -> tuple[Catalog, Changes | None]:
    catalog = load_catalog(root)
    if catalog.problems:
        for problem in catalog.problems:
            print(printable(str(problem), keep_newlines=True), file=sys.stderr)
        print(f"{len(catalog.problems)} catalog problem(s); pages not regenerated", file=sys.stderr)
        return catalog, None
    context = site_context(catalog)
    changes = write_generated(project / "docs", render_all(catalog, context), dry_run=dry_run)
    if not quiet:
        print(
            f"site: {changes.summary(dry_run)} in docs/ "
            f"({len(catalog.entries)} entries, {len(context.measurements)} measurement file(s))"
        )
    return catalog, changes
