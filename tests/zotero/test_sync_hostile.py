"""Unlucky and hostile data (issue 15): ordinary updates never crash a run, wrong answers
are errors, values that would break a format or leak the key are never written, and what
the command line names stays inside the catalog and the library."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import GROUP, GROUP_ID, LINFORMER, SENTINEL_KEY, snapshot
from tools.catalog import load_catalog
from tools.zotero.cli import main as sync_main

WATERMARK = "zotero/web/groups-2480461.json"
ATOM = '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"></feed>'


@pytest.fixture
def synced(sync, server: FakeZotero, catalog_dir: Path) -> dict[str, bytes]:
    """A catalog synced once (so a watermark exists); returns its files."""
    assert sync().code == 0
    server.reset_log()
    return snapshot(catalog_dir)


# ----------------------------------------------------------------------------- point 1


def test_a_preprint_that_gains_a_doi_and_a_url_is_updated(
    sync, server: FakeZotero, catalog_dir: Path, synced
) -> None:
    doi, url = "10.1145/3458817.3476165", "https://dl.acm.org/doi/10.1145/3458817.3476165"
    server.libraries[GROUP].edit(LINFORMER, DOI=doi, url=url)
    run = sync()
    assert run.code == 0, run.err
    assert "unexpected" not in run.err
    entry = load_catalog(catalog_dir).entries["linformer"]
    assert (entry.doi, entry.url) == (doi, url)
    text = (catalog_dir / "papers/linformer.yaml").read_text(encoding="utf-8")
    assert "venue: arXiv preprint   # never published elsewhere\n" in text
    assert f"arxiv: '2006.04768'\ndoi: {doi}\nurl: {url}\n" in text


# ----------------------------------------------------------------------------- point 2

WRONG_ANSWERS = {
    "atom for the changed items": ("itemKey", ATOM, "application/atom+xml"),
    "html for the changed items": ("itemKey", "<html></html>", "text/html"),
    "items without data": ("itemKey", [{"key": LINFORMER}], None),
    "items that are numbers": ("itemKey", [1, 2], None),
    "an item with a bad key": ("itemKey", [{"key": "../x", "data": {}}], None),
    "a mapping for the items": ("itemKey", {"items": []}, None),
    "atom for the versions": ("format=versions", ATOM, "application/atom+xml"),
    "a list for the versions": ("format=versions", [LINFORMER], None),
    "versions under bad keys": ("format=versions", {"a/b": 3}, None),
    "atom for the deletions": ("/deleted", ATOM, "application/atom+xml"),
}


@pytest.mark.parametrize("case", WRONG_ANSWERS, ids=list(WRONG_ANSWERS))
def test_a_wrong_answer_is_an_error_not_an_empty_library(
    case: str, sync, server: FakeZotero, catalog_dir: Path, synced
) -> None:
    server.libraries[GROUP].edit(LINFORMER, title="Linformer: Self-Attention in Linear Time")
    match, body, content_type = WRONG_ANSWERS[case]
    headers = {"Last-Modified-Version": "99"}
    if content_type:
        headers["Content-Type"] = content_type
    server.fail("reply", match=match, status=200, body=body, headers=headers, times=99)
    run = sync()
    assert run.code == 1, run.out
    assert run.out == "" and "Traceback" not in run.err
    assert run.err.startswith("error: ") and "unexpected" not in run.err, run.err
    assert "not the JSON the Zotero API documents" in run.err, run.err
    assert snapshot(catalog_dir) == synced


def test_an_atom_listing_on_a_first_run_flags_nothing(
    sync, server: FakeZotero, catalog_dir: Path
) -> None:
    before = snapshot(catalog_dir)
    headers = {"Content-Type": "application/atom+xml", "Last-Modified-Version": "5"}
    server.fail("reply", match="/items/top", status=200, body=ATOM, headers=headers, times=99)
    run = sync()
    assert run.code == 1 and "not the JSON the Zotero API documents" in run.err, run.err
    assert snapshot(catalog_dir) == before  # sparse-transformer's link is not flagged deleted


# ----------------------------------------------------------------------------- point 6


def test_doi_and_url_that_break_bibtex_are_reported_and_left_out(
    sync, server: FakeZotero, catalog_dir: Path, synced
) -> None:
    server.libraries[GROUP].edit(
        LINFORMER,
        title="Linformer: Self-Attention in Linear Time",
        DOI="10.1145/1}@misc{pwned,",
        url="https://x.org/}}@misc{pwned,",
    )
    run = sync()
    assert run.code == 0, run.err
    assert "pwned" not in (catalog_dir / "papers/linformer.yaml").read_text(encoding="utf-8")
    warnings = [line for line in run.out.splitlines() if line.startswith("warning:")]
    assert any("LNF2RMR4" in line and "DOI" in line and "left out" in line for line in warnings)
    assert any("LNF2RMR4" in line and "URL" in line and "left out" in line for line in warnings)
    assert load_catalog(catalog_dir).entries["linformer"].title.endswith("in Linear Time")


def test_an_api_key_echoed_into_items_is_written_nowhere(
    sync, server: FakeZotero, catalog_dir: Path, synced
) -> None:
    library = server.libraries[GROUP]
    library.edit(LINFORMER, title=f"Linformer {SENTINEL_KEY}")
    library.add(
        "KEY2ECHO",
        {
            "itemType": "journalArticle",
            "title": f"Echo {SENTINEL_KEY}",
            "creators": [{"creatorType": "author", "name": "Eve"}],
            "date": "2021",
            "url": f"https://x.org/?k={SENTINEL_KEY}",
        },
        parsed_date="2021",
    )
    run = sync("--add-new")
    assert run.code == 1  # the items were refused; the library version is kept
    assert SENTINEL_KEY not in run.out + run.err
    assert "contain the API key" in run.out
    for name, data in snapshot(catalog_dir).items():
        assert SENTINEL_KEY.encode() not in data, name
    assert snapshot(catalog_dir)[WATERMARK] == synced[WATERMARK]


def test_control_characters_are_never_printed(sync, catalog_dir: Path) -> None:
    (catalog_dir / "papers" / "x\x1b]0;owned\x07\x9b2J.yaml").write_text("id: x\n")
    run = sync()
    assert run.code == 1 and "the catalog has" in run.err
    assert "\\x1b]0;owned\\x07\\x9b2J" in run.err
    for text in (run.out, run.err):
        assert not any(ord(char) < 32 and char != "\n" for char in text)
        assert "\x9b" not in text


# ----------------------------------------------------------------------------- point 7

BAD_ARGUMENTS = {
    "collection path": (["--collection", "../../../../../PWNED"], "--collection"),
    "collection too short": (["--collection", "ABC2345"], "--collection"),
    "collection with a slash": (["--collection", "AB/D2345"], "--collection"),
    "negative library id": (["--library-id=-5"], "--library-id"),
    "library id with underscores": (["--library-id", "2_480_461"], "--library-id"),
    "library id in other digits": (["--library-id", "٢٤٨"], "--library-id"),
    "tag with a line break": (["--tag", "a\nb"], "--tag"),
    "empty tag": (["--tag", ""], "--tag"),
    "overlong tag": (["--tag", "t" * 300], "--tag"),
    "a file server": (["--api-url", "file:///etc"], "--api-url"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS, ids=list(BAD_ARGUMENTS))
def test_command_line_values_are_checked_before_anything_runs(
    case: str, server: FakeZotero, catalog_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, named = BAD_ARGUMENTS[case]
    before = snapshot(catalog_dir.parent)
    argv = ["--catalog", str(catalog_dir), "--api-url", server.url, "--library-type", "group"]
    if "--library-id" not in " ".join(options):
        argv += ["--library-id", str(GROUP_ID)]
    with pytest.raises(SystemExit) as exit_:
        sync_main([*argv, *options])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert server.requests == []
    assert snapshot(catalog_dir.parent) == before


def test_a_collection_key_is_one_path_segment(sync, server: FakeZotero, catalog_dir) -> None:
    run = sync("--collection", "surv2345")
    assert run.code == 0, run.err
    assert {r.path for r in server.requests} == {
        f"/groups/{GROUP_ID}/collections/SURV2345/items/top"
    }
    assert (catalog_dir / "zotero/web/groups-2480461--collection-SURV2345.json").is_file()


# ----------------------------------------------------------------------------- point 8


def test_a_crlf_entry_keeps_its_line_endings(
    sync, server: FakeZotero, catalog_dir: Path, synced
) -> None:
    path = catalog_dir / "papers/linformer.yaml"
    lf = path.read_bytes()
    path.write_bytes(lf.replace(b"\n", b"\r\n"))
    old_title = b"title: 'Linformer: Self-Attention with Linear Complexity'"
    assert old_title in lf
    server.libraries[GROUP].edit(LINFORMER, title="Linformer: Self-Attention in Linear Time")
    run = sync()
    assert run.code == 0, run.err
    expected = lf.replace(old_title, b"title: 'Linformer: Self-Attention in Linear Time'")
    assert path.read_bytes() == expected.replace(b"\n", b"\r\n")
