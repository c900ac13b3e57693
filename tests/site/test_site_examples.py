"""Every Python block of docs/ and of the generated pages runs, and none is skipped."""

from __future__ import annotations

import traceback

import torch

from tests.site.site_html import page_html, read_page
from tests.site.site_support import BuiltSite
from tools.catalog import load_catalog
from tools.catalog.mechanisms import declared_mechanisms
from tools.site.blocks import collect


def test_every_python_block_runs(built_site: BuiltSite) -> None:
    failures = []
    for page, blocks in collect(built_site.docs).items():
        for block in blocks:
            torch.manual_seed(0)
            where = f"docs/{page}:{block.line}"
            try:
                exec(compile(block.code, where, "exec"), {"__name__": "__docs__"})
            except Exception:
                failures.append(f"{where}\n{traceback.format_exc(limit=-2)}")
    assert not failures, "\n".join(failures)


def test_examples_are_counted_per_page(built_site: BuiltSite) -> None:
    collected = {
        page: len(blocks)
        for page, blocks in collect(built_site.docs).items()
        if not page.startswith("assets/")  # vendored notes, excluded from the site
    }
    # What readers see: the Python examples rendered into each page's HTML.
    rendered = {
        page: read_page(page_html(built_site.site, page)).python_blocks for page in collected
    }
    assert collected == rendered
    assert collected["using.md"] == 4
    assert collected["reference/index.md"] == 1
    catalog = load_catalog(built_site.catalog)
    for entry in catalog.entries.values():
        info = declared_mechanisms().get(entry.id) if entry.implementation else None
        if info is not None and info.module != entry.implementation:
            info = None
        expected = 0 if info is None else 2 if info.supports_causal else 1
        assert collected[f"papers/{entry.id}.md"] == expected, entry.id
    assert sum(collected.values()) > 30
