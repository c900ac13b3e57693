"""Zotero exports as :class:`ZoteroRecord` objects: CSL-JSON, BibTeX and Better BibTeX JSON.

``--from-file`` syncs from an export instead of the API. Every format is turned into
Zotero's own field names, so the mapping, matching and safety rules are the same as for
the API:

* **CSL-JSON** (Zotero's "CSL JSON" export, the API's ``format=csljson``, Better
  BibTeX's CSL JSON): a list of items, or ``{"items": [...]}``. Zotero's item URI in
  ``id`` (``http://zotero.org/groups/<id>/items/<KEY>``) gives the link.
* **BibTeX** (Zotero's and Better BibTeX's, BibTeX or BibLaTeX flavour). Better BibTeX
  keys are stable and become ``citekey``; keys of Zotero's stock export
  (``last_title_2014``, ``-1`` suffixes) change with the export and are ignored. BibTeX
  carries no Zotero key, so entries are matched by DOI, arXiv id and title only.
* **Better BibTeX JSON** (``{"config": …, "items": [...]}``): Zotero's fields plus
  ``citationKey``, ``itemKey`` and the item ``uri``.

Examples:
    >>> records = parse_export('''
    ... @article{tay2022efficient,
    ...   title = {Efficient {Transformers}: A Survey},
    ...   author = {Tay, Yi and Dehghani, Mostafa},
    ...   journal = {ACM Computing Surveys}, year = {2022}, doi = {10.1145/3530811},
    ... }''', "bibtex")
    >>> records[0].data["title"], records[0].data["citationKey"]
    ('Efficient Transformers: A Survey', 'tay2022efficient')
    >>> [creator["lastName"] for creator in records[0].data["creators"]]
    ['Tay', 'Dehghani']
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from tools.zotero.bibtex import records_from_bibtex
from tools.zotero.errors import ExportError
from tools.zotero.record import ZoteroRecord

ExportFormat = Literal["csljson", "bibtex", "bbt"]
EXPORT_FORMATS: tuple[str, ...] = ("auto", "csljson", "bibtex", "bbt")

_ITEM_URI = re.compile(r"zotero\.org/(users|groups)/(\d+)/items/([A-Z0-9]{8})\b")
_INTERNAL_ID = re.compile(r"^\d+/([A-Z0-9]{8})$")  # the API's CSL id: "<libraryID>/<KEY>"

_CSL_TYPES: dict[str, str] = {
    "article-journal": "journalArticle",
    "paper-conference": "conferencePaper",
    "article": "preprint",  # Zotero exports preprints as CSL "article"
    "book": "book",
    "chapter": "bookSection",
    "report": "report",
    "thesis": "thesis",
    "webpage": "webpage",
    "manuscript": "manuscript",
    "dataset": "dataset",
}


# ----------------------------------------------------------------------------- detection


def detect_format(path: Path, text: str) -> ExportFormat:
    """The export format from the file name and, for JSON, its shape.

    Examples:
        >>> detect_format(Path("library.bib"), "")
        'bibtex'
        >>> detect_format(Path("x.json"), '{"config": {}, "items": []}')
        'bbt'
        >>> detect_format(Path("x.json"), '[{"type": "article", "title": "T"}]')
        'csljson'
    """
    if path.suffix.lower() in (".bib", ".bibtex", ".biblatex"):
        return "bibtex"
    stripped = text.lstrip()
    if stripped.startswith(("@", "%")):
        return "bibtex"
    data = _load_json(path, text)
    items = data.get("items") if isinstance(data, Mapping) else data
    if isinstance(data, Mapping) and "config" in data:
        return "bbt"
    if isinstance(items, list) and items and isinstance(items[0], Mapping):
        return "bbt" if "itemType" in items[0] else "csljson"
    return "csljson"


def _load_json(path: Path | str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ExportError(
            f"{path}:{error.lineno}: malformed JSON: {error.msg} (column {error.colno})"
        ) from None


def read_export(
    path: Path, export_format: str = "auto", library: str | None = None
) -> list[ZoteroRecord]:
    """The records of an export file.

    Args:
        path: The file.
        export_format: ``auto``, ``csljson``, ``bibtex`` or ``bbt``.
        library: The library (``groups/2480461``) for items whose id names only a key.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ExportError(f"{path}: cannot read: {error}") from None
    chosen = detect_format(path, text) if export_format == "auto" else export_format
    return parse_export(text, chosen, library=library, origin=str(path))


def parse_export(
    text: str, export_format: str, *, library: str | None = None, origin: str = "<export>"
) -> list[ZoteroRecord]:
    """The records of an export's ``text`` in ``export_format`` (csljson, bibtex or bbt)."""
    if export_format == "bibtex":
        return records_from_bibtex(text, origin)
    data = _load_json(origin, text)
    if export_format == "bbt":
        items = data.get("items") if isinstance(data, Mapping) else None
        convert = _record_from_bbt
    elif export_format == "csljson":
        items = data.get("items") if isinstance(data, Mapping) else data
        convert = _record_from_csl
    else:
        raise ExportError(f"{origin}: unknown export format {export_format!r}")
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise ExportError(f"{origin}: expected a list of items for {export_format}")
    return [convert(item, library) for item in items]


def _link(uri: Any, key: Any, library: str | None) -> tuple[str | None, str | None]:
    """Library and item key from a Zotero item URI, else the bare key with ``library``."""
    match = _ITEM_URI.search(uri) if isinstance(uri, str) else None
    if match:
        return f"{match.group(1)}/{match.group(2)}", match.group(3)
    internal = _INTERNAL_ID.match(uri) if isinstance(uri, str) else None
    if internal:
        key = internal.group(1)
    if isinstance(key, str) and re.fullmatch(r"[A-Z0-9]{8}", key):
        return (library, key) if library else (None, None)
    return None, None


# ----------------------------------------------------------------------------- CSL-JSON


def _csl_year(issued: Any) -> str:
    if isinstance(issued, Mapping):
        parts = issued.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            return str(parts[0][0])
        return str(issued.get("raw") or issued.get("literal") or "")
    return str(issued or "")


def _csl_creators(names: Any) -> list[dict[str, str]]:
    creators = []
    for name in names if isinstance(names, list) else []:
        if not isinstance(name, Mapping):
            continue
        if name.get("literal"):
            creators.append({"creatorType": "author", "name": str(name["literal"])})
            continue
        family = " ".join(str(name.get(part, "")) for part in ("non-dropping-particle", "family"))
        creators.append(
            {"creatorType": "author", "firstName": str(name.get("given", "")), "lastName": family}
        )
    return creators


def _record_from_csl(item: Mapping[str, Any], library: str | None) -> ZoteroRecord:
    """A CSL-JSON item as Zotero fields.

    Examples:
        >>> record = _record_from_csl({
        ...     "id": "http://zotero.org/groups/2480461/items/LNF2RMR4", "type": "article",
        ...     "title": "Linformer", "publisher": "arXiv", "number": "arXiv:2006.04768",
        ...     "author": [{"family": "Wang", "given": "Sinong"}],
        ...     "issued": {"date-parts": [["2020", 6, 8]]},
        ... }, None)
        >>> record.library, record.key, record.data["archiveID"], record.data["date"]
        ('groups/2480461', 'LNF2RMR4', 'arXiv:2006.04768', '2020')
    """
    csl_type = str(item.get("type", ""))
    item_type = _CSL_TYPES.get(csl_type, "document")
    container = {"paper-conference": "proceedingsTitle", "chapter": "bookTitle"}.get(
        csl_type, "publicationTitle"
    )
    data: dict[str, Any] = {
        "itemType": item_type,
        "title": item.get("title", ""),
        "creators": _csl_creators(item.get("author")),
        "date": _csl_year(item.get("issued")),
        container: item.get("container-title", ""),
        "conferenceName": item.get("event-title") or item.get("event") or "",
        "DOI": item.get("DOI", ""),
        "url": item.get("URL", ""),
        "extra": item.get("note", ""),
        "citationKey": item.get("citation-key") or item.get("citation_key") or "",
    }
    if item_type == "preprint":
        data["repository"] = item.get("publisher", "")
        data["archiveID"] = item.get("number", "")
    library_path, key = _link(item.get("id"), None, library)
    return ZoteroRecord(data=data, library=library_path, key=key)


# ----------------------------------------------------------------------------- Better BibTeX JSON


def _record_from_bbt(item: Mapping[str, Any], library: str | None) -> ZoteroRecord:
    """A Better BibTeX JSON item: already Zotero fields, plus its key and URI.

    Examples:
        >>> record = _record_from_bbt({"itemType": "journalArticle", "title": "T",
        ...     "itemKey": "HF7B8SJU", "uri": "http://zotero.org/groups/2480461/items/HF7B8SJU",
        ...     "citationKey": "tay2022efficient", "notes": [], "attachments": []}, None)
        >>> record.library, record.key, "notes" in record.data
        ('groups/2480461', 'HF7B8SJU', False)
    """
    data = {name: value for name, value in item.items() if name not in ("notes", "attachments")}
    library_path, key = _link(item.get("uri"), item.get("itemKey") or item.get("key"), library)
    return ZoteroRecord(data=data, library=library_path, key=key)
