"""Ready-to-paste citations of a paper of the atlas and of its reference implementation.

Command line::

    python -m tools.cite performer                       # Markdown (the default)
    python -m tools.cite performer --format obsidian     # a callout for an Obsidian note
    python -m tools.cite performer --format bibtex       # @inproceedings + @software
    python -m tools.cite impl:performer --format csljson

The paper is cited with its catalog citekey; the implementation as software of the
atlas (``@software{impl:<id>, ...}``) with the version, the commit, the source URL pinned
to that commit with the line range of the main class, and the entry's site page.
``impl:<id>`` is the stable short form to write in notes (see :mod:`tools.atlas_links`).
Unknown ids exit with status 2 and the closest matches.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools import project
from tools.atlas_links import (
    IMPL_PREFIX,
    ImplementationCitation,
    paper_page_url,
    parse_impl_ref,
    resolve_impl,
    source_location,
)
from tools.atlas_names import NameIndex
from tools.catalog import Catalog, Entry, load_catalog
from tools.export import bibtex_entry, csl_item
from tools.notes_filenames import literature_note_name

FORMATS = ("markdown", "obsidian", "bibtex", "csljson")
ATLAS_AUTHOR = "Efficient Transformers Atlas contributors"
ATLAS_NAME = "Efficient Transformers Atlas"
# Exit statuses: 2 for an unknown id (like argparse's usage errors), 1 for other failures.
EXIT_UNKNOWN_ID = 2
EXIT_FAILURE = 1


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

    Examples:
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
        tools.project.NotACheckoutError: it has one, but this is not a git checkout.
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
        >>> software_title(load_catalog().entries["performer"])
        'Performer: reference implementation in the Efficient Transformers Atlas'
    """
    return f"{entry.name}: reference implementation in the {ATLAS_NAME}"


def _paper_line(entry: Entry) -> str:
    arxiv = f" arXiv:{entry.arxiv}." if entry.arxiv else ""
    doi = f" doi:{entry.doi}." if entry.doi else ""
    return (
        f"{short_authors(entry.authors)} ({entry.venue_year}). *{entry.title}*. "
        f"{entry.venue}.{arxiv}{doi} {entry.url} [@{entry.citekey}]"
    )


def _implementation_line(citation: Citation) -> str:
    impl = citation.implementation
    assert impl is not None
    where = impl.location
    return (
        f"{ATLAS_AUTHOR} ({citation.commit_date[:4] if citation.commit_date else ''}). "
        f"*{software_title(citation.entry)}*, version {citation.version}, "
        f"commit {impl.commit[:12]}. Class `{where.class_name}`: "
        f"[{where.path}{where.fragment}]({impl.source_url}). "
        f"Atlas page: [{citation.entry.name}]({impl.page_url}). Cite as impl:{impl.id}"
    )


def _no_implementation(entry: Entry) -> str:
    return (
        f"{entry.name} has no reference implementation in the atlas yet: only the paper is cited."
    )


def render_markdown(citation: Citation) -> str:
    """Two Markdown paragraphs: the paper, then the implementation."""
    entry = citation.entry
    lines = [f"**Paper.** {_paper_line(entry)}", ""]
    if citation.implementation:
        lines.append(f"**Implementation.** {_implementation_line(citation)}")
    else:
        lines += [
            f"**Implementation.** {_no_implementation(entry)} "
            f"Atlas page: [{entry.name}]({paper_page_url(entry.id)})"
        ]
    return "\n".join(lines) + "\n"


def render_obsidian(citation: Citation) -> str:
    """An Obsidian ``[!cite]`` callout linking the literature note and the authors."""
    entry = citation.entry
    note = literature_note_name(entry.year, entry.title).removesuffix(".md")
    authors = " ".join(f"[[{author}]]" for author in entry.authors)
    lines = [
        f"> [!cite] {entry.name}",
        f"> Paper: [[{note}|{entry.title}]] ({entry.venue}) [@{entry.citekey}]",
        f"> Authors: {authors}",
    ]
    impl = citation.implementation
    if impl:
        lines.append(
            f"> Implementation: impl:{impl.id}, class `{impl.location.class_name}`: "
            f"[source at {impl.commit[:12]}]({impl.source_url}) · "
            f"[atlas page]({impl.page_url}) (version {citation.version})"
        )
    else:
        lines.append(f"> Implementation: {_no_implementation(entry)}")
    return "\n".join(lines) + "\n"


def software_bibtex(citation: Citation) -> str:
    """The ``@software`` record of the implementation (biblatex; BibTeX keeps its fields)."""
    impl = citation.implementation
    assert impl is not None
    where = impl.location
    fields = [
        ("author", "{" + ATLAS_AUTHOR + "}"),
        ("title", "{" + software_title(citation.entry) + "}"),
        ("version", citation.version),
        ("year", (citation.commit_date or "")[:4]),
        ("date", citation.commit_date or ""),
        ("url", impl.source_url),
        ("repository", project.repo_url()),
        ("commit", impl.commit),
        (
            "note",
            f"Class {where.class_name}, {where.path}, lines {where.first_line}--{where.last_line}, "
            f"commit {impl.commit}. Atlas page: \\url{{{impl.page_url}}}",
        ),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@software{{{IMPL_PREFIX}{impl.id},\n{body}\n}}\n"


def software_csl(citation: Citation) -> dict[str, Any]:
    """The CSL-JSON item (type ``software``) of the implementation."""
    impl = citation.implementation
    assert impl is not None
    date = [int(part) for part in (citation.commit_date or "").split("-") if part]
    item: dict[str, Any] = {
        "id": f"{IMPL_PREFIX}{impl.id}",
        "type": "software",
        "title": software_title(citation.entry),
        "author": [{"literal": ATLAS_AUTHOR}],
        "version": citation.version,
        "URL": impl.source_url,
        "publisher": ATLAS_NAME,
        "note": (
            f"commit {impl.commit}; class {impl.location.class_name}, {impl.location.path} "
            f"lines {impl.location.first_line}-{impl.location.last_line}; "
            f"atlas page {impl.page_url}"
        ),
    }
    if date:
        item["issued"] = {"date-parts": [date]}
    return item


def render(citation: Citation, format: str) -> str:
    """The citation in ``format`` (one of :data:`FORMATS`)."""
    if format == "markdown":
        return render_markdown(citation)
    if format == "obsidian":
        return render_obsidian(citation)
    if format == "bibtex":
        parts = [bibtex_entry(citation.entry)]
        if citation.implementation:
            parts.append(software_bibtex(citation))
        return "\n".join(parts)
    if format == "csljson":
        items = [csl_item(citation.entry)]
        if citation.implementation:
            items.append(software_csl(citation))
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.cite", description=__doc__.split("\n")[0]
    )
    parser.add_argument("id", help="catalog id, impl:<id>, citekey or model name")
    parser.add_argument("--format", choices=FORMATS, default="markdown")
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: catalog/)")
    args = parser.parse_args(argv)

    catalog = load_catalog(args.catalog)
    try:
        entry = find_entry(catalog, args.id)
    except (KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_UNKNOWN_ID
    try:
        citation = build_citation(entry, catalog)
    except project.NotACheckoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if citation.implementation is None and args.format in ("bibtex", "csljson"):
        # Machine-readable output stays parseable; the notice goes to stderr.
        print(f"note: {_no_implementation(entry)}", file=sys.stderr)
    elif citation.implementation and project.has_local_changes(
        citation.implementation.location.path
    ):
        print(
            f"warning: {citation.implementation.location.path} has uncommitted changes; "
            "the pinned line range is that of the last commit only if you commit them first",
            file=sys.stderr,
        )
    sys.stdout.write(render(citation, args.format))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
