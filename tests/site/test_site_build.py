"""The built site: strict build, stable addresses, links, escaping."""

from __future__ import annotations

import re

from tests.site.site_html import broken_links, read_page, visible_text
from tests.site.site_support import HOSTILE_ID, HOSTILE_TITLE, BuiltSite
from tools.catalog import load_catalog


def test_build_is_strict_clean_and_timed(built_site: BuiltSite) -> None:
    assert "WARNING" not in built_site.output, built_site.output
    assert re.search(r"site: built .* in [\d.]+ s", built_site.output), built_site.output


def test_addresses_are_stable(built_site: BuiltSite) -> None:
    catalog = load_catalog(built_site.catalog)
    expected = [f"papers/{id}/index.html" for id in catalog.entries]
    expected += [f"taxonomy/{c.code}/index.html" for c in catalog.taxonomy]
    expected += [
        "index.html",
        "comparison/index.html",
        "authors/index.html",
        "timeline/index.html",
        "benchmarks/index.html",
        "downloads/index.html",
        "reference/index.html",
        "downloads/atlas.bib",
        "downloads/atlas.csl.json",
        "downloads/atlas.json",
    ]
    missing = [path for path in expected if not (built_site.site / path).is_file()]
    assert not missing


def test_every_internal_link_resolves(built_site: BuiltSite) -> None:
    assert broken_links(built_site.site) == []


def test_catalog_text_is_escaped(built_site: BuiltSite) -> None:
    for path in built_site.site.rglob("*.html"):
        html = path.read_text(encoding="utf-8")
        for raw in ("<script>window.atlasPwned", "<img src=x", "<b>Model", "<i>"):
            assert raw not in html, f"{path}: unescaped {raw!r}"
    page = built_site.site / "papers" / HOSTILE_ID / "index.html"
    text = visible_text(page)
    # Rendered as the text it is, not as markup: title, name, summary, notes.
    assert HOSTILE_TITLE in text
    assert "Hostile <b>Model</b> | pipe </title><script>window.atlasPwned = 4</script>" in text
    assert "**stars** and `ticks` ```" in text
    assert '--8<-- "index.md"' in text and "# not a heading" in text
    html = page.read_text(encoding="utf-8")
    assert html.count("<h1") == 1


def test_unmeasured_and_unimplemented_are_said(built_site: BuiltSite) -> None:
    text = visible_text(built_site.site / "papers" / HOSTILE_ID / "index.html")
    assert "Not measured yet" in text
    assert "Not implemented yet" in text


def test_paper_page_has_everything(built_site: BuiltSite) -> None:
    page = built_site.site / "papers" / "nystromformer" / "index.html"
    facts = read_page(page)
    text = "".join(facts.text)
    for part in (
        "Nyströmformer: A Nyström-based Algorithm",
        "Yunyang Xiong",
        "AAAI 2021",
        "arXiv:2102.03902",
        "O(n m)",
        "O(k N)",
        "measured exponent",
        "Usage",
        "BibTeX",
        "CSL-JSON",
        "xiong2021nystromformer",
        "Related",
        "Linformer",
    ):
        assert part in text, part
    assert "../../generated/plots/nystromformer.svg" in facts.links
    assert any(link.startswith("../../authors/#yunyang-xiong") for link in facts.links)
    assert any("taxonomy/M/" in link for link in facts.links)
    assert facts.python_blocks == 2  # the "Build" block at the top, then the usage snippet
