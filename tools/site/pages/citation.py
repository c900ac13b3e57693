"""What a paper page's Cite box cites besides the paper: its implementation, as software.

The record is the one ``python -m tools.cite <id> --format bibtex`` prints
(``@software{impl:<id>, ...}``), built here from the catalog's own BibTeX writer and
addresses; the site never imports ``tools.cite``. Also the dated stamp of every page.

Examples:
    >>> from tools.catalog import load_catalog
    >>> from tools.catalog.mechanisms import declared_mechanisms
    >>> entry = load_catalog().entries["performer"]
    >>> info = declared_mechanisms()["performer"]
    >>> record = software_bibtex(entry, info, Pinned("abc", "2026-01-02"))
    >>> print(record.splitlines()[0])
    @software{impl:performer,
    >>> "version = {" in record and "commit = {abc}" in record
    True
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache

from tools.catalog import Entry, project
from tools.catalog.addresses import IMPL_PREFIX, paper_page_url, pinned_source_url
from tools.catalog.citations import bibtex_record, bibtex_text
from tools.catalog.mechanisms import DeclaredMechanism

ATLAS_NAME = "Efficient Transformers Atlas"
ATLAS_AUTHOR = f"{ATLAS_NAME} contributors"


@dataclass(frozen=True)
class Pinned:
    """The commit the site is built from and its date; both None outside a git checkout."""

    commit: str | None
    date: str | None


@cache
def pinned() -> Pinned:
    """The checked-out commit and its date (``git log -1``), once per process."""
    try:
        return Pinned(project.commit(), project.commit_date())
    except project.NotACheckoutError:
        return Pinned(None, None)


def updated_stamp(at: Pinned) -> str:
    """The "last updated" line of every page: the commit's date, else today's.

    Examples:
        >>> updated_stamp(Pinned("0123456789abcdef", "2026-01-02"))
        'Last updated 2026-01-02 (commit 0123456789)'
    """
    if at.commit and at.date:
        return f"Last updated {at.date} (commit {at.commit[:10]})"
    return f"Last updated {datetime.date.today().isoformat()} (generated outside a git checkout)"


def software_bibtex(entry: Entry, info: DeclaredMechanism, at: Pinned) -> str:
    """The ``@software`` record of ``entry``'s implementation (biblatex)."""
    page = paper_page_url(entry.id)
    url = pinned_source_url(info, at.commit) if at.commit else page
    lines = f"lines {info.first_line}--{info.last_line}"
    fields = [
        ("author", "{" + ATLAS_AUTHOR + "}"),
        (
            "title",
            "{" + bibtex_text(f"{entry.name}: reference implementation in the {ATLAS_NAME}") + "}",
        ),
        ("version", project.version()),
        ("year", (at.date or "")[:4]),
        ("date", at.date or ""),
        ("url", url),
        ("repository", project.repo_url()),
        ("commit", at.commit or ""),
        (
            "note",
            f"Class {info.class_name}, {info.path}, {lines}"
            + (f", commit {at.commit}" if at.commit else "")
            + f". Atlas page: \\url{{{page}}}",
        ),
    ]
    return bibtex_record("software", f"{IMPL_PREFIX}{entry.id}", fields)
