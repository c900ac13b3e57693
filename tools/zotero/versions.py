"""A preprint of a published entry: when it may be linked, and what the entry keeps.

The catalog cites a paper as published (venue, DOI, and the title, authors and year as
printed, plus the ``publication`` fields, which are no citation field and never synced);
a Zotero library often holds its arXiv preprint instead. An entry is *published* when it
has a publisher's DOI (not an arXiv DOI) or a venue that is no preprint server
("ICLR 2021"). A Zotero item is a *preprint* when :func:`tools.zotero.mapping.map_record`
says so and it has no publisher's DOI of its own.

Such an item is linked to the entry when its arXiv id is exactly the entry's (and no
other item of the run fits the entry), or when the entry's ``zotero:`` key, written by
an earlier sync or by hand, names it. Linked, it writes the link (``zotero``) and fills
only the citation fields the entry lacks: it never replaces a value the published entry
has (:data:`PROTECTED`). What the entry kept is reported, one line per entry.

Examples:
    >>> from tools.zotero.mapping import map_record
    >>> from tools.zotero.record import ZoteroRecord
    >>> entry = {"title": "Routing Transformers", "venue": "TACL 2021",
    ...          "doi": "10.1162/tacl_a_00353", "arxiv": "2003.05997"}
    >>> item = map_record(ZoteroRecord({"itemType": "preprint", "repository": "arXiv",
    ...     "title": "Routing Transformers", "archiveID": "arXiv:2003.05997"},
    ...     library="groups/1", key="RTNG5PR6"))
    >>> published_as(entry), is_preprint_of(item, entry)
    ('DOI 10.1162/tacl_a_00353', True)
    >>> fields, kept = preprint_fields(item, entry)
    >>> fields
    {'zotero': {'library': 'groups/1', 'key': 'RTNG5PR6'}}
    >>> kept
    ['venue', 'doi']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.zotero.fields import is_arxiv_doi
from tools.zotero.mapping import MappedItem

# The citation fields a preprint never replaces in a published entry, in report order.
PROTECTED = ("venue", "doi", "title", "authors", "year", "url", "citekey", "arxiv")


def published_as(entry: Mapping[str, Any]) -> str | None:
    """What makes ``entry`` a published version (its DOI, else its venue), or None.

    Examples:
        >>> published_as({"venue": "ICLR 2021"})
        'venue ICLR 2021'
        >>> published_as({"venue": "arXiv preprint", "doi": "10.48550/arXiv.2006.04768"})
        >>> published_as({})
    """
    doi = entry.get("doi")
    if isinstance(doi, str) and doi and not is_arxiv_doi(doi.lower()):
        return f"DOI {doi}"
    venue = entry.get("venue")
    if isinstance(venue, str) and venue and "preprint" not in venue.casefold():
        return f"venue {venue}"
    return None


def is_preprint_of(item: MappedItem, entry: Mapping[str, Any]) -> bool:
    """Whether ``item`` is a preprint and ``entry`` a published version."""
    return item.preprint and not item.fields.get("doi") and published_as(entry) is not None


def same_arxiv(item: MappedItem, entry: Mapping[str, Any]) -> bool:
    """Whether the item and the entry carry one arXiv id, exactly.

    Examples:
        >>> from tools.zotero.mapping import map_record
        >>> from tools.zotero.record import ZoteroRecord
        >>> item = map_record(ZoteroRecord({"archiveID": "arXiv:1911.02972"}))
        >>> same_arxiv(item, {"arxiv": "1911.02972"}), same_arxiv(item, {})
        (True, False)
    """
    arxiv = entry.get("arxiv")
    return bool(arxiv) and item.fields.get("arxiv") == arxiv


def preprint_fields(item: MappedItem, entry: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The fields a preprint writes into a published entry, and the entry's fields it kept.

    Returns:
        The link and the citation fields the entry lacks; and, in :data:`PROTECTED`
        order, the names of the fields the entry kept: its venue and DOI, and every
        other field the preprint has another value for.
    """
    fields = {
        name: value
        for name, value in item.fields.items()
        if name == "zotero" or entry.get(name) in (None, "", [])
    }
    kept = [
        name
        for name in PROTECTED
        if entry.get(name) not in (None, "", [])
        and item.fields.get(name) != entry[name]
        and (name in ("venue", "doi") or name in item.fields)
    ]
    return fields, kept
