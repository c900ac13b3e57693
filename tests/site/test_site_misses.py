"""The performance targets a CPU run misses, and the profiles that explain them (issue 16).

Measurement files are built here with known ratios, so which variant misses which target is
decided by hand; the last test holds the shipped CPU run to the rule that every miss is
explained by a "Where the time goes" paragraph of its implementation.
"""

from __future__ import annotations

from html import unescape

from tests.site.measurement_files import measurement_file, point
from tools.catalog import load_catalog
from tools.catalog.measurements import MeasurementFile, PeerComparison, Point, Result
from tools.site.context import Measurement, SiteContext
from tools.site.generate import site_context
from tools.site.pages.benchmarks import benchmarks_page
from tools.site.pages.misses import misses, time_profile

CATALOG = load_catalog()
LENGTHS = (4096, 8192, 16384)


def _result(id: str, seconds: float, **fields: object) -> Result:
    points = fields.pop("points", [point(n, seconds, backward_factor=2.0) for n in LENGTHS])
    return Result(id=id, causal=False, kind="attention", points=points, **fields)


def _file(device: str = "cpu") -> MeasurementFile:
    results = {
        "dense": _result("dense", 1.0),
        # Claimed O(n k): held to the exact-attention target, and 1.5x slower at 8192.
        "linformer": _result("linformer", 1.5),
        # Claimed O(n^2): not held to it, however slow.
        "synthesizer": _result("synthesizer", 3.0),
        # Claimed O(n m d), faster than exact, but slower than its peer at 4096.
        "performer": _result(
            "performer",
            0.5,
            peers=[
                PeerComparison(
                    peer="performer-pytorch",
                    version="1.1.4",
                    n=4096,
                    forward_ratio=1.2,
                    forward_backward_ratio=0.9,
                )
            ],
        ),
        # Sub-quadratic with no point at 8192.
        "nystromformer": _result(
            "nystromformer",
            0.5,
            points=[point(4096, 0.5, backward_factor=2.0), Point(n=8192, skipped="predicted 99 s")],
        ),
        # Meets every target.
        "big-bird": _result("big-bird", 0.5),
    }
    return measurement_file(results, device=device)


PROFILES = {"linformer": "**Where the time goes**: the projections, 80% (test)."}


def test_time_profile_joins_every_marked_paragraph_and_nothing_else() -> None:
    code = (
        '"""Title.\n\nThe math.\n\n**Where the time goes**: the gathers\n(0.25 s).\n\n'
        'Hyper-parameters.\n\n**Where the time goes**: before, the masks.\n"""\nx = 1\n'
    )
    assert time_profile(code) == (
        "**Where the time goes**: the gathers (0.25 s).\n\n"
        "**Where the time goes**: before, the masks."
    )
    assert time_profile('"""Where the time goes, unmarked."""') is None
    assert time_profile("x = 1\n") is None


def test_misses_are_the_slow_subquadratic_variants_and_the_peer_losses() -> None:
    found = {m.id: m for m in misses(Measurement("cpu", _file()), CATALOG, PROFILES)}
    assert sorted(found) == ["linformer", "nystromformer", "performer"]
    assert found["linformer"].missed == [
        "forward 1.50× exact attention at n = 8192",
        "forward+backward 1.50× exact attention at n = 8192",
    ]
    assert found["linformer"].profile == PROFILES["linformer"]
    assert found["nystromformer"].missed == ["no point at n = 8192 (predicted 99 s)"]
    assert found["nystromformer"].profile is None
    assert found["performer"].missed == ["forward 1.20× at 4096 against performer-pytorch 1.1.4"]


def test_a_gpu_run_is_not_held_to_the_cpu_targets() -> None:
    assert misses(Measurement("gpu", _file(device="cuda")), CATALOG, PROFILES) == []


def test_benchmarks_page_lists_each_miss_under_its_profile() -> None:
    context = SiteContext(measurements=[Measurement("cpu", _file())], profiles=PROFILES)
    page = benchmarks_page(CATALOG, context, plots=[])
    # Figures are Markdown-escaped (= as &#61;), which the browser shows as typed.
    section = unescape(page).split("### Targets missed, and where the time goes", 1)[1]
    section = section.split("\n### ", 1)[0]
    linformer = section.split("[Linformer]", 1)[1]
    assert linformer.startswith(
        "(../papers/linformer.md)**: forward 1.50× exact attention at n = 8192;"
    )
    # The profile is our own Markdown, indented under its item and not escaped.
    assert "\n    **Where the time goes**: the projections, 80% (test).\n" in linformer
    assert "\n    **Where the time goes**: the projections" in page
    nystrom = section.split("[Nyströmformer]", 1)[1]
    assert "    No profile recorded yet." in nystrom.split("\n- ", 1)[0]
    assert "Synthesizer" not in section and "BigBird" not in section


def test_every_miss_of_the_shipped_cpu_run_is_explained_by_a_profile() -> None:
    context = site_context(CATALOG)
    cpu = [m for m in context.measurements if m.file.setup.device == "cpu"]
    assert cpu, "no CPU measurement is shipped"
    found = [miss for m in cpu for miss in misses(m, CATALOG, context.profiles)]
    unexplained = [f"{m.id}{' (causal)' if m.causal else ''}" for m in found if not m.profile]
    assert unexplained == []
