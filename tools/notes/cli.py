"""Literature notes for an Obsidian-style vault, and the links between notes and the atlas.

Command line::

    python -m tools.notes export --vault ~/Vault/Papers [--dry-run] [--adopt] [--wait S]
    python -m tools.notes check --vault ~/Vault [--verbose] [--no-fail] [--json]
    python -m tools.notes check --vault ~/Vault --fix [--dry-run] [--no-mentions]

``export`` writes one literature note per catalog entry (see :mod:`tools.notes.export`);
``check`` lists every reference to the atlas in the vault's notes as resolved or
dangling, with ``file:line:column``, and exits 1 when one dangles (see
:mod:`tools.notes.check`); ``--fix`` turns resolvable references into links to the
site's pages, and exits 1 when a note could not be written (read-only, or a link out of
the vault: each is named). Every command takes ``--catalog DIR`` (default: the shipped
catalog). ``export`` holds the catalog's lock (:mod:`tools.catalog.lock`) while it reads
the catalog and writes the vault; when another tool holds it for ``--wait`` seconds, it
exits 1. Text that came from a note or the catalog is printed with control characters
written out (:func:`tools.catalog.console.printable`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tools.catalog import CATALOG_DIR, Catalog, load_catalog, project, write_all
from tools.catalog.console import printable
from tools.catalog.lock import DEFAULT_WAIT, CatalogLockedError, catalog_lock
from tools.notes.check import check_vault, unified_diff
from tools.notes.export import run_export
from tools.notes.resolve import DANGLING, IGNORED, RESOLVED
from tools.notes.vault import unwritable

EXIT_OK, EXIT_DANGLING, EXIT_USAGE = 0, 1, 2
EXIT_FAILED = 1  # the catalog lock was held, or a fix could not be written
# JSON escapes C0 controls itself; these pass through ``ensure_ascii=False`` as they are.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _load(catalog_dir: Path | None) -> Catalog | None:
    catalog = load_catalog(catalog_dir)
    if catalog.problems:
        for problem in catalog.problems:
            print(printable(str(problem)), file=sys.stderr)
        print("the catalog has problems; run python -m tools.catalog check", file=sys.stderr)
        return None
    return catalog


def _export(args: argparse.Namespace) -> int:
    root = args.catalog or CATALOG_DIR
    try:
        # Read the catalog and write the vault under the lock: a sync writing the catalog
        # meanwhile would leave notes made of half its old and half its new entries.
        with catalog_lock(root, wait=args.wait) as recovered:
            if recovered:
                print(printable(recovered), file=sys.stderr)
            catalog = _load(args.catalog)
            if catalog is None:
                return EXIT_USAGE
            plan = run_export(catalog, args.vault, dry_run=args.dry_run, adopt=args.adopt)
    except CatalogLockedError as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        return EXIT_FAILED
    except project.NotACheckoutError as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    prefix = "would " if args.dry_run else ""
    counts: dict[str, int] = {}
    for action in plan.actions:
        counts[action.verb] = counts.get(action.verb, 0) + 1
        if action.verb == "unchanged" and not args.verbose:
            continue
        reason = f": {action.reason}" if action.reason else ""
        verb = action.verb if action.verb in ("unchanged", "skip") else prefix + action.verb
        print(printable(f"{verb} {action.path}{reason}"))
    summary = ", ".join(f"{count} {verb}" for verb, count in sorted(counts.items()))
    print(f"{'dry run: ' if args.dry_run else ''}{summary or 'nothing to export'}")
    return EXIT_OK


def _check(args: argparse.Namespace, catalog: Catalog) -> int:
    if not args.vault.is_dir():
        print(printable(f"error: {args.vault} is not a folder"), file=sys.stderr)
        return EXIT_USAGE
    reports, unreadable = check_vault(catalog, args.vault, mentions=not args.no_mentions)
    for line in unreadable:
        print(printable(line), file=sys.stderr)
    references = [ref for report in reports for ref in report.references]
    if args.json:
        rows = [
            {
                "file": str(ref.path),
                "line": ref.line,
                "column": ref.column,
                "kind": ref.kind,
                "text": ref.text,
                "status": ref.status,
                "target": ref.target,
                "detail": ref.detail,
            }
            for ref in references
            if args.verbose or ref.status != IGNORED
        ]
        dumped = json.dumps(rows, indent=2, ensure_ascii=False)
        print(_JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", dumped))
    else:
        for ref in references:
            if args.verbose or ref.status != IGNORED:
                print(printable(ref.describe()))
    dangling = sum(ref.status == DANGLING for ref in references)
    resolved = sum(ref.status == RESOLVED for ref in references)
    failed = False
    if args.fix:
        changed = {report.path: report.fixed for report in reports if report.fixed != report.text}
        # A read-only note, or a link out of the vault, is named and left as it is.
        refused = {path: unwritable(args.vault, path) for path in changed}
        for path, why in refused.items():
            if why:
                print(printable(f"{path}: {why}; not fixed"), file=sys.stderr)
        changed = {path: text for path, text in changed.items() if not refused[path]}
        failed = any(refused.values())
        if args.dry_run:
            for report in reports:
                sys.stdout.write(printable(unified_diff(report), keep_newlines=True))
        else:
            try:
                write_all(changed)
            except OSError as error:
                print(f"error: {printable(str(error))}; no note fixed", file=sys.stderr)
                changed, failed = {}, True
        fixes = sum(
            ref.replacement is not None for report in reports if report.path in changed
            for ref in report.references
        )  # fmt: skip
        verb = "would rewrite" if args.dry_run else "rewrote"
        print(
            f"{verb} {fixes} reference(s) in {len(changed)} note(s)",
            file=sys.stderr if args.json else sys.stdout,
        )
    print(
        f"{len(reports)} note(s): {resolved} resolved, {dangling} dangling reference(s)",
        file=sys.stderr if args.json else sys.stdout,
    )
    if failed:
        return EXIT_FAILED
    return EXIT_DANGLING if dangling and not args.no_fail else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.notes", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write one literature note per catalog entry")
    check = commands.add_parser("check", help="find the atlas references of a vault's notes")
    for command in (export, check):
        command.add_argument("--vault", type=Path, required=True, help="the vault (a folder)")
        command.add_argument("--catalog", type=Path, help="catalog folder (default: catalog/)")
        command.add_argument("--dry-run", action="store_true", help="show changes, write nothing")
        command.add_argument("-v", "--verbose", action="store_true", help="list everything")
    export.add_argument(
        "--adopt",
        action="store_true",
        help="put a managed block on top of an existing note of the same name without one",
    )
    export.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        help=f"seconds to wait for another tool writing the catalog (default {DEFAULT_WAIT:g})",
    )
    check.add_argument("--fix", action="store_true", help="link resolvable references")
    check.add_argument("--no-fail", action="store_true", help="exit 0 even when some dangle")
    check.add_argument("--no-mentions", action="store_true", help="ignore names in prose")
    check.add_argument("--json", action="store_true", help="print the references as JSON")
    args = parser.parse_args(argv)

    if args.command == "export":
        return _export(args)
    catalog = _load(args.catalog)
    if catalog is None:
        return EXIT_USAGE
    return _check(args, catalog)
