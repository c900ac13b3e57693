"""The downloads page with the catalog's files, and the API reference of ``implementations``."""

from __future__ import annotations

from pathlib import Path

from tools.catalog import Catalog
from tools.site.context import SiteContext
from tools.site.escaping import render
from tools.site.pages.source import source_files


def downloads_page(catalog: Catalog) -> str:
    """Links to the whole catalog as BibTeX, CSL-JSON and JSON (``downloads/index.md``)."""
    return render("downloads.md.j2", count=len(catalog.entries))


def reference_page(catalog: Catalog, context: SiteContext) -> str:
    """The API reference of ``implementations`` (``reference/index.md``)."""
    mechanisms = [
        (catalog.entries[id].name if id in catalog.entries else id, info)
        for id, info in sorted(context.mechanisms.items())
    ]
    # Every shared private module gets its API section, so that docstrings can link any of
    # its names with autorefs ([name][implementations._helpers.name]).
    shared = sorted(
        f"implementations.{Path(path).stem}"
        for path in source_files()
        if Path(path).stem.startswith("_") and Path(path).stem not in ("__init__", "_registry")
    )
    return render("reference.md.j2", mechanisms=mechanisms, shared=shared)
