"""What to sync: the items a Zotero library changed since the watermark, or an export's items.

The Web API is asked for what changed since the stored library version (everything on a
first or ``--full`` run) and for what was deleted. The local API has no ``/deleted``, so
it is listed whole, and the keys that are missing are the deletions.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tools.catalog import Store
from tools.zotero.client import LibraryRef, ZoteroSource
from tools.zotero.deadline import RunClock
from tools.zotero.errors import ExportError, SyncError
from tools.zotero.importer import read_export
from tools.zotero.options import SyncOptions
from tools.zotero.record import ZoteroRecord, record_from_api_item
from tools.zotero.retry import RetryPolicy
from tools.zotero.watermark import Watermark, watermark_path

API_KEY_VARIABLE = "ZOTERO_API_KEY"


def progress(total: int | None, description: str) -> tqdm:
    """A progress bar on stderr, shown only when stderr is a terminal."""
    return tqdm(
        total=total,
        desc=description,
        unit="item",
        file=sys.stderr,
        leave=False,
        disable=not sys.stderr.isatty(),
    )


@dataclass
class Fetched:
    """What a source gave: the items to look at and what is known to be gone.

    Attributes:
        records: Changed items (all items on a first or full run).
        library: The library the items belong to, when known.
        deleted_keys: Keys Zotero reports deleted.
        listed_keys: Every key of the whole library, when the run listed it completely;
            linked entries whose key is missing were deleted.
        watermark: The watermark to save, or None (an export file has none).
        note: A line for the user about what was read.
    """

    records: list[ZoteroRecord]
    library: str | None = None
    deleted_keys: set[str] = field(default_factory=set)
    listed_keys: set[str] | None = None
    watermark: Watermark | None = None
    note: str = ""


def _library(options: SyncOptions) -> LibraryRef:
    if options.library_type is None or options.library_id is None:
        raise SyncError("give --library-type and --library-id (or --from-file FILE)")
    if options.local and options.library_type == "user" and options.library_id == 0:
        raise SyncError(
            "with --local, give your numeric user ID (zotero.org/settings/keys), not 0: "
            "the links written to the catalog must name the real library"
        )
    return LibraryRef(options.library_type, options.library_id)


def fetch_from_api(options: SyncOptions, store: Store) -> Fetched:
    """Read what changed in the library since the stored watermark (everything the first time)."""
    library = _library(options)
    source_kind = "local" if options.local else "web"
    path = watermark_path(source_kind, library, options.collection, options.tag)
    watermark = Watermark.load(
        store,
        path,
        library=library.path,
        source=source_kind,
        collection=options.collection,
        tag=options.tag,
    )
    policy = RetryPolicy(
        attempts=options.retries + 1, first_delay=options.retry_delay, timeout=options.timeout
    )
    # The desktop's local API needs no key; the web key is not handed to another program.
    api_key = None if options.local else os.environ.get(API_KEY_VARIABLE) or None
    source = ZoteroSource(
        library,
        api_key,
        local=options.local,
        endpoint=options.api_url,
        collection=options.collection,
        tag=options.tag,
        policy=policy,
        clock=RunClock(options.max_time),
    )
    with source:
        fetch = _fetch_local if options.local else _fetch_web
        fetched = fetch(source, watermark, options.full)
    fetched.library = library.path
    fetched.watermark = watermark
    return fetched


def _fetch_in_batches(source: ZoteroSource, keys: list[str]) -> list[dict[str, Any]]:
    with progress(len(keys), "Zotero items") as bar:

        def advance(count: int) -> None:
            bar.update(count)

        return source.items_by_key(keys, on_batch=advance)


def _fetch_web(source: ZoteroSource, watermark: Watermark, full: bool) -> Fetched:
    since = None if full else watermark.servers.get(source.server)
    if since is None:
        with progress(None, "Zotero items") as bar:

            def on_page(count: int, total: int | None) -> None:
                bar.total = total
                bar.update(count)

            items, version = source.all_items(on_page=on_page)
        watermark.servers[source.server] = version
        listed = {str(item.get("key")) for item in items}
        return Fetched(
            records=[record_from_api_item(item, source.library.path) for item in items],
            listed_keys=None if source.scoped else listed,
            note=f"read all {len(items)} top-level items (library version {version})",
        )
    versions, version = source.changed_versions(since)
    watermark.servers[source.server] = version
    if versions is None or (not versions and version == since):
        return Fetched(records=[], note=f"no changes since library version {since}")
    items = _fetch_in_batches(source, list(versions))
    deleted = set(source.deleted_since(since)) if version != since else set()
    return Fetched(
        records=[record_from_api_item(item, source.library.path) for item in items],
        deleted_keys=deleted,
        note=f"read {len(items)} items changed since version {since} (now {version})",
    )


def _fetch_local(source: ZoteroSource, watermark: Watermark, full: bool) -> Fetched:
    versions, version = source.all_versions()
    since = None if full else watermark.servers.get(source.server)
    changed = [key for key, value in versions.items() if since is None or value > since]
    watermark.servers[source.server] = version
    items = _fetch_in_batches(source, changed) if changed else []
    what = "all" if since is None else f"{len(changed)} changed"
    return Fetched(
        records=[record_from_api_item(item, source.library.path) for item in items],
        listed_keys=None if source.scoped else set(versions),
        note=f"read {what} items from the local API (library version {version})",
    )


def fetch_from_file(path: Path, options: SyncOptions) -> Fetched:
    """The items of the export file at ``path``; an export has no watermark."""
    library = None
    if options.library_type and options.library_id is not None:
        library = LibraryRef(options.library_type, options.library_id).path
    try:
        records = read_export(path, options.format, library=library)
    except ExportError as error:
        raise SyncError(str(error)) from None
    return Fetched(records=records, library=library, note=f"read {len(records)} items from file")
