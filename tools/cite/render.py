"""A citation as Markdown, an Obsidian callout, BibTeX or CSL-JSON.

The paper's BibTeX and CSL-JSON are the catalog's own (:mod:`tools.catalog.citations`);
this module adds the implementation, cited as software of the atlas. Its ``@software``
record is written by the catalog's one BibTeX writer, :func:`bibtex_record`.
"""

from __future__ import annotations

import json
from typing import Any

from tools.catalog import project
from tools.catalog.addresses import IMPL_PREFIX, paper_page_url
from tools.catalog.citations import bibtex_entry, bibtex_record, csl_item
from tools.catalog.filenames import literature_note_name
from tools.catalog.model import Entry
from tools.cite.build import (
    ATLAS_AUTHOR,
    ATLAS_NAME,
    Citation,
    no_implementation,
    short_authors,
    software_title,
)

FORMATS = ("markdown", "obsidian", "bibtex", "csljson")


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


def render_markdown(citation: Citation) -> str:
    """Two Markdown paragraphs: the paper, then the implementation."""
    entry = citation.entry
    lines = [f"**Paper.** {_paper_line(entry)}", ""]
    if citation.implementation:
        lines.append(f"**Implementation.** {_implementation_line(citation)}")
    else:
        lines += [
            f"**Implementation.** {no_implementation(entry)} "
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
        lines.append(f"> Implementation: {no_implementation(entry)}")
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
    return bibtex_record("software", f"{IMPL_PREFIX}{impl.id}", fields)


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
    """The citation in ``format`` (one of :data:`FORMATS`).

    Raises:
        ValueError: an unknown format.
    """
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
