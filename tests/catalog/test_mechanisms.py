"""What the sources declare (read without torch) is what the registry holds, and the
check finds a module that does not register its entry, in both modes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import implementations
from tools.catalog import ROOT, load_catalog
from tools.catalog.check import check
from tools.catalog.mechanisms import declared_mechanisms, read_declarations

TORCH_FREE = """
import sys
from tools.catalog.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "the check imported torch"
raise SystemExit(code)
"""


def test_declarations_match_the_live_registry() -> None:
    declared = declared_mechanisms()
    assert sorted(declared) == implementations.available()
    result = check(load_catalog(), imported=True)
    assert result.ok, [str(problem) for problem in result.problems]


def test_a_decorator_with_computed_arguments_is_not_a_declaration() -> None:
    source = 'KIND = "ffn"\n@register("x", kind=KIND)\nclass X:\n    pass\n'
    assert read_declarations(source, "implementations.x", "implementations/x.py") == []


def test_the_default_check_runs_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("catalog OK: ")
    assert result.stderr == ""


def test_an_entry_whose_module_does_not_register_it(catalog_copy: Path) -> None:
    # The Performer entry pointed at the dense module: named wrongly, and not registered.
    path = catalog_copy / "papers" / "performer.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("implementations.performer", "implementations.dense"))
    for imported in (False, True):
        found = [str(p) for p in check(load_catalog(catalog_copy), imported=imported).problems]
        assert len(found) == 1, found
        assert "performer.yaml:" in found[0]
        assert "implementation: expected 'implementations.performer'" in found[0]
