"""Names people use for the atlas's papers, and how a name written in a note finds its entry.

A note may call a model by its name ("Performer"), a spelling variant ("Big Bird",
"Nystromformer", "Set Transformers"), the name the survey uses ("Sinkhorn Sorting
Network", "Local Attention"), the paper's title, or the catalog id. Two lookups exist:

* :meth:`NameIndex.lookup` for an explicit link target (``[[...]]``): insensitive to
  case, diacritics, spacing, hyphens, underscores and a plural ``s``;
* :meth:`NameIndex.mention_pattern` for names in running text: model names and
  aliases only (not titles or ids), matched case-sensitively except for spacing,
  hyphens, diacritics and a plural ``s`` — prose says "etc" and "performers" for other
  things than ETC and the Performer.

Aliases come from each entry's ``aliases`` field in the catalog.

Every comparison of names in the tools folds them the same way, with :func:`fold`
(Unicode to ASCII by ``anyascii``, so "Łukasz" and "Lukasz" are one name), and every
"did you mean" hint comes from :func:`closest_hint`.

Examples:
    >>> name_key("Nyströmformer") == name_key("nystromformer") == name_key("Nyström-formers")
    True
    >>> name_key("Łukasz Kaiser") == name_key("Lukasz Kaiser")
    True
    >>> name_key("Big Bird") == name_key("BigBird")
    True
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from anyascii import anyascii

if TYPE_CHECKING:  # the loader imports this module; the index only needs the types
    from tools.catalog.loader import Catalog

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_COMMON_IN = 3


def fold(text: str) -> str:
    """``text`` in ASCII, as people type it into a search box or a note's link.

    Examples:
        >>> fold("Nyströmformer, Łukasz, Paweł")
        'Nystromformer, Lukasz, Pawel'
    """
    return anyascii(text)


def slug(text: str) -> str:
    """An ASCII anchor or file stem: folded, lower case, words joined by dashes ("" if none).

    Examples:
        >>> slug("Łukasz Kaiser"), slug("Aaron van den Oord"), slug("«»")
        ('lukasz-kaiser', 'aaron-van-den-oord', '')
    """
    return re.sub(r"[^a-z0-9]+", "-", fold(text).lower()).strip("-")


def closest(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The ``n`` candidates most like ``word`` (difflib's ratio of at least ``cutoff``).

    Examples:
        >>> closest("performr", ["performer", "reformer", "linformer"], n=2)
        ['performer', 'reformer']
    """
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=cutoff)


def closest_hint(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.5) -> str:
    """The hint appended to a "not found" message: ``"; closest: a, b"`` or ``""``.

    Examples:
        >>> "no entry 'bigbird'" + closest_hint("bigbird", ["big-bird", "dense"])
        "no entry 'bigbird'; closest: big-bird"
        >>> closest_hint("zzz", ["dense"])
        ''
    """
    near = closest(word, candidates, n=n, cutoff=cutoff)
    return f"; closest: {', '.join(near)}" if near else ""


def stem_overlap(word: str, candidate: str, common: Iterable[str]) -> float:
    """The share of ``candidate``'s own letters (outside ``common`` words) that ``word`` matches.

    Two names alike only in the words many names share are different models, however
    close their full keys: "nlptransformer" and "glatransformer" are 86% alike, but of
    "gla" only the "l" is matched. A typo inside the shared word still matches the stem.
    A candidate made of common words alone has no stem, and counts as fully matched.

    Examples:
        >>> common = {"transformer", "attention"}
        >>> round(stem_overlap("nlptransformer", "glatransformer", common), 2)
        0.33
        >>> stem_overlap("settransfomer", "settransformer", common)
        1.0
    """
    own = [True] * len(candidate)
    for term in common:
        for found in re.finditer(re.escape(term), candidate):
            own[found.start() : found.end()] = [False] * len(term)
    if not any(own):
        return 1.0
    matcher = difflib.SequenceMatcher(None, word, candidate, autojunk=False)
    blocks = matcher.get_matching_blocks()
    matched = sum(own[i] for block in blocks for i in range(block.b, block.b + block.size))
    return matched / sum(own)


def name_key(name: str) -> str:
    """The comparison key of a name: lower case, no accents, no separators, no plural ``s``.

    Examples:
        >>> name_key("Set Transformers")
        'settransformer'
        >>> name_key("transformer-xl")
        'transformerxl'
        >>> name_key("Luna")
        'luna'
    """
    key = _NOT_WORD.sub("", fold(name).casefold())
    # A plural "s" is dropped from longer words only ("RFA" and "Luna" stay as they are).
    return key[:-1] if len(key) > 4 and key.endswith("s") and not key.endswith("ss") else key


@dataclass
class NameIndex:
    """Every name of every entry (and of the taxonomy classes) of one catalog."""

    catalog: Catalog
    by_key: dict[str, set[str]] = field(default_factory=dict)
    class_by_key: dict[str, str] = field(default_factory=dict)
    mention_names: dict[str, str] = field(default_factory=dict)  # written name -> entry id
    # Words in the names of at least _COMMON_IN entries ("transformer", "attention").
    common_words: set[str] = field(default_factory=set)
    _mention_regex: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, catalog: Catalog, extra: Iterable[tuple[str, str]] = ()) -> NameIndex:
        """Index ``catalog``; ``extra`` adds (name, entry id) pairs such as note file names."""
        index = cls(catalog)
        for entry in catalog.entries.values():
            for name in (entry.id, entry.name, entry.title, entry.citekey):
                index._add(name, entry.id)
            for alias in entry.aliases:
                index._add(alias, entry.id)
            for written in (entry.name, *entry.aliases):
                index.mention_names.setdefault(written, entry.id)
        for name, id in extra:
            index._add(name, id)
        for taxonomy_class in catalog.taxonomy:
            index.class_by_key[name_key(taxonomy_class.name)] = taxonomy_class.code
        index.common_words = _common_words(catalog)
        return index

    def _add(self, name: str, id: str) -> None:
        key = name_key(name)
        if key:
            self.by_key.setdefault(key, set()).add(id)

    def lookup(self, name: str) -> list[str]:
        """Ids of the entries called ``name`` (several when the name is ambiguous)."""
        return sorted(self.by_key.get(name_key(name), ()))

    def lookup_class(self, name: str) -> str | None:
        """The code of the taxonomy class called ``name`` ("Kernels", "fixed_patterns")."""
        return self.class_by_key.get(name_key(name))

    def mention_pattern(self) -> re.Pattern[str]:
        """A regex of the model names as written in prose; group ``name`` is the name.

        Spaces and hyphens inside a name are interchangeable or optional ("Big Bird",
        "BigBird", "Big-Bird"), a plural ``s`` is allowed, accents are optional.
        """
        if self._mention_regex is None:  # built once: a vault check uses it for every note
            alternatives = sorted(self.mention_names, key=len, reverse=True)
            body = "|".join(_flexible(name) for name in alternatives)
            self._mention_regex = re.compile(rf"(?<![\w@/#:.-])(?P<name>{body})(?![\w/-])")
        return self._mention_regex

    def mention_id(self, written: str) -> str | None:
        """The entry a prose mention found by :meth:`mention_pattern` names."""
        key = name_key(written)
        for name, id in self.mention_names.items():
            if name_key(name) == key:
                return id
        return None


def _common_words(catalog: Catalog) -> set[str]:
    """The name words shared by at least ``_COMMON_IN`` entries' names and aliases."""
    entries_with: dict[str, set[str]] = {}
    for entry in catalog.entries.values():
        for name in (entry.name, *entry.aliases):
            for word in re.split(r"[\s_-]+", name):
                key = name_key(word)
                if len(key) > 3:  # "GLA", "RNN" are the distinctive part, not filler
                    entries_with.setdefault(key, set()).add(entry.id)
    return {word for word, ids in entries_with.items() if len(ids) >= _COMMON_IN}


def _flexible(name: str) -> str:
    """A regex for ``name`` tolerating separators, accents and a plural.

    Examples:
        >>> bool(re.fullmatch(_flexible("Big Bird"), "BigBird"))
        True
        >>> bool(re.fullmatch(_flexible("Nyströmformer"), "Nystromformers"))
        True
    """
    parts: list[str] = []
    for char in name:
        if char in " -":
            parts.append(r"[ \-]?")
        elif fold(char) != char:
            parts.append(f"(?:{re.escape(char)}|{re.escape(fold(char))})")
        else:
            parts.append(re.escape(char))
    return "".join(parts) + "s?"
