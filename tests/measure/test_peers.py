"""Peers in our own benchmark: the per-pair ratio, the typed fields, and ``--peers`` run
beside ours (a real run at tiny sizes when the extra is installed; not-installed peers are
reported, not failed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.catalog import CATALOG_DIR
from tools.catalog.measurements import (
    PeerComparison,
    Result,
    load_measurement_files,
    parse_measurements,
)
from tools.measure.cli import main
from tools.measure.peer_timing import compare, median_ratio, with_comparison
from tools.measure.peers import INSTALL, PEERS, Peer, peers_of
from tools.measure.workload import Variant, make_setup

NAME = "measurements/cpu-float32.json"
INSTALLED = [peer for peer in PEERS if peer.installed()]
needs_a_peer = pytest.mark.skipif(
    not any(peer.name == "linformer" for peer in INSTALLED),
    reason=f"peers extra not installed: {INSTALL}",
)


@pytest.fixture
def fresh_catalog(tmp_path: Path) -> Path:
    """An empty measurements folder beside a copy of the catalog's entries."""
    import shutil

    root = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, root, ignore=shutil.ignore_patterns("measurements"))
    (root / "measurements").mkdir()
    return root


def test_the_ratio_is_the_median_over_pairs_not_the_ratio_of_medians() -> None:
    ours = [1.0, 10.0, 3.0]
    peer = [2.0, 2.0, 3.0]  # pairs: 0.5, 5.0, 1.0
    assert median_ratio(ours, peer) == 1.0
    with pytest.raises(ValueError, match="as many"):
        median_ratio([1.0], [])


def test_every_peer_names_one_of_our_mechanisms_and_its_settings() -> None:
    import implementations

    for peer in PEERS:
        assert peer.mechanism in implementations.available(), peer.name
        assert peer.settings
    defects = " ".join(note for peer in peers_of("sinkhorn-transformer") for note in peer.notes)
    assert "re-sorted keys as values" in defects
    assert any("n×n probability" in note for peer in peers_of("big-bird") for note in peer.notes)


def test_comparisons_round_trip_and_old_files_stay_byte_for_byte() -> None:
    shipped = CATALOG_DIR / NAME
    text = shipped.read_text(encoding="utf-8")
    assert parse_measurements(text, shipped).to_json() == text  # peers included
    file = load_measurement_files()[NAME]
    # A result measured without --peers is written exactly as before the field existed.
    bare = file.model_copy(
        update={"results": {k: r.model_copy(update={"peers": []}) for k, r in file.results.items()}}
    )
    assert '"peers"' not in bare.to_json() and '"peers"' in text
    measured = PeerComparison(
        peer="linformer", version="0.2.3", n=1024, forward_ratio=0.9,
        forward_backward_ratio=1.1, ours_peak_bytes=10, peer_peak_bytes=20,
        settings="k = 256", notes=["shares E and F across heads"],
    )  # fmt: skip
    skipped = PeerComparison(peer="linformer", n=2048, skipped="not installed")
    result = with_comparison(with_comparison(file.results["dense"], measured), skipped)
    file.results["dense"] = with_comparison(result, measured)  # replaces, never duplicates
    again = parse_measurements(file.to_json(), shipped)
    assert again.results["dense"].peers == [measured, skipped]
    assert again.to_json() == file.to_json()


def test_a_peer_that_is_not_installed_is_reported_not_failed() -> None:
    missing = Peer("no-such-peer", "no_such_peer_module", "linformer", PEERS[1].build, "k")
    comparison = compare(missing, Variant("linformer", False), 64, make_setup(dim=16), 1)
    assert comparison.skipped == "not installed" and comparison.version is None


def test_peers_flag_lists_peers_not_installed(
    fresh_catalog: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Peer, "installed", lambda self: False)
    args = ["--peers", "--mechanisms", "linformer", "--lengths", "64", "--dim", "16"]
    assert main([*args, "--heads", "2", "--repeats", "1", "--catalog", str(fresh_catalog)]) == 0
    out = capsys.readouterr().out
    assert "linformer" in out and "not installed" in out and INSTALL in out
    result = load_measurement_files(fresh_catalog)[NAME].results["linformer"]
    assert [(c.peer, c.skipped) for c in result.peers] == [("linformer", "not installed")]


@needs_a_peer
def test_peers_run_beside_ours_at_tiny_sizes(
    fresh_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--peers", "--mechanisms", "linformer", "--lengths", "64,128", "--dim", "16"]
    assert main([*args, "--heads", "2", "--repeats", "2", "--catalog", str(fresh_catalog)]) == 0
    data = json.loads((fresh_catalog / NAME).read_text(encoding="utf-8"))
    result = Result.model_validate(data["results"]["linformer"])
    assert [c.n for c in result.peers] == [64, 128]
    for comparison in result.peers:
        assert comparison.measured, comparison.skipped
        assert comparison.forward_ratio and comparison.forward_backward_ratio
        assert comparison.peer_peak_bytes and comparison.ours_peak_bytes
        assert comparison.version
    assert "fwd ours/peer" in capsys.readouterr().out
