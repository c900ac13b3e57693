"""The sync's failures, each reported in one line, and the rule that no line leaks the key.

Examples:
    >>> redact("Bearer s3cret-key failed", ["s3cret-key"])
    'Bearer [redacted] failed'
"""

from __future__ import annotations

from collections.abc import Iterable


class ZoteroError(Exception):
    """A failure to read Zotero, reported in one line; its message never contains the API key."""


class SyncError(Exception):
    """A failure reported in one line, after which nothing has been written."""


class ExportError(ValueError):
    """An export file that cannot be read; the message says where and why, in one line."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``[redacted]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
