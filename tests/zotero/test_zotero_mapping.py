"""The mapping and matching rules on real API responses (pyzotero's fixtures) and edge cases."""

from __future__ import annotations

import json

import pytest

from tests.zotero.zotero_test_data import FIXTURES
from tools.zotero.mapping import citation_fields, map_record
from tools.zotero.matching import match_items
from tools.zotero.record import ZoteroRecord, record_from_api_item

ITEMS = {item["key"]: item for item in json.loads((FIXTURES / "items_doc.json").read_text())}


def fields_of(key: str) -> dict:
    return citation_fields(record_from_api_item(ITEMS[key]))


def test_fixture_items_map_to_catalog_fields() -> None:
    science = fields_of("33TK9NH9")
    assert science["year"] == 2011 and science["venue"] == "Science"
    assert science["doi"] == "10.1126/science.1195912"
    assert science["authors"][0] == "Márcio D. Lima"
    assert science["zotero"] == {"library": "users/475425", "key": "33TK9NH9"}
    # Old-style parsedDate with zero parts, and a misparsed "08/1993".
    assert fields_of("GIFZST3I")["year"] == 1993
    # Contributors are not authors; a film has none.
    assert "authors" not in fields_of("PG5ZCTJT")
    # A web page without creators or date has neither.
    webpage = fields_of("NM66T6EF")
    assert "authors" not in webpage and "year" not in webpage
    # Free-text "extra" without a citation key gives none.
    assert "citekey" not in fields_of("3EWF3P9V")


def test_child_items_and_trash_are_recognised() -> None:
    attachment = json.loads((FIXTURES / "attachments_doc.json").read_text())
    assert not record_from_api_item(attachment).bibliographic
    assert ZoteroRecord({"itemType": "book", "deleted": 1}).trashed
    assert not ZoteroRecord({"itemType": "annotation"}).bibliographic


@pytest.mark.parametrize(
    ("data", "arxiv"),
    [
        ({"archiveID": "arXiv:1810.04805"}, "1810.04805"),
        ({"extra": "arXiv: 1810.04805v3 [cs.CL]"}, "1810.04805"),
        ({"DOI": "https://doi.org/10.48550/arXiv.1810.04805"}, "1810.04805"),
        ({"url": "http://arxiv.org/abs/1810.04805v1"}, "1810.04805"),
        ({"url": "https://arxiv.org/pdf/math.GT/0309136v1"}, "math.GT/0309136"),
        ({"extra": "Citation Key: devlin2019bert"}, None),
    ],
)
def test_arxiv_ids_from_every_place_zotero_keeps_them(data: dict, arxiv: str | None) -> None:
    assert citation_fields(ZoteroRecord(data)).get("arxiv") == arxiv


def test_title_match_is_refused_when_ids_disagree() -> None:
    entries = {"bert": {"title": "BERT", "arxiv": "1810.04805"}}
    other = map_record(ZoteroRecord({"title": "BERT", "archiveID": "arXiv:1810.04806"}))
    result = match_items([other], entries)
    assert result.matched == [] and "different arXiv ids" in result.conflicts[0].reason


def test_entry_linked_to_another_item_is_not_relinked() -> None:
    """The entry's link (an earlier sync's, or written by hand) wins: the other item is
    set aside, not a conflict."""
    entries = {"bert": {"title": "BERT", "zotero": {"library": "groups/1", "key": "AAAA2222"}}}
    duplicate = map_record(ZoteroRecord({"title": "BERT"}, library="groups/1", key="BBBB3333"))
    result = match_items([duplicate], entries)
    assert (result.matched, result.conflicts) == ([], [])
    assert [(s.item.label, s.entry_id, s.linked) for s in result.shadowed] == [
        ("groups/1/BBBB3333", "bert", "groups/1/AAAA2222")
    ]
    # ... unless that link was to an item since deleted.
    entries["bert"]["zotero"]["deleted"] = True
    assert [m.entry_id for m in match_items([duplicate], entries).matched] == ["bert"]


def test_linked_item_wins_over_a_duplicate() -> None:
    entries = {"bert": {"title": "BERT", "zotero": {"library": "groups/1", "key": "AAAA2222"}}}
    linked = map_record(ZoteroRecord({"title": "BERT v2"}, library="groups/1", key="AAAA2222"))
    duplicate = map_record(ZoteroRecord({"title": "BERT"}, library="groups/1", key="BBBB3333"))
    result = match_items([duplicate, linked], entries)
    assert [(m.entry_id, m.how) for m in result.matched] == [("bert", "key")]
    assert result.conflicts == []
    assert [s.item.record.key for s in result.shadowed] == ["BBBB3333"]


def test_two_entries_with_one_doi_are_reported() -> None:
    entries = {"a": {"title": "A", "doi": "10.1000/X"}, "b": {"title": "B", "doi": "10.1000/x"}}
    item = map_record(ZoteroRecord({"title": "C", "DOI": "10.1000/X"}))
    assert "fits 2 entries: a, b" in match_items([item], entries).conflicts[0].reason


@pytest.mark.parametrize("spelling", ["Łukasz's Reformer", "Lukasz's Reformer"])
def test_title_match_folds_names_like_the_rest_of_the_tools(spelling: str) -> None:
    """The letter Ł folds to L (the catalog's one folding), not to nothing as under NFKD."""
    entries = {"reformer": {"title": "Lukasz's reformer"}}
    item = map_record(ZoteroRecord({"title": spelling}, library="groups/1", key="AAAA2222"))
    result = match_items([item], entries)
    assert [(match.entry_id, match.how) for match in result.matched] == [("reformer", "title")]
