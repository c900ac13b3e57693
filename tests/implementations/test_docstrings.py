"""The implementations' docstrings render on the site and their examples run anywhere.

* No Sphinx role (``:func:`x```): the site's mkdocstrings (Google style) shows them raw.
  Cross-references are autorefs links, ``[`name`][implementations.module.name]``, and
  each names an object that exists and has a docstring (so the site documents it).
* A docstring holding a backslash (LaTeX) is a raw string, so ``\\!`` stays ``\\!``.
* Every ``>>>`` example runs in an empty namespace, as when pasted into a fresh
  interpreter: it imports what it uses.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest
import torch

import implementations

PACKAGE_DIR = Path(implementations.__file__).parent
SOURCES = sorted(PACKAGE_DIR.glob("*.py"))
ROLE = re.compile(r":(func|class|meth|data|attr|mod|obj):`")
AUTOREF = re.compile(r"\]\[(implementations(?:\.\w+)*)\]")


def module_of(path: Path) -> ModuleType:
    name = "implementations" if path.stem == "__init__" else f"implementations.{path.stem}"
    return importlib.import_module(name)


def docstring_nodes(path: Path) -> list[tuple[str, ast.Constant]]:
    """``(where, node)`` for the module's and every class's and function's docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                where = getattr(node, "name", "module")
                found.append((f"{path.name}:{first.lineno} ({where})", first))
    return found


by_file = pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)


@by_file
def test_no_sphinx_roles(path: Path) -> None:
    """No ``:func:`` and the like; and no line of math that Markdown reads as a list item."""
    bad = [where for where, node in docstring_nodes(path) if ROLE.search(node.value)]
    assert not bad, f"Sphinx roles render raw on the site; use autorefs links: {bad}"
    for where, node in docstring_nodes(path):
        in_block = False
        for line in node.value.splitlines():
            in_block ^= line.strip() == "$$"
            # A line opening with "+ " outside a $$ block starts a Markdown list: the
            # Scaling Transformers' "+" inside inline math was lost that way.
            assert in_block or not line.lstrip().startswith("+ "), f"{where}: {line!r}"
        assert "\n  $$" not in node.value, f"{where}: an indented $$ block does not render"


@by_file
def test_docstrings_with_backslashes_are_raw(path: Path) -> None:
    source = path.read_text(encoding="utf-8").splitlines()
    bad = []
    for where, node in docstring_nodes(path):
        if "\\" in node.value:
            start = source[node.lineno - 1][node.col_offset :]
            if start[:1] not in ("r", "R"):
                bad.append(where)
    assert not bad, f'docstrings with a backslash must be raw (r"""..."""): {bad}'


@by_file
def test_cross_references_resolve(path: Path) -> None:
    """Every autorefs target names an object with its own docstring, public past the module."""
    text = path.read_text(encoding="utf-8")
    for target in sorted(set(AUTOREF.findall(text))):
        parts = target.split(".")
        obj: object = importlib.import_module("implementations")
        for i, part in enumerate(parts[1:], start=1):
            dotted = ".".join(parts[: i + 1])
            try:
                obj = importlib.import_module(dotted)
                continue
            except ModuleNotFoundError:
                pass
            assert not part.startswith("_"), f"{target}: private {part} is not on the site"
            assert hasattr(obj, part), f"{path.name}: {target} does not exist"
            obj = getattr(obj, part)
        assert obj.__doc__, f"{path.name}: {target} has no docstring, so no page documents it"


def _examples() -> list[object]:
    cases = []
    for info in pkgutil.iter_modules(implementations.__path__):
        module = importlib.import_module(f"implementations.{info.name}")
        for test in doctest.DocTestFinder(exclude_empty=True).find(module, globs={}):
            if test.examples:
                cases.append(pytest.param(test, id=test.name))
    for test in doctest.DocTestFinder(exclude_empty=True).find(implementations, globs={}):
        if test.examples:
            cases.append(pytest.param(test, id=test.name))
    return cases


@pytest.mark.parametrize("test", _examples())
def test_examples_run_in_a_fresh_namespace(test: doctest.DocTest) -> None:
    """Each docstring's examples, run with empty globals (a fresh interpreter's view)."""
    assert set(test.globs) <= {"__builtins__", "__name__"}  # nothing of the module
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    torch.manual_seed(0)
    failures: list[str] = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
