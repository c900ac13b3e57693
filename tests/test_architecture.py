"""The house rules, checked on the sources: data flows one way and rooms stay small.

* ``implementations`` knows nothing of ``tools``;
* ``tools.catalog`` imports no other room and never torch (only its check imports the
  implementations, on request);
* every other room (``site``, ``measure``, ``zotero``, ``notes``, ``cite``,
  ``evaluate``) imports ``tools.catalog`` and nothing else of its siblings, save the
  edges in ``ALLOWED`` (the benchmark counts memory with the measuring room's counter);
* no import cycle among the modules of ``tools``;
* no module of ``tools`` over 400 lines; nothing edits ``sys.path``.

Imports are read with :mod:`ast`, inside functions too (a lazy import is still an
edge), and ``importlib.import_module("...")`` with a literal name counts as one.
Imports under ``if TYPE_CHECKING:`` are for the type checker only and are skipped.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.catalog import ROOT

TOOLS = ROOT / "tools"
ROOMS = ("catalog", "site", "measure", "zotero", "notes", "cite", "evaluate")
# Sibling modules a room may import besides tools.catalog: room -> modules.
ALLOWED = {"evaluate": {"tools.measure.counters"}}
# Top-level files of tools/: the package marker, and the script the design card names.
TOP_LEVEL = {"__init__.py": None, "sync_zotero.py": "zotero"}
MAX_LINES = 400


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import in ``path``, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from tools import site` imports tools.site
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def room_of(path: Path) -> str | None:
    relative = path.relative_to(TOOLS)
    if len(relative.parts) == 1:
        return TOP_LEVEL.get(relative.name, "(stray)")
    return relative.parts[0]


def tools_sources() -> list[Path]:
    return sorted(TOOLS.rglob("*.py"))


def existing(module: str) -> str | None:
    """The longest prefix of ``module`` that is a module or package of this repository."""
    parts = module.split(".")
    while parts:
        candidate = ROOT.joinpath(*parts)
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts)
        parts.pop()
    return None


def test_tools_holds_only_rooms() -> None:
    strays = [p.name for p in TOOLS.glob("*.py") if p.name not in TOP_LEVEL]
    assert strays == [], "every module of tools/ belongs in a room (a subpackage)"
    rooms = sorted(p.name for p in TOOLS.iterdir() if (p / "__init__.py").exists())
    assert set(rooms) <= set(ROOMS), rooms


def test_implementations_know_nothing_of_tools() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "implementations").rglob("*.py"))
        for line, name in imports(path)
        if name == "tools" or name.startswith("tools.")
    ]
    assert found == []


def test_catalog_imports_no_sibling_and_never_torch() -> None:
    found = []
    for path in sorted((TOOLS / "catalog").rglob("*.py")):
        for line, name in imports(path):
            sibling = name.startswith("tools.") and not name.startswith("tools.catalog")
            heavy = name.split(".")[0] == "torch"
            # The check may import the implementations when asked to (`check --import`).
            code = name.split(".")[0] == "implementations" and path.name != "check.py"
            if sibling or heavy or code or name == "tools":
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert found == []


@pytest.mark.parametrize("room", [room for room in ROOMS if room != "catalog"])
def test_a_room_imports_the_catalog_and_nothing_else_of_its_siblings(room: str) -> None:
    found = []
    for path in tools_sources():
        if room_of(path) != room:
            continue
        for line, name in imports(path):
            if not name.startswith("tools."):
                continue
            target = name.split(".")[1]
            allowed = existing(name) in ALLOWED.get(room, set())
            if target not in ("catalog", room) and existing(name) and not allowed:
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert found == []


def test_no_import_cycle_among_the_modules_of_tools() -> None:
    graph: dict[str, set[str]] = {}
    for path in tools_sources():
        targets = {existing(name) for _, name in imports(path) if name.startswith("tools")}
        graph[module_of(path)] = {t for t in targets if t and t != module_of(path)}
    # A package's __init__ re-exporting its modules is not a cycle of logic: a module
    # importing its own package's __init__ is, so only sibling modules are followed.
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycle = [*visiting[visiting.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            if not module.startswith(target + "."):  # a module's own package
                visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_no_module_of_tools_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in tools_sources()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_nothing_edits_sys_path() -> None:
    found = [
        str(path.relative_to(ROOT))
        for folder in ("tools", "tests", "implementations")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != Path(__file__) and "sys.path" in path.read_text(encoding="utf-8")
    ]
    assert found == []


def test_loading_the_catalog_imports_no_torch() -> None:
    code = (
        "import sys, tools.catalog as c; c.load_catalog(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
