"""File names for literature notes that are safe on Windows, macOS and Linux, and in Obsidian.

A note is named ``<year> <title>.md`` like the vault's own notes ("2020 Efficient
Transformers - A Survey.md"). Characters Windows forbids (``<>:"/\\|?*``), characters
Obsidian cannot link to (``#^[]|``) and control characters are replaced; trailing dots
and spaces (which Windows drops) and reserved device names (``CON``, ``LPT1``...) are
avoided; the name is Unicode NFC (what macOS and Linux then agree on) and short
enough for every file system.

Examples:
    >>> literature_note_name(2020, "Rethinking Attention with Performers")
    '2020 Rethinking Attention with Performers.md'
    >>> literature_note_name(2020, "Efficient Transformers: A Survey")
    '2020 Efficient Transformers - A Survey.md'
"""

from __future__ import annotations

import re
import unicodedata

# Characters Windows forbids in file names, and those Obsidian cannot put in a [[link]].
_FORBIDDEN = set('<>:"/\\|?*') | set("#^[]")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{device}{digit}" for device in ("COM", "LPT") for digit in "123456789"
}
# Bytes, not characters: ext4 and APFS limit a name to 255 bytes; a margin is left for
# the extension and for sync tools that append " (conflict 2)".
MAX_STEM_BYTES = 180
NOTE_SUFFIX = ".md"


def safe_stem(text: str, max_bytes: int = MAX_STEM_BYTES) -> str:
    """``text`` made into a portable file name stem (no extension).

    Args:
        text: Any text, e.g. a paper title.
        max_bytes: The largest UTF-8 length of the result.

    Returns:
        A non-empty stem without forbidden characters, reserved names, leading dots or
        trailing dots and spaces.

    Examples:
        >>> safe_stem('A/B: "C" <d> | e? *f*')
        'A-B - C d - e f'
        >>> safe_stem("CON")
        'CON_'
        >>> safe_stem("lpt1.notes")
        'lpt1_.notes'
        >>> safe_stem("Ends with dots... ")
        'Ends with dots'
        >>> safe_stem("  ")
        'untitled'
        >>> len(safe_stem("x" * 400).encode())
        180
    """
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\s*:\s*", " - ", text)  # "Title: Subtitle" reads "Title - Subtitle"
    text = re.sub(r"\s*\|\s*", " - ", text)
    text = re.sub(r"[/\\]", "-", text)
    text = "".join(
        " " if unicodedata.category(char).startswith("C") or char in _FORBIDDEN else char
        for char in text
    )
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").strip()
    text = _truncate_utf8(text, max_bytes)
    text = text.rstrip(". ")
    if not text:
        return "untitled"
    base, dot, rest = text.partition(".")
    if base.upper() in _WINDOWS_RESERVED:
        text = f"{base}_{dot}{rest}"
    return text


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8, at a word boundary when there is one."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    head, space, _ = cut.rpartition(" ")
    return head if space and len(head) > max_bytes // 2 else cut


def literature_note_name(year: int, title: str) -> str:
    """The file name of the literature note of a paper: ``<year> <title>.md``, made safe."""
    return safe_stem(f"{year} {title}") + NOTE_SUFFIX
