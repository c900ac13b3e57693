"""What a reference written in a note points to: an entry, a class, an author, or nothing.

:class:`Resolver` answers, for each kind of reference that :mod:`tools.notes.check`
finds, a ``(status, target, detail)`` triple: ``status`` is ``resolved``, ``dangling`` or
``ignored``; ``target`` an entry id, ``taxonomy:<code>`` or ``author:<name>``; ``detail``
says why, for the report. The rules per kind are listed in :mod:`tools.notes.check`.

An author is a person (:class:`tools.catalog.people.People`): every spelling of a name
(``[[Liam Fedus]]``, ``[[William Fedus]]``, ``[[Lukasz Kaiser]]``) resolves to
``author:<canonical name>`` with all the papers of that person.

Examples:
    >>> from tools.catalog import load_catalog
    >>> resolver = Resolver.build(load_catalog())
    >>> resolver.wikilink("Big Bird")
    ('resolved', 'big-bird', 'BigBird')
    >>> resolver.wikilink("fixed_patterns")
    ('resolved', 'taxonomy:FP', 'Fixed Patterns')
    >>> resolver.wikilink("nlp_survey")[0], resolver.wikilink("Perfomer")[0]
    ('ignored', 'dangling')
    >>> resolver.wikilink("Liam Fedus")
    ('resolved', 'author:William Fedus', 'author of glam, st-moe, switch-transformer')
    >>> resolver.citekey("tay2022efficient", bracketed=True)
    ('resolved', 'efficient-transformers-survey', 'Efficient Transformers Survey')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.catalog import Catalog, Entry, project
from tools.catalog.addresses import paper_page_url, source_location, taxonomy_page_url
from tools.catalog.filenames import literature_note_name
from tools.catalog.names import NameIndex, closest, closest_hint, name_key, stem_overlap
from tools.catalog.people import People
from tools.notes.vault import link_targets

RESOLVED, DANGLING, IGNORED = "resolved", "dangling", "ignored"
Resolution = tuple[str, str | None, str]  # (status, target, detail)

# A bare @word is taken for a citekey when it has the shape of one (name2020word).
_CITEKEY_SHAPE = re.compile(r"^[A-Za-z][A-Za-z-]*\d{4}[A-Za-z0-9_-]*$")
# A near miss of an entry's name is a typo (dangling); a farther one a topic (ignored).
_NEAR_MISS_RATIO = 0.85
_NEAR_MISS_LENGTH = 2
# ...and the typo must be in the name's own part, not only in the words names share.
_STEM_RATIO = 0.6


@dataclass
class Resolver:
    """Everything a check needs to know about the catalog and the vault."""

    catalog: Catalog
    names: NameIndex
    vault_targets: set[str] = field(default_factory=set)
    site: str = field(default_factory=project.site_url)
    # name_key of every spelling -> canonical names; canonical name -> entry ids.
    author_keys: dict[str, set[str]] = field(init=False, default_factory=dict)
    papers_by_person: dict[str, list[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        people = People.of(self.catalog)
        self.papers_by_person = people.papers_by_person(self.catalog)
        for canonical in self.papers_by_person:
            for spelling in people.spellings(canonical):
                self.author_keys.setdefault(name_key(spelling), set()).add(canonical)

    @classmethod
    def build(cls, catalog: Catalog, vault: Path | None = None) -> Resolver:
        note_names = [
            (literature_note_name(entry.year, entry.title).removesuffix(".md"), entry.id)
            for entry in catalog.entries.values()
        ]
        return cls(
            catalog=catalog,
            names=NameIndex.build(catalog, extra=note_names),
            vault_targets=link_targets(vault) if vault else set(),
        )

    # -- one resolver per kind; each returns (status, target, detail)

    def wikilink(self, target: str) -> Resolution:
        name = target.strip().rsplit("/", 1)[-1].removesuffix(".md").rstrip("\\").strip()
        if not name:
            return IGNORED, None, "a heading of the same note"
        ids = self.names.lookup(name)
        if len(ids) == 1:
            return RESOLVED, ids[0], self.catalog.entries[ids[0]].name
        if ids:
            return DANGLING, None, f"ambiguous: {', '.join(ids)}"
        code = self.names.lookup_class(name)
        if code:
            return RESOLVED, f"taxonomy:{code}", self.catalog.taxonomy_class(code).name
        person = self._person(name)
        if person:
            wrote = self.papers_by_person[person]
            return RESOLVED, f"author:{person}", f"author of {', '.join(wrote)}"
        if name.casefold() in self.vault_targets:
            return IGNORED, None, "a note of the vault"
        near = self._near_misses(name)
        if near:
            return DANGLING, None, "not in the atlas; closest: " + ", ".join(near)
        return IGNORED, None, "not an atlas name (a topic or another note)"

    def _person(self, name: str) -> str | None:
        """The canonical name of the author ``name`` spells, if it is one person's."""
        people = self.author_keys.get(name_key(name), set())
        return next(iter(people)) if len(people) == 1 else None

    def _near_misses(self, name: str) -> list[str]:
        key = name_key(name)
        near = []
        for candidate in closest(key, self.names.by_key, n=3, cutoff=_NEAR_MISS_RATIO):
            typo = abs(len(candidate) - len(key)) <= _NEAR_MISS_LENGTH
            if typo and self._same_stem(key, candidate):
                near += sorted(self.names.by_key[candidate])
        return list(dict.fromkeys(near))

    def _same_stem(self, key: str, candidate: str) -> bool:
        """Whether the typo spares the candidate's own part, not just the words names share.

        "[[nlp_transformers]]" is a topic tag, not a typo of "GLA Transformer".
        """
        return stem_overlap(key, candidate, self.names.common_words) >= _STEM_RATIO

    def citekey(self, key: str, bracketed: bool) -> Resolution:
        if key.startswith("impl:"):
            return self.impl(key.removeprefix("impl:"))
        for entry in self.catalog.entries.values():
            if entry.citekey == key:
                return RESOLVED, entry.id, entry.name
        if bracketed or _CITEKEY_SHAPE.match(key):
            citekeys = [e.citekey for e in self.catalog.entries.values()]
            hint = closest_hint(key, citekeys, n=3, cutoff=0.7)
            return DANGLING, None, f"no entry has this citekey{hint}"
        return IGNORED, None, "not a citekey (a handle or a mention)"

    def impl(self, id: str) -> Resolution:
        entry = self.catalog.entries.get(id)
        if entry is None:
            hint = closest_hint(id, self.catalog.entries, n=3, cutoff=0.5)
            return DANGLING, None, f"no catalog entry {id!r}{hint}"
        if source_location(entry) is None:
            return DANGLING, id, "the entry has no implementation"
        return RESOLVED, id, entry.name

    def zotero(self, library: str | None, item: str) -> Resolution:
        if item.startswith("@"):
            return self.citekey(item[1:], bracketed=True)
        key = item.split("_")[-1]
        for entry in self.catalog.entries.values():
            link = entry.zotero
            if link is None or link.key != key:
                continue
            same_library = (
                library is None
                or library == link.library
                or (library == "library" and link.library.startswith("users/"))
            )
            if same_library:
                if link.deleted:
                    return DANGLING, entry.id, "the item was deleted in Zotero"
                return RESOLVED, entry.id, entry.name
        return (
            DANGLING,
            None,
            "no catalog entry has this Zotero item (the Zotero sync fills the zotero fields)",
        )

    def site_link(self, section: str, slug: str) -> Resolution:
        if section == "papers":
            entry = self.catalog.entries.get(slug)
            if entry:
                return RESOLVED, slug, entry.name
            return DANGLING, None, f"no catalog entry {slug!r}"
        if any(c.code == slug for c in self.catalog.taxonomy):
            return RESOLVED, f"taxonomy:{slug}", self.catalog.taxonomy_class(slug).name
        return DANGLING, None, f"no taxonomy class {slug!r}"

    def page_of(self, target: str) -> str:
        if target.startswith("taxonomy:"):
            return taxonomy_page_url(target.removeprefix("taxonomy:"), self.site)
        return paper_page_url(target, self.site)

    def entry(self, id: str) -> Entry:
        return self.catalog.entries[id]
