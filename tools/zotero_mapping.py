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

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.catalog import FORMATS

# Item types that are not publications: never matched, never drafted.
NON_BIBLIOGRAPHIC_TYPES = frozenset({"note", "attachment", "annotation"})

# Zotero fields naming where a work appeared, in the order they are preferred.
VENUE_FIELDS: tuple[str, ...] = (
    "publicationTitle",
    "proceedingsTitle",
    "conferenceName",
    "bookTitle",
)
# Who issued a work that appeared in no journal or proceedings (books, reports, theses,
# web pages); used only after the venue fields and a preprint repository.
ISSUER_FIELDS: tuple[str, ...] = ("publisher", "institution", "university", "websiteTitle")

_ARXIV_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
_ARXIV_PREFIXED = re.compile(r"arxiv:\s*" + _ARXIV_ID, re.IGNORECASE)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\." + _ARXIV_ID + "$", re.IGNORECASE)
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf)/" + _ARXIV_ID, re.IGNORECASE)
_ARXIV_BARE = re.compile("^" + _ARXIV_ID + "$")
_ARXIV_VENUE = re.compile(r"^(?:arxiv\s+preprint\s+)?arxiv:", re.IGNORECASE)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
# Better BibTeX's own pattern for a pinned key in Extra (content/key-manager/get-set.ts).
_CITATION_KEY_LINE = re.compile(r"(?:^|\s)Citation Key:[^\S\n]*([^\s]*)(?:\s|$)", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# Words skipped when a citation key takes the first word of the title.
_STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "by", "do", "does", "for", "from", "how", "in", "is"}
    | {"it", "of", "on", "or", "the", "to", "towards", "via", "what", "when", "why", "with"}
)


def _valid(format_name: str, value: str) -> bool:
    return re.fullmatch(FORMATS[format_name][0], value) is not None


@dataclass(frozen=True)
class ZoteroRecord:
    """One Zotero item as read from the API or an export, before mapping.

    Attributes:
        data: The item's fields under Zotero's names (the API's ``data`` object).
        parsed_date: ``meta.parsedDate`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``) when known.
        library: ``users/<id>`` or ``groups/<id>`` when known.
        key: The 8-character item key when known.
    """

    data: Mapping[str, Any]
    parsed_date: str | None = None
    library: str | None = None
    key: str | None = None

    @property
    def item_type(self) -> str:
        return str(self.data.get("itemType") or "")

    @property
    def trashed(self) -> bool:
        """In Zotero's trash (``data.deleted``), so no longer part of the library's reading."""
        return bool(self.data.get("deleted"))

    @property
    def bibliographic(self) -> bool:
        """A publication: not a note, attachment or annotation, nor a child of another item."""
        return self.item_type not in NON_BIBLIOGRAPHIC_TYPES and not self.data.get("parentItem")

    @property
    def label(self) -> str:
        """How messages name the item: its library and key, else its title.

        Examples:
            >>> ZoteroRecord({"title": "X"}, library="groups/1", key="ABCD2345").label
            'groups/1/ABCD2345'
            >>> ZoteroRecord({"title": "Attention Is All You Need"}).label
            "'Attention Is All You Need'"
        """
        if self.library and self.key:
            return f"{self.library}/{self.key}"
        if self.key:
            return self.key
        return repr(clean_text(self.data.get("title")) or "(untitled)")


def record_from_api_item(item: Mapping[str, Any], library: str | None = None) -> ZoteroRecord:
    """A record from one item object of the Web or local API (``{key, library, meta, data}``).

    The library comes from the item itself when it says so, else from ``library``.

    Examples:
        >>> item = {"key": "HF7B8SJU", "library": {"type": "group", "id": 2480461},
        ...         "meta": {"parsedDate": "2022-12-07"}, "data": {"title": "T"}}
        >>> record = record_from_api_item(item)
        >>> record.library, record.key, record.parsed_date
        ('groups/2480461', 'HF7B8SJU', '2022-12-07')
    """
    data = item.get("data") if isinstance(item.get("data"), Mapping) else item
    meta = item.get("meta") if isinstance(item.get("meta"), Mapping) else {}
    owner = item.get("library") if isinstance(item.get("library"), Mapping) else {}
    kind, number = owner.get("type"), owner.get("id")
    if kind in ("user", "group") and isinstance(number, int) and number > 0:
        library = f"{kind}s/{number}"
    key = item.get("key") or data.get("key")
    parsed = meta.get("parsedDate")
    return ZoteroRecord(
        data=data,
        parsed_date=parsed if isinstance(parsed, str) else None,
        library=library,
        key=str(key) if key else None,
    )


# ----------------------------------------------------------------------------- fields


def clean_text(value: Any) -> str:
    """A field value as one trimmed line of text; anything not a string gives "".

    Examples:
        >>> clean_text("  Reformer:\\n  The Efficient   Transformer ")
        'Reformer: The Efficient Transformer'
        >>> clean_text(None)
        ''
    """
    return " ".join(value.split()) if isinstance(value, str) else ""


def creator_name(creator: Mapping[str, Any]) -> str:
    """A creator as "Given Family"; single-field creators (organisations) stay as they are.

    Examples:
        >>> creator_name({"creatorType": "author", "firstName": "Yi", "lastName": "Tay"})
        'Yi Tay'
        >>> creator_name({"creatorType": "author", "name": "Google Brain"})
        'Google Brain'
    """
    if clean_text(creator.get("name")):
        return clean_text(creator.get("name"))
    return " ".join(
        part
        for part in (clean_text(creator.get("firstName")), clean_text(creator.get("lastName")))
        if part
    )


def authors_of(creators: Any) -> list[str]:
    """The authors, in order; editors, translators and other creator roles are left out.

    Examples:
        >>> authors_of([
        ...     {"creatorType": "author", "firstName": "Ashish", "lastName": "Vaswani"},
        ...     {"creatorType": "editor", "name": "Somebody"},
        ...     {"creatorType": "author", "name": "Google Brain"},
        ... ])
        ['Ashish Vaswani', 'Google Brain']
    """
    if not isinstance(creators, Sequence):
        return []
    names = (
        creator_name(creator)
        for creator in creators
        if isinstance(creator, Mapping) and creator.get("creatorType", "author") == "author"
    )
    return [name for name in names if name]


def year_of(parsed_date: str | None, date: Any = None) -> int | None:
    """The year from ``meta.parsedDate``, else the first four-digit year in the free date.

    Old servers wrote zero parts (``1993-00-00``); only the year is read, so they are harmless.

    Examples:
        >>> year_of("1993-00-00")
        1993
        >>> year_of(None, "January 07 , 2011")
        2011
        >>> year_of(None, "") is None
        True
    """
    for text in (parsed_date, date):
        if isinstance(text, str):
            match = _YEAR.search(text)
            if match and 1000 <= int(match.group(1)) <= 2999:
                return int(match.group(1))
    return None


def normalise_doi(value: Any) -> str | None:
    """A bare DOI (``10.x/y``) from a DOI, a doi.org URL or ``doi:…``; None if not a DOI.

    Examples:
        >>> normalise_doi("https://doi.org/10.1145/3530811")
        '10.1145/3530811'
        >>> normalise_doi("doi: 10.1145/3530811")
        '10.1145/3530811'
        >>> normalise_doi("not a doi") is None
        True
    """
    text = _DOI_PREFIX.sub("", clean_text(value))
    return text if text and _valid("doi", text) else None


def is_arxiv_doi(doi: str | None) -> bool:
    """Whether ``doi`` is arXiv's DataCite DOI (``10.48550/arXiv.<id>``).

    Examples:
        >>> is_arxiv_doi("10.48550/arXiv.1810.04805"), is_arxiv_doi("10.1145/3530811")
        (True, False)
    """
    return bool(doi and _ARXIV_DOI.match(doi))


def arxiv_id_of(data: Mapping[str, Any]) -> str | None:
    """The arXiv id, without version, from ``archiveID``, ``extra``, an arXiv DOI or the URL.

    Examples:
        >>> arxiv_id_of({"archiveID": "arXiv:1810.04805"})
        '1810.04805'
        >>> arxiv_id_of({"extra": "PMID: 1\\narXiv:2009.14794 [cs, stat]"})
        '2009.14794'
        >>> arxiv_id_of({"DOI": "10.48550/ARXIV.2004.05150"})
        '2004.05150'
        >>> arxiv_id_of({"url": "https://arxiv.org/pdf/2007.14062v2.pdf"})
        '2007.14062'
        >>> arxiv_id_of({"archiveID": "arXiv:hep-th/9901001"})
        'hep-th/9901001'
        >>> arxiv_id_of({"publicationTitle": "arXiv preprint arXiv:2006.04768"})
        '2006.04768'
        >>> arxiv_id_of({"url": "https://example.org/1234.5678"}) is None
        True
    """
    candidates: list[str | None] = []
    # Old Zotero arXiv imports (and Google Scholar BibTeX) name the id in the journal field.
    sources = (data.get("archiveID"), data.get("extra"), data.get("publicationTitle"))
    for text in sources:
        match = _ARXIV_PREFIXED.search(text) if isinstance(text, str) else None
        candidates.append(match.group(1) if match else None)
    doi = normalise_doi(data.get("DOI"))
    doi_match = _ARXIV_DOI.match(doi) if doi else None
    candidates.append(doi_match.group(1) if doi_match else None)
    url_match = _ARXIV_URL.search(clean_text(data.get("url")))
    candidates.append(url_match.group(1) if url_match else None)
    return next((found for found in candidates if found and _valid("arxiv", found)), None)


def normalise_arxiv(value: Any) -> str | None:
    """A bare arXiv id from ``arXiv:2009.14794v2``, ``2009.14794`` or an arxiv.org URL.

    Examples:
        >>> normalise_arxiv("arXiv:2009.14794v2"), normalise_arxiv("2009.14794")
        ('2009.14794', '2009.14794')
        >>> normalise_arxiv("nonsense") is None
        True
    """
    text = clean_text(value)
    match = _ARXIV_PREFIXED.search(text) or _ARXIV_URL.search(text) or _ARXIV_BARE.match(text)
    return match.group(1) if match and _valid("arxiv", match.group(1)) else None


def citation_key_of(data: Mapping[str, Any]) -> str | None:
    """The citation key: the native ``citationKey`` field, else a pinned ``Citation Key:`` line.

    Keys that are not valid BibTeX keys are ignored rather than written.

    Examples:
        >>> citation_key_of({"citationKey": "tay2022efficient"})
        'tay2022efficient'
        >>> citation_key_of({"extra": "arXiv:2009.14794\\ncitation key: choromanski2021rethinking"})
        'choromanski2021rethinking'
        >>> citation_key_of({"citationKey": "", "extra": "PMID: 1"}) is None
        True
    """
    native = clean_text(data.get("citationKey"))
    if native:
        return native if _valid("citekey", native) else None
    extra = data.get("extra")
    match = _CITATION_KEY_LINE.search(extra) if isinstance(extra, str) else None
    key = match.group(1) if match else ""
    return key if key and _valid("citekey", key) else None


def venue_of(data: Mapping[str, Any], arxiv: str | None = None) -> str | None:
    """Where the work appeared: journal, proceedings, conference or book; else the repository.

    Works that appeared in none of these (books, reports) fall back to their publisher.

    A repository (a preprint server) reads "<repository> preprint", the catalog's wording.
    Old Zotero arXiv imports put ``arXiv:<id> [cs]`` in the journal field; that is a
    preprint too.

    Examples:
        >>> venue_of({"publicationTitle": "ACM Computing Surveys"})
        'ACM Computing Surveys'
        >>> venue_of({"proceedingsTitle": "", "conferenceName": "ICLR 2021"})
        'ICLR 2021'
        >>> venue_of({"itemType": "preprint", "repository": "arXiv"})
        'arXiv preprint'
        >>> venue_of({"publicationTitle": "arXiv:1706.03762 [cs]"})
        'arXiv preprint'
        >>> venue_of({"publicationTitle": "arXiv preprint arXiv:2006.04768"})
        'arXiv preprint'
        >>> venue_of({"itemType": "report"}, arxiv="1706.03762")
        'arXiv preprint'
        >>> venue_of({"itemType": "book", "publisher": "Oxford University Press"})
        'Oxford University Press'
    """
    for name in VENUE_FIELDS:
        venue = clean_text(data.get(name))
        if venue:
            return "arXiv preprint" if _ARXIV_VENUE.match(venue) else venue
    repository = clean_text(data.get("repository"))
    if repository:
        return repository if "preprint" in repository.lower() else f"{repository} preprint"
    if arxiv:
        return "arXiv preprint"
    return next(
        (clean_text(data.get(name)) for name in ISSUER_FIELDS if clean_text(data.get(name))), None
    )


def url_of(data: Mapping[str, Any]) -> str | None:
    """The item's URL when it is an http(s) URL.

    Examples:
        >>> url_of({"url": "http://arxiv.org/abs/1810.04805"})
        'http://arxiv.org/abs/1810.04805'
        >>> url_of({"url": "zotero://select/library/items/ABCD2345"}) is None
        True
    """
    url = clean_text(data.get("url"))
    return url if url and _valid("url", url) else None


def fallback_url(fields: Mapping[str, Any]) -> str | None:
    """A URL for a new entry whose Zotero item has none: the DOI's, arXiv's or Zotero's page.

    Examples:
        >>> fallback_url({"doi": "10.1145/3530811", "arxiv": "2009.06732"})
        'https://doi.org/10.1145/3530811'
        >>> fallback_url({"arxiv": "1810.04805"})
        'https://arxiv.org/abs/1810.04805'
        >>> fallback_url({"zotero": {"library": "groups/2480461", "key": "HF7B8SJU"}})
        'https://www.zotero.org/groups/2480461/items/HF7B8SJU'
    """
    if fields.get("doi"):
        return f"https://doi.org/{fields['doi']}"
    if fields.get("arxiv"):
        return f"https://arxiv.org/abs/{fields['arxiv']}"
    link = fields.get("zotero")
    return f"https://www.zotero.org/{link['library']}/items/{link['key']}" if link else None


def normalised_title(title: Any) -> str:
    """A title reduced for comparison: case, accents, punctuation and spacing dropped.

    Examples:
        >>> normalised_title("Reformer: The  Efficient Transformer.")
        'reformer the efficient transformer'
        >>> normalised_title("Nyströmformer") == normalised_title("Nystromformer")
        True
    """
    text = unicodedata.normalize("NFKD", clean_text(title))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


# ----------------------------------------------------------------------------- the mapping


@dataclass(frozen=True)
class MappedItem:
    """A record with its citation fields, ready for matching.

    Attributes:
        record: Where it came from.
        fields: The citation fields Zotero has values for (catalog names, catalog formats).
        preprint: The item is a preprint (a preprint type, a repository, or an arXiv DOI),
            which matters when the catalog entry is a published version.
    """

    record: ZoteroRecord
    fields: dict[str, Any] = field(default_factory=dict)
    preprint: bool = False

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
    if record.library and record.key and _valid("library", record.library):
        fields["zotero"] = {"library": record.library, "key": record.key}
    return {name: value for name, value in fields.items() if value is not None}


def map_record(record: ZoteroRecord) -> MappedItem:
    """Map ``record`` to a :class:`MappedItem` (fields plus whether it is a preprint)."""
    doi = normalise_doi(record.data.get("DOI"))
    preprint = (
        record.item_type == "preprint"
        or bool(clean_text(record.data.get("repository")))
        or is_arxiv_doi(doi)
    )
    return MappedItem(record=record, fields=citation_fields(record), preprint=preprint)


# ----------------------------------------------------------------------------- new entries


def ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` (accents folded, punctuation dropped).

    Examples:
        >>> ascii_words("Nyströmformer: A Nyström-Based Algorithm")
        ['nystromformer', 'a', 'nystrom', 'based', 'algorithm']
    """
    return normalised_title(text).split()


def make_citekey(authors: Sequence[str], year: int, title: str, taken: Iterable[str] = ()) -> str:
    """A Google-Scholar-style key, first author's family name + year + first title word.

    A letter is appended when the key is taken.

    Examples:
        >>> make_citekey(["Krzysztof Choromanski"], 2021, "Rethinking Attention with Performers")
        'choromanski2021rethinking'
        >>> make_citekey(["Ashish Vaswani"], 2017, "Attention Is All You Need",
        ...              taken={"vaswani2017attention"})
        'vaswani2017attentionb'
        >>> make_citekey([], 2020, "The Efficient Transformer")
        'anonymous2020efficient'
    """
    family = ascii_words(authors[0])[-1:] if authors else []
    words = [word for word in ascii_words(title) if word not in _STOP_WORDS]
    base = f"{(family or ['anonymous'])[0]}{year}{words[0] if words else ''}"
    if not base[0].isalpha():
        base = f"k{base}"
    taken = set(taken)
    key, suffix = base, ord("b")
    while key in taken:
        key, suffix = f"{base}{chr(suffix)}", suffix + 1
    return key


def draft_name(title: str) -> str:
    """A model name for a draft: the part before a colon when short, else the title.

    Examples:
        >>> draft_name("Reformer: The Efficient Transformer")
        'Reformer'
        >>> draft_name("Attention Is All You Need")
        'Attention Is All You Need'
    """
    head, colon, _ = title.partition(":")
    return head.strip() if colon and 0 < len(head.split()) <= 4 else title.strip()


def draft_id(name: str, year: int | None, taken: Iterable[str] = ()) -> str:
    """A kebab-case id from the name (at most six words), made unique with the year or a number.

    Examples:
        >>> draft_id("Reformer", 2020)
        'reformer'
        >>> draft_id("Reformer", 2020, taken={"reformer"})
        'reformer-2020'
        >>> draft_id("Reformer", 2020, taken={"reformer", "reformer-2020"})
        'reformer-2020-2'
    """
    base = "-".join(ascii_words(name)[:6]) or "untitled"
    taken = set(taken)
    candidates = [base, f"{base}-{year}" if year else base]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{candidates[-1]}-{number}" in taken:
        number += 1
    return f"{candidates[-1]}-{number}"
