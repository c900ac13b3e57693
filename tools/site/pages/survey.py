"""The survey's Table 1 as printed (``survey/index.md``), each row against the atlas's entry.

Every entry with a ``survey:`` block is one row: its row number, the model, the class,
complexity and decoding exactly as Table 1 prints them, and where the entry's own fields
(``taxonomy``, ``complexity.time``, ``decode``) say otherwise, what differs, with the
entry's notes as the reason.

Examples:
    >>> from tools.catalog import load_catalog
    >>> rows = survey_rows(load_catalog())
    >>> rows[0].row, rows[0].entry.id, rows[0].printed_class
    (1, 'memory-compressed', 'FP+M')
    >>> funnel = next(r for r in rows if r.entry.id == "funnel-transformer")
    >>> funnel.differences
    ['decoding: the atlas says no']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.catalog import Catalog, Entry
from tools.site.context import growth, growth_text
from tools.site.escaping import front_matter, render


@dataclass(frozen=True)
class TableRow:
    """One row of Table 1 and how the atlas's entry differs from it."""

    row: int
    entry: Entry
    printed_class: str
    printed_complexity: str
    printed_decode: bool
    differences: list[str]


def _differences(entry: Entry) -> list[str]:
    survey = entry.survey
    assert survey is not None
    found = []
    printed = {code.strip() for code in survey.class_.split("+")}
    if printed != set(entry.taxonomy):
        found.append(f"class: the atlas says {'+'.join(entry.taxonomy) or 'none'}")
    if entry.complexity is not None:
        symbol = "N" if re.search(r"\bN\b", survey.complexity) else "n"
        theirs, ours = growth(survey.complexity, symbol), growth(entry.complexity.time)
        if theirs is None or ours is None:
            found.append(f"complexity: the atlas says {entry.complexity.time} (not comparable)")
        elif theirs != ours:
            found.append(
                f"complexity: the atlas says {entry.complexity.time} "
                f"(grows as {growth_text(ours)}, the survey's as {growth_text(theirs)})"
            )
    if entry.decode is not None and entry.decode != survey.decode:
        found.append(f"decoding: the atlas says {'yes' if entry.decode else 'no'}")
    return found


def survey_rows(catalog: Catalog) -> list[TableRow]:
    """Every entry of Table 1, in the table's order."""
    rows = [
        TableRow(
            row=entry.survey.row,
            entry=entry,
            printed_class=entry.survey.class_,
            printed_complexity=entry.survey.complexity,
            printed_decode=entry.survey.decode,
            differences=_differences(entry),
        )
        for entry in catalog.entries.values()
        if entry.survey is not None
    ]
    return sorted(rows, key=lambda r: (r.row, r.entry.id))


def survey_page(catalog: Catalog) -> str:
    """Table 1 of the survey as printed, marked where the atlas differs."""
    surveys = [e for e in catalog.entries.values() if e.kind == "survey"]
    rows = survey_rows(catalog)
    return render(
        "survey.md.j2",
        front_matter=front_matter("The survey's Table 1"),
        survey=surveys[0] if surveys else None,
        rows=rows,
        differing=sum(1 for r in rows if r.differences),
    )
