"""Stable addresses of the atlas: site pages, pinned sources and ``impl:<id>`` citations.

The one place that builds the atlas's URLs: the site, the notes and the citations all
ask here for a page's address or a pinned source link.

The site's addresses are a contract (an entry's page is ``/papers/<id>/``, a class's
page ``/taxonomy/<code>/``). ``impl:<id>`` is the stable way to cite an implementation:
it resolves to the entry's site page and to the source of its main class, pinned to
the current commit with the class's line range.

Examples:
    >>> paper_page_url("performer", "https://x.org/atlas/")
    'https://x.org/atlas/papers/performer/'
    >>> parse_impl_ref("impl:big-bird")
    'big-bird'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.catalog import project
from tools.catalog.loader import Catalog
from tools.catalog.mechanisms import DeclaredMechanism, declared_mechanisms, module_name
from tools.catalog.model import Entry

IMPL_PREFIX = "impl:"
_ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_IMPL_REF = re.compile(rf"^{IMPL_PREFIX}({_ID})$")


def paper_page_url(id: str, site: str | None = None) -> str:
    """The site page of catalog entry ``id``."""
    return f"{site or project.site_url()}papers/{id}/"


def taxonomy_page_url(code: str, site: str | None = None) -> str:
    """The site page of taxonomy class ``code``.

    Examples:
        >>> taxonomy_page_url("KR", "https://x.org/")
        'https://x.org/taxonomy/KR/'
    """
    return f"{site or project.site_url()}taxonomy/{code}/"


def parse_impl_ref(text: str) -> str:
    """The catalog id of an ``impl:<id>`` reference.

    Raises:
        ValueError: ``text`` is not of the form ``impl:<kebab-case-id>``.

    Examples:
        >>> parse_impl_ref("performer")
        Traceback (most recent call last):
        ...
        ValueError: 'performer' is not an implementation reference; expected impl:<id>
    """
    match = _IMPL_REF.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an implementation reference; expected impl:<id>")
    return match.group(1)


def implementation_module(entry: Entry) -> str | None:
    """The module implementing ``entry``: its ``implementation`` field, else the declared one.

    The declarations are consulted because entries may not yet name a module that exists.
    """
    if entry.implementation:
        return entry.implementation
    return module_name(entry.id) if entry.id in declared_mechanisms() else None


def pinned_source_url(location: DeclaredMechanism, commit: str, repo: str | None = None) -> str:
    """The source of a class on the repository's web UI at ``commit``, with its lines.

    Examples:
        >>> from tools.catalog import load_catalog
        >>> where = source_location(load_catalog().entries["linformer"])
        >>> pinned_source_url(where, "abc123", "https://github.com/o/r")  # doctest: +ELLIPSIS
        'https://github.com/o/r/blob/abc123/implementations/linformer.py#L...-L...'
    """
    return f"{repo or project.repo_url()}/blob/{commit}/{location.path}{location.fragment}"


def source_location(entry: Entry) -> DeclaredMechanism | None:
    """The main class of ``entry``'s implementation and its line range, or None.

    Examples:
        >>> from tools.catalog import load_catalog
        >>> where = source_location(load_catalog().entries["performer"])
        >>> where.path, where.class_name
        ('implementations/performer.py', 'Performer')
    """
    module = implementation_module(entry)
    declared = declared_mechanisms().get(entry.id)
    if module is None or declared is None or declared.module != module:
        return None
    return declared


@dataclass(frozen=True)
class ImplementationCitation:
    """What ``impl:<id>`` resolves to."""

    id: str
    page_url: str
    source_url: str
    location: DeclaredMechanism
    commit: str


def resolve_impl(reference: str, catalog: Catalog) -> ImplementationCitation:
    """Resolve ``impl:<id>`` to the entry's site page and its pinned source with line range.

    Args:
        reference: ``impl:<id>`` (a bare id is accepted too).
        catalog: The catalog to look the id up in.

    Raises:
        KeyError: no such entry (the message names the closest ids), or the entry has no
            implementation.
        tools.catalog.project.NotACheckoutError: not a git checkout, so nothing can be pinned.
    """
    id = parse_impl_ref(reference) if reference.startswith(IMPL_PREFIX) else reference
    entry = catalog.entry(id)
    location = source_location(entry)
    if location is None:
        raise KeyError(f"{entry.id!r} ({entry.name}) has no implementation in the atlas")
    commit = project.commit()
    return ImplementationCitation(
        id=entry.id,
        page_url=paper_page_url(entry.id),
        source_url=pinned_source_url(location, commit),
        location=location,
        commit=commit,
    )
