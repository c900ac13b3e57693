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

Examples:
    >>> name_key("Nyströmformer") == name_key("nystromformer") == name_key("Nyström-formers")
    True
    >>> name_key("Big Bird") == name_key("BigBird")
    True
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from tools.catalog import Catalog, Entry

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def strip_diacritics(text: str) -> str:
    """``text`` without accents: "Nyström" gives "Nystrom".

    Examples:
        >>> strip_diacritics("Nyströmformer")
        'Nystromformer'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


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
    key = _NOT_WORD.sub("", strip_diacritics(name).casefold())
    # A plural "s" is dropped from longer words only ("RFA" and "Luna" stay as they are).
    return key[:-1] if len(key) > 4 and key.endswith("s") and not key.endswith("ss") else key


@dataclass(frozen=True)
class Match:
    """What a name resolved to: one entry, or one taxonomy class."""

    entry_id: str | None = None
    class_code: str | None = None


@dataclass
class NameIndex:
    """Every name of every entry (and of the taxonomy classes) of one catalog."""

    catalog: Catalog
    by_key: dict[str, set[str]] = field(default_factory=dict)
    class_by_key: dict[str, str] = field(default_factory=dict)
    mention_names: dict[str, str] = field(default_factory=dict)  # written name -> entry id
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

    def closest(self, name: str, n: int = 3, cutoff: float = 0.8) -> list[Entry]:
        """The entries whose names are closest to ``name`` (for "did you mean")."""
        keys = difflib.get_close_matches(name_key(name), list(self.by_key), n=n, cutoff=cutoff)
        ids = dict.fromkeys(id for key in keys for id in sorted(self.by_key[key]))
        return [self.catalog.entries[id] for id in ids]

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
        elif strip_diacritics(char) != char:
            parts.append(f"[{re.escape(char)}{re.escape(strip_diacritics(char))}]")
        else:
            parts.append(re.escape(char))
    return "".join(parts) + "s?"
