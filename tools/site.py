"""Generate, build and serve the atlas's static site.

The data-driven pages are Markdown written by our own code into git-ignored folders of
``docs/`` before MkDocs runs, not by MkDocs plugins or hooks, so that any engine that
reads ``mkdocs.yml`` (MkDocs with Material, or Zensical) builds the same site.

Command line::

    python -m tools.site generate [--catalog DIR] [--dry-run]   # write the pages
    python -m tools.site build [--catalog DIR]                   # generate + mkdocs build --strict
    python -m tools.site serve [--catalog DIR] [--port 8000]     # generate + serve, live reload

``serve`` watches the catalog: editing an entry regenerates its pages, and MkDocs then
rebuilds and reloads the browser, without a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tools import project as project_identity
from tools.catalog import CATALOG_DIR, Catalog, Store, atomic_write, load_catalog
from tools.site_mechanisms import read_mechanism
from tools.site_pages import Measurement, SiteContext, render_pages

ROOT = Path(__file__).resolve().parents[1]
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
    store = Store(catalog_root)
    found = []
    for name in store.list_data("measurements"):
        try:
            data = store.read_data(name)
        except ValueError as error:  # a malformed file must not take the site down
            print(f"site: skipping {error}", file=sys.stderr)
            continue
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            found.append(Measurement(Path(name).stem, data))
    # CPU first: it is the reference run every contributor can reproduce.
    return sorted(found, key=lambda m: (not m.name.startswith("cpu"), m.name))


def _commit_or_none() -> str | None:
    """The commit to pin source links to; None outside a git checkout (links a copy)."""
    try:
        return project_identity.commit()
    except project_identity.NotACheckoutError:
        return None


def site_context(catalog: Catalog) -> SiteContext:
    """Measurements, the registered implementations and the source-link settings."""
    mechanisms = {}
    for entry in catalog.entries.values():
        if entry.implementation:
            info = read_mechanism(entry.id, entry.implementation)
            if info is not None:
                mechanisms[entry.id] = info
    return SiteContext(
        measurements=load_measurements(catalog.root),
        mechanisms=mechanisms,
        repo_url=project_identity.configured("repo_url"),
        commit=_commit_or_none(),
    )


def render_all(
    catalog: Catalog, context: SiteContext, source_root: Path = ROOT
) -> dict[str, str | bytes]:
    """Every generated file of ``docs/``, including the copies of implementation sources
    that the pages link when no repository address is set."""
    files: dict[str, str | bytes] = dict(render_pages(catalog, context))
    if not (context.repo_url and context.commit):
        for info in context.mechanisms.values():
            files[f"generated/source/{info.source_path}"] = (
                source_root / info.source_path
            ).read_bytes()
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
) -> tuple[Catalog, Changes | None]:
    """Load the catalog and write the generated pages into ``project/docs``.

    Returns the catalog and the changes; the changes are None when the catalog has
    problems, in which case nothing is written (the previous pages stay).
    """
    catalog = load_catalog(catalog_root or CATALOG_DIR)
    if catalog.problems:
        for problem in catalog.problems:
            print(problem, file=sys.stderr)
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


def _show_mkdocs_log(level: int) -> logging.Handler:
    """MkDocs reports through logging; print its records the way its own CLI does."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)-7s -  %(message)s"))
    # Paper and class pages are deliberately outside the navigation; don't list them.
    handler.addFilter(lambda record: 'not included in the "nav"' not in record.getMessage())
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    logger.setLevel(min(logger.getEffectiveLevel(), level))
    return handler


def build(catalog_root: Path | None = None, project: Path = ROOT) -> int:
    """Generate, then ``mkdocs build --strict``; prints the elapsed time."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    handler = _show_mkdocs_log(logging.WARNING)
    start = time.perf_counter()
    _, changes = generate(catalog_root, project)
    if changes is None:
        return 1
    generated = time.perf_counter()
    try:
        with contextlib.chdir(project):  # snippets' base_path is relative to the cwd
            mkdocs_build(load_config(str(project / "mkdocs.yml"), strict=True))
    except MkDocsException as error:
        print(f"site: build failed: {error}", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("mkdocs").removeHandler(handler)
    end = time.perf_counter()
    print(
        f"site: built {project / 'site'} in {end - start:.1f} s "
        f"(generate {generated - start:.1f} s, mkdocs {end - generated:.1f} s; target < 15 s)"
    )
    return 0


class _Regenerator:
    """Regenerates the pages shortly after the last change under the catalog folder.

    Editors write a file in several steps (temporary file, rename); waiting for a quiet
    moment regenerates once per save.
    """

    def __init__(self, catalog_root: Path, project: Path, delay: float = 0.3) -> None:
        self.catalog_root, self.project, self.delay = catalog_root, project, delay
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def dispatch(self, event: object) -> None:
        # Reading the catalog raises "opened"/"closed" events too: react to changes only,
        # or each regeneration would trigger the next.
        if getattr(event, "event_type", "") not in ("created", "modified", "deleted", "moved"):
            return
        path = str(getattr(event, "dest_path", "") or getattr(event, "src_path", ""))
        if not path.endswith((".yaml", ".yml", ".json")):
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self.run)
            self._timer.daemon = True
            self._timer.start()

    def run(self) -> None:
        try:
            generate(self.catalog_root, self.project)
        except Exception as error:  # a bad edit must not stop the server
            print(f"site: regeneration failed: {type(error).__name__}: {error}", file=sys.stderr)


def serve(catalog_root: Path | None = None, project: Path = ROOT, port: int = 8000) -> int:
    """Generate, then serve on 127.0.0.1 with live reload; regenerate on catalog edits."""
    from mkdocs.commands.serve import serve as mkdocs_serve
    from watchdog.observers import Observer

    root = (catalog_root or CATALOG_DIR).resolve()
    _, changes = generate(root, project)
    if changes is None:
        return 1
    observer = Observer()
    observer.schedule(_Regenerator(root, project), str(root), recursive=True)
    observer.start()
    _show_mkdocs_log(logging.INFO)
    try:
        with contextlib.chdir(project):
            mkdocs_serve(str(project / "mkdocs.yml"), livereload=True, dev_addr=f"127.0.0.1:{port}")
    finally:
        observer.stop()
        observer.join(timeout=5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.site", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=("generate", "build", "serve"))
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: catalog/)")
    parser.add_argument(
        "--project",
        type=Path,
        default=ROOT,
        help="folder holding mkdocs.yml and docs/ (default: the repository)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="generate: report what would change, write nothing"
    )
    parser.add_argument("--port", type=int, default=8000, help="serve: port on 127.0.0.1")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if args.command == "generate" or args.dry_run:
        # With --dry-run, build and serve stop after reporting what generate would change.
        _, changes = generate(args.catalog, project, dry_run=args.dry_run)
        if changes is not None and args.dry_run:
            for relative in changes.written:
                print(f"  write  docs/{relative}")
            for relative in changes.removed:
                print(f"  remove docs/{relative}")
        return 0 if changes is not None else 1
    if args.command == "build":
        return build(args.catalog, project)
    return serve(args.catalog, project, args.port)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C ends `serve`
        raise SystemExit(130) from None
