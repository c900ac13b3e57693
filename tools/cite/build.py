"""What a citation holds: the entry a reference names, and its implementation, if any.

Examples:
    >>> from tools.catalog import load_catalog
    >>> catalog = load_catalog()
    >>> find_entry(catalog, "Big Bird").id
    'big-bird'
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.catalog import Catalog, Entry, project
from tools.catalog.addresses import (
    IMPL_PREFIX,
    ImplementationCitation,
    parse_impl_ref,
    resolve_impl,
    source_location,
)
from tools.catalog.names import NameIndex

ATLAS_AUTHOR = "Efficient Transformers Atlas contributors"
ATLAS_NAME = "Efficient Transformers Atlas"


@dataclass(frozen=True)
class Citation:
    """Everything needed to cite one entry: the paper, and its implementation if any."""

    entry: Entry
    implementation: ImplementationCitation | None
    version: str
    commit_date: str | None


def find_entry(catalog: Catalog, reference: str) -> Entry:
    """The entry named by ``reference``: an id, ``impl:<id>``, a citekey or a model name.

    Raises:
        KeyError: nothing matches; the message names the closest ids.
        ValueError: ``reference`` starts with ``impl:`` but is no ``impl:<id>``.

    Examples:
        >>> from tools.catalog import load_catalog
        >>> catalog = load_catalog()
        >>> find_entry(catalog, "impl:big-bird").name
        'BigBird'
        >>> find_entry(catalog, "Nystromformer").id
        'nystromformer'
    """
    id = parse_impl_ref(reference) if reference.startswith(IMPL_PREFIX) else reference
    if id in catalog.entries:
        return catalog.entries[id]
    matches = NameIndex.build(catalog).lookup(id)
    if len(matches) == 1:
        return catalog.entries[matches[0]]
    return catalog.entry(id)  # raises KeyError with the closest ids


def build_citation(entry: Entry, catalog: Catalog) -> Citation:
    """Resolve the implementation of ``entry`` (pinned to the current commit), if it has one.

    Raises:
        tools.catalog.project.NotACheckoutError: it has one, but this is not a git checkout.
    """
    implementation = None
    if source_location(entry) is not None:
        implementation = resolve_impl(IMPL_PREFIX + entry.id, catalog)
    return Citation(
        entry=entry,
        implementation=implementation,
        version=project.version(),
        commit_date=project.commit_date() if implementation else None,
    )


def short_authors(authors: list[str], limit: int = 4) -> str:
    """Authors for a one-line citation: all of a short list, else the first three et al.

    Examples:
        >>> short_authors(["Yi Tay", "Mostafa Dehghani"])
        'Yi Tay, Mostafa Dehghani'
        >>> short_authors(["A B", "C D", "E F", "G H", "I J"])
        'A B, C D, E F et al.'
    """
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[:3]) + " et al."


def software_title(entry: Entry) -> str:
    """The title of the implementation as a piece of software.

    Examples:
        >>> from tools.catalog import load_catalog
        >>> software_title(load_catalog().entries["performer"])
        'Performer: reference implementation in the Efficient Transformers Atlas'
    """
    return f"{entry.name}: reference implementation in the {ATLAS_NAME}"


def no_implementation(entry: Entry) -> str:
    """The sentence that says an entry has no implementation to cite."""
    return (
        f"{entry.name} has no reference implementation in the atlas yet: only the paper is cited."
    )
