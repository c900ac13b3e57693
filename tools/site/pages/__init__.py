"""The data-driven pages: one module per page family, each rendering a template.

Pure functions from a loaded :class:`~tools.catalog.Catalog` and a
:class:`~tools.site.context.SiteContext` to ``{path relative to docs/: content}``;
:mod:`tools.site.generate` writes them.

Addresses are stable, since notes and papers cite them: an entry's page is
``papers/<id>.md`` (``/papers/<id>/``), a class's ``taxonomy/<code>.md``, the comparison
table ``comparison/index.md``, a module's source ``reference/source/<module>.md``, the
survey's Table 1 ``survey/index.md``, the published Long Range Arena results
``lra/index.md``, our own quality benchmark ``quality/index.md``.
"""

from __future__ import annotations

from tools.catalog import Catalog
from tools.catalog.citations import render as export
from tools.site.context import SiteContext
from tools.site.pages.benchmarks import benchmark_plots, benchmarks_page
from tools.site.pages.comparison import comparison_page
from tools.site.pages.complexity import paper_plot
from tools.site.pages.lra import lra_page
from tools.site.pages.papers import paper_page, papers_index
from tools.site.pages.people import authors_index, person_anchors, timeline_page
from tools.site.pages.quality import quality_page
from tools.site.pages.reference import downloads_page, reference_page
from tools.site.pages.source import source_files, source_pages
from tools.site.pages.survey import survey_page
from tools.site.pages.taxonomy import home_include, taxonomy_index, taxonomy_page


def render_pages(catalog: Catalog, context: SiteContext) -> dict[str, str]:
    """Every generated file, ``{path relative to docs/: text}``."""
    slugs = person_anchors(catalog)  # one anchor per person, whatever the spelling
    files: dict[str, str] = {}
    for entry in catalog.entries.values():
        svg = paper_plot(entry, context) if entry.kind == "model" else None
        plot = None
        if svg is not None:
            files[f"generated/plots/{entry.id}.svg"] = svg
            plot = f"../generated/plots/{entry.id}.svg"
        files[f"papers/{entry.id}.md"] = paper_page(entry, catalog, context, slugs, plot)
    files["papers/index.md"] = papers_index(catalog)
    plots = benchmark_plots(catalog, context)
    files["taxonomy/index.md"] = taxonomy_index(catalog)
    for c in catalog.taxonomy:
        files[f"taxonomy/{c.code}.md"] = taxonomy_page(c.code, catalog, context, plots)
    files["comparison/index.md"] = comparison_page(catalog, context)
    files["authors/index.md"] = authors_index(catalog)
    files["timeline/index.md"] = timeline_page(catalog)
    files.update({f"generated/benchmarks/{name}": svg for name, svg in plots.items()})
    files["benchmarks/index.md"] = benchmarks_page(catalog, context, plots)
    files["downloads/index.md"] = downloads_page(catalog)
    files["downloads/atlas.bib"] = export(catalog, "bibtex")
    files["downloads/atlas.csl.json"] = export(catalog, "csljson")
    files["downloads/atlas.json"] = export(catalog, "json")
    files["reference/index.md"] = reference_page(catalog, context)
    implemented: dict[str, list[tuple[str, str]]] = {}
    for id, info in sorted(context.mechanisms.items()):
        name = catalog.entries[id].name if id in catalog.entries else id
        implemented.setdefault(info.path, []).append((name, id))
    files.update(source_pages(source_files(), implemented))
    files["survey/index.md"] = survey_page(catalog)
    files["lra/index.md"] = lra_page(catalog)
    files["quality/index.md"] = quality_page(catalog, context.evaluations)
    files["generated/home.inc"] = home_include(catalog, context)
    return files
