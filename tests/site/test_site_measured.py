"""Measured figures mean what a reader thinks (issue 12, points 1–4), on the shipped data.

The page functions are called on the shipped catalog and measurement file (no MkDocs
build): memory beside both exact-attention references, feed-forward mechanisms beside
the dense feed-forward layer, claimed growths that say which symbols grow, fitted
exponents that carry their range, and the platform next to every measured figure.
"""

from __future__ import annotations

import re
from html import unescape

import pytest

from tools.catalog import Catalog, load_catalog
from tools.site.context import SiteContext
from tools.site.generate import site_context
from tools.site.pages import render_pages
from tools.site.pages.benchmarks import benchmark_plots, benchmarks_page
from tools.site.pages.comparison import comparison_page
from tools.site.pages.complexity import complexity_data, paper_plot
from tools.site.pages.taxonomy import taxonomy_page

FFN = (
    "switch-transformer",
    "gshard",
    "glam",
    "st-moe",
    "product-key-memory",
    "scaling-transformers",
)


@pytest.fixture(scope="module")
def shipped() -> tuple[Catalog, SiteContext]:
    catalog = load_catalog()
    return catalog, site_context(catalog)


def _row(html: str, id: str) -> str:
    match = re.search(rf'<tr[^>]*><td><a href="../papers/{id}/">.*?</tr>', html)
    assert match is not None, id
    return match.group(0)


def test_memory_is_shown_beside_both_exact_attention_references(shipped) -> None:
    catalog, context = shipped
    html = comparison_page(catalog, context)
    assert "fused kernel" in html and "n×n scores" in html
    longformer = _row(html, "longformer")
    result = context.primary("longformer")
    assert result is not None and result.relative_to_dense is not None
    assert f"{result.relative_to_dense.peak_bytes:.2f}×" in longformer
    assert f"{result.memory_vs_materialised_softmax:.2f}×" in longformer
    # Both reference lines in the memory plots: the benchmarks', the class's, the paper's.
    plots = benchmark_plots(catalog, context)
    memory = next(svg for name, svg in plots.items() if name.endswith("-LP-peak_bytes.svg"))
    assert "exact attention, fused kernel" in memory and "exact attention, n×n scores" in memory
    performer = paper_plot(catalog.entries["performer"], context)
    assert performer is not None and "n×n scores" in performer
    code = catalog.entries["longformer"].taxonomy[0]
    page = taxonomy_page(code, catalog, context, plots)
    assert f"-{code}-peak_bytes.svg" in page


def test_feed_forward_mechanisms_are_compared_with_the_dense_feed_forward_layer(
    shipped,
) -> None:
    catalog, context = shipped
    measurement = context.measurements[0]
    reference = measurement.result("dense-ffn")
    assert reference is not None and reference.kind == "ffn"
    html = comparison_page(catalog, context)
    assert "dense feed-forward" in unescape(html)  # text is escaped for Markdown
    for id in FFN:
        result = measurement.result(id)
        assert result is not None and result.reference == "dense-ffn", id
        assert result.memory_vs_materialised_softmax is None  # no n×n scores in an FFN
        assert "vs FFN" in _row(html, id)
        plot = paper_plot(catalog.entries[id], context)
        assert plot is not None and "dense feed-forward" in plot and "fused kernel" not in plot
    page = benchmarks_page(catalog, context, benchmark_plots(catalog, context))
    assert "dense feed-forward" in unescape(page) and "dense-ffn" in unescape(page)


def test_a_symbol_defined_from_n_grows_with_it(shipped) -> None:
    catalog, context = shipped
    data = complexity_data(catalog.entries["sinkhorn-transformer"], context, None)
    assert str(data.time_growth).startswith("n^2")  # O(n b + n_b^2) with n_b = n / b
    assert "n_b" in data.grows and "n_b" not in data.fixed and "b" in data.fixed


def test_fitted_exponents_carry_their_range_and_every_dash_says_why(shipped) -> None:
    catalog, context = shipped
    html = comparison_page(catalog, context)
    # Adaptive Sparse: longer lengths skipped, so its exponent carries a fit note.
    adaptive = _row(html, "adaptive-sparse-transformer")
    result = context.primary("adaptive-sparse-transformer")
    assert result is not None and result.exponents is not None
    fitted = [p.n for p in result.measured_points][-3:]
    assert any(not p.measured for p in result.points if p.n > fitted[-1])
    assert f"{result.exponents.forward_s:.2f}" in adaptive
    assert f"{fitted[0]}–{fitted[-1]}" in adaptive and "atlas-fit-note" in adaptive
    # Perceiver: far below its claimed growth (fixed costs dominate): a fit note too.
    perceiver = _row(html, "perceiver")
    result = context.primary("perceiver")
    assert result is not None and result.exponents is not None
    assert f"{result.exponents.forward_s:.2f}" in perceiver and "atlas-fit-note" in perceiver
    for cell in re.findall(r"<td[^>]*>—.*?</td>", html):
        assert "title=" in cell and "<sup" in cell, cell
    assert not re.search(r"<td[^>]*>—</td>", html)


def test_the_platform_is_named_next_to_measured_figures(shipped) -> None:
    catalog, context = shipped
    file = context.measurements[0].file
    platform = f"{file.machine.processor}, {file.setup.threads} threads"
    html = comparison_page(catalog, context)
    assert platform in html and f"batch {file.setup.batch}" in html
    page = benchmarks_page(catalog, context, benchmark_plots(catalog, context))
    assert page.count(platform) >= 2
    plot = paper_plot(catalog.entries["performer"], context)
    assert plot is not None and file.machine.processor in plot
    data = complexity_data(catalog.entries["performer"], context, "plot.svg")
    # Each crossover names the platform it holds for (one a measurement file that has one).
    processors = {measured.file.machine.processor for measured in context.measurements}
    assert data.crossings and data.crossings[0][0].startswith(file.machine.processor)
    for label, _ in data.crossings:
        assert any(label.startswith(processor) for processor in processors), label


def test_a_paper_page_names_each_platform_once_and_apart(shipped) -> None:
    page = render_pages(*shipped)["papers/performer.md"]
    sentence = unescape(re.search(r"Measured on (.*?); figures and ratios", page).group(1))
    platforms = [part.strip("* ") for part in sentence.split("; ")]
    assert len(platforms) == len(set(platforms)) >= 2
    assert all(re.search(r", \d+ threads, \w+, batch \d+$", platform) for platform in platforms)
