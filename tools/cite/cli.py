"""``python -m tools.cite <id> [--format F] [--catalog DIR]``: print one entry's citation.

Exit statuses: 0 cited; 2 an unknown id (like argparse's usage errors), with the closest
ids; 1 another failure (not a git checkout, so nothing can be pinned).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.catalog import load_catalog, project
from tools.cite.build import build_citation, find_entry, no_implementation
from tools.cite.render import FORMATS, render

EXIT_UNKNOWN_ID = 2
EXIT_FAILURE = 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.cite",
        description=(
            "Ready-to-paste citations of a paper of the atlas and of its reference implementation."
        ),
    )
    parser.add_argument("id", help="catalog id, impl:<id>, citekey or model name")
    parser.add_argument("--format", choices=FORMATS, default="markdown")
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: catalog/)")
    args = parser.parse_args(argv)

    catalog = load_catalog(args.catalog)
    try:
        entry = find_entry(catalog, args.id)
    except (KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_UNKNOWN_ID
    try:
        citation = build_citation(entry, catalog)
    except project.NotACheckoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if citation.implementation is None and args.format in ("bibtex", "csljson"):
        # Machine-readable output stays parseable; the notice goes to stderr.
        print(f"note: {no_implementation(entry)}", file=sys.stderr)
    elif citation.implementation and project.has_local_changes(
        citation.implementation.location.path
    ):
        print(
            f"warning: {citation.implementation.location.path} has uncommitted changes; "
            "the pinned line range is that of the last commit only if you commit them first",
            file=sys.stderr,
        )
    sys.stdout.write(render(citation, args.format))
    return 0
