"""Generate, build and serve the atlas's static site.

Command line::

    python -m tools.site generate [--catalog DIR] [--dry-run]   # write the pages
    python -m tools.site build [--catalog DIR]                   # generate + mkdocs build --strict
    python -m tools.site serve [--catalog DIR] [--port 8000]     # generate + serve, live reload

``serve`` watches the catalog: editing an entry regenerates its pages, and MkDocs then
rebuilds and reloads the browser, without a restart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.catalog import ROOT
from tools.site.build import build
from tools.site.generate import generate
from tools.site.serve import serve


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
