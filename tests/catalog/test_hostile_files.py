"""Unlucky and hostile catalog files give ``path:line: message``, never a traceback or a hang.

Each case is a file dropped into a copy of the shipped catalog; the check must report it
in a subprocess (a hang would time out) with a non-zero exit and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.catalog import ROOT, load_catalog
from tools.catalog.complexity import ComplexityError, parse
from tools.catalog.measurements import parse_measurements

SHIPPED_ENTRY = (ROOT / "catalog" / "papers" / "linformer.yaml").read_text(encoding="utf-8")
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def _symlink_loop(papers: Path) -> None:
    os.symlink("loop.yaml", papers / "loop.yaml")


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def make(papers: Path) -> None:
        target = papers / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    return make


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "alias bomb": (_write("bomb.yaml", BILLION_LAUGHS), "bomb.yaml:1: (yaml): YAML anchors"),
    "self-referencing anchor": (_write("self.yaml", "id: &x [*x]\n"), "self.yaml:1: (yaml):"),
    "symlink loop": (_symlink_loop, "loop.yaml:1: (file): cannot read"),
    "NUL byte": (
        _write("nul.yaml", b"id: a\nname: b\x00c\n"),
        "nul.yaml:2: (yaml): contains a NUL",
    ),
    "deep flow nesting": (
        _write("deep.yaml", "x: " + "[" * 20000 + "]" * 20000 + "\n"),
        "deep.yaml:1: (yaml): nested deeper than",
    ),
    "deep block nesting": (
        _write("block.yaml", "".join(f"{' ' * 2 * i}k{i}:\n" for i in range(200))),
        "block.yaml:",
    ),
    "directory named like an entry": (
        lambda papers: (papers / "folder.yaml").mkdir(),
        "folder.yaml:1: (file): cannot read",
    ),
    "empty file": (_write("empty.yaml", ""), "empty.yaml:1: (file): the file is empty"),
    "deeply nested complexity": (
        _write(
            "linformer.yaml",
            SHIPPED_ENTRY.replace("time: O(n k)", "time: O(" + "(" * 500 + "n" + ")" * 500 + ")"),
        ),
        "linformer.yaml:",
    ),
    "newline in a title": (
        _write(
            "linformer.yaml",
            SHIPPED_ENTRY.replace("title: ", 'title: "x\\n--8<-- \\"index.md\\"" #', 1),
        ),
        "linformer.yaml:",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_reports_a_hostile_file_at_its_line(case: str, catalog_copy: Path) -> None:
    make, expected = CASES[case]
    make(catalog_copy / "papers")
    result = subprocess.run(
        [sys.executable, "-m", "tools.catalog", "--root", str(catalog_copy), "check"],
        capture_output=True,
        text=True,
        cwd=catalog_copy.parent,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr


def test_a_title_with_a_line_break_is_refused_with_the_reason(catalog_copy: Path) -> None:
    CASES["newline in a title"][0](catalog_copy / "papers")
    messages = [str(problem) for problem in load_catalog(catalog_copy).problems]
    assert any("title: must be a single line" in message for message in messages), messages


def test_a_nested_complexity_is_a_parse_error_not_a_recursion_error() -> None:
    with pytest.raises(ComplexityError, match="nested deeper than"):
        parse("O(" + "log " * 5000 + "n)")


def test_a_measurement_command_is_one_line() -> None:
    text = (ROOT / "catalog" / "measurements" / "cpu-float32.json").read_text(encoding="utf-8")
    poisoned = text.replace(
        '"command": "python -m tools.measure', '"command": "x\\n--8<-- \\"/etc/passwd\\"\\n', 1
    )
    with pytest.raises(ValueError, match=r"command: .*single line"):
        parse_measurements(poisoned, Path("cpu-float32.json"))
