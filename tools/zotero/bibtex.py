"""BibTeX exports (Zotero's and Better BibTeX's, BibTeX or BibLaTeX flavour) as Zotero records.

Better BibTeX keys are stable and become ``citationKey``; keys of Zotero's stock export
(``last_title_2014``, ``-1`` suffixes) change with the export and are ignored. BibTeX
carries no Zotero key, so its entries are matched by DOI, arXiv id and title only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import bibtexparser
from bibtexparser.bparser import BibTexParser
from bibtexparser.customization import convert_to_unicode, splitname

from tools.zotero.errors import ExportError
from tools.zotero.record import ZoteroRecord

# Zotero's stock BibTeX export builds keys as author_title_year(-n); they are not stable.
_STOCK_BIBTEX_KEY = re.compile(r"^[a-z0-9]*_[a-z0-9]*_(?:\d{4})?(?:-\d+)?$")

_BIBTEX_ENTRY_START = re.compile(r"^\s*@(?!comment\b|string\b|preamble\b)\w+\s*[{(]", re.I | re.M)

_BIBTEX_TYPES: dict[str, str] = {
    "article": "journalArticle",
    "inproceedings": "conferencePaper",
    "conference": "conferencePaper",
    "book": "book",
    "incollection": "bookSection",
    "inbook": "bookSection",
    "techreport": "report",
    "report": "report",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "thesis": "thesis",
    "online": "webpage",
    "unpublished": "manuscript",
}


def records_from_bibtex(text: str, origin: str) -> list[ZoteroRecord]:
    """The records of a BibTeX export's ``text``; ``origin`` names it in errors."""
    return [_record_from_bibtex(entry) for entry in _parse_bibtex(text, origin)]


def _parse_bibtex(text: str, origin: str) -> list[dict[str, str]]:
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    parser.customization = convert_to_unicode
    try:
        database = bibtexparser.loads(text, parser=parser)
    except Exception as error:  # bibtexparser raises pyparsing's and its own errors
        raise ExportError(f"{origin}: malformed BibTeX: {error}") from None
    # bibtexparser 1 drops an entry it cannot parse without a word; count them ourselves.
    expected = len(_BIBTEX_ENTRY_START.findall(text))
    if len(database.entries) < expected:
        raise ExportError(
            f"{origin}: malformed BibTeX: only {len(database.entries)} of {expected} entries "
            "could be read"
        )
    return list(database.entries)


def _unbrace(value: str) -> str:
    """BibTeX text without its protective braces.

    Examples:
        >>> _unbrace("{BERT}: Pre-training of {Deep} Bidirectional Transformers")
        'BERT: Pre-training of Deep Bidirectional Transformers'
    """
    return " ".join(value.replace("{", "").replace("}", "").split())


def _split_authors(value: str) -> list[str]:
    """Names of a BibTeX ``author`` field, split on ``and`` outside braces.

    Examples:
        >>> _split_authors("Tay, Yi and {Google Research and Friends} and Yi Tay")
        ['Tay, Yi', '{Google Research and Friends}', 'Yi Tay']
    """
    names: list[str] = []
    current: list[str] = []
    depth = 0
    for token in re.split(r"(\s+and\s+|[{}])", value):
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        if depth == 0 and re.fullmatch(r"\s+and\s+", token or ""):
            names.append("".join(current).strip())
            current = []
        else:
            current.append(token)
    names.append("".join(current).strip())
    return [name for name in names if name]


def _bibtex_creator(name: str) -> dict[str, str]:
    """A BibTeX name as a Zotero creator; a fully braced name is an organisation.

    Examples:
        >>> _bibtex_creator("von Neumann, John")
        {'creatorType': 'author', 'firstName': 'John', 'lastName': 'von Neumann'}
        >>> _bibtex_creator("{Google Brain}")
        {'creatorType': 'author', 'name': 'Google Brain'}
    """
    if name.startswith("{") and name.endswith("}"):
        return {"creatorType": "author", "name": _unbrace(name)}
    try:
        parts = splitname(name, strict_mode=False)
    except Exception:  # an unusual name is kept whole rather than lost
        return {"creatorType": "author", "name": _unbrace(name)}
    family = " ".join(parts.get("von", []) + parts.get("last", []))
    if parts.get("jr"):
        family = f"{family}, {' '.join(parts['jr'])}"
    return {
        "creatorType": "author",
        "firstName": _unbrace(" ".join(parts.get("first", []))),
        "lastName": _unbrace(family),
    }


def _bibtex_arxiv(entry: Mapping[str, str]) -> str:
    """``arXiv:<id>`` from ``eprint`` when the eprint is an arXiv one."""
    eprint = entry.get("eprint", "")
    kind = (entry.get("archiveprefix") or entry.get("eprinttype") or "").lower()
    return f"arXiv:{eprint}" if eprint and (kind == "arxiv" or not kind) else ""


def _record_from_bibtex(entry: Mapping[str, str]) -> ZoteroRecord:
    """A BibTeX entry as Zotero fields.

    Examples:
        >>> record = _record_from_bibtex({"ENTRYTYPE": "misc", "ID": "wang_linformer_2020",
        ...     "title": "Linformer", "publisher": "arXiv", "number": "arXiv:2006.04768",
        ...     "year": "2020", "author": "Wang, Sinong"})
        >>> record.data["itemType"], record.data["repository"], record.data["citationKey"]
        ('preprint', 'arXiv', '')
    """
    entry_type = entry.get("ENTRYTYPE", "misc").lower()
    arxiv = _bibtex_arxiv(entry)
    number = entry.get("number", "")
    preprint = bool(arxiv or number.lower().startswith("arxiv:")) and entry_type not in (
        "article",
        "inproceedings",
        "conference",
    )
    item_type = "preprint" if preprint else _BIBTEX_TYPES.get(entry_type, "document")
    container = {"conferencePaper": "proceedingsTitle", "bookSection": "bookTitle"}.get(
        item_type, "publicationTitle"
    )
    key = entry.get("ID", "")
    # The note, howpublished and eprint lines are where exports leave arXiv ids and pinned keys.
    extra = "\n".join(
        value for value in (entry.get("note"), entry.get("howpublished"), arxiv) if value
    )
    data: dict[str, Any] = {
        "itemType": item_type,
        "title": _unbrace(entry.get("title", "")),
        "creators": [_bibtex_creator(name) for name in _split_authors(entry.get("author", ""))],
        "date": entry.get("date") or entry.get("year", ""),
        container: _unbrace(
            entry.get("journal") or entry.get("journaltitle") or entry.get("booktitle") or ""
        ),
        "DOI": entry.get("doi", ""),
        "url": entry.get("url", ""),
        "extra": extra,
        "citationKey": "" if _STOCK_BIBTEX_KEY.match(key) else key,
    }
    if preprint:
        data["repository"] = _unbrace(entry.get("publisher", "")) or ("arXiv" if arxiv else "")
        data["archiveID"] = number or arxiv
    return ZoteroRecord(data=data)
