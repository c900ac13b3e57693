"""Ours against exact attention and against public implementations (issue 16), on the site.

A measurement file is built here with known figures, so every ratio the pages print can be
checked against arithmetic done by hand; the shipped file's peer run is checked by
``tests/measure/test_shipped_peers.py``.
"""

from __future__ import annotations

import dataclasses
from html import unescape

import pytest

from tests.site.measurement_files import measurement_file, point
from tools.catalog import load_catalog
from tools.catalog.measurements import MeasurementFile, PeerComparison, Point, Result
from tools.site.context import Measurement
from tools.site.generate import site_context
from tools.site.pages.benchmarks import benchmark_plots, benchmarks_page
from tools.site.pages.complexity import complexity_data, paper_plot
from tools.site.pages.ratios import RATIO_LENGTHS, exact_rows, peer_points, peer_rows

HOSTILE = "<script>alert(1)</script>"


def _file() -> MeasurementFile:
    dense = Result(
        id="dense", causal=False, kind="attention", points=[point(n, 1.0) for n in RATIO_LENGTHS]
    )
    points = [point(4096, 2.0), point(8192, 0.5), Point(n=16384, skipped="predicted 99 s")]
    linformer = Result(
        id="linformer",
        causal=False,
        kind="attention",
        points=points,
        peers=[
            PeerComparison(
                peer="linformer",
                version="0.2.3",
                n=4096,
                forward_ratio=0.8,
                forward_backward_ratio=1.25,
                ours_peak_bytes=300,
                peer_peak_bytes=100,
                settings="k = 256",
                notes=[HOSTILE],
            ),
            PeerComparison(peer="other-package", n=4096, forward_ratio=0.5),
            PeerComparison(peer="linformer", n=8192, skipped="MemoryError: the peer ran out"),
        ],
    )
    return measurement_file({"dense": dense, "linformer": linformer})


@pytest.fixture(scope="module")
def measurement() -> Measurement:
    return Measurement("measurements/cpu-float32.json", _file())


def _text(cell: object) -> str:
    return unescape(str(cell))


def test_time_over_exact_attention_at_each_long_length(measurement: Measurement) -> None:
    catalog = load_catalog()
    (row,) = exact_rows(measurement, catalog)  # dense, the reference, has no row
    assert row.id == "linformer" and len(row.cells) == 2 * len(RATIO_LENGTHS)
    forward, backward = row.cells[:3], row.cells[3:]
    assert "<strong>2.00×</strong>" in str(forward[0])  # slower than exact: bold
    assert _text(forward[1]) == "0.50×" and _text(backward[1]) == "0.50×"
    assert "predicted 99 s" in _text(forward[2])  # a skipped length says why


def test_against_the_fastest_peer_figure_by_figure(measurement: Measurement) -> None:
    (row,) = peer_rows(measurement, load_catalog())
    assert row.peers == "linformer, other-package"
    forward, backward, memory = (_text(cell) for cell in row.cells[:3])
    # Forward: 0.8 against linformer, 0.5 against the other: the fastest peer gives 0.80.
    assert "0.80×" in forward and "against linformer 0.2.3" in forward
    assert "<strong>1.25×</strong>" in backward  # only linformer has forward+backward
    assert "<strong>3.00×</strong>" in memory  # 300 / 100 bytes
    # n = 8192: the peer ran out of memory, and the cell says so; n = 16384: no comparison.
    assert all("MemoryError: the peer ran out" in _text(cell) for cell in row.cells[3:6])
    assert all("no peer in the run" in _text(cell) for cell in row.cells[6:])


def test_the_pages_show_the_ratios_and_escape_the_peer_notes(measurement: Measurement) -> None:
    catalog = load_catalog()
    context = dataclasses.replace(site_context(catalog), measurements=[measurement])
    page = benchmarks_page(catalog, context, benchmark_plots(catalog, context))
    assert "Every mechanism against exact attention at long lengths" in page
    assert "Against the public implementations" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert "**linformer 0.2.3**: k = 256" in unescape(page)
    paper = complexity_data(catalog.entries["linformer"], context, None)
    assert [(line.peer, line.n) for line in paper.peers] == [
        ("linformer 0.2.3", 4096),
        ("linformer", 8192),  # skipped: no version recorded
        ("other-package", 4096),
    ]
    assert "<strong>1.25×</strong>" in str(paper.peers[0].cells[1])


def test_the_paper_plot_draws_each_peer_beside_ours(measurement: Measurement) -> None:
    catalog = load_catalog()
    context = dataclasses.replace(site_context(catalog), measurements=[measurement])
    svg = paper_plot(catalog.entries["linformer"], context)
    assert svg is not None
    # Each peer that ran is drawn at ours / ratio: forward 2.0 s / 0.8 and 2.0 s / 0.5,
    # memory 4096 B / 3; the skipped comparison (n = 8192) is drawn as nothing.
    assert ">linformer 0.2.3: n = 4096, 2.5 s<" in svg
    assert ">other-package: n = 4096, 4 s<" in svg
    assert ">linformer 0.2.3: n = 4096, 1.33 KiB<" in svg
    assert "linformer 0.2.3: n = 8192" not in svg
    assert "Dotted: public implementations" in svg
    assert ">Forward time<" in svg and ">Peak memory<" in svg  # panel titles, not peer names
    assert peer_points(measurement.result("linformer"), "forward_s") == {
        "linformer 0.2.3": [(4096, 2.5)],
        "other-package": [(4096, 4.0)],
    }
    assert peer_points(measurement.result("linformer"), "peak_bytes") == {
        "linformer 0.2.3": [(4096, 4096 / 3)]
    }
