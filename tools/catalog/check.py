"""``python -m tools.catalog check``: every problem of a catalog folder, at once.

Loading reports what the files themselves get wrong (:mod:`tools.catalog.loader`). The
check adds what needs the code: each ``implementation`` field must name the module
named after the entry's id, and that module must register the id. By default this is
read from the sources (:mod:`tools.catalog.mechanisms`), which takes milliseconds;
``--import`` also imports every implementation and compares what the sources declare
with the live registry. That is the one place in the catalog package that imports the
implementations, and so torch.

Examples:
    >>> from tools.catalog import load_catalog
    >>> result = check(load_catalog())
    >>> result.ok, result.summary.startswith("catalog OK")
    (True, True)
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType

from tools.catalog.evaluations import check_evaluations
from tools.catalog.loader import Catalog
from tools.catalog.mechanisms import declared_mechanisms, module_name
from tools.catalog.model import SCHEMA_RELATIVE
from tools.catalog.paths import CATALOG_DIR
from tools.catalog.schema import schema_text
from tools.catalog.yamlio import Problem, line_of, read_yaml


def _implementations() -> ModuleType:
    return importlib.import_module("implementations")


def implementation_problem(id: str, module: str) -> str | None:
    """Why ``module`` is not the registered implementation of ``id``, or None when it is."""
    try:
        implementations = _implementations()
    except Exception as error:  # a broken package must be reported, whatever it raised
        return f"cannot import the implementations package: {error}"
    expected = module_name(id)
    if module != expected:
        return f"expected {expected!r} (the module named after the id), got {module!r}"
    try:
        importlib.import_module(module)
    except Exception as error:
        return f"cannot import {module}: {type(error).__name__}: {error}"
    if id not in implementations.available():
        return f"{module} imports but does not register {id!r}"
    return None


def declaration_problem(id: str) -> str | None:
    """Why the static reading of ``id``'s registration disagrees with the registry, or None."""
    declared = declared_mechanisms().get(id)
    record = _implementations().mechanism(id)
    if declared is None:
        return f"the registry has {id!r} but no @register(...) with literal arguments declares it"
    lines, first = inspect.getsourcelines(record.cls)
    live = (record.cls.__name__, record.kind, record.supports_causal, first, first + len(lines) - 1)
    static = (
        declared.class_name,
        declared.kind,
        declared.supports_causal,
        declared.first_line,
        declared.last_line,
    )
    if live != static:
        return f"the source declares {static} but the registry holds {live}"
    return None


def declared_problem(id: str, module: str) -> str | None:
    """Why the sources do not declare ``module`` as the implementation of ``id``, or None."""
    expected = module_name(id)
    if module != expected:
        return f"expected {expected!r} (the module named after the id), got {module!r}"
    declared = declared_mechanisms().get(id)
    if declared is None or declared.module != module:
        return f"{module} does not register {id!r} (no @register({id!r}, kind=...) found)"
    return None


def check_problems(catalog: Catalog, *, imported: bool = False) -> list[Problem]:
    """The problems of the ``implementation`` fields; ``imported`` also imports the code."""
    problems: list[Problem] = []
    for id, entry in sorted(catalog.entries.items()):
        if entry.implementation is None:
            continue
        path = catalog.paths[id]
        message = declared_problem(id, entry.implementation)
        if message is None and imported:
            message = implementation_problem(id, entry.implementation) or declaration_problem(id)
        if message:
            line = line_of(read_yaml(path, []), ["implementation"])
            problems.append(Problem(path, line, "implementation", message))
    return problems


def schema_problem(catalog: Catalog) -> Problem | None:
    """A stale or missing JSON Schema file of the shipped catalog, or None."""
    path = catalog.root / SCHEMA_RELATIVE
    if catalog.root != CATALOG_DIR:
        return None
    if path.exists() and path.read_text(encoding="utf-8") == schema_text():
        return None
    return Problem(path, 1, "(schema)", "out of date; run python -m tools.catalog schema")


@dataclass(frozen=True)
class CheckResult:
    """What a check found: the problems (files first, then code), and a one-line summary."""

    problems: list[Problem]
    summary: str

    @property
    def ok(self) -> bool:
        return not self.problems


def check(catalog: Catalog, *, imported: bool = False) -> CheckResult:
    """Every problem of ``catalog``: its files, evaluations, implementations and schema file.

    Args:
        catalog: A loaded catalog.
        imported: Also import every implementation and compare it with its declaration.
    """
    problems = sorted(
        [
            *catalog.problems,
            *check_problems(catalog, imported=imported),
            *check_evaluations(catalog.root),  # catalog/evaluations/*.json
        ],
        key=lambda p: (str(p.path), p.line, p.field),
    )
    stale = schema_problem(catalog)
    if stale is not None:
        problems.append(stale)
    if problems:
        summary = f"{len(problems)} problem(s) in {len(catalog.entries)} valid entries"
    else:
        drafts = sum(entry.draft for entry in catalog.entries.values())
        suffix = f" ({drafts} draft)" if drafts else ""
        summary = (
            f"catalog OK: {len(catalog.entries)} entries{suffix}, {len(catalog.taxonomy)} classes"
        )
    return CheckResult(problems, summary)
