"""The taxonomy: its index with the diagram, a page per class, and the home page's part.

``generated/home.inc`` is the generated part of the home page (counts, the diagram, how
to cite); ``docs/index.md`` includes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup

from tools.catalog import Catalog
from tools.catalog.citations import bibtex_entry
from tools.site.context import SiteContext, author_slugs, by_name, models
from tools.site.diagram import taxonomy_svg
from tools.site.escaping import front_matter, render


def taxonomy_diagram(catalog: Catalog, prefix: str) -> Markup:
    """The taxonomy's SVG (escaped by :mod:`tools.site.plots`), linking from ``prefix``."""
    svg = taxonomy_svg(
        [(c.code, c.name) for c in catalog.taxonomy],
        [(e.id, e.name, e.taxonomy) for e in models(catalog)],
        href=lambda id: f"{prefix}papers/{id}/",
        class_href=lambda code: f"{prefix}taxonomy/{code}/",
        added={c.code for c in catalog.taxonomy if c.source == "atlas"},
    )
    return Markup(svg.strip())


def home_include(catalog: Catalog, context: SiteContext) -> str:
    """The generated part of the home page: counts, the taxonomy diagram, how to cite."""
    found = models(catalog)
    survey = next((e for e in catalog.entries.values() if e.kind == "survey"), None)
    return render(
        "home.inc.j2",
        models=len(found),
        classes=len(catalog.taxonomy),
        survey_models=sum(1 for e in found if e.survey is not None),
        implemented=sum(1 for e in found if e.id in context.mechanisms),
        measured=sum(1 for e in found if context.measured(e.id)),
        authors=len(author_slugs(catalog)),
        diagram=taxonomy_diagram(catalog, ""),
        survey=survey,
        bibtex=bibtex_entry(survey) if survey is not None else "",
    )


def taxonomy_index(catalog: Catalog) -> str:
    """The classes with the diagram (``taxonomy/index.md``)."""
    counts = [sum(1 for e in models(catalog) if c.code in e.taxonomy) for c in catalog.taxonomy]
    return render(
        "taxonomy.md.j2",
        diagram=taxonomy_diagram(catalog, "../"),
        classes=list(zip(catalog.taxonomy, counts, strict=True)),
    )


def taxonomy_page(
    code: str, catalog: Catalog, context: SiteContext, plots: Iterable[str] = ()
) -> str:
    """A class's page: its description, its models, and their measured time and memory
    (beside both references of exact attention) when known, with the platform."""
    c = catalog.taxonomy_class(code)
    available = set(plots)
    found: list[tuple[str, str]] = []
    platform = None
    for measurement in context.measurements[:1]:
        platform = measurement.platform()
        for figure, tab in (("forward_s", "Time"), ("peak_bytes", "Memory")):
            name = f"{measurement.name}-{code}-{figure}.svg"
            if name in available:
                found.append((tab, name))
    return render(
        "class.md.j2",
        front_matter=front_matter(f"{c.code} · {c.name}"),
        c=c,
        members=by_name(e for e in models(catalog) if code in e.taxonomy),
        plots=found,
        platform=platform,
    )
