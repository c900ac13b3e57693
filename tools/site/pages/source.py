"""The implementations as readers get them: a highlighted page per module, and one zip.

Every ``implementations/*.py`` file gets a page ``reference/source/<module>.md`` with its
code in a fenced Python block (highlighted, with a copy button), the modules of the
package it imports (read with :mod:`ast`, never imported) linked to their own pages,
and a link to the whole package as ``downloads/implementations.zip``. The zip is built
at generate time with fixed timestamps, so it only changes when a source does.

Examples:
    >>> local_imports("from implementations._helpers import x\\nimport torch\\n")
    ['_helpers']
    >>> source_page_path("implementations/performer.py")
    'reference/source/performer.md'
"""

from __future__ import annotations

import ast
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tools.catalog import ROOT
from tools.site.escaping import front_matter, render

PACKAGE = "implementations"
ZIP_PATH = "downloads/implementations.zip"
# The install line of every paper page: what the package needs (see pyproject.toml).
INSTALL = 'python -m pip install "torch==2.13.0" "einops>=0.8,<0.9"'
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the archive depends on the code only


def source_page_path(path: str) -> str:
    """The page of the source file ``path`` (``implementations/<module>.py``), in ``docs/``."""
    return f"reference/source/{Path(path).stem}.md"


def local_imports(code: str) -> list[str]:
    """The modules of the package that ``code`` imports, by file stem, sorted."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if node.level == 0 and parts[0] == PACKAGE and len(parts) > 1:
                found.add(parts[1])
            elif node.level == 0 and node.module == PACKAGE:
                found.update(alias.name for alias in node.names)
            elif node.level > 0:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE and len(parts) > 1:
                    found.add(parts[1])
    return sorted(found)


def source_files(root: Path = ROOT) -> dict[str, str]:
    """``{path relative to the repository: code}`` of every module of the package."""
    folder = root / PACKAGE
    return {
        f"{PACKAGE}/{path.name}": path.read_text(encoding="utf-8")
        for path in sorted(folder.glob("*.py"))
    }


@dataclass(frozen=True)
class SourcePage:
    """What ``source.md.j2`` shows of one module."""

    path: str
    module: str
    code: str
    imports: list[tuple[str, str]]  # (module file, its page relative to this one)
    imported_by: list[tuple[str, str]]
    papers: list[tuple[str, str]]  # (entry name, its page relative to this one)


def source_pages(
    sources: Mapping[str, str], papers: Mapping[str, list[tuple[str, str]]]
) -> dict[str, str]:
    """A page per module; ``papers``: ``{module path: [(entry name, entry id)]}``."""
    stems = {Path(path).stem: path for path in sources}
    uses = {path: [s for s in local_imports(code) if s in stems] for path, code in sources.items()}
    files = {}
    for path, code in sources.items():
        users = sorted(p for p, used in uses.items() if Path(path).stem in used)
        page = SourcePage(
            path=path,
            module=f"{PACKAGE}.{Path(path).stem}".removesuffix(".__init__"),
            code=code,
            imports=[(stems[s], f"{s}.md") for s in uses[path]],
            imported_by=[(user, f"{Path(user).stem}.md") for user in users],
            papers=[(name, f"../../papers/{id}.md") for name, id in papers.get(path, [])],
        )
        files[source_page_path(path)] = render(
            "source.md.j2",
            front_matter=front_matter(path, search_exclude=True),
            zip_link="../../" + ZIP_PATH,
            **vars(page),
        )
    files["reference/source/index.md"] = render(
        "sources.md.j2",
        front_matter=front_matter("Source code", search_exclude=True),
        pages=[(path, f"{Path(path).stem}.md") for path in sources],
        zip_link="../../" + ZIP_PATH,
        install=INSTALL,
    )
    return files


def implementations_zip(sources: Mapping[str, str]) -> bytes:
    """The package as one zip (``implementations/*.py``), byte-identical for the same code."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, code in sorted(sources.items()):
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, code.encode("utf-8"))
    return buffer.getvalue()
