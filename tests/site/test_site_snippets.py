"""No catalog or measurement text reaches a Markdown extension as syntax (issue 15, point 11).

pymdownx.snippets reads every line of a page before any other extension, inside code
blocks too: a line ``--8<-- "index.md"`` pulls a file into the page, and one naming a file
outside ``docs/`` aborts the build. The other enabled extensions (admonition, details,
attr_list, md_in_html, def_list, abbr, footnotes, arithmatex, tabbed) and plain Markdown
(lists, indented code) have line syntax too. A site built from a catalog whose multi-line
fields and measurement command hold such lines shows them as the text they are.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import markdown
import pytest

from tests.site.site_html import visible_text
from tests.site.site_support import fixture_measurement, make_project
from tools.catalog import ROOT
from tools.catalog.model import SCHEMA_COMMENT
from tools.site.escaping import code_span, fence, html_text, md_text

# Each line is syntax of an extension that mkdocs.yml enables (or of Markdown itself).
HOSTILE_LINES = [
    '--8<-- "index.md"',
    ';--8<-- "index.md"',
    '--8<-- "/etc/passwd"',
    "--8<--",
    "index.md",
    "--8<--",
    "a --8<-- [start:x] b",
    '!!! danger "admonition"',
    '??? note "details"',
    '???+ note "open details"',
    "/// details | blocks",
    "{: #pwned .x }",
    "<div markdown>**bold**</div>",
    '=== "Tab"',
    ": definition",
    "*[HTML]: abbreviation",
    "[^1]: footnote",
    "$$ x^2 $$",
    "1. ordered",
    "2019) year",
    "    indented code",
    "> quote",
    "[TOC]",
]
# A sentence of docs/index.md: the page must not include it.
INDEX_TEXT = "Dozens of papers"
ENTRY_ID = "snippet-lines"
INDEX_COMMAND = '--8<-- "index.md"'
PASSWD_COMMAND = '--8<-- "/etc/passwd"'


def _block(lines: list[str], indent: str) -> str:
    return "\n".join(indent + line for line in lines)


ENTRY = f"""{SCHEMA_COMMENT}
id: {ENTRY_ID}
name: Snippet Lines
kind: model
title: A title
authors:
  - Mallory
year: 2021
venue: arXiv
url: https://example.org/paper
citekey: mallory2021snippet
taxonomy:
  - FP
complexity:
  time: O(n)
  memory: O(n)
decode: false
summary: |-
{_block(HOSTILE_LINES, "  ")}
notes: |-
  ;--8<-- "/etc/passwd"

{_block(HOSTILE_LINES, "  ")}
"""


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site built from the shipped catalog plus the hostile entry, class and command."""
    base = tmp_path_factory.mktemp("snippet-site")
    project, catalog = base / "project", base / "catalog"
    make_project(project)
    shutil.copytree(ROOT / "catalog", catalog, ignore=shutil.ignore_patterns("measurements"))
    (catalog / "papers" / f"{ENTRY_ID}.yaml").write_text(ENTRY, encoding="utf-8")
    taxonomy = catalog / "taxonomy.yaml"
    text = taxonomy.read_text(encoding="utf-8")
    old = "    description: >-\n      Sparsify the attention matrix"
    assert old in text
    lines = _block(HOSTILE_LINES, "      ")
    new = f"    description: |-\n{lines}\n      Sparsify the attention matrix"
    taxonomy.write_text(text.replace(old, new, 1), encoding="utf-8")
    (catalog / "measurements").mkdir()
    # A file outside docs/ would abort the build if the line were read as a snippet.
    for name, command in [("cpu-float32", INDEX_COMMAND), ("cpu-float64", PASSWD_COMMAND)]:
        measurement = fixture_measurement([], catalog)
        measurement["command"] = command
        measurement["setup"]["dtype"] = name.split("-")[1]
        (catalog / "measurements" / f"{name}.json").write_text(
            json.dumps(measurement, indent=2), encoding="utf-8"
        )
    result = subprocess.run(
        [sys.executable, "-m", "tools.site", "build", "--catalog", catalog, "--project", project],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return project / "site"


def test_entry_text_shows_every_line_as_written(hostile_site: Path) -> None:
    page = hostile_site / "papers" / ENTRY_ID / "index.html"
    text = visible_text(page)
    assert INDEX_TEXT not in text
    for line in HOSTILE_LINES:
        assert line.strip() in text, line
    assert ';--8<-- "/etc/passwd"' in text
    article = page.read_text(encoding="utf-8").split("<article", 1)[1].split("</article>")[0]
    for element in ('id="pwned"', "<ol", "<dl", "<blockquote", "admonition danger", "<abbr"):
        assert element not in article, element


def test_class_description_shows_every_line_as_written(hostile_site: Path) -> None:
    for page in (hostile_site / "taxonomy" / "FP" / "index.html",):
        text = visible_text(page)
        assert INDEX_TEXT not in text
        for line in HOSTILE_LINES:
            assert line.strip() in text, (page, line)


def test_measurement_command_is_shown_not_included(hostile_site: Path) -> None:
    text = visible_text(hostile_site / "benchmarks" / "index.html")
    assert INDEX_TEXT not in text
    assert INDEX_COMMAND in text
    assert PASSWD_COMMAND in text
    assert "root:" not in text


@pytest.mark.parametrize("line", HOSTILE_LINES)
def test_every_gate_neutralises_line_syntax(line: str) -> None:
    """Markdown text, HTML text and code spans start no line with syntax; fences go
    through the real snippets extension unchanged."""
    text = f"x\n{line}\ny"
    for escaped in (md_text(text), html_text(text)):
        for out in escaped.splitlines():
            assert "8<" not in out
            assert out[:1].isalnum() or out.startswith("&"), out
    span = code_span(text)
    assert "\n" not in span
    source = fence(text, "text") + "\n\n" + span + "\n"
    rendered = markdown.markdown(
        source,
        extensions=["pymdownx.snippets", "pymdownx.superfences"],
        extension_configs={"pymdownx.snippets": {"base_path": ["docs"], "check_paths": True}},
    )
    assert INDEX_TEXT not in rendered
    assert f"<code>{html.escape(text)}\n</code>" in rendered, rendered
