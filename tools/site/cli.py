"""Generate, build and serve the atlas's static site.

Command line::

    python -m tools.site generate [--catalog DIR] [--dry-run]   # write the pages
    python -m tools.site build [--catalog DIR]                   # generate + mkdocs build --strict
    python -m tools.site serve [--catalog DIR] [--port 8000]     # generate + serve, live reload

``serve`` watches the catalog: editing an entry regenerates its pages, and MkDocs then
rebuilds and reloads the browser, without a restart.

Each command holds the catalog's lock while it reads the catalog and writes ``docs/``;
if another tool (a Zotero sync) holds it for longer than ``--wait`` seconds, the command
stops with exit status 1 and says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.catalog import ROOT
from tools.catalog.console import printable
from tools.catalog.lock import DEFAULT_WAIT, CatalogLockedError
from tools.site.build import build
from tools.site.generate import generate
from tools.site.serve import serve


def seconds(text: str) -> float:
    """A ``--wait`` value: a finite number of seconds, not negative.

    Examples:
        >>> seconds("0.5")
        0.5
        >>> seconds("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: not a number of seconds (0 or more): 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds (0 or more): {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.site",
        description=(__doc__ or "").split("\n")[0],
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
    parser.add_argument(
        "--wait",
        type=seconds,
        default=DEFAULT_WAIT,
        help=f"seconds to wait for another tool's catalog lock (default: {DEFAULT_WAIT:g})",
    )
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except CatalogLockedError as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    project = args.project.resolve()
    if args.command == "generate" or args.dry_run:
        # With --dry-run, build and serve stop after reporting what generate would change.
        _, changes = generate(args.catalog, project, dry_run=args.dry_run, wait=args.wait)
        if changes is not None and args.dry_run:
            for relative in changes.written:
                print(f"  write  docs/{printable(relative)}")
            for relative in changes.removed:
                print(f"  remove docs/{printable(relative)}")
        return 0 if changes is not None else 1
    if args.command == "build":
        return build(args.catalog, project, args.wait)
    return serve(args.catalog, project, args.port, args.wait)
