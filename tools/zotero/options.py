"""What one run of the sync was asked to do: the command line, as a typed record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class SyncOptions:
    """The options of one run (see ``python tools/sync_zotero.py --help``).

    Attributes:
        library_type: ``user`` or ``group``, or None with ``from_file``.
        library_id: The numeric user or group ID.
        collection: Read only this collection's items.
        tag: Read only items with this tag.
        local: Read the Zotero desktop's local API.
        api_url: Another server speaking the Zotero Web API.
        dry_run: Print the changes, write nothing.
        add_new: Draft entries for unmatched items.
        full: Ignore the watermark; read everything.
        from_file: Sync from this Zotero export instead of the API.
        format: The export's format (``auto`` guesses).
        catalog: The catalog folder.
        timeout: Seconds per request.
        retries: Retries of a failed request.
        retry_delay: Seconds before the first retry; doubles.
    """

    library_type: Literal["user", "group"] | None = None
    library_id: int | None = None
    collection: str | None = None
    tag: str | None = None
    local: bool = False
    api_url: str | None = None
    dry_run: bool = False
    add_new: bool = False
    full: bool = False
    from_file: Path | None = None
    format: str = "auto"
    catalog: Path | None = None
    timeout: float = 30.0
    retries: int = 3
    retry_delay: float = 1.0
