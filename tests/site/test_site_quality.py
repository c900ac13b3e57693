"""The quality benchmark page, its frontier charts and each paper's own results (issue 13).

Built from a small hand-written evaluation file (:func:`fixture_evaluations`, valid per
the format of ``tools.catalog.evaluations``) whose Pareto frontier is known: on
associative recall at n = 512, dense attention (slow, exact), BigBird (faster, less
accurate) and Performer (fastest) are on it, and Linformer, slower and less accurate
than BigBird, is not.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tools.catalog import ROOT, load_catalog
from tools.catalog.evaluations import Evaluations
from tools.site.context import SiteContext
from tools.site.generate import GENERATED, load_evaluation_files
from tools.site.lra_chart import Axes, Point, accuracy_chart, frontier
from tools.site.pages.papers import paper_page
from tools.site.pages.quality import own_results, quality_page, task_section

CATALOG = load_catalog()
SVG = "{http://www.w3.org/2000/svg}"
# (mechanism, accuracy at seed 0 and 1, tokens/s, peak MiB) on every task and length.
FIGURES = {
    "dense": ((0.97, 0.99), 1000.0, 64),
    "big-bird": ((0.80, 0.84), 2500.0, 24),
    "linformer": ((0.70, 0.70), 2000.0, 16),
    "performer": ((0.40, 0.46), 4000.0, 8),
}
ON_FRONTIER = ["Exact attention (dense)", "BigBird", "Performer"]  # slowest first
HOSTILE = "<script>window.atlasPwned = 9</script> *x* [y](z) $m$"


def fixture_evaluations(hostile: str = "") -> dict:
    """An evaluation file as ``python -m tools.evaluate`` writes it: two tasks, two
    lengths, two seeds, and one skipped run (text fields end with ``hostile``)."""
    runs = []
    for mechanism, (accuracies, speed, mebibytes) in FIGURES.items():
        for task in ("associative-recall", "listops"):
            for length in (512, 2048):
                for seed, accuracy in enumerate(accuracies):
                    runs.append(
                        {
                            "mechanism": mechanism,
                            "task": task,
                            "length": length,
                            "seed": seed,
                            "accuracy": accuracy,
                            "tokens_per_second": speed * 512 / length,
                            "peak_bytes": mebibytes * 2**20 * length // 512,
                            "wall_seconds": 12.5,
                            "steps": 200,
                            "final_loss": 0.5,
                        }
                    )
    return {
        "schema_version": 1,
        "command": "python -m tools.evaluate --jobs 2" + hostile,
        "machine": {"cpu": "Fixture CPU" + hostile, "threads": 1, "platform": "Linux"},
        "torch": "2.5.1",
        "date": "2026-12-05",
        "setting": "Small models on synthetic tasks, width 64, depth 2." + hostile,
        "tasks": {
            "associative-recall": {
                "name": "Associative recall" + hostile,
                "description": "Key-value pairs, then queries." + hostile,
                "causal": True,
                "chance": 0.1,
                "metric": "accuracy",
            },
            "listops": {
                "name": "ListOps",
                "description": "Nested MAX, MIN, MED and SM over digits.",
                "causal": False,
                "chance": 0.1,
                "metric": "accuracy",
            },
        },
        "runs": runs,
        "skipped": [
            {
                "mechanism": "reformer",
                "task": "listops",
                "length": 2048,
                "reason": "needs a length divisible by its buckets" + hostile,
            }
        ],
    }


def _evaluations(hostile: str = "") -> Evaluations:
    return Evaluations.model_validate(fixture_evaluations(hostile))


def test_the_frontier_is_the_points_nothing_beats_on_speed_and_accuracy() -> None:
    section = task_section(
        CATALOG, "cpu", _evaluations(), "associative-recall", [*_evaluations().points()]
    )
    chart = section.charts[0]
    assert chart.length == 512
    assert [p.name for p in chart.frontier] == ON_FRONTIER
    assert "Linformer" not in [p.name for p in chart.frontier]
    root = ET.fromstring(str(chart.svg))
    assert len(root.findall(f".//{SVG}circle")) == len(FIGURES)
    line = root.findall(f".//{SVG}polyline[@class='atlas-frontier']")
    assert len(line) == 1 and len(line[0].get("points", "").split()) == len(ON_FRONTIER)
    for circle in root.findall(f".//{SVG}circle"):  # dense, near 100%, is not cut at the top
        assert float(circle.get("cy", 0)) - float(circle.get("r", 0)) >= 0
    bold = [c for c in root.findall(f".//{SVG}circle") if c.get("stroke-width") == "2.5"]
    assert len(bold) == len(ON_FRONTIER)
    assert len(root.findall(f".//{SVG}line[@class='atlas-chance']")) == 1
    assert chart.texts[0] == "Exact attention (dense): 98.0% at 1,000 tokens/s"


def test_frontier_keeps_ties_and_drops_a_point_beaten_on_one_axis_only() -> None:
    a, twin = Point("a", "", 2.0, 50.0, 1.0), Point("twin", "", 2.0, 50.0, 3.0)
    slower = Point("slower", "", 1.0, 50.0, 1.0)  # as accurate as a, slower: beaten
    assert frontier([a, twin, slower]) == [a, twin]
    assert frontier([]) == []


def test_the_lra_chart_draws_no_frontier_and_keeps_its_axes() -> None:
    svg = accuracy_chart([Point("A", "", 1.0, 50.0, 1.0)], title="t", axes=Axes("x <", "y"))
    assert "atlas-frontier" not in svg and "atlas-chance" not in svg
    assert ">x &lt;</text>" in svg
    # Tokens per second read in thousands.
    fast = accuracy_chart([Point("A", "", 40_000.0, 50.0, 1.0)], title="t", axes=Axes("x", "y"))
    assert ">40k</text>" in fast


def test_the_page_states_the_setting_and_shows_a_table_and_charts_per_task() -> None:
    text = quality_page(CATALOG, {"cpu": _evaluations()})
    assert text.startswith('---\ntitle: "Quality benchmark"')
    assert "small models on synthetic tasks" in text
    assert "not with the published [Long Range Arena](../lra/index.md)" in text
    assert "Small models on synthetic tasks, width 64, depth 2." in text  # the setting
    assert "```bash\npython -m tools.evaluate --jobs 2\n```" in text
    assert "| machine | Fixture CPU, 1 thread(s), Linux |" in text
    assert "| torch | 2&#46;5.1 |" in text and "| date | 2026&#45;12&#45;05 |" in text
    for task in ("associative-recall", "listops"):
        assert f'class="atlas-sortable atlas-quality-table" id="quality-cpu-{task}"' in text
        for n in (512, 2048):
            assert f'id="quality-cpu-{task}-{n}"' in text
    assert text.count("<svg") == 4 and text.count("atlas-frontier") == 4
    # dense, both seeds: 97% and 99%; the spread is half the range.
    assert '<td data-sort="98.0000" title="mean ± spread over 2 seed(s)">98.0 ± 1.0</td>' in text
    assert '<td data-sort="1000.0000">1,000</td><td data-sort="67108864">64.0</td>' in text
    # The skipped run: its reason in the cell's tooltip and under the table.
    assert 'title="skipped at n = 2048: needs a length divisible by its buckets">skipped<' in text
    assert "<li>skipped: Reformer at n = 2048: needs a length divisible by its buckets</li>" in text
    rows = re.findall(r"<tr><td>(.*?)</td>", text)
    assert rows.count('<a href="../papers/big-bird/">BigBird</a>') == 2
    assert rows.count("Exact attention (dense)") == 2  # no page: not a link
    assert "- Exact attention (dense)&#58; 98.0% at 1,000 tokens/s" in text


def test_everything_from_the_file_is_escaped() -> None:
    page = quality_page(CATALOG, {"cpu": _evaluations(HOSTILE)})
    # The command is shown as code, in a fence (which Markdown shows literally).
    fence = "```bash\npython -m tools.evaluate --jobs 2" + HOSTILE + "\n```"
    assert page.count(fence) == 1
    # The charts are raw HTML, which Markdown leaves alone: their text is XML-escaped, and
    # math renders only in arithmatex's elements (docs/assets/atlas.js).
    charts = re.findall(r"<svg .*?</svg>", page)
    assert len(charts) == 4
    assert all("&lt;script&gt;" in svg for svg in charts[:2])  # associative recall's
    for svg in charts:
        assert "<script>" not in svg
        assert not ET.fromstring(svg).findall(f".//{SVG}script")
    assert "<script>" not in page.replace(fence, "") and "&lt;script&gt;" in page
    # Lines of raw HTML (tables, charts) are HTML-escaped; the Markdown ones Markdown-escaped.
    markdown = [line for line in page.replace(fence, "").splitlines() if not line.startswith("<")]
    assert sum("atlasPwned" in line for line in markdown) >= 4  # setting, machine, task
    assert not any("[y](z)" in line or "*x*" in line or "$m$" in line for line in markdown), (
        markdown
    )
    own = own_results({"cpu": _evaluations(HOSTILE)}, "reformer")
    page = _paper("reformer", {"cpu": _evaluations(HOSTILE)})
    assert own and "<script>" not in page and "&lt;script&gt;" in page


def test_without_an_evaluation_file_the_page_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = quality_page(CATALOG, {})
    assert '!!! note "Not evaluated yet"' in text and "<svg" not in text
    assert load_evaluation_files(tmp_path) == {}
    (tmp_path / "evaluations").mkdir()
    assert load_evaluation_files(tmp_path) == {}
    broken = fixture_evaluations()
    broken["runs"][0]["accuracy"] = 2.0
    (tmp_path / "evaluations" / "cpu.json").write_text(json.dumps(broken), encoding="utf-8")
    assert load_evaluation_files(tmp_path) == {}  # a malformed file never takes the site down
    assert "site: skipping the evaluations" in capsys.readouterr().err
    (tmp_path / "evaluations" / "cpu.json").write_text(
        json.dumps(fixture_evaluations()), encoding="utf-8"
    )
    assert list(load_evaluation_files(tmp_path)) == ["cpu"]


def _paper(id: str, evaluations: dict[str, Evaluations]) -> str:
    slugs = {name: "x" for e in CATALOG.entries.values() for name in e.authors}
    context = SiteContext(evaluations=evaluations)
    return paper_page(CATALOG.entries[id], CATALOG, context, slugs, None)


def test_a_paper_page_shows_our_results_beside_the_published_ones() -> None:
    text = _paper("performer", {"cpu": _evaluations()})
    assert "## Our own results" in text and "(../quality/index.md)" in text
    assert text.index("## Published results") < text.index("## Our own results")
    assert "| Associative recall | 512 | 43&#46;0 ± 3&#46;0 | 2 | 4,000 |" not in text
    assert "| Associative recall | 512 | 43.0 ± 3.0 | 2 | 4,000 |" in text
    assert "| ListOps | 2048 | 43.0 ± 3.0 | 2 | 1,000 |" in text
    skipped = _paper("reformer", {"cpu": _evaluations()})
    assert (
        "| ListOps | 2048 | skipped: needs a length divisible by its buckets | — | — |" in skipped
    )
    assert "## Our own results" not in _paper("glam", {"cpu": _evaluations()})
    assert "## Our own results" not in _paper("performer", {})


def test_the_page_is_generated_owned_and_in_the_navigation() -> None:
    from tools.site.pages import render_pages

    assert "quality" in GENERATED
    assert "docs/quality/" in (ROOT / ".gitignore").read_text(encoding="utf-8")
    files = render_pages(CATALOG, SiteContext(evaluations={"cpu": _evaluations()}))
    assert 'id="quality-cpu-listops-2048"' in files["quality/index.md"]
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert '  - "Long Range Arena": lra/index.md\n  - "Quality benchmark": quality/index.md' in nav
