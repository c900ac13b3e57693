"""The authors' index (``authors/index.md``) and the timeline (``timeline/index.md``).

A person whose bylines spell their name differently (``catalog/people.yaml``) is one
author, under the canonical name, with every spelling listed and every spelling's
links landing on that one anchor.

Examples:
    >>> from tools.catalog import load_catalog
    >>> "**Yi Tay**{ #yi-tay }" in authors_index(load_catalog())
    True
    >>> person_anchors(load_catalog())["Liam Fedus"]
    'william-fedus'
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tools.catalog import Catalog, Entry
from tools.catalog.people import People
from tools.site.context import author_slugs, by_name, family_sort_key
from tools.site.escaping import render


@dataclass(frozen=True)
class Author:
    name: str
    anchor: str
    works: list[Entry]
    also_written: list[str]


def person_anchors(catalog: Catalog) -> dict[str, str]:
    """The anchor of each author name as written: the anchor of the person's canonical name."""
    people = People.of(catalog)
    slugs = author_slugs(catalog)
    canonical_slugs = {people.canonical(name): slugs[name] for name in sorted(slugs)}
    for name, slug in slugs.items():  # the canonical spelling's own anchor wins
        if people.canonical(name) == name:
            canonical_slugs[name] = slug
    return {name: canonical_slugs[people.canonical(name)] for name in slugs}


def authors_index(catalog: Catalog) -> str:
    """Every person by family name, each with an anchor the paper pages link to."""
    people = People.of(catalog)
    anchors = person_anchors(catalog)
    papers: dict[str, list[Entry]] = defaultdict(list)
    written: dict[str, set[str]] = defaultdict(set)
    for entry in catalog.entries.values():
        for name in entry.authors:
            person = people.canonical(name)
            if entry not in papers[person]:
                papers[person].append(entry)
            written[person].add(name)
    groups: dict[str, list[Author]] = {}
    for person in sorted(papers, key=family_sort_key):
        initial = (family_sort_key(person)[0][:1] or "?").upper()
        works = sorted(papers[person], key=lambda e: (e.year, e.name))
        others = sorted(written[person] - {person})
        anchor = anchors[next(iter(sorted(written[person])))]
        groups.setdefault(initial, []).append(Author(person, anchor, works, others))
    return render("authors.md.j2", count=len(papers), groups=groups)


def timeline_page(catalog: Catalog) -> str:
    """Every entry by the year it first became public (``timeline/index.md``)."""
    by_year: dict[int, list[Entry]] = defaultdict(list)
    for entry in catalog.entries.values():
        by_year[entry.year].append(entry)
    years = [(year, by_name(by_year[year])) for year in sorted(by_year)]
    return render("timeline.md.j2", years=years)
