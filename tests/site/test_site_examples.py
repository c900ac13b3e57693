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

# How many >>> examples of each built page fail in a fresh interpreter today (94 of 129,
# at commit a91b0369: NameError, missing imports). The docstrings in implementations/ are
# being rewritten to import what they use; EMPTY THIS DICT as they are fixed. A page with
# a different count fails the test either way, so the list can only shrink.
EXPECTED_FAILURES: dict[str, int] = {
    "papers/adaptive-sparse-transformer/index.html": 2,
    "papers/axial-transformer/index.html": 1,
    "papers/big-bird/index.html": 2,
    "papers/blockwise/index.html": 2,
    "papers/cluster-former/index.html": 4,
    "papers/compressive-transformer/index.html": 1,
    "papers/etc/index.html": 1,
    "papers/funnel-transformer/index.html": 3,
    "papers/image-transformer/index.html": 2,
    "papers/linear-transformer/index.html": 4,
    "papers/linformer/index.html": 1,
    "papers/long-short-transformer/index.html": 2,
    "papers/longformer/index.html": 2,
    "papers/luna/index.html": 3,
    "papers/memory-compressed/index.html": 3,
    "papers/nystromformer/index.html": 3,
    "papers/performer/index.html": 3,
    "papers/poolingformer/index.html": 3,
    "papers/product-key-memory/index.html": 1,
    "papers/random-feature-attention/index.html": 2,
    "papers/reformer/index.html": 3,
    "papers/routing-transformer/index.html": 3,
    "papers/set-transformer/index.html": 2,
    "papers/sinkhorn-transformer/index.html": 5,
    "papers/sparse-transformer/index.html": 1,
    "papers/synthesizer/index.html": 1,
    "papers/transformer-xl/index.html": 5,
    "reference/index.html": 29,
}

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
