"""``python -m tools.notes export``: literature notes in the vault's shape; user text kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notes.notes_fixtures import EXAMPLE_NOTE, require_example_note, requires_checkout
from tools.catalog import load_catalog, project
from tools.catalog.filenames import literature_note_name
from tools.catalog.people import People
from tools.notes.check import check_vault
from tools.notes.cli import main as notes_main

PERFORMER_NOTE = "2020 Rethinking Attention with Performers.md"
SURVEY_NOTE = "2020 Efficient Transformers - A Survey.md"
SWITCH_NOTE = (
    "2021 Switch Transformers - Scaling to Trillion Parameter Models with Simple and "
    "Efficient Sparsity.md"
)
GLAM_NOTE = "2021 GLaM - Efficient Scaling of Language Models with Mixture-of-Experts.md"


pytestmark = requires_checkout


def export(vault: Path, catalog_dir: Path, *options: str) -> int:
    return notes_main(["export", "--vault", str(vault), "--catalog", str(catalog_dir), *options])


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_export_writes_one_note_per_entry_in_the_example_shape(
    catalog_dir: Path, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    assert export(vault, catalog_dir) == 0
    catalog = load_catalog(catalog_dir)
    names = {literature_note_name(e.year, e.title) for e in catalog.entries.values()}
    assert {path.name for path in vault.iterdir()} == names
    assert EXAMPLE_NOTE.name == SURVEY_NOTE  # the same name the reader gave it

    survey = (vault / SURVEY_NOTE).read_text(encoding="utf-8")
    lines = survey.splitlines()
    assert lines[0].startswith("<!-- atlas:begin id=efficient-transformers-survey ")
    assert lines[1:3] == ["### Efficient Transformers: A Survey", "---"]
    assert "- [Zotero Select Link](zotero://select/groups/2480461/items/HF7B8SJU)" in lines
    assert "- [Zotero URI](https://www.zotero.org/groups/2480461/items/HF7B8SJU)" in lines
    assert "- Authors: [[Yi Tay]] [[Mostafa Dehghani]] [[Dara Bahri]] [[Donald Metzler]]" in lines
    assert "- Topics: [[nlp_transformers]] [[nlp_survey]]" in lines
    assert "- Venue: #ACM_Computing_Surveys" in lines
    assert "- Year: #2020" in lines
    assert "- No reference implementation in the atlas yet." in lines
    for section in (
        "### Major Contributions",
        "### Secondary Contribution",
        "### Limitations/Future Work",
        "### Notes (Try to use backlinks)",
    ):
        assert section in lines
        assert lines.index(section) > lines.index("<!-- atlas:end -->")  # the reader's part

    performer = (vault / PERFORMER_NOTE).read_text(encoding="utf-8")
    site = project.site_url()
    assert f"- Atlas: [Performer]({site}papers/performer/)" in performer
    assert "Zotero" not in performer  # its (test) Zotero item is deleted: no links
    assert "- Venue: #ICLR" in performer
    assert f"- Taxonomy: [Kernels (KR)]({site}taxonomy/KR/)" in performer
    assert "- Complexity: time `O(n m d)`" in performer
    assert "### Implementation" in performer
    commit = project.commit()
    assert f"/blob/{commit}/implementations/performer.py#L" in performer
    assert f"- Site page: [Performer on the atlas]({site}papers/performer/)" in performer
    assert "- Cite as: impl:performer" in performer


def test_author_links_name_the_person_and_show_the_byline(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """GLaM's "Liam Fedus" links to the person William Fedus, and reads as the byline has it."""
    vault = tmp_path / "vault"
    assert export(vault, catalog_dir) == 0
    glam = (vault / GLAM_NOTE).read_text(encoding="utf-8").splitlines()
    (authors,) = [line for line in glam if line.startswith("- Authors: ")]
    assert "[[William Fedus|Liam Fedus]]" in authors
    assert "[[Nan Du]]" in authors  # one spelling only: linked as written
    switch = (vault / SWITCH_NOTE).read_text(encoding="utf-8")
    assert "- Authors: [[William Fedus]] [[Barret Zoph]] [[Noam Shazeer]]" in switch
    # Every author link of every note names a person by the one canonical name.
    people = People.of(load_catalog(catalog_dir))
    targets = {
        link.split("|")[0]
        for note in vault.iterdir()
        for line in note.read_text(encoding="utf-8").splitlines()
        if line.startswith("- Authors: ")
        for link in re.findall(r"\[\[([^\]]+)\]\]", line)
    }
    assert "Liam Fedus" not in targets and "William Fedus" in targets
    assert {people.canonical(target) for target in targets} == targets


def test_exported_vault_has_no_dangling_references(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    export(vault, catalog_dir)
    reports, unreadable = check_vault(load_catalog(catalog_dir), vault)
    assert unreadable == []
    dangling = [ref.describe() for r in reports for ref in r.references if ref.status == "dangling"]
    # Only the Zotero item the test catalog marks deleted is not linked; nothing dangles.
    assert dangling == []
    kinds = {ref.kind for r in reports for ref in r.references if ref.status == "resolved"}
    assert {"wikilink", "citekey", "zotero", "impl", "site"} <= kinds


def test_reexport_keeps_user_text_byte_for_byte(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    export(vault, catalog_dir)
    note = vault / PERFORMER_NOTE
    text = note.read_bytes().decode("utf-8")
    head, end_marker, tail = text.partition("<!-- atlas:end -->")
    # The reader writes outside the block (CRLF, unicode, trailing spaces, no final newline)
    # and, by mistake, inside it.
    user_tail = (
        tail.replace(
            "### Major Contributions\n- \n",
            "### Major Contributions\r\n- FAVOR+ — unbiased   \r\n- Nyström? no.\t\n",
        )
        + "\n> my last line, no newline"
    )
    edited = "Preface I wrote ✍️\n" + head.replace("- Year: #2020", "- Year: #1999") + end_marker
    note.write_bytes((edited + user_tail).encode("utf-8"))

    assert export(vault, catalog_dir) == 0
    after = note.read_bytes().decode("utf-8")
    assert after.startswith("Preface I wrote ✍️\n<!-- atlas:begin id=performer ")
    assert after.endswith("<!-- atlas:end -->" + user_tail)  # byte for byte
    assert "- Year: #2020" in after and "#1999" not in after  # the block is the atlas's

    before = snapshot(vault)
    assert export(vault, catalog_dir) == 0
    assert snapshot(vault) == before  # nothing to do the second time


def test_reexport_finds_a_renamed_and_moved_note(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    export(vault, catalog_dir)
    (vault / "Papers" / "Kernels").mkdir(parents=True)
    moved = vault / "Papers" / "Kernels" / "Performer — mine.md"
    (vault / PERFORMER_NOTE).rename(moved)
    export(vault, catalog_dir)
    assert not (vault / PERFORMER_NOTE).exists()
    assert "<!-- atlas:begin id=performer " in moved.read_text(encoding="utf-8")


def test_crlf_notes_get_a_crlf_block(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    export(vault, catalog_dir)
    note = vault / PERFORMER_NOTE
    crlf = note.read_bytes().replace(b"\n", b"\r\n").replace(b"- Year: #2020", b"- Year: #1")
    note.write_bytes(crlf)
    export(vault, catalog_dir)
    assert note.read_bytes() == crlf.replace(b"- Year: #1", b"- Year: #2020")


def test_dry_run_lists_and_writes_nothing(
    catalog_dir: Path, vault: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(vault)
    assert export(vault, catalog_dir, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would create {vault / PERFORMER_NOTE}" in out
    assert f"skip {vault / SURVEY_NOTE}: exists without a managed block" in out
    entries = len(load_catalog(catalog_dir).entries)  # one note each; the survey's exists
    assert out.rstrip().endswith(f"dry run: {entries - 1} create, 1 skip")
    assert snapshot(vault) == before


def test_an_existing_note_without_block_is_kept_unless_adopted(
    catalog_dir: Path, vault: Path
) -> None:
    note = vault / require_example_note().name
    original = note.read_bytes()
    export(vault, catalog_dir)
    assert note.read_bytes() == original
    export(vault, catalog_dir, "--adopt")
    adopted = note.read_bytes()
    assert adopted.startswith(b"<!-- atlas:begin id=efficient-transformers-survey ")
    assert adopted.endswith(b"<!-- atlas:end -->\n" + original)
    export(vault, catalog_dir)
    assert note.read_bytes() == adopted


def test_broken_markers_are_reported_and_the_note_left_alone(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    export(vault, catalog_dir)
    note = vault / PERFORMER_NOTE
    broken = note.read_bytes().replace(b"<!-- atlas:end -->", b"<!-- atlas end -->")
    note.write_bytes(broken)
    capsys.readouterr()
    export(vault, catalog_dir)
    assert "markers do not pair up" in capsys.readouterr().out
    assert note.read_bytes() == broken


def test_markers_inside_code_are_not_blocks(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    export(vault, catalog_dir)
    note = vault / PERFORMER_NOTE
    example = "\n```\n<!-- atlas:begin id=reformer -->\n<!-- atlas:end -->\n```\n"
    note.write_bytes(note.read_bytes() + example.encode())
    export(vault, catalog_dir)
    assert note.read_bytes().endswith(example.encode())
    assert (vault / "2020 Reformer - The Efficient Transformer.md").exists()
