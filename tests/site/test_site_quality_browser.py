"""The accuracy–speed–memory charts in a real browser: LRA's and the quality benchmark's.

Uses Debian's /usr/bin/chromium like test_site_browser (the shared fixtures); with
ATLAS_REQUIRE_BROWSER=1 a missing browser fails instead of skipping. The site is the
session's build (tests/site/conftest.py), whose catalog is a copy of the shipped one:
its quality page draws whatever ``catalog/evaluations/`` holds there.
"""

from __future__ import annotations

from tests.site.site_support import BuiltSite
from tests.site.test_site_browser import _shoot, browser, page  # noqa: F401
from tools.catalog.evaluations import load_evaluations


def test_lra_chart_renders_without_a_frontier(page) -> None:  # noqa: F811
    page.goto(page.base + "lra/")
    chart = page.locator("#lra-chart svg")
    chart.wait_for(state="visible")
    assert chart.locator("circle").count() > 0
    assert chart.locator("polyline.atlas-frontier").count() == 0


def test_quality_page_draws_a_frontier_chart_per_task_and_length(
    page,  # noqa: F811
    built_site: BuiltSite,
) -> None:
    evaluations = load_evaluations(built_site.catalog)
    page.goto(page.base + "quality/")
    heading = page.locator("article h1")
    assert heading.inner_text().startswith("Quality benchmark")
    nav = page.locator("nav a", has_text="Quality benchmark").first
    assert nav.count() == 1
    if not evaluations:
        # No file in the build's catalog: the page says so instead of drawing nothing.
        assert page.locator("article", has_text="Not evaluated yet").is_visible()
        assert page.locator("article svg.atlas-lra-chart").count() == 0
        return
    expected = sum(
        len({r.length for r in file.runs if r.task == task})
        for file in evaluations.values()
        for task in file.tasks
    )
    charts = page.locator(".atlas-quality-figure svg")
    assert charts.count() == expected
    first = charts.first
    first.wait_for(state="visible")
    box = first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    assert first.locator("circle").count() > 0
    frontier = first.locator("polyline.atlas-frontier")
    assert frontier.count() == 1
    assert len((frontier.get_attribute("points") or "").split()) >= 1
    # Every table sorts on a header click (tablesort), by mean accuracy.
    table = page.locator("table.atlas-quality-table").first
    table.locator("th").nth(1).click()
    values = table.locator("tbody tr td:nth-child(2)").evaluate_all(
        "cells => cells.map(c => parseFloat(c.dataset.sort))"
    )
    assert values in (sorted(values), sorted(values, reverse=True))
    _shoot(page, "quality.png")
