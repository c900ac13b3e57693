"""Keep the catalog's citations in step with a Zotero library, incrementally and safely.

Zotero is the source of the citation fields (title, authors, year, venue, arXiv id,
DOI, URL, citation key and the Zotero link); the catalog is the source of everything
else, which the sync never touches. Usage::

    python tools/sync_zotero.py --library-type group --library-id 2480461 --dry-run
    python tools/sync_zotero.py --library-type user --library-id 1234567 --add-new
    python tools/sync_zotero.py --library-type user --library-id 1234567 --local
    python tools/sync_zotero.py --from-file my-library.bib

The API key is read from ``ZOTERO_API_KEY`` only (public groups and the local API need
none). Each run reads only what changed since the library version stored in
``catalog/zotero/`` (per library, and per server); the version is saved together with
the entry files, all or nothing, after everything else succeeded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

if __package__ in (None, ""):
    # Run as a file: import from the repository root, not from tools/ (whose module
    # names could shadow others), so `tools.` imports work from any working directory.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from tqdm import tqdm

from tools.catalog import CATALOG_DIR, CITATION_FIELDS, Catalog, FieldChange, Store
from tools.zotero_client import (
    LibraryRef,
    RetryPolicy,
    ZoteroError,
    ZoteroSource,
    redact,
)
from tools.zotero_import import EXPORT_FORMATS, ExportError, read_export
from tools.zotero_mapping import (
    MappedItem,
    ZoteroRecord,
    draft_id,
    draft_name,
    fallback_url,
    make_citekey,
    map_record,
    record_from_api_item,
)
from tools.zotero_matching import Conflict, Matched, Unmatched, match_items

API_KEY_VARIABLE = "ZOTERO_API_KEY"
DRAFT_REQUIRED = ("title", "authors", "year", "venue")


class SyncError(Exception):
    """A failure reported in one line, after which nothing has been written."""


class Console:
    """Prints to stdout and stderr, never letting a secret through."""

    def __init__(self, secrets: list[str | None], out: TextIO | None = None) -> None:
        self._secrets = secrets
        self._out = out

    def say(self, line: str = "") -> None:
        print(redact(line, self._secrets), file=self._out or sys.stdout)

    def warn(self, line: str) -> None:
        print(redact(line, self._secrets), file=sys.stderr)


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


# ----------------------------------------------------------------------------- watermark


def watermark_path(
    source: str, library: LibraryRef, collection: str | None, tag: str | None
) -> str:
    """Where the watermark of one library (and collection or tag, if any) is kept.

    A collection or tag is a different selection with its own watermark: reusing the
    library's would skip items that changed while they were outside the selection.

    Examples:
        >>> watermark_path("web", LibraryRef("group", 2480461), None, None)
        'zotero/web/groups-2480461.json'
        >>> watermark_path("local", LibraryRef("user", 7), "ABCD2345", "to read")
        'zotero/local/users-7--collection-ABCD2345--tag-to-read-3d527aec.json'
    """
    name = library.path.replace("/", "-")
    if collection:
        name += f"--collection-{collection.upper()}"
    if tag:
        slug = "-".join(re.findall(r"[a-z0-9]+", tag.lower()))[:40]
        name += f"--tag-{slug}-{hashlib.sha1(tag.encode()).hexdigest()[:8]}"
    return f"zotero/{source}/{name}.json"


@dataclass
class Watermark:
    """The library versions already synced, one per server (a web server or a Zotero desktop)."""

    path: str
    library: str
    source: str
    collection: str | None = None
    tag: str | None = None
    servers: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, path: str, **identity: Any) -> Watermark:
        try:
            data = store.read_data(path)
        except ValueError as error:  # malformed JSON, reported as path:line
            raise SyncError(f"{error}; delete the file to sync everything again") from None
        servers = data.get("servers", {}) if isinstance(data, Mapping) else None
        if data is not None and (
            not isinstance(servers, dict)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in servers.values())
        ):
            raise SyncError(
                f"{store.root / path}: malformed watermark; delete the file to sync everything"
            )
        return cls(path=path, servers=dict(servers or {}), **identity)

    def as_json(self) -> dict[str, Any]:
        return {
            "library": self.library,
            "source": self.source,
            "collection": self.collection,
            "tag": self.tag,
            "servers": dict(sorted(self.servers.items())),
        }


# ----------------------------------------------------------------------------- fetching


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


def _library(args: argparse.Namespace) -> LibraryRef:
    if args.library_type is None or args.library_id is None:
        raise SyncError("give --library-type and --library-id (or --from-file FILE)")
    if args.local and args.library_type == "user" and args.library_id == 0:
        raise SyncError(
            "with --local, give your numeric user ID (zotero.org/settings/keys), not 0: "
            "the links written to the catalog must name the real library"
        )
    return LibraryRef(args.library_type, args.library_id)


def fetch_from_api(args: argparse.Namespace, store: Store) -> Fetched:
    """Read what changed in the library since the stored watermark (everything the first time)."""
    library = _library(args)
    source_kind = "local" if args.local else "web"
    path = watermark_path(source_kind, library, args.collection, args.tag)
    watermark = Watermark.load(
        store,
        path,
        library=library.path,
        source=source_kind,
        collection=args.collection,
        tag=args.tag,
    )
    policy = RetryPolicy(
        attempts=args.retries + 1, first_delay=args.retry_delay, timeout=args.timeout
    )
    # The desktop's local API needs no key; the web key is not handed to another program.
    api_key = None if args.local else os.environ.get(API_KEY_VARIABLE) or None
    source = ZoteroSource(
        library,
        api_key,
        local=args.local,
        endpoint=args.api_url,
        collection=args.collection,
        tag=args.tag,
        policy=policy,
    )
    with source:
        fetch = _fetch_local if args.local else _fetch_web
        fetched = fetch(source, watermark, args.full)
    fetched.library = library.path
    fetched.watermark = watermark
    return fetched


def _fetch_in_batches(source: ZoteroSource, keys: list[str]) -> list[dict[str, Any]]:
    with progress(len(keys), "Zotero items") as bar:
        return source.items_by_key(keys, on_batch=bar.update)


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


def fetch_from_file(args: argparse.Namespace) -> Fetched:
    library = None
    if args.library_type and args.library_id is not None:
        library = LibraryRef(args.library_type, args.library_id).path
    try:
        records = read_export(args.from_file, args.format, library=library)
    except ExportError as error:
        raise SyncError(str(error)) from None
    return Fetched(records=records, library=library, note=f"read {len(records)} items from file")


# ----------------------------------------------------------------------------- applying


@dataclass
class SyncReport:
    """Everything a run did or would do, for the report and the summary."""

    updated: list[tuple[Matched, list[FieldChange]]] = field(default_factory=list)
    unchanged: list[Matched] = field(default_factory=list)
    created: list[tuple[str, Path, MappedItem]] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    deleted: list[tuple[str, str, list[FieldChange]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0

    def summary(self) -> str:
        counts = [
            ("updated", len(self.updated)),
            ("unchanged", len(self.unchanged)),
            ("new", len(self.created)),
            ("unmatched", len(self.unmatched)),
            ("deleted", len(self.deleted)),
            ("conflicts", len(self.conflicts)),
        ]
        if self.failed:
            counts.append(("failed", len(self.failed)))
        return ", ".join(f"{name} {count}" for name, count in counts)


def _citation_view(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Each entry's citation fields as plain data, which matching works on."""
    return {
        entry_id: entry.model_dump(include=set(CITATION_FIELDS), exclude_none=True)
        for entry_id, entry in catalog.entries.items()
    }


def _flag_deleted(
    store: Store,
    view: dict[str, dict[str, Any]],
    fetched: Fetched,
    trashed: list[ZoteroRecord],
    report: SyncReport,
) -> None:
    """Flag entries whose Zotero item is gone or trashed; the entries themselves are kept."""
    gone = {key: "was deleted in Zotero" for key in fetched.deleted_keys}
    for record in trashed:
        if record.key:
            gone[record.key] = "is in Zotero's trash"
    for entry_id, fields in sorted(view.items()):
        link = fields.get("zotero")
        if not link or link.get("library") != fetched.library or link.get("deleted"):
            continue
        reason = gone.get(link["key"])
        if reason is None and fetched.listed_keys is not None:
            reason = None if link["key"] in fetched.listed_keys else "is no longer in the library"
        if reason is None:
            continue
        new_link = {**link, "deleted": True}
        try:
            changes = store.update_entry(entry_id, {"zotero": new_link})
        except ValueError as error:  # the entry file itself is broken; say so, go on
            report.failed.append((entry_id, str(error)))
            continue
        fields["zotero"] = new_link
        report.deleted.append((entry_id, f"{link['library']}/{link['key']} {reason}", changes))


def _update(
    store: Store, match: Matched, citekey_owners: dict[str, str], report: SyncReport
) -> None:
    fields = dict(match.item.fields)
    owner = citekey_owners.get(fields.get("citekey", ""))
    if owner and owner != match.entry_id:
        # Two entries with one key would break every BibTeX build; keep the entry's own.
        report.warnings.append(
            f"{match.entry_id}: Zotero's citation key {fields.pop('citekey')!r} "
            f"belongs to {owner}; kept the entry's key"
        )
    try:
        changes = store.update_entry(match.entry_id, fields)
    except ValueError as error:
        report.failed.append((match.entry_id, str(error)))
        return
    if changes:
        report.updated.append((match, changes))
        if "citekey" in fields:
            citekey_owners[fields["citekey"]] = match.entry_id
    else:
        report.unchanged.append(match)


def _draft(
    item: MappedItem, taken_ids: set[str], citekey_owners: dict[str, str]
) -> dict[str, Any] | str:
    """The data of a draft entry for ``item``, or why none can be made."""
    fields = dict(item.fields)
    missing = [name for name in DRAFT_REQUIRED if name not in fields]
    if missing:
        return f"cannot draft an entry: Zotero has no {', '.join(missing)}"
    fields.setdefault("url", fallback_url(fields))
    if not fields["url"]:
        return "cannot draft an entry: Zotero has no URL, DOI or arXiv id"
    if fields.get("citekey") in citekey_owners or "citekey" not in fields:
        fields["citekey"] = make_citekey(
            fields["authors"], fields["year"], fields["title"], taken=citekey_owners
        )
    name = draft_name(fields["title"])
    entry_id = draft_id(name, fields["year"], taken=taken_ids)
    return {"id": entry_id, "name": name, "kind": "model", "draft": True, **fields}


def synchronise(store: Store, catalog: Catalog, fetched: Fetched, add_new: bool) -> SyncReport:
    """Stage every change the fetched items call for; nothing is written until commit."""
    report = SyncReport()
    live: list[ZoteroRecord] = []
    trashed: list[ZoteroRecord] = []
    for record in fetched.records:
        if not record.bibliographic:
            report.skipped += 1  # notes, attachments, annotations
        elif record.trashed:
            trashed.append(record)
        else:
            live.append(record)
    view = _citation_view(catalog)
    if fetched.library:
        _flag_deleted(store, view, fetched, trashed, report)
    result = match_items([map_record(record) for record in live], view)
    report.conflicts = result.conflicts
    citekey_owners = {entry.citekey: entry_id for entry_id, entry in catalog.entries.items()}
    for match in result.matched:
        _update(store, match, citekey_owners, report)
    taken_ids = set(catalog.entries)  # the sync refuses a catalog with invalid files
    for unmatched in result.unmatched:
        if not add_new:
            report.unmatched.append(unmatched)
            continue
        draft = _draft(unmatched.item, taken_ids, citekey_owners)
        if isinstance(draft, str):
            report.unmatched.append(Unmatched(unmatched.item, draft))
            continue
        try:
            path = store.create_entry(draft)
        except (ValueError, FileExistsError) as error:
            report.unmatched.append(Unmatched(unmatched.item, f"cannot draft an entry: {error}"))
            continue
        taken_ids.add(draft["id"])
        citekey_owners[draft["citekey"]] = draft["id"]
        report.created.append((draft["id"], path, unmatched.item))
    return report


# ----------------------------------------------------------------------------- reporting


def show(value: Any) -> str:
    """A field value for the change list.

    Examples:
        >>> show(None), show("Reformer"), show(["Yi Tay"]), show(2020)
        ('(absent)', '"Reformer"', '["Yi Tay"]', '2020')
    """
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


def _title(item: MappedItem) -> str:
    title = item.fields.get("title", "(untitled)")
    return title if len(title) <= 70 else title[:67] + "..."


def print_report(report: SyncReport, console: Console, dry_run: bool, root: Path) -> None:
    """The changes entry by entry and field by field, then what needs a person."""
    would = "would " if dry_run else ""
    for entry_id, reason, changes in report.deleted:
        console.say(f"{would}flag {entry_id}: Zotero item {reason} (entry kept)")
        for change in changes:
            console.say(f"    {change.field}: {show(change.old)} -> {show(change.new)}")
    for match, changes in report.updated:
        console.say(
            f"{would}update {match.entry_id} (from {match.item.label}, matched by {match.how}):"
        )
        for change in changes:
            console.say(f"    {change.field}: {show(change.old)} -> {show(change.new)}")
    for entry_id, path, item in report.created:
        shown = path.relative_to(root.parent) if path.is_relative_to(root.parent) else path
        console.say(f"{would}create draft {entry_id} ({shown}) from {item.label}")
    for unmatched in report.unmatched:
        console.say(
            f"unmatched {unmatched.item.label} {_title(unmatched.item)!r}: {unmatched.reason}"
        )
    for conflict in report.conflicts:
        console.say(f"conflict {conflict.item.label} {_title(conflict.item)!r}: {conflict.reason}")
    for entry_id, why in report.failed:
        console.say(f"not updated {entry_id}: {why}")
    for warning in report.warnings:
        console.say(f"warning: {warning}")
    if report.unmatched and not any(u.reason.startswith("cannot") for u in report.unmatched):
        console.say("(use --add-new to create draft entries for unmatched items)")


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python tools/sync_zotero.py",
        description="Sync the catalog's citation fields from a Zotero library.",
        epilog=f"The API key is read from ${API_KEY_VARIABLE}; public groups need none.",
    )
    library = parser.add_argument_group("library")
    library.add_argument("--library-type", choices=("user", "group"))
    library.add_argument("--library-id", type=int, help="numeric user or group ID")
    library.add_argument("--collection", metavar="KEY", help="only this collection's items")
    library.add_argument("--tag", metavar="T", help="only items with this tag")
    library.add_argument("--local", action="store_true", help="read the Zotero desktop's local API")
    library.add_argument(
        "--api-url", metavar="URL", help="another server speaking the Zotero Web API"
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
    network.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    network.add_argument("--retries", type=int, default=3, help="retries of a failed request")
    network.add_argument(
        "--retry-delay", type=float, default=1.0, help="first wait before a retry; doubles"
    )
    args = parser.parse_args(argv)
    if args.retries < 0 or args.timeout <= 0 or args.retry_delay < 0:
        parser.error("--timeout must be positive, --retries and --retry-delay not negative")
    return args


def run(args: argparse.Namespace, console: Console) -> int:
    store = Store(args.catalog, dry_run=args.dry_run)
    catalog = store.load()
    if catalog.problems:
        raise SyncError(
            f"the catalog has {len(catalog.problems)} problem(s), first {catalog.problems[0]}; "
            "fix them first (python -m tools.catalog check)"
        )
    fetched = fetch_from_file(args) if args.from_file else fetch_from_api(args, store)
    report = synchronise(store, catalog, fetched, args.add_new)
    watermark = fetched.watermark
    # An entry that could not be updated must be fetched again next time: keep the old
    # library version rather than moving past the item.
    advance = watermark is not None and not report.failed
    if advance and store.read_data(watermark.path) != watermark.as_json():
        store.write_data(watermark.path, watermark.as_json())
    store.commit()  # entries and watermark together, all or nothing
    if fetched.note:
        skipped = f"; skipped {report.skipped} notes/attachments" if report.skipped else ""
        console.say(fetched.note + skipped)
    print_report(report, console, args.dry_run, store.root)
    console.say(
        ("dry run, nothing written; " if args.dry_run else "") + "summary: " + report.summary()
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
    args = parse_args(argv)
    console = Console([os.environ.get(API_KEY_VARIABLE)], out=out)
    try:
        return run(args, console)
    except (SyncError, ZoteroError) as error:
        console.warn(f"error: {error}")
    except KeyboardInterrupt:
        console.warn("interrupted; nothing written")
        return 130
    except Exception as error:  # an unexpected failure still gets one redacted line
        console.warn(f"error: unexpected {type(error).__name__}: {error}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
