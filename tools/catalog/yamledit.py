"""Editing entry YAML while keeping every byte a person wrote that the edit does not touch.

A Zotero sync changes a DOI; the entry's comments, key order and quoting stay as they
were. :func:`edit_fields` rewrites only the lines of the changed top-level fields and
checks that the result reads back as intended; :func:`render_entry` writes a new entry
in the canonical key order.
"""

from __future__ import annotations

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


def _top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Line spans [start, end) of each top-level key's lines, trailing comments excluded."""
    data = yaml_reader().load(text)
    lines = text.splitlines(keepends=True)
    starts = [(data.lc.key(key)[0], key) for key in data]
    spans: dict[str, tuple[int, int]] = {}
    for index, (start, key) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        # Blank lines and column-0 comments before the next key belong to that key.
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
            end -= 1
        spans[key] = (start, end)
    return spans


def edit_fields(text: str, changes: Mapping[str, Any]) -> str:
    """Rewrite only the lines of the changed top-level fields of an entry's YAML ``text``.

    Everything else — comments, key order, quoting, formatting — is kept byte for byte.
    A value of ``None`` removes the field; a new field goes after its predecessor in
    the canonical key order.

    Examples:
        >>> text = "id: x  # mine\\ntitle: Old\\nyear: 2020\\n"
        >>> print(edit_fields(text, {"title": "New", "doi": "10.1/x"}), end="")
        id: x  # mine
        title: New
        year: 2020
        doi: 10.1/x
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    spans = _top_level_spans(text)
    replacements: dict[int, tuple[int, list[str]]] = {}  # start -> (end, new lines)
    for key, value in changes.items():
        rendered = [] if value is None else dump({key: value}).splitlines(keepends=True)
        if key in spans:
            start, end = spans[key]
            replacements[start] = (end, rendered)
        elif rendered:
            order = KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER)
            before = [k for k in spans if k in KEY_ORDER and KEY_ORDER.index(k) < order]
            anchor = spans[before[-1]][1] if before else len(lines)
            end, existing = replacements.get(anchor, (anchor, []))
            replacements[anchor] = (end, existing + rendered)
    output: list[str] = []
    index = 0
    for start in sorted(replacements):
        end, rendered = replacements[start]
        output.extend(lines[index:start])
        output.extend(rendered)
        index = max(index, end)
    output.extend(lines[index:])
    new_text = "".join(output)
    reloaded = yaml_reader().load(new_text)
    for key, value in changes.items():
        if plain(reloaded.get(key)) != plain(value):
            raise RuntimeError(f"editing {key!r} did not round-trip; nothing written")
    return new_text
