"""Citations of catalog entries as BibTeX, CSL-JSON and plain JSON.

The entry type follows the venue: a journal gives ``@article``, a conference or
workshop ``@inproceedings``, a bare arXiv preprint ``@misc`` with its eprint. The
container, volume, issue, pages, publisher and series come from the entry's structured
``publication`` (BibTeX ``journal``/``booktitle``, ``volume``, ``number``, ``pages`` with
``--``, ``publisher``, ``series``; CSL ``container-title``, ``volume``, ``issue``,
``page``, ``publisher``, ``collection-title``). The year cited is the publication's
(``venue_year``), although ``year`` records when the paper first became public.

Examples:
    >>> from tools.catalog import load_catalog
    >>> entry = load_catalog().entries["performer"]
    >>> print(bibtex_entry(entry).splitlines()[0])
    @inproceedings{choromanski2021rethinking,
    >>> csl_item(entry)["issued"]
    {'date-parts': [[2021]]}
    >>> survey = bibtex_entry(load_catalog().entries["efficient-transformers-survey"])
    >>> [line.strip() for line in survey.splitlines() if "pages" in line or "journal" in line]
    ['journal = {ACM Computing Surveys},', 'pages = {1--28},']
"""

from __future__ import annotations

import json
import re
from typing import Any

from bibtexparser.bibdatabase import BibDatabase
from bibtexparser.bwriter import BibTexWriter

from tools.catalog.loader import Catalog
from tools.catalog.model import Entry

# Venue words that mark a journal rather than a conference.
_JOURNAL_MARKERS = ("journal", "jmlr", "transactions", "computing surveys", "tacl")
_BIBTEX_SPECIAL = re.compile(r"([&%$#_{}])")
# Lower-case name particles that belong to the family name ("van den Oord").
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "da", "di", "le", "la", "du"}


def venue_type(entry: Entry) -> str:
    """``journal``, ``conference`` or ``preprint``, from the venue string."""
    venue = entry.venue.lower()
    if venue.startswith("arxiv"):
        return "preprint"
    if any(marker in venue for marker in _JOURNAL_MARKERS):
        return "journal"
    return "conference"


def split_name(name: str) -> tuple[str, str]:
    """Split a "Given Family" name into (given, family), keeping particles with the family.

    Examples:
        >>> split_name("Aaron van den Oord")
        ('Aaron', 'van den Oord')
        >>> split_name("Yi Tay")
        ('Yi', 'Tay')
    """
    words = name.split()
    if len(words) == 1:
        return "", name
    cut = len(words) - 1
    while cut > 1 and words[cut - 1] in _PARTICLES:
        cut -= 1
    return " ".join(words[:cut]), " ".join(words[cut:])


def bibtex_text(text: str) -> str:
    """``text`` with BibTeX's special characters escaped."""
    return _BIBTEX_SPECIAL.sub(r"\\\1", text)


def bibtex_url(value: str) -> str:
    """A URL or DOI safe inside a braced BibTeX field: braces and backslashes percent-encoded.

    The catalog refuses such characters, but a record may be built from other input,
    and one stray ``}`` would close the field and let the rest write new records.

    Examples:
        >>> bibtex_url("https://x.org/}}@misc{pwned,")
        'https://x.org/%7D%7D@misc%7Bpwned,'
    """
    return value.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


def bibtex_record(entry_type: str, key: str, fields: list[tuple[str, str]]) -> str:
    """One BibTeX record written by bibtexparser, fields in the given order.

    ``fields`` hold (name, value) pairs whose values are already BibTeX (escaped, with
    any inner braces); empty values are left out.

    Examples:
        >>> print(bibtex_record("misc", "k", [("title", "{A}"), ("note", ""), ("year", "2020")]))
        @misc{k,
          title = {{A}},
          year = {2020}
        }
        <BLANKLINE>
    """
    database = BibDatabase()
    kept = [(name, value) for name, value in fields if value]
    database.entries = [{"ENTRYTYPE": entry_type, "ID": key, **dict(kept)}]
    writer = BibTexWriter()
    writer.indent = "  "
    writer.display_order = [name for name, _ in kept]
    writer.order_entries_by = None
    return writer.write(database)


def bibtex_entry(entry: Entry) -> str:
    """One BibTeX record; the title is braced so styles keep its capitals."""
    kind = venue_type(entry)
    fields: list[tuple[str, str]] = [
        ("title", "{" + bibtex_text(entry.title) + "}"),
        (
            "author",
            " and ".join(
                f"{bibtex_text(family)}, {bibtex_text(given)}" if given else bibtex_text(family)
                for given, family in map(split_name, entry.authors)
            ),
        ),
        ("year", str(entry.venue_year)),
    ]
    fields += _bibtex_container(entry, kind)
    if entry.doi:
        fields.append(("doi", bibtex_url(entry.doi)))
    if entry.arxiv:
        fields += [("eprint", entry.arxiv), ("archiveprefix", "arXiv")]
    fields.append(("url", bibtex_url(entry.url)))
    entry_type = {"journal": "article", "conference": "inproceedings", "preprint": "misc"}[kind]
    return bibtex_record(entry_type, entry.citekey, fields)


def _bibtex_container(entry: Entry, kind: str) -> list[tuple[str, str]]:
    """journal or booktitle, volume, number, pages, publisher and series of ``entry``."""
    if kind == "preprint":
        return []
    name = "journal" if kind == "journal" else "booktitle"
    publication = entry.publication
    if publication is None:  # a draft without its facts: the short venue, year removed
        return [(name, bibtex_text(re.sub(r",?\s*\b(19|20)\d{2}$", "", entry.venue)))]
    return [
        (name, bibtex_text(publication.container_title)),
        ("volume", publication.volume or ""),
        ("number", publication.issue or ""),
        ("articleno", publication.article or ""),
        ("pages", publication.pages_bibtex or ""),
        ("publisher", bibtex_text(publication.publisher or "")),
        ("series", bibtex_text(publication.series or "")),
    ]


def csl_item(entry: Entry) -> dict[str, Any]:
    """One CSL-JSON item (the format citeproc processors and Zotero read)."""
    kind = venue_type(entry)
    item: dict[str, Any] = {
        "id": entry.citekey,
        "type": {
            "journal": "article-journal",
            "conference": "paper-conference",
            "preprint": "article",
        }[kind],
        "title": entry.title,
        "author": [
            {"given": given, "family": family} if given else {"literal": family}
            for given, family in map(split_name, entry.authors)
        ],
        "issued": {"date-parts": [[entry.venue_year]]},
        "URL": entry.url,
    }
    if kind == "preprint":
        item["publisher"] = "arXiv"
        if entry.arxiv:
            item["number"] = f"arXiv:{entry.arxiv}"
    elif entry.publication is None:
        item["container-title"] = entry.venue
    else:
        publication = entry.publication
        item["container-title"] = publication.container_title
        optional = {
            "volume": publication.volume,
            "issue": publication.issue,
            "page": publication.pages,
            "publisher": publication.publisher,
            "collection-title": publication.series,
        }
        item.update({name: value for name, value in optional.items() if value})
    if entry.doi:
        item["DOI"] = entry.doi
    return item


def entry_json(entry: Entry) -> dict[str, Any]:
    """The entry as plain JSON, field names as in the YAML."""
    return entry.model_dump(mode="json", by_alias=True, exclude_none=True)


EXPORT_FORMATS = ("bibtex", "csljson", "json")


def render(catalog: Catalog, format: str) -> str:
    """The whole catalog in ``format`` (``bibtex``, ``csljson`` or ``json``), sorted by id."""
    entries = [catalog.entries[id] for id in sorted(catalog.entries)]
    if format == "bibtex":
        return "\n".join(bibtex_entry(entry) for entry in entries)
    if format in ("csljson", "json"):
        convert = csl_item if format == "csljson" else entry_json
        return (
            json.dumps([convert(entry) for entry in entries], indent=2, ensure_ascii=False) + "\n"
        )
    raise ValueError(f"unknown format {format!r}; expected bibtex, csljson or json")
