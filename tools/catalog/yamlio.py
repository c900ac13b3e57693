"""Reading YAML with line numbers, and turning validation errors into located problems.

Every problem a tool reports about a catalog file is a :class:`Problem`, printed as
``path:line: field: message``. The YAML is read round-trip (ruamel keeps each key's
line), so a pydantic error on ``authors.2`` can be reported at the line of that author.

Examples:
    >>> from pathlib import Path
    >>> problems: list[Problem] = []
    >>> data = read_yaml_text("id: x\\nyear: '2020'\\n", Path("x.yaml"), problems)
    >>> line_of(data, ["year"])
    2
    >>> str(Problem(Path("x.yaml"), 2, "year", "expected an integer"))
    'x.yaml:2: year: expected an integer'
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from tools.catalog.model import FORMATS
from tools.catalog.paths import display

M = TypeVar("M", bound=BaseModel)
MAX_NESTING = 64
MAX_CHARACTERS = 1_000_000
_BRACKETS = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalog file, reported as ``path:line: field: message``."""

    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{display(self.path)}:{self.line}: {self.field}: {self.message}"


def yaml_reader() -> YAML:
    """A round-trip reader that refuses duplicate keys."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def yaml_writer() -> YAML:
    """A round-trip writer in the catalog's style."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def read_yaml(path: Path, problems: list[Problem]) -> Any:
    """Round-trip load of a file (keeps line numbers); errors become problems, not tracebacks."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(path, 1, "(file)", f"cannot read: {error}"))
        return None
    return read_yaml_text(text, path, problems)


def shape_problem(text: str) -> tuple[int, str] | None:
    """(line, message) when ``text`` is not something a catalog file can be, else None.

    Checked on the text before YAML reads it: ruamel's scanner is quadratic in flow
    nesting and its composer recursive, so a few kilobytes of ``[[[[...`` would hang or
    crash every tool. Entries are flat records; nothing legitimate comes near the limits.

    Examples:
        >>> shape_problem("title: A [short] one\\n") is None
        True
        >>> shape_problem("x: " + "[" * 100)
        (1, 'nested deeper than 64 levels')
    """
    if len(text) > MAX_CHARACTERS:
        return 1, f"larger than {MAX_CHARACTERS} characters; an entry is a short record"
    if "\x00" in text:
        return text.count("\n", 0, text.index("\x00")) + 1, "contains a NUL byte"
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" "))
        for bracket in _BRACKETS.findall(line):
            depth = depth + 1 if bracket in "[{" else max(0, depth - 1)
            if depth > MAX_NESTING:
                return number, f"nested deeper than {MAX_NESTING} levels"
        if indent > 2 * MAX_NESTING:
            return number, f"nested deeper than {MAX_NESTING} levels"
    return None


def _alias_problem(text: str) -> tuple[int, str] | None:
    """(line, message) of the first anchor or alias: entries spell every value out.

    Aliases let 500 bytes expand to gigabytes (a "billion laughs" file) and a
    self-referencing anchor never ends; no entry needs either.
    """
    for event in yaml_reader().parse(text):
        anchor = getattr(event, "anchor", None)
        if isinstance(event, AliasEvent) or anchor:
            name = anchor or getattr(event, "anchor", "")
            return event.start_mark.line + 1, (
                f"YAML anchors and aliases (&{name}, *{name}) are not allowed in catalog files"
            )
    return None


def read_yaml_text(text: str, path: Path, problems: list[Problem]) -> Any:
    """Round-trip load of ``text`` read from ``path``; every failure becomes a problem.

    An empty document is a problem too: a catalog file holds a mapping of fields.
    """
    try:
        found = shape_problem(text) or _alias_problem(text)
        if found is not None:
            problems.append(Problem(path, found[0], "(yaml)", found[1]))
            return None
        data = yaml_reader().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(part) for part in (error.context, error.problem) if part)
        if "duplicate key" in what:
            key = re.search(r'duplicate key "?([^"\s]+)"?', what)
            name = key.group(1) if key else "(key)"
            problems.append(Problem(path, line, name, f"duplicate key {name!r}"))
        else:
            problems.append(Problem(path, line, "(yaml)", f"YAML syntax error: {what}"))
        return None
    except (YAMLError, RecursionError) as error:  # unmarked reader errors, deep structures
        problems.append(Problem(path, 1, "(yaml)", f"unreadable YAML: {error}"))
        return None
    if data is None:
        problems.append(Problem(path, 1, "(file)", "the file is empty; expected a YAML mapping"))
    return data


def dump(data: Any) -> str:
    """``data`` as YAML in the catalog's style (2-space mappings, long lines kept whole)."""
    stream = io.StringIO()
    yaml_writer().dump(data, stream)
    return stream.getvalue()


def line_of(node: Any, loc: Iterable[Any]) -> int:
    """The 1-based line of the deepest part of ``loc`` that exists in the YAML tree."""
    # A missing field is reported where its mapping starts.
    line = node.lc.line + 1 if isinstance(node, CommentedMap) and node.lc.line is not None else 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    loc = [part for part in error["loc"] if isinstance(part, str)]
    name = loc[-1] if loc else ""
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not part of the schema)"
    if kind == "string_pattern_mismatch":
        expected = FORMATS.get(name, ("", "the documented format"))[1]
        return f"malformed value {error['input']!r}: expected {expected}"
    if kind == "string_type" and name in FORMATS:
        return f"expected {FORMATS[name][1]}, as a quoted string (got {error['input']!r})"
    if kind.endswith("_type") or kind in ("literal_error", "bool_parsing", "int_parsing"):
        got = type(error["input"]).__name__
        return f"{error['msg'].replace('Input should be', 'expected')} (got {got})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def plain(node: Any) -> Any:
    """ruamel's round-trip types to plain Python, so strict validation sees ordinary types."""
    if isinstance(node, Mapping):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(value) for value in node]
    for plain_type in (bool, int, float, str):
        if isinstance(node, plain_type):
            return plain_type(node)
    return node


def validate(model: type[M], data: Any, path: Path, problems: list[Problem]) -> M | None:
    """``data`` as a ``model``, or None with every validation error added to ``problems``."""
    if not isinstance(data, Mapping):
        problems.append(Problem(path, 1, "(file)", "expected a YAML mapping of fields"))
        return None
    try:
        return model.model_validate(plain(data))
    except ValidationError as error:
        for detail in error.errors():
            loc = [part for part in detail["loc"] if part != "[key]"]
            field_name = ".".join(str(part) for part in loc) or "(entry)"
            problems.append(Problem(path, line_of(data, loc), field_name, _message(detail)))
        return None
