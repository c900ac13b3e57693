"""Editing entry YAML while keeping every byte a person wrote that the edit does not touch.

A Zotero sync changes a DOI; the entry's comments, key order and quoting stay as they
were. :func:`edit_fields` rewrites only the lines of the changed top-level fields and
checks that the result reads back as intended; :func:`render_entry` writes a new entry
in the canonical key order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap

from tools.catalog.model import SCHEMA_COMMENT, Entry
from tools.catalog.yamlio import dump, plain, yaml_reader

KEY_ORDER: tuple[str, ...] = tuple(Entry.model_fields)


def render_entry(data: Mapping[str, Any]) -> str:
    """The YAML text of a new entry, keys in the canonical order, schema line first."""
    unknown = set(data) - set(KEY_ORDER)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    ordered = CommentedMap((key, data[key]) for key in KEY_ORDER if data.get(key) is not None)
    return f"{SCHEMA_COMMENT}\n{dump(ordered)}"


@dataclass(frozen=True)
class FieldChange:
    """One top-level field of one entry, before and after."""

    id: str
    field: str
    old: Any
    new: Any


# The line breaks YAML (and so ruamel's line numbers) counts; str.splitlines counts more.
_LINE = re.compile(r".*?(?:\r\n|[\n\r\x85\u2028\u2029])|.+", re.DOTALL)


def _lines(text: str) -> list[str]:
    """``text`` split after each line break YAML counts, breaks kept."""
    return _LINE.findall(text)


def _newline(lines: list[str]) -> str:
    """The file's line break (that of its first line), so an edit keeps CRLF files CRLF."""
    first = lines[0] if lines else ""
    return "\r\n" if first.endswith("\r\n") else "\n"


def _top_level_spans(data: Any, lines: list[str]) -> dict[str, tuple[int, int]]:
    """Line spans [start, end) of each top-level key's lines, trailing comments excluded."""
    starts = [(data.lc.key(key)[0], key) for key in data]
    spans: dict[str, tuple[int, int]] = {}
    for index, (start, key) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        # Blank lines and column-0 comments before the next key belong to that key.
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
            end -= 1
        spans[key] = (start, end)
    return spans


def _end_of_line_comment(data: Any, key: str, line: str) -> str:
    """The ``  # comment`` that ends a one-line ``key: value`` line, or ""."""
    tokens = data.ca.items.get(key) or []
    token = tokens[2] if len(tokens) > 2 else None
    if token is None:
        return ""
    comment = token.value.split("\n", 1)[0].rstrip()
    body = line.rstrip("\r\n\x85\u2028\u2029")
    if not comment.startswith("#") or not body.endswith(comment):
        return ""
    before = body[: len(body) - len(comment)]
    return before[len(before.rstrip()) :] + comment


def edit_fields(text: str, changes: Mapping[str, Any]) -> str:
    """Rewrite only the lines of the changed top-level fields of an entry's YAML ``text``.

    Everything else — comments, key order, quoting, formatting, line endings — is kept
    byte for byte, and so is the comment at the end of a changed one-line field. A value
    of ``None`` removes the field; a new field goes after its predecessor in the
    canonical key order (new fields together in that order too).

    Examples:
        >>> text = "id: x  # mine\\ntitle: Old\\nyear: 2020\\n"
        >>> print(edit_fields(text, {"title": "New", "doi": "10.1/x"}), end="")
        id: x  # mine
        title: New
        year: 2020
        doi: 10.1/x
        >>> edit_fields("id: x\\r\\nurl: a  # abs\\r\\n", {"url": "b", "doi": "10.1/x"})
        'id: x\\r\\ndoi: 10.1/x\\r\\nurl: b  # abs\\r\\n'

    Raises:
        RuntimeError: the result would not read back as intended (nothing is returned).
    """
    lines = _lines(text)
    newline = _newline(lines)
    if lines and not lines[-1].endswith(("\n", "\r", "\x85", "\u2028", "\u2029")):
        lines[-1] += newline
    data = yaml_reader().load(text)
    spans = _top_level_spans(data, lines)
    replaced: dict[int, tuple[int, list[str]]] = {}  # start -> (end, new lines)
    inserted: dict[int, list[tuple[int, list[str]]]] = {}  # anchor -> [(order, new lines)]
    for key, value in changes.items():
        rendered = [] if value is None else dump({key: value}).splitlines(keepends=True)
        rendered = [line.removesuffix("\n") + newline for line in rendered]
        if key in spans:
            start, end = spans[key]
            if end - start == 1 and len(rendered) == 1:
                comment = _end_of_line_comment(data, key, lines[start])
                rendered = [rendered[0].removesuffix(newline) + comment + newline]
            replaced[start] = (end, rendered)
        elif rendered:
            order = KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER)
            before = [k for k in spans if k in KEY_ORDER and KEY_ORDER.index(k) < order]
            anchor = spans[before[-1]][1] if before else len(lines)
            inserted.setdefault(anchor, []).append((order, rendered))
    output: list[str] = []
    index = 0
    # An insertion and a replacement may share a line (a new field right after its
    # predecessor, before a changed field): the insertion goes first, neither is lost.
    for position in sorted(set(replaced) | set(inserted)):
        output.extend(lines[index:position])
        index = max(index, position)
        for _, rendered in sorted(inserted.get(position, []), key=lambda pair: pair[0]):
            output.extend(rendered)
        if position in replaced:
            end, rendered = replaced[position]
            output.extend(rendered)
            index = max(index, end)
    output.extend(lines[index:])
    new_text = "".join(output)
    _check_round_trip(data, yaml_reader().load(new_text), changes)
    return new_text


def _check_round_trip(old: Any, new: Any, changes: Mapping[str, Any]) -> None:
    """The changed fields read back as given, and every other field as it was."""
    for key, value in changes.items():
        if plain(new.get(key)) != plain(value):
            raise RuntimeError(f"editing {key!r} did not round-trip; nothing written")
    kept_old = {key: plain(value) for key, value in old.items() if key not in changes}
    kept_new = {key: plain(value) for key, value in new.items() if key not in changes}
    if kept_old != kept_new:
        raise RuntimeError("an edit changed fields it did not name; nothing written")
