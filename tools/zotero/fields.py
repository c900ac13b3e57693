"""Readers of single Zotero fields: authors, year, DOI, arXiv id, citation key, venue, URL.

Each reader takes Zotero's data as it is (a missing field, an empty string or a value of
the wrong type are all "no value") and gives a value in the catalog's format, or None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tools.catalog import FORMATS
from tools.catalog.names import fold
from tools.zotero.record import clean_text

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
_ARXIV_VENUE = re.compile(r"^(?:arxiv\s+preprint\s+)?arxiv:", re.IGNORECASE)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
# Better BibTeX's own pattern for a pinned key in Extra (content/key-manager/get-set.ts).
_CITATION_KEY_LINE = re.compile(r"(?:^|\s)Citation Key:[^\S\n]*([^\s]*)(?:\s|$)", re.IGNORECASE)
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# Words skipped when a citation key takes the first word of the title.


def valid(format_name: str, value: str) -> bool:
    """Whether ``value`` has the catalog's format ``format_name`` (see ``FORMATS``).

    Examples:
        >>> valid("doi", "10.1145/3530811"), valid("doi", "not a doi")
        (True, False)
    """
    return re.fullmatch(FORMATS[format_name][0], value) is not None


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
    return text if text and valid("doi", text) else None


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
    return next((found for found in candidates if found and valid("arxiv", found)), None)


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
        return native if valid("citekey", native) else None
    extra = data.get("extra")
    match = _CITATION_KEY_LINE.search(extra) if isinstance(extra, str) else None
    key = match.group(1) if match else ""
    return key if key and valid("citekey", key) else None


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
    return url if url and valid("url", url) else None


def normalised_title(title: Any) -> str:
    """A title reduced for comparison: case, accents, punctuation and spacing dropped.

    Examples:
        >>> normalised_title("Reformer: The  Efficient Transformer.")
        'reformer the efficient transformer'
        >>> normalised_title("Nyströmformer") == normalised_title("Nystromformer")
        True
        >>> normalised_title("Łukasz Kaiser")  # the catalog's one folding, tools.catalog.names.fold
        'lukasz kaiser'
    """
    return " ".join(re.sub(r"[^0-9a-z]+", " ", fold(clean_text(title)).casefold()).split())
