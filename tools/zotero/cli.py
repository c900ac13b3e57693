"""The command line of the sync: ``python tools/sync_zotero.py`` (or ``python -m tools.zotero``).

Parses the options, then, holding the catalog's lock from the first read to the last
write (a second sync waits briefly, then stops), runs fetch → plan → commit → report, and
turns every failure into one redacted line on stderr and an exit status: 0 done, 1 failed
with nothing written (or, for entries that could not be updated, with the library version
kept), 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TextIO

from tools.catalog import CATALOG_DIR, Store
from tools.catalog.lock import CatalogLockedError
from tools.zotero.errors import SyncError, ZoteroError
from tools.zotero.fetch import API_KEY_VARIABLE, fetch_from_api, fetch_from_file
from tools.zotero.importer import EXPORT_FORMATS
from tools.zotero.options import (
    DEFAULT_MAX_TIME,
    SyncOptions,
    api_url,
    collection_key,
    library_id,
    tag_name,
)
from tools.zotero.report import Console, print_report
from tools.zotero.sync import synchronise


def parse_args(argv: list[str] | None) -> SyncOptions:
    """The options of ``argv`` (the process's arguments when None); exits on a usage error."""
    parser = argparse.ArgumentParser(
        prog="python tools/sync_zotero.py",
        description="Sync the catalog's citation fields from a Zotero library.",
        epilog=f"The API key is read from ${API_KEY_VARIABLE}; public groups need none.",
    )
    library = parser.add_argument_group("library")
    library.add_argument("--library-type", choices=("user", "group"))
    library.add_argument("--library-id", type=library_id, help="numeric user or group ID")
    library.add_argument(
        "--collection", type=collection_key, metavar="KEY", help="only this collection's items"
    )
    library.add_argument("--tag", type=tag_name, metavar="T", help="only items with this tag")
    library.add_argument("--local", action="store_true", help="read the Zotero desktop's local API")
    library.add_argument(
        "--api-url",
        type=api_url,
        metavar="URL",
        help="another server speaking the Zotero Web API (http or https)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    parser.add_argument("--add-new", action="store_true", help="draft entries for unmatched items")
    parser.add_argument("--full", action="store_true", help="ignore the watermark; read everything")
    parser.add_argument("--from-file", type=Path, metavar="FILE", help="sync from a Zotero export")
    parser.add_argument(
        "--format", choices=EXPORT_FORMATS, default="auto", help="format of --from-file"
    )
    parser.add_argument(
        "--catalog", type=Path, default=CATALOG_DIR, metavar="DIR", help="catalog folder"
    )
    network = parser.add_argument_group("network")
    network.add_argument(
        "--timeout", type=float, default=30.0, help="seconds one request may take, all of it"
    )
    network.add_argument("--retries", type=int, default=3, help="retries of a failed request")
    network.add_argument(
        "--retry-delay", type=float, default=1.0, help="first wait before a retry; doubles"
    )
    network.add_argument(
        "--max-time",
        type=float,
        default=DEFAULT_MAX_TIME,
        metavar="S",
        help="seconds reading the library may take, retries included (default %(default)g)",
    )
    args = parser.parse_args(argv)
    numbers = (args.timeout, args.retry_delay, args.max_time)
    if args.retries < 0 or not all(0 <= value < float("inf") for value in numbers):
        parser.error(
            "--timeout, --retries, --retry-delay and --max-time must be finite, not negative"
        )
    if args.timeout <= 0 or args.max_time <= 0:
        parser.error("--timeout and --max-time must be positive")
    return SyncOptions(**vars(args))


def run(options: SyncOptions, console: Console) -> int:
    """One sync under the catalog's lock (a dry run writes nothing and takes none)."""
    store = Store(options.catalog, dry_run=options.dry_run)
    if options.dry_run:
        return _run(options, console, store)
    with store.locked() as recovered:
        if recovered:
            console.say(f"catalog: {recovered}")
        return _run(options, console, store)


def _run(options: SyncOptions, console: Console, store: Store) -> int:
    """Fetch, plan, write all or nothing, report; returns the exit status."""
    catalog = store.load()
    if catalog.problems:
        raise SyncError(
            f"the catalog has {len(catalog.problems)} problem(s), first {catalog.problems[0]}; "
            "fix them first (python -m tools.catalog check)"
        )
    if options.from_file:
        fetched = fetch_from_file(options.from_file, options)
    else:
        fetched = fetch_from_api(options, store)
    report = synchronise(store, catalog, fetched, options.add_new, secrets=console.secrets)
    watermark = fetched.watermark
    # An entry that could not be updated must be fetched again next time: keep the old
    # library version rather than moving past the item.
    if watermark is not None and not report.failed:
        watermark.stage(store)
    store.commit()  # entries and watermark together, all or nothing
    if fetched.note:
        skipped = f"; skipped {report.skipped} notes/attachments" if report.skipped else ""
        console.say(fetched.note + skipped)
    print_report(report, console, options.dry_run, store.root)
    console.say(
        ("dry run, nothing written; " if options.dry_run else "") + "summary: " + report.summary()
    )
    if report.failed:
        console.warn(
            f"error: {len(report.failed)} entr{'y' if len(report.failed) == 1 else 'ies'} not "
            "updated (see above); the library version was kept so the next run retries them"
        )
        return 1
    return 0


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the sync; returns the exit status (0 done, 1 failed with nothing written)."""
    options = parse_args(argv)
    console = Console([os.environ.get(API_KEY_VARIABLE)], out=out)
    try:
        return run(options, console)
    except (SyncError, ZoteroError, CatalogLockedError) as error:
        console.warn(f"error: {error}")
    except KeyboardInterrupt:
        # A write cut short is finished or rolled back by the next run (its journal).
        console.warn("interrupted; the catalog is as it was, or as the next run completes it")
        return 130
    except Exception as error:  # an unexpected failure still gets one redacted line
        console.warn(f"error: unexpected {type(error).__name__}: {error}")
    return 1
