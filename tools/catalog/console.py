"""Text that reaches a terminal: control characters shown, never obeyed.

A title from Zotero or a YAML file may hold an escape sequence (``\\x1b]0;...``) that
retitles the window, moves the cursor or hides the lines before it. Everything a tool
prints that came from outside goes through :func:`printable`.

Examples:
    >>> printable("Performer\\x1b[2J\\x07 ok")
    'Performer\\\\x1b[2J\\\\x07 ok'
    >>> printable("two\\nlines\\tkept", keep_newlines=True)
    'two\\nlines\\tkept'
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    char = match.group(0)
    return repr(char)[1:-1] if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character (and bidirectional override) written out.

    Args:
        text: Any text.
        keep_newlines: Leave line feeds alone (a multi-line report); tabs are always kept.
    """
    shown = _CONTROL.sub(_shown, text)
    if not keep_newlines:
        shown = shown.replace("\n", "\\n")
    # Other categories of format characters are rare but invisible: show them too.
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) == "Cf" and char != "\u200d" else char
        for char in shown
    )
