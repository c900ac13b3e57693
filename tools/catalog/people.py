"""Authors are people: the canonical name of a person, whatever spelling a byline uses.

Papers spell one author differently ("William Fedus" on Switch Transformers, "Liam
Fedus" on GLaM). ``catalog/people.yaml`` records each such person once, with the other
spellings; the loader validates it (``path:line`` problems). Every lookup folds names
with :func:`tools.catalog.names.fold`, case and spacing, so "Lukasz Kaiser" finds
"Łukasz Kaiser". The authors index of the site and the notes use :class:`People`.

Examples:
    >>> from tools.catalog import load_catalog
    >>> people = People.of(load_catalog())
    >>> people.canonical("Liam Fedus")
    'William Fedus'
    >>> people.canonical("Lukasz Kaiser")
    'Łukasz Kaiser'
    >>> people.canonical("A. Nobody")
    'A. Nobody'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tools.catalog.names import fold

if TYPE_CHECKING:  # the loader imports nothing from here; only the types are needed
    from tools.catalog.loader import Catalog
    from tools.catalog.model import Person

PEOPLE_NAME = "people.yaml"


def person_key(name: str) -> str:
    """The comparison key of a person's name: folded, case-free, single-spaced.

    Examples:
        >>> person_key("Łukasz  Kaiser") == person_key("lukasz kaiser")
        True
    """
    return " ".join(fold(name).casefold().split())


@dataclass
class People:
    """Canonical names of the catalog's authors, from ``people.yaml`` and every byline."""

    by_key: dict[str, str] = field(default_factory=dict)  # person_key -> canonical name
    written: dict[str, set[str]] = field(default_factory=dict)  # canonical -> spellings

    @classmethod
    def of(cls, catalog: Catalog) -> People:
        """The people of ``catalog``: its ``people.yaml`` first, then every byline as written."""
        return cls.build(catalog.people, (a for e in catalog.entries.values() for a in e.authors))

    @classmethod
    def build(cls, people: Iterable[Person], authors: Iterable[str] = ()) -> People:
        """From ``people`` (canonical name and spellings) and ``authors`` as written.

        Examples:
            >>> from tools.catalog.model import Person
            >>> fedus = Person(name="William Fedus", spellings=["Liam Fedus"])
            >>> People.build([fedus], ["Liam Fedus", "Noam Shazeer"]).canonical("liam fedus")
            'William Fedus'
        """
        index = cls()
        for person in people:
            for spelling in (person.name, *person.spellings):
                index._add(spelling, person.name)
        for author in authors:
            index._add(author, author)
        return index

    def _add(self, spelling: str, canonical: str) -> None:
        canonical = self.by_key.setdefault(person_key(spelling), canonical)
        self.written.setdefault(canonical, set()).add(spelling)

    def canonical(self, name: str) -> str:
        """The canonical name of the person written ``name`` (``name`` itself if unknown)."""
        return self.by_key.get(person_key(name), name)

    def spellings(self, name: str) -> list[str]:
        """Every spelling of the person ``name`` names, as written, canonical included, sorted.

        Examples:
            >>> from tools.catalog.model import Person
            >>> fedus = Person(name="William Fedus", spellings=["Liam Fedus"])
            >>> People.build([fedus]).spellings("liam fedus")
            ['Liam Fedus', 'William Fedus']
        """
        canonical = self.canonical(name)
        return sorted(self.written.get(canonical, set()) | {canonical})

    def papers_by_person(self, catalog: Catalog) -> dict[str, list[str]]:
        """Entry ids of each person's papers, by canonical name (ids sorted)."""
        papers: dict[str, set[str]] = {}
        for entry in catalog.entries.values():
            for author in entry.authors:
                papers.setdefault(self.canonical(author), set()).add(entry.id)
        return {name: sorted(ids) for name, ids in sorted(papers.items())}
