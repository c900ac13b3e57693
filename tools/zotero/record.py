"""One Zotero item as it was read, before it is mapped: :class:`ZoteroRecord`.

The Web API, the local API and the export files all end here, under Zotero's own field
names, so the mapping, matching and safety rules after this point are one for all sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Item types that are not publications: never matched, never drafted.
NON_BIBLIOGRAPHIC_TYPES = frozenset({"note", "attachment", "annotation"})


def clean_text(value: Any) -> str:
    """A field value as one trimmed line of text; anything not a string gives "".

    Examples:
        >>> clean_text("  Reformer:\\n  The Efficient   Transformer ")
        'Reformer: The Efficient Transformer'
        >>> clean_text(None)
        ''
    """
    return " ".join(value.split()) if isinstance(value, str) else ""


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
    data = _mapping(item.get("data"), item)
    meta = _mapping(item.get("meta"), {})
    owner = _mapping(item.get("library"), {})
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


def _mapping(value: Any, default: Mapping[str, Any]) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else default
