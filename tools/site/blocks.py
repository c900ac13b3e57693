"""Find the Python code blocks of Markdown pages, wherever they sit, so tests can run them.

A block counts when its fence names Python (```` ```python ````, ```` ```py ````,
```` ```{.python title="x"} ````), whatever options follow the language (``title="x"``,
``linenums="1"``, ``hl_lines="2"``) and however deeply it is indented: inside an
admonition (``!!!``), a collapsible block (``???``) or a content tab (``===``). Fences of
backticks or tildes, three or more, close on a fence of the same character at least as
long. Pages are read as text; nothing is rendered.

Examples:
    >>> page = '''
    ... !!! note
    ...
    ...     ```python title="a.py"
    ...     x = 1
    ...     ```
    ...
    ... === "Tab"
    ...
    ...     ~~~~{.py linenums="1"}
    ...     y = 2
    ...     ~~~~
    ...
    ... ```bash
    ... echo no
    ... ```
    ... '''
    >>> [(b.line, b.code, b.title) for b in python_blocks(page)]
    [(4, 'x = 1\\n', 'a.py'), (10, 'y = 2\\n', None)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_PYTHON = {"python", "py", "python3", "py3"}


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block: its language, code (dedented), and where it starts."""

    language: str
    code: str
    line: int
    title: str | None = None


def _language(info: str) -> tuple[str, str | None]:
    """The language and title of a fence's info string (plain or attribute-list form).

    Examples:
        >>> _language('python title="run me.py" linenums="1"')
        ('python', 'run me.py')
        >>> _language('{ .py title="x" }')
        ('py', 'x')
    """
    title = re.search(r'title="([^"]*)"', info)
    text = info.strip()
    if text.startswith("{"):
        match = re.search(r"\.([\w+-]+)", text)
        language = match.group(1) if match else ""
    else:
        language = text.split()[0] if text.split() else ""
    return language.lower(), title.group(1) if title else None


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of a Markdown page, in order."""
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _OPEN.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        language, title = _language(opening.group("info"))
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            line = lines[end]
            # The block's own indentation is part of the Markdown, not of the code.
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            end += 1
        blocks.append(CodeBlock(language, "\n".join(body) + "\n", index + 1, title))
        index = end + 1
    return blocks


def python_blocks(text: str) -> list[CodeBlock]:
    """The Python blocks of a Markdown page."""
    return [block for block in code_blocks(text) if block.language in _PYTHON]


_SNIPPET = re.compile(r'^[ \t]*-{1,}8<-{1,}[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def expand_snippets(text: str, docs: Path) -> str:
    """Inline the files that ``--8<-- "file"`` lines include (pymdownx.snippets, whose
    base path is ``docs/``), so blocks in included files count for the including page."""
    return _SNIPPET.sub(lambda m: (docs / m.group(1)).read_text(encoding="utf-8"), text)


def collect(docs: Path) -> dict[str, list[CodeBlock]]:
    """``{page relative to docs: its Python blocks}`` for every Markdown page."""
    return {
        path.relative_to(docs).as_posix(): python_blocks(
            expand_snippets(path.read_text(encoding="utf-8"), docs)
        )
        for path in sorted(docs.rglob("*.md"))
    }
