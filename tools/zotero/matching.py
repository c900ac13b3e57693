"""Which catalog entry a Zotero item is: stored key, then DOI, then arXiv id, then title.

The order goes from certain to likely. A link written by an earlier sync (the entry's
``zotero`` library and key) is certain. A shared DOI or arXiv id is nearly so; a
normalised title is a good guess. Anything that is not clear-cut is reported and left
alone, never guessed:

* an id or title that fits two entries;
* a preprint and its published version with different ids (two different DOIs, two
  different arXiv ids), or a preprint of a published entry (:mod:`tools.zotero.versions`)
  without the entry's arXiv id to prove it;
* two Zotero items that would land on the same entry (a preprint and its published
  version both kept in Zotero, or plain duplicates).

The entry's ``zotero:`` link, written by an earlier sync or by hand, always wins: an item
that fits an entry linked to another (live) item is :class:`Shadowed`, said and left
alone, not a conflict. Writing the key by hand is how a person settles a conflict.

Entries are given as plain mappings of their citation fields (``title``, ``doi``,
``arxiv``, ``zotero``), so the rules can be read and tested without files.

Examples:
    >>> from tools.zotero.mapping import map_record
    >>> from tools.zotero.record import ZoteroRecord
    >>> entries = {
    ...     "reformer": {"title": "Reformer: The Efficient Transformer", "arxiv": "2001.04451"},
    ...     "performer": {"title": "Rethinking Attention with Performers", "arxiv": "2009.14794"},
    ... }
    >>> preprint = map_record(ZoteroRecord(
    ...     {"itemType": "preprint", "title": "Reformer", "archiveID": "arXiv:2001.04451"},
    ...     library="groups/1", key="AAAA2222"))
    >>> published = map_record(ZoteroRecord(
    ...     {"itemType": "conferencePaper", "title": "Reformer: the efficient transformer"},
    ...     library="groups/1", key="BBBB3333"))
    >>> performer = map_record(ZoteroRecord(
    ...     {"title": "Rethinking attention with Performers"}, library="groups/1", key="CCCC4444"))
    >>> result = match_items([preprint, published, performer], entries)
    >>> [(m.entry_id, m.how) for m in result.matched]
    [('performer', 'title')]
    >>> [c.item.label for c in result.conflicts]
    ['groups/1/AAAA2222', 'groups/1/BBBB3333']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.zotero.fields import normalised_title
from tools.zotero.mapping import MappedItem
from tools.zotero.versions import is_preprint_of, published_as, same_arxiv


@dataclass(frozen=True)
class Matched:
    """An item and the entry it is; ``how`` is key, doi, arxiv or title."""

    item: MappedItem
    entry_id: str
    how: str


@dataclass(frozen=True)
class Unmatched:
    """An item that is no entry of the catalog."""

    item: MappedItem
    reason: str


@dataclass(frozen=True)
class Conflict:
    """An item that fits the catalog in more than one way; reported, never applied."""

    item: MappedItem
    reason: str


@dataclass(frozen=True)
class Shadowed:
    """An item that fits an entry whose ``zotero:`` link names another item: the link wins."""

    item: MappedItem
    entry_id: str
    linked: str


@dataclass
class MatchResult:
    matched: list[Matched] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    shadowed: list[Shadowed] = field(default_factory=list)


def _doi_key(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


@dataclass
class CatalogIndex:
    """The catalog's entries looked up by Zotero link, DOI, arXiv id and normalised title."""

    entries: Mapping[str, Mapping[str, Any]]
    by_link: dict[tuple[str, str], str] = field(default_factory=dict)
    by_doi: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_arxiv: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_title: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, entries: Mapping[str, Mapping[str, Any]]) -> CatalogIndex:
        index = cls(entries)
        for entry_id, fields in entries.items():
            link = fields.get("zotero") or {}
            if link.get("library") and link.get("key"):
                index.by_link[(link["library"], link["key"])] = entry_id
            doi, title = _doi_key(fields.get("doi")), normalised_title(fields.get("title"))
            if doi:
                index.by_doi[doi].append(entry_id)
            if fields.get("arxiv"):
                index.by_arxiv[fields["arxiv"]].append(entry_id)
            if title:
                index.by_title[title].append(entry_id)
        return index


def id_clash(entry: Mapping[str, Any], item: MappedItem) -> str | None:
    """Why ``item`` looks like another version of ``entry`` (ids that disagree), or None.

    Examples:
        >>> from tools.zotero.mapping import map_record
        >>> from tools.zotero.record import ZoteroRecord
        >>> entry = {"doi": "10.1145/3530811", "arxiv": "2009.06732"}
        >>> id_clash(entry, map_record(ZoteroRecord({"DOI": "10.1145/3530811"}))) is None
        True
        >>> print(id_clash(entry, map_record(ZoteroRecord({"archiveID": "arXiv:2009.06733"}))))
        different arXiv ids (entry 2009.06732, Zotero 2009.06733)
        >>> id_clash(entry, map_record(ZoteroRecord(  # its preprint, by the same arXiv id
        ...     {"itemType": "preprint", "archiveID": "arXiv:2009.06732"}))) is None
        True
        >>> print(id_clash(entry, map_record(ZoteroRecord({"itemType": "preprint"}))))
        ... # doctest: +NORMALIZE_WHITESPACE
        the Zotero item is a preprint without the entry's arXiv id; the entry is the published
        version (DOI 10.1145/3530811): to link them, write its key in the entry's zotero field
    """
    entry_doi, item_doi = _doi_key(entry.get("doi")), _doi_key(item.fields.get("doi"))
    if entry_doi and item_doi and entry_doi != item_doi:
        return f"different DOIs (entry {entry['doi']}, Zotero {item.fields['doi']})"
    entry_arxiv, item_arxiv = entry.get("arxiv"), item.fields.get("arxiv")
    if entry_arxiv and item_arxiv and entry_arxiv != item_arxiv:
        return f"different arXiv ids (entry {entry_arxiv}, Zotero {item_arxiv})"
    if is_preprint_of(item, entry) and not same_arxiv(item, entry):
        return (
            "the Zotero item is a preprint without the entry's arXiv id; the entry is the "
            f"published version ({published_as(entry)}): to link them, write its key in "
            "the entry's zotero field"
        )
    return None


def _linked_elsewhere(entry: Mapping[str, Any], item: MappedItem) -> str | None:
    """The other Zotero item ``entry`` is already linked to, unless that one was deleted."""
    link = entry.get("zotero") or {}
    if not link or link.get("deleted"):
        return None
    if (link.get("library"), link.get("key")) == (item.record.library, item.record.key):
        return None
    return f"{link.get('library')}/{link.get('key')}"


def match_item(item: MappedItem, index: CatalogIndex) -> Matched | Unmatched | Conflict | Shadowed:
    """Find the entry of one item, without regard to the other items of the run."""
    record = item.record
    if record.library and record.key and (record.library, record.key) in index.by_link:
        return Matched(item, index.by_link[(record.library, record.key)], "key")
    lookups = (
        ("doi", "DOI", index.by_doi.get(_doi_key(item.fields.get("doi")) or "")),
        ("arxiv", "arXiv id", index.by_arxiv.get(item.fields.get("arxiv") or "")),
        ("title", "title", index.by_title.get(normalised_title(item.fields.get("title")))),
    )
    for how, what, candidates in lookups:
        if not candidates:
            continue
        if len(candidates) > 1:
            return Conflict(
                item, f"its {what} fits {len(candidates)} entries: {', '.join(sorted(candidates))}"
            )
        entry_id = candidates[0]
        entry = index.entries[entry_id]
        other = _linked_elsewhere(entry, item)
        if other:
            return Shadowed(item, entry_id, other)
        clash = id_clash(entry, item)
        if clash:
            return Conflict(item, f"its {what} fits {entry_id}, but {clash}")
        return Matched(item, entry_id, how)
    return Unmatched(item, "no entry has its Zotero key, DOI, arXiv id or title")


def match_items(
    items: Sequence[MappedItem], entries: Mapping[str, Mapping[str, Any]]
) -> MatchResult:
    """Match every item; items that would land on one entry are reported unless one is linked.

    Args:
        items: Bibliographic, untrashed items.
        entries: Entry id → citation fields (``title``, ``doi``, ``arxiv``, ``zotero``).
    """
    index = CatalogIndex.build(entries)
    result = MatchResult()
    claims: dict[str, list[Matched]] = defaultdict(list)
    for item in items:
        outcome = match_item(item, index)
        if isinstance(outcome, Matched):
            claims[outcome.entry_id].append(outcome)
        elif isinstance(outcome, Conflict):
            result.conflicts.append(outcome)
        elif isinstance(outcome, Shadowed):
            result.shadowed.append(outcome)
        else:
            result.unmatched.append(outcome)
    for entry_id, claimants in claims.items():
        if len(claimants) == 1:
            result.matched.append(claimants[0])
            continue
        # The item the entry is already linked to keeps it; the others are reported.
        linked = [claim for claim in claimants if claim.how == "key"]
        winner = linked[0] if len(linked) == 1 else None
        if winner is not None:
            result.matched.append(winner)
        labels = ", ".join(claim.item.label for claim in claimants)
        for claim in claimants:
            if claim is not winner:
                result.conflicts.append(
                    Conflict(
                        claim.item,
                        f"{len(claimants)} Zotero items fit {entry_id} ({labels}): "
                        "a preprint and its published version, or duplicates?",
                    )
                )
    result.matched.sort(key=lambda match: match.entry_id)
    result.conflicts.sort(key=lambda conflict: conflict.item.label)
    result.shadowed.sort(key=lambda shadowed: shadowed.item.label)
    return result
