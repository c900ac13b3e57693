"""The README's Python examples run as written, and its Quick start names real commands."""

from __future__ import annotations

import re

from tools.catalog import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_python_examples_run() -> None:
    blocks = python_blocks(README)
    assert len(blocks) >= 2, "the README shows how to build and run a mechanism"
    namespace: dict[str, object] = {}
    for block in blocks:  # later blocks may use names from earlier ones, as a reader would
        exec(compile(block, "README.md", "exec"), namespace)
    assert tuple(namespace["y"].shape) == (2, 1000, 64)  # type: ignore[attr-defined]


def test_quick_start_is_exactly_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert "pip install -e '.[dev]'" in commands[0] and "python -m tools.site serve" in commands[0]
    assert commands[1].split("#")[0].strip() == "python -m pytest"


def test_every_test_file_the_readme_names_exists() -> None:
    named = set(re.findall(r"tests/[\w/]+\.py", README))
    assert named, "the README points readers at the tests that hold its promises"
    assert sorted(path for path in named if not (ROOT / path).is_file()) == []
