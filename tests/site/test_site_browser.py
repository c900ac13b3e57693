"""The built site in a real browser: headless Debian Chromium driven by Playwright.

Never downloads a browser: it uses /usr/bin/chromium, and skips when that is missing
unless ATLAS_REQUIRE_BROWSER=1 (CI), where a missing browser fails. Screenshots go to
artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.site.site_support import HOSTILE_ID
from tools.catalog import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def _unavailable(reason: str) -> None:
    if os.environ.get("ATLAS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (ATLAS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served_site: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.base = served_site  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, errors


def _shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_home_renders_the_taxonomy_diagram(page) -> None:
    page.goto(page.base)
    diagram = page.locator("#taxonomy-diagram svg")
    diagram.wait_for(state="visible")
    box = diagram.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 300
    assert diagram.locator("a").count() > 30  # classes and models, each a link
    _shoot(page, "home.png")


def test_search_finds_nystromformer(page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(page.base)
    search = page.locator("input.md-search__input")
    search.click()
    result = page.locator(".md-search-result__item a[href*='papers/nystromformer']").first
    # The index loads in a web worker, and a query typed before it is ready is dropped:
    # type again until the results come (slow on a busy machine).
    for _ in range(15):
        search.fill("")
        search.type("nystrom")
        try:
            result.wait_for(state="visible", timeout=2_000)
            break
        except PlaywrightTimeout:
            continue
    assert result.is_visible()
    _shoot(page, "search.png")
    result.click()
    page.wait_for_url("**/papers/nystromformer/**")


def test_paper_page_shows_complexity_plot_and_code(page) -> None:
    page.goto(page.base + "papers/nystromformer/")
    table = page.locator("article table", has_text="claimed by the paper")
    assert table.is_visible()
    plot = page.locator("img.atlas-plot")
    plot.wait_for(state="visible")
    assert plot.evaluate("image => image.complete && image.naturalWidth > 0")
    code = page.locator("article .language-python").first
    assert code.is_visible() and "implementations.build" in code.inner_text()
    page.locator(".katex").first.wait_for(state="attached")  # the API docs' math rendered
    _shoot(page, "paper.png")


def test_comparison_table_sorts_on_a_header_click(page) -> None:
    page.goto(page.base + "comparison/")
    table = page.locator("#comparison-table")
    table.wait_for(state="visible")

    def years() -> list[int]:
        return [int(t) for t in table.locator("tbody tr td:nth-child(3)").all_inner_texts()]

    assert years() != sorted(years())  # sorted by name at first
    table.locator("th", has_text="Year").click()
    first = years()
    assert first in (sorted(first), sorted(first, reverse=True))
    table.locator("th", has_text="Year").click()
    assert years() == list(reversed(first)) or years() == sorted(first, reverse=True)
    page.locator("#comparison-filter").fill("former")
    visible = table.locator("tbody tr:visible")
    assert 0 < visible.count() < table.locator("tbody tr").count()
    page.locator("#comparison-filter").fill("")
    _shoot(page, "comparison.png")


def test_hostile_catalog_text_does_not_run(page) -> None:
    page.goto(page.base + f"papers/{HOSTILE_ID}/")
    assert page.evaluate("typeof window.atlasPwned") == "undefined"
    assert "<script>window.atlasPwned = 1</script>" in page.locator("article").inner_text()


def _search(page, query: str) -> list[str]:
    """The pages the search box lists for ``query``, best first (typed as a reader does)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(page.base)
    search = page.locator("input.md-search__input")
    search.click()
    items = page.locator(".md-search-result__item > a")
    for _ in range(15):  # the index loads in a worker; a query typed too early is dropped
        search.fill("")
        search.type(query)
        try:
            items.first.wait_for(state="visible", timeout=2_000)
            break
        except PlaywrightTimeout:
            continue
    # The first results shown can be those of a prefix (every key sends a search): a slow
    # machine read "O(n log n" without the ")" after 300 ms. Let the last search land.
    page.wait_for_timeout(1_500)
    return [(link.get_attribute("href") or "").split("?")[0] for link in items.all()]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("2009.14794", "papers/performer/"),
        ("choromanski2021rethinking", "papers/performer/"),
        ("Big Bird", "papers/big-bird/"),
        ("O(n log n)", "papers/reformer/"),
        ("linear attention", "papers/linear-transformer/"),
    ],
)
def test_search_finds_what_researchers_type(page, query: str, first: str) -> None:
    found = _search(page, query)
    assert found and found[0].endswith(first), found[:5]


def test_search_ignores_stop_words(page) -> None:
    found = _search(page, "mixture of experts")
    assert any("papers/switch-transformer/" in url for url in found), found
    assert not any("axial-transformer" in url or "big-bird" in url for url in found), found


@pytest.mark.parametrize("path", ["", "comparison/", "papers/axial-transformer/"])
def test_phone_pages_do_not_scroll_sideways(browser, served_site: str, path: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.goto(served_site + path)
    phone.wait_for_timeout(300)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    if not path:
        sizes = phone.evaluate(
            "[...document.querySelectorAll('#taxonomy-diagram text')]"
            ".map(t => t.getBoundingClientRect().height)"
        )
        assert len(sizes) > 30 and min(sizes) >= 11, sorted(sizes)[:3]
        _shoot(phone, "mobile-home.png")
    context.close()


def test_dark_mode_toggle_reaches_the_plots_and_diagram(page) -> None:
    page.goto(page.base)
    assert page.evaluate("document.body.dataset.mdColorScheme") == "default"
    page.locator("label[for='__palette_1']").first.click()
    page.wait_for_function("document.body.dataset.mdColorScheme === 'slate'")
    label = page.locator("#taxonomy-diagram text.atlas-model-label").first
    fill = label.evaluate("t => getComputedStyle(t).fill")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert fill != "rgb(0, 0, 0)" and fill != background
    assert page.locator("#taxonomy-diagram svg rect[fill='#ffffff']").count() == 0
    page.goto(page.base + "papers/nystromformer/")  # the choice is kept across pages
    plot = page.locator("img.atlas-plot")
    plot.wait_for(state="visible")
    assert "invert" in plot.evaluate("image => getComputedStyle(image).filter")
    _shoot(page, "paper-dark.png")
