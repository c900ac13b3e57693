"""What one run of the sync was asked to do: the command line, as a typed record, and the
checks that keep its values inside Zotero's formats.

A collection key or a library id ends up in a request path and in the watermark's file
name, so each is checked against Zotero's own format before anything runs: a value such
as ``../../PWNED`` is a usage error, never a path.

Examples:
    >>> collection_key("surv2345"), library_id("2480461")
    ('SURV2345', 2480461)
    >>> try:
    ...     collection_key("../../PWNED")
    ... except argparse.ArgumentTypeError as error:
    ...     print(error)
    '../../PWNED' is not a Zotero collection key (8 letters and digits, e.g. SURV2345)
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tools.catalog.console import printable

# Zotero's object keys: 8 characters of A-Z and 0-9 (the server uses a subset of these).
KEY = re.compile(r"[A-Z0-9]{8}")
_DIGITS = re.compile(r"[0-9]{1,12}")
MAX_TAG = 255  # Zotero's limit on a tag's length
DEFAULT_MAX_TIME = 1800.0


def collection_key(value: str) -> str:
    """A collection key from the command line, upper-cased; refuses anything else."""
    key = value.strip().upper()
    if not KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(
            f"{printable(value)!r} is not a Zotero collection key "
            "(8 letters and digits, e.g. SURV2345)"
        )
    return key


def api_url(value: str) -> str:
    """A server address: http or https only (pyzotero would read a ``file://`` path).

    Examples:
        >>> api_url("http://127.0.0.1:8080")
        'http://127.0.0.1:8080'
    """
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{printable(value)!r} is not a server address (http:// or https://host[:port])"
        )
    return value.strip()


def library_id(value: str) -> int:
    """A numeric user or group id (ASCII digits only: no sign, no ``_``)."""
    if not _DIGITS.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{printable(value)!r} is not a Zotero library id (digits, e.g. 2480461)"
        )
    return int(value)


def tag_name(value: str) -> str:
    """A tag: one line of at most 255 characters, not empty."""
    if not value.strip() or len(value) > MAX_TAG or printable(value) != value:
        raise argparse.ArgumentTypeError(
            f"{printable(value)[:80]!r} is not a Zotero tag "
            f"(one line of 1-{MAX_TAG} characters without control characters)"
        )
    return value


@dataclass(frozen=True)
class SyncOptions:
    """The options of one run (see ``python tools/sync_zotero.py --help``).

    Attributes:
        library_type: ``user`` or ``group``, or None with ``from_file``.
        library_id: The numeric user or group ID.
        collection: Read only this collection's items (an 8-character key).
        tag: Read only items with this tag.
        local: Read the Zotero desktop's local API.
        api_url: Another server speaking the Zotero Web API.
        dry_run: Print the changes, write nothing.
        add_new: Draft entries for unmatched items.
        full: Ignore the watermark; read everything.
        from_file: Sync from this Zotero export instead of the API.
        format: The export's format (``auto`` guesses).
        catalog: The catalog folder.
        timeout: Seconds one request may take, all of it (connecting and every read).
        retries: Retries of a failed request.
        retry_delay: Seconds before the first retry; doubles.
        max_time: Seconds the whole reading of the library may take, retries included.
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
    max_time: float = DEFAULT_MAX_TIME
