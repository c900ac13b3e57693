"""The plan of a sync: which entries to update, flag, draft or leave to a person.

Every change is staged in the catalog's :class:`~tools.catalog.Store`; nothing is written
until the caller commits, so a failure anywhere leaves the catalog as it was. Zotero is
the source of the citation fields only; the sync never touches anything else. A preprint
linked to a published entry fills only what the entry lacks (:mod:`tools.zotero.versions`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.catalog import CITATION_FIELDS, Catalog, FieldChange, Store
from tools.zotero.drafts import draft_entry
from tools.zotero.fetch import Fetched
from tools.zotero.mapping import MappedItem, map_record
from tools.zotero.matching import Conflict, Matched, Shadowed, Unmatched, match_items
from tools.zotero.record import ZoteroRecord
from tools.zotero.versions import is_preprint_of, preprint_fields


@dataclass(frozen=True)
class Flagged:
    """An entry whose Zotero item is gone: its link is marked ``deleted``, the entry is kept.

    Attributes:
        entry_id: The entry.
        reason: Which item and what happened to it.
        changes: The field changes made.
    """

    entry_id: str
    reason: str
    changes: list[FieldChange]


@dataclass(frozen=True)
class Created:
    """A draft entry made for an unmatched item."""

    entry_id: str
    path: Path
    item: MappedItem


@dataclass(frozen=True)
class Failed:
    """An entry that could not be changed (its file is broken), or an item refused, and why."""

    entry_id: str
    reason: str


@dataclass(frozen=True)
class Updated:
    """A matched entry whose citation fields change.

    Attributes:
        kept: When the item is a preprint of the published entry, the entry's values it
            did not replace, as ``(field, value)`` (see :mod:`tools.zotero.versions`).
    """

    match: Matched
    changes: list[FieldChange]
    kept: tuple[tuple[str, Any], ...] = ()


@dataclass
class SyncReport:
    """Everything a run did or would do, for the report and the summary."""

    updated: list[Updated] = field(default_factory=list)
    unchanged: list[Matched] = field(default_factory=list)
    created: list[Created] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    shadowed: list[Shadowed] = field(default_factory=list)
    deleted: list[Flagged] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0

    def summary(self) -> str:
        """The counts line.

        Examples:
            >>> SyncReport().summary()
            'updated 0, unchanged 0, new 0, unmatched 0, deleted 0, conflicts 0'
        """
        counts = [
            ("updated", len(self.updated)),
            ("unchanged", len(self.unchanged)),
            ("new", len(self.created)),
            ("unmatched", len(self.unmatched)),
            ("deleted", len(self.deleted)),
            ("conflicts", len(self.conflicts)),
        ]
        if self.shadowed:
            counts.append(("other versions", len(self.shadowed)))
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
            report.failed.append(Failed(entry_id, str(error)))
            continue
        fields["zotero"] = new_link
        reason = f"{link['library']}/{link['key']} {reason}"
        report.deleted.append(Flagged(entry_id, reason, changes))


def _update(
    store: Store,
    match: Matched,
    entry: dict[str, Any],
    citekey_owners: dict[str, str],
    report: SyncReport,
) -> None:
    fields = dict(match.item.fields)
    kept: list[str] = []
    if is_preprint_of(match.item, entry):  # never downgrade a published entry
        fields, kept = preprint_fields(match.item, entry)
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
        report.failed.append(Failed(match.entry_id, str(error)))
        return
    if changes:
        report.updated.append(Updated(match, changes, tuple((k, entry[k]) for k in kept)))
        if "citekey" in fields:
            citekey_owners[fields["citekey"]] = match.entry_id
    else:
        report.unchanged.append(match)


def _accepted(
    records: list[ZoteroRecord], secrets: Sequence[str], report: SyncReport
) -> list[MappedItem]:
    """The items that may be written: one holding a secret (a server that echoes the API
    key into a title) is refused whole; a value that breaks its format is left out."""
    accepted = []
    for record in records:
        item = map_record(record)
        text = json.dumps([item.fields, item.label], ensure_ascii=False)
        if any(secret in text for secret in secrets):
            reason = "its fields contain the API key (echoed by the server?); not written"
            report.failed.append(Failed(item.label, reason))
            continue
        report.warnings.extend(f"{item.label}: {note}; left out" for note in item.refused)
        accepted.append(item)
    return accepted


def synchronise(
    store: Store,
    catalog: Catalog,
    fetched: Fetched,
    add_new: bool,
    secrets: Sequence[str] = (),
) -> SyncReport:
    """Stage every change the fetched items call for; nothing is written until commit.

    Args:
        secrets: Values never to write (the API key), wherever an item holds them.
    """
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
    result = match_items(_accepted(live, [s for s in secrets if s], report), view)
    report.conflicts = result.conflicts
    report.shadowed = result.shadowed
    citekey_owners = {entry.citekey: entry_id for entry_id, entry in catalog.entries.items()}
    for match in result.matched:
        _update(store, match, view[match.entry_id], citekey_owners, report)
    taken_ids = set(catalog.entries)  # the sync refuses a catalog with invalid files
    for unmatched in result.unmatched:
        if not add_new:
            report.unmatched.append(unmatched)
            continue
        draft = draft_entry(unmatched.item, taken_ids, citekey_owners)
        if isinstance(draft, str):
            report.unmatched.append(Unmatched(unmatched.item, draft))
            continue
        try:
            path = store.create_entry(draft.entry_data())
        except (ValueError, FileExistsError) as error:
            report.unmatched.append(Unmatched(unmatched.item, f"cannot draft an entry: {error}"))
            continue
        taken_ids.add(draft.id)
        citekey_owners[draft.citekey] = draft.id
        report.created.append(Created(draft.id, path, unmatched.item))
    return report
