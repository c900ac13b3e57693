"""The Long Range Arena page, its chart, and the published results on the paper pages."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tests.site.test_site_browser import _search, _shoot, browser, page  # noqa: F401
from tools.catalog import load_catalog
from tools.site.generate import GENERATED
from tools.site.lra_chart import Point, lra_chart
from tools.site.pages import render_pages
from tools.site.pages.lra import chart_points, lra_page, paper_results
from tools.site.pages.papers import paper_page

CATALOG = load_catalog()
LRA = CATALOG.results["long-range-arena"]


def test_chart_has_one_circle_per_model_of_both_tables() -> None:
    points = chart_points(CATALOG, LRA)
    assert sorted(p.name for p in points) == sorted(
        [
            "Transformer (vanilla)",
            "Local Attention",
            "Linformer",
            "Reformer",
            "Sinkhorn Transformer",
            "Synthesizer",
            "BigBird",
            "Linear Transformer",
            "Performer",
        ]
    )
    performer = next(p for p in points if p.name == "Performer")
    assert (performer.speed, performer.accuracy, performer.memory) == (8.0, 51.41, 1.06)


def test_chart_is_valid_svg_drawn_with_theme_colours() -> None:
    svg = lra_chart(chart_points(CATALOG, LRA), title="LRA")
    root = ET.fromstring(svg)
    circles = root.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 9
    assert "currentColor" in svg and "var(--md-" in svg
    assert not re.search(r'fill="(white|#fff\w*)"', svg), "no hard-coded white background"
    assert "<rect" not in svg
    radii = {c.get("r") for c in circles}
    assert len(radii) > 3  # memory differs, and so do the circles


def test_chart_escapes_names_and_skips_links_of_baselines() -> None:
    svg = lra_chart([Point("<script>x</script>", "", 1.0, 50.0, 1.0)], title="t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<a " not in svg
    assert lra_chart([], title="t") == ""


def test_lra_page_lists_every_value_with_its_source() -> None:
    text = lra_page(CATALOG)
    assert text.startswith('---\ntitle: "Long Range Arena"')
    assert "boost: 8" in text
    assert 'class="atlas-sortable" id="lra-accuracy"' in text
    assert 'id="lra-efficiency"' in text and 'id="lra-chart"' in text
    assert text.count("<tr><td") == 16 + 9  # accuracy rows, then speed and memory rows
    assert '<a href="../papers/nystromformer/">Nyströmformer, Table 3</a>' in text
    # The inconsistent Sinkhorn average is kept as printed and marked with its note.
    assert 'data-sort="51.39" title="printed 51.39, but the five tasks average 51.48' in text
    assert "is left out (LRA&#x27;s convention" in text or "is left out (LRA" in text


def test_paper_page_shows_its_published_results() -> None:
    found = paper_results(CATALOG, "performer")
    assert len(found) == 7 + 12 + 6  # Table 1, Table 2 (steps, relative, memory), Nyströmformer
    slugs = {name: "x" for e in CATALOG.entries.values() for name in e.authors}
    text = paper_page(CATALOG.entries["performer"], CATALOG, _context(), slugs, None)
    assert "## Published results" in text
    assert (
        "| Long Range Arena | Average | accuracy (%) | 51.41 | [Long Range Arena, Table 1]" in text
    )
    lra = paper_page(CATALOG.entries["long-range-arena"], CATALOG, _context(), slugs, None)
    assert "[Long Range Arena](../lra/index.md)" in lra


def test_lra_page_is_generated_and_owned_by_generate() -> None:
    assert "lra" in GENERATED
    assert "lra/index.md" in render_pages(CATALOG, _context())


def _context():
    from tools.site.generate import site_context

    return site_context(CATALOG)


def test_lra_page_shows_the_chart_and_sorts(page) -> None:  # noqa: F811
    page.goto(page.base + "lra/")
    chart = page.locator("#lra-chart svg")
    chart.wait_for(state="visible")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    assert chart.locator("circle").count() == 9
    table = page.locator("#lra-accuracy")
    table.locator("th", has_text="Average").click()
    cells = table.locator("tbody tr td:nth-child(8)").all_inner_texts()
    averages = [float(text.rstrip("†")) for text in cells]  # † marks a value with a note
    assert averages in (sorted(averages), sorted(averages, reverse=True))
    _shoot(page, "lra.png")


def test_search_finds_the_lra_page_first(page) -> None:  # noqa: F811
    found = _search(page, "Long Range Arena")
    assert found and found[0].endswith("lra/"), found[:5]
