"""What ``tools.site`` prints that came from a file is shown, never obeyed by the terminal."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tools.catalog import ROOT


def test_a_hostile_file_name_is_printed_escaped(tmp_path: Path) -> None:
    catalog, project = tmp_path / "catalog", tmp_path / "project"
    shutil.copytree(ROOT / "catalog", catalog, ignore=shutil.ignore_patterns(".atlas*"))
    (project / "docs").mkdir(parents=True)
    (catalog / "measurements" / "cpu-\x1b]0;pwned\x07.json").write_text("{", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.site",
            "generate",
            "--catalog",
            catalog,
            "--project",
            project,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "site: skipping " in result.stderr
    assert "cpu-\\x1b]0;pwned\\x07.json" in result.stderr
    assert "\x1b" not in result.stderr + result.stdout
    assert "\x07" not in result.stderr + result.stdout
