"""The comparison filters and the benchmarks tables in a real browser (issue 12, 1 and 10).

Uses Debian's /usr/bin/chromium like test_site_browser; with ATLAS_REQUIRE_BROWSER=1 a
missing browser fails instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.site.test_site_browser import browser  # noqa: F401  (the shared fixture)


@pytest.fixture
def wide(browser, served_site: str) -> Iterator[object]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.base = served_site  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, errors


def _shown(page) -> list[str]:
    return page.eval_on_selector_all(
        "#comparison-table tbody tr:not([hidden]) td:first-child",
        "cells => cells.map(c => c.textContent)",
    )


def test_comparison_filters_fold_accents_and_keep_their_state_in_the_address(wide) -> None:
    page = wide
    page.goto(page.base + "comparison/")
    total = len(_shown(page))
    page.fill("#comparison-filter", "nystrom")
    assert _shown(page) == ["Nyströmformer"]
    assert "q=nystrom" in page.url
    page.fill("#comparison-filter", "")
    page.select_option("#comparison-year", "2020")
    years = page.eval_on_selector_all(
        "#comparison-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.year)"
    )
    assert years and set(years) == {"2020"} and len(years) < total
    page.select_option("#comparison-decode", "no")
    decodes = page.eval_on_selector_all(
        "#comparison-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.decode)"
    )
    assert decodes and set(decodes) == {"no"}
    assert "year=2020" in page.url and "decode=no" in page.url
    # Opened afresh from its address, the page restores the filter.
    page.goto(page.base + "comparison/?q=nystrom&decode=no")
    assert page.input_value("#comparison-filter") == "nystrom"
    assert page.input_value("#comparison-decode") == "no"
    assert _shown(page) == ["Nyströmformer"]


def test_every_benchmarks_column_is_visible_at_1440_px(wide) -> None:
    page = wide
    page.goto(page.base + "benchmarks/")
    overflows = page.eval_on_selector_all(
        "article table",
        """tables => tables.map(t => {
            const box = t.closest('.md-typeset__scrollwrap') || t;
            return [box.scrollWidth, box.clientWidth, t.rows[0].cells.length];
        })""",
    )
    assert len(overflows) >= 3
    for scroll, client, columns in overflows:
        assert scroll <= client + 1, (scroll, client, columns)
