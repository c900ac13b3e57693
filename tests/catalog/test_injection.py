"""Values that would break out of a format are refused on the way in and encoded on the
way out: a URL or DOI holding ``}`` cannot write a second BibTeX record."""

from __future__ import annotations

from pathlib import Path

import bibtexparser
import pytest

from tools.catalog import load_catalog
from tools.catalog.citations import bibtex_entry, bibtex_url
from tools.catalog.console import printable

INJECTION = "https://x.org/}}@misc{pwned,title={owned}}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", INJECTION),
        ("url", "https://x.org/a b"),
        ("url", 'https://x.org/"onclick="x'),
        ("doi", "10.1145/}}@misc{pwned,"),
        ("doi", "10.1145/a b"),
    ],
)
def test_a_value_that_breaks_formats_is_refused(catalog_copy: Path, field: str, value: str) -> None:
    path = catalog_copy / "papers" / "linformer.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # Linformer has a url and no doi: replace the one, add the other.
    lines = [line for line in lines if not line.startswith(f"{field}:")]
    lines.insert(1, f"{field}: '{value}'\n")
    path.write_text("".join(lines), encoding="utf-8")
    messages = [str(problem) for problem in load_catalog(catalog_copy).problems]
    assert any(
        "linformer.yaml:2: " in message and f" {field}: malformed value" in message
        for message in messages
    ), messages


def test_a_record_built_from_an_unchecked_url_stays_one_record() -> None:
    entry = load_catalog().entries["linformer"].model_copy(update={"url": INJECTION})
    records = bibtexparser.loads(bibtex_entry(entry)).entries
    assert [record["ID"] for record in records] == [entry.citekey]
    assert records[0]["url"] == bibtex_url(INJECTION)
    assert "{" not in records[0]["url"] and "}" not in records[0]["url"]


def test_terminal_escapes_are_shown_not_obeyed() -> None:
    title = "Performer\x1b]0;owned\x07\x1b[2J"
    shown = printable(title)
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown == "Performer\\x1b]0;owned\\x07\\x1b[2J"
