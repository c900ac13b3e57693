"""``python -m tools.catalog``: check the catalog, export it, regenerate its JSON Schema.

Command line::

    python -m tools.catalog check [--import]           # validate everything
    python -m tools.catalog export --format bibtex -o atlas.bib
    python -m tools.catalog schema [--check]           # (re)generate the JSON Schema
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.catalog.check import check
from tools.catalog.citations import EXPORT_FORMATS, render
from tools.catalog.console import printable
from tools.catalog.files import atomic_write
from tools.catalog.loader import Catalog, load_catalog
from tools.catalog.lock import CatalogLockedError, catalog_lock
from tools.catalog.model import SCHEMA_RELATIVE
from tools.catalog.paths import CATALOG_DIR, display
from tools.catalog.schema import schema_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.catalog",
        description="Check the catalog, export it, or regenerate its JSON Schema.",
    )
    parser.add_argument("--root", type=Path, help="catalog folder (default: catalog/)")
    commands = parser.add_subparsers(dest="command", required=True)
    check_command = commands.add_parser("check", help="validate every entry; report all problems")
    check_command.add_argument(
        "--import",
        dest="imported",
        action="store_true",
        help="also import every implementation and compare it with the live registry (torch)",
    )
    export = commands.add_parser("export", help="export the whole catalog")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.add_argument("--dry-run", action="store_true", help="report what would be written")
    schema = commands.add_parser("schema", help="write the JSON Schema generated from the model")
    schema.add_argument("--check", action="store_true", help="fail if the file is out of date")
    schema.add_argument("--dry-run", action="store_true", help="report, write nothing")
    return parser


def _check(catalog: Catalog, *, imported: bool = False) -> int:
    result = check(catalog, imported=imported)
    for problem in result.problems:
        print(printable(str(problem)), file=sys.stderr)
    print(result.summary, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _schema(catalog: Catalog, *, check_only: bool, dry_run: bool) -> int:
    path = catalog.root / SCHEMA_RELATIVE
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == schema_text():
        print(f"{display(path)} is up to date")
        return 0
    if check_only or dry_run:
        print(f"{display(path)} is out of date", file=sys.stderr)
        return 1 if check_only else 0
    atomic_write(path, schema_text())
    print(f"wrote {display(path)}")
    return 0


def _export(catalog: Catalog, format: str, output: Path | None, dry_run: bool) -> int:
    if catalog.problems:
        return _check(catalog)
    text = render(catalog, format)
    if output is None:
        sys.stdout.write(text)
    elif dry_run:
        print(f"would write {len(text)} characters to {printable(str(output))}")
    else:
        try:
            # Through a symlink to its target; a FIFO, device or folder is refused unopened.
            atomic_write(output, text)
        except OSError as error:
            print(f"error: {printable(str(output))}: {_why(error, output)}", file=sys.stderr)
            return 1
        print(f"wrote {len(catalog.entries)} entries to {printable(str(output))}")
    return 0


def _why(error: OSError, path: Path) -> str:
    """The reason in ``error``, without the path the message already starts with.

    Examples:
        >>> _why(IsADirectoryError("out is a folder, not a file to write"), Path("out"))
        'a folder, not a file to write'
        >>> _why(PermissionError(13, "Permission denied"), Path("x"))
        'Permission denied'
    """
    why = error.strerror or str(error)
    why = why.removeprefix(f"{path} ").removeprefix("is ")
    return printable(why)


def _recover(root: Path) -> int | None:
    """Finish or roll back a write a crash interrupted; an exit status when that fails."""
    try:
        with catalog_lock(root) as recovered:
            if recovered:
                print(f"{display(root)}: {recovered}", file=sys.stderr)
    except CatalogLockedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except PermissionError:  # a read-only catalog: nothing to recover we could write
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        failed = _recover((args.root or CATALOG_DIR).resolve())
        if failed is not None:
            return failed
    catalog = load_catalog(args.root)
    if args.command == "check":
        return _check(catalog, imported=args.imported)
    if args.command == "schema":
        return _schema(catalog, check_only=args.check, dry_run=args.dry_run)
    return _export(catalog, args.format, args.output, args.dry_run)
