"""Zotero items → the catalog's citation fields.

A Zotero item, whether it came from the Web API, the local API or an export file, is
first held as a :class:`ZoteroRecord`: Zotero's own field names (``itemType``, ``title``,
``creators``, ``DOI``, ``extra``…) plus where it lives (library and item key). This
module turns a record into the citation fields of a catalog entry (see
``tools.catalog.CITATION_FIELDS``) and nothing else; matching and writing live elsewhere.

Only values Zotero actually has are produced: an empty Zotero field never erases a
catalog value, because an export or a half-filled item must not undo a person's work.

Examples:
    >>> record = ZoteroRecord(
    ...     data={
    ...         "itemType": "preprint",
    ...         "title": "Linformer: Self-Attention with Linear Complexity",
    ...         "creators": [
    ...             {"creatorType": "author", "firstName": "Sinong", "lastName": "Wang"},
    ...             {"creatorType": "editor", "firstName": "Ed", "lastName": "Itor"},
    ...         ],
    ...         "repository": "arXiv",
    ...         "archiveID": "arXiv:2006.04768",
    ...         "DOI": "10.48550/arXiv.2006.04768",
    ...         "url": "http://arxiv.org/abs/2006.04768",
    ...     },
    ...     parsed_date="2020-06-08",
    ...     library="groups/2480461",
    ...     key="LNF2RMR4",
    ... )
    >>> item = map_record(record)
    >>> item.fields["authors"], item.fields["year"], item.fields["venue"], item.fields["arxiv"]
    (['Sinong Wang'], 2020, 'arXiv preprint', '2006.04768')
    >>> "doi" in item.fields  # an arXiv DOI is the arXiv id again, not a publisher's DOI
    False
    >>> item.fields["zotero"]
    {'library': 'groups/2480461', 'key': 'LNF2RMR4'}
    >>> item.preprint
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.zotero.fields import (
    arxiv_id_of,
    authors_of,
    citation_key_of,
    is_arxiv_doi,
    normalise_doi,
    url_of,
    valid,
    venue_of,
    year_of,
)
from tools.zotero.record import ZoteroRecord, clean_text


@dataclass(frozen=True)
class MappedItem:
    """A record with its citation fields, ready for matching.

    Attributes:
        record: Where it came from.
        fields: The citation fields Zotero has values for (catalog names, catalog formats).
        preprint: The item is a preprint (a preprint type, a repository, or an arXiv DOI),
            which matters when the catalog entry is a published version.
        refused: Zotero values left out because they are not valid in their format (a
            DOI or web URL with a brace, a quote or a space would break BibTeX and links).
    """

    record: ZoteroRecord
    fields: dict[str, Any] = field(default_factory=dict)
    preprint: bool = False
    refused: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.record.label


def citation_fields(record: ZoteroRecord) -> dict[str, Any]:
    """The catalog's citation fields for ``record``; fields Zotero leaves empty are absent.

    Examples:
        >>> fields = citation_fields(ZoteroRecord({
        ...     "itemType": "journalArticle", "title": "Efficient Transformers: A Survey",
        ...     "creators": [{"creatorType": "author", "firstName": "Yi", "lastName": "Tay"}],
        ...     "publicationTitle": "ACM Computing Surveys", "DOI": "10.1145/3530811",
        ...     "extra": "arXiv:2009.06732\\nCitation Key: tay2022efficient", "date": "2022",
        ... }))
        >>> sorted(fields.items())  # doctest: +NORMALIZE_WHITESPACE
        [('arxiv', '2009.06732'), ('authors', ['Yi Tay']), ('citekey', 'tay2022efficient'),
         ('doi', '10.1145/3530811'), ('title', 'Efficient Transformers: A Survey'),
         ('venue', 'ACM Computing Surveys'), ('year', 2022)]
    """
    data = record.data
    arxiv = arxiv_id_of(data)
    doi = normalise_doi(data.get("DOI"))
    published_doi = None if is_arxiv_doi(doi) else doi
    fields: dict[str, Any] = {
        "title": clean_text(data.get("title")) or None,
        "authors": authors_of(data.get("creators")) or None,
        "year": year_of(record.parsed_date, data.get("date")),
        "venue": venue_of(data, arxiv),
        "arxiv": arxiv,
        "doi": published_doi,
        "url": url_of(data),
        "citekey": citation_key_of(data),
    }
    if record.library and record.key and valid("library", record.library):
        fields["zotero"] = {"library": record.library, "key": record.key}
    return {name: value for name, value in fields.items() if value is not None}


def refused_values(data: Any) -> tuple[str, ...]:
    """What of a DOI or a web URL Zotero has is no valid value, said for the report.

    A ``zotero://`` or ``file:`` URL is simply not a web page, and is left out silently.

    Examples:
        >>> for note in refused_values({"DOI": "10.1/x}@misc{", "url": "https://x.org/a b"}):
        ...     print(note)
        Zotero's DOI '10.1/x}@misc{' is not a valid DOI
        Zotero's URL 'https://x.org/a b' is not a valid URL
        >>> refused_values({"DOI": "10.1145/3530811", "url": "zotero://select/items/1_AB"})
        ()
    """
    notes = []
    doi = clean_text(data.get("DOI"))
    if doi and normalise_doi(doi) is None:
        notes.append(f"Zotero's DOI {doi[:80]!r} is not a valid DOI")
    url = clean_text(data.get("url"))
    if url.lower().startswith(("http://", "https://")) and url_of(data) is None:
        notes.append(f"Zotero's URL {url[:80]!r} is not a valid URL")
    return tuple(notes)


def map_record(record: ZoteroRecord) -> MappedItem:
    """Map ``record`` to a :class:`MappedItem` (fields, whether it is a preprint, what was
    refused)."""
    doi = normalise_doi(record.data.get("DOI"))
    preprint = (
        record.item_type == "preprint"
        or bool(clean_text(record.data.get("repository")))
        or is_arxiv_doi(doi)
    )
    return MappedItem(
        record=record,
        fields=citation_fields(record),
        preprint=preprint,
        refused=refused_values(record.data),
    )
