"""Structured publication facts: every published entry cites its container, volume and pages."""

from __future__ import annotations

import json
import re

import bibtexparser
import pytest
from citeproc import (
    Citation,
    CitationItem,
    CitationStylesBibliography,
    CitationStylesStyle,
    formatter,
)
from citeproc.source.json import CiteProcJSON
from pydantic import ValidationError

from tools.catalog import Entry, load_catalog
from tools.catalog.citations import bibtex_entry, bibtex_text, csl_item, render, venue_type

CATALOG = load_catalog()
ENTRIES = sorted(CATALOG.entries.values(), key=lambda entry: entry.id)
PUBLISHED = [entry for entry in ENTRIES if venue_type(entry) != "preprint"]
PREPRINTS = [entry for entry in ENTRIES if venue_type(entry) == "preprint"]
BIBTEX = {record["ID"]: record for record in bibtexparser.loads(render(CATALOG, "bibtex")).entries}


def test_every_published_entry_has_a_publication_and_no_preprint_has_one() -> None:
    # Every entry is one or the other, and both kinds are exercised by the shipped catalog.
    assert len(PUBLISHED) + len(PREPRINTS) == len(ENTRIES) and PUBLISHED and PREPRINTS
    assert [entry.id for entry in PUBLISHED if entry.publication is None] == []
    assert [entry.id for entry in PREPRINTS if entry.publication is not None] == []


def test_the_survey_cites_as_printed() -> None:
    publication = CATALOG.entries["efficient-transformers-survey"].publication
    assert publication is not None
    assert publication.container_title == "ACM Computing Surveys"
    assert (publication.volume, publication.issue, publication.article) == ("55", "6", "109")
    assert (publication.pages, publication.year) == ("1-28", 2022)
    assert publication.publisher == "Association for Computing Machinery"
    record = BIBTEX["tay2022efficient"]
    assert record["journal"] == "ACM Computing Surveys"
    assert (record["volume"], record["number"], record["pages"]) == ("55", "6", "1--28")
    assert record["articleno"] == "109"
    assert record["publisher"] == "Association for Computing Machinery"


def test_switch_transformer_is_jmlr_23_120() -> None:
    record = BIBTEX["fedus2022switch"]
    assert record["ENTRYTYPE"] == "article"
    assert record["journal"] == "Journal of Machine Learning Research"
    assert (record["volume"], record["number"], record["year"]) == ("23", "120", "2022")


def test_no_free_text_in_journal_or_booktitle() -> None:
    for entry in PUBLISHED:
        record = BIBTEX[entry.citekey]
        container = record.get("journal", record.get("booktitle"))
        assert container is not None, entry.id
        assert container != entry.venue, entry.id  # "ICLR 2021" is display text, not a title
        assert not re.search(r"\d+\(\d+\)", container), entry.id  # no "55(6)" in the title


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.id)
def test_bibtex_round_trip(entry: Entry) -> None:
    record = bibtexparser.loads(bibtex_entry(entry)).entries[0]
    publication = entry.publication
    if publication is None:
        for name in ("journal", "booktitle", "volume", "number", "pages", "publisher", "series"):
            assert name not in record, (entry.id, name)
        return
    container = "journal" if record["ENTRYTYPE"] == "article" else "booktitle"
    assert record[container] == bibtex_text(publication.container_title)
    assert record["year"] == str(publication.year)
    expected = {
        "volume": publication.volume,
        "number": publication.issue,
        "pages": publication.pages.replace("-", "--") if publication.pages else None,
        "publisher": bibtex_text(publication.publisher) if publication.publisher else None,
        "series": bibtex_text(publication.series) if publication.series else None,
    }
    assert {name: record.get(name) for name in expected} == expected


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.id)
def test_csl_item_carries_the_publication(entry: Entry) -> None:
    item = csl_item(entry)
    publication = entry.publication
    if publication is None:
        assert "container-title" not in item and "volume" not in item
        return
    expected = {
        "container-title": publication.container_title,
        "volume": publication.volume,
        "issue": publication.issue,
        "page": publication.pages,
        "publisher": publication.publisher,
        "collection-title": publication.series,
    }
    assert {name: item.get(name) for name in expected} == expected
    assert item["issued"] == {"date-parts": [[publication.year]]}


def _rendered() -> dict[str, str]:
    items = json.loads(render(CATALOG, "csljson"))
    style = CitationStylesStyle("harvard-cite-them-right", validate=False)
    bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
    for item in items:
        bibliography.register(Citation([CitationItem(item["id"])]))
    lines = [str(line) for line in bibliography.bibliography()]
    assert len(lines) == len(items)
    return {entry.id: next(line for line in lines if entry.title in line) for entry in ENTRIES}


RENDERED = _rendered()


@pytest.mark.parametrize("entry", PUBLISHED, ids=lambda entry: entry.id)
def test_citeproc_renders_container_volume_and_pages(entry: Entry) -> None:
    publication = entry.publication
    assert publication is not None
    line = RENDERED[entry.id].replace("\N{EN DASH}", "-")
    assert publication.container_title in line
    assert str(publication.year) in line
    if publication.volume and venue_type(entry) == "journal":  # the style prints volumes of
        assert re.search(rf"{re.escape(publication.container_title)}, {publication.volume}\b", line)
    if publication.pages:
        assert publication.pages in line


def test_publication_is_strict() -> None:
    base = CATALOG.entries["performer"].model_dump(by_alias=True, exclude_none=True)
    good = {"container_title": "International Conference on Learning Representations"}
    assert Entry.model_validate({**base, "publication": {**good, "year": 2021}}).publication
    for bad in (
        {**good, "year": 2021, "pages": "1–28"},  # an en dash: store "1-28"
        {**good, "year": 2021, "volume": 33},  # a number, not a string
        {**good, "year": 2021, "jornal": "x"},  # a typo
        {**good, "year": 2021, "pages": "28-1"},  # backwards
        {"container_title": "", "year": 2021},
        good,  # no year
    ):
        with pytest.raises(ValidationError):
            Entry.model_validate({**base, "publication": bad})


def test_publication_year_is_not_before_first_public() -> None:
    base = CATALOG.entries["performer"].model_dump(by_alias=True, exclude_none=True)
    with pytest.raises(ValidationError, match=r"publication\.year"):
        Entry.model_validate({**base, "publication": {"container_title": "X", "year": 2019}})
