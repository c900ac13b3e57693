"""The parts of a note that ``check --fix`` must leave byte for byte, beyond code.

A fix turns a name into a Markdown link. That is right in prose and wrong wherever the
characters are not prose, or where other notes depend on them as written:

* headings (ATX ``# ...`` and setext, underlined by ``===``/``---``): ``[[note#Heading]]``
  links in other notes name a heading by its text;
* HTML tags: a name in ``alt="..."`` or ``title="..."`` is an attribute, not prose;
* math, ``$...$`` and ``$$...$$``: TeX, where ``[...]`` is not a link;
* footnote labels ``[^label]`` and abbreviation definitions ``*[HTML]: ...``: their text
  is a key other parts of the note refer to;
* escaped wikilinks ``\\[[...]]``: the reader wrote them to show the brackets.

Every pattern here is matched in one pass, never rescanning (notes can be large).

Examples:
    >>> text = "# Performer\\nSee $\\\\text{Reformer}$ and <b title='Performer'>Reformer</b>"
    >>> [text[start:end] for start, end in protected_spans(text, [])]
    ['# Performer\\n', "<b title='Performer'>", '</b>']
    >>> [text[start:end] for start, end in math_spans(text, [])]
    ['$\\\\text{Reformer}$']
"""

from __future__ import annotations

import re

from tools.notes.markdown import Span, inside, lines_with_offsets, merge_spans

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t][^\n]*)?$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
# A line that is not paragraph text: it cannot be the text of a setext heading.
_NOT_PARAGRAPH = re.compile(r"^(?: {0,3}(?:[-*+]|\d+[.)])(?:[ \t]|$)| {0,3}[#>|]| {4}|\t)")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_FOOTNOTE = re.compile(r"\[\^[^\[\]\n]+\]")
_ABBREVIATION = re.compile(r"^\*\[[^\]\n]+\]:[^\n]*$", re.MULTILINE)
_ESCAPED_WIKILINK = re.compile(r"\\\[\[[^\[\]\n]*\]\]")
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?=[^\s$])[^$\n]*?(?<=[^\s\\])\$(?![$\d])")


def heading_spans(text: str) -> list[Span]:
    """ATX heading lines, and the paragraph lines a setext underline turns into a heading.

    Examples:
        >>> text = "Intro\\nTitle\\n===\\n- item\\n---\\n## Two\\n"
        >>> [text[start:end] for start, end in heading_spans(text)]
        ['Intro\\nTitle\\n===\\n', '## Two\\n']
    """
    spans: list[Span] = []
    lines = lines_with_offsets(text)
    for index, (offset, line) in enumerate(lines):
        content = line.rstrip("\r\n")
        if _ATX_HEADING.match(content):
            spans.append((offset, offset + len(line)))
        elif _SETEXT_UNDERLINE.match(content) and index > 0:
            first = index
            while first > 0:
                previous = lines[first - 1][1].rstrip("\r\n")
                if not previous.strip() or _NOT_PARAGRAPH.match(previous):
                    break
                first -= 1
            if first < index:
                spans.append((lines[first][0], offset + len(line)))
    return merge_spans(spans)


def math_spans(text: str, code: list[Span]) -> list[Span]:
    """``$$...$$`` (across lines) and ``$...$`` (within a line) outside code.

    ``$5 and $10`` is not math: the opening ``$`` must be followed, and the closing one
    preceded, by a non-space, and the closing one not followed by a digit.
    """
    spans: list[Span] = []
    start, end = text.find("$$"), -1
    while start >= 0:
        if end < start + 2:
            end = text.find("$$", start + 2)
        if end < 0:
            break
        if inside(code, start):
            start = text.find("$$", start + 2)
            continue
        spans.append((start, end + 2))
        start = text.find("$$", end + 2)
    display = merge_spans(spans)
    for match in _INLINE_MATH.finditer(text):
        if not inside(code, match.start()) and not inside(display, *match.span()):
            spans.append(match.span())
    return merge_spans(spans)


def protected_spans(text: str, code: list[Span]) -> list[Span]:
    """Headings, HTML tags, footnote labels, abbreviation definitions and escaped
    wikilinks outside code: what a fix leaves as written."""
    found = heading_spans(text)
    for pattern in (_HTML_TAG, _FOOTNOTE, _ABBREVIATION, _ESCAPED_WIKILINK):
        found += [match.span() for match in pattern.finditer(text)]
    return merge_spans([span for span in found if not inside(code, *span)])
