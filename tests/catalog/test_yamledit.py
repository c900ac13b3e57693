"""Editing entry YAML: any mix of added, changed and removed fields, in any order of keys,
with comments around them, keeps every untouched byte and the file's line endings."""

from __future__ import annotations

import itertools

import pytest

from tools.catalog.yamledit import edit_fields
from tools.catalog.yamlio import plain, yaml_reader

# A preprint that got published: Zotero now has a DOI and the publisher's URL.
FIELDS = {
    "venue": "venue: arXiv preprint   # until published\n",
    "arxiv": "arxiv: '2006.04768'\n",
    "url": "# the arXiv page\nurl: http://arxiv.org/abs/2006.04768  # abs page\n",
    "citekey": "citekey: wang2020linformer\n",
}
PUBLISHED = {"doi": "10.1145/3530811", "url": "https://doi.org/10.1145/3530811"}


def entry(order: tuple[str, ...]) -> str:
    body = "".join(FIELDS[key] for key in order)
    return f"# schema line\nid: linformer   # kept\n# before the fields\n{body}# at the end\n"


def check(text: str, changes: dict, newline: str = "\n") -> str:
    edited = edit_fields(text, changes)
    before, after = plain(yaml_reader().load(text)), plain(yaml_reader().load(edited))
    for key, value in changes.items():
        assert after.get(key) == value, key
    untouched = {k: v for k, v in before.items() if k not in changes}
    assert {k: v for k, v in after.items() if k not in changes} == untouched
    kept = [line for line in text.splitlines(keepends=True) if line.lstrip().startswith("#")]
    for line in kept:  # every full-line comment survives, once
        assert edited.count(line) == text.count(line), line
    if newline == "\r\n":
        assert edited.count("\n") == edited.count("\r\n")
    else:
        assert "\r" not in edited
    return edited


@pytest.mark.parametrize("order", list(itertools.permutations(FIELDS)), ids="-".join)
@pytest.mark.parametrize(
    "changes",
    [
        PUBLISHED,
        {"url": PUBLISHED["url"], "doi": PUBLISHED["doi"]},  # the other order of the change
        {**PUBLISHED, "venue": "ACM Computing Surveys"},
        {**PUBLISHED, "arxiv": None},
        {"doi": PUBLISHED["doi"], "url": None, "year": 2022},
    ],
    ids=["doi+url", "url+doi", "with-venue", "arxiv-removed", "url-removed"],
)
def test_added_next_to_changed_in_any_order(order: tuple[str, ...], changes: dict) -> None:
    edited = check(entry(order), changes)
    assert edited.startswith("# schema line\nid: linformer   # kept\n")
    assert edited.endswith("# at the end\n")


def test_new_fields_go_in_canonical_order() -> None:
    text = "id: x\ntitle: T\nvenue: V\ncitekey: k\n"
    edited = check(text, {"url": "https://x.org", "doi": "10.1/x", "arxiv": "2001.00001"})
    assert edited == (
        "id: x\ntitle: T\nvenue: V\narxiv: '2001.00001'\ndoi: 10.1/x\nurl: https://x.org\n"
        "citekey: k\n"
    )


def test_end_of_line_comment_of_a_changed_scalar_is_kept() -> None:
    edited = check("id: x\nurl: http://a.org  # abs page\ncitekey: k\n", {"url": "https://b.org"})
    assert edited == "id: x\nurl: https://b.org  # abs page\ncitekey: k\n"


@pytest.mark.parametrize("order", list(itertools.permutations(FIELDS))[:6], ids="-".join)
def test_crlf_file_keeps_its_line_endings(order: tuple[str, ...]) -> None:
    text = entry(order).replace("\n", "\r\n")
    edited = check(text, {**PUBLISHED, "title": "Linformer"}, newline="\r\n")
    assert edited.startswith("# schema line\r\nid: linformer   # kept\r\n")


def test_crlf_without_a_final_line_break() -> None:
    edited = check("id: x\r\ntitle: T", {"doi": "10.1/x"}, newline="\r\n")
    assert edited == "id: x\r\ntitle: T\r\ndoi: 10.1/x\r\n"
