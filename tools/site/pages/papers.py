"""The page of each catalog entry (``papers/<id>.md``) and the list of them all.

Examples:
    >>> from tools.catalog import load_catalog
    >>> page = papers_index(load_catalog())
    >>> page.splitlines()[0], "[Performer](performer.md)" in page
    ('# Papers', True)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup

from tools.catalog import Catalog, Entry
from tools.catalog.citations import bibtex_entry, csl_item
from tools.catalog.mechanisms import DeclaredMechanism
from tools.catalog.names import fold
from tools.site.context import SiteContext, by_name
from tools.site.escaping import front_matter, render
from tools.site.pages.citation import pinned, software_bibtex
from tools.site.pages.complexity import ComplexityData, complexity_data
from tools.site.pages.lra import PaperResult, paper_results
from tools.site.pages.quality import OwnResults, own_results
from tools.site.pages.source import INSTALL, ZIP_PATH, source_page_path
from tools.site.usage import SNIPPET_DIM, SNIPPET_HEADS, usage_snippet

_NO_PREFIX = Markup("")
# Search ranks a paper's own page this many times higher than other pages.
PAPER_BOOST = 4
_DECODING = {
    True: "Supports causal, autoregressive decoding.",
    False: "Does not support causal, autoregressive decoding.",
    None: "Not recorded.",
}


@dataclass(frozen=True)
class Link:
    """A link of the paper's line of links; ``prefix`` is our own text before the label."""

    label: str
    url: str
    prefix: Markup = _NO_PREFIX


@dataclass(frozen=True)
class Badge:
    """A taxonomy class of the entry; ``name`` is None for a code the taxonomy lacks."""

    code: str
    name: str | None


def links(entry: Entry) -> list[Link]:
    found: list[Link] = []
    if entry.arxiv:
        found.append(Link(entry.arxiv, f"https://arxiv.org/abs/{entry.arxiv}", Markup("arXiv:")))
    if entry.doi:
        found.append(Link(entry.doi, f"https://doi.org/{entry.doi}", Markup("DOI ")))
    if entry.url and not (entry.arxiv and "arxiv.org" in entry.url):
        found.append(Link("Paper", entry.url))
    for index, url in enumerate(entry.official_code):
        label = "Official code" + (f" {index + 1}" if len(entry.official_code) > 1 else "")
        found.append(Link(label, url))
    if entry.zotero and not entry.zotero.deleted:
        found.append(Link("Open in Zotero", entry.zotero.select_uri))
        found.append(Link("Zotero web", entry.zotero.web_uri))
    return found


def badges(catalog: Catalog, codes: list[str]) -> list[Badge]:
    known = {c.code: c.name for c in catalog.taxonomy}
    return [Badge(code, known.get(code)) for code in codes]


@dataclass(frozen=True)
class PaperPage:
    """Everything the template ``paper.md.j2`` shows of one entry."""

    entry: Entry
    authors: list[tuple[str, str]]
    links: list[Link]
    badges: list[Badge]
    also_written: str
    complexity: ComplexityData | None
    decoding: str
    mechanism: DeclaredMechanism | None
    source: str
    commit: str | None
    snippet: str
    causal_snippet: str
    related: list[Entry]
    bibtex: str
    csl: str
    source_page: str
    build_call: str
    install: str
    zip_link: str
    published: list[PaperResult]
    results_page: bool
    own: list[OwnResults]


def paper_data(
    entry: Entry,
    catalog: Catalog,
    context: SiteContext,
    slugs: Mapping[str, str],
    plot_path: str | None,
) -> PaperPage:
    # Search matches words as typed: "nystrom" must find "Nyströmformer".
    plain = [fold(text) for text in (entry.name, entry.title) if fold(text) != text]
    decoding = _DECODING[entry.decode]
    if entry.survey is not None and entry.survey.decode != entry.decode:
        decoding += f" The survey's Table 1 says {'yes' if entry.survey.decode else 'no'}."
    info = context.mechanisms.get(entry.id) if entry.kind == "model" else None
    snippet = causal_snippet = source = source_page = build_call = ""
    bibtex = bibtex_entry(entry)
    if info is not None:
        options = context.snippet_options(entry.id)
        snippet = usage_snippet(info, causal=False, options=options)
        if info.supports_causal:
            causal_snippet = usage_snippet(info, causal=True, options=options)
        source = context.source_link(info) or ""
        source_page = "../" + source_page_path(info.path)
        build_call = (
            f'import implementations\n\nlayer = implementations.build("{info.id}", '
            f"dim={SNIPPET_DIM}, heads={SNIPPET_HEADS})\n"
        )
        bibtex += "\n" + software_bibtex(entry, info, pinned())
    return PaperPage(
        entry=entry,
        authors=[(name, slugs[name]) for name in entry.authors],
        links=links(entry),
        badges=badges(catalog, entry.taxonomy),
        also_written=" · ".join(plain),
        complexity=complexity_data(entry, context, plot_path) if entry.kind == "model" else None,
        decoding=decoding,
        mechanism=info,
        source=source,
        commit=context.commit,
        snippet=snippet,
        causal_snippet=causal_snippet,
        related=[catalog.entries[r] for r in entry.related if r in catalog.entries],
        bibtex=bibtex,
        csl=json.dumps([csl_item(entry)], indent=2, ensure_ascii=False),
        source_page=source_page,
        build_call=build_call,
        install=INSTALL,
        zip_link="../" + ZIP_PATH,
        published=paper_results(catalog, entry.id),
        results_page=entry.id in catalog.results,
        own=own_results(context.evaluations, entry.id) if entry.kind == "model" else [],
    )


def search_keywords(entry: Entry) -> list[str]:
    """What researchers type to find a paper: its names, citekey, arXiv id and complexity.

    Examples:
        >>> from tools.catalog import load_catalog
        >>> search_keywords(load_catalog().entries["big-bird"])[:4]
        ['BigBird', 'Big Bird', 'zaheer2020big', '2007.14062']
    """
    words = [entry.name, *entry.aliases, entry.citekey]
    words += [entry.arxiv] if entry.arxiv else []
    words += [entry.complexity.time] if entry.complexity else []
    return list(dict.fromkeys(words))


def paper_page(
    entry: Entry,
    catalog: Catalog,
    context: SiteContext,
    slugs: Mapping[str, str],
    plot_path: str | None,
) -> str:
    """The page of one catalog entry (``papers/<id>.md``)."""
    data = paper_data(entry, catalog, context, slugs, plot_path)
    # Paper pages rank above the API entries and the class pages that mention them.
    head = front_matter(entry.name, boost=PAPER_BOOST, keywords=search_keywords(entry))
    return render("paper.md.j2", front_matter=head, prefix=Markup("../"), **vars(data))


def papers_index(catalog: Catalog) -> str:
    """The list of every entry (``papers/index.md``)."""
    return render("papers.md.j2", catalog=catalog, entries=by_name(catalog.entries.values()))
