"""Just enough Markdown structure to find references in notes without touching code.

Notes are read and written as exact text (no newline translation), so an edit changes
only the characters it replaces. This module finds the regions that references must
not be looked for in or rewritten: fenced and indented code blocks, inline code, HTML
comments, the YAML front matter, and the atlas's managed blocks.

Examples:
    >>> text = "Performer `Performer`\\n```\\nPerformer\\n```\\n"
    >>> [text[start:end] for start, end in code_spans(text)]
    ['`Performer`', '```\\nPerformer\\n```\\n']
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

Span = tuple[int, int]

# The markers of the block a literature note's export owns (tools/notes/export.py).
# A begin marker opens a line, or the note after its byte order mark.
MANAGED_BEGIN = re.compile(
    r"(?:^|(?<=\A\ufeff))<!-- atlas:begin id=(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)\b[^\n]*?-->"
)
MANAGED_END = re.compile(r"^<!-- atlas:end -->", re.MULTILINE)

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])(?:[ \t]|$)")
_TICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*(?=\n)")


def lines_with_offsets(text: str) -> list[tuple[int, str]]:
    """Each line (with its line ending) and the offset where it starts.

    Examples:
        >>> lines_with_offsets("a\\r\\nbc\\n")
        [(0, 'a\\r\\n'), (3, 'bc\\n')]
    """
    result: list[tuple[int, str]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        result.append((offset, line))
        offset += len(line)
    return result


def _is_blank(line: str) -> bool:
    return not line.strip()


def _indent_width(line: str) -> int:
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def code_block_spans(text: str) -> list[Span]:
    """Spans of fenced code blocks and indented code blocks.

    An indented run is code only after a blank line and outside a list: notes nest
    lists by indentation (Obsidian writes tabs), and those lines are prose.
    """
    spans: list[Span] = []
    lines = lines_with_offsets(text)
    index = 0
    in_list = False
    previous_blank = True
    while index < len(lines):
        offset, line = lines[index]
        content = line.rstrip("\r\n")
        fence = _FENCE.match(content)
        if fence and not (fence["fence"][0] == "`" and "`" in fence["info"]):
            marker = fence["fence"]
            close = re.compile(rf"^[ \t]*{marker[0]}{{{len(marker)},}}[ \t]*$")
            end = index + 1
            while end < len(lines) and not close.match(lines[end][1].rstrip("\r\n")):
                end += 1
            last = min(end, len(lines) - 1)
            spans.append((offset, lines[last][0] + len(lines[last][1])))
            index = last + 1
            previous_blank = False
            continue
        if _indent_width(content) >= 4 and previous_blank and not in_list and content.strip():
            end = index
            while end + 1 < len(lines) and (
                _is_blank(lines[end + 1][1]) or _indent_width(lines[end + 1][1]) >= 4
            ):
                end += 1
            while end > index and _is_blank(lines[end][1]):
                end -= 1
            spans.append((offset, lines[end][0] + len(lines[end][1])))
            index = end + 1
            previous_blank = False
            continue
        if _LIST_ITEM.match(content):
            in_list = True
        elif not _is_blank(content) and _indent_width(content) == 0:
            in_list = False
        previous_blank = _is_blank(content)
        index += 1
    return spans


def inside(spans: list[Span], start: int, end: int | None = None) -> bool:
    """Whether ``[start, end)`` overlaps one of the sorted, disjoint ``spans``.

    Overlapping spans must be merged first (:func:`merge_spans`).

    Examples:
        >>> inside([(0, 4), (10, 12)], 3)
        True
        >>> inside([(0, 4), (10, 12)], 4, 10)
        False
    """
    end = start + 1 if end is None else end
    position = bisect.bisect_right(spans, (start, float("inf"))) - 1
    for span_start, span_end in spans[max(position, 0) : position + 2]:
        if span_start < end and start < span_end:
            return True
    return False


def merge_spans(spans: list[Span]) -> list[Span]:
    """Sorted, disjoint spans covering the same offsets as ``spans`` (which may overlap).

    Examples:
        >>> merge_spans([(5, 9), (0, 20), (30, 31)])
        [(0, 20), (30, 31)]
    """
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def code_spans(text: str) -> list[Span]:
    """Sorted, disjoint spans of all code: code blocks and inline code spans."""
    blocks = code_block_spans(text)
    inline = [span for span in inline_code_spans(text) if not inside(blocks, *span)]
    return merge_spans(blocks + inline)


def inline_code_spans(text: str) -> list[Span]:
    """Inline code: a run of backticks up to the next run of the same length, within a
    paragraph (never across a blank line).

    Linear in the text: each run looks up the next run of its length in a table, where a
    regular expression would rescan the paragraph for every unclosed run.

    Examples:
        >>> text = "a `x` b ``y`z`` c ` d"
        >>> [text[start:end] for start, end in inline_code_spans(text)]
        ['`x`', '``y`z``']
    """
    runs = [(match.start(), match.end() - match.start()) for match in _TICKS.finditer(text)]
    by_length: dict[int, list[int]] = {}
    for index, (_, length) in enumerate(runs):
        by_length.setdefault(length, []).append(index)
    blanks = [match.start() for match in _BLANK_LINE.finditer(text)]
    spans: list[Span] = []
    index = 0
    while index < len(runs):
        start, length = runs[index]
        same = by_length[length]
        following = bisect.bisect_right(same, index)
        if following < len(same):
            close = same[following]
            close_start = runs[close][0]
            blank = bisect.bisect_left(blanks, start)
            if blank == len(blanks) or blanks[blank] > close_start:
                spans.append((start, close_start + length))
                index = close + 1
                continue
        index += 1
    return spans


def comment_spans(text: str, code: list[Span]) -> list[Span]:
    """HTML comments outside code (the managed block's markers are comments)."""
    spans: list[Span] = []
    start, end = text.find("<!--"), -1
    while start >= 0:
        # Forward searches only: an unclosed "<!--" ends the search, and a "-->" found
        # once is reused (a regular expression would rescan the rest of the note for
        # every "<!--").
        if end < start + 4:
            end = text.find("-->", start + 4)
        if end < 0:
            break
        if not inside(code, start, end + 3):
            spans.append((start, end + 3))
            start = text.find("<!--", end + 3)
        else:
            start = text.find("<!--", start + 4)
    return spans


def front_matter_span(text: str) -> Span | None:
    """The YAML front matter (``---`` on the first line, up to the next ``---``), if any.

    Examples:
        >>> front_matter_span("---\\ntags: [x]\\n---\\nbody")
        (0, 18)
        >>> front_matter_span("# Title\\n---\\n") is None
        True
    """
    lines = lines_with_offsets(text.removeprefix("\ufeff"))
    shift = len(text) - len(text.removeprefix("\ufeff"))
    if not lines or lines[0][1].rstrip("\r\n") != "---":
        return None
    for offset, line in lines[1:]:
        if line.rstrip("\r\n") in ("---", "..."):
            return (0, shift + offset + len(line))
    return None


@dataclass(frozen=True)
class ManagedBlock:
    """One ``<!-- atlas:begin id=... -->`` ... ``<!-- atlas:end -->`` block."""

    id: str
    start: int  # offset of "<!-- atlas:begin"
    end: int  # offset just after "<!-- atlas:end -->"


class ManagedBlockError(ValueError):
    """Markers that do not pair up (a begin without end, nested or stray markers)."""


def managed_blocks(text: str) -> list[ManagedBlock]:
    """The managed blocks of a note, outside code.

    Raises:
        ManagedBlockError: the markers do not pair up.

    Examples:
        >>> text = "<!-- atlas:begin id=performer -->\\nx\\n<!-- atlas:end -->\\nmine\\n"
        >>> managed_blocks(text)
        [ManagedBlock(id='performer', start=0, end=54)]
    """
    code = code_block_spans(text)
    begins = [
        match
        for match in re.finditer(MANAGED_BEGIN.pattern, text, re.MULTILINE)
        if not inside(code, match.start())
    ]
    ends = [match for match in MANAGED_END.finditer(text) if not inside(code, match.start())]
    markers = sorted(
        [(m.start(), "begin", m) for m in begins] + [(m.start(), "end", m) for m in ends]
    )
    blocks: list[ManagedBlock] = []
    open_begin: re.Match[str] | None = None
    for _, kind, match in markers:
        if kind == "begin":
            if open_begin is not None:
                raise ManagedBlockError(
                    f"atlas:begin at offset {match.start()} inside another managed block"
                )
            open_begin = match
        else:
            if open_begin is None:
                raise ManagedBlockError(f"atlas:end at offset {match.start()} without atlas:begin")
            blocks.append(ManagedBlock(open_begin["id"], open_begin.start(), match.end()))
            open_begin = None
    if open_begin is not None:
        raise ManagedBlockError(f"atlas:begin id={open_begin['id']} has no atlas:end")
    return blocks


class LineIndex:
    """Offsets to 1-based (line, column) positions of one text."""

    def __init__(self, text: str) -> None:
        self._starts = [offset for offset, _ in lines_with_offsets(text)] or [0]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), both 1-based, of ``offset``.

        Examples:
            >>> LineIndex("ab\\ncd").position(4)
            (2, 2)
        """
        line = bisect.bisect_right(self._starts, offset) - 1
        return line + 1, offset - self._starts[line] + 1


def newline_of(text: str) -> str:
    """The line ending a text uses (``\\r\\n`` when its first line ends so, else ``\\n``).

    Examples:
        >>> newline_of("a\\r\\nb")
        '\\r\\n'
    """
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"
