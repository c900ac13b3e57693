"""``--from-file``: Zotero exports (CSL-JSON, BibTeX, Better BibTeX JSON) instead of the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.zotero.zotero_test_data import ENTRIES, GROUP, LINFORMER, SCHEMA_LINE, SURVEY, snapshot
from tools.catalog import load_catalog

LINFORMER_AUTHORS = [
    {"family": "Wang", "given": "Sinong"},
    {"family": "Li", "given": "Belinda Z."},
    {"family": "Khabsa", "given": "Madian"},
    {"family": "Fang", "given": "Han"},
    {"family": "Ma", "given": "Hao"},
]

# What Zotero's "CSL JSON" export writes (item URIs as ids, preprints as "article").
CSL_JSON = [
    {
        "id": f"http://zotero.org/{GROUP}/items/{LINFORMER}",
        "type": "article",
        "title": "Linformer: Self-Attention with Linear Complexity",
        "publisher": "arXiv",
        "number": "arXiv:2006.04768",
        "DOI": "10.48550/arXiv.2006.04768",
        "URL": "http://arxiv.org/abs/2006.04768",
        "note": "arXiv:2006.04768 [cs, stat]",
        "author": LINFORMER_AUTHORS,
        "issued": {"date-parts": [["2020", 6, 14]]},
    },
    {
        "id": "http://zotero.org/users/local/Ab3dEf9h/items/ZZZZ2222",
        "type": "article-journal",
        "title": "Efficient Transformers: A Survey",
        "container-title": "ACM Computing Surveys",
        "DOI": "10.1145/3530811",
        "citation-key": "tay2022efficient",
        "author": [{"family": "Tay", "given": "Yi"}, {"literal": "Google Research"}],
        "issued": {"date-parts": [[2022, 12, 7]]},
    },
]

# Zotero's stock BibTeX export: its key is generated per export and must not become a citekey.
ZOTERO_BIBTEX = r"""
@misc{wang_linformer_2020,
	title = {Linformer: {Self}-{Attention} with {Linear} {Complexity}},
	url = {http://arxiv.org/abs/2006.04768},
	doi = {10.48550/arXiv.2006.04768},
	publisher = {arXiv},
	author = {Wang, Sinong and Li, Belinda Z. and Khabsa, Madian and Fang, Han and Ma, Hao},
	month = jun,
	year = {2020},
	note = {arXiv:2006.04768 [cs, stat]},
	number = {arXiv:2006.04768},
}
"""

# Better BibTeX (BibLaTeX flavour): its keys are stable and become citekeys.
BBT_BIBLATEX = r"""
@online{beltagyLongformerLongDocumentTransformer2020,
  title = {Longformer: {{The Long-Document Transformer}}},
  author = {Beltagy, Iz and Peters, Matthew E. and Cohan, Arman},
  date = {2020-04-10},
  eprint = {2004.05150},
  eprinttype = {arxiv},
  url = {http://arxiv.org/abs/2004.05150},
  pubstate = {prepublished}
}
"""

BBT_JSON = {
    "config": {"label": "BetterBibTeX JSON", "preferences": {}, "options": {"exportNotes": True}},
    "collections": {},
    "items": [
        {
            "itemID": 12,
            "itemType": "journalArticle",
            "title": "Efficient Transformers: A Survey",
            "creators": [
                {"creatorType": "author", "firstName": "Yi", "lastName": "Tay"},
                {"creatorType": "author", "firstName": "Mostafa", "lastName": "Dehghani"},
                {"creatorType": "author", "firstName": "Dara", "lastName": "Bahri"},
                {"creatorType": "author", "firstName": "Donald", "lastName": "Metzler"},
            ],
            "publicationTitle": "ACM Computing Surveys",
            "date": "2022-12-07",
            "DOI": "10.1145/3530811",
            "url": "https://dl.acm.org/doi/10.1145/3530811",
            "citationKey": "tay2022efficient",
            "itemKey": SURVEY,
            "libraryID": 3,
            "uri": f"http://zotero.org/{GROUP}/items/{SURVEY}",
            "notes": [{"note": "<p>Read first.</p>"}],
            "attachments": [{"path": "/home/me/Zotero/storage/ABCD/tay.pdf"}],
            "tags": [],
        },
        {"itemType": "note", "note": "<p>A standalone note.</p>", "itemKey": "NOTE2345"},
    ],
}


def write(tmp_path: Path, name: str, content: str | object) -> Path:
    path = tmp_path / name
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def from_file(sync, path: Path, *options: str):
    return sync("--from-file", str(path), *options, library=False)


def test_csl_json_export(sync, tmp_path: Path, catalog_dir: Path) -> None:
    run = from_file(sync, write(tmp_path, "export.json", CSL_JSON))
    assert run.code == 0, run.err
    entries = load_catalog(catalog_dir).entries
    linformer = entries["linformer"]
    assert linformer.title == "Linformer: Self-Attention with Linear Complexity"
    assert (linformer.zotero.library, linformer.zotero.key) == (GROUP, LINFORMER)
    survey = entries["efficient-transformers-survey"]
    assert survey.zotero is None  # an unsynced local library has no usable link
    assert survey.authors == ["Yi Tay", "Google Research"]
    assert not (catalog_dir / "zotero").exists()  # an export has no watermark
    assert "summary: updated 2, unchanged 0" in run.out


def test_api_csl_json_with_the_library_given(sync, tmp_path: Path, catalog_dir: Path) -> None:
    """The API's format=csljson names items "<internal id>/<KEY>"; the library is given."""
    item = {**CSL_JSON[0], "id": f"3/{LINFORMER}"}
    path = write(tmp_path, "api.json", {"items": [item]})
    run = from_file(sync, path, "--format", "csljson", "--library-type", "group",
                    "--library-id", "2480461")  # fmt: skip
    assert run.code == 0, run.err
    assert load_catalog(catalog_dir).entries["linformer"].zotero.key == LINFORMER


def test_zotero_bibtex_export_keeps_the_catalog_citekey(sync, tmp_path, catalog_dir) -> None:
    run = from_file(sync, write(tmp_path, "zotero.bib", ZOTERO_BIBTEX))
    assert run.code == 0, run.err
    linformer = load_catalog(catalog_dir).entries["linformer"]
    assert linformer.title == "Linformer: Self-Attention with Linear Complexity"
    assert linformer.citekey == "wang2020linformer"  # not the per-export wang_linformer_2020
    assert linformer.zotero is None
    assert linformer.authors[1] == "Belinda Z. Li"
    assert "update linformer (from 'Linformer: Self-Attention" in run.out


def test_better_bibtex_biblatex_export(sync, tmp_path: Path, catalog_dir: Path) -> None:
    run = from_file(sync, write(tmp_path, "bbt.bib", BBT_BIBLATEX))
    assert run.code == 0, run.err
    longformer = load_catalog(catalog_dir).entries["longformer"]
    assert longformer.citekey == "beltagyLongformerLongDocumentTransformer2020"
    assert longformer.title == "Longformer: The Long-Document Transformer"
    assert longformer.url == "http://arxiv.org/abs/2004.05150"
    assert "matched by arxiv" in run.out


def test_better_bibtex_json_export(sync, tmp_path: Path, catalog_dir: Path) -> None:
    run = from_file(sync, write(tmp_path, "library.json", BBT_JSON))
    assert run.code == 0, run.err
    survey = load_catalog(catalog_dir).entries["efficient-transformers-survey"]
    assert (survey.zotero.library, survey.zotero.key) == (GROUP, SURVEY)
    assert survey.url == "https://dl.acm.org/doi/10.1145/3530811"
    assert "skipped 1 notes/attachments" in run.out
    # The hand-written summary and the comment above the entry are kept.
    text = (catalog_dir / "papers" / "efficient-transformers-survey.yaml").read_text()
    assert text.startswith(SCHEMA_LINE + "# The survey this atlas follows.\n")
    assert "summary: >-\n  A survey of efficient Transformers.\n" in text


def test_from_file_dry_run_and_add_new(sync, tmp_path: Path, catalog_dir: Path) -> None:
    item = {**CSL_JSON[0], "id": "x", "title": "Attention Is All You Need", "number": "",
            "DOI": "", "URL": "https://arxiv.org/abs/1706.03762", "note": ""}  # fmt: skip
    path = write(tmp_path, "new.json", [item])
    before = snapshot(catalog_dir)
    run = from_file(sync, path, "--add-new", "--dry-run")
    assert run.code == 0, run.err
    assert snapshot(catalog_dir) == before
    assert "would create draft attention-is-all-you-need" in run.out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.json", '[{"type": "article",', "broken.json:1: malformed JSON"),
        ("broken.bib", "@article{x, title = {unclosed", "malformed BibTeX"),
        ("shape.json", '{"items": 3}', "expected a list of items"),
    ],
)
def test_unreadable_exports_fail_cleanly(sync, tmp_path, catalog_dir, name, content, message):
    before = snapshot(catalog_dir)
    run = from_file(sync, write(tmp_path, name, content))
    assert run.code == 1
    assert message in run.err and len(run.err.strip().splitlines()) == 1, run.err
    assert snapshot(catalog_dir) == before


def test_entries_untouched_by_an_export_stay_byte_identical(sync, tmp_path, catalog_dir):
    assert from_file(sync, write(tmp_path, "export.json", CSL_JSON)).code == 0
    for entry_id in ("performer", "reformer", "sparse-transformer"):
        text = (catalog_dir / "papers" / f"{entry_id}.yaml").read_text(encoding="utf-8")
        assert text == SCHEMA_LINE + ENTRIES[entry_id]
