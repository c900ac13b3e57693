"""The sync against a Web API v3 server on 127.0.0.1: first, repeated and incremental runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import (
    ENTRIES,
    GROUP,
    LINFORMER,
    ROOT,
    SCHEMA_LINE,
    SENTINEL_KEY,
    SPARSE,
    SURVEY,
    TRANSFORMER_XL_PREPRINT,
    VASWANI,
    populate_large,
    snapshot,
)
from tools.catalog import CITATION_FIELDS, load_catalog

WATERMARK = "zotero/web/groups-2480461.json"


def test_first_sync_fills_citations(sync, catalog_dir: Path, server: FakeZotero) -> None:
    run = sync()
    assert run.code == 0, run.err
    catalog = load_catalog(catalog_dir)
    assert catalog.problems == []
    entries = catalog.entries
    # Linked by DOI, arXiv id (archiveID, Extra, DOI, URL) and title.
    expected_links = {
        "efficient-transformers-survey": SURVEY,
        "linformer": LINFORMER,
        "performer": "PRF9RMR5",
        "longformer": "LNG4FRM6",
        "big-bird": "BGB7RD22",
        "synthesizer": "SYN7HES8",
        "sparse-transformer": SPARSE,
    }
    for entry_id, key in expected_links.items():
        assert entries[entry_id].zotero is not None, entry_id
        assert (entries[entry_id].zotero.library, entries[entry_id].zotero.key) == (GROUP, key)
    survey = entries["efficient-transformers-survey"].zotero
    assert survey.select_uri == "zotero://select/groups/2480461/items/HF7B8SJU"
    assert survey.web_uri == "https://www.zotero.org/groups/2480461/items/HF7B8SJU"
    assert entries["linformer"].title == "Linformer: Self-Attention with Linear Complexity"
    assert entries["longformer"].citekey == "beltagy2020longformer"  # native citationKey
    # Authors only (the editor is left out), in order, single-field names kept.
    assert entries["big-bird"].authors == ["Manzil Zaheer", "Guru Guruganesh", "Google Research"]
    assert entries["big-bird"].venue == "Advances in Neural Information Processing Systems 33"
    # A preprint next to its published version: reported; the trashed item: never matched.
    for untouched in ("reformer", "routing-transformer"):
        assert entries[untouched].zotero is None, untouched
        text = (catalog_dir / "papers" / f"{untouched}.yaml").read_text(encoding="utf-8")
        assert text == SCHEMA_LINE + ENTRIES[untouched]
    assert "conflict groups/2480461/RFM3PRE4" in run.out
    assert "conflict groups/2480461/RFM3PUB5" in run.out
    # The preprint of an ACL paper, by the same arXiv id: linked, the ACL fields kept.
    text = (catalog_dir / "papers" / "transformer-xl.yaml").read_text(encoding="utf-8")
    link = f"zotero:\n  library: {GROUP}\n  key: {TRANSFORMER_XL_PREPRINT}\n"
    assert text == SCHEMA_LINE + ENTRIES["transformer-xl"] + link
    assert 'kept (the item is its arXiv preprint): venue "ACL 2019", doi "10.18653/v1' in run.out
    assert f"unmatched groups/2480461/{VASWANI} 'Attention Is All You Need'" in run.out
    # Notes and attachments are skipped; child items and the trashed item never matched.
    assert "skipped 2 notes/attachments" in run.out
    assert run.summary == (
        "summary: updated 7, unchanged 1, new 0, unmatched 1, deleted 0, conflicts 2"
    )
    assert (catalog_dir / WATERMARK).exists()
    # Every field that is not a citation field is as it was, in every entry.
    for entry_id, original in ENTRIES.items():
        now = (catalog_dir / "papers" / f"{entry_id}.yaml").read_text(encoding="utf-8")
        assert hand_fields(now) == hand_fields(original), entry_id


def hand_fields(text: str) -> dict:
    data = YAML(typ="safe").load(text)
    return {key: value for key, value in data.items() if key not in CITATION_FIELDS}


def test_second_sync_changes_nothing_in_at_most_two_requests(
    sync, catalog_dir: Path, server: FakeZotero
) -> None:
    assert sync().code == 0
    before = snapshot(catalog_dir)
    server.reset_log()
    run = sync()
    assert run.code == 0, run.err
    assert snapshot(catalog_dir) == before
    assert len(server.requests) <= 2
    first = server.requests[0]
    assert first.param("format") == "versions" and first.param("since") == "17"
    assert first.headers.get("if-modified-since-version") == "17"
    assert run.summary.endswith(
        "updated 0, unchanged 0, new 0, unmatched 0, deleted 0, conflicts 0"
    )


def test_edited_title_updates_only_that_field(sync, catalog_dir: Path, server: FakeZotero) -> None:
    assert sync().code == 0
    before = snapshot(catalog_dir)
    server.libraries[GROUP].edit(LINFORMER, title="Linformer: Self-Attention in Linear Time")
    server.reset_log()
    run = sync()
    assert run.code == 0, run.err
    after = snapshot(catalog_dir)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"papers/linformer.yaml", WATERMARK}
    old_line = b"title: 'Linformer: Self-Attention with Linear Complexity'\n"
    new_line = b"title: 'Linformer: Self-Attention in Linear Time'\n"
    assert old_line in before["papers/linformer.yaml"]
    assert after["papers/linformer.yaml"] == before["papers/linformer.yaml"].replace(
        old_line, new_line
    )
    # The hand-written parts, comments and flow-style lists are there byte for byte.
    for kept in (
        b"# Title as first typed; Zotero has the right capitalisation.\n",
        b"venue: arXiv preprint   # never published elsewhere\n",
        b"taxonomy: [LR]   # flow style, kept as written\n",
        b'    k: projected length   # "k" in the paper\n',
        b"decode: false\n\nsummary: >-\n",
        b"  Hand-written notes.\n    Indented line, kept.\n",
    ):
        assert kept in after["papers/linformer.yaml"]
    assert 'title: "Linformer: Self-Attention with Linear Complexity" -> ' in run.out
    # Changed-since versions, one batch of items, the deletions since.
    asked = [(r.path, r.param("format"), r.param("itemKey")) for r in server.requests]
    assert asked == [
        ("/groups/2480461/items/top", "versions", None),
        ("/groups/2480461/items", "json", LINFORMER),
        ("/groups/2480461/deleted", "json", None),
    ]
    assert run.summary.startswith("summary: updated 1, unchanged 0")


def test_dry_run_prints_field_changes_and_writes_nothing(sync, catalog_dir: Path) -> None:
    before = snapshot(catalog_dir)
    run = sync("--dry-run")
    assert run.code == 0, run.err
    assert snapshot(catalog_dir) == before
    assert "would update linformer (from groups/2480461/LNF2RMR4, matched by arxiv):" in run.out
    assert (
        '    title: "Linformer: Self-attention with linear complexity" -> '
        '"Linformer: Self-Attention with Linear Complexity"'
    ) in run.out
    assert '    zotero: (absent) -> {"library": "groups/2480461", "key": "LNF2RMR4"}' in run.out
    assert "dry run, nothing written; summary: updated 7" in run.out


def test_deleted_and_trashed_items_flag_entries_and_keep_them(
    sync, catalog_dir: Path, server: FakeZotero
) -> None:
    assert sync().code == 0
    library = server.libraries[GROUP]
    library.delete(SPARSE)
    library.trash(LINFORMER)
    run = sync()
    assert run.code == 0, run.err
    assert "flag sparse-transformer: Zotero item groups/2480461/SPR5TRN7 was deleted" in run.out
    assert "flag linformer: Zotero item groups/2480461/LNF2RMR4 is in Zotero's trash" in run.out
    entries = load_catalog(catalog_dir).entries
    assert entries["sparse-transformer"].zotero.deleted
    assert entries["linformer"].zotero.deleted
    assert "deleted 2" in run.summary
    # Restored from the trash: the flag goes again.
    library.edit(LINFORMER, deleted=0)
    run = sync()
    assert run.code == 0, run.err
    assert not load_catalog(catalog_dir).entries["linformer"].zotero.deleted
    assert '"deleted": true' in run.out and "update linformer" in run.out


def test_add_new_creates_drafts_that_pass_the_catalog_check(sync, catalog_dir: Path) -> None:
    run = sync("--add-new")
    assert run.code == 0, run.err
    path = catalog_dir / "papers" / "attention-is-all-you-need.yaml"
    assert path.exists()
    draft = load_catalog(catalog_dir).entries["attention-is-all-you-need"]
    assert draft.draft and draft.kind == "model" and draft.taxonomy == []
    assert draft.complexity is None
    assert draft.authors == ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"]
    assert (draft.year, draft.venue, draft.arxiv) == (2017, "arXiv preprint", "1706.03762")
    assert draft.citekey == "vaswani2017attention"
    assert (draft.zotero.library, draft.zotero.key) == (GROUP, VASWANI)
    assert "create draft attention-is-all-you-need" in run.out
    assert "new 1, unmatched 0" in run.summary
    check = subprocess.run(
        [sys.executable, "-m", "tools.catalog", "--root", str(catalog_dir), "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert "(1 draft)" in check.stdout


def test_public_fixture_library_needs_no_key(sync, catalog_dir: Path) -> None:
    """User 475425 serves pyzotero's real API responses: odd dates, organisations, no creators."""
    run = sync("--library-type", "user", "--library-id", "475425", "--add-new", key=None)
    assert run.code == 0, run.err
    catalog = load_catalog(catalog_dir)
    assert catalog.problems == []
    drafts = {e.id: e for e in catalog.entries.values() if e.draft}
    assert len(drafts) >= 8
    biscrolling = next(e for e in drafts.values() if e.title.startswith("Biscrolling"))
    assert biscrolling.year == 2011 and biscrolling.venue == "Science"
    assert biscrolling.authors[0] == "Márcio D. Lima"
    # Web pages without creators, films with contributors only: reported, not drafted.
    assert "cannot draft an entry: Zotero has no authors" in run.out
    # The child attachment fixture never reaches the sync: only top-level items are read.
    assert "TM8QRS36" not in run.out


def test_collection_and_tag_select_items_with_their_own_watermark(
    sync, catalog_dir: Path, server: FakeZotero
) -> None:
    server.libraries[GROUP].edit(LINFORMER, tags=[{"tag": "low-rank"}])
    run = sync("--collection", "SURV2345")
    assert run.code == 0, run.err
    assert "summary: updated 1, unchanged 0" in run.out
    assert server.requests[-1].path == "/groups/2480461/collections/SURV2345/items/top"
    assert (catalog_dir / "zotero/web/groups-2480461--collection-SURV2345.json").exists()
    run = sync("--tag", "low-rank")
    assert run.code == 0, run.err
    assert server.requests[-1].param("tag") == "low-rank"
    assert "update linformer" in run.out and "summary: updated 1, unchanged 0" in run.out
    assert not (catalog_dir / WATERMARK).exists()


def test_a_thousand_items_page_and_batch_correctly(
    sync, catalog_dir: Path, server: FakeZotero
) -> None:
    library = server.library("group", 999, private=False)
    populate_large(library, 1000)
    run = sync("--library-id", "999", key=None)
    assert run.code == 0, run.err
    pages = [r for r in server.requests if r.path == "/groups/999/items/top"]
    assert [r.param("start") for r in pages] == [str(start) for start in range(0, 1000, 100)]
    assert {r.param("limit") for r in pages} == {"100"}
    assert "read all 1000 top-level items" in run.out
    assert "unmatched 1000" in run.summary
    unmatched = {line.split()[1] for line in run.out.splitlines() if line.startswith("unmatched ")}
    assert len(unmatched) == 1000
    # 120 edits come back in itemKey batches of at most 50.
    for number in range(0, 240, 2):
        library.edit(f"L{number:07d}", title=f"Paper number {number}, revised")
    server.reset_log()
    run = sync("--library-id", "999", key=None)
    assert run.code == 0, run.err
    batches = [r.param("itemKey").split(",") for r in server.requests if r.param("itemKey")]
    assert [len(batch) for batch in batches] == [50, 50, 20]
    assert len({key for batch in batches for key in batch}) == 120
    assert "unmatched 120" in run.summary


def test_key_is_sent_as_bearer_and_never_written(sync, catalog_dir: Path, server) -> None:
    assert sync("--add-new").code == 0
    assert server.requests[0].headers["authorization"] == f"Bearer {SENTINEL_KEY}"
    for name, data in snapshot(catalog_dir).items():
        assert SENTINEL_KEY.encode() not in data, name


def test_server_accepts_either_auth_header(server: FakeZotero) -> None:
    """The fake server, like api.zotero.org, takes Zotero-API-Key as well as Bearer."""
    import httpx2

    url = f"{server.url}/groups/2480461/items/top?limit=1"
    with httpx2.Client(trust_env=False) as client:
        assert client.get(url, headers={"Zotero-API-Key": SENTINEL_KEY}).status_code == 200
        assert client.get(url, headers={"Zotero-API-Key": "wrong"}).status_code == 403
        answer = client.get(url, headers={"Authorization": f"Bearer {SENTINEL_KEY}"})
        assert (
            answer.status_code == 200 and answer.headers["Total-Results"] == "13"
        )  # trashed left out
        assert 'rel="next"' in answer.headers["Link"]
        assert client.get(f"{server.url}/groups/1/items").status_code == 404


def test_an_entry_that_cannot_be_updated_is_retried_next_time(
    sync, catalog_dir: Path, server: FakeZotero
) -> None:
    assert sync().code == 0
    watermark = (catalog_dir / WATERMARK).read_bytes()
    # A year the catalog rejects (before 1950): the entry cannot take the change.
    server.libraries[GROUP].edit(LINFORMER, date="1900")
    server.libraries[GROUP].items[LINFORMER]["meta"]["parsedDate"] = "1900"
    run = sync()
    assert run.code == 1
    assert "not updated linformer" in run.out
    assert "the library version was kept" in run.err
    assert (catalog_dir / WATERMARK).read_bytes() == watermark
    # Once Zotero is fixed, the next incremental run still sees the item.
    server.libraries[GROUP].edit(LINFORMER, date="2020")
    server.libraries[GROUP].items[LINFORMER]["meta"]["parsedDate"] = "2020"
    assert sync().code == 0
    assert (catalog_dir / WATERMARK).read_bytes() != watermark
