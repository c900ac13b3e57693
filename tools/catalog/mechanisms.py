"""What the implementations declare, read from their source without importing torch.

Every mechanism registers itself with a decorator whose arguments are literals::

    @register("performer", kind="attention", supports_causal=True)
    class Performer(nn.Module): ...

Reading those decorators with :mod:`ast` gives the catalog tools (cite, notes, site)
each mechanism's class, kind, causal support and line range in milliseconds and
without torch. ``python -m tools.catalog check`` imports the real registry and fails
when the two disagree, so this reading cannot drift from what runs.

Examples:
    >>> performer = declared_mechanisms()["performer"]
    >>> performer.class_name, performer.kind, performer.supports_causal
    ('Performer', 'attention', True)
    >>> performer.path
    'implementations/performer.py'
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tools.catalog.paths import ROOT

IMPLEMENTATIONS_DIR = ROOT / "implementations"
PACKAGE = "implementations"
# Modules of the package that are infrastructure, not mechanisms.
_NOT_MECHANISMS = {"__init__", "transformer"}


@dataclass(frozen=True)
class DeclaredMechanism:
    """One ``@register(...)`` class as its source declares it.

    Attributes:
        id: The catalog id it registers under.
        module: Its module, e.g. ``implementations.performer``.
        class_name: The registered class.
        kind: ``attention``, ``memory``, ``downsample`` or ``ffn``.
        supports_causal: Whether ``causal=True`` is accepted.
        path: The module's file relative to the repository root, with ``/``.
        first_line: The first line of the class, its decorator included.
        last_line: The last line of the class body.
    """

    id: str
    module: str
    class_name: str
    kind: str
    supports_causal: bool
    path: str
    first_line: int
    last_line: int

    @property
    def fragment(self) -> str:
        """The line-range fragment of a source link, e.g. ``#L212-L287``."""
        return f"#L{self.first_line}-L{self.last_line}"


def module_name(id: str) -> str:
    """The module that implements catalog id ``id`` (the registry's naming rule).

    Examples:
        >>> module_name("big-bird")
        'implementations.big_bird'
    """
    return f"{PACKAGE}.{id.replace('-', '_')}"


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _declaration(node: ast.ClassDef, module: str, path: str) -> DeclaredMechanism | None:
    for decorator in node.decorator_list:
        if not (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Name)
            and decorator.func.id == "register"
            and decorator.args
        ):
            continue
        id = _literal(decorator.args[0])
        keywords = {k.arg: _literal(k.value) for k in decorator.keywords if k.arg}
        kind = keywords.get("kind")
        causal = keywords.get("supports_causal", True)
        if isinstance(id, str) and isinstance(kind, str) and isinstance(causal, bool):
            first = min(d.lineno for d in node.decorator_list)
            return DeclaredMechanism(
                id, module, node.name, kind, causal, path, first, node.end_lineno or node.lineno
            )
    return None


def read_declarations(source: str, module: str, path: str) -> list[DeclaredMechanism]:
    """The mechanisms a module's ``source`` registers.

    Examples:
        >>> text = '@register("x", kind="ffn", supports_causal=False)\\nclass X:\\n    pass\\n'
        >>> read_declarations(text, "implementations.x", "implementations/x.py")[0].last_line
        3
    """
    tree = ast.parse(source)
    classes = (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef))
    found = (_declaration(node, module, path) for node in classes)
    return [declared for declared in found if declared is not None]


@cache  # the sources do not change while a tool runs
def declared_mechanisms(directory: Path = IMPLEMENTATIONS_DIR) -> dict[str, DeclaredMechanism]:
    """Every mechanism the implementation modules register, by catalog id."""
    found: dict[str, DeclaredMechanism] = {}
    for file in sorted(directory.glob("*.py")):
        if file.stem.startswith("_") or file.stem in _NOT_MECHANISMS:
            continue
        relative = f"{PACKAGE}/{file.name}"
        module = f"{PACKAGE}.{file.stem}"
        for declared in read_declarations(file.read_text(encoding="utf-8"), module, relative):
            found[declared.id] = declared
    return found
