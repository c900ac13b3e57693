"""``python -m tools.catalog export -o`` writes through a symlink and refuses what is not a
regular file, clearly and without blocking (issue 15, point 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.catalog import ROOT


def _export(catalog: Path, output: Path) -> subprocess.CompletedProcess[str]:
    command = ["-m", "tools.catalog", "--root", str(catalog), "export", "--format", "bibtex"]
    return subprocess.run(
        [sys.executable, *command, "-o", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_symlink_is_written_through_and_kept(catalog_copy: Path, tmp_path: Path) -> None:
    target, link = tmp_path / "real.bib", tmp_path / "atlas.bib"
    target.write_text("old\n", encoding="utf-8")
    link.symlink_to(target)
    result = _export(catalog_copy, link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert "@" in target.read_text(encoding="utf-8")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["atlas.bib", "catalog", "real.bib"]


def test_a_fifo_is_refused_at_once_and_left_alone(catalog_copy: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "atlas.bib"
    os.mkfifo(fifo)
    # With no reader, opening the FIFO to write would block: the timeout would fail the test.
    result = _export(catalog_copy, fifo)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {fifo}: ")
    assert "Traceback" not in result.stderr
    assert fifo.is_fifo()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["atlas.bib", "catalog"]


def test_a_folder_is_refused(catalog_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    result = _export(catalog_copy, folder)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {folder}: ")
    assert "Traceback" not in result.stderr
    assert list(folder.iterdir()) == []


def test_an_unwritable_place_is_refused(catalog_copy: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = _export(catalog_copy, blocker / "atlas.bib")  # a file where a folder should be
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {blocker / 'atlas.bib'}: ")
    assert "Traceback" not in result.stderr
