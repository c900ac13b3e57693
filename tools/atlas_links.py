"""Stable addresses of the atlas: site pages, pinned sources and ``impl:<id>`` citations.

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

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from tools import project
from tools.catalog import ROOT, Catalog, Entry

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


@dataclass(frozen=True)
class SourceLocation:
    """Where the main class of an implementation is defined."""

    module: str
    class_name: str
    path: str  # relative to the repository root, with ``/``
    first_line: int
    last_line: int

    @property
    def fragment(self) -> str:
        """The GitHub line-range fragment, e.g. ``#L212-L280``."""
        return f"#L{self.first_line}-L{self.last_line}"

    def pinned_url(self, commit: str, repo: str | None = None) -> str:
        """The source on the repository's web UI at ``commit``, with the line range.

        Examples:
            >>> where = SourceLocation("implementations.x", "X", "implementations/x.py", 3, 9)
            >>> where.pinned_url("abc123", "https://github.com/o/r")
            'https://github.com/o/r/blob/abc123/implementations/x.py#L3-L9'
        """
        return f"{repo or project.repo_url()}/blob/{commit}/{self.path}{self.fragment}"


def implementation_module(entry: Entry) -> str | None:
    """The module implementing ``entry``: its ``implementation`` field, else the registry's.

    The registry is consulted because entries may not yet name a module that exists.
    """
    if entry.implementation:
        return entry.implementation
    implementations = importlib.import_module("implementations")
    if entry.id in implementations.available():
        return implementations.module_name(entry.id)
    return None


def source_location(entry: Entry) -> SourceLocation | None:
    """The main class of ``entry``'s implementation and its line range, or None."""
    module = implementation_module(entry)
    if module is None:
        return None
    implementations = importlib.import_module("implementations")
    importlib.import_module(module)
    try:
        cls = implementations.mechanism(entry.id).cls
    except KeyError:
        return None
    lines, first = inspect.getsourcelines(cls)
    source_file = Path(inspect.getsourcefile(cls) or "").resolve()
    try:
        relative = source_file.relative_to(ROOT).as_posix()
    except ValueError:  # installed elsewhere: link the module's conventional path
        relative = module.replace(".", "/") + ".py"
    return SourceLocation(cls.__module__, cls.__qualname__, relative, first, first + len(lines) - 1)


@dataclass(frozen=True)
class ImplementationCitation:
    """What ``impl:<id>`` resolves to."""

    id: str
    page_url: str
    source_url: str
    location: SourceLocation
    commit: str


def resolve_impl(reference: str, catalog: Catalog) -> ImplementationCitation:
    """Resolve ``impl:<id>`` to the entry's site page and its pinned source with line range.

    Args:
        reference: ``impl:<id>`` (a bare id is accepted too).
        catalog: The catalog to look the id up in.

    Raises:
        KeyError: no such entry (the message names the closest ids), or the entry has no
            implementation.
        tools.project.NotACheckoutError: not a git checkout, so nothing can be pinned.
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
        source_url=location.pinned_url(commit),
        location=location,
        commit=commit,
    )


def impl_urls(reference: str, catalog: Catalog) -> tuple[str, str]:
    """``impl:<id>`` as (site page URL, source URL pinned to the commit with the line range).

    Examples:
        >>> from tools.catalog import load_catalog
        >>> page, source = impl_urls("impl:performer", load_catalog())
        >>> page.endswith("/papers/performer/"), "/implementations/performer.py#L" in source
        (True, True)
    """
    resolved = resolve_impl(reference, catalog)
    return resolved.page_url, resolved.source_url
