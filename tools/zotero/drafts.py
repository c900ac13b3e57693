"""Draft entries for Zotero items the catalog does not have yet (``--add-new``).

A draft gets a model name from the title, a unique kebab-case id, a unique citation key
and a URL; ``draft: true`` marks it as waiting for a person to fill in the rest.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tools.catalog import ZoteroLink
from tools.zotero.fields import normalised_title
from tools.zotero.mapping import MappedItem

# A draft needs these from Zotero; the rest of an entry is a person's work.
DRAFT_REQUIRED = ("title", "authors", "year", "venue")

_STOP_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "by", "do", "does", "for", "from", "how", "in", "is"}
    | {"it", "of", "on", "or", "the", "to", "towards", "via", "what", "when", "why", "with"}
)


def fallback_url(fields: Mapping[str, Any]) -> str | None:
    """A URL for a new entry whose Zotero item has none: the DOI's, arXiv's or Zotero's page.

    Examples:
        >>> fallback_url({"doi": "10.1145/3530811", "arxiv": "2009.06732"})
        'https://doi.org/10.1145/3530811'
        >>> fallback_url({"arxiv": "1810.04805"})
        'https://arxiv.org/abs/1810.04805'
        >>> fallback_url({"zotero": {"library": "groups/2480461", "key": "HF7B8SJU"}})
        'https://www.zotero.org/groups/2480461/items/HF7B8SJU'
    """
    if fields.get("doi"):
        return f"https://doi.org/{fields['doi']}"
    if fields.get("arxiv"):
        return f"https://arxiv.org/abs/{fields['arxiv']}"
    link = fields.get("zotero")
    if not link:
        return None
    # Not validated here: the store validates the whole draft and says what is wrong.
    return ZoteroLink.model_construct(library=link["library"], key=link["key"]).web_uri


def ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` (accents folded, punctuation dropped).

    Examples:
        >>> ascii_words("Nyströmformer: A Nyström-Based Algorithm")
        ['nystromformer', 'a', 'nystrom', 'based', 'algorithm']
    """
    return normalised_title(text).split()


def make_citekey(authors: Sequence[str], year: int, title: str, taken: Iterable[str] = ()) -> str:
    """A Google-Scholar-style key, first author's family name + year + first title word.

    A letter is appended when the key is taken (``b`` to ``z``, then ``aa``, ``ab``…: a
    BibTeX key has letters and digits only, never the ``{`` that follows ``z``).

    Examples:
        >>> make_citekey(["Krzysztof Choromanski"], 2021, "Rethinking Attention with Performers")
        'choromanski2021rethinking'
        >>> make_citekey(["Ashish Vaswani"], 2017, "Attention Is All You Need",
        ...              taken={"vaswani2017attention"})
        'vaswani2017attentionb'
        >>> taken = {"vaswani2017attention" + c for c in ["", *"bcdefghijklmnopqrstuvwxyz"]}
        >>> make_citekey(["Ashish Vaswani"], 2017, "Attention Is All You Need", taken=taken)
        'vaswani2017attentionaa'
        >>> make_citekey([], 2020, "The Efficient Transformer")
        'anonymous2020efficient'
    """
    family = ascii_words(authors[0])[-1:] if authors else []
    words = [word for word in ascii_words(title) if word not in _STOP_WORDS]
    base = f"{(family or ['anonymous'])[0]}{year}{words[0] if words else ''}"
    if not base[0].isalpha():
        base = f"k{base}"
    taken = set(taken)
    suffixes = _suffixes()
    key = base
    while key in taken:
        key = base + next(suffixes)
    return key


def _suffixes() -> Iterator[str]:
    """``b`` … ``z``, then ``aa``, ``ab`` … ``zz``, ``aaa`` …: endless, letters only."""
    letters = string.ascii_lowercase
    yield from letters[1:]
    for length in itertools.count(2):
        for combination in itertools.product(letters, repeat=length):
            yield "".join(combination)


def draft_name(title: str) -> str:
    """A model name for a draft: the part before a colon when short, else the title.

    Examples:
        >>> draft_name("Reformer: The Efficient Transformer")
        'Reformer'
        >>> draft_name("Attention Is All You Need")
        'Attention Is All You Need'
    """
    head, colon, _ = title.partition(":")
    return head.strip() if colon and 0 < len(head.split()) <= 4 else title.strip()


def draft_id(name: str, year: int | None, taken: Iterable[str] = ()) -> str:
    """A kebab-case id from the name (at most six words), made unique with the year or a number.

    Examples:
        >>> draft_id("Reformer", 2020)
        'reformer'
        >>> draft_id("Reformer", 2020, taken={"reformer"})
        'reformer-2020'
        >>> draft_id("Reformer", 2020, taken={"reformer", "reformer-2020"})
        'reformer-2020-2'
    """
    base = "-".join(ascii_words(name)[:6]) or "untitled"
    taken = set(taken)
    candidates = [base, f"{base}-{year}" if year else base]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{candidates[-1]}-{number}" in taken:
        number += 1
    return f"{candidates[-1]}-{number}"


@dataclass(frozen=True)
class Draft:
    """A new entry drafted from a Zotero item.

    Attributes:
        id: The new entry's id, unique in the catalog.
        name: The model name, from the title.
        fields: The citation fields, a unique ``citekey`` and a ``url`` included.
    """

    id: str
    name: str
    fields: dict[str, Any]

    @property
    def citekey(self) -> str:
        return str(self.fields["citekey"])

    def entry_data(self) -> dict[str, Any]:
        """The entry as the catalog's store takes it."""
        return {"id": self.id, "name": self.name, "kind": "model", "draft": True, **self.fields}


def draft_entry(
    item: MappedItem, taken_ids: set[str], citekey_owners: Mapping[str, str]
) -> Draft | str:
    """The draft entry for ``item``, or why none can be made.

    Args:
        item: An item no entry matched.
        taken_ids: The ids of the catalog's entries (and of drafts made before).
        citekey_owners: Citation key → the entry that has it.

    Examples:
        >>> from tools.zotero.record import ZoteroRecord
        >>> from tools.zotero.mapping import map_record
        >>> item = map_record(ZoteroRecord({"title": "Reformer: The Efficient Transformer",
        ...     "creators": [{"creatorType": "author", "firstName": "N", "lastName": "Kitaev"}],
        ...     "date": "2020", "conferenceName": "ICLR", "archiveID": "arXiv:2001.04451"}))
        >>> draft = draft_entry(item, {"reformer"}, {})
        >>> draft.id, draft.citekey, draft.fields["url"]
        ('reformer-2020', 'kitaev2020reformer', 'https://arxiv.org/abs/2001.04451')
        >>> draft_entry(map_record(ZoteroRecord({"title": "T"})), set(), {})
        'cannot draft an entry: Zotero has no authors, year, venue'
    """
    fields = dict(item.fields)
    missing = [name for name in DRAFT_REQUIRED if name not in fields]
    if missing:
        return f"cannot draft an entry: Zotero has no {', '.join(missing)}"
    fields.setdefault("url", fallback_url(fields))
    if not fields["url"]:
        return "cannot draft an entry: Zotero has no URL, DOI or arXiv id"
    if fields.get("citekey") in citekey_owners or "citekey" not in fields:
        fields["citekey"] = make_citekey(
            fields["authors"], fields["year"], fields["title"], taken=citekey_owners
        )
    name = draft_name(fields["title"])
    return Draft(draft_id(name, fields["year"], taken=taken_ids), name, fields)
