"""``tools.site`` holds the catalog's lock while it reads the catalog and writes ``docs/``
(issue 15, point 5): a sync halfway through a write is never rendered."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.catalog import ROOT
from tools.catalog.lock import catalog_lock


def _site(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.site", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def catalog_and_project(tmp_path: Path) -> tuple[Path, Path]:
    catalog, project = tmp_path / "catalog", tmp_path / "project"
    shutil.copytree(ROOT / "catalog", catalog, ignore=shutil.ignore_patterns(".atlas*"))
    (project / "docs").mkdir(parents=True)
    return catalog, project


@pytest.mark.parametrize("command", ["generate", "build"])
def test_a_held_lock_stops_the_command_with_a_clear_message(
    catalog_and_project: tuple[Path, Path], command: str
) -> None:
    catalog, project = catalog_and_project
    with catalog_lock(catalog):
        start = time.monotonic()
        result = _site(
            command, "--catalog", str(catalog), "--project", str(project), "--wait", "0.3"
        )
        elapsed = time.monotonic() - start
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: another tool is writing" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 30
    assert list((project / "docs").iterdir()) == []


def test_generate_takes_the_lock_once_it_is_free(catalog_and_project: tuple[Path, Path]) -> None:
    catalog, project = catalog_and_project
    result = _site("generate", "--catalog", str(catalog), "--project", str(project))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "docs" / "papers" / "linformer.md").is_file()
    # Released: a writer can take it at once.
    with catalog_lock(catalog, wait=0.0) as recovered:
        assert recovered is None


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "soon"])
def test_a_bad_wait_is_refused(wait: str) -> None:
    result = _site("generate", "--wait", wait)
    assert result.returncode == 2
    assert "--wait: not a number of seconds" in result.stderr
