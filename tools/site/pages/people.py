"""The authors' index (``authors/index.md``) and the timeline (``timeline/index.md``).

Examples:
    >>> from tools.catalog import load_catalog
    >>> "**Yi Tay**{ #yi-tay }" in authors_index(load_catalog())
    True
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tools.catalog import Catalog, Entry
from tools.site.context import author_slugs, by_name, family_sort_key
from tools.site.escaping import render


@dataclass(frozen=True)
class Author:
    name: str
    anchor: str
    works: list[Entry]


def authors_index(catalog: Catalog) -> str:
    """Every author by family name, each with an anchor the paper pages link to."""
    slugs = author_slugs(catalog)
    papers: dict[str, list[Entry]] = defaultdict(list)
    for entry in catalog.entries.values():
        for name in entry.authors:
            papers[name].append(entry)
    groups: dict[str, list[Author]] = {}
    for name in sorted(papers, key=family_sort_key):
        initial = (family_sort_key(name)[0][:1] or "?").upper()
        works = sorted(papers[name], key=lambda e: (e.year, e.name))
        groups.setdefault(initial, []).append(Author(name, slugs[name], works))
    return render("authors.md.j2", count=len(slugs), groups=groups)


def timeline_page(catalog: Catalog) -> str:
    """Every entry by the year it first became public (``timeline/index.md``)."""
    by_year: dict[int, list[Entry]] = defaultdict(list)
    for entry in catalog.entries.values():
        by_year[entry.year].append(entry)
    years = [(year, by_name(by_year[year])) for year in sorted(by_year)]
    return render("timeline.md.j2", years=years)
