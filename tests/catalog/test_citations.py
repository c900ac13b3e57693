"""Exports of the whole catalog round-trip through independent parsers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bibtexparser
from citeproc import (
    Citation,
    CitationItem,
    CitationStylesBibliography,
    CitationStylesStyle,
    formatter,
)
from citeproc.source.json import CiteProcJSON

from tools.catalog import ROOT, load_catalog
from tools.catalog.citations import render, split_name

CATALOG = load_catalog()


def test_bibtex_round_trips_through_bibtexparser() -> None:
    database = bibtexparser.loads(render(CATALOG, "bibtex"))
    by_key = {record["ID"]: record for record in database.entries}
    assert len(by_key) == len(CATALOG.entries)
    for entry in CATALOG.entries.values():
        record = by_key[entry.citekey]
        assert record["title"].strip("{}") == entry.title.replace("&", "\\&")
        names = [name.strip() for name in record["author"].split(" and ")]
        assert len(names) == len(entry.authors), entry.id
        for name, author in zip(names, entry.authors, strict=True):
            family, _, given = name.partition(", ")
            assert f"{given} {family}".strip() == author, entry.id
        assert int(record["year"]) == entry.venue_year
        assert record.get("doi") == entry.doi
        assert record.get("eprint") == entry.arxiv


def test_survey_is_a_journal_article() -> None:
    database = bibtexparser.loads(render(CATALOG, "bibtex"))
    survey = next(e for e in CATALOG.entries.values() if e.kind == "survey")
    record = next(r for r in database.entries if r["ID"] == survey.citekey)
    assert record["ENTRYTYPE"] == "article"
    assert record["doi"] == "10.1145/3530811"


def test_csljson_renders_with_citeproc() -> None:
    items = json.loads(render(CATALOG, "csljson"))
    assert len(items) == len(CATALOG.entries)
    source = CiteProcJSON(items)
    style = CitationStylesStyle("harvard-cite-them-right", validate=False)
    bibliography = CitationStylesBibliography(style, source, formatter.plain)
    for item in items:
        bibliography.register(Citation([CitationItem(item["id"])]))
    rendered = [str(line) for line in bibliography.bibliography()]
    assert len(rendered) == len(items)
    performer = CATALOG.entries["performer"]
    line = next(text for text in rendered if performer.title in text)
    assert "Choromanski" in line and str(performer.venue_year) in line


def test_json_round_trips_to_the_same_entries() -> None:
    data = json.loads(render(CATALOG, "json"))
    assert {item["id"] for item in data} == set(CATALOG.entries)
    for item in data:
        entry = CATALOG.entries[item["id"]]
        assert type(entry).model_validate(item) == entry


def test_export_command_writes_file(tmp_path: Path) -> None:
    output = tmp_path / "atlas.bib"
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.catalog",
            "export",
            "--format",
            "bibtex",
            "-o",
            str(output),
            "--dry-run",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry.returncode == 0 and not output.exists()
    result = subprocess.run(
        [sys.executable, "-m", "tools.catalog", "export", "--format", "bibtex", "-o", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert output.read_text() == render(CATALOG, "bibtex")


def test_split_name_keeps_particles() -> None:
    assert split_name("Aaron van den Oord") == ("Aaron", "van den Oord")
    assert split_name("Łukasz Kaiser") == ("Łukasz", "Kaiser")
