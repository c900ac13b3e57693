"""``python -m tools.notes check``: every reference found, classified right, fixed in place."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.notes.notes_fixtures import READING_NOTE, READING_NOTE_NAME, require_example_note
from tools.catalog import ROOT, load_catalog, project
from tools.notes.check import apply_fixes, check_vault, find_references
from tools.notes.cli import main as notes_main
from tools.notes.resolve import Resolver

SITE = project.site_url()


def classify(path: Path, catalog_dir: Path, vault: Path) -> list[tuple]:
    resolver = Resolver.build(load_catalog(catalog_dir), vault)
    text = path.read_bytes().decode("utf-8")
    return [
        (ref.line, ref.kind, ref.text, ref.status, ref.target)
        for ref in find_references(path, text, resolver)
    ]


def test_example_note_references_are_classified(catalog_dir: Path, vault: Path) -> None:
    note = vault / require_example_note().name
    assert classify(note, catalog_dir, vault) == [
        (1, "mention", "Efficient Transformers: A Survey", "resolved",
         "efficient-transformers-survey"),
        (3, "zotero", "zotero://select/groups/2480461/items/HF7B8SJU", "resolved",
         "efficient-transformers-survey"),
        (4, "zotero", "https://www.zotero.org/groups/2480461/items/HF7B8SJU", "resolved",
         "efficient-transformers-survey"),
        (5, "wikilink", "[[Yi Tay]]", "resolved", "author:Yi Tay"),
        (5, "wikilink", "[[Donald Metzler]]", "resolved", "author:Donald Metzler"),
        (6, "wikilink", "[[nlp_survey]]", "ignored", None),
        (6, "wikilink", "[[nlp_transformers]]", "ignored", None),
        (21, "embed", "![[2020_TranformersSurvey_TransArch.png]]", "ignored", None),
        (28, "embed", "![[2020_TransfomersSurvey_Taxonomy.png]]", "ignored", None),
        (31, "mention", "Blockwise", "resolved", "blockwise"),
        (31, "mention", "Blockwise", "resolved", "blockwise"),
        (31, "mention", "Local Attention", "resolved", "image-transformer"),
        (32, "mention", "Sparse Transformer", "resolved", "sparse-transformer"),
        (32, "mention", "Longformer", "resolved", "longformer"),
        (33, "mention", "Memory Compressed Attention", "resolved", "memory-compressed"),
        (34, "mention", "Axial Transformer", "resolved", "axial-transformer"),
        (35, "mention", "Reformer", "resolved", "reformer"),
        (35, "mention", "Routing Transformer", "resolved", "routing-transformer"),
        (35, "mention", "Sinkhorn Sorting Network", "resolved", "sinkhorn-transformer"),
        (36, "mention", "Set Transformers", "resolved", "set-transformer"),
        (37, "mention", "Linformer", "resolved", "linformer"),
        (38, "mention", "Linear Transformer", "resolved", "linear-transformer"),
        (38, "mention", "Performer", "resolved", "performer"),
        (39, "mention", "Transformer-XL", "resolved", "transformer-xl"),
    ]  # fmt: skip


def test_reading_note_references_are_classified(catalog_dir: Path, vault: Path) -> None:
    assert classify(vault / READING_NOTE_NAME, catalog_dir, vault) == [
        (3, "wikilink", "[[Performer]]", "resolved", "performer"),
        (7, "wikilink", "[[Big Bird]]", "resolved", "big-bird"),
        (7, "wikilink", "[[BigBird|the BigBird paper]]", "resolved", "big-bird"),
        (8, "wikilink", "[[Nyströmformer#Method]]", "resolved", "nystromformer"),
        (8, "wikilink", "[[nystromformer]]", "resolved", "nystromformer"),
        (9, "citekey", "@choromanski2021rethinking", "resolved", "performer"),
        (9, "citekey", "@katharopoulos2020transformers", "resolved", "linear-transformer"),
        (10, "wikilink", "[[Perfomer]]", "dangling", None),
        (10, "citekey", "@smith2099nothing", "dangling", None),
        (10, "citekey", "@handle", "ignored", None),
        (11, "impl", "impl:performer", "resolved", "performer"),
        (11, "impl", "impl:no-such-model", "dangling", None),
        (12, "zotero", "zotero://select/groups/2480461/items/HF7B8SJU", "resolved",
         "efficient-transformers-survey"),
        (13, "zotero", "zotero://select/groups/2480461/items/ZZZZ9999", "dangling", None),
        (14, "zotero", "zotero://select/groups/2480461/items/DELE7ED1", "dangling", "performer"),
        (15, "wikilink", "[[nlp_survey]]", "ignored", None),
        (15, "wikilink", "[[Yi Tay]]", "resolved", "author:Yi Tay"),
        (15, "wikilink", "[[Kernels]]", "resolved", "taxonomy:KR"),
        (15, "embed", "![[fig.png]]", "ignored", None),
        (16, "mention", "Linformer", "resolved", "linformer"),
        (22, "mention", "Reformer", "resolved", "reformer"),
        (22, "mention", "Set Transformers", "resolved", "set-transformer"),
    ]  # fmt: skip


def test_dangling_references_say_why(catalog_dir: Path, vault: Path) -> None:
    reports, _ = check_vault(load_catalog(catalog_dir), vault)
    details = {
        ref.text: ref.detail for report in reports for ref in report.references
        if ref.status == "dangling"
    }  # fmt: skip
    assert "closest: performer" in details["[[Perfomer]]"]
    assert "deleted in Zotero" in details["zotero://select/groups/2480461/items/DELE7ED1"]
    assert "Zotero sync" in details["zotero://select/groups/2480461/items/ZZZZ9999"]
    assert "no catalog entry 'no-such-model'" in details["impl:no-such-model"]


def test_a_typo_is_dangling_but_a_tag_sharing_only_a_common_word_is_not(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """A tag 86% like an alias ("nlp_transformers", "GLA Transformer") is not a typo."""
    note = tmp_path / "tags.md"
    note.write_text(
        "[[nlp_transformers]] [[Sparse Transfomer]] [[GLA Transfomer]] [[Longformr]]\n",
        encoding="utf-8",
    )
    statuses = {row[2]: row[3] for row in classify(note, catalog_dir, tmp_path)}
    assert statuses == {
        "[[nlp_transformers]]": "ignored",
        "[[Sparse Transfomer]]": "dangling",
        "[[GLA Transfomer]]": "dangling",
        "[[Longformr]]": "dangling",
    }


def test_alias_forms_resolve_alike(catalog_dir: Path, tmp_path: Path) -> None:
    note = tmp_path / "aliases.md"
    note.write_text(
        "[[Big Bird]] [[BigBird]] [[big-bird]] [[Nyströmformer]] [[Nystromformer]] "
        "[[NYSTROMFORMERS]] [[Set Transformers]] [[Transformer XL]] "
        "[[2020 Rethinking Attention with Performers]] [[Rethinking Attention with Performers]]\n",
        encoding="utf-8",
    )
    targets = [row[4] for row in classify(note, catalog_dir, tmp_path)]
    assert targets == ["big-bird"] * 3 + ["nystromformer"] * 3 + [
        "set-transformer", "transformer-xl", "performer", "performer",
    ]  # fmt: skip


def test_fix_links_resolvable_references_and_changes_nothing_else(
    catalog_dir: Path, vault: Path
) -> None:
    note = vault / READING_NOTE_NAME
    code = notes_main(["check", "--vault", str(vault), "--catalog", str(catalog_dir), "--fix"])
    assert code == 1  # the broken references still dangle
    page = f"{SITE}papers/"
    expected = READING_NOTE
    for old, new in [
        ("[[Big Bird]]", f"[Big Bird]({page}big-bird/)"),
        ("[[BigBird|the BigBird paper]]", f"[the BigBird paper]({page}big-bird/)"),
        ("[[Nyströmformer#Method]]", f"[Nyströmformer]({page}nystromformer/)"),
        ("[[nystromformer]]", f"[nystromformer]({page}nystromformer/)"),
        ("Code: impl:performer", f"Code: [impl:performer]({page}performer/)"),
        ("[[Kernels]]", f"[Kernels]({SITE}taxonomy/KR/)"),
        ("see Linformer.", f"see [Linformer]({page}linformer/)."),
        ("stays; Reformer and Set Transformers do",
         f"stays; [Reformer]({page}reformer/) and [Set Transformers]({page}set-transformer/) do"),
    ]:  # fmt: skip
        assert expected.count(old) == 1, old
        expected = expected.replace(old, new)
    assert note.read_bytes().decode("utf-8") == expected
    # Front matter, code blocks, inline code, citations and Zotero links are untouched.
    assert 'related: "[[Performer]]"' in expected
    assert "# [[Performer]] @choromanski2021rethinking impl:performer Reformer" in expected


def test_fix_of_the_example_note_then_nothing_more(catalog_dir: Path, vault: Path) -> None:
    note = vault / require_example_note().name
    original = note.read_bytes()
    args = ["check", "--vault", str(vault), "--catalog", str(catalog_dir), "--no-fail"]
    assert notes_main([*args, "--fix"]) == 0
    fixed = note.read_bytes().decode("utf-8")
    assert f"; [Performer]({SITE}papers/performer/) (Choromanski 2020)" in fixed
    assert f"[Set Transformers]({SITE}papers/set-transformer/) (Lee 2019)" in fixed
    assert "[[Yi Tay]] [[Donald Metzler]]" in fixed  # author and topic links stay
    assert "![[2020_TransfomersSurvey_Taxonomy.png]]" in fixed
    # Fixing a mention only inserts "[" before it and "](page)" after it: nothing else.
    matcher = difflib.SequenceMatcher(None, original.decode("utf-8"), fixed, autojunk=False)
    inserted = []
    for operation, _, _, j1, j2 in matcher.get_opcodes():
        assert operation in ("equal", "insert"), (operation, fixed[j1:j2])
        if operation == "insert":
            inserted.append(fixed[j1:j2])
    link_end = re.compile(rf"\]\({re.escape(SITE)}papers/[a-z0-9-]+/\)")
    assert all(piece == "[" or link_end.fullmatch(piece) for piece in inserted), inserted
    assert len(inserted) == 2 * 15  # 16 mentions; the one in the heading stays as written
    # A second fix has nothing left to do.
    assert notes_main([*args, "--fix"]) == 0
    assert note.read_bytes().decode("utf-8") == fixed


def test_fix_dry_run_shows_a_diff_and_writes_nothing(
    catalog_dir: Path, vault: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {path: path.read_bytes() for path in vault.rglob("*") if path.is_file()}
    args = ["check", "--vault", str(vault), "--catalog", str(catalog_dir), "--fix", "--dry-run"]
    notes_main(args)
    out = capsys.readouterr().out
    assert f"+- [Big Bird]({SITE}papers/big-bird/) and" in out
    assert "-- [[Big Bird]] and" in out
    assert {path: path.read_bytes() for path in vault.rglob("*") if path.is_file()} == before


def test_fix_keeps_crlf_and_code(catalog_dir: Path, tmp_path: Path) -> None:
    text = (
        "Performer\r\n\r\n    Performer in indented code\r\n\r\n"
        "~~~\r\n[[Reformer]]\r\n~~~\r\n- list\r\n\t- Reformer nested\r\n"
    )
    references = find_references(
        tmp_path / "n.md", text, Resolver.build(load_catalog(catalog_dir), tmp_path)
    )
    fixed = apply_fixes(text, references)
    assert fixed == (
        f"[Performer]({SITE}papers/performer/)\r\n\r\n    Performer in indented code\r\n\r\n"
        f"~~~\r\n[[Reformer]]\r\n~~~\r\n- list\r\n\t- [Reformer]({SITE}papers/reformer/) nested\r\n"
    )


def test_check_reports_file_line_and_exit_status(
    catalog_dir: Path, vault: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--vault", str(vault), "--catalog", str(catalog_dir)]
    assert notes_main(args) == 1
    out = capsys.readouterr().out
    assert f"{vault / READING_NOTE_NAME}:10:8: dangling wikilink [[Perfomer]]" in out
    assert "ignored" not in out  # only with --verbose
    assert "2 note(s): " in out and "5 dangling" in out
    assert notes_main([*args, "--no-fail"]) == 0
    assert (
        notes_main(["check", "--vault", str(vault / "absent"), "--catalog", str(catalog_dir)]) == 2
    )


def test_shipped_catalog_leaves_zotero_links_dangling_until_the_sync(vault: Path) -> None:
    """The shipped catalog may have no Zotero fields yet: the survey's link then dangles."""
    catalog = load_catalog()
    survey = catalog.entries["efficient-transformers-survey"]
    rows = classify(vault / require_example_note().name, catalog.root, vault)
    zotero_status = {row[3] for row in rows if row[1] == "zotero"}
    assert zotero_status == ({"resolved"} if survey.zotero else {"dangling"})
    mentioned = {row[4] for row in rows if row[1] == "mention"}
    assert {"reformer", "linformer", "performer", "longformer", "transformer-xl"} <= mentioned


def test_links_to_vault_notes_and_citations_stay(catalog_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "Performer.md").write_text("my own note\n", encoding="utf-8")
    text = (
        "[[Performer]] [[@choromanski2021rethinking]] [@impl:performer] [@impl:nope]\n"
        "[impl:performer](https://example.org/impl:reformer) mail a@b.org\n"
    )
    resolver = Resolver.build(load_catalog(catalog_dir), tmp_path)
    references = find_references(tmp_path / "n.md", text, resolver)
    assert [(r.kind, r.text, r.status, r.target) for r in references] == [
        ("wikilink", "[[Performer]]", "resolved", "performer"),
        ("wikilink", "[[@choromanski2021rethinking]]", "resolved", "performer"),
        ("citekey", "@impl:performer", "resolved", "performer"),
        ("citekey", "@impl:nope", "dangling", None),
        ("impl", "impl:performer", "resolved", "performer"),
    ]
    fixed = apply_fixes(text, references)
    # The note Performer.md exists: that link works in the vault and stays.
    assert fixed == text.replace(
        "[[@choromanski2021rethinking]]", f"[@choromanski2021rethinking]({SITE}papers/performer/)"
    )


def test_odd_file_names_and_unreadable_notes(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    (vault / "sub folder").mkdir(parents=True)
    odd = vault / "sub folder" / "odd [name] #1 — äöü 日本.md"
    odd.write_bytes("\ufeffIntro\r\nsee [[Linformer]]\r\n".encode())
    (vault / "latin1.md").write_bytes("Caf\xe9 Performer".encode("latin-1"))
    args = ["check", "--vault", str(vault), "--catalog", str(catalog_dir)]
    assert notes_main([*args, "--fix"]) == 0
    captured = capsys.readouterr()
    assert f"{odd}:2:5: resolved wikilink [[Linformer]] -> linformer" in captured.out
    assert "latin1.md: not UTF-8 text; skipped" in captured.err
    assert odd.read_bytes() == (
        f"\ufeffIntro\r\nsee [Linformer]({SITE}papers/linformer/)\r\n".encode()
    )
    assert (vault / "latin1.md").read_bytes() == "Caf\xe9 Performer".encode("latin-1")


def test_author_links_resolve_with_and_without_diacritics(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """``[[Lukasz Kaiser]]`` (as typed on a plain keyboard) is the catalog's Łukasz Kaiser."""
    note = tmp_path / "authors.md"
    note.write_text("[[Łukasz Kaiser]] and [[Lukasz Kaiser]] and [[lukasz kaiser]]\n", "utf-8")
    rows = classify(note, catalog_dir, tmp_path)
    assert [(row[3], row[4]) for row in rows] == [
        ("resolved", "author:Łukasz Kaiser"),
    ] * 3  # one person, by the catalog's canonical name
    reports, _ = check_vault(load_catalog(catalog_dir), tmp_path)
    details = {ref.detail for report in reports for ref in report.references}
    assert len(details) == 1  # the same author, of the same papers
    (detail,) = details
    assert "performer" in detail and "reformer" in detail


def test_check_runs_without_torch_and_prints_no_third_party_warning(
    catalog_dir: Path, vault: Path
) -> None:
    """A vault check reads the implementations' declarations from source, never torch."""
    command = ["-m", "tools.notes", "check", "--vault", str(vault), "--catalog", str(catalog_dir)]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # the reading note has dangling references
    assert "dangling wikilink [[Perfomer]]" in result.stdout
    imported = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "tools" in imported  # the trace did record the imports
    assert not imported & {"torch", "numpy", "implementations"}
    own = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert not [line for line in own if re.search(r"\b[A-Z]\w*Warning\b", line)], own


def test_an_author_spelt_two_ways_is_one_person_with_all_papers(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """GLaM's byline says "Liam Fedus", Switch's and ST-MoE's "William Fedus": one person."""
    note = tmp_path / "fedus.md"
    note.write_text("[[Liam Fedus]], [[William Fedus]] and [[liam fedus|Fedus]]\n", "utf-8")
    rows = classify(note, catalog_dir, tmp_path)
    assert [(row[3], row[4]) for row in rows] == [("resolved", "author:William Fedus")] * 3
    reports, _ = check_vault(load_catalog(catalog_dir), tmp_path)
    details = {ref.detail for report in reports for ref in report.references}
    assert details == {"author of glam, st-moe, switch-transformer"}
