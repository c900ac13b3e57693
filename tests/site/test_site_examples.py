"""Every example the site shows runs on its own, in a fresh interpreter (issue 12, point 6).

The Python blocks of the pages (usage snippets, the guide) and the ``>>>`` examples of
the API sections, as the built HTML shows them, each run in a new process from an empty
namespace (see tests.site.fresh_python), not in the namespace of their module.
"""

from __future__ import annotations

from collections import Counter

from tests.site.fresh_python import run_fresh
from tests.site.site_html import page_html, read_page, shown_examples
from tests.site.site_support import BuiltSite
from tools.catalog import load_catalog
from tools.catalog.mechanisms import declared_mechanisms
from tools.site.blocks import collect

# Pages whose >>> examples may fail in a fresh interpreter, with how many: none. Every
# example must import what it uses; a page listed here with a different count fails too.
EXPECTED_FAILURES: dict[str, int] = {}

# Highlighted source listings (reference/source/) are code to read, not examples to run.
LISTINGS = "reference/source/"


def _page_blocks(built_site: BuiltSite) -> list[tuple[str, str]]:
    return [
        (f"docs/{page}:{block.line}", block.code)
        for page, blocks in collect(built_site.docs).items()
        if not page.startswith(LISTINGS)
        for block in blocks
    ]


def _api_examples(built_site: BuiltSite) -> list[tuple[str, str]]:
    found = []
    for path in sorted(built_site.site.rglob("*.html")):
        page = path.relative_to(built_site.site).as_posix()
        if page.startswith(LISTINGS):
            continue
        for index, text in enumerate(shown_examples(path), start=1):
            found.append((f"{page}#{index}", text))
    return found


def test_every_python_block_runs_in_a_fresh_interpreter(built_site: BuiltSite) -> None:
    blocks = _page_blocks(built_site)
    assert len(blocks) > 60
    failures = [f"{o.name}\n{o.error}" for o in run_fresh(blocks) if not o.ok]
    assert not failures, "\n".join(failures)


def test_every_shown_example_runs_in_a_fresh_interpreter(built_site: BuiltSite) -> None:
    examples = _api_examples(built_site)
    assert len(examples) > 80
    outcomes = run_fresh(examples)
    failing = Counter(o.name.split("#")[0] for o in outcomes if not o.ok)
    new = [
        f"{o.name}\n{o.error}"
        for o in outcomes
        if not o.ok
        and failing[o.name.split("#")[0]] > EXPECTED_FAILURES.get(o.name.split("#")[0], 0)
    ]
    assert not new, "\n".join(new)
    fixed = {page: n for page, n in EXPECTED_FAILURES.items() if failing[page] < n}
    assert not fixed, f"fewer failures now: lower or remove in EXPECTED_FAILURES: {fixed}"


def test_examples_are_counted_per_page(built_site: BuiltSite) -> None:
    collected = {
        page: len(blocks)
        for page, blocks in collect(built_site.docs).items()
        if not page.startswith("assets/")  # vendored notes, excluded from the site
        and not page.startswith(LISTINGS)
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
        # The "Build" block at the top, then the usage snippet (two tabs with causal).
        expected = 0 if info is None else 3 if info.supports_causal else 2
        assert collected[f"papers/{entry.id}.md"] == expected, entry.id
    assert sum(collected.values()) > 30
